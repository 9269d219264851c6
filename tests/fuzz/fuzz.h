/*
 * fuzz.h - what the fuzz targets of tests/fuzz/ share: the libFuzzer entry point they define,
 * and small helpers to cut an input into parts and to hand a file-reading parser its input.
 *
 * Every target is built twice: with libFuzzer (./configure --enable-fuzzing, tests/fuzz/run.sh)
 * and with replay.c as its main, which runs it on the seed corpus and the regression inputs
 * under `make check`, so an input that once crashed or hung stays a test.
 */
#ifndef JP_FUZZ_H
#define JP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A malloc'd NUL-terminated copy of the len bytes at p (aborts when out of memory). */
char *fz_strndup(const uint8_t *p, size_t len);

/* Cuts [*data, *data + *size) at the first occurrence of sep: the part before it is returned
 * (malloc'd, NUL-terminated, its length in *len) and *data, *size are moved past the separator;
 * with no separator, everything is returned and *size becomes 0. */
char *fz_cut(const uint8_t **data, size_t *size, const char *sep, size_t *len);

/* A private directory for the target's files, made once (0700, under $TMPDIR or /tmp) and
 * removed at exit. */
const char *fz_dir(void);

/* Writes len bytes to dir/name (mode 0600, replaced), aborts on failure; returns the path
 * (static storage, valid until the next call). */
const char *fz_write(const char *name, const void *p, size_t len);

#endif
