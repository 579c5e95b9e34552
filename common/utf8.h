/* utf8.h — UTF-8 read as the WHATWG Encoding Standard (and so a TextDecoder) reads
 * it: a valid sequence is the shortest form of a scalar value (no overlongs, no
 * surrogates, nothing above U+10FFFF), and each maximal invalid subsequence reads
 * as one U+FFFD. One reader for the tokenizer, labels and the CLI's output. */
#ifndef LDB_COMMON_UTF8_H
#define LDB_COMMON_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "latentdb.h" /* LDB_UTF8_BAD, ldb_utf8_next, ldb_utf8_check */

/* A control character: C0 (U+0000..U+001F), DEL or C1 (U+0080..U+009F). */
static inline int ldb_utf8_is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Rewrites p[0..n) as valid UTF-8 the way a WHATWG TextDecoder does (each
 * maximal invalid subsequence -> U+FFFD) into a malloc'd, NUL-terminated *out
 * of *outlen bytes, which the caller frees. LDB_OK or LDB_ENOMEM. */
int ldb_utf8_sanitize(const uint8_t *p, size_t n, uint8_t **out, size_t *outlen);

#endif
