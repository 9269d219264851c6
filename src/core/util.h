/*
 * util.h - small helpers shared by libjobpub: strings, names, time, SHA-256.
 */
#ifndef JP_UTIL_H
#define JP_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A NAME=VALUE pair from --set.  Both strings are owned by whoever built the array. */
struct jp_kv {
	const char *name;
	const char *value;
};

/* malloc'd printf; NULL when out of memory.  Caller frees. */
char *jp_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The absolute path of a file that may not exist yet: realpath() of it when it exists, else
 * the real path of its directory and its name.  The SQLite catalogue's canonical location
 * (jp_catalog_locator_canonical): spool entries record it and republish compares it, so every
 * command must compute it the same way.  malloc'd; NULL with errno set:
 * ENOENT its directory does not exist, EINVAL not a file name ("", ".", ".."), ENOMEM, or what
 * realpath() says. */
char *jp_db_abspath(const char *db);

/* 1 when s is an identifier: [A-Za-z_][A-Za-z0-9_]*, at most 64 bytes.  Used for SQL names and
 * template variable names; anything else from a manifest is refused before it reaches SQL. */
int jp_is_identifier(const char *s);

/* Lower-case hex of n bytes into out, which holds 2n+1 bytes. */
void jp_hex(const unsigned char *in, size_t n, char *out);

/* The n bytes of 2n lower-case hex digits into out.  0, or -1 (out unchanged) when hex is not
 * exactly that. */
int jp_unhex(const char *hex, unsigned char *out, size_t n);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ" in buf (at least 21 bytes); returns buf. */
char *jp_now_iso(char *buf, size_t len);

/* Monotonic milliseconds, for durations and rates. */
int64_t jp_now_ms(void);

/* Human size ("1.5 MiB") into buf; returns buf. */
char *jp_human_size(uint64_t n, char *buf, size_t len);

/* The wait before retry number tries+1 (tries from 0): 1 s, 2 s, 4 s ... at most 30 s, each a
 * random time between half and the whole of it (exponential backoff with jitter). */
int64_t jp_backoff_ms(int tries);

/* Parses a byte size: a whole number with an optional unit (K, KiB, M, MiB, G, GiB, T, TiB;
 * powers of 1024 all, k/M/G written either way).  0, or -1 when malformed or too large. */
int jp_parse_size(const char *s, uint64_t *out);

/* Random token of 16 lower-case hex characters (8 bytes from getrandom) into out[17].
 * Returns 0, or -1 when the kernel gives no randomness. */
int jp_random_token(char out[17]);

/* Streaming SHA-256 (OpenSSL EVP).  jp_sha256_init returns 0 or -1 (out of memory). */
struct jp_sha256 {
	void *ctx; /* EVP_MD_CTX */
};
int jp_sha256_init(struct jp_sha256 *h);
void jp_sha256_update(struct jp_sha256 *h, const void *buf, size_t len);
/* Writes 32 bytes to out and frees the context (init again to reuse). */
void jp_sha256_final(struct jp_sha256 *h, unsigned char out[32]);
/* Frees the context without a result (error paths); safe after final. */
void jp_sha256_free(struct jp_sha256 *h);

#endif
