/* The demo's CNN trained 50 steps on the GPU and on the CPU from the same seed: the same losses
 * within float32 tolerance (dropout masks come from the same Philox streams on both devices). */
#include "test.h"
#include "synthetic.h"
#include "train/trainer.h"

#define STEPS 50

static void losses_on(Device dev, const Dataset *ds, float *losses) {
    ModelConfig mc = { 4, 8, 13, dev };
    Model *m = model_create("small_cnn", &mc);
    Optimizer *o = optim_new(OPT_ADAM, &m->params, 1e-3, 0);
    TrainOpts t = { .epochs = 1, .batch = 32, .seed = 4, .quiet = true };
    train_epoch(m, o, ds, &t, 0, losses);
    optim_free(o);
    model_free(m);
}

TEST(training_steps_match_on_gpu_and_cpu) {
    if (!ft_cuda_available()) SKIP("no CUDA device visible (or a CPU-only build): the GPU training-step comparison did not run");
    Dataset ds;
    synthetic_quadrants(&ds, 32 * STEPS, 8, 60, 60, 40);
    float cpu[STEPS], gpu[STEPS];
    losses_on(FT_CPU, &ds, cpu);
    losses_on(FT_CUDA, &ds, gpu);
    double worst = 0;
    for (int i = 0; i < STEPS; i++) worst = fmax(worst, fabs(cpu[i] - gpu[i]) / fmax(1e-3, fabs(cpu[i])));
    printf("\n    losses step 1: cpu %.6f gpu %.6f; step %d: cpu %.6f gpu %.6f; worst relative difference %.2e\n",
           cpu[0], gpu[0], STEPS, cpu[STEPS - 1], gpu[STEPS - 1], worst);
    CHECK(worst < 1e-3, "CPU and GPU losses differ by up to %.2e (relative) over %d steps", worst, STEPS);
    dataset_free(&ds);
}
