/*
 * test_publish.c - unit tests of src/core/publish.c: jp_publish() run on a manifest, a job work
 * directory, a file:// destination and a catalogue made in a temp dir.  Covers a first publish,
 * an unchanged re-publish, conflicts with and without overwrite, missing and optional outputs,
 * external job tables, dry runs, interruption (SIGTERM in a forked publisher, and interrupts
 * injected after a file is staged or committed), a destination that cannot be created, and a
 * locked or failing catalogue, and lanes whose threads cannot be created.  Outcomes are read
 * from the disk and with our own SQL.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include "testlib.h"

#include "catalog.h" /* JP_STATUS_FAILED */
#include "dest.h"    /* JP_TMP_PREFIX */
#include "failalloc.h"
#include "log.h"
#include "publish.h"
#include "util.h"

#define JOB "j1"
#define TEXTOUT_SIZE 5000
#define ONION_SIZE 3000

static char *dir, *db, *work, *manifest, *archive_url;
static struct jp_error err;

/* Outputs of the default manifest: two mapped files, one glob with two matches. */
static const char *const default_outputs =
	"  - name: textout\n"
	"    path: out/TEXTOUT\n"
	"    to: grid/TEXTOUT${job}\n"
	"    column: output_textout_file\n"
	"  - name: chem\n"
	"    path: out/chem.out\n"
	"    to: grid/chem${job}.out\n"
	"    column: output_chem_file\n"
	"  - name: onion\n"
	"    glob: onion/*\n"
	"    to: onion/ONION${job}.${basename}\n";

/* Writes manifest.yaml: destination <dir>/archive, an optional catalog block, the outputs. */
static void
write_manifest(const char *destination, const char *catalog, const char *outputs)
{
	char *text;

	ck_assert(asprintf(&text, "destination: %s\n%soutputs:\n%s",
	                   destination ? destination : archive_url, catalog ? catalog : "",
	                   outputs ? outputs : default_outputs) > 0);
	t_write_str(dir, "manifest.yaml", text);
	free(text);
}

static void
setup(void)
{
	umask(022);
	jp_publish_interrupt(0); /* the flag is process-wide: clear what an earlier test set */
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	jp_error_clear(&err);
	dir = t_tempdir();
	db = t_path(dir, "cat.db");
	work = t_path(dir, "work");
	manifest = t_path(dir, "manifest.yaml");
	ck_assert(asprintf(&archive_url, "file://%s/archive", dir) > 0);
	t_write_pattern(work, "out/TEXTOUT", TEXTOUT_SIZE, 1);
	t_write_str(work, "out/chem.out", "chem check\n");
	t_write_str(work, "onion/jerg_CO.smli", "jerg\n");
	t_write_pattern(work, "onion/ONION3_CO.OUT", ONION_SIZE, 2);
	write_manifest(NULL, NULL, NULL);
}

static void
teardown(void)
{
	jp_publish_interrupt(0);
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	t_rmtree(dir);
	free(dir);
	free(db);
	free(work);
	free(manifest);
	free(archive_url);
	dir = db = work = manifest = archive_url = NULL;
}

static struct jp_publish_opts
opts(void)
{
	struct jp_publish_opts o;

	memset(&o, 0, sizeof(o));
	o.job = JOB;
	o.manifest = manifest;
	o.workdir = work;
	o.db = db;
	o.db_timeout_ms = 2000;
	return o;
}

static int
publish_with(const struct jp_publish_opts *o)
{
	jp_error_clear(&err);
	return jp_exit_code(jp_publish(o, &err), &err); /* the exit code the command gives */
}

static int
publish(int overwrite)
{
	struct jp_publish_opts o = opts();

	o.overwrite = overwrite;
	return publish_with(&o);
}

static char *
url_of(const char *key)
{
	char *u;

	ck_assert(asprintf(&u, "%s/%s", archive_url, key) > 0);
	return u;
}

static char *
sha_hex_of_file(const char *d, const char *rel)
{
	struct jp_sha256 h;
	unsigned char sha[32];
	char *hex = malloc(65);
	size_t len = 0;
	char *data = t_read(d, rel, &len);

	ck_assert_ptr_nonnull(data);
	ck_assert_int_eq(jp_sha256_init(&h), 0);
	jp_sha256_update(&h, data, len);
	jp_sha256_final(&h, sha);
	jp_hex(sha, 32, hex);
	free(data);
	return hex;
}

/* The archive holds exactly the local file's bytes under rel. */
static void
assert_same(const char *local_rel, const char *archive_rel)
{
	size_t a = 0, b = 0;
	char *x = t_read(work, local_rel, &a), *p = t_path(dir, "archive"), *y = t_read(p, archive_rel, &b);

	ck_assert_msg(y != NULL, "archive/%s missing", archive_rel);
	ck_assert_msg(a == b && memcmp(x, y, a) == 0, "archive/%s differs from %s", archive_rel,
	              local_rel);
	free(x);
	free(y);
	free(p);
}

static long long
last_attempt_int(const char *column)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT %s FROM jobpub_attempts WHERE job = ? ORDER BY id DESC",
	         column);
	return t_sql_int(db, sql, JOB, NULL);
}

static void
assert_last_attempt(const char *outcome, const char *error_class)
{
	t_sql_eq(db, outcome, "SELECT outcome FROM jobpub_attempts WHERE job = ? ORDER BY id DESC",
	         JOB);
	t_sql_eq(db, error_class,
	         "SELECT error_class FROM jobpub_attempts WHERE job = ? ORDER BY id DESC", JOB);
}

/* ---------------------------------------------------------------- success */

START_TEST(test_success)
{
	char *u1 = url_of("grid/TEXTOUTj1"), *u2 = url_of("grid/chemj1.out"), *hex;
	struct stat sb;
	char *p;
	int rc;

	rc = publish(0);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	ck_assert_int_eq(err.code, JP_E_NONE);

	assert_same("out/TEXTOUT", "grid/TEXTOUTj1");
	assert_same("out/chem.out", "grid/chemj1.out");
	assert_same("onion/jerg_CO.smli", "onion/ONIONj1.jerg_CO.smli");
	assert_same("onion/ONION3_CO.OUT", "onion/ONIONj1.ONION3_CO.OUT");
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	p = t_path(dir, "archive/grid/TEXTOUTj1");
	ck_assert(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0644);
	free(p);

	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", JOB);
	t_sql_eq(db, u1, "SELECT output_textout_file FROM jobs WHERE id = ?", JOB);
	t_sql_eq(db, u2, "SELECT output_chem_file FROM jobs WHERE id = ?", JOB);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files WHERE job = ?", JOB, NULL),
	                 4);
	hex = sha_hex_of_file(work, "out/TEXTOUT");
	t_sql_eq(db, hex, "SELECT sha256 FROM jobpub_files WHERE remote_url = ?", u1);
	free(hex);
	ck_assert_int_eq(t_sql_int(db, "SELECT size FROM jobpub_files WHERE remote_url = ?", u1, NULL),
	                 TEXTOUT_SIZE);
	t_sql_eq(db, "out/TEXTOUT", "SELECT local_path FROM jobpub_files WHERE remote_url = ?", u1);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_attempts", NULL), 1);
	assert_last_attempt("published", NULL);
	ck_assert_int_eq(last_attempt_int("bytes"), TEXTOUT_SIZE + 11 + 5 + ONION_SIZE);
	ck_assert_int_eq(last_attempt_int("files"), 4);
	ck_assert_int_eq(last_attempt_int("exit_code"), 0);
	ck_assert_int_eq(last_attempt_int("pid"), getpid());
	t_sql_eq(db, work, "SELECT workdir FROM jobpub_attempts WHERE job = ?", JOB);
	free(u1);
	free(u2);
}
END_TEST

START_TEST(test_republish_unchanged)
{
	struct stat a, b;
	char *p = t_path(dir, "archive/grid/TEXTOUTj1");
	int rc;

	rc = publish(0);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	ck_assert_int_eq(stat(p, &a), 0);
	rc = publish(0);
	ck_assert_msg(rc == 0, "second publish: rc %d: %s", rc, err.msg);
	ck_assert_int_eq(stat(p, &b), 0);
	ck_assert_msg(a.st_ino == b.st_ino, "the identical file was replaced");
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_attempts", NULL), 2);
	assert_last_attempt("published", NULL);
	ck_assert_int_eq(last_attempt_int("bytes"), 0);
	ck_assert_int_eq(last_attempt_int("files"), 4);
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", JOB);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files", NULL), 4);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	free(p);
}
END_TEST

START_TEST(test_optional_absent)
{
	char *log = NULL;
	size_t loglen = 0;
	FILE *fp = open_memstream(&log, &loglen);
	int rc;

	write_manifest(NULL, NULL,
	               "  - name: textout\n"
	               "    path: out/TEXTOUT\n"
	               "    to: grid/TEXTOUT${job}\n"
	               "    column: output_textout_file\n"
	               "  - name: chemchk\n"
	               "    path: out/chemchk.out\n"
	               "    to: grid/chemchk${job}.out\n"
	               "    column: output_chemchk_file\n"
	               "    required: false\n");
	jp_log_setup(JP_LOG_TEXT, 0, fp);
	rc = publish(0);
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	fclose(fp);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	ck_assert_msg(strstr(log, "chemchk") != NULL && strstr(log, "skipped") != NULL, "log: %s",
	              log);
	free(log);
	assert_same("out/TEXTOUT", "grid/TEXTOUTj1");
	ck_assert(!t_exists(dir, "archive/grid/chemchkj1.out"));
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", JOB);
	t_sql_eq(db, NULL, "SELECT output_chemchk_file FROM jobs WHERE id = ?", JOB);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files", NULL), 1);
	ck_assert_int_eq(last_attempt_int("files"), 1);
}
END_TEST

static const char *const pdr_catalog =
	"catalog:\n"
	"  table: pdr_model_jobs\n"
	"  id-column: id\n"
	"  status-column: status\n"
	"  published-status: finished\n";

static const char *const pdr_outputs =
	"  - name: textout\n"
	"    path: out/TEXTOUT\n"
	"    to: pdrgrid/TEXTOUT${row.model_job_name}\n"
	"    column: output_textout_file\n"
	"  - name: chemchk\n"
	"    path: out/chem.out\n"
	"    to: pdrgrid/chemchk${row.model_job_name}.out\n"
	"    column: output_chemchk_file\n";

static void
make_pdr_db(void)
{
	t_sql_exec(db, "CREATE TABLE pdr_model_jobs (id INTEGER PRIMARY KEY, model_job_name TEXT,"
	               " status TEXT, output_textout_file TEXT, output_chemchk_file TEXT,"
	               " log_file TEXT);"
	               "INSERT INTO pdr_model_jobs VALUES (7, '100_40_10', 'running', NULL, NULL,"
	               " 'log');");
}

START_TEST(test_external_table)
{
	struct jp_publish_opts o = opts();
	char *u = url_of("pdrgrid/TEXTOUT100_40_10");
	int rc;

	make_pdr_db();
	write_manifest(NULL, pdr_catalog, pdr_outputs);
	o.job = "7";
	rc = publish_with(&o);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	assert_same("out/TEXTOUT", "pdrgrid/TEXTOUT100_40_10");
	assert_same("out/chem.out", "pdrgrid/chemchk100_40_10.out");
	t_sql_eq(db, "finished", "SELECT status FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, u, "SELECT output_textout_file FROM pdr_model_jobs WHERE id = 7");
	t_sql_eq(db, "log", "SELECT log_file FROM pdr_model_jobs WHERE id = 7");
	/* no `jobs` table in a database whose manifest maps to another table (issue 13, 5) */
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'jobs'",
	                           NULL),
	                 0);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM pragma_table_info('pdr_model_jobs')",
	                           NULL),
	                 6);
	free(u);
}
END_TEST

START_TEST(test_external_unknown_job)
{
	struct jp_publish_opts o = opts();
	int rc;

	make_pdr_db();
	write_manifest(NULL, pdr_catalog, pdr_outputs);
	o.job = "8";
	rc = publish_with(&o);
	ck_assert_int_eq(rc, JP_E_DATA);
	ck_assert_msg(strstr(err.msg, "unknown job") != NULL, "%s", err.msg);
	/* refused before anything is written: not even jobpub's tables */
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE name LIKE"
	                               " 'jobpub%'", NULL),
	                 0);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM pdr_model_jobs", NULL), 1);
	t_sql_eq(db, "running", "SELECT status FROM pdr_model_jobs WHERE id = 7");
	ck_assert(!t_exists(dir, "archive"));
}
END_TEST

/* ---------------------------------------------------------------- conflicts */

/* A different file already under chem's final name; nothing may change. */
static void
check_conflict(const char *existing)
{
	char *back;
	int rc;

	t_write_str(dir, "archive/grid/chemj1.out", existing);
	rc = publish(0);
	ck_assert_msg(rc == JP_E_UNAVAILABLE, "rc %d: %s", rc, err.msg);
	ck_assert_msg(strstr(err.msg, "conflict") != NULL, "%s", err.msg);
	back = t_read(dir, "archive/grid/chemj1.out", NULL);
	ck_assert_str_eq(back, existing);
	free(back);
	ck_assert(!t_exists(dir, "archive/grid/TEXTOUTj1"));
	ck_assert(!t_exists(dir, "archive/onion"));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM jobs WHERE id = ?", JOB);
	t_sql_eq(db, NULL, "SELECT output_textout_file FROM jobs WHERE id = ?", JOB);
	assert_last_attempt(JP_STATUS_FAILED, "unavailable");
	ck_assert_int_eq(last_attempt_int("exit_code"), 69);
	ck_assert_int_eq(last_attempt_int("bytes"), 0);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files", NULL), 0);
}

START_TEST(test_conflict_other_size)
{
	check_conflict("somebody else's file, longer\n");
}
END_TEST

/* The clean-up hook (the CLI's 60 s clean-up bound) is called when any rollback begins, not
 * only a signal's: a SIGTERM during the rollback of an ordinary failure must get that bound. */
static int cleanup_calls;

static void
count_cleanup(void)
{
	cleanup_calls++;
}

START_TEST(test_cleanup_hook_on_failure)
{
	cleanup_calls = 0;
	jp_publish_set_cleanup_hook(count_cleanup);
	check_conflict("somebody else's file, longer\n");
	jp_publish_set_cleanup_hook(NULL);
	ck_assert_int_eq(cleanup_calls, 1);
}
END_TEST

START_TEST(test_conflict_same_size)
{
	check_conflict("CHEM CHECK\n"); /* 11 bytes like ours */
}
END_TEST

START_TEST(test_conflict_after_partial_publish_keeps_status_columns)
{
	char *u = url_of("grid/TEXTOUTj1");
	int rc;

	/* published once; then the local file changes and a re-publish conflicts */
	rc = publish(0);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	t_write_str(work, "out/chem.out", "CHEM CHECK\n");
	rc = publish(0);
	ck_assert_int_eq(rc, JP_E_UNAVAILABLE);
	/* the job stays published as it was; its attempt records the conflict (issue 13, 3) */
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", JOB);
	assert_last_attempt(JP_STATUS_FAILED, "unavailable");
	t_sql_eq(db, u, "SELECT output_textout_file FROM jobs WHERE id = ?", JOB);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files", NULL), 4);
	free(u);
}
END_TEST

START_TEST(test_conflict_overwrite)
{
	char *back;
	int rc;

	t_write_str(dir, "archive/grid/chemj1.out", "CHEM CHECK\n");
	t_write_str(dir, "archive/onion/ONIONj1.jerg_CO.smli", "older and longer jerg\n");
	rc = publish(1);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	back = t_read(dir, "archive/grid/chemj1.out", NULL);
	ck_assert_str_eq(back, "chem check\n");
	free(back);
	assert_same("onion/jerg_CO.smli", "onion/ONIONj1.jerg_CO.smli");
	assert_same("out/TEXTOUT", "grid/TEXTOUTj1");
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", JOB);
	assert_last_attempt("published", NULL);
	ck_assert_int_eq(last_attempt_int("bytes"), TEXTOUT_SIZE + 11 + 5 + ONION_SIZE);
}
END_TEST

/* ---------------------------------------------------------------- refused before storage */

START_TEST(test_missing_required)
{
	char *p = t_path(work, "out/chem.out");
	int rc;

	ck_assert_int_eq(unlink(p), 0);
	rc = publish(0);
	ck_assert_msg(rc == JP_E_NOINPUT, "rc %d: %s", rc, err.msg);
	ck_assert_msg(strstr(err.msg, "chem") != NULL, "%s", err.msg);
	ck_assert_msg(!t_exists(dir, "archive"), "the destination was touched");
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM jobs WHERE id = ?", JOB);
	assert_last_attempt(JP_STATUS_FAILED, "noinput");
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files", NULL), 0);
	free(p);
}
END_TEST

START_TEST(test_missing_required_glob)
{
	int rc;

	write_manifest(NULL, NULL,
	               "  - name: textout\n"
	               "    path: out/TEXTOUT\n"
	               "    to: grid/TEXTOUT${job}\n"
	               "  - name: mc\n"
	               "    glob: Out/*.dat\n"
	               "    to: mc/${basename}\n");
	rc = publish(0);
	ck_assert_msg(rc == JP_E_NOINPUT, "rc %d: %s", rc, err.msg);
	ck_assert(!t_exists(dir, "archive"));
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM jobs WHERE id = ?", JOB);
}
END_TEST

START_TEST(test_optional_glob_dir_absent)
{
	int rc;

	/* a job that never ran its onion step has no onion/ directory at all */
	write_manifest(NULL, NULL,
	               "  - name: textout\n"
	               "    path: out/TEXTOUT\n"
	               "    to: grid/TEXTOUT${job}\n"
	               "  - name: mc\n"
	               "    glob: Out/*.dat\n"
	               "    to: mc/${basename}\n"
	               "    required: false\n");
	rc = publish(0);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	assert_same("out/TEXTOUT", "grid/TEXTOUTj1");
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", JOB);
}
END_TEST

START_TEST(test_dest_cannot_be_created)
{
	char *url, *back;
	int rc;

	t_write_str(dir, "blocker", "a file\n");
	ck_assert(asprintf(&url, "file://%s/blocker/archive", dir) > 0);
	write_manifest(url, NULL, NULL);
	free(url);
	rc = publish(0);
	ck_assert_msg(rc == JP_E_UNAVAILABLE, "rc %d: %s", rc, err.msg);
	back = t_read(dir, "blocker", NULL);
	ck_assert_str_eq(back, "a file\n");
	free(back);
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM jobs WHERE id = ?", JOB);
	assert_last_attempt(JP_STATUS_FAILED, "unavailable");
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
}
END_TEST

START_TEST(test_dest_override_and_sets)
{
	struct jp_publish_opts o = opts();
	struct jp_kv sets[] = {{"model", "m42"}};
	char *url;
	int rc;

	ck_assert(asprintf(&url, "file://%s/other/${model}", dir) > 0);
	o.dest = url;
	o.sets = sets;
	o.n_sets = 1;
	rc = publish_with(&o);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	ck_assert(t_exists(dir, "other/m42/grid/TEXTOUTj1"));
	ck_assert(!t_exists(dir, "archive"));
	t_sql_eq(db, "{\"model\":\"m42\"}", "SELECT sets FROM jobpub_attempts WHERE job = ?", JOB);
	free(url);
}
END_TEST

/* ---------------------------------------------------------------- the catalogue */

static void
rm_archive(void)
{
	char *p = t_path(dir, "archive");

	t_rmtree(p);
	free(p);
	ck_assert(!t_exists(dir, "archive"));
}

START_TEST(test_catalog_locked)
{
	sqlite3 *h;
	struct jp_publish_opts o = opts();
	int64_t t0, dt;
	int rc;

	t_sql_exec(db, "PRAGMA journal_mode = WAL; CREATE TABLE x (y)");
	h = t_sql_open(db);
	ck_assert_int_eq(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	o.db_timeout_ms = 200;
	t0 = jp_now_ms();
	rc = publish_with(&o);
	dt = jp_now_ms() - t0;
	sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(h);
	ck_assert_msg(rc == JP_E_TEMPFAIL, "rc %d: %s", rc, err.msg);
	ck_assert_msg(strstr(err.msg, "locked") != NULL, "%s", err.msg);
	ck_assert_msg(dt < 5000, "took %lld ms", (long long)dt);
	ck_assert(!t_exists(dir, "archive"));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'jobs'",
	                           NULL),
	                 0);
}
END_TEST

START_TEST(test_catalog_locked_after_open)
{
	sqlite3 *h;
	struct jp_publish_opts o = opts();
	int rc;

	/* schema in place, job table ready: the lock is met at the first write (the attempt) */
	rc = publish(0);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	rm_archive();
	h = t_sql_open(db);
	ck_assert_int_eq(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	o.db_timeout_ms = 200;
	rc = publish_with(&o);
	sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(h);
	ck_assert_msg(rc == JP_E_TEMPFAIL, "rc %d: %s", rc, err.msg);
	ck_assert(!t_exists(dir, "archive"));
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_attempts", NULL), 1);
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", JOB);
}
END_TEST

START_TEST(test_catalog_record_fails_files_stay)
{
	char *log = NULL;
	size_t loglen = 0;
	FILE *fp;
	int rc;

	/* the catalogue refuses the final record: files are complete and stay; 75 */
	rc = publish(0);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	rm_archive();
	t_sql_exec(db, "CREATE TRIGGER no_publish BEFORE UPDATE ON jobs"
	               " WHEN NEW.status = 'published' BEGIN SELECT RAISE(ABORT, 'refused'); END;"
	               "UPDATE jobs SET status = 'queued'");
	fp = open_memstream(&log, &loglen);
	jp_log_setup(JP_LOG_TEXT, -1, fp);
	rc = publish(0);
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	fclose(fp);
	ck_assert_msg(rc == JP_E_TEMPFAIL, "rc %d: %s", rc, err.msg);
	ck_assert_msg(strstr(log, "catalogue could not be updated") != NULL, "log: %s", log);
	free(log);
	assert_same("out/TEXTOUT", "grid/TEXTOUTj1");
	assert_same("onion/ONION3_CO.OUT", "onion/ONIONj1.ONION3_CO.OUT");
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	/* The smaller failure record still went in: nobody reads this job as published or
	 * running, and the attempt carries the reason. */
	t_sql_eq(db, "failed_storage", "SELECT status FROM jobs WHERE id = ?", JOB);
	t_sql_eq(db, "failed_storage", "SELECT outcome FROM jobpub_attempts WHERE job = ? ORDER BY id DESC LIMIT 1", JOB);

	/* and once the catalogue takes it, a re-publish adopts the files without sending them */
	t_sql_exec(db, "DROP TRIGGER no_publish");
	rc = publish(0);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	ck_assert_int_eq(last_attempt_int("bytes"), 0);
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", JOB);
}
END_TEST

/* ---------------------------------------------------------------- dry run */

START_TEST(test_dry_run_no_db)
{
	struct jp_publish_opts o = opts();
	char *plan = NULL, *u;
	size_t len = 0;
	FILE *fp = open_memstream(&plan, &len);
	int rc;

	o.dry_run = 1;
	o.plan_out = fp;
	rc = publish_with(&o);
	fclose(fp);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	ck_assert(!t_exists(dir, "cat.db"));
	ck_assert(!t_exists(dir, "archive"));
	ck_assert_uint_eq(t_count_entries(dir), 1 + t_count_entries(work) + 1); /* work, manifest */
	ck_assert_msg(strstr(plan, "out/TEXTOUT") != NULL, "%s", plan);
	ck_assert_msg(strstr(plan, "onion/ONION3_CO.OUT") != NULL, "%s", plan);
	u = url_of("grid/TEXTOUTj1");
	ck_assert_msg(strstr(plan, u) != NULL, "plan lacks %s: %s", u, plan);
	free(u);
	u = url_of("onion/ONIONj1.jerg_CO.smli");
	ck_assert_msg(strstr(plan, u) != NULL, "plan lacks %s: %s", u, plan);
	free(u);
	ck_assert_msg(strstr(plan, "4 files") != NULL, "%s", plan);
	ck_assert_msg(strstr(plan, "4.9 KiB") != NULL || strstr(plan, "5000") != NULL, "%s", plan);
	free(plan);
}
END_TEST

START_TEST(test_dry_run_existing_db_unchanged)
{
	struct jp_publish_opts o = opts();
	char *plan = NULL, *before, *after;
	size_t len = 0, la = 0, lb = 0;
	FILE *fp;
	int rc;

	make_pdr_db();
	write_manifest(NULL, pdr_catalog, pdr_outputs);
	before = t_read(dir, "cat.db", &lb);
	o.job = "7";
	o.dry_run = 1;
	fp = open_memstream(&plan, &len);
	o.plan_out = fp;
	rc = publish_with(&o);
	fclose(fp);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	ck_assert_msg(strstr(plan, "pdrgrid/TEXTOUT100_40_10") != NULL, "%s", plan);
	after = t_read(dir, "cat.db", &la);
	ck_assert(la == lb && memcmp(before, after, la) == 0);
	ck_assert(!t_exists(dir, "cat.db-wal"));
	ck_assert(!t_exists(dir, "archive"));
	free(before);
	free(after);
	free(plan);

	/* and an unknown job is found by a dry run too */
	o.job = "8";
	fp = open_memstream(&plan, &len);
	o.plan_out = fp;
	rc = publish_with(&o);
	fclose(fp);
	ck_assert_int_eq(rc, JP_E_DATA);
	free(plan);
}
END_TEST

START_TEST(test_dry_run_after_publish_unchanged)
{
	struct jp_publish_opts o = opts();
	char *plan = NULL, *before, *after;
	size_t len = 0, la = 0, lb = 0;
	FILE *fp;
	int rc;

	/* a real publish leaves a WAL-mode catalogue; then the job's files change */
	rc = publish(0);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	t_write_str(work, "out/chem.out", "CHEM CHECK\n");
	before = t_read(dir, "cat.db", &lb);
	o.dry_run = 1;
	fp = open_memstream(&plan, &len);
	o.plan_out = fp;
	rc = publish_with(&o);
	fclose(fp);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	after = t_read(dir, "cat.db", &la);
	ck_assert(la == lb && memcmp(before, after, la) == 0);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_attempts", NULL), 1);
	after[0] = 0;
	free(after);
	after = t_read(dir, "archive/grid/chemj1.out", NULL);
	ck_assert_str_eq(after, "chem check\n");
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	free(before);
	free(after);
	free(plan);
}
END_TEST

/* ---------------------------------------------------------------- interruption */

/* The log stream of the injection tests: an event line containing `trigger` interrupts the
 * publish as a signal would, right after that step. */
static const char *trigger;

static ssize_t
hook_write(void *cookie, const char *buf, size_t len)
{
	(void)cookie;
	if (trigger != NULL && memmem(buf, len, trigger, strlen(trigger)) != NULL)
		jp_publish_interrupt(SIGINT);
	return (ssize_t)len;
}

static int
publish_interrupted_at(const char *when, int overwrite)
{
	cookie_io_functions_t io = {NULL, hook_write, NULL, NULL};
	FILE *fp = fopencookie(NULL, "w", io);
	int rc;

	ck_assert_ptr_nonnull(fp);
	setvbuf(fp, NULL, _IOLBF, 8192); /* one write per event line */
	trigger = when;
	jp_log_setup(JP_LOG_TEXT, 1, fp);
	rc = publish(overwrite);
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	trigger = NULL;
	fclose(fp);
	return rc;
}

START_TEST(test_interrupt_after_stage)
{
	int rc = publish_interrupted_at("staged textout", 0);

	ck_assert_msg(rc == JP_E_TEMPFAIL, "rc %d: %s", rc, err.msg);
	ck_assert_msg(strstr(err.msg, "SIGINT") != NULL, "%s", err.msg);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	ck_assert(!t_exists(dir, "archive/grid/TEXTOUTj1"));
	ck_assert(!t_exists(dir, "archive/grid/chemj1.out"));
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM jobs WHERE id = ?", JOB);
	assert_last_attempt("interrupted", "tempfail");
	ck_assert_int_eq(last_attempt_int("exit_code"), 75);
}
END_TEST

START_TEST(test_interrupt_after_commit_undoes)
{
	char *back;
	int rc;

	/* chem's final name already holds our content: it is adopted, and must survive the undo;
	 * the onion file replaced with --overwrite keeps its new content */
	t_write_str(dir, "archive/grid/chemj1.out", "chem check\n");
	t_write_str(dir, "archive/onion/ONIONj1.jerg_CO.smli", "old!!\n");
	rc = publish_interrupted_at("committed onion onion/jerg_CO.smli", 1);
	ck_assert_msg(rc == JP_E_TEMPFAIL, "rc %d: %s", rc, err.msg);
	/* TEXTOUT was committed by this attempt onto a free name: undone */
	ck_assert(!t_exists(dir, "archive/grid/TEXTOUTj1"));
	back = t_read(dir, "archive/grid/chemj1.out", NULL);
	ck_assert_str_eq(back, "chem check\n");
	free(back);
	back = t_read(dir, "archive/onion/ONIONj1.jerg_CO.smli", NULL);
	ck_assert_str_eq(back, "jerg\n");
	free(back);
	ck_assert(!t_exists(dir, "archive/onion/ONIONj1.ONION3_CO.OUT"));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM jobs WHERE id = ?", JOB);
	t_sql_eq(db, NULL, "SELECT output_textout_file FROM jobs WHERE id = ?", JOB);
	assert_last_attempt("interrupted", "tempfail");
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files", NULL), 0);
}
END_TEST

/* The log stream of the swap test: the event line "staged textout" (after the plan, before
 * chem.out is staged) swaps out/chem.out for a symlink to a same-size file outside the job. */
static ssize_t
swap_write(void *cookie, const char *buf, size_t len)
{
	(void)cookie;
	if (memmem(buf, len, "staged textout", 14) != NULL) {
		char *f = t_path(work, "out/chem.out"), *outside = t_path(dir, "secret");

		ck_assert_int_eq(unlink(f), 0);
		ck_assert_int_eq(symlink(outside, f), 0);
		free(f);
		free(outside);
	}
	return (ssize_t)len;
}

/* Does any file below d hold `needle`? */
static int
found_below(const char *d, const char *needle)
{
	char *cmd;
	int rc;

	ck_assert(asprintf(&cmd, "grep -rqF '%s' '%s'", needle, d) > 0);
	rc = system(cmd);
	free(cmd);
	return rc == 0;
}

/* A symlink swapped in between the plan and the staging (issue 13, defect 8): the file is
 * refused (74), the attempt rolled back, and no byte of the outside file is published. */
START_TEST(test_symlink_swapped_after_plan)
{
	cookie_io_functions_t io = {NULL, swap_write, NULL, NULL};
	FILE *fp = fopencookie(NULL, "w", io);
	char *arch = t_path(dir, "archive");
	int rc;

	t_write_str(dir, "secret", "SECRET!!!!\n"); /* the size of out/chem.out */
	ck_assert_ptr_nonnull(fp);
	setvbuf(fp, NULL, _IOLBF, 8192);
	jp_log_setup(JP_LOG_TEXT, 1, fp);
	rc = publish(0);
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	fclose(fp);
	ck_assert_msg(rc == JP_E_IOERR, "rc %d: %s", rc, err.msg);
	ck_assert_str_eq(err.msg, "plan: out/chem.out changed since it was checked (removed, replaced, or "
	                          "a symbolic link swapped in); it is not published");
	ck_assert(!found_below(arch, "SECRET"));
	ck_assert(!t_exists(dir, "archive/grid/chemj1.out"));
	ck_assert(!t_exists(dir, "archive/grid/TEXTOUTj1"));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM jobs WHERE id = ?", JOB);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files", NULL), 0);
	free(arch);
}
END_TEST

static void
on_term(int sig)
{
	jp_publish_interrupt(sig);
}

START_TEST(test_sigterm_child)
{
	const size_t big = 128u << 20;
	struct timespec ts = {0, 1000000};
	int ready[2], status, i;
	pid_t pid;
	char c;

	write_manifest(NULL, NULL,
	               "  - name: big\n"
	               "    path: out/big.bin\n"
	               "    to: grid/big${job}.bin\n"
	               "    column: output_big_file\n"
	               "  - name: textout\n"
	               "    path: out/TEXTOUT\n"
	               "    to: grid/TEXTOUT${job}\n");
	t_write_pattern(work, "out/big.bin", big, 5);
	ck_assert_int_eq(pipe(ready), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		struct sigaction sa;
		int rc;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_term;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
		close(ready[0]);
		if (write(ready[1], "r", 1) != 1)
			_exit(99);
		close(ready[1]);
		rc = publish(0);
		_exit(rc);
	}
	close(ready[1]);
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	/* wait until the big file is being staged (a temp name appears), then stop it */
	for (i = 0; i < 20000 && t_count_prefixed(dir, JP_TMP_PREFIX) == 0; i++)
		nanosleep(&ts, NULL);
	ts.tv_nsec = 20000000;
	nanosleep(&ts, NULL);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child died of signal %d", WTERMSIG(status));
	ck_assert_msg(WEXITSTATUS(status) == JP_E_TEMPFAIL,
	              "exit %d (0 means the publish finished before SIGTERM)", WEXITSTATUS(status));
	ck_assert(!t_exists(dir, "archive/grid/bigj1.bin"));
	ck_assert(!t_exists(dir, "archive/grid/TEXTOUTj1"));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM jobs WHERE id = ?", JOB);
	t_sql_eq(db, NULL, "SELECT output_big_file FROM jobs WHERE id = ?", JOB);
	assert_last_attempt("interrupted", "tempfail");
	t_sql_eq(db, "publish: interrupted by SIGTERM",
	         "SELECT message FROM jobpub_attempts WHERE job = ? ORDER BY id DESC", JOB);
	ck_assert_msg(last_attempt_int("bytes") < (long long)big, "bytes %lld",
	              last_attempt_int("bytes"));
}
END_TEST

/* pthread_create as the publisher sees it: this definition in the test program wins over
 * libc's for the library linked into it.  From call number refuse_from on (counted from 1;
 * 0: never) it fails with EAGAIN, as under a pids cgroup or ulimit -u. */
static unsigned thread_calls, refuse_from;

int
pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

	if (refuse_from != 0 && ++thread_calls >= refuse_from)
		return EAGAIN;
	*(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
	return real(th, attr, fn, arg);
}

/* 40 small files over 3 lanes, which run three times (checks, staging, commit: two threads
 * each).  Threads refused from call `_i` on: 1 none at all, 2 and 4 lane 2 from the checks or
 * the staging on, 3 none from the staging on, 5 none for the commit (files staged on lanes 1
 * and 2 wait there), 6 no lane 2 for the commit.  Every file must be committed and recorded. */
START_TEST(test_lanes_without_threads)
{
	struct jp_publish_opts o = opts();
	char rel[32];
	int rc, i;

	for (i = 0; i < 40; i++) {
		snprintf(rel, sizeof(rel), "many/f%02d", i);
		t_write_pattern(work, rel, 1000 + (size_t)i, (unsigned)i);
	}
	write_manifest(NULL, NULL, "  - name: many\n    glob: many/*\n    to: many/${basename}\n");
	o.parallel = 3;
	thread_calls = 0;
	refuse_from = (unsigned)_i;
	rc = publish_with(&o);
	refuse_from = 0;
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	for (i = 0; i < 40; i++) {
		snprintf(rel, sizeof(rel), "many/f%02d", i);
		assert_same(rel, rel);
	}
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files WHERE job = ?", JOB, NULL),
	                 40);
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", JOB);
}
END_TEST

/* realpath as the file:// backend's open sees it: the destination's root from call number
 * refuse_root_from on (counted from 1; 0: never) fails with EIO, so the run's destination
 * opens and a later lane's (re)open does not: a server that dies between two connects. */
static unsigned root_calls, refuse_root_from;
static const char *refused_root;
/* And a signal while planning: the interrupt flag is set at the interrupt_at-th resolution of
 * a path containing "/many/" (0: never); many_calls counts them. */
static unsigned many_calls, interrupt_at;

char *
realpath(const char *path, char *resolved)
{
	char *(*real)(const char *, char *);

	if (strstr(path, "/many/") != NULL && ++many_calls == interrupt_at)
		jp_publish_interrupt(SIGTERM);
	if (refuse_root_from != 0 && refused_root != NULL && strcmp(path, refused_root) == 0 &&
	    ++root_calls >= refuse_root_from) {
		errno = EIO;
		return NULL;
	}
	*(void **)&real = dlsym(RTLD_NEXT, "realpath");
	return real(path, resolved);
}

/* Lane 1's destination never opens: the rollback meets a lane without a destination (it
 * crashed in jp_dest_sync(NULL)), and the job must end failed_storage with the open's reason
 * and class, not stay `publishing`. */
START_TEST(test_lane_open_fails)
{
	struct jp_publish_opts o = opts();
	char *root = t_path(dir, "archive");
	int rc;

	o.parallel = 3;
	refused_root = root;
	root_calls = 0;
	refuse_root_from = 2;
	rc = publish_with(&o);
	refuse_root_from = 0;
	refused_root = NULL;
	ck_assert_msg(rc == JP_E_IOERR, "rc %d: %s", rc, err.msg);
	ck_assert_msg(strstr(err.msg, root) != NULL, "%s", err.msg);
	ck_assert_uint_ge(root_calls, 2);
	free(root);
	ck_assert(!t_exists(dir, "archive/grid/TEXTOUTj1"));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM jobs WHERE id = ?", JOB);
	assert_last_attempt(JP_STATUS_FAILED, "ioerr");
	ck_assert_int_eq(last_attempt_int("exit_code"), JP_E_IOERR);
	/* and the job publishes once the destination opens again */
	rc = publish_with(&o);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	assert_same("out/TEXTOUT", "grid/TEXTOUTj1");
}
END_TEST

/* A signal before the attempt begins records nothing: not even the catalogue is created. */
START_TEST(test_interrupt_before_attempt)
{
	int rc;

	jp_publish_interrupt(SIGTERM);
	rc = publish(0);
	ck_assert_msg(rc == JP_E_TEMPFAIL, "rc %d: %s", rc, err.msg);
	ck_assert_str_eq(err.msg, "publish: interrupted by SIGTERM");
	ck_assert(!t_exists(dir, "cat.db"));
	ck_assert(!t_exists(dir, "archive"));
	/* and on a catalogue that exists: the published job stays as it was, no attempt */
	jp_publish_interrupt(0);
	ck_assert_msg(publish(0) == 0, "%s", err.msg);
	jp_publish_interrupt(SIGTERM);
	rc = publish(1);
	ck_assert_msg(rc == JP_E_TEMPFAIL, "rc %d: %s", rc, err.msg);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_attempts", NULL), 1);
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", JOB);
}
END_TEST

/* A signal while a glob of 200 files is planned stops the plan at the next match: the attempt
 * is interrupted, the destination never opened. */
START_TEST(test_interrupt_while_planning)
{
	char rel[32];
	int rc, i;

	for (i = 0; i < 200; i++) {
		snprintf(rel, sizeof(rel), "many/f%03d", i);
		t_write_str(work, rel, "x\n");
	}
	write_manifest(NULL, NULL, "  - name: many\n    glob: many/*\n    to: many/${basename}\n");
	many_calls = 0;
	interrupt_at = 3;
	rc = publish(0);
	interrupt_at = 0;
	ck_assert_msg(rc == JP_E_TEMPFAIL, "rc %d: %s", rc, err.msg);
	ck_assert_str_eq(err.msg, "publish: interrupted by SIGTERM");
	ck_assert_msg(many_calls < 10, "%u files resolved after the signal", many_calls);
	ck_assert(!t_exists(dir, "archive"));
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM jobs WHERE id = ?", JOB);
	assert_last_attempt("interrupted", "tempfail");
}
END_TEST

/* ---------------------------------------------------------------- at the moment of the commit
 *
 * renameat2, unlinkat and fsync as the file:// backend calls them: this program's definitions
 * win over libc's.  The commit's rename to the final name `before_name` first runs
 * before_rename (another publisher creating that name at that moment); an unlinkat of the name
 * `fail_unlink` and an fsync of the directory `fail_fsync` fail with EIO, once each. */
static const char *before_name, *fail_unlink, *fail_fsync;
static void (*before_rename)(void);

int
renameat2(int a, const char *from, int b, const char *to, unsigned int flags)
{
	static int (*real)(int, const char *, int, const char *, unsigned int);

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "renameat2");
	if (before_name != NULL && strcmp(to, before_name) == 0) {
		before_name = NULL;
		before_rename();
	}
	return real(a, from, b, to, flags);
}

int
unlinkat(int d, const char *path, int flags)
{
	static int (*real)(int, const char *, int);

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "unlinkat");
	if (fail_unlink != NULL && strcmp(path, fail_unlink) == 0) {
		fail_unlink = NULL;
		errno = EIO;
		return -1;
	}
	return real(d, path, flags);
}

int
fsync(int fd)
{
	static int (*real)(int);
	char link[64], target[4096];
	ssize_t n;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "fsync");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if (fail_fsync != NULL && (n = readlink(link, target, sizeof(target) - 1)) > 0 &&
	    (target[n] = '\0', strcmp(target, fail_fsync) == 0)) {
		fail_fsync = NULL;
		errno = EIO;
		return -1;
	}
	return real(fd);
}

/* Another publisher puts out/TEXTOUT's very bytes under its final name. */
static void
same_textout_appears(void)
{
	size_t len = 0;
	char *data = t_read(work, "out/TEXTOUT", &len);

	t_write(dir, "archive/grid/TEXTOUTj1", data, len);
	free(data);
}

/* Another publisher puts other bytes under the last file's final name. */
static void
other_onion_appears(void)
{
	t_write_str(dir, "archive/onion/ONIONj1.ONION3_CO.OUT", "someone else's\n");
}

/* The final name appears with our content between the precheck and the commit: the file is
 * already published, the temporary goes, the job is published. */
START_TEST(test_commit_race_identical)
{
	int rc;

	before_name = "TEXTOUTj1";
	before_rename = same_textout_appears;
	rc = publish(0);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	ck_assert_ptr_null(before_name);
	assert_same("out/TEXTOUT", "grid/TEXTOUTj1");
	assert_same("onion/ONION3_CO.OUT", "onion/ONIONj1.ONION3_CO.OUT");
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", JOB);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files WHERE job = ?", JOB, NULL),
	                 4);
}
END_TEST

/* Other content appears under the last name just before its commit: a conflict (69), and the
 * rollback removes the files this attempt committed.  One removal fails and so does the
 * directory sync: both are logged, and the file left is found by gc, the job failed. */
START_TEST(test_commit_race_conflict_rollback)
{
	char *log = NULL, *grid = t_path(dir, "archive/grid"), *back;
	size_t len = 0;
	FILE *fp = open_memstream(&log, &len);
	int rc;

	before_name = "ONIONj1.ONION3_CO.OUT";
	before_rename = other_onion_appears;
	fail_unlink = "TEXTOUTj1";
	fail_fsync = grid;
	jp_log_setup(JP_LOG_TEXT, 0, fp);
	rc = publish(0);
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	fclose(fp);
	ck_assert_msg(rc == JP_E_UNAVAILABLE, "rc %d: %s", rc, err.msg);
	ck_assert_msg(strstr(err.msg, "publish: conflict: ") == err.msg &&
	                  strstr(err.msg, "/onion/ONIONj1.ONION3_CO.OUT already holds different "
	                                  "content") != NULL,
	              "%s", err.msg);
	ck_assert_ptr_null(before_name);
	ck_assert_ptr_null(fail_unlink);
	ck_assert_ptr_null(fail_fsync);
	ck_assert_msg(strstr(log, "rollback: posix: cannot remove ") != NULL &&
	                  strstr(log, "/grid/TEXTOUTj1: Input/output error") != NULL,
	              "log: %s", log);
	ck_assert_msg(strstr(log, "rollback: posix: fsync ") != NULL, "log: %s", log);
	/* the other publisher's file is untouched; ours are gone but the one that could not go */
	back = t_read(dir, "archive/onion/ONIONj1.ONION3_CO.OUT", NULL);
	ck_assert_str_eq(back, "someone else's\n");
	free(back);
	ck_assert(!t_exists(dir, "archive/grid/chemj1.out"));
	ck_assert(!t_exists(dir, "archive/onion/ONIONj1.jerg_CO.smli"));
	assert_same("out/TEXTOUT", "grid/TEXTOUTj1");
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	t_sql_eq(db, JP_STATUS_FAILED, "SELECT status FROM jobs WHERE id = ?", JOB);
	ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobpub_files WHERE job = ?", JOB, NULL),
	                 0);
	free(log);
	free(grid);
}
END_TEST

/* A directory under a file's final name: refused before anything is staged. */
START_TEST(test_directory_in_the_way)
{
	char *d = t_path(dir, "archive/grid/TEXTOUTj1");
	int rc;

	t_mkparents(d);
	ck_assert_int_eq(mkdir(d, 0755), 0);
	rc = publish(0);
	ck_assert_msg(rc == JP_E_UNAVAILABLE, "rc %d: %s", rc, err.msg);
	ck_assert_msg(strstr(err.msg, "/grid/TEXTOUTj1 is a directory; cannot publish out/TEXTOUT "
	                              "there") != NULL,
	              "%s", err.msg);
	ck_assert(!t_exists(dir, "archive/grid/chemj1.out"));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	free(d);
}
END_TEST

/* A dry run lists the optional outputs that are absent as skipped. */
START_TEST(test_dry_run_lists_skipped)
{
	struct jp_publish_opts o = opts();
	char *plan = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&plan, &len);
	int rc;

	write_manifest(NULL, NULL,
	               "  - {name: textout, path: out/TEXTOUT, to: t}\n"
	               "  - {name: chemchk, path: out/chemchk.out, to: c, required: false}\n");
	o.dry_run = 1;
	o.plan_out = fp;
	rc = publish_with(&o);
	fclose(fp);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	ck_assert_msg(strstr(plan, "         -  chemchk (optional, absent: skipped)\n") != NULL,
	              "%s", plan);
	ck_assert_msg(strstr(plan, "1 files, ") != NULL, "%s", plan);
	free(plan);
}
END_TEST

/* write as the file:// backend calls it: with slow_writes set, each write into a temporary
 * takes 150 ms (a slow disk or network), and samples the job's lease expiry meanwhile. */
static int slow_writes;
static long long lease_first, lease_last;

ssize_t
write(int fd, const void *buf, size_t len)
{
	static ssize_t (*real)(int, const void *, size_t);
	char link[64], target[4096];
	ssize_t n;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "write");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if (slow_writes && (n = readlink(link, target, sizeof(target) - 1)) > 0 &&
	    (target[n] = '\0', strstr(target, JP_TMP_PREFIX) != NULL)) {
		long long e;

		usleep(150000);
		e = t_sql_int(db, "SELECT expires FROM jobpub_leases WHERE job = ?", JOB, NULL);
		if (lease_first == 0)
			lease_first = e;
		lease_last = e;
	}
	return real(fd, buf, len);
}

/* A publish longer than its lease (1 s here: 10 writes of 150 ms) renews it as it goes, so no
 * other publisher can take the job over from a live one. */
START_TEST(test_lease_renewed)
{
	struct jp_publish_opts o = opts();
	int rc;

	t_write_pattern(work, "big", 10 << 20, 3);
	write_manifest(NULL, NULL, "  - {name: big, path: big, to: big}\n");
	o.lease_s = 1;
	lease_first = lease_last = 0;
	slow_writes = 1;
	rc = publish_with(&o);
	slow_writes = 0;
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	assert_same("big", "big");
	ck_assert_int_gt(lease_first, 0);
	ck_assert_msg(lease_last > lease_first, "lease expiry %lld, then %lld: not renewed",
	              lease_first, lease_last);
}
END_TEST

/* Every allocation of jobpub's own (tests/failalloc.h; SQLite's are not counted) in a publish
 * failed in turn, each time from scratch.  The publish fails (70 for out of memory; 75 when
 * the catalogue could not take its record) or succeeds when the allocation was one it can do
 * without; either way it never crashes, leaves no temporary, never leaves the job
 * `publishing`, and a success has published every file whole.  Once the process is gone (its
 * lease is then void), the next publish publishes the job. */
START_TEST(test_allocation_failures)
{
	struct jp_publish_opts o = opts();
	unsigned long n;
	int rc;
	char *log = NULL;
	size_t loglen = 0;
	FILE *fp = open_memstream(&log, &loglen);

	jp_log_setup(JP_LOG_TEXT, -1, fp); /* what each failure logs is not this test's business */
	for (n = 1;; n++) {
		rm_archive();
		unlink(db);
		jp_error_clear(&err);
		t_fail_alloc(n);
		rc = jp_exit_code(jp_publish(&o, &err), &err);
		t_fail_alloc(0);
		if (!t_fail_alloc_fired())
			break;
		ck_assert_msg(rc == 0 || rc == JP_E_SOFTWARE || rc == JP_E_TEMPFAIL,
		              "allocation %lu: rc %d: %s", n, rc, err.msg);
		ck_assert_msg(rc == 0 || err.msg[0] != '\0', "allocation %lu: no reason", n);
		ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
		if (t_exists(dir, "cat.db") &&
		    t_sql_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'jobs'", NULL) == 1)
			ck_assert_int_eq(t_sql_int(db, "SELECT count(*) FROM jobs WHERE status = "
			                               "'publishing'", NULL),
			                 0);
		if (rc == 0) {
			assert_same("out/TEXTOUT", "grid/TEXTOUTj1");
			assert_same("onion/ONION3_CO.OUT", "onion/ONIONj1.ONION3_CO.OUT");
		}
		if (n % 16 == 0 || rc == 0) {
			/* the process that failed is gone: so is its lease */
			if (t_exists(dir, "cat.db") &&
			    t_sql_int(db, "SELECT count(*) FROM sqlite_master WHERE name = "
			                  "'jobpub_leases'", NULL) == 1)
				t_sql_exec(db, "DELETE FROM jobpub_leases");
			ck_assert_msg(publish(0) == 0, "after allocation %lu (rc %d): %s", n, rc,
			              err.msg);
			assert_same("out/TEXTOUT", "grid/TEXTOUTj1");
		}
	}
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	fclose(fp);
	free(log);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, err.msg);
	ck_assert_uint_ge(n, 50);
	t_sql_eq(db, "published", "SELECT status FROM jobs WHERE id = ?", JOB);
}
END_TEST

static Suite *
publish_suite(void)
{
	Suite *s = suite_create("publish");
	TCase *tc;

	tc = tcase_create("success");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_success);
	tcase_add_test(tc, test_republish_unchanged);
	tcase_add_test(tc, test_optional_absent);
	tcase_add_test(tc, test_external_table);
	tcase_add_test(tc, test_dest_override_and_sets);
	tcase_add_loop_test(tc, test_lanes_without_threads, 1, 7);
	suite_add_tcase(s, tc);

	tc = tcase_create("conflict");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_conflict_other_size);
	tcase_add_test(tc, test_conflict_same_size);
	tcase_add_test(tc, test_cleanup_hook_on_failure);
	tcase_add_test(tc, test_conflict_after_partial_publish_keeps_status_columns);
	tcase_add_test(tc, test_conflict_overwrite);
	tcase_add_test(tc, test_commit_race_identical);
	tcase_add_test(tc, test_commit_race_conflict_rollback);
	tcase_add_test(tc, test_directory_in_the_way);
	suite_add_tcase(s, tc);

	tc = tcase_create("refused");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_missing_required);
	tcase_add_test(tc, test_missing_required_glob);
	tcase_add_test(tc, test_optional_glob_dir_absent);
	tcase_add_test(tc, test_external_unknown_job);
	tcase_add_test(tc, test_dest_cannot_be_created);
	tcase_add_test(tc, test_lane_open_fails);
	suite_add_tcase(s, tc);

	tc = tcase_create("catalog");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_catalog_locked);
	tcase_add_test(tc, test_catalog_locked_after_open);
	tcase_add_test(tc, test_catalog_record_fails_files_stay);
	tcase_add_test(tc, test_lease_renewed);
	suite_add_tcase(s, tc);

	/* a few hundred publishes, each with its catalogue made and fsynced */
	tc = tcase_create("allocation");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_allocation_failures);
	suite_add_tcase(s, tc);

	tc = tcase_create("dry-run");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_dry_run_no_db);
	tcase_add_test(tc, test_dry_run_existing_db_unchanged);
	tcase_add_test(tc, test_dry_run_after_publish_unchanged);
	tcase_add_test(tc, test_dry_run_lists_skipped);
	suite_add_tcase(s, tc);

	tc = tcase_create("interrupt");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_interrupt_after_stage);
	tcase_add_test(tc, test_symlink_swapped_after_plan);
	tcase_add_test(tc, test_interrupt_after_commit_undoes);
	tcase_add_test(tc, test_sigterm_child);
	tcase_add_test(tc, test_interrupt_before_attempt);
	tcase_add_test(tc, test_interrupt_while_planning);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	return t_run(publish_suite());
}
