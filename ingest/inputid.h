/* inputid.h — what identifies a run's input files (docs/FORMAT.md, "Run record"): a
 * cheap hash of sampled blocks for the run's key, the full content hash the record
 * keeps, and the file's stat signature that lets an untouched file skip rehashing. */
#ifndef LDB_INGEST_INPUTID_H
#define LDB_INGEST_INPUTID_H

#include <stddef.h>
#include <stdint.h>

#define LDB_STATSIG_LEN 96

/* "dev:ino:size:mtime_s.ns:ctime_s.ns" of path into sig (empty when stat fails).
 * ctime is set by the kernel at every write and metadata change, and cannot be set
 * back by a user (touch -r sets mtime, and so moves ctime). */
void ingest_statsig(const char *path, char sig[LDB_STATSIG_LEN]);

/* SHA-256 of the file's size, its first head bytes (the npy header) and 64 blocks of
 * 4 KiB spread evenly over it (the whole file up to 256 KiB): 260 KiB read whatever
 * the size. Tells different files apart cheaply; never proves two files equal. */
void ingest_sampled_hash(const uint8_t *data, uint64_t size, uint64_t head, uint8_t out[32]);

/* One pass over a mapped file on up to 8 threads. When content is not NULL, writes
 * the content hash: SHA-256 of (u64 LE size, then the SHA-256 of each 64 MiB piece
 * in order). When n_scan > 0, also finds the first NaN or Inf among the n_scan
 * elements of type dtype (LDB_F32/F16) at byte offset scan_off: *bad is its index,
 * or UINT64_MAX. Returns 0, or -1 when out of memory. */
int ingest_pass(const uint8_t *data, uint64_t size, uint8_t content[32], uint64_t scan_off,
                uint64_t n_scan, int dtype, uint64_t *bad);

/* 64 lowercase hex digits and a NUL. */
void ingest_hex(const uint8_t h[32], char hex[65]);

#endif
