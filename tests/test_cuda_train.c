/* The demo's CNN trained 50 steps on the GPU and on the CPU from the same seed: the same losses
 * within float32 tolerance (dropout masks come from the same Philox streams on both devices).
 * Then, on the GPU, warm training steps must not call cudaMalloc: the tape's arena and the
 * caching allocator serve every step from memory the first steps obtained. */
#include "test.h"
#include "data/synthetic.h"
#include "train/trainer.h"

#define STEPS 50

static void losses_on(Device dev, const Dataset *ds, float *losses) {
    ModelConfig mc = { .num_classes = 4, .width = 8, .seed = 13, .device = dev };
    Model *m = model_create("small_cnn", &mc);
    Optimizer *o = optim_new(OPT_ADAM, &m->params, 1e-3, 0);
    TrainOpts t = { .epochs = 1, .batch = 32, .seed = 4, .quiet = true };
    Loader *L = train_loader_new(ds, &t, dev);
    train_epoch(m, o, L, &t, 0, NULL, losses);
    loader_free(L);
    optim_free(o);
    model_free(m);
}

TEST(training_steps_match_on_gpu_and_cpu) {
    if (!ft_cuda_available()) SKIP("the GPU training-step comparison did not run: %s", ft_cuda_describe());
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

    ModelConfig mc = { .num_classes = 4, .width = 8, .seed = 13, .device = FT_CUDA };
    Model *m = model_create("small_cnn", &mc);
    Optimizer *o = optim_new(OPT_ADAM, &m->params, 1e-3, 0);
    Tape *tp = ft_tape_new(FT_CUDA);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(32, 1, 28, 28), FT_CUDA), *y = ft_tensor_new(FT_I32, SHAPE(32), FT_CUDA);
    int32_t idx[32];
    int64_t mallocs_warm = 0;
    for (int step = 0; step < 13; step++) {
        if (step == 3) mallocs_warm = ft_cuda_memory().device_mallocs;
        for (int i = 0; i < 32; i++) idx[i] = (step * 32 + i) % dataset_size(&ds);
        dataset_batch(&ds, idx, 32, x, y);
        params_zero_grad(&m->params);
        ft_backward(tp, ft_cross_entropy(tp, m->forward(m, tp, x), y));
        optim_step(o);
        ft_tape_reset(tp);
    }
    CudaMemoryStats ms = ft_cuda_memory();
    printf("    GPU memory: peak %zu bytes in use, %lld cudaMalloc calls in all, %lld during 10 warm steps\n", ms.peak,
           (long long)ms.device_mallocs, (long long)(ms.device_mallocs - mallocs_warm));
    CHECK(ms.device_mallocs == mallocs_warm, "%lld cudaMalloc calls during 10 warm training steps",
          (long long)(ms.device_mallocs - mallocs_warm));
    ft_tensor_free(x); ft_tensor_free(y);
    ft_tape_free(tp);
    optim_free(o);
    model_free(m);
    dataset_free(&ds);
}
