/* Checkpoints: a resumed run continues bit for bit; broken files are refused untouched. */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "data/synthetic.h"
#include "core/fileio.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

#define STEPS 8

typedef struct { Model *m; Optimizer *o; } Run;

static Run start(uint64_t seed) {
    ModelConfig mc = { .num_classes = 4, .width = 4, .seed = seed, .device = FT_CPU };
    Run r = { model_create("small_cnn", &mc), NULL };
    r.o = optim_new(OPT_ADAM, &r.m->params, 2e-3, 1e-4);
    return r;
}

static void finish(Run *r) { optim_free(r->o); model_free(r->m); }

/* dropout, FGSM-RS adversarial training and a cosine schedule: every source of state is used */
static const TrainOpts opts = { .epochs = 3, .batch = 32, .seed = 6, .quiet = true, .adv = ADV_FGSM_RS,
                                .attack = { 0.05, 0.0625, 1, true }, .schedule = { SCHED_COSINE, 0, 0, 3, 0.1 } };

TEST(resumed_training_is_bit_identical) {
    Dataset ds;
    synthetic_quadrants(&ds, 32 * STEPS, 3, 60, 50, 60);
    float whole[STEPS], resumed[STEPS], scratch[STEPS];
    Loader *L = train_loader_new(&ds, &opts, FT_CPU);
    Run a = start(1);
    for (int e = 0; e < 3; e++) train_epoch(a.m, a.o, L, &opts, e, NULL, e == 2 ? whole : scratch);
    finish(&a);

    char path[512];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", test_tmpdir());
    Run b = start(1);
    for (int e = 0; e < 2; e++) train_epoch(b.m, b.o, L, &opts, e, NULL, scratch);
    CheckpointInfo info = { .epochs_done = 2, .n_options = 1 };
    snprintf(info.option_names[0], 32, "model");
    snprintf(info.option_values[0], 256, "small_cnn");
    CHECK(checkpoint_save(path, b.m, b.o, &info) == 0, "%s", ft_last_error());
    finish(&b);

    Run c = start(99);   /* a different initialisation, all of it overwritten by the checkpoint */
    CheckpointInfo got;
    CHECK(checkpoint_load(path, c.m, c.o, &got) == 0, "%s", ft_last_error());
    CHECK(got.epochs_done == 2 && got.n_options == 1 && strcmp(got.option_values[0], "small_cnn") == 0,
          "metadata back: epochs %d, %d options", got.epochs_done, got.n_options);
    train_epoch(c.m, c.o, L, &opts, 2, NULL, resumed);
    loader_free(L);
    finish(&c);
    for (int i = 0; i < STEPS; i++)
        CHECK(memcmp(&whole[i], &resumed[i], sizeof(float)) == 0, "step %d of the resumed epoch: loss %.9g, uninterrupted %.9g",
              i, resumed[i], whole[i]);
    dataset_free(&ds);
}

static bool same_weights(Model *m, const float *saved) {
    return memcmp(ft_f32(m->params.flat), saved, (size_t)m->params.flat->numel * 4) == 0;
}

TEST(broken_checkpoints_are_refused_and_nothing_changes) {
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/good.safetensors", test_tmpdir());
    snprintf(bad, sizeof bad, "%s/bad.safetensors", test_tmpdir());
    Run r = start(2);
    CheckpointInfo info = { .epochs_done = 1 };
    CHECK(checkpoint_save(path, r.m, r.o, &info) == 0, "%s", ft_last_error());
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = malloc((size_t)size);
    CHECK(fread(bytes, 1, (size_t)size, f) == (size_t)size, "read back");
    fclose(f);

    Run other = start(5);
    float *before = malloc((size_t)other.m->params.flat->numel * 4);
    memcpy(before, ft_f32(other.m->params.flat), (size_t)other.m->params.flat->numel * 4);
    CheckpointInfo got;
    bytes[size - 10] ^= 0x40;   /* one flipped bit in the data */
    write_file_atomic(bad, bytes, (size_t)size);
    CHECK(checkpoint_load(bad, other.m, other.o, &got) != 0 && strstr(ft_last_error(), "checksum mismatch"),
          "a corrupted checkpoint was accepted (%s)", ft_last_error());
    CHECK(same_weights(other.m, before), "a refused checkpoint changed the model");
    bytes[size - 10] ^= 0x40;
    write_file_atomic(bad, bytes, (size_t)size - 100);   /* truncated */
    CHECK(checkpoint_load(bad, other.m, other.o, &got) != 0 && strstr(ft_last_error(), bad), "a truncated checkpoint was accepted");
    CHECK(same_weights(other.m, before), "a refused checkpoint changed the model");
    ModelConfig mc = { .num_classes = 4, .width = 4, .device = FT_CPU };
    Model *wrong = model_create("conv_stack", &mc);
    Optimizer *wo = optim_new(OPT_ADAM, &wrong->params, 1e-3, 0);
    CHECK(checkpoint_load(path, wrong, wo, &got) != 0 && strstr(ft_last_error(), "a checkpoint of small_cnn, not of conv_stack"),
          "a checkpoint loaded into another architecture (%s)", ft_last_error());
    CHECK(checkpoint_load(path, other.m, other.o, &got) == 0 && !same_weights(other.m, before), "the good checkpoint: %s",
          ft_last_error());
    optim_free(wo);
    model_free(wrong);
    free(before);
    free(bytes);
    finish(&r);
    finish(&other);
}

/* A stopped epoch's state goes through JSON unchanged, and one that does not fit the run is refused. */
TEST(stopped_epoch_state_round_trips_and_misfits_are_refused) {
    EpochState s = { 3, 32, 70, 96, 0.1 + 0.2 + 1e-17 * 3, 0xfedcba9876543210ull }, t;
    cJSON *j = epoch_state_json(&s);
    char *text = cJSON_PrintUnformatted(j);
    cJSON *back = cJSON_Parse(text);
    CHECK(epoch_state_parse(back, "ck", 8, 32, &t) == 0, "%s", ft_last_error());
    CHECK(memcmp(&s, &t, sizeof s) == 0, "back from %s: batches %d, loss sum %.17g, counter %llu", text, t.batches, t.loss_sum,
          (unsigned long long)t.attack_counter);
    CHECK(epoch_state_parse(back, "ck", 8, 64, &t) != 0 && strstr(ft_last_error(), "ck: ") && strstr(ft_last_error(), "--batch"),
          "another batch size: %s", ft_last_error());
    CHECK(epoch_state_parse(back, "ck", 3, 32, &t) != 0 && strstr(ft_last_error(), "3 batches"), "an epoch that short: %s", ft_last_error());
    cJSON_ReplaceItemInObject(back, "correct", cJSON_CreateNumber(97));
    CHECK(epoch_state_parse(back, "ck", 8, 32, &t) != 0 && strstr(ft_last_error(), "do not add up"), "97 of 96 correct: %s", ft_last_error());
    cJSON_ReplaceItemInObject(back, "correct", cJSON_CreateString("70"));
    CHECK(epoch_state_parse(back, "ck", 8, 32, &t) != 0 && strstr(ft_last_error(), "'correct'"), "a string: %s", ft_last_error());
    cJSON_Delete(back);
    cJSON_ReplaceItemInObject(j, "attack_counter", cJSON_CreateString("12x"));
    CHECK(epoch_state_parse(j, "ck", 8, 32, &t) != 0 && strstr(ft_last_error(), "attack_counter"), "a bad counter: %s", ft_last_error());
    cJSON_Delete(j);
    free(text);
}
