/* faultinj.c — an LD_PRELOAD shim that makes one I/O call fail, or kills the
 * process at it, for the reliability tests (tests/reliability.sh).
 *
 *   LDB_FAULT_DIR=DIR       only calls on files under DIR count (the database);
 *                           DIR* counts every path that starts with DIR
 *   LDB_FAULT=FUNC:N[:ACT]  the N-th counted call of FUNC (1-based) fails with EIO,
 *                           or with ENOSPC (ACT=enospc), or the process is killed
 *                           with SIGKILL just before the call (ACT=kill)
 *   LDB_FAULT_COUNTS=FILE   at exit, append "FUNC COUNT" lines: how many calls of
 *                           each function were counted (to choose N)
 *
 * FUNC is one of: open write pwrite writev pwritev fsync fdatasync ftruncate mmap
 * rename mkdir (each covers its 64-bit and *at twins; rename counts by its source
 * path). Calls on other files pass through. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { F_OPEN, F_WRITE, F_PWRITE, F_WRITEV, F_PWRITEV, F_FSYNC, F_FDATASYNC, F_FTRUNCATE,
       F_MMAP, F_RENAME, F_MKDIR, F_N };
static const char *NAMES[F_N] = {"open",  "write",     "pwrite",    "writev", "pwritev",
                                 "fsync", "fdatasync", "ftruncate", "mmap",   "rename",
                                 "mkdir"};

static unsigned long counts[F_N];
static int target = -1;        /* the function to hit */
static unsigned long target_n; /* at its n-th counted call */
static int action;             /* 0: EIO, 1: ENOSPC, 2: SIGKILL */
static char dir[PATH_MAX];
static size_t dir_len;
static int dir_prefix;         /* LDB_FAULT_DIR ended with '*' */
static int dir_bad;            /* LDB_FAULT_DIR set but not resolvable */
static int ready;

static void setup(void)
{
    if (ready)
        return;
    const char *d = getenv("LDB_FAULT_DIR"), *f = getenv("LDB_FAULT");
    if (d && *d) { /* resolve the folder; the last component may not exist yet */
        char base[PATH_MAX], *slash;
        snprintf(base, sizeof base, "%s", d);
        if ((dir_prefix = base[strlen(base) - 1] == '*'))
            base[strlen(base) - 1] = 0;
        const char *parent = ".", *last = base;
        if ((slash = strrchr(base, '/')) != NULL) {
            *slash = 0;
            parent = *base ? base : "/";
            last = slash + 1;
        }
        if (realpath(parent, dir) && strlen(dir) + strlen(last) + 2 < sizeof dir) {
            if (*last) {
                strcat(dir, "/");
                strcat(dir, last);
            }
            dir_len = strlen(dir);
        } else {
            dir_bad = 1; /* a folder that cannot be resolved: count nothing */
        }
    }
    if (f) {
        char name[32];
        char act[16] = "";
        if (sscanf(f, "%31[a-z]:%lu:%15s", name, &target_n, act) >= 2)
            for (int i = 0; i < F_N; i++)
                if (!strcmp(name, NAMES[i]))
                    target = i;
        action = !strcmp(act, "enospc") ? 1 : !strcmp(act, "kill") ? 2 : 0;
    }
    ready = 1;
}

__attribute__((destructor)) static void report(void)
{
    const char *out = getenv("LDB_FAULT_COUNTS");
    FILE *f = out ? fopen(out, "a") : NULL;
    if (!f)
        return;
    for (int i = 0; i < F_N; i++)
        fprintf(f, "%s %lu\n", NAMES[i], counts[i]);
    fclose(f);
}

static int under_dir(const char *path)
{
    if (dir_bad)
        return 0;
    if (!dir_len)
        return 1;
    char full[PATH_MAX];
    if (path[0] != '/') { /* relative: against the working directory */
        if (!getcwd(full, sizeof full) || strlen(full) + strlen(path) + 2 > sizeof full)
            return 0;
        strcat(full, "/");
        strcat(full, path);
        path = full;
    }
    return !strncmp(path, dir, dir_len) &&
           (dir_prefix || path[dir_len] == '/' || !path[dir_len]);
}

static int fd_under_dir(int fd)
{
    if (dir_bad)
        return 0;
    if (!dir_len)
        return 1;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = 0;
    return under_dir(path);
}

/* Counts a call; returns nonzero (errno set) when this call is the one to fail. */
static int hit(int f, int counted)
{
    setup();
    if (!counted)
        return 0;
    unsigned long n = __atomic_add_fetch(&counts[f], 1, __ATOMIC_SEQ_CST);
    if (f != target || n != target_n)
        return 0;
    if (action == 2)
        raise(SIGKILL);
    errno = action == 1 ? ENOSPC : EIO;
    return 1;
}

#define REAL(ret, name, ...)                                                               \
    static ret (*real_##name)(__VA_ARGS__);                                                \
    if (!real_##name)                                                                      \
        real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name);

static int opens_for_write(int flags)
{
    return (flags & O_ACCMODE) != O_RDONLY || (flags & O_CREAT);
}

#define OPEN_MODE(flags, mode)                                                             \
    mode_t mode = 0;                                                                       \
    if (flags & (O_CREAT | O_TMPFILE)) {                                                   \
        va_list ap;                                                                        \
        va_start(ap, flags);                                                               \
        mode = va_arg(ap, mode_t);                                                         \
        va_end(ap);                                                                        \
    }

int open(const char *path, int flags, ...)
{
    OPEN_MODE(flags, mode)
    REAL(int, open, const char *, int, ...)
    if (hit(F_OPEN, opens_for_write(flags) && under_dir(path)))
        return -1;
    return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    OPEN_MODE(flags, mode)
    REAL(int, open64, const char *, int, ...)
    if (hit(F_OPEN, opens_for_write(flags) && under_dir(path)))
        return -1;
    return real_open64(path, flags, mode);
}

int openat(int dfd, const char *path, int flags, ...)
{
    OPEN_MODE(flags, mode)
    REAL(int, openat, int, const char *, int, ...)
    if (hit(F_OPEN, opens_for_write(flags) && (dfd == AT_FDCWD || path[0] == '/') &&
                        under_dir(path)))
        return -1;
    return real_openat(dfd, path, flags, mode);
}

int openat64(int dfd, const char *path, int flags, ...)
{
    OPEN_MODE(flags, mode)
    REAL(int, openat64, int, const char *, int, ...)
    if (hit(F_OPEN, opens_for_write(flags) && (dfd == AT_FDCWD || path[0] == '/') &&
                        under_dir(path)))
        return -1;
    return real_openat64(dfd, path, flags, mode);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    REAL(ssize_t, write, int, const void *, size_t)
    if (fd > 2 && hit(F_WRITE, fd_under_dir(fd)))
        return -1;
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(ssize_t, pwrite, int, const void *, size_t, off_t)
    if (hit(F_PWRITE, fd_under_dir(fd)))
        return -1;
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    REAL(ssize_t, pwrite64, int, const void *, size_t, off64_t)
    if (hit(F_PWRITE, fd_under_dir(fd)))
        return -1;
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    REAL(ssize_t, writev, int, const struct iovec *, int)
    if (fd > 2 && hit(F_WRITEV, fd_under_dir(fd)))
        return -1;
    return real_writev(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t)
    if (hit(F_PWRITEV, fd_under_dir(fd)))
        return -1;
    return real_pwritev(fd, iov, n, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int n, off64_t off)
{
    REAL(ssize_t, pwritev64, int, const struct iovec *, int, off64_t)
    if (hit(F_PWRITEV, fd_under_dir(fd)))
        return -1;
    return real_pwritev64(fd, iov, n, off);
}

int fsync(int fd)
{
    REAL(int, fsync, int)
    if (hit(F_FSYNC, fd_under_dir(fd)))
        return -1;
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    REAL(int, fdatasync, int)
    if (hit(F_FDATASYNC, fd_under_dir(fd)))
        return -1;
    return real_fdatasync(fd);
}

int ftruncate(int fd, off_t len)
{
    REAL(int, ftruncate, int, off_t)
    if (hit(F_FTRUNCATE, fd_under_dir(fd)))
        return -1;
    return real_ftruncate(fd, len);
}

int ftruncate64(int fd, off64_t len)
{
    REAL(int, ftruncate64, int, off64_t)
    if (hit(F_FTRUNCATE, fd_under_dir(fd)))
        return -1;
    return real_ftruncate64(fd, len);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    REAL(void *, mmap, void *, size_t, int, int, int, off_t)
    if (fd >= 0 && hit(F_MMAP, fd_under_dir(fd))) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return real_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
    REAL(void *, mmap64, void *, size_t, int, int, int, off64_t)
    if (fd >= 0 && hit(F_MMAP, fd_under_dir(fd))) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return real_mmap64(addr, len, prot, flags, fd, off);
}

int rename(const char *from, const char *to)
{
    REAL(int, rename, const char *, const char *)
    if (hit(F_RENAME, under_dir(from)))
        return -1;
    return real_rename(from, to);
}

int renameat(int fd1, const char *from, int fd2, const char *to)
{
    REAL(int, renameat, int, const char *, int, const char *)
    if (hit(F_RENAME, (fd1 == AT_FDCWD || from[0] == '/') && under_dir(from)))
        return -1;
    return real_renameat(fd1, from, fd2, to);
}

int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned flags)
{
    REAL(int, renameat2, int, const char *, int, const char *, unsigned)
    if (hit(F_RENAME, (fd1 == AT_FDCWD || from[0] == '/') && under_dir(from)))
        return -1;
    return real_renameat2(fd1, from, fd2, to, flags);
}

int mkdir(const char *path, mode_t mode)
{
    REAL(int, mkdir, const char *, mode_t)
    if (hit(F_MKDIR, under_dir(path)))
        return -1;
    return real_mkdir(path, mode);
}

int mkdirat(int fd, const char *path, mode_t mode)
{
    REAL(int, mkdirat, int, const char *, mode_t)
    if (hit(F_MKDIR, (fd == AT_FDCWD || path[0] == '/') && under_dir(path)))
        return -1;
    return real_mkdirat(fd, path, mode);
}
