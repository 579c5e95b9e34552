/* test_reliability.c — what LMDB leaves behind when a process dies: a reader
 * killed inside a read transaction keeps its slot in lock.mdb (pinning old pages)
 * until someone clears it; opening the database must clear it. And the open's
 * length check: a sound data.mdb may end before LMDB's last page (free pages
 * never written); a truncated one is refused. The rest of the reliability tests
 * drive the real binary (tests/reliability.sh).
 * usage: test_reliability SCRATCH */
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../db/db_impl.h"
#include "check.h"

typedef struct scan {
    char pid[32];
    int slots;
} scan;

static int count_pid(const char *line, void *arg)
{
    scan *s = arg;
    /* "    pid     thread     txnid" then one line per slot: pid first */
    while (*line == ' ')
        line++;
    size_t n = strlen(s->pid);
    if (!strncmp(line, s->pid, n) && line[n] == ' ')
        s->slots++;
    return 0;
}

/* Reader slots of pid, read from lock.mdb without clearing anything. */
static int slots_of(const char *path, pid_t pid)
{
    MDB_env *env;
    scan s = {{0}, 0};
    snprintf(s.pid, sizeof s.pid, "%d", (int)pid);
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16 + 2 * LDB_MAX_DICTS) ||
        mdb_env_open(env, path, MDB_RDONLY | MDB_NOTLS, 0644))
        return -1;
    mdb_reader_list(env, count_pid, &s);
    mdb_env_close(env);
    return s.slots;
}

/* A child that opens the database, begins a read transaction when txn is set,
 * says so on the pipe and waits to be killed. */
static pid_t reader(const char *path, int txn, int fd[2])
{
    pid_t pid = fork();
    if (pid == 0) {
        ldb_db *r = NULL;
        MDB_txn *t;
        if (ldb_db_open(path, LDB_OPEN_READ, &r) ||
            (txn && mdb_txn_begin(r->env, NULL, MDB_RDONLY, &t)))
            _exit(1);
        if (write(fd[1], "r", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    char c = 0;
    CHECK(read(fd[0], &c, 1) == 1 && c == 'r', "child %d is ready", (int)pid);
    return pid;
}

static void test_stale_reader(const char *scratch)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/stale_reader", scratch);
    ldb_db *db = NULL;
    CHECK(ldb_db_init(path, NULL, 0, LDB_VAL_BF16, &db) == LDB_OK, "init: %s", ldb_db_errmsg(db));
    ldb_db_close(db);
    int fd[2];
    CHECK(pipe(fd) == 0, "pipe");
    /* a process that keeps the database open (a server, a long ingest): without one,
     * the next opener finds the lock file unused and resets its reader table anyway */
    pid_t holder = reader(path, 0, fd);
    pid_t child = reader(path, 1, fd); /* dies inside its transaction */
    kill(child, SIGKILL);
    int st;
    waitpid(child, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the reader was killed");
    CHECK(slots_of(path, child) == 1, "a killed reader keeps its slot until cleared (found %d)",
          slots_of(path, child));
    db = NULL;
    CHECK(ldb_db_open(path, LDB_OPEN_READ, &db) == LDB_OK, "open: %s", ldb_db_errmsg(db));
    ldb_db_close(db);
    CHECK(slots_of(path, child) == 0, "opening the database clears the dead reader's slot");
    CHECK(slots_of(path, holder) == 0, "the holder has no transaction");
    kill(holder, SIGKILL);
    waitpid(holder, &st, 0);
    close(fd[0]);
    close(fd[1]);
}

/* Issue 20, finding 2: LMDB leaves a page it allocated and freed in the same
 * transaction unwritten (loose pages, overflow pages handed back), so a sound file
 * can end before (last page + 1) x page size, with the missing pages on the free
 * list. Open must accept such a file, and refuse one cut into pages in use. */
static void test_short_file(const char *scratch)
{
    char path[4096], file[4200];
    snprintf(path, sizeof path, "%s/short_file", scratch);
    snprintf(file, sizeof file, "%s/data.mdb", path);
    ldb_db *db = NULL;
    CHECK(ldb_db_init(path, NULL, 0, LDB_VAL_BF16, &db) == LDB_OK, "init: %s", ldb_db_errmsg(db));
    ldb_db_close(db);
    MDB_env *env;
    MDB_txn *t;
    MDB_dbi d;
    static char big[100000];
    struct stat st;
    uint64_t seed = 7, need = 0;
    int shortened = 0;
    CHECK(!mdb_env_create(&env) && !mdb_env_set_maxdbs(env, 16 + 2 * LDB_MAX_DICTS) &&
          !mdb_env_set_mapsize(env, (size_t)1 << 30) && !mdb_env_open(env, path, MDB_NOTLS, 0644),
          "raw LMDB open");
    /* random puts and deletes, and a big value put and often deleted in the same
     * transaction, until a commit leaves the file short */
    for (int it = 0; it < 2000 && !shortened; it++) {
        if (mdb_txn_begin(env, NULL, 0, &t) || mdb_dbi_open(t, "scratch", MDB_CREATE, &d))
            break;
        for (int j = 0; j < 6; j++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            char kb[16];
            snprintf(kb, sizeof kb, "k%d", (int)(seed >> 33) % 50);
            MDB_val k = {strlen(kb), kb}, v = {(seed >> 20) % 3000 + 1, big};
            if ((seed >> 40) % 3 == 0)
                mdb_del(t, d, &k, NULL);
            else
                mdb_put(t, d, &k, &v, 0);
        }
        MDB_val k = {3, "big"}, v = {(seed >> 16) % sizeof big, big};
        mdb_put(t, d, &k, &v, 0);
        if ((seed >> 50) & 1)
            mdb_del(t, d, &k, NULL);
        if (mdb_txn_commit(t))
            break;
        MDB_envinfo in;
        MDB_stat ms;
        mdb_env_info(env, &in);
        mdb_env_stat(env, &ms);
        need = (in.me_last_pgno + 1) * (uint64_t)ms.ms_psize;
        shortened = stat(file, &st) == 0 && (uint64_t)st.st_size < need;
    }
    mdb_env_close(env);
    CHECK(shortened, "LMDB left no file shorter than its last page in 2000 commits");
    if (!shortened)
        return;
    db = NULL;
    CHECK(ldb_db_open(path, LDB_OPEN_READ, &db) == LDB_OK,
          "a file of %lld bytes whose pages up to %llu are free past its end opens: %s",
          (long long)st.st_size, (unsigned long long)need, ldb_db_errmsg(db));
    ldb_db_close(db);
    db = NULL;
    CHECK(ldb_db_open(path, LDB_OPEN_WRITE, &db) == LDB_OK, "and opens for writing: %s",
          ldb_db_errmsg(db));
    ldb_db_close(db);
    /* now cut into pages in use: the first data pages after the metas */
    CHECK(truncate(file, 3 * 4096) == 0, "truncate");
    db = NULL;
    CHECK(ldb_db_open(path, LDB_OPEN_READ, &db) == LDB_EFORMAT &&
          strstr(ldb_db_errmsg(db), "data.mdb is truncated: 12288 bytes"),
          "a file cut to 3 pages is refused: %s", ldb_db_errmsg(db));
    ldb_db_close(db);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_reliability SCRATCH\n");
        return 2;
    }
    test_stale_reader(argv[1]);
    test_short_file(argv[1]);
    return test_summary("test_reliability");
}
