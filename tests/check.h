/* check.h — the minimal test harness: CHECK counts and prints file:line with the
 * failing expression and a formatted explanation; test_summary prints the
 * "N passed, N failed" line that tests/run.sh adds up. */
#ifndef LDB_TESTS_CHECK_H
#define LDB_TESTS_CHECK_H

#include <stdio.h>

static int t_pass, t_fail;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) {                                                             \
            t_pass++;                                                           \
        } else {                                                                \
            t_fail++;                                                           \
            fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

static inline int test_summary(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, t_pass, t_fail);
    return t_fail ? 1 : 0;
}

#endif
