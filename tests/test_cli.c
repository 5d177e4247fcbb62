/* The finch command line as a user meets it: help, bad flags, bad files, exit codes. */
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "test.h"
#include "cli_run.h"
#include "core/fileio.h"
#include "core/safetensors.h"
#include "data/image.h"
#include "models/model_io.h"


TEST(cli_help_and_usage_errors) {
    REQUIRE_FINCH();
    EXPECT("--help", 0, "demo");
    EXPECT("demo --help", 0, "--eps EPS");
    EXPECT("attack --help", 0, "8/255");
    EXPECT("", 2, "usage: finch <command>");
    /* every command and sub-command: --help exits 0 with a usage line; an unknown flag exits 2 */
    const char *commands[] = { "demo", "train", "eval", "attack", "bench", "model", "model info", "model layers", "export", "prepare", "prepare cub",
                               "prepare folder", "prepare info", "explain", "prune", "device", "retrieval", "feature-adv", "clever", "transfer",
                               "benchmark", "report", "graph" };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char a[128];
        snprintf(a, sizeof a, "%s --help", commands[i]);
        EXPECT(a, 0, "usage: finch");
        snprintf(a, sizeof a, "%s --no-such-flag", commands[i]);
        char out_[8192];
        int rc_ = finch_run(a, out_, sizeof out_);
        CHECK(rc_ == 2, "finch %s: exit %d, expected 2 (a usage error):\n%s", a, rc_, out_);
    }
    EXPECT("model layers resnet18 --width 4 --blocks 1,1,1,1 --size 64", 0, "layer3.0                                     [1, 16, 4, 4]");
    EXPECT("model layers small_cnn --size 32", 2, "--size 32: small_cnn takes 28x28 images");
    EXPECT("frobnicate", 2, "unknown command 'frobnicate'");
    EXPECT("train --epochz 3", 2, "unknown option '--epochz'");
    EXPECT("train --epochs three", 2, "--epochs expects an integer, got 'three'");
    EXPECT("train --epochs 0", 2, "--epochs is out of range");
    EXPECT("train --lr", 2, "option '--lr' needs a value");
    EXPECT("attack --eps 8/0", 2, "--eps expects a number or a fraction like 8/255");
    EXPECT("attack --eps 2", 2, "--eps is out of range");
    EXPECT("train --lr nan", 2, "--lr expects a finite number, got 'nan'");
    EXPECT("train --wd inf", 2, "--wd expects a finite number, got 'inf'");
    EXPECT("train --val-fraction nan", 2, "--val-fraction expects a finite number, got 'nan'");
    EXPECT("attack --eps nan/255", 2, "--eps expects a finite number, got 'nan/255'");
    EXPECT("train --model protopnet-small_cnn --data synthetic --clst nan", 2, "--clst 'nan': expected a finite number");
    EXPECT("train --adv fgsm", 2, "--adv must be none, fgsm-rs or pgd");
    EXPECT("train --bucket-mib 0", 2, "--bucket-mib is out of range");
    EXPECT("bench --row ResNet", 2, "--row goes with --models");
    EXPECT("bench --models --row nothing-by-that-name", 2, "--row 'nothing-by-that-name' names no row of --models");
    /* flags that would do nothing are refused by name, not ignored */
    EXPECT("train --clst 0.5", 2, "--clst does nothing for a classifier");
    EXPECT("train --model protopnet-small_cnn --lr 0.1", 2, "--lr does nothing for a prototype network");
    EXPECT("train --model protopnet-small_cnn --attention-dropout 0.1", 2, "--attention-dropout does nothing for ProtoPNet");
    EXPECT("train --model ap-small_cnn --last-iters 3", 2, "--last-iters does nothing for Ours-A");
    EXPECT("train --model ours-fr-small_cnn --clst=0.8", 2, "--clst does nothing for Ours-FR");
    EXPECT("train --adv fgsm-rs --steps 3", 2, "--steps does nothing without --adv pgd");
    EXPECT("train --alpha 0.1", 2, "--alpha does nothing without --adv");
    EXPECT("train --model vgg11 --blocks 1,1,1,1", 2, "--blocks does nothing for a model without ResNet or DenseNet blocks");
    EXPECT("attack --model-file m.safetensors --attack fgsm --steps 10", 2, "--steps does nothing for --attack fgsm");
    EXPECT("attack --model-file m.safetensors --attack bim --alpha 0.01", 2, "--alpha does nothing for --attack bim");
    EXPECT("attack --model-file m.safetensors --suite paper --eps 0.1", 2, "--eps does nothing with --suite");
    EXPECT("attack --model-file m.safetensors --eps-list 0.1", 2, "--eps-list does nothing without --suite");
    EXPECT("attack --model-file m.safetensors --attack deepfool", 2, "--attack must be fgsm, fgsm-rs, pgd, bim, ifgsm, mim, apgd-ce");
    EXPECT("attack --model-file m.safetensors --target banana", 2, "--target must be untargeted, random, least-likely or a class number");
    EXPECT("attack --model-file m.safetensors --target -3", 2, "--target must be");
    EXPECT("attack --model-file m.safetensors --attack cw --kappa -1", 2, "--kappa is out of range");
    EXPECT("attack --model-file m.safetensors --attack ead --beta -0.5", 2, "--beta is out of range");
    EXPECT("attack --model-file m.safetensors --attack cw --search-steps 0", 2, "--search-steps is out of range");
    EXPECT("attack --model-file m.safetensors --attack ead --rule l2", 2, "--rule must be en or l1");
    EXPECT("attack --model-file m.safetensors --attack cw --eps 0.1", 2, "--eps does nothing for --attack cw");
    EXPECT("attack --model-file m.safetensors --attack pgd --beta 0.1", 2, "--beta does nothing for --attack pgd");
    EXPECT("attack --model-file m.safetensors --attack bim --norm 2", 2, "--norm does nothing for --attack bim");
    EXPECT("attack --model-file m.safetensors --norm 1", 2, "--norm must be inf or 2");
    EXPECT("attack --model-file m.safetensors --attack apgd-x", 2, "--attack must be");
    EXPECT("attack --model-file m.safetensors --attack apgd-t --target 3", 2, "--target does nothing for --attack apgd-t");
    EXPECT("attack --model-file m.safetensors --attack apgd-ce --alpha 0.1", 2, "--alpha does nothing for --attack apgd-ce");
    EXPECT("attack --model-file m.safetensors --attack apgd-dlr --restarts 0", 2, "--restarts is out of range");
    EXPECT("attack --model-file m.safetensors --attack pgd --restarts 2", 2, "--restarts does nothing for --attack pgd");
    EXPECT("attack --model-file m.safetensors --attack square --steps 5", 2, "--steps does nothing for --attack square");
    EXPECT("attack --model-file m.safetensors --attack square --queries 0", 2, "--queries is out of range");
    EXPECT("attack --model-file m.safetensors --suite paper --save-adv a.safetensors", 2, "--save-adv does nothing with --suite");
    EXPECT("train --device tpu", 2, "--device must be cpu or cuda");
    EXPECT("eval --device gpu --model-file m", 2, "--device must be cpu or cuda, got 'gpu'");
    EXPECT("train --model vgg99 --limit 64", 2, "unknown model 'vgg99'");
    EXPECT("train --data imagenet", 2, "--data 'imagenet' is not a dataset");
    EXPECT("train --data cub:/nonexistent/CUB", 1, "/nonexistent/CUB/images.txt: cannot open");
    EXPECT("train --data folder:/nonexistent/cars", 1, "/nonexistent/cars: cannot open directory");
    EXPECT("model info resnet50 --width 4", 0, "resnet50: ");
    EXPECT("model info vgg16 --width 4 --size 224", 0, "receptive field 212");
    EXPECT("model info alexnet", 2, "unknown model 'alexnet'");
    EXPECT("model info resnet18 --blocks 1,1,1,1 --classes 10", 0, "4,910,922 parameters");
    EXPECT("model info resnet18 --blocks 1,1", 2, "--blocks needs 4 numbers");
    EXPECT("model info vgg11 --vgg-cfg 16,X", 2, "--vgg-cfg '16,X'");
    EXPECT("model", 2, "usage: finch model info|layers ARCH");
    EXPECT("model info --help", 0, "usage: finch model info ARCH");
    EXPECT("prepare info --help", 0, "usage: finch prepare info FILE");
    EXPECT("prepare info", 2, "usage: finch prepare info FILE");
    EXPECT("export --out x.safetensors", 2, "--model-file and --out are required");
}

TEST(cli_reports_missing_and_broken_files) {
    REQUIRE_FINCH();
    char args[1024];
    EXPECT("attack", 2, "--model-file is required");   /* a missing flag is a usage error */
    EXPECT("train --init /nonexistent/w.safetensors --epochs 1", 1, "/nonexistent/w.safetensors: cannot open");
    EXPECT("train --resume /nonexistent/run", 1, "/nonexistent/run/checkpoint.safetensors: cannot open");
    EXPECT("eval --model-file /nonexistent/model.safetensors", 1, "/nonexistent/model.safetensors: cannot open");
    snprintf(args, sizeof args, "train --data-dir %s/empty --epochs 1", test_tmpdir());
    EXPECT(args, 1, "empty/train-images-idx3-ubyte.gz: cannot open");
    char junk[600];
    snprintf(junk, sizeof junk, "%s/junk.safetensors", test_tmpdir());
    FILE *j = fopen(junk, "wb");
    fputs("not a safetensors file at all", j);
    fclose(j);
    snprintf(args, sizeof args, "eval --model-file %s", junk);
    EXPECT(args, 1, "junk.safetensors: header length");
    /* Fashion-MNIST files of 32x32 images: said in words, not as an internal assertion */
    char dir[600], f[700];
    snprintf(dir, sizeof dir, "%s/fm32", test_tmpdir());
    make_dirs(dir);
    const char *split[] = { "train", "t10k" };
    for (int s = 0; s < 2; s++) {
        snprintf(f, sizeof f, "%s/%s-images-idx3-ubyte.gz", dir, split[s]);
        test_write_idx(f, 3, (int[]){ 200, 32, 32 }, 200 * 32 * 32, true);
        snprintf(f, sizeof f, "%s/%s-labels-idx1-ubyte.gz", dir, split[s]);
        test_write_idx(f, 1, (int[]){ 200 }, 200, true);
    }
    snprintf(args, sizeof args, "train --data-dir %s --epochs 1 --out %s/fm32-run", dir, test_tmpdir());
    EXPECT(args, 2, "--data fashion-mnist has 32x32 images with 1 channel(s); small_cnn takes 28x28 images with 1 channel(s)");
}

TEST(cli_cuda_request_is_explained) {
    REQUIRE_FINCH();
    char out[8192];
    int rc = finch_run("train --device cuda --epochs 1 --limit 256", out, sizeof out);
    CHECK(rc != 0 && (strstr(out, "built without CUDA") || strstr(out, "no CUDA device") || strstr(out, "not supported on the cuda")),
          "--device cuda on this machine: exit %d, output:\n%s", rc, out);
    /* finch device names the GPU, or says why there is none (exit 1) */
    rc = finch_run("device", out, sizeof out);
    bool gpu = ft_cuda_available();
    CHECK(rc == (gpu ? 0 : 1) && strstr(out, "cpu: ") && strstr(out, "cuda: ") && strstr(out, ft_cuda_describe()),
          "finch device: exit %d with a GPU %s, output:\n%s", rc, gpu ? "present" : "absent", out);
    EXPECT("device --verbose", 2, "finch device: takes no options");
}

/* --data synthetic needs no files: a prototype network trains with a push and is attacked */
TEST(cli_synthetic_data_runs_the_whole_story) {
    REQUIRE_FINCH();
    char args[1024];
    const char *dir = test_path("synthetic-proto");
    snprintf(args, sizeof args, "train --model protopnet-small_cnn --data synthetic --limit 1200 --epochs 2 --warm-epochs 1 "
             "--push-start 1 --push-every 1 --last-iters 1 --batch 64 --width 8 --prototypes-per-class 2 --quiet --out %s", dir);
    EXPECT(args, 0, "selected model");
    snprintf(args, sizeof args, "attack --run %s --suite paper --eps-list 0.1 --limit 100 --quiet", dir);   /* the run's data */
    EXPECT(args, 0, "synthetic/test");
    /* the strong suite, and its self-checks: at eps 1 nothing may survive */
    snprintf(args, sizeof args, "attack --run %s --data synthetic --suite strong --eps-list 0.1,1 --limit 32 --quiet --out %s/strong",
             dir, dir);
    EXPECT(args, 0, "| APGD-CE | APGD-T | Square | FGSM | BIM-10 | PGD-10 | MIM-10 | worst case |");
    char path[1200];
    snprintf(path, sizeof path, "%s/strong/robustness.json", dir);
    char *text = read_file(path, NULL);
    cJSON *doc = cJSON_Parse(text ? text : "");
    free(text);
    CHECK(doc && cJSON_IsArray(cJSON_GetObjectItem(doc, "warnings")), "%s: no \"warnings\" list", path);
    cJSON *rows = cJSON_GetObjectItem(doc, "rows");
    CHECK(cJSON_GetArraySize(rows) == 2 && cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 1), "worst_case")->valuedouble == 0,
          "%s: something survived eps 1", path);
    cJSON_Delete(doc);
    /* a suite killed after its first radius continues from the radii it finished, and ends as an
     * uninterrupted run does; another image count does not take them */
    char out[16384], whole[1200], resumed[1200];
    const char *suite_args = "--data synthetic --suite paper --eps-list 0.05,0.1 --limit 64";
    snprintf(args, sizeof args, "attack --run %s %s --quiet --out %s/whole", dir, suite_args, dir);
    EXPECT(args, 0, "worst case");
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "attack --run %s %s --quiet --out %s/killed", dir, suite_args, dir);
        setenv("FINCH_FAULT", "write:2:9", 1);   /* the first write is the partial file, the second robustness.json */
        int rc = finch_run(args, out, sizeof out);
        unsetenv("FINCH_FAULT");
        snprintf(path, sizeof path, "%s/killed/robustness.partial.json", dir);
        CHECK(rc == 128 + 9 && access(path, F_OK) == 0, "killed at its last write: exit %d, %s %s:\n%s", rc, path,
              access(path, F_OK) == 0 ? "kept" : "missing", out);
        snprintf(args, sizeof args, "attack --run %s %s --out %s/killed", dir, k == 0 ? suite_args : "--data synthetic --suite paper "
                 "--eps-list 0.05,0.1 --limit 48", dir);
        rc = finch_run(args, out, sizeof out);
        bool took = strstr(out, "eps 0.05: from") != NULL;
        CHECK(rc == 0 && took == (k == 0) && access(path, F_OK) != 0, "run again (%s): exit %d, %s the finished radius, partial file %s:\n%s",
              k == 0 ? "same command" : "another --limit", rc, took ? "took" : "did not take", access(path, F_OK) == 0 ? "left" : "gone", out);
        if (k > 0) break;
        snprintf(whole, sizeof whole, "%s/whole/robustness.json", dir);
        snprintf(resumed, sizeof resumed, "%s/killed/robustness.json", dir);
        char *tw = read_file(whole, NULL), *tr = read_file(resumed, NULL);
        cJSON *dw = cJSON_Parse(tw ? tw : ""), *dr = cJSON_Parse(tr ? tr : "");
        free(tw);
        free(tr);
        const cJSON *rw = cJSON_GetObjectItem(dw, "rows"), *rr = cJSON_GetObjectItem(dr, "rows");
        bool same = cJSON_GetArraySize(rw) == 2 && cJSON_GetArraySize(rr) == 2;
        for (int i = 0; same && i < 2; i++) {
            cJSON *a = cJSON_Duplicate(cJSON_GetArrayItem(rw, i), true), *b = cJSON_Duplicate(cJSON_GetArrayItem(rr, i), true);
            cJSON_DeleteItemFromObject(a, "seconds");
            cJSON_DeleteItemFromObject(b, "seconds");
            same = cJSON_Compare(a, b, true);
            cJSON_Delete(a);
            cJSON_Delete(b);
        }
        CHECK(same, "the resumed suite's rows differ from the uninterrupted run's (%s, %s)", whole, resumed);
        cJSON_Delete(dw);
        cJSON_Delete(dr);
    }
    /* C&W toward random classes, its examples saved with their labels, targets and predictions */
    const char *adv = test_path("synthetic-adv.safetensors");
    snprintf(args, sizeof args, "attack --run %s --data synthetic --attack cw --target random --steps 30 --search-steps 2 "
             "--c 1 --limit 16 --batch 8 --save-adv %s --out %s/cw --quiet", dir, adv, dir);
    EXPECT(args, 0, "success");
    SafeTensors st;
    CHECK(st_open(adv, &st) == 0, "--save-adv wrote no readable file: %s", ft_last_error());
    const char *names[] = { "adv", "index", "label", "target", "pred_clean", "pred_adv" };
    Tensor *t[6];
    for (int i = 0; i < 6; i++) {
        const StEntry *e = st_find(&st, names[i]);
        CHECK(e && e->shape.d[0] == 16, "%s: no tensor '%s' of 16 rows", adv, names[i]);
        t[i] = ft_tensor_new(i ? FT_I32 : FT_F32, e->shape, FT_CPU);
        CHECK(st_read_into(&st, e, t[i]) == 0, "%s", ft_last_error());
    }
    CHECK(strcmp(st_meta(&st, "format"), "finch-adv") == 0 && strcmp(st_meta(&st, "attack"), "cw") == 0, "%s: metadata", adv);
    int hits = 0;
    for (int i = 0; i < 16; i++) {
        int32_t label = ft_i32(t[2])[i], target = ft_i32(t[3])[i];
        CHECK(ft_i32(t[1])[i] == i && target != label && target >= 0 && target < 4, "row %d: index %d, label %d, target %d", i,
              ft_i32(t[1])[i], label, target);
        hits += ft_i32(t[5])[i] == target;
    }
    for (int64_t j = 0; j < t[0]->numel; j++) CHECK(ft_f32(t[0])[j] >= 0 && ft_f32(t[0])[j] <= 1, "a saved pixel is outside [0, 1]");
    CHECK(hits > 0, "no saved example is predicted as its target");
    for (int i = 0; i < 6; i++) ft_tensor_free(t[i]);
    st_close(&st);
    /* a --save-adv that cannot be written is refused before the attack runs, and nothing is written */
    snprintf(args, sizeof args, "attack --run %s --data synthetic --attack fgsm --limit 16 --save-adv %s/adv --out %s/cw-refused --quiet",
             dir, adv, dir);
    EXPECT(args, 1, "exists and is not a directory");
    snprintf(args, sizeof args, "%s/cw-refused", dir);
    CHECK(access(args, F_OK) != 0, "a refused attack created %s", args);
    /* retrieval on a tapped layer, the run's data; an unknown layer is refused with the list, nothing written */
    snprintf(args, sizeof args, "retrieval --run %s --layer add_on_layers --limit 200 --out %s/ret --quiet", dir, dir);
    EXPECT(args, 0, "| Recall@1 | Recall@5 | Recall@10 | mAP |");
    snprintf(path, sizeof path, "%s/ret/retrieval.json", dir);
    CHECK(access(path, F_OK) == 0, "retrieval wrote no %s", path);
    snprintf(args, sizeof args, "retrieval --run %s --layer layer9 --out %s/ret-bad --quiet", dir, dir);
    EXPECT(args, 2, "has no layer 'layer9'; its layers: features.conv1, features.bn1");
    snprintf(path, sizeof path, "%s/ret-bad", dir);
    CHECK(access(path, F_OK) != 0, "a refused retrieval created %s", path);
    snprintf(args, sizeof args, "retrieval --run %s --split test", dir);
    EXPECT(args, 2, "--split is for cub: data only");
    snprintf(args, sizeof args, "attack --run %s --data synthetic --target 7 --limit 4", dir);
    EXPECT(args, 2, "--target 7: the model has classes 0..3");
    EXPECT("train --data synthetic --limit 50 --batch 64", 2, "--batch 64 is more than the 50 training images (--limit)");
    EXPECT("train --model protopnet-small_cnn --data synthetic --limit 50 --batch 64", 2, "--batch 64 is more than the 50 training images");
    EXPECT("demo --data mnist", 2, "--data must be fashion-mnist or synthetic, got 'mnist'");
    EXPECT("train --model protopnet-small_cnn --data synthetic --frozen-bn none", 2, "--frozen-bn must be running or batch, got 'none'");
}

static bool same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    for (int ca = 0, cb = 0; same && ca != EOF; ) { ca = fgetc(fa); cb = fgetc(fb); same = ca == cb; }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

TEST(cli_resume_reproduces_an_uninterrupted_run) {
    const char *why = cli_training_missing();
    if (why) SKIP("%s", why);
    const char *d = test_tmpdir(), *common = "--limit 256 --batch 64 --schedule constant --adv fgsm-rs --quiet";
    char a[1024], out[8192];
    snprintf(a, sizeof a, "train --epochs 2 --out %s/whole %s", d, common);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "train --epochs 1 --out %s/parts %s", d, common);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "train --resume %s/parts --epochs 2 --quiet", d);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    char w[600], p[600];
    snprintf(w, sizeof w, "%s/whole/model.safetensors", d);
    snprintf(p, sizeof p, "%s/parts/model.safetensors", d);
    CHECK(same_file(w, p), "the resumed run's weights differ from the uninterrupted run's");
    snprintf(a, sizeof a, "train --resume %s/parts --init %s", d, w);
    EXPECT(a, 2, "--init and --resume exclude each other");
}

TEST(cli_resume_reproduces_an_uninterrupted_prototype_network_run) {
    const char *why = cli_training_missing();
    if (why) SKIP("%s", why);
    const char *d = test_tmpdir();
    const char *common = "--model ours-fr-small_cnn --width 4 --prototypes-per-class 1 --proto-depth 8 --limit 256 --batch 64 "
                         "--warm-epochs 1 --push-start 1 --push-every 1 --last-iters 2 --val-fraction 0.01 --adv fgsm-rs --quiet";
    char a[1024], out[8192];
    snprintf(a, sizeof a, "train --epochs 3 --out %s/fr_whole %s", d, common);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "train --epochs 2 --out %s/fr_parts %s", d, common);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "train --resume %s/fr_parts --epochs 3", d);
    EXPECT(a, 0, "resuming after epoch 2 of 3");
    /* stopped inside an epoch (4 batches each: 1-4 warm-up, 5-8 joint, 9-16 the last layer's two
     * passes, 17-20 joint): the checkpoint then holds that epoch's first batches; stopped in the
     * last-layer stage, the push and the passes before */
    const char *stops[][3] = {
        { "batch:6:2", "during epoch 2 after its batch 1", "resuming in epoch 2 of 3, after its batch 1" },
        { "batch:18:15", "during epoch 3 after its batch 1", "resuming in epoch 3 of 3, after its batch 1" },
        { "batch:10:2", "in the last-layer stage after epoch 2, in its pass 1 of 2", "resuming after epoch 2 of 3, after its push" },
        { "batch:14:15", "in the last-layer stage after epoch 2, in its pass 2 of 2",
          "resuming after epoch 2 of 3, after pass 1 of its last-layer stage" } };
    int n_stops = (int)(sizeof stops / sizeof *stops);
    for (int k = 0; k < n_stops; k++) {
        snprintf(a, sizeof a, "train --epochs 3 --out %s/fr_stop%d %s", d, k, common);
        setenv("FINCH_FAULT", stops[k][0], 1);
        int rc = finch_run(a, out, sizeof out);
        unsetenv("FINCH_FAULT");
        int sig = atoi(strrchr(stops[k][0], ':') + 1);
        CHECK(rc == 128 + sig && strstr(out, stops[k][1]) && strstr(out, "--resume continues from it"),
              "%s: exit %d (expected %d), and the message should say '%s':\n%s", stops[k][0], rc, 128 + sig, stops[k][1], out);
        snprintf(a, sizeof a, "train --resume %s/fr_stop%d", d, k);
        CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, stops[k][2]), "finch %s should say '%s':\n%s", a, stops[k][2], out);
    }
    const char *files[] = { "model.safetensors", "epoch-3-push.safetensors", "epoch-3-last.safetensors", "checkpoint.safetensors" };
    const char *runs[] = { "fr_parts", "fr_stop0", "fr_stop1", "fr_stop2", "fr_stop3" };
    for (int r = 0; r < 5; r++)
        for (int i = 0; i < 4; i++) {
            char w[700], p[700];
            snprintf(w, sizeof w, "%s/fr_whole/%s", d, files[i]);
            snprintf(p, sizeof p, "%s/%s/%s", d, runs[r], files[i]);
            CHECK(same_file(w, p), "%s/%s: the resumed run differs from the uninterrupted one", runs[r], files[i]);
        }
    snprintf(a, sizeof a, "train --resume %s/nowhere", d);
    EXPECT(a, 1, "checkpoint.safetensors");
}

TEST(cli_trains_a_backbone_on_grayscale_28x28) {
    const char *why = cli_training_missing();
    if (why) SKIP("%s", why);
    char a[1024], out[8192];
    snprintf(a, sizeof a, "train --model resnet18 --width 4 --blocks 1,1,1,1 --epochs 1 --limit 256 --batch 64 --out %s/bb --quiet",
             test_tmpdir());
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "test accuracy"), "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "eval --model-file %s/bb/model.safetensors --limit 100", test_tmpdir());
    EXPECT(a, 0, "accuracy");
}

TEST(cli_trains_a_prototype_network_and_runs_the_paper_suite) {
    const char *why = cli_training_missing();
    if (why) SKIP("%s", why);
    char a[1024], out[8192], path[700];
    const char *tiny = "--width 4 --prototypes-per-class 1 --proto-depth 8 --limit 256 --batch 64 --quiet";
    snprintf(a, sizeof a, "train --model ours-fr-small_cnn %s --epochs 2 --warm-epochs 1 --push-start 1 --push-every 1 "
             "--last-iters 1 --val-fraction 0.01 --out %s/fr", tiny, test_tmpdir());
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "selected model"), "finch %s:\n%s", a, out);
    const char *files[] = { "model.safetensors", "epoch-2-nopush.safetensors", "epoch-2-push.safetensors",
                            "epoch-2-last.safetensors", "push-epoch-2/prototypes.json", "push-epoch-2/prototype-9.png",
                            "push-epoch-2/prototype-9-heat.png", "train.json" };
    for (int i = 0; i < 8; i++) {
        snprintf(path, sizeof path, "%s/fr/%s", test_tmpdir(), files[i]);
        FILE *f = fopen(path, "rb");
        CHECK(f, "training left no %s", path);
        fclose(f);
    }
    snprintf(a, sizeof a, "attack --run %s/fr --suite paper --eps-list 0.05 --limit 32 --quiet", test_tmpdir());
    EXPECT(a, 0, "| MIM-10 |");
    snprintf(path, sizeof path, "%s/fr/robustness.md", test_tmpdir());
    FILE *f = fopen(path, "rb");
    CHECK(f, "no %s", path);
    fclose(f);
    snprintf(a, sizeof a, "train --model ap-small_cnn --width 4 --limit 256 --batch 64 --quiet --epochs 2 --warm-epochs 1 --out %s/ap",
             test_tmpdir());
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "selected model") && !strstr(out, "push"),
          "Ours-A has no push, yet its summary says:\n%s", out);
    snprintf(a, sizeof a, "train --model protopnet-small_cnn %s --recipe fancy --out %s/bad", tiny, test_tmpdir());
    EXPECT(a, 2, "--recipe must be protopnet or robust");
    snprintf(a, sizeof a, "train --model protopnet-small_cnn %s --sep abc --out %s/bad", tiny, test_tmpdir());
    EXPECT(a, 2, "--sep 'abc': expected a finite number");
    snprintf(a, sizeof a, "attack --run %s/fr --suite paper --eps-list 0.05,x", test_tmpdir());
    EXPECT(a, 2, "--eps-list");
    snprintf(a, sizeof a, "attack --run %s/fr --suite paper --eps-list nan", test_tmpdir());
    EXPECT(a, 2, "--eps-list 'nan': expected up to 8 radii in [0, 1]");
}

TEST(cli_trains_and_attacks_on_an_image_folder) {
    REQUIRE_FINCH();
    char root[600], path[700], a[1400], out[8192];
    snprintf(root, sizeof root, "%s/cars", test_tmpdir());
    uint8_t rgb[20 * 16 * 3];
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 4; i++) {
            snprintf(path, sizeof path, "%s/class%d", root, c);
            make_dirs(path);
            snprintf(path, sizeof path, "%s/class%d/img%d.png", root, c, i);
            for (int k = 0; k < 20 * 16 * 3; k++) rgb[k] = (uint8_t)(c ? 200 - 5 * i : 40 + 5 * i);
            CHECK(png_write_rgb(path, rgb, 20, 16) == 0, "%s", ft_last_error());
        }
    snprintf(a, sizeof a, "train --data folder:%s --image-size 32 --model resnet18 --width 4 --blocks 1,1,1,1 --epochs 1 "
             "--batch 4 --out %s/cars_run --quiet", root, test_tmpdir());
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "test accuracy"), "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "attack --data folder:%s --image-size 32 --model-file %s/cars_run/model.safetensors --limit 8 "
             "--steps 2 --quiet", root, test_tmpdir());
    EXPECT(a, 0, "robust accuracy");
    /* the same folder through a prepared cache, with offline copies and online augmentation */
    char cache[700];
    snprintf(cache, sizeof cache, "%s/cars.fds", test_tmpdir());
    snprintf(a, sizeof a, "prepare folder --root %s --out %s --image-size 24 --offline-augment 2 --quiet", root, cache);
    EXPECT(a, 0, "6 train, 2 test, 2 offline copies per training image, at 24x24");
    snprintf(a, sizeof a, "prepare info %s", cache);
    EXPECT(a, 0, "checksums good");
    snprintf(a, sizeof a, "train --data folder:%s --augment online --workers 2 --model resnet18 --width 4 --blocks 1,1,1,1 "
             "--epochs 1 --batch 4 --out %s/cars_cached --quiet", cache, test_tmpdir());
    EXPECT(a, 0, "6 train (12 augmented) / 2 test images at 24x24");
    snprintf(a, sizeof a, "eval --data folder:%s --model-file %s/cars_cached/model.safetensors", cache, test_tmpdir());
    EXPECT(a, 0, "of 2 test images");
    snprintf(a, sizeof a, "eval --data cub:%s --model-file %s/cars_cached/model.safetensors", cache, test_tmpdir());
    EXPECT(a, 2, "is a folder cache: use --data folder:");
    snprintf(a, sizeof a, "eval --data folder:%s --image-size 32 --model-file %s/cars_cached/model.safetensors", cache, test_tmpdir());
    EXPECT(a, 2, "--image-size asks otherwise");
    snprintf(a, sizeof a, "train --data folder:%s --augment sometimes", cache);
    EXPECT(a, 2, "--augment must be none or online");
    EXPECT("prepare", 2, "say what to prepare: cub, folder or info FILE");
    EXPECT("prepare cub --out x.fds", 2, "--root and --out are required");
    EXPECT("prepare cub --root /nonexistent/CUB --out x.fds", 1, "/nonexistent/CUB/images.txt: cannot open");
    EXPECT("prepare info /nonexistent.fds", 1, "/nonexistent.fds: cannot open");
}


/* The epochs recorded in dir/train.json (-1 when it cannot be read), and its test accuracy. */
static int logged_epochs(const char *dir, double *test_acc) {
    char path[700];
    snprintf(path, sizeof path, "%s/train.json", dir);
    char *text = read_file(path, NULL);
    cJSON *doc = cJSON_Parse(text ? text : "");
    free(text);
    int n = cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "epochs")) ? cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "epochs")) : -1;
    if (test_acc) *test_acc = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(doc, "test_acc"));
    cJSON_Delete(doc);
    return n;
}

/* A run's results are never lost or overwritten by mistake: an --out that holds a run is refused
 * without --resume or --overwrite; resuming a finished run changes nothing; a run killed after its
 * last checkpoint is finished from it with its whole log; a locked run directory is refused; an
 * --out that is a file is refused before any work. */
TEST(cli_runs_are_never_lost_or_overwritten) {
    REQUIRE_FINCH();
    const char *d = test_tmpdir(), *common = "--data synthetic --limit 256 --batch 64 --schedule constant --quiet";
    char a[1024], out[8192], run_dir[600], json[700], model[700];
    snprintf(run_dir, sizeof run_dir, "%s/kept", d);
    snprintf(json, sizeof json, "%s/train.json", run_dir);
    snprintf(model, sizeof model, "%s/model.safetensors", run_dir);
    snprintf(a, sizeof a, "train --epochs 1 --out %s %s", run_dir, common);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    double acc1;
    CHECK(logged_epochs(run_dir, &acc1) == 1 && acc1 > 0, "the first run's train.json");
    EXPECT(a, 2, "already holds a run");
    size_t n0;
    char *before = read_file(json, &n0);
    snprintf(a, sizeof a, "train --resume %s", run_dir);
    EXPECT(a, 0, "already finished its 1 epochs");
    size_t n1;
    char *after = read_file(json, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0, "resuming a finished run rewrote its train.json");
    free(before);
    free(after);
    remove(json);   /* killed after the last checkpoint, before the model and train.json */
    remove(model);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    double acc2;
    CHECK(logged_epochs(run_dir, &acc2) == 1 && acc2 == acc1, "finished from the checkpoint: %d epochs logged, test accuracy %g "
          "(the run had %g)", logged_epochs(run_dir, NULL), acc2, acc1);
    snprintf(a, sizeof a, "train --resume %s --epochs 2 --quiet", run_dir);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    CHECK(logged_epochs(run_dir, NULL) == 2, "a continued run logs both epochs, not only the new one");
    snprintf(a, sizeof a, "train --resume %s --epochs 1", run_dir);
    EXPECT(a, 2, "cannot undo that");
    snprintf(a, sizeof a, "train --epochs 1 --out %s --overwrite %s", run_dir, common);
    CHECK(finch_run(a, out, sizeof out) == 0 && logged_epochs(run_dir, NULL) == 1, "--overwrite replaces the run:\n%s", out);
    /* a second process on the same directory */
    char lock[700];
    snprintf(lock, sizeof lock, "%s/.lock", run_dir);
    int fd = open(lock, O_RDWR);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0, "take the lock");
    snprintf(a, sizeof a, "train --resume %s --epochs 3", run_dir);
    EXPECT(a, 1, "is writing");
    close(fd);
    /* an --out that is a file: refused at once */
    snprintf(a, sizeof a, "train --epochs 1 --out %s %s", json, common);
    EXPECT(a, 2, "exists and is not a directory");
}

/* kill -9 at every write of a run (each checkpoint, the model, train.json: FINCH_FAULT kills the
 * process with the new file complete but not yet renamed into place) and in the middle of an
 * epoch: afterwards every file is whole (the old version or the new), and resuming (or starting
 * over, when no checkpoint was in place yet) gives the uninterrupted run's weights bit for bit
 * and leaves no temporary file behind. */
TEST(cli_kill_9_sigint_or_sigterm_at_any_point_loses_nothing) {
    REQUIRE_FINCH();
    const char *d = test_tmpdir(),
               *common = "--data synthetic --limit 256 --batch 64 --schedule constant --epochs 2 --seed 3 --adv fgsm-rs --quiet";
    char a[1024], out[8192], whole[700];
    snprintf(a, sizeof a, "train --out %s/k-whole %s", d, common);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(whole, sizeof whole, "%s/k-whole/model.safetensors", d);
    /* 4 batches an epoch; a polite stop before batch 5 is one at the start of epoch 2 */
    const char *faults[] = { "write:1:9", "write:2:9", "write:3:9", "write:4:9", "batch:3:9", "batch:6:9",
                             "batch:2:2", "batch:5:2", "batch:6:2", "batch:8:15" };
    for (int i = 0; i < 10; i++) {
        bool polite = faults[i][strlen(faults[i]) - 1] != '9';   /* SIGINT, SIGTERM: stop between batches, say so */
        char dir[600], path[800];
        snprintf(dir, sizeof dir, "%s/k-%d", d, i);
        snprintf(a, sizeof a, "train --out %s %s", dir, common);
        setenv("FINCH_FAULT", faults[i], 1);
        int rc = finch_run(a, out, sizeof out);
        unsetenv("FINCH_FAULT");
        if (polite) CHECK(rc == 128 + atoi(strrchr(faults[i], ':') + 1) && strstr(out, "holds the run up to") &&
                          strstr(out, "--resume continues from it"),
                          "%s: exit %d, expected 128 + the signal and where the checkpoint is:\n%s", faults[i], rc, out);
        else CHECK(rc == -1 || rc == 128 + 9, "%s: finch was not killed (exit %d)", faults[i], rc);   /* the shell reports 137 */
        const char *files[] = { "checkpoint.safetensors", "model.safetensors" };
        for (int f = 0; f < 2; f++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[f]);
            SafeTensors st;
            if (access(path, F_OK) == 0) CHECK(st_open(path, &st) == 0, "%s: %s is not whole: %s", faults[i], path, ft_last_error());
            if (access(path, F_OK) == 0) st_close(&st);
        }
        snprintf(path, sizeof path, "%s/train.json", dir);
        CHECK(access(path, F_OK) != 0 || logged_epochs(dir, NULL) == 2, "%s: train.json is not whole", faults[i]);
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
        if (access(path, F_OK) == 0) snprintf(a, sizeof a, "train --resume %s --quiet", dir);
        CHECK(finch_run(a, out, sizeof out) == 0, "%s: finch %s:\n%s", faults[i], a, out);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        CHECK(same_file(whole, path), "%s: the weights differ from the uninterrupted run's", faults[i]);
        CHECK(logged_epochs(dir, NULL) == 2, "%s: train.json logs %d epochs", faults[i], logged_epochs(dir, NULL));
        DIR *dd = opendir(dir);
        for (struct dirent *e; dd && (e = readdir(dd)); ) CHECK(!strstr(e->d_name, ".tmp."), "%s: %s/%s was left behind", faults[i], dir, e->d_name);
        if (dd) closedir(dd);
    }
}
