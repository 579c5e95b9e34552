/* envcheck.c — what open checks of DB/data.mdb before anything reads it through
 * LMDB's map: the files' type, and a length that holds every page LMDB's newest
 * state uses (a page mapped past the end of the file is a SIGBUS). Invariant: the
 * file is read here with pread, bounds-checked, never through the map. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/mfile.h"
#include "db_impl.h"

/* LMDB 0.9's page layout (mdb.c; data format version 1): a 16-byte page header
 * (pgno u64, pad u16, flags u16, lower u16 / upper u16 or the overflow page count
 * u32), then u16 node offsets; a node is lo u16, hi u16, flags u16, ksize u16, key,
 * data. The meta follows the header of pages 0 and 1. */
enum { PHDR = 16, P_BRANCH = 1, P_LEAF = 2, P_OVERFLOW = 4, P_META = 8, F_BIGDATA = 1 };
enum { M_MAGIC = PHDR, M_FREE_ROOT = PHDR + 64, M_LAST_PG = PHDR + 120, M_TXNID = PHDR + 128,
       M_SIZE = PHDR + 136 }; /* offsets in a meta page */
#define MDB_MAGIC_V 0xBEEFC0DE
#define WALK_MAX_PAGES (1u << 22)

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

int ldb_env_precheck(ldb_db *db)
{
    static const char *files[] = {"data.mdb", "lock.mdb"};
    for (int i = 0; i < 2; i++) {
        char *p = ldb_path_join(db->path, files[i]);
        struct stat st;
        if (!p)
            return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        int r = stat(p, &st);
        free(p);
        if (r != 0 && errno == ENOENT && i == 0)
            return ldb_err_set(ldb_db_err(db), LDB_ENOTFOUND, "%s: no database here (no data.mdb; "
                               "create one with latentdb init)", db->path);
        if (r != 0 && errno == ENOENT)
            continue; /* lock.mdb: LMDB makes it */
        if (r != 0)
            return ldb_err_os(ldb_db_err(db), "%s/%s", db->path, files[i]);
        if (!S_ISREG(st.st_mode))
            return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: %s is %s, not a regular file; %s",
                               db->path, files[i], S_ISDIR(st.st_mode) ? "a folder"
                               : S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket"
                               : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "special",
                               i ? "remove it (LMDB makes a new one when no process has the "
                                   "database open)"
                                 : "restore data.mdb, the file LMDB wrote, from a copy");
        if (i == 0 && st.st_size == 0) /* LMDB would take it for a new environment */
            return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: data.mdb is truncated: 0 bytes; "
                               "restore it from a copy", db->path);
    }
    return LDB_OK;
}

typedef struct walk {
    int fd;
    uint64_t psize, npages;   /* whole pages the file holds */
    uint64_t lo, hi;          /* the pages past the end: [lo, hi] */
    uint64_t *got;            /* free pages in [lo, hi] */
    size_t n, cap;
    unsigned visited;
    uint8_t *page;
} walk;

static int rd_page(walk *w, uint64_t pg, uint8_t *buf, size_t len, size_t off)
{
    if (pg >= w->npages || off + len > (w->npages - pg) * w->psize)
        return -1; /* the free list itself lies past the end */
    return pread(w->fd, buf, len, (off_t)(pg * w->psize + off)) == (ssize_t)len ? 0 : -1;
}

static int note_free(walk *w, const uint8_t *idl, size_t len)
{
    if (len < 8)
        return -1;
    uint64_t n = rd64(idl);
    if (n > (len - 8) / 8)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t pg = rd64(idl + 8 + 8 * i);
        if (pg < w->lo || pg > w->hi)
            continue;
        if (w->n == w->cap) {
            size_t c = w->cap ? 2 * w->cap : 1024;
            uint64_t *g = realloc(w->got, c * sizeof *g);
            if (!g)
                return -2;
            w->got = g;
            w->cap = c;
        }
        w->got[w->n++] = pg;
    }
    return 0;
}

/* Collects the free pages of the free-list tree below pg; -1 when it cannot be
 * read (damaged, or past the end), -2 out of memory. */
static int walk_tree(walk *w, uint64_t pg, int depth)
{
    uint8_t *p = w->page + (size_t)depth * w->psize;
    if (depth >= 16 || ++w->visited > WALK_MAX_PAGES || rd_page(w, pg, p, w->psize, 0))
        return -1;
    uint16_t flags = rd16(p + 10), lower = rd16(p + 12);
    if (rd64(p) != pg || lower < PHDR || lower > w->psize || !(flags & (P_BRANCH | P_LEAF)))
        return -1;
    unsigned nk = (lower - PHDR) / 2;
    for (unsigned i = 0; i < nk; i++) {
        uint16_t off = rd16(p + PHDR + 2 * i);
        if (off < lower || (size_t)off + 8 > w->psize)
            return -1;
        const uint8_t *nd = p + off;
        uint64_t lohi = rd16(nd) | (uint64_t)rd16(nd + 2) << 16;
        uint16_t nf = rd16(nd + 4), ks = rd16(nd + 6);
        int rc;
        if (flags & P_BRANCH) {
            rc = walk_tree(w, lohi | (uint64_t)nf << 32, depth + 1);
        } else if (nf & F_BIGDATA) {
            uint8_t hdr[PHDR + 8];
            if ((size_t)off + 8 + ks + 8 > w->psize)
                return -1;
            uint64_t ov = rd64(nd + 8 + ks);
            if (ov >= w->npages || lohi + PHDR > (w->npages - ov) * w->psize)
                return -1; /* before allocating what a damaged node claims */
            uint8_t *buf = malloc(lohi ? lohi : 1);
            rc = !buf ? -2 : rd_page(w, ov, hdr, PHDR, 0) || !(rd16(hdr + 10) & P_OVERFLOW) ||
                        rd_page(w, ov, buf, lohi, PHDR) ? -1 : note_free(w, buf, lohi);
            free(buf);
        } else {
            if ((size_t)off + 8 + ks + lohi > w->psize)
                return -1;
            rc = note_free(w, nd + 8 + ks, lohi);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* 1 when every page of [lo, hi] is on the free list of the state whose meta page is m
 * (LMDB leaves pages it freed in the transaction that allocated them unwritten, so
 * a sound file may end before its last page), 0 when some page is not, -1 when the
 * free list cannot be read, -2 out of memory. */
static int tail_is_free(int fd, uint64_t psize, uint64_t size, const uint8_t *m, uint64_t lo,
                        uint64_t hi)
{
    walk w = {.fd = fd, .psize = psize, .npages = size / psize, .lo = lo, .hi = hi};
    uint64_t root = rd64(m + M_FREE_ROOT);
    if (root == ~(uint64_t)0)
        return 0; /* an empty free list */
    if (!(w.page = malloc(16 * psize)))
        return -2;
    int rc = walk_tree(&w, root, 0);
    if (!rc) {
        qsort(w.got, w.n, sizeof *w.got, cmp_u64);
        size_t u = 0;
        for (size_t i = 0; i < w.n; i++)
            if (!u || w.got[u - 1] != w.got[i])
                w.got[u++] = w.got[i];
        rc = u == hi - lo + 1;
    }
    free(w.got);
    free(w.page);
    return rc;
}

static int truncated(ldb_db *db, uint64_t size, uint64_t end)
{
    return ldb_err_set(ldb_db_err(db), LDB_EFORMAT, "%s: data.mdb is truncated: %llu bytes, LMDB's "
                       "last page ends at %llu; restore it from a copy", db->path,
                       (unsigned long long)size, (unsigned long long)end);
}

int ldb_env_check_size(ldb_db *db)
{
    MDB_envinfo info;
    MDB_stat st;
    struct stat fs;
    int fd, mrc;
    if ((mrc = mdb_env_info(db->env, &info)) || (mrc = mdb_env_stat(db->env, &st)) ||
        (mrc = mdb_env_get_fd(db->env, &fd)))
        return ldb_db_mdb_err(db, mrc, "cannot open");
    /* the size after the meta: a file only grows, and a commit writes its pages
     * before its meta, so a later size holds at least what that meta uses */
    if (fstat(fd, &fs))
        return ldb_err_os(ldb_db_err(db), "%s/data.mdb", db->path);
    uint64_t psize = st.ms_psize, end = ((uint64_t)info.me_last_pgno + 1) * psize;
    if ((uint64_t)fs.st_size >= end)
        return LDB_OK;
    /* Shorter: sound only if the missing pages are free in that state. Read its
     * meta and free list in a read transaction, which keeps a writer from reusing
     * their pages; a meta overwritten meanwhile (two commits) means a new try. */
    for (int attempt = 0; attempt < 8; attempt++) {
        MDB_txn *txn = NULL;
        uint8_t m[2][M_SIZE];
        if ((mrc = ldb_txn_begin(db, MDB_RDONLY, &txn)))
            return ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
        uint64_t id = mdb_txn_id(txn);
        int pick = -1;
        for (int i = 0; i < 2; i++)
            if (pread(fd, m[i], M_SIZE, (off_t)(i * psize)) == M_SIZE &&
                (rd16(m[i] + 10) & P_META) && rd32(m[i] + M_MAGIC) == MDB_MAGIC_V &&
                rd64(m[i] + M_TXNID) == id)
                pick = i;
        if (pick < 0 || fstat(fd, &fs)) {
            ldb_txn_abort(db, txn);
            continue;
        }
        uint64_t last = rd64(m[pick] + M_LAST_PG), size = (uint64_t)fs.st_size;
        end = (last + 1) * psize;
        int r = size >= end ? 1 : tail_is_free(fd, psize, size, m[pick], size / psize, last);
        ldb_txn_abort(db, txn);
        if (r == -2)
            return ldb_err_set(ldb_db_err(db), LDB_ENOMEM, "out of memory");
        return r == 1 ? LDB_OK : truncated(db, size, end);
    }
    return truncated(db, (uint64_t)fs.st_size, end);
}
