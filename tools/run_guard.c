/* A training's run directory, claimed before any work: checked, created and locked. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "run.h"
#include "core/fileio.h"

static bool has(const char *dir, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat sb;
    return stat(path, &sb) == 0;
}

bool run_is_finished(const char *dir) { return has(dir, "train.json"); }

int run_claim(const char *cmd, const char *out, bool resume, bool overwrite) {
    struct stat sb;
    if (stat(out, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "finch %s: --out %s exists and is not a directory\n", cmd, out);
        return 2;
    }
    if (!resume && !overwrite && (has(out, "train.json") || has(out, "checkpoint.safetensors") || has(out, "model.safetensors"))) {
        fprintf(stderr, "finch %s: %s already holds a run (train.json, a checkpoint or a model): --resume %s to continue it, "
                "--overwrite to replace it, or another --out\n", cmd, out, out);
        return 2;
    }
    if (make_dirs(out) != 0) { fprintf(stderr, "finch %s: --out: %s\n", cmd, ft_last_error()); return 1; }
    char path[1200];
    snprintf(path, sizeof path, "%s/.lock", out);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);   /* held until the process ends, however it ends */
    if (fd < 0) { fprintf(stderr, "finch %s: %s: cannot create: %s\n", cmd, path, strerror(errno)); return 1; }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        fprintf(stderr, "finch %s: another finch process%s%s%s is writing %s; wait for it or choose another --out\n", cmd,
                pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "", out);
        close(fd);
        return 1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) { /* the lock holds without the note */ }
    return 0;
}
