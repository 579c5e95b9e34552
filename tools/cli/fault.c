/* fault.c — a damaged database ends a command with a message, not a signal.
 *
 * latentdb validates every record it decodes, but LMDB trusts its own pages: a
 * branch or leaf page of random bytes can make it read outside its map (SIGSEGV
 * inside liblmdb), and a mapped file that is shorter than its mapping, or that
 * the disk cannot read, faults when read (SIGBUS). LMDB's assertions are caught
 * by its assert callback (db/env.c); these two faults are caught here: a SIGSEGV
 * whose instruction is in liblmdb, or a SIGBUS on a mapped file, prints which
 * database (or file) and what to do, and exits with status 1. Any other fault is
 * a bug of latentdb's own and goes on to the handler that was there before (the
 * default, or a sanitizer's), so it is never hidden.
 *
 * The handler uses only async-signal-safe calls (write, open, read, _exit); it
 * reads /proc/self/maps to name the file a SIGBUS address belongs to. Exiting a
 * writer mid-transaction is safe for the store: an uncommitted LMDB transaction
 * is never visible, and its robust lock is released by the kernel. */
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static char db_path[1024];
static uintptr_t lmdb_lo, lmdb_hi;  /* liblmdb's loaded segments */
static struct sigaction old_segv, old_bus;
static int installed;

static int find_lmdb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size, (void)arg;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "liblmdb"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (!lmdb_lo || lo < lmdb_lo)
            lmdb_lo = lo;
        if (hi > lmdb_hi)
            lmdb_hi = hi;
    }
    return 1;
}

static void say(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(2, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The path of the file mapped at addr (from /proc/self/maps) into out; 0 or -1. */
static int mapped_file(uintptr_t addr, char *out, size_t cap)
{
    char buf[4096], line[1400];
    size_t ln = 0;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC), found = -1;
    if (fd < 0)
        return -1;
    for (ssize_t r; found < 0 && (r = read(fd, buf, sizeof buf)) > 0;) {
        for (ssize_t i = 0; i < r && found < 0; i++) {
            if (buf[i] != '\n') {
                if (ln + 1 < sizeof line)
                    line[ln++] = buf[i];
                continue;
            }
            line[ln] = 0;
            ln = 0;
            uintptr_t lo = 0, hi = 0;
            const char *p = line;
            for (int h; (h = hexval(*p)) >= 0; p++)
                lo = lo << 4 | (uintptr_t)h;
            if (*p++ != '-')
                continue;
            for (int h; (h = hexval(*p)) >= 0; p++)
                hi = hi << 4 | (uintptr_t)h;
            if (addr < lo || addr >= hi)
                continue;
            const char *path = strchr(line, '/');
            if (path && strlen(path) < cap) {
                strcpy(out, path);
                found = 0;
            }
            break;
        }
    }
    close(fd);
    return found;
}

static void on_fault(int sig, siginfo_t *si, void *uctx)
{
    ucontext_t *uc = uctx;
#if defined(__x86_64__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.pc;
#else
    uintptr_t pc = 0;
#endif
    char file[1024];
    if (sig == SIGBUS && mapped_file((uintptr_t)si->si_addr, file, sizeof file) == 0) {
        say("latentdb: ");
        say(file);
        say(": a mapped file could not be read (it is shorter than when it was opened, or "
            "the disk failed to read it)");
        if (*db_path) {
            say("; if it is the database's, run latentdb check ");
            say(db_path);
        }
        say("\n");
        _exit(1);
    }
    if (sig == SIGSEGV && pc >= lmdb_lo && pc < lmdb_hi && *db_path) {
        say("latentdb: ");
        say(db_path);
        say(": LMDB read a damaged page of data.mdb (a segmentation fault inside liblmdb); "
            "run latentdb check ");
        say(db_path);
        say(", and restore the database from a copy\n");
        _exit(1);
    }
    /* not the database's: the handler before ours, or the default action */
    const struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uctx);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL); /* returning re-runs the faulting instruction */
}

void cli_fault_guard(const char *path)
{
    size_t n = strlen(path);
    if (n >= sizeof db_path)
        n = sizeof db_path - 1;
    memcpy(db_path, path, n);
    db_path[n] = 0;
    if (installed)
        return;
    installed = 1;
    dl_iterate_phdr(find_lmdb, NULL);
    static char stack[1 << 16]; /* a fault deep in a recursion still gets its message */
    stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}
