/*
 * test_catalog_sqlite.c - src/catalog/catalog-sqlite.c, the SQLite engine behind catalog-engine.h, and
 * the engine registry in catalog.c: locations (plain path, sqlite: URLs, unknown schemes),
 * statements with bound values, identifier checks and quoting, upserts, a busy database as
 * JP_RETRY, the schema's DDL and version, WAL after a migration.  Checked with the test's own
 * SQLite connection.
 */
#include "config.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <unistd.h>

#include "testlib.h"

#include "catalog-engine.h"
#include "catalog.h"
#include "util.h"

static const struct jp_catalog_engine *E = &jp_catalog_sqlite;
static char *dir;
static char *db;

static void
setup(void)
{
	dir = t_tempdir();
	db = t_path(dir, "cat.db");
}

static void
teardown(void)
{
	t_rmtree(dir);
	free(db);
	free(dir);
	db = dir = NULL;
}

static struct jp_cat_conn *
conn_open(const char *loc, int flags, int timeout_ms, int (*stop)(void))
{
	struct jp_cat_open how = {flags, timeout_ms, stop};
	struct jp_cat_conn *c = NULL;
	struct jp_error e;
	int r;

	jp_error_clear(&e);
	r = E->open(loc, &how, &c, &e);
	ck_assert_msg(r == JP_OK, "open %s: %d %s", loc, e.code, e.msg);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_eq(c->engine, E);
	return c;
}

static void
exec_ok(struct jp_cat_conn *c, const char *sql)
{
	int r = E->exec(c, sql);

	ck_assert_msg(r == JP_OK, "%s: %s", sql, c->err.msg);
}

/* ---- locations ---- */

/* A plain path, "sqlite:PATH" and "sqlite:///PATH" are one file; "my:cat.db" is a file too. */
START_TEST(test_engine_for_locations)
{
	ck_assert_ptr_eq(jp_catalog_engine_for("jobpub.db"), E);
	ck_assert_ptr_eq(jp_catalog_engine_for("/var/lib/jobpub/cat.db"), E);
	ck_assert_ptr_eq(jp_catalog_engine_for("sqlite:cat.db"), E);
	ck_assert_ptr_eq(jp_catalog_engine_for("SQLite:///var/cat.db"), E);
	ck_assert_ptr_eq(jp_catalog_engine_for("my:cat.db"), E);
	ck_assert_ptr_eq(jp_catalog_engine_for("./postgresql://x"), E);
	ck_assert_ptr_null(jp_catalog_engine_for("postgresql://node1/jobs"));
	ck_assert_ptr_null(jp_catalog_engine_for("mariadb://node1/jobs"));
	ck_assert_str_eq(jp_catalog_default_location(), "jobpub.db");
}
END_TEST

START_TEST(test_open_by_url)
{
	char *rel, *abs_url = jp_asprintf("sqlite://%s", db);
	struct jp_cat_conn *c;
	char cwd[4096];

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(dir), 0);
	rel = "sqlite:cat.db";
	c = conn_open(rel, 0, 1000, NULL); /* creates ./cat.db */
	exec_ok(c, "CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('by relative URL')");
	E->close(c);
	ck_assert_int_eq(chdir(cwd), 0);
	t_sql_eq(db, "by relative URL", "SELECT x FROM t");
	c = conn_open(abs_url, JP_CAT_OPEN_NOCREATE, 1000, NULL);
	exec_ok(c, "INSERT INTO t VALUES ('by absolute URL')");
	E->close(c);
	c = conn_open(db, JP_CAT_OPEN_READONLY, 1000, NULL);
	E->close(c);
	t_sql_eq(db, "2", "SELECT count(*) FROM t");
	free(abs_url);
}
END_TEST

/* SQLite has no host: sqlite://HOST/PATH is refused, and opens nothing. */
START_TEST(test_open_url_with_host)
{
	struct jp_cat_open how = {0, 1000, NULL};
	struct jp_cat_conn *c = NULL;
	struct jp_error e;
	char why[128];
	int r;

	jp_error_clear(&e);
	r = E->open("sqlite://node1/tmp/x.db", &how, &c, &e);
	ck_assert_int_eq(r, JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_CONFIG);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(e.msg, "no host") != NULL, "%s", e.msg);
	ck_assert_int_eq(E->check("sqlite://node1/tmp/x.db", why, sizeof(why)), -1);
	ck_assert_msg(strstr(why, "no host") != NULL, "%s", why);
	ck_assert_int_eq(E->check("sqlite:///tmp/x.db", why, sizeof(why)), 0);
	jp_error_clear(&e);
	ck_assert_int_eq(jp_catalog_location_check("sqlite://node1/tmp/x.db", &e), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_CONFIG);
	ck_assert_int_eq(E->absolute("sqlite://node1/tmp/x.db"), 0);
	errno = 0;
	ck_assert_ptr_null(E->canonical("sqlite://node1/tmp/x.db"));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* A scheme no engine claims is a configuration error naming it, and creates no file. */
START_TEST(test_unknown_scheme)
{
	struct jp_catalog *cat = NULL;
	struct jp_error err;
	char why[128];
	int r;

	jp_error_clear(&err);
	r = jp_catalog_open("postgresql://node1/jobs", 1000, 0, &cat, &err);
	ck_assert_int_eq(r, JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	ck_assert_ptr_null(cat);
	ck_assert_str_eq(err.msg, "catalog: postgresql://node1/jobs: no catalogue engine for scheme "
	                          "'postgresql' (supported: sqlite:, or a file path)");
	ck_assert_int_eq(jp_catalog_exists("postgresql://node1/jobs", why, sizeof(why)), -1);
	errno = 0;
	ck_assert_ptr_null(jp_catalog_locator_canonical("postgresql://node1/jobs"));
	ck_assert_int_eq(errno, EPROTONOSUPPORT);
	ck_assert_int_eq(jp_catalog_locator_absolute("postgresql://node1/jobs"), 0);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_catalog_location_check("sqlite:x.db", &err), JP_OK);
	ck_assert_int_eq(jp_catalog_location_check("x:y.db", &err), JP_OK);
	ck_assert_int_eq(jp_catalog_location_check("x://y.db", &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
}
END_TEST

START_TEST(test_exists_canonical_absolute)
{
	char why[128] = "", *url = jp_asprintf("sqlite:%s", db), *p, *want;

	ck_assert_int_eq(E->exists(db, why, sizeof(why)), 0);
	ck_assert_str_eq(why, strerror(ENOENT));
	ck_assert_int_eq(jp_catalog_exists(url, why, sizeof(why)), 0);
	t_sql_exec(db, "CREATE TABLE t (x)");
	ck_assert_int_eq(E->exists(db, why, sizeof(why)), 1);
	ck_assert_int_eq(jp_catalog_exists(url, why, sizeof(why)), 1);
	/* The canonical name of a URL is the file's absolute path, as for the path itself. */
	want = realpath(db, NULL);
	p = jp_catalog_locator_canonical(url);
	ck_assert_str_eq(p, want);
	free(p);
	p = jp_catalog_locator_canonical(db);
	ck_assert_str_eq(p, want);
	free(p);
	ck_assert_int_eq(jp_catalog_locator_absolute(db), 1);
	ck_assert_int_eq(jp_catalog_locator_absolute(url), 1);
	ck_assert_int_eq(jp_catalog_locator_absolute("sqlite:rel.db"), 0);
	ck_assert_int_eq(jp_catalog_locator_absolute("rel.db"), 0);
	free(want);
	free(url);
}
END_TEST

/* A file that is not a database is found at open: 65, with SQLite's words. */
START_TEST(test_open_not_a_database)
{
	struct jp_cat_open how = {0, 1000, NULL};
	struct jp_cat_conn *c = NULL;
	struct jp_error e;

	t_write_str(dir, "cat.db", "this is not a database, just text long enough to be read\n"
	                           "..............................................................\n");
	jp_error_clear(&e);
	ck_assert_int_eq(E->open(db, &how, &c, &e), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_DATA);
	ck_assert_msg(strstr(e.msg, "not a database") != NULL, "%s", e.msg);
	ck_assert_ptr_null(c);
}
END_TEST

/* Read-only and no-create opens of a missing file fail and create nothing. */
START_TEST(test_open_missing_nocreate)
{
	struct jp_cat_open how = {JP_CAT_OPEN_NOCREATE, 1000, NULL};
	struct jp_cat_conn *c = NULL;
	struct jp_error e;

	jp_error_clear(&e);
	ck_assert_int_eq(E->open(db, &how, &c, &e), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_CONFIG);
	how.flags = JP_CAT_OPEN_READONLY;
	jp_error_clear(&e);
	ck_assert_int_eq(E->open(db, &how, &c, &e), JP_FAILED);
	ck_assert_int_eq(t_exists(dir, "cat.db"), 0);
}
END_TEST

/* ---- statements ---- */

START_TEST(test_statements)
{
	struct jp_cat_conn *c = conn_open(db, 0, 1000, NULL);
	struct jp_cat_stmt *st = NULL;

	exec_ok(c, "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, n INTEGER)");
	ck_assert_int_eq(E->prepare(c, "INSERT INTO t (s, n) VALUES (?, ?) RETURNING id", &st),
	                 JP_OK);
	jp_cat_bind_text(st, 1, "it's \"quoted\"; DROP TABLE t");
	jp_cat_bind_int(st, 2, INT64_C(1) << 40);
	ck_assert_int_eq(jp_cat_step(st), JP_CAT_ROW);
	ck_assert_int_eq(jp_cat_int(st, 0), 1);
	ck_assert_int_eq(jp_cat_step(st), JP_OK);
	jp_cat_reset(st);
	jp_cat_bind_text(st, 1, NULL); /* NULL text is SQL NULL */
	jp_cat_bind_null(st, 2);
	ck_assert_int_eq(jp_cat_step(st), JP_CAT_ROW);
	ck_assert_int_eq(jp_cat_int(st, 0), 2);
	ck_assert_int_eq(jp_cat_step(st), JP_OK);
	jp_cat_finalize(st);
	exec_ok(c, "UPDATE t SET s = s WHERE id > 0");
	ck_assert_int_eq(E->changes(c), 2);
	exec_ok(c, "UPDATE t SET s = s WHERE id > 5");
	ck_assert_int_eq(E->changes(c), 0);

	ck_assert_int_eq(E->prepare(c, "SELECT s, n FROM t ORDER BY id", &st), JP_OK);
	ck_assert_int_eq(E->column_count(st), 2);
	ck_assert_str_eq(E->column_name(st, 1), "n");
	ck_assert_int_eq(jp_cat_step(st), JP_CAT_ROW);
	ck_assert_str_eq(jp_cat_text(st, 0), "it's \"quoted\"; DROP TABLE t");
	ck_assert(jp_cat_int(st, 1) == INT64_C(1) << 40);
	ck_assert_int_eq(jp_cat_null(st, 0), 0);
	ck_assert_int_eq(jp_cat_step(st), JP_CAT_ROW);
	ck_assert_int_eq(jp_cat_null(st, 0), 1);
	ck_assert_int_eq(jp_cat_null(st, 1), 1);
	ck_assert_ptr_null(jp_cat_text(st, 0));
	ck_assert_int_eq(jp_cat_step(st), JP_OK);
	jp_cat_finalize(st);
	jp_cat_finalize(NULL);

	/* A bad statement: JP_FAILED and SQLite's message on the connection. */
	st = NULL;
	ck_assert_int_eq(E->prepare(c, "SELECT nosuchcol FROM t", &st), JP_FAILED);
	ck_assert_ptr_null(st);
	ck_assert_msg(strstr(c->err.msg, "no such column") != NULL, "%s", c->err.msg);
	ck_assert_int_eq(E->exec(c, "INSERT INTO nosuch VALUES (1)"), JP_FAILED);
	ck_assert_msg(strstr(c->err.msg, "no such table") != NULL, "%s", c->err.msg);
	E->close(c);
	E->close(NULL);
}
END_TEST

/* The first column of "SELECT name FROM table WHERE id = ?" with job bound by bind_key. */
static char *
name_for(struct jp_cat_conn *c, const char *sql, const char *job)
{
	struct jp_cat_stmt *st = NULL;
	char *v = NULL;

	ck_assert_int_eq(E->prepare(c, sql, &st), JP_OK);
	E->bind_key(st, 1, job);
	if (jp_cat_step(st) == JP_CAT_ROW)
		v = strdup(jp_cat_text(st, 0));
	jp_cat_finalize(st);
	return v;
}

/* A job ID matches an INTEGER key as a number and a TEXT key as written ("007" is not "7"). */
START_TEST(test_bind_key)
{
	struct jp_cat_conn *c = conn_open(db, 0, 1000, NULL);
	char *v;

	exec_ok(c, "CREATE TABLE ti (id INTEGER PRIMARY KEY, name TEXT);"
	           "INSERT INTO ti VALUES (7, 'seven');"
	           "CREATE TABLE tt (id TEXT PRIMARY KEY, name TEXT);"
	           "INSERT INTO tt VALUES ('7', 'text seven'), ('007', 'bond'), ('+5', 'plus five')");
	v = name_for(c, "SELECT name FROM ti WHERE id = ?", "7");
	ck_assert_str_eq(v, "seven");
	free(v);
	v = name_for(c, "SELECT name FROM tt WHERE id = ?", "7");
	ck_assert_str_eq(v, "text seven");
	free(v);
	v = name_for(c, "SELECT name FROM tt WHERE id = ?", "007");
	ck_assert_str_eq(v, "bond");
	free(v);
	v = name_for(c, "SELECT name FROM tt WHERE id = ?", "+5");
	ck_assert_str_eq(v, "plus five");
	free(v);
	ck_assert_ptr_null(name_for(c, "SELECT name FROM ti WHERE id = ?", "99999999999999999999"));
	E->close(c);
}
END_TEST

/* Transactions: a rollback undoes, a commit keeps. */
START_TEST(test_transactions)
{
	struct jp_cat_conn *c = conn_open(db, 0, 1000, NULL);

	exec_ok(c, "CREATE TABLE t (x)");
	ck_assert_int_eq(E->begin(c, 1), JP_OK);
	exec_ok(c, "INSERT INTO t VALUES (1)");
	E->rollback(c);
	ck_assert_int_eq(E->begin(c, 0), JP_OK);
	exec_ok(c, "INSERT INTO t VALUES (2)");
	ck_assert_int_eq(E->commit(c), JP_OK);
	E->rollback(c); /* nothing open: harmless */
	t_sql_eq(db, "2", "SELECT group_concat(x) FROM t");
	E->close(c);
}
END_TEST

/* ---- identifiers and dialect ---- */

START_TEST(test_quote_ident)
{
	char out[80], tiny[4];
	char long_name[70];

	ck_assert_int_eq(E->quote_ident("pdr_model_jobs", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "\"pdr_model_jobs\"");
	ck_assert_int_eq(E->quote_ident("_x9", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "\"_x9\"");
	ck_assert_int_eq(E->quote_ident("a\"b", out, sizeof(out)), -1);
	ck_assert_int_eq(E->quote_ident("x; DROP TABLE jobs", out, sizeof(out)), -1);
	ck_assert_int_eq(E->quote_ident("9lives", out, sizeof(out)), -1);
	ck_assert_int_eq(E->quote_ident("", out, sizeof(out)), -1);
	ck_assert_int_eq(E->quote_ident(NULL, out, sizeof(out)), -1);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	ck_assert_int_eq(E->quote_ident(long_name, out, sizeof(out)), -1);
	ck_assert_int_eq(E->quote_ident("abcd", tiny, sizeof(tiny)), -1);
}
END_TEST

/* The upsert replaces or keeps a row with the same key. */
START_TEST(test_upsert)
{
	static const char *const cols[] = {"k", "v"};
	struct jp_cat_conn *c = conn_open(db, 0, 1000, NULL);
	struct jp_cat_stmt *st = NULL;
	char *sql;
	int i;

	exec_ok(c, "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)");
	for (i = 0; i < 2; i++) {
		sql = E->upsert_sql("t", cols, 2, 1, i == 0 ? JP_CAT_REPLACE : JP_CAT_IGNORE);
		ck_assert_ptr_nonnull(sql);
		ck_assert_int_eq(E->prepare(c, sql, &st), JP_OK);
		free(sql);
		jp_cat_bind_text(st, 1, "a");
		jp_cat_bind_text(st, 2, "first");
		ck_assert_int_eq(jp_cat_step(st), JP_OK);
		jp_cat_reset(st);
		jp_cat_bind_text(st, 1, "a");
		jp_cat_bind_text(st, 2, "second");
		ck_assert_int_eq(jp_cat_step(st), JP_OK);
		jp_cat_finalize(st);
		t_sql_eq(db, "1", "SELECT count(*) FROM t");
		/* REPLACE: the later row wins; IGNORE (after a reset to "x"): the row stays. */
		t_sql_eq(db, i == 0 ? "second" : "x", "SELECT v FROM t WHERE k = 'a'");
		exec_ok(c, "UPDATE t SET v = 'x'");
	}
	E->close(c);
}
END_TEST

/* ---- busy ---- */

static sqlite3 *
lock_db(void)
{
	sqlite3 *h = t_sql_open(db);

	ck_assert_int_eq(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	return h;
}

static void
unlock_db(sqlite3 *h)
{
	sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(h);
}

/* A write lock held elsewhere past the timeout is JP_RETRY / 75, after about the timeout. */
START_TEST(test_busy_is_retry)
{
	struct jp_cat_conn *c;
	sqlite3 *h;
	int64_t t0, waited;

	t_sql_exec(db, "CREATE TABLE t (x)");
	c = conn_open(db, 0, 200, NULL);
	h = lock_db();
	t0 = jp_now_ms();
	ck_assert_int_eq(E->begin(c, 1), JP_RETRY);
	waited = jp_now_ms() - t0;
	ck_assert_int_eq(c->err.code, JP_E_TEMPFAIL);
	ck_assert_msg(strstr(c->err.msg, "locked") != NULL, "%s", c->err.msg);
	ck_assert_msg(waited >= 150 && waited < 3000, "waited %lld ms", (long long)waited);
	/* A plain write without BEGIN IMMEDIATE meets the same lock: also JP_RETRY. */
	ck_assert_int_eq(E->exec(c, "INSERT INTO t VALUES (1)"), JP_RETRY);
	unlock_db(h);
	ck_assert_int_eq(E->begin(c, 1), JP_OK);
	E->rollback(c);
	E->close(c);
}
END_TEST

static int stops;

static int
stop_now(void)
{
	stops++;
	return 1;
}

/* stop() ends the wait at once, long before the timeout. */
START_TEST(test_busy_stop)
{
	struct jp_cat_conn *c;
	sqlite3 *h;
	int64_t t0;

	t_sql_exec(db, "CREATE TABLE t (x)");
	c = conn_open(db, 0, 60000, stop_now);
	h = lock_db();
	stops = 0;
	t0 = jp_now_ms();
	ck_assert_int_eq(E->begin(c, 1), JP_RETRY);
	ck_assert_int_lt(jp_now_ms() - t0, 2000);
	ck_assert_int_gt(stops, 0);
	unlock_db(h);
	E->close(c);
}
END_TEST

/* ---- schema ---- */

/* The migrations make jobpub's tables at the version catalog.h names; the own table, the
 * version, table_columns and table_exists read them back; WAL follows a migration. */
START_TEST(test_schema)
{
	struct jp_cat_conn *c = conn_open(db, 0, 1000, NULL);
	char **cols = NULL, *mode;
	size_t n = 0, i;
	int v = -1, etag = 0, k;

	ck_assert_int_eq(E->n_migrations, JP_SCHEMA_VERSION);
	ck_assert_int_eq(E->schema_version(c, &v), JP_OK);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(E->table_exists(c, "jobpub_files"), 0);
	ck_assert_int_eq(E->table_columns(c, "jobpub_files", &cols, &n), JP_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(E->begin(c, 1), JP_OK);
	for (k = 0; k < E->n_migrations; k++) {
		exec_ok(c, E->migrations[k]);
		ck_assert_int_eq(E->set_schema_version(c, k + 1), JP_OK);
	}
	exec_ok(c, E->own_table);
	exec_ok(c, E->own_table); /* IF NOT EXISTS */
	ck_assert_int_eq(E->commit(c), JP_OK);
	E->migrated(c, 0);
	ck_assert_int_eq(E->schema_version(c, &v), JP_OK);
	ck_assert_int_eq(v, JP_SCHEMA_VERSION);
	ck_assert_int_eq(t_sql_int(db, "PRAGMA user_version", (const char *)NULL), JP_SCHEMA_VERSION);
	ck_assert_int_eq(E->table_exists(c, "jobpub_files"), 1);
	ck_assert_int_eq(E->table_exists(c, "jobs"), 1);
	ck_assert_int_eq(E->table_exists(c, "jobpub_attempts_job"), 0); /* an index */
	ck_assert_int_eq(E->table_columns(c, "jobpub_files", &cols, &n), JP_OK);
	ck_assert_uint_eq(n, 13);
	ck_assert_str_eq(cols[0], "job");
	for (i = 0; i < n; i++) {
		etag |= strcmp(cols[i], "etag") == 0;
		free(cols[i]);
	}
	free(cols);
	ck_assert_int_eq(etag, 1);
	/* The table name is bound, never pasted. */
	ck_assert_int_eq(E->table_columns(c, "jobs') --", &cols, &n), JP_OK);
	ck_assert_uint_eq(n, 0);
	mode = t_sql_text(db, "PRAGMA journal_mode", (const char *)NULL);
	ck_assert_str_eq(mode, "wal");
	free(mode);
	/* A second migration attempt would fail: the DDL is not idempotent, the version guards
	 * it (catalog.c reads it under the write lock). */
	ck_assert_int_eq(E->exec(c, E->migrations[0]), JP_FAILED);
	ck_assert(E->duplicate_column(c) == 0);
	ck_assert_int_eq(E->exec(c, "ALTER TABLE jobs ADD COLUMN status TEXT"), JP_FAILED);
	ck_assert_int_eq(E->duplicate_column(c), 1);
	E->close(c);
}
END_TEST

/* The domain over the engine: jp_catalog_open by sqlite: URL is the same catalogue. */
START_TEST(test_catalog_open_url)
{
	static const struct jp_jobtable own = {"jobs", "id", "status", 0, NULL};
	char *url = jp_asprintf("sqlite:%s", db);
	struct jp_catalog *cat = NULL;
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	r = jp_catalog_open(url, 1000, 0, &cat, &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	r = jp_catalog_prepare(cat, &own, NULL, 0, &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	jp_catalog_close(cat);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'jobs'",
	                           (const char *)NULL),
	                 1);
	free(url);
}
END_TEST

static int
count_file(void *arg, const char *job, const struct jp_file_info *f)
{
	(void)job;
	(void)f;
	(*(int *)arg)++;
	return 0;
}

/* The domain's optional filters (no "? IS NULL OR", which PostgreSQL cannot type): published
 * since a time or ever, the files of one job or of all. */
START_TEST(test_optional_filters)
{
	static const struct jp_jobtable own = {"jobs", "id", "status", 0, "published"};
	static const struct jp_file_rec f = {
		.output = "out",
		.local = "out.txt",
		.remote = "file:///a/out.txt",
		.sha256 = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
		.size = 3,
	};
	struct jp_outcome ok = {"published", 0, NULL, 3, 1, 1, NULL, 0};
	struct jp_catalog *cat = NULL;
	struct jp_error err;
	const char *jobs[] = {"j1", "j2"};
	char took[128];
	int64_t id;
	int i, n;

	jp_error_clear(&err);
	ck_assert_int_eq(jp_catalog_open(db, 1000, 0, &cat, &err), JP_OK);
	ck_assert_int_eq(jp_catalog_prepare(cat, &own, NULL, 0, &err), JP_OK);
	for (i = 0; i < 2; i++) {
		struct jp_attempt a = {jobs[i], i ? "t2" : "t1", "node1", 1, NULL, NULL, NULL, NULL, 0};

		ck_assert_msg(jp_catalog_begin(cat, &own, &a, 60, &id, took, sizeof(took), &err) == JP_OK,
		              "%s", err.msg);
		if (i == 0)
			ck_assert_msg(jp_catalog_record_success(cat, &own, "j1", id, "published", &f, 1, &ok,
			                                        &err) == JP_OK,
			              "%s", err.msg);
	}
	ck_assert_int_eq(jp_catalog_published_since(cat, "j1", NULL), 1);
	ck_assert_int_eq(jp_catalog_published_since(cat, "j1", "2000-01-01T00:00:00Z"), 1);
	ck_assert_int_eq(jp_catalog_published_since(cat, "j1", "2999-01-01T00:00:00Z"), 0);
	ck_assert_int_eq(jp_catalog_published_since(cat, "j2", NULL), 0);
	ck_assert_int_eq(jp_catalog_published_since(NULL, "j1", NULL), 0);
	n = 0;
	ck_assert_int_eq(jp_catalog_files(cat, NULL, count_file, &n, &err), JP_OK);
	ck_assert_int_eq(n, 1);
	n = 0;
	ck_assert_int_eq(jp_catalog_files(cat, "j1", count_file, &n, &err), JP_OK);
	ck_assert_int_eq(n, 1);
	n = 0;
	ck_assert_int_eq(jp_catalog_files(cat, "j2", count_file, &n, &err), JP_OK);
	ck_assert_int_eq(n, 0);
	jp_catalog_close(cat);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("catalog-sqlite");
	TCase *tc;

	tc = tcase_create("locations");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_engine_for_locations);
	tcase_add_test(tc, test_open_by_url);
	tcase_add_test(tc, test_open_url_with_host);
	tcase_add_test(tc, test_unknown_scheme);
	tcase_add_test(tc, test_exists_canonical_absolute);
	tcase_add_test(tc, test_open_not_a_database);
	tcase_add_test(tc, test_open_missing_nocreate);
	tcase_add_test(tc, test_catalog_open_url);
	tcase_add_test(tc, test_optional_filters);
	suite_add_tcase(s, tc);

	tc = tcase_create("statements");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_statements);
	tcase_add_test(tc, test_transactions);
	tcase_add_test(tc, test_bind_key);
	tcase_add_test(tc, test_quote_ident);
	tcase_add_test(tc, test_upsert);
	suite_add_tcase(s, tc);

	tc = tcase_create("busy");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_busy_is_retry);
	tcase_add_test(tc, test_busy_stop);
	suite_add_tcase(s, tc);

	tc = tcase_create("schema");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_schema);
	suite_add_tcase(s, tc);

	return t_run(s);
}
