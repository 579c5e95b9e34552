/* fuzz_common.h — helpers shared by the libFuzzer targets of tests/fuzz/.
 *
 * Everything a target writes lives under /tmp: an anonymous memfd (for parsers
 * that take a path, reached as /proc/self/fd/N) or a folder made once with
 * mkdtemp("/tmp/ldbfuzz-<name>-<pid>-XXXXXX") and removed at exit; a crash
 * exits without running atexit handlers, so folders of dead processes are
 * removed when the next one starts. */
#ifndef LDB_FUZZ_COMMON_H
#define LDB_FUZZ_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Texts the tokenizer targets encode with every tokenizer they accept: empty,
 * whitespace runs, multi-byte and invalid UTF-8, added-token look-alikes, long
 * repeats. */
static const char *const fz_texts[] = {
    "",
    "Hello, world! the  two\tspaces\n\nand lines\r\n",
    "Caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x99\x82 \xe2\x96\x81x \xe2\x96\x81\xe2\x96\x81",
    "bad \xff\xfe utf8 \xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 end",
    "<bos>text <eos> more<pad><unk><start_of_turn>user\n<0x41><s></s>",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabababababababababab",
    "                                                  fifty spaces",
};
#define FZ_N_TEXTS (sizeof fz_texts / sizeof fz_texts[0])

/* Aborts with a message: for harness set-up failures only (never input-driven). */
static inline void fz_die(const char *what)
{
    fprintf(stderr, "fuzz harness: %s: %s\n", what, strerror(errno));
    abort();
}

/* Writes all of p[0..n) at offset 0 of fd and truncates the file to n bytes. */
static inline void fz_write_fd(int fd, const uint8_t *p, size_t n)
{
    if (ftruncate(fd, 0) != 0)
        fz_die("ftruncate");
    size_t off = 0;
    while (off < n) {
        ssize_t w = pwrite(fd, p + off, n - off, (off_t)off);
        if (w <= 0)
            fz_die("pwrite");
        off += (size_t)w;
    }
}

/* A memfd holding the current input, and its /proc/self/fd path. */
typedef struct fz_memfile {
    int fd;
    char path[64];
} fz_memfile;

static inline void fz_memfile_init(fz_memfile *m, const char *name)
{
    if (m->path[0])
        return;
    m->fd = memfd_create(name, MFD_CLOEXEC);
    if (m->fd < 0)
        fz_die("memfd_create");
    snprintf(m->path, sizeof m->path, "/proc/self/fd/%d", m->fd);
}

static inline void fz_memfile_set(fz_memfile *m, const uint8_t *p, size_t n)
{
    fz_write_fd(m->fd, p, n);
}

/* Writes p[0..n) to path (created or truncated). */
static inline void fz_write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fz_die(path);
    fz_write_fd(fd, p, n);
    close(fd);
}

/* ---- a temporary folder, removed at exit -------------------------------- */

#define FZ_MAX_TMP 4
static char fz_tmp[FZ_MAX_TMP][64] __attribute__((unused));

static inline int fz_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static inline void fz_rm_tmp(void)
{
    for (int i = 0; i < FZ_MAX_TMP; i++)
        if (fz_tmp[i][0] && !strncmp(fz_tmp[i], "/tmp/ldbfuzz-", 13))
            nftw(fz_tmp[i], fz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Removes /tmp/ldbfuzz-<name>-<pid>-* folders of processes that are gone (a
 * crash exits without running atexit handlers). Only this naming is touched. */
static inline void fz_rm_stale(void)
{
    DIR *d = opendir("/tmp");
    struct dirent *de;
    if (!d)
        return;
    while ((de = readdir(d))) {
        const char *p = de->d_name, *dash;
        if (strncmp(p, "ldbfuzz-", 8) || !(dash = strchr(p + 8, '-')))
            continue;
        char *end;
        long pid = strtol(dash + 1, &end, 10);
        if (pid <= 0 || *end != '-' || strlen(end) != 7 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive, or not ours to judge */
        char path[300];
        snprintf(path, sizeof path, "/tmp/%s", p);
        nftw(path, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    closedir(d);
}

/* Makes /tmp/ldbfuzz-<name>-<pid>-XXXXXX and returns its path (static storage). */
static inline const char *fz_mkdtemp(const char *name)
{
    static int registered;
    for (int i = 0; i < FZ_MAX_TMP; i++) {
        if (fz_tmp[i][0])
            continue;
        if (!registered++) {
            fz_rm_stale();
            atexit(fz_rm_tmp);
        }
        snprintf(fz_tmp[i], sizeof fz_tmp[i], "/tmp/ldbfuzz-%s-%ld-XXXXXX", name, (long)getpid());
        if (!mkdtemp(fz_tmp[i]))
            fz_die("mkdtemp");
        return fz_tmp[i];
    }
    errno = ENOSPC;
    fz_die("too many temporary folders");
    return NULL;
}

/* dir + "/" + name into buf (static-size paths: the folders are short). */
static inline const char *fz_join(char *buf, size_t cap, const char *dir, const char *name)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, name) >= cap) {
        errno = ENAMETOOLONG;
        fz_die("path");
    }
    return buf;
}

#endif
