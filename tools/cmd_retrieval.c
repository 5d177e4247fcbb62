/* finch retrieval: a model's layer as a retrieval feature. Every query ranks a gallery by cosine
 * similarity; Recall@1/5/10 and mAP (eval/retrieval.h) into retrieval.json and retrieval.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "retrieval_run.h"
#include "run_dir.h"
#include "core/fileio.h"
#include "eval/retrieval.h"
#include "models/model_io.h"

static void write_md(FILE *f, const char *file, const char *layer, const RetrievalData *rd, int dim, const RetrievalResult *r) {
    fprintf(f, "# Retrieval: %s, layer %s\n\nProtocol: %s; ", file, layer, rd->protocol);
    if (rd->n_query) fprintf(f, "%d queries against %d gallery images", rd->n_query, rd->n - rd->n_query);
    else fprintf(f, "%d images, each a query against all the others", rd->n);
    fprintf(f, " (cosine similarity of L2-normalised %d-dimensional features).\n\n| Recall@1 | Recall@5 | Recall@10 | mAP | "
               "queries scored |\n|---|---|---|---|---|\n| %.2f | %.2f | %.2f | %.2f | %d |\n",
            dim, 100 * r->recall[0], 100 * r->recall[1], 100 * r->recall[2], 100 * r->map, r->scored);
    if (r->skipped) fprintf(f, "\n%d queries had no other image of their identity in the gallery and were not scored.\n", r->skipped);
}

int cmd_retrieval(int argc, char **argv) {
    const char *file = NULL, *run = NULL, *layer = "pooled", *split = "classes", *out = NULL, *device = "cpu";
    DataOpts d = { .data = "fashion-mnist" };
    int limit = 0, batch = 250, threads = 0;
    bool quiet = false;
    const CliArg args[] = {
        { "model-file", ARG_STRING, &file, 0, 0, "model.safetensors written by finch train" },
        { "run", ARG_STRING, &run, 0, 0, "or a run directory of finch train: its model and (unless --data) its data" },
        DATA_ARGS(d),
        { "layer", ARG_STRING, &layer, 0, 0, "the feature layer (finch model layers ARCH lists them)" },
        { "split", ARG_STRING, &split, 0, 0, "cub: classes (101-200, all their images, as U-turn) | test (the 5,794 test images)" },
        { "limit", ARG_INT, &limit, 0, 2147483647, "first N images of the protocol only (Market: the first N queries; 0: all)" },
        { "batch", ARG_INT, &batch, 1, 65536, "batch size of the feature extraction" },
        { "out", ARG_STRING, &out, 0, 0, "directory for retrieval.json and retrieval.md (default: the model's)" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
        { "quiet", ARG_FLAG, &quiet, 0, 0, "no progress line" },
    };
    int rc = cli_parse("retrieval", "Retrieval with a model's features: every image of the protocol ranks all the others by\n"
                       "cosine similarity of a layer's L2-normalised output; Recall@1/5/10 (a query counts at K when an\n"
                       "image of its identity is among its top K) and mAP. Identities are classes. Fashion-MNIST,\n"
                       "synthetic and folder: the test images; CUB: classes 101-200 (U-turn's protocol) or --split test;\n"
                       "market:DIR (Market-1501's layout): its queries against its gallery, junk and same-camera\n"
                       "matches ignored, images squashed to --image-size (128).",
                       argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    bool cub = strncmp(d.data, "cub:", 4) == 0;
    if (strcmp(split, "classes") != 0 && strcmp(split, "test") != 0) {
        fprintf(stderr, "finch retrieval: --split must be classes or test, got '%s'\n", split);
        return 2;
    }
    if (!cub && cli_given(argc, argv, "split")) { fprintf(stderr, "finch retrieval: --split is for cub: data only\n"); return 2; }
    if ((run != NULL) == (file != NULL)) { fprintf(stderr, "finch retrieval: give exactly one of --model-file and --run\n"); return 2; }
    char model_path[1100];
    RunDataCopy keep;
    if (run) { snprintf(model_path, sizeof model_path, "%s/model.safetensors", run); file = model_path; }
    if ((rc = run_data_of_run("retrieval", run, argc, argv, &d, &keep)) != 0) return rc;
    cub = strncmp(d.data, "cub:", 4) == 0;
    Device dev;
    if (!cli_device("retrieval", device, &dev)) return 2;
    run_set_threads(threads);
    Model *m = model_load(file, dev, NULL);
    if (!m) { fprintf(stderr, "finch retrieval: %s\n", ft_last_error()); return 1; }
    RetrievalData rd;
    if ((rc = retrieval_data_load("retrieval", &d, split, limit, m, &rd)) != 0) { model_free(m); return rc; }
    int n = rd.n, dim = 0;
    const char *protocol = rd.protocol;
    float *feat = retrieval_data_features("retrieval", m, &rd, n, layer, batch, &dim, true, quiet);
    if (!feat) rc = 2;
    if (feat) {
        RetrievalSet s = retrieval_data_set(&rd, feat, feat, retrieval_data_queries(&rd), dim);
        RetrievalResult r;
        double t0 = ft_now();
        retrieval_evaluate(&s, &r);
        double secs = ft_now() - t0;
        char dir[1100], path[1200];
        snprintf(dir, sizeof dir, "%s", out ? out : file);
        if (!out) { char *slash = strrchr(dir, '/'); if (slash) *slash = 0; else snprintf(dir, sizeof dir, "."); }
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "model_file", file);
        cJSON_AddStringToObject(doc, "data", d.data);
        cJSON_AddStringToObject(doc, "protocol", protocol);
        cJSON_AddStringToObject(doc, "layer", layer);
        cJSON_AddNumberToObject(doc, "images", n);
        cJSON_AddNumberToObject(doc, "dim", dim);
        for (int k = 0; k < RETRIEVAL_KS; k++) {
            char key[16];
            snprintf(key, sizeof key, "recall@%d", retrieval_ks[k]);
            cJSON_AddNumberToObject(doc, key, r.recall[k]);
        }
        cJSON_AddNumberToObject(doc, "map", r.map);
        cJSON_AddNumberToObject(doc, "scored", r.scored);
        cJSON_AddNumberToObject(doc, "skipped", r.skipped);
        cJSON_AddNumberToObject(doc, "ranking_seconds", secs);
        snprintf(path, sizeof path, "%s/retrieval.json", dir);
        if (make_dirs(dir) != 0) { fprintf(stderr, "finch retrieval: %s\n", ft_last_error()); rc = 1; }
        else rc = run_write_json("retrieval", path, doc) ? 1 : 0;
        cJSON_Delete(doc);
        char *md = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&md, &len);
        write_md(f, file, layer, &rd, dim, &r);
        fclose(f);
        printf("%s", md);
        snprintf(path, sizeof path, "%s/retrieval.md", dir);
        if (rc == 0 && write_file_atomic(path, md, len) != 0) { fprintf(stderr, "finch retrieval: %s\n", ft_last_error()); rc = 1; }
        if (rc == 0) printf("\nwritten: %s/retrieval.json and %s/retrieval.md\n", dir, dir);
        free(md);
    }
    free(feat);
    retrieval_data_free(&rd);
    model_free(m);
    return rc;
}
