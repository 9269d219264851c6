/*
 * util.c - small helpers shared by libjobpub.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

#include "util.h"

char *
jp_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

char *
jp_db_abspath(const char *db)
{
	char *copy, *slash, *dir, *out;
	const char *base;
	int e;

	if ((out = realpath(db, NULL)) != NULL || errno != ENOENT)
		return out;
	if ((copy = strdup(db)) == NULL)
		return NULL;
	if ((slash = strrchr(copy, '/')) == NULL) {
		base = copy;
		dir = realpath(".", NULL);
	} else {
		*slash = '\0';
		base = slash + 1;
		dir = realpath(copy[0] != '\0' ? copy : "/", NULL);
	}
	e = errno;
	if (dir != NULL && (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0))
		e = EINVAL;
	else if (dir != NULL && (out = jp_asprintf("%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/",
	                                         base)) == NULL)
		e = ENOMEM;
	free(dir);
	free(copy);
	if (out == NULL)
		errno = e;
	return out;
}

int
jp_is_identifier(const char *s)
{
	size_t i;

	if (s == NULL || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return 0;
	for (i = 1; s[i] != '\0'; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return 0;
	}
	return i <= 64;
}

void
jp_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

char *
jp_now_iso(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

int64_t
jp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *
jp_human_size(uint64_t n, char *buf, size_t len)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int u = 0;

	/* 1048575 B is "1.0 MiB", not "1024.0 KiB": round before choosing the unit. */
	while (v >= 1023.95 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

int
jp_random_token(char out[17])
{
	unsigned char b[8];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -1;
	jp_hex(b, sizeof(b), out);
	return 0;
}

int
jp_sha256_init(struct jp_sha256 *h)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	h->ctx = ctx;
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		h->ctx = NULL;
		return -1;
	}
	return 0;
}

void
jp_sha256_update(struct jp_sha256 *h, const void *buf, size_t len)
{
	EVP_DigestUpdate(h->ctx, buf, len);
}

void
jp_sha256_final(struct jp_sha256 *h, unsigned char out[32])
{
	unsigned int n = 32;

	EVP_DigestFinal_ex(h->ctx, out, &n);
	jp_sha256_free(h);
}

void
jp_sha256_free(struct jp_sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

int
jp_parse_size(const char *s, uint64_t *out)
{
	static const char *const units[] = {"", "K", "M", "G", "T"};
	unsigned long long v;
	char *end;
	size_t i;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	while (*end == ' ')
		end++;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t n = strlen(units[i]);

		if (strncasecmp(end, units[i], n) != 0)
			continue;
		if (!(end[n] == '\0' || (i > 0 && (strcasecmp(end + n, "iB") == 0 ||
		                                    strcasecmp(end + n, "B") == 0))))
			continue;
		if (i > 0 && v > (UINT64_MAX >> (10 * i)))
			return -1;
		*out = (uint64_t)v << (10 * i);
		return 0;
	}
	return -1;
}

int64_t
jp_backoff_ms(int tries)
{
	int64_t base = 1000LL << (tries < 5 ? tries : 5);
	unsigned int rnd = 0;

	if (base > 30000)
		base = 30000;
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = 0;
	return base / 2 + (int64_t)(rnd % (unsigned int)(base / 2 + 1));
}

int
jp_unhex(const char *hex, unsigned char *out, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (strlen(hex) != 2 * n || strspn(hex, digits) != 2 * n)
		return -1;
	for (i = 0; i < n; i++)
		out[i] = (unsigned char)((strchr(digits, hex[2 * i]) - digits) << 4 |
		                         (strchr(digits, hex[2 * i + 1]) - digits));
	return 0;
}
