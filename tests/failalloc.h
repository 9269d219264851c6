/*
 * failalloc.h - makes one allocation of jobpub's own code fail, inside a unit test.
 *
 * A test program built with tests/failalloc.c and $(FAILALLOC_WRAP) (the linker's --wrap of
 * malloc, calloc, realloc, strdup, strndup, asprintf and vasprintf) routes those calls of its
 * statically linked code -- libjobpub and the test itself -- through a counter.  The shared
 * libraries' own allocations (SQLite, HDF5, libfyaml, libcurl, libc's internal ones) are not
 * counted and never fail: a sweep exercises jobpub's handling of its own allocation failures,
 * not a library's.  (tests/failshim.c does the same to the jobpub program, by LD_PRELOAD.)
 * Works unchanged under ASan: the real allocator is whatever the program was linked with.
 *
 * A sweep: for n = 1, 2, ...: t_fail_alloc(n), run the operation, t_fail_alloc(0); when
 * t_fail_alloc_fired() is 0 the operation made fewer than n allocations and the sweep is done.
 * The test's own code counts too (libcheck's included, when linked statically): arm only
 * around the calls under test, and make no ck_assert while armed.
 */
#ifndef JP_FAILALLOC_H
#define JP_FAILALLOC_H

/* Arms the failure: the n-th counted allocation from now on returns NULL with errno ENOMEM
 * (once; the later ones work).  0 disarms it. */
void t_fail_alloc(unsigned long n);

/* 1 when the failure armed by the last t_fail_alloc(n), n > 0, happened (disarming keeps
 * the answer). */
int t_fail_alloc_fired(void);

/* Counts one allocation for a wrapper a test adds of its own (an allocating library call such
 * as curl_easy_init, wrapped with --wrap): 1, errno ENOMEM, when it is the one to fail. */
int t_fail_alloc_count(void);

#endif
