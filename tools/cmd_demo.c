/* finch demo: the whole story on Fashion-MNIST, on the CPU, in a few minutes.
 *   1. train the small CNN; clean test accuracy
 *   2. PGD attack (eps 0.1, 20 steps of 0.01): robust accuracy, usually near zero
 *   3. train the same CNN adversarially (FGSM with random start); clean and robust accuracy
 *   4. a PNG of clean / adversarial images and perturbations for each model, and results.json */
#include <stdio.h>
#include <string.h>
#include "run.h"
#include "core/fileio.h"
#include "core/progress.h"

int cmd_demo(int argc, char **argv) {
    const char *data_dir = NULL, *data_name = "fashion-mnist", *out = "runs/demo", *optim = "adam", *schedule = "cosine", *device = "cpu";
    int epochs = 3, adv_epochs = 3, batch = 128, steps = 20, attack_n = 1000, threads = 0, width = 16, seed = 1;
    double eps = 0.1, alpha = 0.01, lr = 2e-3, adv_alpha = 0.125;
    bool quiet = false;
    const CliArg args[] = {
        { "data", ARG_STRING, &data_name, 0, 0, "fashion-mnist | synthetic (4 classes, no files: a smoke test)" },
        { "data-dir", ARG_STRING, &data_dir, 0, 0, "Fashion-MNIST directory (default " FASHION_MNIST_DIR ")" },
        { "out", ARG_STRING, &out, 0, 0, "where the pictures and results.json go" },
        { "epochs", ARG_INT, &epochs, 1, 1000, "epochs of plain training" },
        { "adv-epochs", ARG_INT, &adv_epochs, 1, 1000, "epochs of adversarial training" },
        { "batch", ARG_INT, &batch, 2, 65536, "batch size" },
        { "lr", ARG_DOUBLE, &lr, 0, 10, "learning rate (Adam, cosine schedule)" },
        { "width", ARG_INT, &width, 1, 512, "channels of the CNN's first conv" },
        { "eps", ARG_EPS, &eps, 0, 1, "L-inf radius of the attacks, on [0,1] pixels" },
        { "alpha", ARG_EPS, &alpha, 0, 1, "PGD step size" },
        { "steps", ARG_INT, &steps, 1, 10000, "PGD steps" },
        { "adv-alpha", ARG_EPS, &adv_alpha, 0, 1, "FGSM step of adversarial training (random start in the eps-ball)" },
        { "attack-n", ARG_INT, &attack_n, 1, 10000, "test images attacked" },
        { "seed", ARG_INT, &seed, 0, 2147483647, "random seed" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
        { "quiet", ARG_FLAG, &quiet, 0, 0, "no progress lines" },
    };
    int rc = cli_parse("demo", "Train a small CNN on Fashion-MNIST, attack it with PGD, then train it adversarially\n"
                       "and attack it again. Prints clean and robust accuracies; writes results.json and PNGs.",
                       argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    Device dev;
    if (!cli_device("demo", device, &dev)) return 2;
    run_set_threads(threads);
    if (make_dirs(out) != 0) { fprintf(stderr, "finch demo: %s\n", ft_last_error()); return 1; }
    Splits data;
    if (strcmp(data_name, "fashion-mnist") != 0 && strcmp(data_name, "synthetic") != 0) {
        fprintf(stderr, "finch demo: --data must be fashion-mnist or synthetic, got '%s'\n", data_name);
        return 2;
    }
    DataOpts d = { .data = data_name, .dir = data_dir };
    if ((rc = run_load_data("demo", &d, true, &data)) != 0) return rc;
    const Dataset *train = &data.train, *test = &data.test;

    double t0 = ft_now();
    ModelConfig mc = { .num_classes = train->num_classes, .width = width, .seed = (uint64_t)seed, .device = dev };
    OptimConfig oc = { optim, lr, 0, schedule };
    AttackSpec pgd = { .kind = ATTACK_STEPS, .step = attack_pgd(eps, alpha, steps) };
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "dataset", data_name);
    cJSON_AddStringToObject(doc, "model", "small_cnn");
    char png[2][1100];
    double acc[2], robust[2];
    for (int phase = 0; phase < 2; phase++) {
        bool adv = phase == 1;
        Model *m = model_create("small_cnn", &mc);
        if (!adv)
            fprintf(stderr, "finch demo: %s, %d train / %d test images; small_cnn with %lld parameters\n", data_name,
                    dataset_size(train), dataset_size(test), (long long)m->params.n_trainable);
        fprintf(stderr, "\n== %s ==\n", adv ? "adversarial training (FGSM with random start)" : "plain training");
        TrainOpts t = { .epochs = adv ? adv_epochs : epochs, .batch = batch, .seed = (uint64_t)seed, .quiet = quiet,
                        .adv = adv ? ADV_FGSM_RS : ADV_NONE, .attack = attack_fgsm_rs(eps, adv_alpha) };
        cJSON *ph = cJSON_AddObjectToObject(doc, adv ? "adversarial" : "plain");
        cJSON_AddStringToObject(ph, "training", adv ? "fgsm-rs" : "none");
        acc[phase] = run_training("demo", m, train, test, &t, &oc, 0, cJSON_AddArrayToObject(ph, "epochs"), NULL);
        if (acc[phase] < 0) {
            model_free(m);
            cJSON_Delete(doc);
            splits_free(&data);
            return run_exit_status(acc[phase]);
        }
        fprintf(stderr, "PGD-%d attack, eps %.3g, step %.3g, on %d test images\n", steps, eps, alpha, attack_n);
        snprintf(png[phase], sizeof png[phase], "%s/%s_pgd.png", out, adv ? "adversarial" : "plain");
        AttackStats st;
        RunAttackFiles files = { .png = png[phase] };
        run_attack(m, test, attack_n, 250, &pgd, (uint64_t)seed, &files, quiet, cJSON_AddObjectToObject(ph, "pgd"), &st);
        robust[phase] = (double)st.adv_correct / st.total;
        cJSON_AddNumberToObject(ph, "clean_test_acc", acc[phase]);
        model_free(m);
    }
    double took = ft_now() - t0;
    cJSON_AddNumberToObject(doc, "seconds", took);
    char json[1100];
    snprintf(json, sizeof json, "%s/results.json", out);
    rc = run_write_json("demo", json, doc);
    cJSON_Delete(doc);

    printf("\nfinch demo: small CNN on %s (%.0f s)\n", data_name, took);
    char pgd_col[64];
    snprintf(pgd_col, sizeof pgd_col, "PGD-%d acc (eps %.3g)", steps, eps);
    printf("  %-28s %12s %22s\n", "model", "clean acc", pgd_col);
    printf("  %-28s %11.2f%% %21.2f%%\n", "plain training", 100 * acc[0], 100 * robust[0]);
    printf("  %-28s %11.2f%% %21.2f%%\n", "adversarial training", 100 * acc[1], 100 * robust[1]);
    printf("  clean accuracy on all %d test images; PGD on the first %d\n", dataset_size(test), attack_n);
    printf("  pictures: %s, %s\n  results:  %s\n", png[0], png[1], json);
    splits_free(&data);
    return rc ? 1 : 0;
}
