#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fault.h"

static char fault_point[32];
static long fault_at, fault_seen;
static int fault_signal, fault_state;   /* 0: not read yet, 1: armed, 2: none */

void ft_fault_point(const char *point) {
    if (fault_state == 0) {
        const char *s = getenv("FINCH_FAULT");
        fault_state = s && sscanf(s, "%31[^:]:%ld:%d", fault_point, &fault_at, &fault_signal) == 3 ? 1 : 2;
        /* FINCH_FAULT_RANK=r: only the process of that rank under an MPI launcher */
        const char *want = getenv("FINCH_FAULT_RANK"), *rank = getenv("OMPI_COMM_WORLD_RANK");
        if (!rank) rank = getenv("PMI_RANK");
        if (want && (!rank || atoi(rank) != atoi(want))) fault_state = 2;
    }
    if (fault_state == 1 && strcmp(point, fault_point) == 0 && ++fault_seen == fault_at) raise(fault_signal);
}
