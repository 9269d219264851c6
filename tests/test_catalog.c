/*
 * test_catalog.c - unit tests of src/catalog/catalog.c: schema creation and versioning, checking the
 * job table, loading the job's row, recording attempts, successes and failures (checked with
 * the test's own SQLite connection), quoting, a locked catalogue, and the status queries.
 */
#include "config.h"

#include <dlfcn.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

#include "catalog.h"
#include "log.h"
#include "util.h"

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

static struct jp_catalog *
open_ok(int timeout_ms)
{
	struct jp_catalog *c = NULL;
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	r = jp_catalog_open(db, timeout_ms, 0, &c, &err);
	ck_assert_msg(r == JP_OK, "open %s: %d %s", db, err.code, err.msg);
	ck_assert_ptr_nonnull(c);
	return c;
}

static const struct jp_jobtable own = {"jobs", "id", "status", 0};
static const struct jp_jobtable pdr = {"pdr_model_jobs", "id", "status", 1};

/* pdr_run's table, with job 7 in it. */
static void
make_pdr_table(void)
{
	t_sql_exec(db, "CREATE TABLE pdr_model_jobs (id INTEGER PRIMARY KEY, model_job_name TEXT,"
	               " status TEXT, output_textout_file TEXT, output_chemchk_file TEXT,"
	               " log_file TEXT);"
	               "INSERT INTO pdr_model_jobs VALUES (7, 'm7_n3', 'running', NULL, 'old.out',"
	               " 'log7');");
}

static void
prepare_ok(struct jp_catalog *c, const struct jp_jobtable *t, const char *const *cols, size_t n)
{
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	r = jp_catalog_prepare(c, t, cols, n, &err);
	ck_assert_msg(r == JP_OK, "prepare %s: %d %s", t->table, err.code, err.msg);
}

static int64_t
begin_ok(struct jp_catalog *c, const struct jp_jobtable *t, const char *job, const char *token)
{
	struct jp_attempt a = {job, token, "node17", 4242, "/m/manifest.yaml", "/w/job",
	                       "file:///archive", "{\"model\":\"m7\"}"};
	struct jp_error err;
	int64_t id = -1;
	int r;

	jp_error_clear(&err);
	r = jp_catalog_attempt_begin(c, t, &a, &id, &err);
	ck_assert_msg(r == JP_OK, "attempt_begin: %d %s", err.code, err.msg);
	ck_assert_int_gt(id, 0);
	return id;
}

static char *
idstr(int64_t id)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long)id);
	return buf;
}

/* Two files mapped to two columns, as publish.c records them. */
static const struct jp_file_rec two_files[] = {
	{"textout", "output_textout_file", "pdroutput/TEXTOUT", "file:///archive/TEXTOUTm7",
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1234},
	{"chemchk", "output_chemchk_file", "pdroutput/chemchk.out", "file:///archive/chemchkm7.out",
	 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 99},
};
static const char *const two_cols[] = {"output_textout_file", "output_chemchk_file"};

/* ---------------------------------------------------------------- open */

/* Opening only reads; the first write for jobpub's own table (prepare) makes the schema. */
START_TEST(test_open_creates_schema)
{
	struct jp_catalog *c;

	ck_assert(!t_exists(dir, "cat.db"));
	c = open_ok(1000);
	ck_assert_int_eq(jp_catalog_readonly(c), 0);
	ck_assert_int_eq(jp_catalog_empty(c), 1);
	prepare_ok(c, &own, NULL, 0);
	ck_assert_int_eq(jp_catalog_empty(c), 0);
	jp_catalog_close(c);
	ck_assert(t_exists(dir, "cat.db"));
	ck_assert_int_eq(t_sql_int(db, "PRAGMA user_version", NULL), JP_SCHEMA_VERSION);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
	                               " AND name IN ('jobs', 'jobpub_files', 'jobpub_attempts', 'jobpub_attributes', 'jobpub_leases')",
	                           NULL),
	                 5);
	/* the columns the rest of jobpub relies on */
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM pragma_table_info('jobpub_files')"
	                               " WHERE name IN ('job', 'output', 'local_path', 'remote_url',"
	                               " 'size', 'sha256', 'published_at')",
	                           NULL),
	                 7);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM pragma_table_info('jobpub_attempts')"
	                               " WHERE name IN ('job', 'started_at', 'finished_at', 'host',"
	                               " 'pid', 'manifest', 'workdir', 'destination', 'sets',"
	                               " 'outcome', 'error_class', 'message', 'bytes',"
	                               " 'duration_ms')",
	                           NULL),
	                 14);
	t_sql_eq(db, "wal", "PRAGMA journal_mode");
}
END_TEST

START_TEST(test_open_reopen_idempotent)
{
	struct jp_catalog *c = open_ok(1000);

	prepare_ok(c, &own, NULL, 0);
	jp_catalog_close(c);
	t_sql_exec(db, "INSERT INTO jobs (id, status, created_at, updated_at)"
	               " VALUES ('j1', 'published', 'x', 'y')");
	c = open_ok(1000);
	prepare_ok(c, &own, NULL, 0);
	jp_catalog_close(c);
	c = open_ok(1000);
	prepare_ok(c, &own, NULL, 0);
	jp_catalog_close(c);
	ck_assert_int_eq(t_sql_int(db, "PRAGMA user_version", NULL), JP_SCHEMA_VERSION);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
	                           NULL),
	                 5);
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = 'j1'");
}
END_TEST

START_TEST(test_open_newer_schema)
{
	struct jp_catalog *c = (struct jp_catalog *)1;
	struct jp_error err;
	int r;

	t_sql_exec(db, "CREATE TABLE future (x); PRAGMA user_version = 99");
	jp_error_clear(&err);
	r = jp_catalog_open(db, 1000, 0, &c, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	ck_assert_msg(strstr(err.msg, "99") != NULL, "message: %s", err.msg);
	/* not "migrated" down, nothing of ours added */
	ck_assert_int_eq(t_sql_int(db, "PRAGMA user_version", NULL), 99);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'jobs'",
	                           NULL),
	                 0);
}
END_TEST

/* Refusing a newer schema must leave the file as it was, journal mode included (WAL is
 * persistent and changes how every other program opens the file). */
START_TEST(test_open_newer_schema_untouched)
{
	struct jp_catalog *c = NULL;
	struct jp_error err;
	int r;

	t_sql_exec(db, "CREATE TABLE future (x); PRAGMA user_version = 99");
	t_sql_eq(db, "delete", "PRAGMA journal_mode");
	jp_error_clear(&err);
	r = jp_catalog_open(db, 1000, 0, &c, &err);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	ck_assert_int_ne(r, JP_OK);
	t_sql_eq(db, "delete", "PRAGMA journal_mode");
}
END_TEST

START_TEST(test_open_not_a_database)
{
	struct jp_catalog *c = (struct jp_catalog *)1;
	struct jp_error err;
	char junk[8192];
	size_t len = 0;
	char *back;
	int r;

	memset(junk, 'x', sizeof(junk));
	memcpy(junk, "this is a text file, not SQLite\n", 32);
	t_write(dir, "cat.db", junk, sizeof(junk));
	jp_error_clear(&err);
	r = jp_catalog_open(db, 1000, 0, &c, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_ptr_null(c);
	ck_assert_msg(err.code == JP_E_DATA, "class %d: %s", err.code, err.msg);
	ck_assert_msg(strncmp(err.msg, "catalog: ", 9) == 0, "message: %s", err.msg);
	back = t_read(dir, "cat.db", &len);
	ck_assert_uint_eq(len, sizeof(junk));
	ck_assert(memcmp(back, junk, sizeof(junk)) == 0);
	free(back);

	/* read-only too */
	jp_error_clear(&err);
	r = jp_catalog_open(db, 1000, 1, &c, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_msg(err.code == JP_E_DATA, "class %d: %s", err.code, err.msg);
}
END_TEST

START_TEST(test_open_readonly_missing)
{
	struct jp_catalog *c = (struct jp_catalog *)1;
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	r = jp_catalog_open(db, 1000, 1, &c, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(err.code, JP_E_NOINPUT);
	ck_assert_msg(strstr(err.msg, db) != NULL, "message: %s", err.msg);
	ck_assert(!t_exists(dir, "cat.db"));
}
END_TEST

START_TEST(test_open_readonly_changes_nothing)
{
	struct jp_catalog *c = NULL;
	struct jp_error err;
	int r;

	/* a database someone else made: a read-only open must not migrate it */
	t_sql_exec(db, "CREATE TABLE other (x)");
	jp_error_clear(&err);
	r = jp_catalog_open(db, 1000, 1, &c, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	ck_assert_int_eq(jp_catalog_readonly(c), 1);
	jp_catalog_close(c);
	ck_assert_int_eq(t_sql_int(db, "PRAGMA user_version", NULL), 0);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema", NULL), 1);
}
END_TEST

/* Issue 13, defect 5: a catalogue for an external table must exist: a typo in --db is 66
 * naming the path, and no file appears. */
START_TEST(test_open_existing_missing)
{
	struct jp_catalog *c = (struct jp_catalog *)1;
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	r = jp_catalog_open(db, 1000, JP_CATALOG_EXISTING, &c, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(err.code, JP_E_NOINPUT);
	ck_assert_msg(strstr(err.msg, db) != NULL, "message: %s", err.msg);
	ck_assert(!t_exists(dir, "cat.db"));
	/* an existing one opens */
	make_pdr_table();
	r = jp_catalog_open(db, 1000, JP_CATALOG_EXISTING, &c, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	jp_catalog_close(c);
}
END_TEST

/* A manifest naming a table or column the database lacks changes nothing: no jobpub tables,
 * schema version 0, same bytes. */
START_TEST(test_external_bad_mapping_changes_nothing)
{
	static const char *const bad[] = {"output_nosuch_file"};
	const struct jp_jobtable wrong = {"pdr_model_job", "id", "status", 1, NULL};
	struct jp_catalog *c;
	struct jp_error err;
	size_t len1 = 0, len2 = 0;
	char *before, *after;
	int r;

	make_pdr_table();
	before = t_read(dir, "cat.db", &len1);
	c = open_ok(1000);
	jp_error_clear(&err);
	r = jp_catalog_prepare(c, &wrong, NULL, 0, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	jp_error_clear(&err);
	r = jp_catalog_prepare(c, &pdr, NULL, 0, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	jp_error_clear(&err);
	r = jp_catalog_prepare(c, &pdr, bad, 1, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	jp_catalog_close(c);
	after = t_read(dir, "cat.db", &len2);
	ck_assert_uint_eq(len1, len2);
	ck_assert(memcmp(before, after, len1) == 0);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema", NULL), 1);
	free(before);
	free(after);
}
END_TEST

/* Issue 13, defect 6: a catalogue jobpub has not written yet (a fresh pdr_run database) reads
 * as empty: no error, nothing found, nothing written. */
static int
count_job(void *arg, const struct jp_job_brief *b)
{
	(void)b;
	++*(int *)arg;
	return 0;
}

static int
count_file(void *arg, const char *job, const struct jp_file_info *f)
{
	(void)job;
	(void)f;
	++*(int *)arg;
	return 0;
}

static int
count_url(void *arg, const char *url)
{
	(void)url;
	++*(int *)arg;
	return 0;
}

static void
count_status(void *arg, const char *table, const char *status, int64_t n)
{
	(void)table;
	(void)status;
	(void)n;
	++*(int *)arg;
}

START_TEST(test_read_unwritten_catalogue)
{
	struct jp_catalog *c = NULL;
	struct jp_job_info *ji = (struct jp_job_info *)1;
	struct jp_error err;
	size_t len1 = 0, len2 = 0;
	char *before, *after;
	int r, n = 0;

	make_pdr_table();
	before = t_read(dir, "cat.db", &len1);
	jp_error_clear(&err);
	r = jp_catalog_open(db, 1000, JP_CATALOG_READONLY, &c, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	ck_assert_int_eq(jp_catalog_empty(c), 1);
	ck_assert_int_eq(jp_catalog_job_info(c, "7", &ji, &err), JP_OK);
	ck_assert_ptr_null(ji);
	ck_assert_int_eq(jp_catalog_jobs(c, count_job, &n, &err), JP_OK);
	ck_assert_int_eq(jp_catalog_files(c, NULL, count_file, &n, &err), JP_OK);
	ck_assert_int_eq(jp_catalog_files(c, "7", count_file, &n, &err), JP_OK);
	ck_assert_int_eq(jp_catalog_destinations(c, count_url, &n, &err), JP_OK);
	ck_assert_int_eq(jp_catalog_status_counts(c, count_status, &n, &err), JP_OK);
	ck_assert_int_eq(jp_catalog_job_leased(c, "7"), 0);
	ck_assert_int_eq(jp_catalog_token_leased(c, "0123456789abcdef"), 0);
	ck_assert_int_eq(jp_catalog_lease_since(c, time(NULL)), 0);
	ck_assert_int_eq(n, 0);
	jp_catalog_close(c);
	after = t_read(dir, "cat.db", &len2);
	ck_assert_uint_eq(len1, len2);
	ck_assert(memcmp(before, after, len1) == 0);
	ck_assert_int_eq(t_count_entries(dir), 1);
	free(before);
	free(after);
}
END_TEST

/* ---------------------------------------------------------------- prepare */

START_TEST(test_prepare_own_adds_columns)
{
	static const char *const cols[] = {"output_a", "Output_B"};
	struct jp_catalog *c = open_ok(1000);

	prepare_ok(c, &own, cols, 2);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM pragma_table_info('jobs')"
	                               " WHERE name IN ('output_a', 'Output_B')",
	                           NULL),
	                 2);
	/* again: nothing to add, no "duplicate column" failure */
	prepare_ok(c, &own, cols, 2);
	jp_catalog_close(c);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM pragma_table_info('jobs')", NULL), 6);
}
END_TEST

START_TEST(test_prepare_external_missing_column)
{
	static const char *const cols[] = {"output_textout_file", "output_hdf4_file"};
	struct jp_catalog *c = open_ok(1000);
	struct jp_error err;
	int r;

	make_pdr_table();
	prepare_ok(c, &pdr, cols, 1);
	jp_error_clear(&err);
	r = jp_catalog_prepare(c, &pdr, cols, 2, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_msg(strstr(err.msg, "output_hdf4_file") != NULL, "message: %s", err.msg);
	ck_assert_msg(strstr(err.msg, "pdr_model_jobs") != NULL, "message: %s", err.msg);
	jp_catalog_close(c);
	/* an external table is never altered */
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM pragma_table_info('pdr_model_jobs')",
	                           NULL),
	                 6);
}
END_TEST

START_TEST(test_prepare_external_missing_status_column)
{
	static const struct jp_jobtable t = {"pdr_model_jobs", "id", "state", 1};
	struct jp_catalog *c = open_ok(1000);
	struct jp_error err;
	int r;

	make_pdr_table();
	jp_error_clear(&err);
	r = jp_catalog_prepare(c, &t, NULL, 0, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_msg(strstr(err.msg, "'state'") != NULL, "message: %s", err.msg);
	jp_catalog_close(c);
}
END_TEST

START_TEST(test_prepare_external_missing_table)
{
	static const struct jp_jobtable t = {"pdr_model_jobz", "id", "status", 1};
	struct jp_catalog *c = open_ok(1000);
	struct jp_error err;
	int r;

	make_pdr_table();
	jp_error_clear(&err);
	r = jp_catalog_prepare(c, &t, two_cols, 2, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_msg(strstr(err.msg, "pdr_model_jobz") != NULL, "message: %s", err.msg);
	jp_catalog_close(c);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE name ="
	                               " 'pdr_model_jobz'",
	                           NULL),
	                 0);
}
END_TEST

START_TEST(test_prepare_rejects_non_identifiers)
{
	static const struct jp_jobtable bad_table = {"jobs; DROP TABLE jobs", "id", "status", 1};
	static const struct jp_jobtable bad_id = {"jobs", "id\"--", "status", 0};
	static const char *const bad_cols[][1] = {{"a b"}, {"x\"y"}, {"1abc"}, {""},
	                                          {"c; DROP TABLE jobpub_files"}};
	struct jp_catalog *c = open_ok(1000);
	struct jp_error err;
	size_t i;
	int r;

	jp_error_clear(&err);
	r = jp_catalog_prepare(c, &bad_table, NULL, 0, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	jp_error_clear(&err);
	r = jp_catalog_prepare(c, &bad_id, NULL, 0, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	for (i = 0; i < sizeof(bad_cols) / sizeof(bad_cols[0]); i++) {
		jp_error_clear(&err);
		r = jp_catalog_prepare(c, &own, bad_cols[i], 1, &err);
		ck_assert_msg(r != JP_OK && err.code == JP_E_DATA, "column '%s': %d %d %s",
		              bad_cols[i][0], r, err.code, err.msg);
	}
	jp_catalog_close(c);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM pragma_table_info('jobs')", NULL), 4);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
	                           NULL),
	                 5);
}
END_TEST

/* ---------------------------------------------------------------- load_row */

START_TEST(test_load_row_external_unknown_job)
{
	struct jp_catalog *c = open_ok(1000);
	struct jp_row *row = (struct jp_row *)1;
	struct jp_error err;
	int r;

	make_pdr_table();
	jp_error_clear(&err);
	r = jp_catalog_load_row(c, &pdr, "8", &row, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_ptr_null(row);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_msg(strstr(err.msg, "unknown job") != NULL, "message: %s", err.msg);
	ck_assert_msg(strstr(err.msg, "8") != NULL, "message: %s", err.msg);
	jp_catalog_close(c);
}
END_TEST

START_TEST(test_load_row_external)
{
	struct jp_catalog *c = open_ok(1000);
	struct jp_row *row = NULL;
	struct jp_error err;
	int r, found = 0;

	make_pdr_table();
	jp_error_clear(&err);
	r = jp_catalog_load_row(c, &pdr, "7", &row, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	ck_assert_uint_eq(row->n, 6);
	ck_assert_str_eq(jp_row_get(row, "model_job_name", &found), "m7_n3");
	ck_assert_int_eq(found, 1);
	ck_assert_str_eq(jp_row_get(row, "id", &found), "7");
	ck_assert_ptr_null(jp_row_get(row, "output_textout_file", &found));
	ck_assert_int_eq(found, 1);
	jp_row_free(row);
	jp_catalog_close(c);
}
END_TEST

START_TEST(test_load_row_own_missing_is_nulls)
{
	struct jp_catalog *c = open_ok(1000);
	struct jp_row *row = NULL;
	struct jp_error err;
	size_t i;
	int r, found = 0;

	/* before the table exists: a row of nothing */
	jp_error_clear(&err);
	r = jp_catalog_load_row(c, &own, "never-seen", &row, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	ck_assert_uint_eq(row->n, 0);
	jp_row_free(row);
	prepare_ok(c, &own, NULL, 0);
	jp_error_clear(&err);
	r = jp_catalog_load_row(c, &own, "never-seen", &row, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	ck_assert_ptr_nonnull(row);
	ck_assert_uint_eq(row->n, 4);
	for (i = 0; i < row->n; i++)
		ck_assert_msg(row->values[i] == NULL, "%s = %s", row->names[i], row->values[i]);
	ck_assert_ptr_null(jp_row_get(row, "status", &found));
	ck_assert_int_eq(found, 1);
	jp_row_free(row);
	jp_catalog_close(c);
	/* loading never creates the row */
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobs", NULL), 0);
}
END_TEST

/* ---------------------------------------------------------------- recording */

START_TEST(test_record_success_own)
{
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome o = {"published", 0, NULL, 1333, 2, 57};
	struct jp_error err;
	int64_t id;
	int r;

	prepare_ok(c, &own, two_cols, 2);
	id = begin_ok(c, &own, "job-1", "0123456789abcdef");
	t_sql_eq(db, "running", "SELECT outcome FROM jobpub_attempts WHERE id = ?", idstr(id));
	t_sql_eq(db, "node17", "SELECT host FROM jobpub_attempts WHERE id = ?", idstr(id));
	t_sql_eq(db, "0123456789abcdef", "SELECT token FROM jobpub_attempts WHERE id = ?",
	         idstr(id));
	t_sql_eq(db, NULL, "SELECT finished_at FROM jobpub_attempts WHERE id = ?", idstr(id));

	jp_error_clear(&err);
	r = jp_catalog_record_success(c, &own, "job-1", id, "published", two_files, 2, &o, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	jp_catalog_close(c);

	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = 'job-1'");
	t_sql_eq(db, "file:///archive/TEXTOUTm7",
	         "SELECT output_textout_file FROM jobs WHERE id = 'job-1'");
	t_sql_eq(db, "file:///archive/chemchkm7.out",
	         "SELECT output_chemchk_file FROM jobs WHERE id = 'job-1'");
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobs WHERE created_at IS NOT NULL"
	                               " AND updated_at IS NOT NULL",
	                           NULL),
	                 1);

	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files WHERE job = 'job-1'",
	                           NULL),
	                 2);
	ck_assert_int_eq(t_sql_int(db, "SELECT size FROM jobpub_files WHERE output = 'textout'",
	                           NULL),
	                 1234);
	t_sql_eq(db, "file:///archive/TEXTOUTm7",
	         "SELECT remote_url FROM jobpub_files WHERE output = 'textout'");
	t_sql_eq(db, "pdroutput/chemchk.out",
	         "SELECT local_path FROM jobpub_files WHERE output = 'chemchk'");
	t_sql_eq(db, two_files[1].sha256, "SELECT sha256 FROM jobpub_files WHERE output = 'chemchk'");
	t_sql_eq(db, "output_chemchk_file",
	         "SELECT column_name FROM jobpub_files WHERE output = 'chemchk'");
	ck_assert_int_eq(t_sql_int(db, "SELECT attempt FROM jobpub_files WHERE output = 'chemchk'",
	                           NULL),
	                 id);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files WHERE published_at IS NULL",
	                           NULL),
	                 0);

	t_sql_eq(db, "published", "SELECT outcome FROM jobpub_attempts WHERE id = ?", idstr(id));
	ck_assert_int_eq(t_sql_int(db, "SELECT exit_code FROM jobpub_attempts WHERE id = ?",
	                           idstr(id), NULL),
	                 0);
	t_sql_eq(db, NULL, "SELECT error_class FROM jobpub_attempts WHERE id = ?", idstr(id));
	ck_assert_int_eq(t_sql_int(db, "SELECT bytes FROM jobpub_attempts WHERE id = ?", idstr(id),
	                           NULL),
	                 1333);
	ck_assert_int_eq(t_sql_int(db, "SELECT files FROM jobpub_attempts WHERE id = ?", idstr(id),
	                           NULL),
	                 2);
	ck_assert_int_eq(t_sql_int(db, "SELECT duration_ms FROM jobpub_attempts WHERE id = ?",
	                           idstr(id), NULL),
	                 57);
	ck_assert_int_eq(t_sql_int(db, "SELECT pid FROM jobpub_attempts WHERE id = ?", idstr(id),
	                           NULL),
	                 4242);
	t_sql_eq(db, "{\"model\":\"m7\"}", "SELECT sets FROM jobpub_attempts WHERE id = ?",
	         idstr(id));
	t_sql_eq(db, "jobs", "SELECT job_table FROM jobpub_attempts WHERE id = ?", idstr(id));
	ck_assert_int_eq(t_sql_int(db, "SELECT finished_at IS NOT NULL FROM jobpub_attempts"
	                               " WHERE id = ?",
	                           idstr(id), NULL),
	                 1);
}
END_TEST

START_TEST(test_record_success_external)
{
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome o = {"published", 0, NULL, 10, 2, 1};
	struct jp_error err;
	int64_t id;
	int r;

	make_pdr_table();
	prepare_ok(c, &pdr, two_cols, 2);
	id = begin_ok(c, &pdr, "7", "tok");
	jp_error_clear(&err);
	r = jp_catalog_record_success(c, &pdr, "7", id, "finished", two_files, 2, &o, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	jp_catalog_close(c);
	t_sql_eq(db, "finished", "SELECT status FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, "file:///archive/TEXTOUTm7",
	         "SELECT output_textout_file FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, "file:///archive/chemchkm7.out",
	         "SELECT output_chemchk_file FROM pdr_model_jobs WHERE id = 7");
	/* untouched */
	t_sql_eq(db, "log7", "SELECT log_file FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, "m7_n3", "SELECT model_job_name FROM pdr_model_jobs WHERE id = 7");
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM pdr_model_jobs", NULL), 1);
	/* jobpub's own table is not even made in a database whose manifest maps to another table
	 * (issue 13, defect 5) */
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'jobs'",
	                           NULL),
	                 0);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files WHERE job = '7'", NULL),
	                 2);
	t_sql_eq(db, "pdr_model_jobs", "SELECT job_table FROM jobpub_attempts WHERE id = ?",
	         idstr(id));
}
END_TEST

START_TEST(test_record_success_external_row_gone)
{
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome o = {"published", 0, NULL, 10, 2, 1};
	struct jp_error err;
	int64_t id;
	int r;

	make_pdr_table();
	prepare_ok(c, &pdr, two_cols, 2);
	id = begin_ok(c, &pdr, "7", "tok");
	t_sql_exec(db, "DELETE FROM pdr_model_jobs WHERE id = 7");
	jp_error_clear(&err);
	r = jp_catalog_record_success(c, &pdr, "7", id, "finished", two_files, 2, &o, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	jp_catalog_close(c);
	/* all or nothing: no files, attempt still as it began */
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files", NULL), 0);
	t_sql_eq(db, "running", "SELECT outcome FROM jobpub_attempts WHERE id = ?", idstr(id));
}
END_TEST

START_TEST(test_record_failure_keeps_columns)
{
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome ok = {"published", 0, NULL, 10, 2, 1};
	struct jp_outcome bad = {JP_STATUS_FAILED, JP_E_UNAVAILABLE, "posix: no space left", 5, 0, 3};
	struct jp_error err;
	int64_t id1, id2;
	int r;

	make_pdr_table();
	prepare_ok(c, &pdr, two_cols, 2);
	id1 = begin_ok(c, &pdr, "7", "tok1");
	jp_error_clear(&err);
	r = jp_catalog_record_success(c, &pdr, "7", id1, "finished", two_files, 2, &ok, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	id2 = begin_ok(c, &pdr, "7", "tok2");
	ck_assert_int_gt(id2, id1);
	jp_error_clear(&err);
	r = jp_catalog_record_failure(c, &pdr, "7", id2, &bad, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	jp_catalog_close(c);

	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, "file:///archive/TEXTOUTm7",
	         "SELECT output_textout_file FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, "file:///archive/chemchkm7.out",
	         "SELECT output_chemchk_file FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT outcome FROM jobpub_attempts WHERE id = ?",
	         idstr(id2));
	t_sql_eq(db, "unavailable", "SELECT error_class FROM jobpub_attempts WHERE id = ?",
	         idstr(id2));
	t_sql_eq(db, "posix: no space left", "SELECT message FROM jobpub_attempts WHERE id = ?",
	         idstr(id2));
	ck_assert_int_eq(t_sql_int(db, "SELECT exit_code FROM jobpub_attempts WHERE id = ?",
	                           idstr(id2), NULL),
	                 69);
	/* the earlier attempt keeps its own outcome */
	t_sql_eq(db, "published", "SELECT outcome FROM jobpub_attempts WHERE id = ?", idstr(id1));
}
END_TEST

/* jp_catalog_begin (lease, status, attempt) as publish.c calls it. */
static int64_t
lease_ok(struct jp_catalog *c, const struct jp_jobtable *t, const char *job, const char *token,
         int overwrite)
{
	struct jp_attempt a = {job, token, "node17", 4242, "/m/manifest.yaml", "/w/job",
	                       "file:///archive", NULL, overwrite};
	struct jp_error err;
	char took[256];
	int64_t id = -1;
	int r;

	jp_error_clear(&err);
	r = jp_catalog_begin(c, t, &a, 3600, &id, took, sizeof(took), &err);
	ck_assert_msg(r == JP_OK, "begin: %d %s", err.code, err.msg);
	return id;
}

/* job published (two files) as a successful publish leaves it. */
static void
published_ok(struct jp_catalog *c, const struct jp_jobtable *t, const char *job)
{
	struct jp_outcome ok = {"published", 0, NULL, 10, 2, 1, NULL, 0};
	struct jp_error err;
	int64_t id = lease_ok(c, t, job, "tok1", 0);
	int r;

	jp_error_clear(&err);
	r = jp_catalog_record_success(c, t, job, id, t->published_status, two_files, 2, &ok, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
}

/* strdup() of this very string fails (out of memory); any other goes to libc's. */
static const char *strdup_fails_for;

char *
strdup(const char *s)
{
	static char *(*real)(const char *);

	if (strdup_fails_for != NULL && s == strdup_fails_for) {
		errno = ENOMEM;
		return NULL;
	}
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "strdup");
	return real(s);
}

/* Out of memory in jp_catalog_begin (--overwrite of a published job) leaves nothing behind: no
 * lease, the row's status unchanged, no attempt. */
START_TEST(test_begin_oom_changes_nothing)
{
	static const char finished[] = "finished";
	const struct jp_jobtable pub = {"pdr_model_jobs", "id", "status", 1, finished};
	struct jp_catalog *c = open_ok(1000);
	struct jp_attempt a = {"7", "tok2", "node17", 4242, "/m/manifest.yaml", "/w/job",
	                       "file:///archive", NULL, 1};
	struct jp_error err;
	char took[256];
	int64_t id2 = -1;
	int r;

	make_pdr_table();
	prepare_ok(c, &pub, two_cols, 2);
	published_ok(c, &pub, "7");
	jp_error_clear(&err);
	strdup_fails_for = finished;
	r = jp_catalog_begin(c, &pub, &a, 3600, &id2, took, sizeof(took), &err);
	strdup_fails_for = NULL;
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_SOFTWARE);
	t_sql_eq(db, "finished", "SELECT status FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, "0", "SELECT count(*) FROM jobpub_leases");
	t_sql_eq(db, "1", "SELECT count(*) FROM jobpub_attempts");
	jp_catalog_close(c);
}
END_TEST

/* Issue 13, defect 3: a failed re-publish of a published job (a conflict: the local file
 * changed) leaves the row published, its columns and files as they were; only the attempt
 * says it failed, and why. */
START_TEST(test_record_failure_published_stays)
{
	const struct jp_jobtable pub = {"pdr_model_jobs", "id", "status", 1, "finished"};
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome ok = {"published", 0, NULL, 10, 2, 1, NULL, 0};
	struct jp_outcome bad = {JP_STATUS_FAILED, JP_E_UNAVAILABLE,
	                         "conflict: file:///archive/TEXTOUTm7 already holds different content",
	                         0, 0, 3, NULL, 0};
	struct jp_error err;
	int64_t id1, id2;
	char *files1;
	int r;

	make_pdr_table();
	prepare_ok(c, &pub, two_cols, 2);
	id1 = lease_ok(c, &pub, "7", "tok1", 0);
	t_sql_eq(db, JP_STATUS_PUBLISHING, "SELECT status FROM pdr_model_jobs WHERE id = 7");
	jp_error_clear(&err);
	r = jp_catalog_record_success(c, &pub, "7", id1, "finished", two_files, 2, &ok, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	files1 = t_sql_text(db, "SELECT group_concat(remote_url || sha256 || size, ',')"
	                        " FROM jobpub_files WHERE job = '7'", (const char *)NULL);

	/* The re-publish: the row says finished all along. */
	id2 = lease_ok(c, &pub, "7", "tok2", 0);
	t_sql_eq(db, "finished", "SELECT status FROM pdr_model_jobs WHERE id = 7");
	jp_error_clear(&err);
	r = jp_catalog_record_failure(c, &pub, "7", id2, &bad, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	t_sql_eq(db, "finished", "SELECT status FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, "file:///archive/TEXTOUTm7",
	         "SELECT output_textout_file FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, files1, "SELECT group_concat(remote_url || sha256 || size, ',')"
	                     " FROM jobpub_files WHERE job = '7'");
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT outcome FROM jobpub_attempts WHERE id = ?",
	         idstr(id2));
	t_sql_eq(db, bad.message, "SELECT message FROM jobpub_attempts WHERE id = ?", idstr(id2));
	ck_assert_int_eq(t_sql_int(db, "SELECT exit_code FROM jobpub_attempts WHERE id = ?",
	                           idstr(id2), NULL),
	                 69);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_leases", NULL), 0);

	/* --overwrite: "publishing" while files may be replaced; a failure that replaced nothing
	 * gives "finished" back, one that replaced a file does not. */
	id2 = lease_ok(c, &pub, "7", "tok3", 1);
	t_sql_eq(db, JP_STATUS_PUBLISHING, "SELECT status FROM pdr_model_jobs WHERE id = 7");
	r = jp_catalog_record_failure(c, &pub, "7", id2, &bad, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	t_sql_eq(db, "finished", "SELECT status FROM pdr_model_jobs WHERE id = 7");
	id2 = lease_ok(c, &pub, "7", "tok4", 1);
	bad.replaced = 1;
	r = jp_catalog_record_failure(c, &pub, "7", id2, &bad, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM pdr_model_jobs WHERE id = 7");
	jp_catalog_close(c);
	free(files1);
}
END_TEST

/* A row whose status says finished but whose mapped column no longer names the published file
 * (pdr_run ran the model again) is not published: a failure marks it. */
START_TEST(test_record_failure_not_published_marks)
{
	const struct jp_jobtable pub = {"pdr_model_jobs", "id", "status", 1, "finished"};
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome ok = {"published", 0, NULL, 10, 2, 1, NULL, 0};
	struct jp_outcome bad = {JP_STATUS_FAILED, JP_E_NOINPUT, "required output missing", 0, 0, 3,
	                         NULL, 0};
	struct jp_error err;
	int64_t id;
	int r;

	make_pdr_table();
	/* finished by pdr_run, never published by jobpub */
	t_sql_exec(db, "UPDATE pdr_model_jobs SET status = 'finished' WHERE id = 7");
	prepare_ok(c, &pub, two_cols, 2);
	id = lease_ok(c, &pub, "7", "tok1", 0);
	t_sql_eq(db, JP_STATUS_PUBLISHING, "SELECT status FROM pdr_model_jobs WHERE id = 7");
	jp_error_clear(&err);
	r = jp_catalog_record_failure(c, &pub, "7", id, &bad, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM pdr_model_jobs WHERE id = 7");

	id = lease_ok(c, &pub, "7", "tok2", 0);
	r = jp_catalog_record_success(c, &pub, "7", id, "finished", two_files, 2, &ok, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	t_sql_exec(db, "UPDATE pdr_model_jobs SET output_chemchk_file = '/data/new/chemchk.out'"
	               " WHERE id = 7");
	id = lease_ok(c, &pub, "7", "tok3", 0);
	r = jp_catalog_record_failure(c, &pub, "7", id, &bad, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM pdr_model_jobs WHERE id = 7");
	jp_catalog_close(c);
}
END_TEST

START_TEST(test_record_failure_own_new_job)
{
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome bad = {"interrupted", JP_E_TEMPFAIL, "interrupted by SIGTERM", 0, 0, 3};
	struct jp_error err;
	int r;

	prepare_ok(c, &own, two_cols, 2);
	jp_error_clear(&err);
	r = jp_catalog_record_failure(c, &own, "fresh", -1, &bad, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	jp_catalog_close(c);
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM jobs WHERE id = 'fresh'");
	t_sql_eq(db, NULL, "SELECT output_textout_file FROM jobs WHERE id = 'fresh'");
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_attempts", NULL), 0);
}
END_TEST

START_TEST(test_record_success_replaces_files)
{
	static const struct jp_file_rec second[] = {
		{"textout", "output_textout_file", "pdroutput/TEXTOUT", "file:///archive2/TEXTOUTm7",
		 "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc", 4321},
		{"onion", NULL, "onionoutput/TEXTOUT", "file:///archive2/ONIONm7.TEXTOUT",
		 "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd", 5},
	};
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome o = {"published", 0, NULL, 10, 2, 1};
	struct jp_error err;
	int64_t id1, id2;
	int r;

	prepare_ok(c, &own, two_cols, 2);
	id1 = begin_ok(c, &own, "j", "t1");
	jp_error_clear(&err);
	r = jp_catalog_record_success(c, &own, "j", id1, "published", two_files, 2, &o, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	id2 = begin_ok(c, &own, "j", "t2");
	r = jp_catalog_record_success(c, &own, "j", id2, "published", second, 2, &o, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	jp_catalog_close(c);

	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files WHERE job = 'j'", NULL),
	                 2);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files WHERE attempt = ?",
	                           idstr(id2), NULL),
	                 2);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files WHERE remote_url LIKE"
	                               " 'file:///archive/%'",
	                           NULL),
	                 0);
	t_sql_eq(db, "file:///archive2/TEXTOUTm7", "SELECT output_textout_file FROM jobs");
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobs", NULL), 1);
}
END_TEST

START_TEST(test_record_injection_verbatim)
{
	static const char *evil = "1'; DROP TABLE jobs;--";
	static const struct jp_file_rec f[] = {
		{"textout", "output_textout_file", "a'b", "file:///x/'); DROP TABLE jobpub_files;--",
		 "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", 1},
	};
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome o = {"published", 0, NULL, 1, 1, 1};
	struct jp_row *row = NULL;
	struct jp_error err;
	int64_t id;
	int r;

	prepare_ok(c, &own, two_cols, 1);
	id = begin_ok(c, &own, evil, "tok");
	jp_error_clear(&err);
	r = jp_catalog_record_success(c, &own, evil, id, "published", f, 1, &o, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);

	/* and an unknown job in an external table, by the same name */
	make_pdr_table();
	jp_error_clear(&err);
	r = jp_catalog_load_row(c, &pdr, evil, &row, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	jp_catalog_close(c);

	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
	                           NULL),
	                 6);
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", evil);
	t_sql_eq(db, f[0].remote, "SELECT output_textout_file FROM jobs WHERE id = ?", evil);
	t_sql_eq(db, f[0].remote, "SELECT remote_url FROM jobpub_files WHERE job = ?", evil);
	t_sql_eq(db, "a'b", "SELECT local_path FROM jobpub_files WHERE job = ?", evil);
	t_sql_eq(db, "published", "SELECT outcome FROM jobpub_attempts WHERE job = ?", evil);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM pdr_model_jobs", NULL), 1);
}
END_TEST

/* Job IDs that look like numbers are bound as integers for external INTEGER keys; in
 * jobpub's own TEXT-keyed table they must still find the row they created. */
START_TEST(test_record_numeric_looking_ids_own)
{
	static const char *const ids[] = {"42", "+5", "0042", "-3", "1e3"};
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome o = {"published", 0, NULL, 1, 1, 1};
	struct jp_error err;
	size_t i;
	int r;

	prepare_ok(c, &own, two_cols, 2);
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		int64_t id = begin_ok(c, &own, ids[i], "tok");

		jp_error_clear(&err);
		r = jp_catalog_record_success(c, &own, ids[i], id, "published", two_files, 1, &o, &err);
		ck_assert_msg(r == JP_OK, "job '%s': %d %s", ids[i], err.code, err.msg);
		t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", ids[i]);
	}
	jp_catalog_close(c);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobs", NULL), 5);
}
END_TEST

/* ---------------------------------------------------------------- a locked catalogue */

static sqlite3 *
lock_db(void)
{
	sqlite3 *h = t_sql_open(db);
	int rc = sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	ck_assert_msg(rc == SQLITE_OK, "BEGIN IMMEDIATE: %s", sqlite3_errmsg(h));
	return h;
}

static void
unlock_db(sqlite3 *h)
{
	sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(h);
}

START_TEST(test_busy_record_success)
{
	struct jp_catalog *c = open_ok(200);
	struct jp_outcome o = {"published", 0, NULL, 10, 2, 1};
	struct jp_error err;
	int64_t id, t0, dt;
	sqlite3 *h;
	int r;

	prepare_ok(c, &own, two_cols, 2);
	id = begin_ok(c, &own, "j", "tok");
	h = lock_db();
	t0 = jp_now_ms();
	jp_error_clear(&err);
	r = jp_catalog_record_success(c, &own, "j", id, "published", two_files, 2, &o, &err);
	dt = jp_now_ms() - t0;
	ck_assert_int_eq(r, JP_RETRY);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	ck_assert_msg(strstr(err.msg, "locked") != NULL, "message: %s", err.msg);
	ck_assert_msg(dt >= 150 && dt < 5000, "waited %lld ms for a 200 ms timeout", (long long)dt);

	/* the failure record cannot get in either */
	jp_error_clear(&err);
	o.outcome = JP_STATUS_FAILED;
	o.code = JP_E_UNAVAILABLE;
	r = jp_catalog_record_failure(c, &own, "j", id, &o, &err);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	unlock_db(h);

	/* nothing half-written; the connection is still usable */
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobs", NULL), 0);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files", NULL), 0);
	t_sql_eq(db, "running", "SELECT outcome FROM jobpub_attempts WHERE id = ?", idstr(id));
	jp_error_clear(&err);
	o.outcome = "published";
	o.code = 0;
	r = jp_catalog_record_success(c, &own, "j", id, "published", two_files, 2, &o, &err);
	ck_assert_msg(r == JP_OK, "after unlock: %d %s", err.code, err.msg);
	jp_catalog_close(c);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files", NULL), 2);
}
END_TEST

START_TEST(test_busy_external_status_unchanged)
{
	struct jp_catalog *c = open_ok(200);
	struct jp_outcome o = {"published", 0, NULL, 10, 2, 1};
	struct jp_error err;
	int64_t id;
	sqlite3 *h;
	int r;

	make_pdr_table();
	prepare_ok(c, &pdr, two_cols, 2);
	id = begin_ok(c, &pdr, "7", "tok");
	h = lock_db();
	jp_error_clear(&err);
	r = jp_catalog_record_success(c, &pdr, "7", id, "finished", two_files, 2, &o, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	unlock_db(h);
	jp_catalog_close(c);
	t_sql_eq(db, "running", "SELECT status FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, NULL, "SELECT output_textout_file FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, "old.out", "SELECT output_chemchk_file FROM pdr_model_jobs WHERE id = 7");
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files", NULL), 0);
}
END_TEST

/* Issue 13, defect 9: opening a catalogue whose schema is current takes no write lock (50
 * publishers opening at once used to queue for it); the first write waits for the lock as
 * long as the timeout says, and a schema to migrate is migrated under the lock. */
START_TEST(test_busy_open)
{
	struct jp_catalog *c = open_ok(200);
	struct jp_error err;
	int64_t t0;
	sqlite3 *h;
	int r;

	prepare_ok(c, &own, NULL, 0);
	jp_catalog_close(c);
	h = lock_db();
	jp_error_clear(&err);
	t0 = jp_now_ms();
	r = jp_catalog_open(db, 200, 0, &c, &err);
	ck_assert_msg(r == JP_OK, "open of a locked current catalogue: %d %s", err.code, err.msg);
	ck_assert_msg(jp_now_ms() - t0 < 150, "open waited %lld ms", (long long)(jp_now_ms() - t0));
	prepare_ok(c, &own, NULL, 0); /* reads only: the table is there */
	jp_error_clear(&err);
	r = jp_catalog_attempt_begin(c, &own, &(struct jp_attempt){"j", "tok"}, &t0, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	jp_catalog_close(c);
	unlock_db(h);

	/* a catalogue to migrate: opened, and its migration waits for the lock */
	t_rmtree(dir);
	free(dir);
	free(db);
	setup();
	t_sql_exec(db, "CREATE TABLE other (x)");
	h = lock_db();
	r = jp_catalog_open(db, 200, 0, &c, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	jp_error_clear(&err);
	r = jp_catalog_prepare(c, &own, NULL, 0, &err);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	ck_assert_int_ne(r, JP_OK);
	unlock_db(h);
	prepare_ok(c, &own, NULL, 0);
	jp_catalog_close(c);
	ck_assert_int_eq(t_sql_int(db, "PRAGMA user_version", NULL), JP_SCHEMA_VERSION);
}
END_TEST

/* ---------------------------------------------------------------- leases */

/* This process's pid scope and start time, read here the way /proc gives them. */
static void
my_identity(char *scope, size_t len, long long *start)
{
	char boot[64] = "", ns[64] = "", buf[1024], *p;
	FILE *fp;
	ssize_t n;
	size_t got;
	int i;

	fp = fopen("/proc/sys/kernel/random/boot_id", "r");
	ck_assert_ptr_nonnull(fp);
	ck_assert_ptr_nonnull(fgets(boot, sizeof(boot), fp));
	fclose(fp);
	boot[strcspn(boot, "\n")] = '\0';
	n = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
	ck_assert_int_gt(n, 0);
	ns[n] = '\0';
	snprintf(scope, len, "%s/%s", boot, ns);
	fp = fopen("/proc/self/stat", "r");
	ck_assert_ptr_nonnull(fp);
	got = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[got] = '\0';
	p = strrchr(buf, ')') + 2;
	for (i = 3; i < 22; i++)
		p = strchr(p, ' ') + 1;
	*start = strtoll(p, NULL, 10);
}

/* A pid no process has: a child that ended and was reaped. */
static long
dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	ck_assert_int_gt(pid, 0);
	waitpid(pid, NULL, 0);
	return (long)pid;
}

static void
put_lease(const char *job, const char *host, long pid, const char *scope, long long start,
          long expires_in)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
	         "INSERT OR REPLACE INTO jobpub_leases (job, host, pid, token, since, expires, boot_id,"
	         " start_time) VALUES ('%s', '%s', %ld, 'othertoken000000', '2026-01-01T00:00:00Z',"
	         " %lld, '%s', %lld)",
	         job, host, pid, (long long)time(NULL) + expires_in, scope, start);
	t_sql_exec(db, sql);
}

/* jp_catalog_begin for this process; returns the exit class (0: taken) and the takeover. */
static int
try_begin(struct jp_catalog *c, const char *job, char *took, size_t len)
{
	char host[256] = "";
	struct jp_attempt a = {job, "mytoken000000000", host, (long)getpid(), "/m", "/w", NULL, NULL,
	                       0};
	struct jp_error err;
	int64_t id;

	gethostname(host, sizeof(host) - 1);
	jp_error_clear(&err);
	if (jp_catalog_begin(c, &own, &a, 3600, &id, took, len, &err) == JP_OK)
		return 0;
	ck_assert_msg(strstr(err.msg, "is being published by") != NULL, "%s", err.msg);
	return err.code;
}

/* Issue 13, defect 9: a lease owner is known by more than host name and pid.  Its pid now
 * naming another process (same boot, another start time) means it is gone; a lease of another
 * boot or host under this host's name is kept until it expires. */
START_TEST(test_lease_owner_identity)
{
	struct jp_catalog *c = open_ok(1000);
	char scope[160], host[256] = "", took[512];
	long long start;
	long dead = dead_pid();

	gethostname(host, sizeof(host) - 1);
	my_identity(scope, sizeof(scope), &start);
	prepare_ok(c, &own, NULL, 0);

	/* our own pid and scope, but another start time: the pid was reused */
	put_lease("reused", host, (long)getpid(), scope, start + 4711, 3600);
	ck_assert_int_eq(jp_catalog_job_leased(c, "reused"), 0);
	ck_assert_int_eq(jp_catalog_token_leased(c, "othertoken000000"), 0);
	ck_assert_int_eq(try_begin(c, "reused", took, sizeof(took)), 0);
	ck_assert_msg(strstr(took, "that process is gone") != NULL, "took over: %s", took);

	/* the same process, same start time: alive */
	put_lease("alive", host, (long)getpid(), scope, start, 3600);
	ck_assert_int_eq(jp_catalog_job_leased(c, "alive"), 1);
	ck_assert_int_eq(try_begin(c, "alive", took, sizeof(took)), JP_E_TEMPFAIL);

	/* a pid that no longer runs here */
	put_lease("dead", host, dead, scope, start, 3600);
	ck_assert_int_eq(jp_catalog_job_leased(c, "dead"), 0);
	ck_assert_int_eq(try_begin(c, "dead", took, sizeof(took)), 0);
	ck_assert_msg(strstr(took, "that process is gone") != NULL, "took over: %s", took);

	/* another host (or boot) with this host's name: its pid says nothing here */
	put_lease("clash", host, dead, "00000000-0000-0000-0000-000000000000/pid:[4026531836]",
	          start, 3600);
	ck_assert_int_eq(jp_catalog_job_leased(c, "clash"), 1);
	ck_assert_int_eq(jp_catalog_token_leased(c, "othertoken000000"), 1);
	ck_assert_int_eq(try_begin(c, "clash", took, sizeof(took)), JP_E_TEMPFAIL);
	/* ... until it expires */
	put_lease("clash", host, dead, "00000000-0000-0000-0000-000000000000/pid:[4026531836]",
	          start, -5);
	ck_assert_int_eq(jp_catalog_job_leased(c, "clash"), 0);
	ck_assert_int_eq(try_begin(c, "clash", took, sizeof(took)), 0);
	ck_assert_msg(strstr(took, "the lease expired") != NULL, "took over: %s", took);

	/* our own leases carry our identity */
	t_sql_eq(db, scope, "SELECT boot_id FROM jobpub_leases WHERE job = 'clash'");
	ck_assert_int_eq(t_sql_int(db, "SELECT start_time FROM jobpub_leases WHERE job = 'clash'",
	                           NULL),
	                 start);
	jp_catalog_close(c);
}
END_TEST

/* status shows who is publishing a job right now (a published job keeps its status while it
 * is re-published): a live lease only. */
START_TEST(test_job_info_lease)
{
	struct jp_catalog *c = open_ok(1000);
	struct jp_job_info *ji = NULL;
	struct jp_error err;
	char scope[160], host[256] = "", took[256];
	long long start;

	gethostname(host, sizeof(host) - 1);
	my_identity(scope, sizeof(scope), &start);
	prepare_ok(c, &own, NULL, 0);
	ck_assert_int_eq(try_begin(c, "j", took, sizeof(took)), 0);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_catalog_job_info(c, "j", &ji, &err), JP_OK);
	ck_assert_ptr_nonnull(ji);
	ck_assert_str_eq(ji->lease_host, host);
	ck_assert_int_eq(ji->lease_pid, (int64_t)getpid());
	ck_assert_ptr_nonnull(ji->lease_since);
	jp_job_info_free(ji);
	/* its owner gone (the pid reused): no one is publishing it */
	put_lease("j", host, (long)getpid(), scope, start + 1, 3600);
	ck_assert_int_eq(jp_catalog_job_info(c, "j", &ji, &err), JP_OK);
	ck_assert_ptr_null(ji->lease_host);
	jp_job_info_free(ji);
	jp_catalog_close(c);
}
END_TEST

/* A catalogue of schema 4 (leases without owner scope): readers judge its leases by host and
 * pid; the first write migrates it to 5, keeping them. */
START_TEST(test_upgrade_from_4)
{
	struct jp_catalog *c = open_ok(1000);
	char took[256];

	prepare_ok(c, &own, NULL, 0);
	jp_catalog_close(c);
	t_sql_exec(db, "ALTER TABLE jobpub_leases DROP COLUMN boot_id;"
	               "ALTER TABLE jobpub_leases DROP COLUMN start_time;"
	               "PRAGMA user_version = 4;"
	               "INSERT INTO jobpub_leases (job, host, pid, token, since, expires) VALUES"
	               " ('j', 'node-elsewhere', 1, 'othertoken000000', '2026-01-01T00:00:00Z',"
	               " strftime('%s', 'now') + 3600)");
	{
		struct jp_error err;
		int r;

		jp_error_clear(&err);
		r = jp_catalog_open(db, 1000, JP_CATALOG_READONLY, &c, &err);
		ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
		ck_assert_int_eq(jp_catalog_job_leased(c, "j"), 1);
		ck_assert_int_eq(jp_catalog_token_leased(c, "othertoken000000"), 1);
		jp_catalog_close(c);
	}
	c = open_ok(1000);
	ck_assert_int_eq(try_begin(c, "j", took, sizeof(took)), JP_E_TEMPFAIL);
	jp_catalog_close(c);
	ck_assert_int_eq(t_sql_int(db, "PRAGMA user_version", NULL), JP_SCHEMA_VERSION);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_leases WHERE job = 'j' AND"
	                               " boot_id IS NULL", NULL),
	                 1);
}
END_TEST

/* ---------------------------------------------------------------- reading */

START_TEST(test_job_info)
{
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome ok = {"published", 0, NULL, 1333, 2, 5};
	struct jp_outcome bad = {"interrupted", JP_E_TEMPFAIL, "interrupted by SIGTERM", 7, 0, 9};
	struct jp_job_info *ji = NULL;
	struct jp_error err;
	int64_t id1, id2;
	int r, found;

	make_pdr_table();
	prepare_ok(c, &pdr, two_cols, 2);
	id1 = begin_ok(c, &pdr, "7", "t1");
	r = jp_catalog_record_success(c, &pdr, "7", id1, "finished", two_files, 2, &ok, &err);
	ck_assert_int_eq(r, JP_OK);
	id2 = begin_ok(c, &pdr, "7", "t2");
	r = jp_catalog_record_failure(c, &pdr, "7", id2, &bad, &err);
	ck_assert_int_eq(r, JP_OK);

	jp_error_clear(&err);
	r = jp_catalog_job_info(c, "7", &ji, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	ck_assert_ptr_nonnull(ji);
	ck_assert_str_eq(ji->table, "pdr_model_jobs");
	ck_assert_str_eq(ji->id_column, "id");
	ck_assert_str_eq(ji->status_column, "status");
	ck_assert_str_eq(ji->status, JP_STATUS_FAILED);
	ck_assert_ptr_nonnull(ji->row);
	ck_assert_str_eq(jp_row_get(ji->row, "model_job_name", &found), "m7_n3");
	ck_assert_str_eq(jp_row_get(ji->row, "output_textout_file", &found),
	                 "file:///archive/TEXTOUTm7");
	ck_assert_uint_eq(ji->n_files, 2);
	/* ordered by output name */
	ck_assert_str_eq(ji->files[0].output, "chemchk");
	ck_assert_str_eq(ji->files[0].remote, "file:///archive/chemchkm7.out");
	ck_assert_str_eq(ji->files[0].sha256, two_files[1].sha256);
	ck_assert_int_eq(ji->files[0].size, 99);
	ck_assert_str_eq(ji->files[1].output, "textout");
	ck_assert_str_eq(ji->files[1].local, "pdroutput/TEXTOUT");
	ck_assert_str_eq(ji->files[1].column, "output_textout_file");
	ck_assert_ptr_nonnull(ji->files[1].published_at);
	ck_assert_uint_eq(ji->n_attempts, 2);
	ck_assert_int_eq(ji->attempts[0].id, id1);
	ck_assert_str_eq(ji->attempts[0].outcome, "published");
	ck_assert_ptr_null(ji->attempts[0].error_class);
	ck_assert_int_eq(ji->attempts[0].bytes, 1333);
	ck_assert_int_eq(ji->attempts[0].exit_code, 0);
	ck_assert_str_eq(ji->attempts[0].host, "node17");
	ck_assert_int_eq(ji->attempts[0].pid, 4242);
	ck_assert_str_eq(ji->attempts[0].destination, "file:///archive");
	ck_assert_int_eq(ji->attempts[1].id, id2);
	ck_assert_str_eq(ji->attempts[1].outcome, "interrupted");
	ck_assert_str_eq(ji->attempts[1].error_class, "tempfail");
	ck_assert_str_eq(ji->attempts[1].message, "interrupted by SIGTERM");
	ck_assert_int_eq(ji->attempts[1].exit_code, 75);
	ck_assert_int_eq(ji->attempts[1].duration_ms, 9);
	jp_job_info_free(ji);

	/* a job never heard of */
	ji = (struct jp_job_info *)1;
	jp_error_clear(&err);
	r = jp_catalog_job_info(c, "8", &ji, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	ck_assert_ptr_null(ji);
	jp_catalog_close(c);
}
END_TEST

START_TEST(test_job_info_own_table)
{
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome ok = {"published", 0, NULL, 1, 2, 5};
	struct jp_job_info *ji = NULL;
	struct jp_error err;
	int64_t id;
	int r;

	prepare_ok(c, &own, two_cols, 2);
	id = begin_ok(c, &own, "run-3", "t1");
	r = jp_catalog_record_success(c, &own, "run-3", id, "published", two_files, 2, &ok, &err);
	ck_assert_int_eq(r, JP_OK);
	jp_catalog_close(c);

	/* read-only, as `jobpub status` opens it */
	jp_error_clear(&err);
	r = jp_catalog_open(db, 1000, 1, &c, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	r = jp_catalog_job_info(c, "run-3", &ji, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	ck_assert_ptr_nonnull(ji);
	ck_assert_str_eq(ji->table, "jobs");
	ck_assert_str_eq(ji->status, "published");
	ck_assert_uint_eq(ji->n_files, 2);
	ck_assert_uint_eq(ji->n_attempts, 1);
	jp_job_info_free(ji);
	jp_catalog_close(c);
}
END_TEST

struct counts {
	char lines[16][128];
	int n;
};

static void
count_cb(void *arg, const char *table, const char *status, int64_t count)
{
	struct counts *k = arg;

	ck_assert_int_lt(k->n, 16);
	snprintf(k->lines[k->n++], sizeof(k->lines[0]), "%s %s %lld", table, status,
	         (long long)count);
}

static int
has_line(const struct counts *k, const char *line)
{
	int i;

	for (i = 0; i < k->n; i++)
		if (strcmp(k->lines[i], line) == 0)
			return 1;
	return 0;
}

START_TEST(test_status_counts)
{
	struct jp_catalog *c = open_ok(1000);
	struct jp_outcome ok = {"published", 0, NULL, 1, 1, 5};
	struct jp_outcome bad = {JP_STATUS_FAILED, JP_E_NOINPUT, "missing", 0, 0, 5};
	struct counts k;
	struct jp_error err;
	int r;

	make_pdr_table();
	t_sql_exec(db, "INSERT INTO pdr_model_jobs (id, model_job_name, status) VALUES"
	               " (8, 'a', 'running'), (9, 'b', NULL)");
	prepare_ok(c, &own, two_cols, 2);
	prepare_ok(c, &pdr, two_cols, 2);
	r = jp_catalog_record_success(c, &own, "a", begin_ok(c, &own, "a", "t"), "published",
	                              two_files, 1, &ok, &err);
	ck_assert_int_eq(r, JP_OK);
	r = jp_catalog_record_success(c, &own, "b", begin_ok(c, &own, "b", "t"), "published",
	                              two_files, 1, &ok, &err);
	ck_assert_int_eq(r, JP_OK);
	r = jp_catalog_record_failure(c, &own, "c", begin_ok(c, &own, "c", "t"), &bad, &err);
	ck_assert_int_eq(r, JP_OK);
	r = jp_catalog_record_success(c, &pdr, "7", begin_ok(c, &pdr, "7", "t"), "finished",
	                              two_files, 2, &ok, &err);
	ck_assert_int_eq(r, JP_OK);

	memset(&k, 0, sizeof(k));
	jp_error_clear(&err);
	r = jp_catalog_status_counts(c, count_cb, &k, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	jp_catalog_close(c);
	ck_assert_int_eq(k.n, 5);
	ck_assert(has_line(&k, "jobs published 2"));
	ck_assert(has_line(&k, "jobs failed_storage 1"));
	ck_assert(has_line(&k, "pdr_model_jobs finished 1"));
	ck_assert(has_line(&k, "pdr_model_jobs running 1"));
	ck_assert(has_line(&k, "pdr_model_jobs (none) 1"));
}
END_TEST

START_TEST(test_status_counts_empty)
{
	struct jp_catalog *c = open_ok(1000);
	struct counts k;
	struct jp_error err;
	int r;

	memset(&k, 0, sizeof(k));
	jp_error_clear(&err);
	r = jp_catalog_status_counts(c, count_cb, &k, &err);
	ck_assert_msg(r == JP_OK, "%d %s", err.code, err.msg);
	ck_assert_int_eq(k.n, 0);
	jp_catalog_close(c);
}
END_TEST

static Suite *
catalog_suite(void)
{
	Suite *s = suite_create("catalog");
	TCase *tc;

	tc = tcase_create("open");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_creates_schema);
	tcase_add_test(tc, test_open_reopen_idempotent);
	tcase_add_test(tc, test_open_newer_schema);
	tcase_add_test(tc, test_open_newer_schema_untouched);
	tcase_add_test(tc, test_open_not_a_database);
	tcase_add_test(tc, test_open_readonly_missing);
	tcase_add_test(tc, test_open_readonly_changes_nothing);
	tcase_add_test(tc, test_open_existing_missing);
	tcase_add_test(tc, test_external_bad_mapping_changes_nothing);
	tcase_add_test(tc, test_read_unwritten_catalogue);
	suite_add_tcase(s, tc);

	tc = tcase_create("prepare");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_prepare_own_adds_columns);
	tcase_add_test(tc, test_prepare_external_missing_column);
	tcase_add_test(tc, test_prepare_external_missing_status_column);
	tcase_add_test(tc, test_prepare_external_missing_table);
	tcase_add_test(tc, test_prepare_rejects_non_identifiers);
	suite_add_tcase(s, tc);

	tc = tcase_create("load_row");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_load_row_external_unknown_job);
	tcase_add_test(tc, test_load_row_external);
	tcase_add_test(tc, test_load_row_own_missing_is_nulls);
	suite_add_tcase(s, tc);

	tc = tcase_create("record");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_record_success_own);
	tcase_add_test(tc, test_record_success_external);
	tcase_add_test(tc, test_record_success_external_row_gone);
	tcase_add_test(tc, test_record_failure_keeps_columns);
	tcase_add_test(tc, test_record_failure_own_new_job);
	tcase_add_test(tc, test_record_failure_published_stays);
	tcase_add_test(tc, test_begin_oom_changes_nothing);
	tcase_add_test(tc, test_record_failure_not_published_marks);
	tcase_add_test(tc, test_record_success_replaces_files);
	tcase_add_test(tc, test_record_injection_verbatim);
	tcase_add_test(tc, test_record_numeric_looking_ids_own);
	suite_add_tcase(s, tc);

	tc = tcase_create("busy");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_busy_record_success);
	tcase_add_test(tc, test_busy_external_status_unchanged);
	tcase_add_test(tc, test_busy_open);
	tcase_add_test(tc, test_lease_owner_identity);
	tcase_add_test(tc, test_upgrade_from_4);
	tcase_add_test(tc, test_job_info_lease);
	suite_add_tcase(s, tc);

	tc = tcase_create("read");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_job_info);
	tcase_add_test(tc, test_job_info_own_table);
	tcase_add_test(tc, test_status_counts);
	tcase_add_test(tc, test_status_counts_empty);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	return t_run(catalog_suite());
}
