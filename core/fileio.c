#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "fileio.h"
#include "error.h"
#include "fault.h"

int atomic_open(AtomicFile *a, const char *path) {
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%d", path, (int)getpid());
    a->f = fopen(a->tmp, "wb");
    if (!a->f) return ft_error("%s: cannot create: %s", a->tmp, strerror(errno));
    return 0;
}

/* Removes path.tmp.PID files of writers that no longer run (killed mid-write): once a write of
 * path has succeeded, they can never become anything. */
static void remove_stale(const char *path) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    size_t n = strlen(base);
    DIR *d = opendir(dir[0] ? dir : "/");
    if (!d) return;
    for (struct dirent *e; (e = readdir(d)); ) {
        char *end;
        if (strncmp(e->d_name, base, n) != 0 || strncmp(e->d_name + n, ".tmp.", 5) != 0) continue;
        long pid = strtol(e->d_name + n + 5, &end, 10);
        if (*end || end == e->d_name + n + 5 || pid <= 0 || pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char stale[1300];
        snprintf(stale, sizeof stale, "%s/%s", dir, e->d_name);
        unlink(stale);
    }
    closedir(d);
}

int atomic_close(AtomicFile *a, bool ok) {
    ok = ok && !ferror(a->f) && fflush(a->f) == 0 && fsync(fileno(a->f)) == 0;
    int err = errno;
    ok = fclose(a->f) == 0 && ok;
    if (ok) ft_fault_point("write");
    if (ok && rename(a->tmp, a->path) == 0) {
        remove_stale(a->path);
        return 0;
    }
    if (ok) err = errno;
    unlink(a->tmp);
    return ft_error("%s: write failed: %s", a->path, strerror(err ? err : EIO));
}

int write_file_atomic(const char *path, const void *data, size_t n) {
    AtomicFile a;
    if (atomic_open(&a, path) != 0) return -1;
    return atomic_close(&a, fwrite(data, 1, n, a.f) == n);
}

int write_json_atomic(const char *path, const cJSON *doc) {
    char *text = cJSON_Print(doc);
    int rc = write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

int make_dirs(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            struct stat sb;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return ft_error("%s: cannot create directory: %s", buf, strerror(errno));
            if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)) return ft_error("%s: exists and is not a directory", buf);
            *p = c;
            if (!c) break;
        }
    }
    return 0;
}

int open_regular(const char *path, size_t *size) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return ft_error("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return ft_error("%s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return ft_error("%s: is %s, expected a regular file", path, S_ISDIR(sb.st_mode) ? "a directory" : S_ISFIFO(sb.st_mode) ? "a pipe (FIFO)"
                        : S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "a device" : "not a regular file");
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (size) *size = (size_t)sb.st_size;
    return fd;
}

FILE *fopen_regular(const char *path) {
    int fd = open_regular(path, NULL);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) { ft_error("%s: cannot open: %s", path, strerror(errno)); close(fd); }
    return f;
}

char *read_file(const char *path, size_t *n) {
    FILE *f = fopen_regular(path);
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = ft_xmalloc(cap + 1);
    for (size_t k; (k = fread(buf + len, 1, cap - len, f)) > 0; ) {
        len += k;
        if (len == cap) buf = ft_xrealloc(buf, (cap *= 2) + 1);
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); ft_error("%s: read error", path); return NULL; }
    buf[len] = 0;
    if (n) *n = len;
    return buf;
}

int copy_file(const char *src, const char *dst) {
    size_t n;
    char *data = read_file(src, &n);
    if (!data) return -1;
    int rc = write_file_atomic(dst, data, n);
    free(data);
    return rc;
}
