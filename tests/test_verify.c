/*
 * test_verify.c - src/core/verify.c: jp_verify over jobs published with jp_publish to a file://
 * archive and a temp SQLite catalogue.  Covers everything as recorded, a missing file, a
 * changed size, a same-size change only --deep sees, a choice of jobs (one with no published
 * file), a catalogue jobpub has not written yet, a destination that cannot be opened, a
 * catalogue that cannot be read, and the order and content of the reports.
 */
#include "config.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "testpub.h"

#include "catalog.h"
#include "verify.h"

static struct t_pub P;
static struct jp_error err;

/* The reports, one line each: "file JOB REMOTE-TAIL PROBLEM|ok", "job JOB OK BAD",
 * "none JOB", "unwritten JOB|-". */
static char log_buf[8192];

static void
record(void *arg, const struct jp_verify_report *r)
{
	size_t n = strlen(log_buf);
	const char *tail;

	(void)arg;
	switch (r->what) {
	case JP_VERIFY_FILE:
		tail = strstr(r->remote, "/archive/");
		snprintf(log_buf + n, sizeof(log_buf) - n, "file %s %s %s\n", r->job,
		         tail ? tail + 9 : r->remote, r->problem ? r->problem : "ok");
		break;
	case JP_VERIFY_JOB:
		snprintf(log_buf + n, sizeof(log_buf) - n, "job %s %zu %zu\n", r->job, r->ok, r->bad);
		break;
	case JP_VERIFY_NO_FILES:
		snprintf(log_buf + n, sizeof(log_buf) - n, "none %s\n", r->job);
		break;
	case JP_VERIFY_UNWRITTEN:
		snprintf(log_buf + n, sizeof(log_buf) - n, "unwritten %s\n", r->job ? r->job : "-");
		break;
	}
}

static void
setup(void)
{
	t_pub_setup(&P);
	log_buf[0] = '\0';
	ck_assert_int_eq(t_pub_job(&P, "j1", 5000, &err), 0);
	ck_assert_int_eq(t_pub_job(&P, "j2", 100, &err), 0);
	jp_error_clear(&err);
}

static void
teardown(void)
{
	t_pub_teardown(&P);
}

/* Runs jp_verify on P.db for jobs (NULL-terminated, or NULL: all). */
static int
run(const char *const *jobs, int deep, struct jp_verify_result *res)
{
	struct jp_verify_opts o;
	struct jp_catalog *c = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	o.jobs = jobs;
	while (jobs != NULL && jobs[o.n_jobs] != NULL)
		o.n_jobs++;
	o.deep = deep;
	jp_error_clear(&err);
	ck_assert_int_eq(jp_catalog_open(P.db, 2000, JP_CATALOG_READONLY, &c, &err), JP_OK);
	rc = jp_verify(c, &o, record, NULL, res, &err);
	jp_catalog_close(c);
	return rc;
}

START_TEST(test_all_as_recorded)
{
	struct jp_verify_result res;

	ck_assert_int_eq(run(NULL, 0, &res), JP_OK);
	ck_assert_uint_eq(res.ok, 4);
	ck_assert_uint_eq(res.bad, 0);
	ck_assert_uint_eq(res.jobs_bad, 0);
	ck_assert_int_eq(res.unchecked, 0);
	ck_assert_int_eq(err.code, 0);
	ck_assert_str_eq(log_buf, "file j1 j1/a ok\nfile j1 j1/b.txt ok\njob j1 2 0\n"
	                          "file j2 j2/a ok\nfile j2 j2/b.txt ok\njob j2 2 0\n");
	/* --deep reads them back: still as recorded. */
	log_buf[0] = '\0';
	ck_assert_int_eq(run(NULL, 1, &res), JP_OK);
	ck_assert_uint_eq(res.ok, 4);
}
END_TEST

START_TEST(test_missing_file)
{
	struct jp_verify_result res;
	char *p = t_pub_remote(&P, "j1/a");

	ck_assert_int_eq(unlink(p), 0);
	free(p);
	ck_assert_int_eq(run(NULL, 0, &res), JP_WARN);
	ck_assert_uint_eq(res.ok, 3);
	ck_assert_uint_eq(res.bad, 1);
	ck_assert_uint_eq(res.jobs_bad, 1);
	ck_assert_int_eq(res.unchecked, 0);
	ck_assert_int_eq(err.code, 0);
	ck_assert_ptr_nonnull(strstr(log_buf, "file j1 j1/a missing\n"));
	ck_assert_ptr_nonnull(strstr(log_buf, "job j1 1 1\n"));
	ck_assert_ptr_nonnull(strstr(log_buf, "job j2 2 0\n"));
}
END_TEST

START_TEST(test_size_changed)
{
	struct jp_verify_result res;

	t_write_str(P.archive, "j2/b.txt", "bbb\n");
	ck_assert_int_eq(run(NULL, 0, &res), JP_WARN);
	ck_assert_uint_eq(res.bad, 1);
	ck_assert_ptr_nonnull(strstr(log_buf, "file j2 j2/b.txt size 4, recorded 2\n"));
}
END_TEST

START_TEST(test_deep_sees_same_size_change)
{
	struct jp_verify_result res;

	t_write_str(P.archive, "j2/b.txt", "c\n");
	ck_assert_int_eq(run(NULL, 0, &res), JP_OK); /* size only: as recorded */
	ck_assert_uint_eq(res.bad, 0);
	log_buf[0] = '\0';
	ck_assert_int_eq(run(NULL, 1, &res), JP_WARN);
	ck_assert_uint_eq(res.bad, 1);
	ck_assert_uint_eq(res.jobs_bad, 1);
	ck_assert_ptr_nonnull(strstr(log_buf, "file j2 j2/b.txt content differs: sha256 "));
	ck_assert_ptr_nonnull(strstr(log_buf, "file j1 j1/a ok\n"));
}
END_TEST

START_TEST(test_chosen_jobs)
{
	static const char *const only_j2[] = {"j2", NULL};
	static const char *const with_unknown[] = {"j2", "nosuch", NULL};
	struct jp_verify_result res;
	char *p = t_pub_remote(&P, "j1/a");

	ck_assert_int_eq(unlink(p), 0); /* j1 is not asked for: not seen */
	free(p);
	ck_assert_int_eq(run(only_j2, 0, &res), JP_OK);
	ck_assert_uint_eq(res.ok, 2);
	ck_assert_str_eq(log_buf, "file j2 j2/a ok\nfile j2 j2/b.txt ok\njob j2 2 0\n");
	/* A job without published files counts as one bad; its report comes before the JOB
	 * report of the job before it (that one ends with the run). */
	log_buf[0] = '\0';
	ck_assert_int_eq(run(with_unknown, 0, &res), JP_WARN);
	ck_assert_uint_eq(res.ok, 2);
	ck_assert_uint_eq(res.bad, 1);
	ck_assert_uint_eq(res.jobs_bad, 1);
	ck_assert_str_eq(log_buf,
	                 "file j2 j2/a ok\nfile j2 j2/b.txt ok\nnone nosuch\njob j2 2 0\n");
}
END_TEST

START_TEST(test_unwritten_catalogue)
{
	static const char *const j1[] = {"j1", NULL};
	struct jp_verify_result res;

	/* A pdr_run database jobpub has never written to: nothing wrong, said so. */
	ck_assert_int_eq(unlink(P.db), 0);
	t_sql_exec(P.db, "CREATE TABLE pdr_model_jobs (job_id TEXT, status TEXT);");
	ck_assert_int_eq(run(NULL, 0, &res), JP_OK);
	ck_assert_str_eq(log_buf, "unwritten -\n");
	ck_assert_uint_eq(res.ok + res.bad, 0);
	log_buf[0] = '\0';
	ck_assert_int_eq(run(j1, 0, &res), JP_OK);
	ck_assert_str_eq(log_buf, "unwritten j1\n");
	ck_assert_uint_eq(res.bad, 0);
}
END_TEST

START_TEST(test_destination_unusable)
{
	struct jp_verify_result res;
	char *sql;
	int rc;

	/* j2's files recorded under a destination that cannot be opened (below a file). */
	ck_assert(asprintf(&sql, "UPDATE jobpub_files SET destination = 'file://%s/cat.db/sub' "
	                         "WHERE job = 'j2';", P.dir) > 0);
	t_sql_exec(P.db, sql);
	free(sql);
	rc = run(NULL, 0, &res);
	ck_assert_int_ne(res.unchecked, 0);
	ck_assert_int_eq(rc, jp_severity_of(res.unchecked));
	ck_assert_int_eq(err.code, 0); /* in the reports, not on err */
	ck_assert_uint_eq(res.ok, 2);
	ck_assert_uint_eq(res.bad, 2);
	ck_assert_ptr_nonnull(strstr(log_buf, "file j2 "));
	ck_assert_ptr_nonnull(strstr(log_buf, " cannot be checked: "));
	ck_assert_ptr_null(strstr(log_buf, "file j1 j1/a cannot"));
}
END_TEST

START_TEST(test_key_not_recorded)
{
	struct jp_verify_result res;

	/* A row written before the catalogue recorded keys cannot be checked, but no
	 * destination failed: bad, not unchecked. */
	t_sql_exec(P.db, "UPDATE jobpub_files SET key = NULL WHERE job = 'j1' AND output = 'a';");
	ck_assert_int_eq(run(NULL, 0, &res), JP_WARN);
	ck_assert_int_eq(res.unchecked, 0);
	ck_assert_ptr_nonnull(strstr(log_buf, "file j1 j1/a cannot be checked: published before "
	                                      "the catalogue recorded its key\n"));
}
END_TEST

START_TEST(test_catalogue_error)
{
	struct jp_verify_result res;
	int rc;

	t_sql_exec(P.db, "DROP TABLE jobpub_files;");
	rc = run(NULL, 0, &res);
	ck_assert_int_lt(rc, JP_WARN);
	ck_assert_int_ne(err.code, 0);
	ck_assert_uint_eq(res.ok + res.bad, 0);
}
END_TEST

static Suite *
verify_suite(void)
{
	Suite *s = suite_create("verify");
	TCase *tc = tcase_create("verify");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_all_as_recorded);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_size_changed);
	tcase_add_test(tc, test_deep_sees_same_size_change);
	tcase_add_test(tc, test_chosen_jobs);
	tcase_add_test(tc, test_unwritten_catalogue);
	tcase_add_test(tc, test_destination_unusable);
	tcase_add_test(tc, test_key_not_recorded);
	tcase_add_test(tc, test_catalogue_error);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return t_run(verify_suite());
}
