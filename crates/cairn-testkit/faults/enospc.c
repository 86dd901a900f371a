#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>

/* A disk that fills up: an LD_PRELOAD shim for cairn's fault tests. Once FAULT_WRITE_BUDGET
 * bytes have been written (to any descriptor but stdin, stdout and stderr), every write fails
 * with ENOSPC, as on a full file system (or with EIO, a failing disk, when FAULT_EIO is set). SQLite, bundled inside the Rust binary, calls libc's
 * pwrite64 through the dynamic linker, so this interposes on it. Built by the test with cc. */
static long long budget = -2;
static int take(size_t n) {
    if (budget == -2) { const char *s = getenv("FAULT_WRITE_BUDGET"); budget = s ? atoll(s) : -1; }
    if (budget < 0) return 1;
    if ((long long)n > budget) { budget = 0; errno = getenv("FAULT_EIO") ? EIO : ENOSPC; return 0; }
    budget -= (long long)n;
    return 1;
}
ssize_t pwrite64(int fd, const void *b, size_t n, off_t o) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "pwrite64");
    if (fd > 2 && !take(n)) return -1;
    return real(fd, b, n, o);
}
ssize_t pwrite(int fd, const void *b, size_t n, off_t o) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "pwrite");
    if (fd > 2 && !take(n)) return -1;
    return real(fd, b, n, o);
}
ssize_t write(int fd, const void *b, size_t n) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = dlsym(RTLD_NEXT, "write");
    if (fd > 2 && !take(n)) return -1;
    return real(fd, b, n);
}
