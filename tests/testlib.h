/*
 * testlib.h - helpers shared by the check unit tests: a temp dir per test, small files.
 *
 * Header-only (static functions) so each test program stays one file named after the source
 * file it tests.  Every helper aborts the test with ck_abort_msg on failure.
 */
#ifndef JP_TESTLIB_H
#define JP_TESTLIB_H

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh directory under $TMPDIR (or /tmp), created 0700.  Caller frees and removes it with
 * t_rmtree. */
static inline char *
t_tempdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (asprintf(&p, "%s/jobpub-test.XXXXXX", base && *base ? base : "/tmp") < 0)
		ck_abort_msg("out of memory");
	if (mkdtemp(p) == NULL)
		ck_abort_msg("mkdtemp: %s", strerror(errno));
	return p;
}

static inline int
t_rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP || type == FTW_D)
		chmod(path, 0700), rmdir(path);
	else
		unlink(path);
	return 0;
}

/* rm -rf dir (making unreadable directories readable first is left to the test). */
static inline void
t_rmtree(const char *dir)
{
	if (dir != NULL)
		nftw(dir, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* path joined under dir; caller frees. */
static inline char *
t_path(const char *dir, const char *rel)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, rel) < 0)
		ck_abort_msg("out of memory");
	return p;
}

/* Creates parent directories of path (mkdir -p of dirname). */
static inline void
t_mkparents(const char *path)
{
	char *p = strdup(path), *s;

	for (s = p + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		mkdir(p, 0755);
		*s = '/';
	}
	free(p);
}

/* Writes len bytes of data to dir/rel (parents created). */
static inline void
t_write(const char *dir, const char *rel, const void *data, size_t len)
{
	char *p = t_path(dir, rel);
	FILE *fp;

	t_mkparents(p);
	if ((fp = fopen(p, "wb")) == NULL)
		ck_abort_msg("fopen %s: %s", p, strerror(errno));
	if (len > 0 && fwrite(data, 1, len, fp) != len)
		ck_abort_msg("fwrite %s", p);
	fclose(fp);
	free(p);
}

static inline void
t_write_str(const char *dir, const char *rel, const char *s)
{
	t_write(dir, rel, s, strlen(s));
}

/* Reads dir/rel whole into a malloc'd NUL-terminated buffer; *len gets the size.  NULL when the
 * file does not exist. */
static inline char *
t_read(const char *dir, const char *rel, size_t *len)
{
	char *p = t_path(dir, rel), *buf = NULL;
	struct stat sb;
	FILE *fp = fopen(p, "rb");

	if (fp != NULL && fstat(fileno(fp), &sb) == 0) {
		buf = malloc((size_t)sb.st_size + 1);
		if (buf == NULL || fread(buf, 1, (size_t)sb.st_size, fp) != (size_t)sb.st_size)
			ck_abort_msg("read %s", p);
		buf[sb.st_size] = '\0';
		if (len)
			*len = (size_t)sb.st_size;
	}
	if (fp)
		fclose(fp);
	free(p);
	return buf;
}

static inline int
t_exists(const char *dir, const char *rel)
{
	char *p = t_path(dir, rel);
	struct stat sb;
	int r = lstat(p, &sb) == 0;

	free(p);
	return r;
}

/* Counts entries below dir whose base name starts with prefix (recursively). */
static size_t t_count_n;
static const char *t_count_prefix;
static inline int
t_count_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	if (strncmp(path + ftw->base, t_count_prefix, strlen(t_count_prefix)) == 0)
		t_count_n++;
	return 0;
}
static inline size_t
t_count_prefixed(const char *dir, const char *prefix)
{
	t_count_n = 0;
	t_count_prefix = prefix;
	nftw(dir, t_count_one, 16, FTW_PHYS);
	return t_count_n;
}

/* An in-memory FILE (open_memstream) whose text a test reads back with t_mem_text. */
struct t_mem {
	FILE *fp;
	char *buf;
	size_t len;
};

static inline void
t_mem_open(struct t_mem *m)
{
	m->buf = NULL;
	m->len = 0;
	if ((m->fp = open_memstream(&m->buf, &m->len)) == NULL)
		ck_abort_msg("open_memstream: %s", strerror(errno));
}

/* Flushes and returns what was written so far (owned by m, valid until the next write). */
static inline const char *
t_mem_text(struct t_mem *m)
{
	fflush(m->fp);
	return m->buf != NULL ? m->buf : "";
}

static inline void
t_mem_close(struct t_mem *m)
{
	if (m->fp != NULL)
		fclose(m->fp);
	free(m->buf);
	m->fp = NULL;
	m->buf = NULL;
}

/* A strict JSON (RFC 8259) syntax check of one value, whitespace around it allowed.  Returns 1
 * when s[0..len) is exactly one valid JSON value. */
static inline int t_json_value(const char **p, const char *end, int depth);

static inline void
t_json_ws(const char **p, const char *end)
{
	while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r'))
		(*p)++;
}

static inline int
t_json_string(const char **p, const char *end)
{
	if (*p >= end || **p != '"')
		return 0;
	for ((*p)++; *p < end; (*p)++) {
		unsigned char c = (unsigned char)**p;
		if (c == '"') {
			(*p)++;
			return 1;
		}
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			if (++(*p) >= end)
				return 0;
			if (**p == 'u') {
				int i;
				for (i = 0; i < 4; i++)
					if (++(*p) >= end || strchr("0123456789abcdefABCDEF", **p) == NULL ||
					    **p == '\0')
						return 0;
			} else if (strchr("\"\\/bfnrt", **p) == NULL || **p == '\0') {
				return 0;
			}
		}
	}
	return 0;
}

static inline int
t_json_number(const char **p, const char *end)
{
	const char *s = *p;

	if (*p < end && **p == '-')
		(*p)++;
	if (*p < end && **p == '0')
		(*p)++;
	else if (*p < end && **p >= '1' && **p <= '9')
		while (*p < end && **p >= '0' && **p <= '9')
			(*p)++;
	else
		return 0;
	if (*p < end && **p == '.') {
		(*p)++;
		if (*p >= end || **p < '0' || **p > '9')
			return 0;
		while (*p < end && **p >= '0' && **p <= '9')
			(*p)++;
	}
	if (*p < end && (**p == 'e' || **p == 'E')) {
		(*p)++;
		if (*p < end && (**p == '+' || **p == '-'))
			(*p)++;
		if (*p >= end || **p < '0' || **p > '9')
			return 0;
		while (*p < end && **p >= '0' && **p <= '9')
			(*p)++;
	}
	return *p > s;
}

static inline int
t_json_container(const char **p, const char *end, int depth, char close)
{
	int first = 1;

	(*p)++;
	for (;;) {
		t_json_ws(p, end);
		if (*p < end && **p == close && first) {
			(*p)++;
			return 1;
		}
		if (close == '}') {
			if (!t_json_string(p, end))
				return 0;
			t_json_ws(p, end);
			if (*p >= end || **p != ':')
				return 0;
			(*p)++;
		}
		if (!t_json_value(p, end, depth + 1))
			return 0;
		t_json_ws(p, end);
		if (*p < end && **p == ',') {
			(*p)++;
			first = 0;
			continue;
		}
		if (*p < end && **p == close) {
			(*p)++;
			return 1;
		}
		return 0;
	}
}

static inline int
t_json_value(const char **p, const char *end, int depth)
{
	t_json_ws(p, end);
	if (*p >= end || depth > 64)
		return 0;
	switch (**p) {
	case '{': return t_json_container(p, end, depth, '}');
	case '[': return t_json_container(p, end, depth, ']');
	case '"': return t_json_string(p, end);
	case 't':
		if (end - *p >= 4 && memcmp(*p, "true", 4) == 0)
			return (*p += 4, 1);
		return 0;
	case 'f':
		if (end - *p >= 5 && memcmp(*p, "false", 5) == 0)
			return (*p += 5, 1);
		return 0;
	case 'n':
		if (end - *p >= 4 && memcmp(*p, "null", 4) == 0)
			return (*p += 4, 1);
		return 0;
	default: return t_json_number(p, end);
	}
}

static inline int
t_json_valid(const char *s, size_t len)
{
	const char *p = s, *end = s + len;

	if (!t_json_value(&p, end, 0))
		return 0;
	t_json_ws(&p, end);
	return p == end;
}

/* Runs a suite with check's runner; returns the process exit status (0 when all passed). */
static inline int
t_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ---- added helpers (not used by the older tests) ---- */

/* Writes len bytes of a repeating non-zero pattern (not a hole) to dir/rel, parents created. */
static inline void
t_write_pattern(const char *dir, const char *rel, size_t len, unsigned seed)
{
	char *p = t_path(dir, rel), buf[65536];
	size_t i, n;
	FILE *fp;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('A' + (i * 7 + seed) % 26);
	t_mkparents(p);
	if ((fp = fopen(p, "wb")) == NULL)
		ck_abort_msg("fopen %s: %s", p, strerror(errno));
	for (; len > 0; len -= n) {
		n = len < sizeof(buf) ? len : sizeof(buf);
		if (fwrite(buf, 1, n, fp) != n)
			ck_abort_msg("fwrite %s", p);
	}
	fclose(fp);
	free(p);
}

/* Number of entries (files and directories, recursively) below dir, dir itself excluded;
 * 0 when dir does not exist. */
static size_t t_entries_n;
static inline int
t_entries_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)path;
	(void)sb;
	(void)type;
	if (ftw->level > 0)
		t_entries_n++;
	return 0;
}
static inline size_t
t_count_entries(const char *dir)
{
	t_entries_n = 0;
	nftw(dir, t_entries_one, 16, FTW_PHYS);
	return t_entries_n;
}

#ifdef SQLITE_VERSION
/*
 * SQL helpers for checking a catalogue with the test's own connection (include <sqlite3.h>
 * before this header to get them).  Each opens db read-write (only t_sql_exec creates it),
 * waits up to 5 s for locks, and aborts the test on any SQLite error.
 */
static inline sqlite3 *
t_sql_open_flags(const char *db, int flags)
{
	sqlite3 *h = NULL;

	if (sqlite3_open_v2(db, &h, flags, NULL) != SQLITE_OK)
		ck_abort_msg("sqlite3_open %s: %s", db, h ? sqlite3_errmsg(h) : "?");
	sqlite3_busy_timeout(h, 5000);
	return h;
}

static inline sqlite3 *
t_sql_open(const char *db)
{
	return t_sql_open_flags(db, SQLITE_OPEN_READWRITE);
}

/* Runs one or more statements that return nothing (creates db when missing: fixtures). */
static inline void
t_sql_exec(const char *db, const char *sql)
{
	sqlite3 *h = t_sql_open_flags(db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	char *msg = NULL;

	if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
		ck_abort_msg("sql '%s' on %s: %s", sql, db, msg ? msg : "?");
	sqlite3_close(h);
}

/* First column of the first row as a malloc'd string; NULL when there is no row or the value
 * is SQL NULL.  Values are bound from the NULL-terminated varargs list of strings. */
static inline char *
t_sql_text(const char *db, const char *sql, ...)
{
	sqlite3 *h = t_sql_open(db);
	sqlite3_stmt *st = NULL;
	const char *a;
	char *out = NULL;
	va_list ap;
	int rc, i = 1;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		ck_abort_msg("prepare '%s' on %s: %s", sql, db, sqlite3_errmsg(h));
	va_start(ap, sql);
	while ((a = va_arg(ap, const char *)) != NULL)
		sqlite3_bind_text(st, i++, a, -1, SQLITE_TRANSIENT);
	va_end(ap);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		out = strdup((const char *)sqlite3_column_text(st, 0));
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ck_abort_msg("step '%s' on %s: %s", sql, db, sqlite3_errmsg(h));
	sqlite3_finalize(st);
	sqlite3_close(h);
	return out;
}

/* First column of the first row as an integer; -1 for no row or NULL. */
static inline long long
t_sql_int(const char *db, const char *sql, ...)
{
	sqlite3 *h = t_sql_open(db);
	sqlite3_stmt *st = NULL;
	const char *a;
	long long v = -1;
	va_list ap;
	int rc, i = 1;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		ck_abort_msg("prepare '%s' on %s: %s", sql, db, sqlite3_errmsg(h));
	va_start(ap, sql);
	while ((a = va_arg(ap, const char *)) != NULL)
		sqlite3_bind_text(st, i++, a, -1, SQLITE_TRANSIENT);
	va_end(ap);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ck_abort_msg("step '%s' on %s: %s", sql, db, sqlite3_errmsg(h));
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

/* Asserts that the text query (bound with the varargs) yields exactly want (NULL: no row or
 * SQL NULL). */
#define t_sql_eq(db, want, ...)                                                            \
	do {                                                                               \
		char *t_got_ = t_sql_text((db), __VA_ARGS__, (const char *)NULL);           \
		const char *t_want_ = (want);                                               \
		if (t_want_ == NULL)                                                       \
			ck_assert_msg(t_got_ == NULL, "%s: got '%s', want NULL", #__VA_ARGS__, \
			              t_got_);                                               \
		else                                                                       \
			ck_assert_msg(t_got_ != NULL && strcmp(t_got_, t_want_) == 0,        \
			              "%s: got '%s', want '%s'", #__VA_ARGS__,              \
			              t_got_ ? t_got_ : "(null)", t_want_);                  \
		free(t_got_);                                                              \
	} while (0)
#endif

#endif
