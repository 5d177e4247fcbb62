/* Fault injection for tests of what survives a crash: with FINCH_FAULT="point:n:signal" in the
 * environment (e.g. "write:3:9"), the n-th time the process reaches `point` it raises `signal`
 * (9: SIGKILL, as a power cut or the OOM killer would). Points: "write" (an atomic write whose
 * temporary file is complete, before its rename), "batch" (a training step about to start).
 * FINCH_FAULT_RANK=r arms it in one process of an MPI job only (the one of rank r).
 * Without the variable, a point costs one comparison. */
#ifndef FINCH_FAULT_H
#define FINCH_FAULT_H

#ifdef __cplusplus
extern "C" {
#endif

void ft_fault_point(const char *point);

#ifdef __cplusplus
}
#endif

#endif
