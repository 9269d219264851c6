/*
 * test_republish.c - src/core/republish.c: jp_republish over a temp SQLite catalogue and a file://
 * archive, jobs published (or failed) with jp_publish first.  Covers nothing to do, a failed
 * job published again once its output is back (in a child: the hook runs there), one still
 * failing (its code and message), a dry run, the choice by status, job and time, two jobs at
 * once, a missing catalogue (66, with and without spool), a spool entry whose job the
 * catalogue never heard of (published, entry removed), and a stop before the first job.
 */
#include "config.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "testpub.h"

#include "catalog.h"
#include "republish.h"
#include "spool.h"

static struct t_pub P;
static struct jp_error err;
static struct jp_publish_opts base;
static struct jp_republish_opts ro;
static char *spool;

/* The reports, one line each: "plan JOB STATUS" or "done JOB CODE MESSAGE". */
static char log_buf[8192];

static void
record(void *arg, const struct jp_republish_report *r)
{
	size_t n = strlen(log_buf);

	(void)arg;
	if (r->what == JP_REPUBLISH_PLANNED)
		snprintf(log_buf + n, sizeof(log_buf) - n, "plan %s %s\n", r->job,
		         r->status ? r->status : "-");
	else
		snprintf(log_buf + n, sizeof(log_buf) - n, "done %s %d %s\n", r->job, r->code,
		         r->message);
}

static char *
status_of(const char *job)
{
	return t_sql_text(P.db, "SELECT status FROM jobs WHERE id = ?", job, NULL);
}

/* Publishes job with its output out/a missing: 66, the job failed_storage. */
static void
failed_job(const char *job)
{
	char *work = t_pub_work(&P, job), *a = t_path(work, "out/a"), *st;
	struct jp_publish_opts o;

	t_write_str(work, "out/b.txt", "b\n");
	memset(&o, 0, sizeof(o));
	o.job = job;
	o.manifest = P.manifest;
	o.workdir = work;
	o.db = P.db;
	o.dest = P.url;
	o.db_timeout_ms = 2000;
	jp_error_clear(&err);
	ck_assert_int_eq(jp_publish(&o, &err), JP_FAILED);
	ck_assert_int_eq(err.code, 66);
	ck_assert_int_eq(access(a, F_OK), -1);
	st = status_of(job);
	ck_assert_str_eq(st, JP_STATUS_FAILED);
	free(st);
	free(a);
	free(work);
}

/* Puts job's output back, so that a republish can succeed. */
static void
output_back(const char *job)
{
	char *work = t_pub_work(&P, job);

	t_write_pattern(work, "out/a", 700, 5);
	free(work);
}

static void
setup(void)
{
	t_pub_setup(&P);
	log_buf[0] = '\0';
	ck_assert_int_eq(t_pub_job(&P, "j1", 5000, &err), 0);
	ck_assert_int_eq(t_pub_job(&P, "j2", 100, &err), 0);
	spool = t_path(P.dir, "spool");
	memset(&base, 0, sizeof(base));
	base.db = P.db;
	base.db_timeout_ms = 2000;
	memset(&ro, 0, sizeof(ro));
	ro.publish = &base;
	ro.spool = spool; /* never the user's */
	ro.parallel = 1;
	jp_error_clear(&err);
}

static void
teardown(void)
{
	free(spool);
	spool = NULL;
	t_pub_teardown(&P);
}

static int
run(struct jp_republish_result *res)
{
	jp_error_clear(&err);
	return jp_republish(&ro, record, NULL, res, &err);
}

START_TEST(test_nothing_to_do)
{
	struct jp_republish_result res;

	ck_assert_int_eq(run(&res), JP_OK);
	ck_assert_uint_eq(res.jobs, 0);
	ck_assert_uint_eq(res.published + res.failed, 0);
	ck_assert_str_eq(log_buf, "");
}
END_TEST

static char *child_marker;

static void
child_hook(void)
{
	t_write_str(P.dir, "child-ran", "in the child\n");
}

START_TEST(test_failed_job_published)
{
	struct jp_republish_result res;
	char *st;

	failed_job("j3");
	output_back("j3");
	child_marker = t_path(P.dir, "child-ran");
	ro.child = child_hook;
	ck_assert_int_eq(run(&res), JP_OK);
	ck_assert_uint_eq(res.jobs, 1);
	ck_assert_uint_eq(res.published, 1);
	ck_assert_uint_eq(res.failed, 0);
	ck_assert_int_eq(res.first_code, 0);
	ck_assert_str_eq(log_buf, "done j3 0 \n");
	st = status_of("j3");
	ck_assert_str_eq(st, "published");
	free(st);
	ck_assert(t_exists(P.archive, "j3/a"));
	ck_assert_int_eq(access(child_marker, F_OK), 0); /* the hook ran (in the child) */
	free(child_marker);
	/* Done: nothing left to republish. */
	log_buf[0] = '\0';
	ro.child = NULL;
	ck_assert_int_eq(run(&res), JP_OK);
	ck_assert_uint_eq(res.jobs, 0);
}
END_TEST

START_TEST(test_still_failing)
{
	struct jp_republish_result res;
	char *st;

	failed_job("j3");
	ck_assert_int_eq(run(&res), jp_severity_of(66));
	ck_assert_uint_eq(res.published, 0);
	ck_assert_uint_eq(res.failed, 1);
	ck_assert_int_eq(res.first_code, 66);
	ck_assert_int_eq(err.code, 0); /* the job's failure is in its report */
	ck_assert_ptr_nonnull(strstr(log_buf, "done j3 66 "));
	ck_assert_ptr_nonnull(strstr(log_buf, "out/a"));
	st = status_of("j3");
	ck_assert_str_eq(st, JP_STATUS_FAILED);
	free(st);
}
END_TEST

START_TEST(test_dry_run)
{
	struct jp_republish_result res;
	char *st;

	failed_job("j3");
	output_back("j3");
	ro.dry_run = 1;
	ck_assert_int_eq(run(&res), JP_OK);
	ck_assert_uint_eq(res.jobs, 1);
	ck_assert_uint_eq(res.published, 0);
	ck_assert_str_eq(log_buf, "plan j3 " JP_STATUS_FAILED "\n");
	st = status_of("j3");
	ck_assert_str_eq(st, JP_STATUS_FAILED); /* nothing published */
	free(st);
	ck_assert(!t_exists(P.archive, "j3/a"));
}
END_TEST

START_TEST(test_choice)
{
	static const char *const only_j1[] = {"j1", NULL};
	struct jp_republish_result res;

	failed_job("j3");
	/* By status: the published ones, published again (nothing changed: still published). */
	ro.status = "published";
	ro.dry_run = 1;
	ck_assert_int_eq(run(&res), JP_OK);
	ck_assert_uint_eq(res.jobs, 2);
	ck_assert_ptr_nonnull(strstr(log_buf, "plan j1 published\n"));
	ck_assert_ptr_nonnull(strstr(log_buf, "plan j2 published\n"));
	ck_assert_ptr_null(strstr(log_buf, "j3"));
	/* By job: any status. */
	log_buf[0] = '\0';
	ro.status = NULL;
	ro.jobs = only_j1;
	ck_assert_int_eq(run(&res), JP_OK);
	ck_assert_str_eq(log_buf, "plan j1 published\n");
	/* By time: nothing started after 2999. */
	log_buf[0] = '\0';
	ro.jobs = NULL;
	ro.since = "2999-01-01";
	ck_assert_int_eq(run(&res), JP_OK);
	ck_assert_uint_eq(res.jobs, 0);
	ro.since = "2000-01-01";
	ck_assert_int_eq(run(&res), JP_OK);
	ck_assert_str_eq(log_buf, "plan j3 " JP_STATUS_FAILED "\n");
}
END_TEST

START_TEST(test_parallel)
{
	struct jp_republish_result res;

	failed_job("j3");
	failed_job("j4");
	output_back("j3");
	output_back("j4");
	ro.parallel = 2;
	ck_assert_int_eq(run(&res), JP_OK);
	ck_assert_uint_eq(res.jobs, 2);
	ck_assert_uint_eq(res.published, 2);
	ck_assert_ptr_nonnull(strstr(log_buf, "done j3 0 \n"));
	ck_assert_ptr_nonnull(strstr(log_buf, "done j4 0 \n"));
	ck_assert(t_exists(P.archive, "j3/a") && t_exists(P.archive, "j4/a"));
}
END_TEST

START_TEST(test_missing_catalogue)
{
	struct jp_republish_result res;
	char *db = t_path(P.dir, "typo.db");

	base.db = db;
	ck_assert_int_lt(run(&res), JP_WARN);
	ck_assert_int_eq(err.code, 66);
	ck_assert_ptr_nonnull(strstr(err.msg, "typo.db does not exist, and no entry of the spool"));
	ck_assert_str_eq(log_buf, "");
	/* With a status, spool entries do not count: said without them. */
	ro.status = JP_STATUS_FAILED;
	ck_assert_int_eq(run(&res), JP_FAILED);
	ck_assert_int_eq(err.code, 66);
	ck_assert_ptr_null(strstr(err.msg, "spool"));
	ck_assert_int_eq(access(db, F_OK), -1); /* not created */
	free(db);
}
END_TEST

START_TEST(test_spool_entry)
{
	struct jp_republish_result res;
	struct jp_spool_entry e;
	char *work = t_pub_work(&P, "s1"), *st;

	/* A job the catalogue never heard of, queued by enqueue. */
	t_write_pattern(work, "out/a", 10, 1);
	t_write_str(work, "out/b.txt", "b\n");
	memset(&e, 0, sizeof(e));
	e.job = "s1";
	e.manifest = P.manifest;
	e.workdir = work;
	e.db = P.db;
	e.dest = P.url;
	e.uid = geteuid();
	ck_assert_int_eq(jp_spool_write(spool, &e, &err), JP_OK);
	ro.dry_run = 1;
	ck_assert_int_eq(run(&res), JP_OK);
	ck_assert_str_eq(log_buf, "plan s1 spooled as s1\n");
	log_buf[0] = '\0';
	ro.dry_run = 0;
	ck_assert_int_eq(run(&res), JP_OK);
	ck_assert_str_eq(log_buf, "done s1 0 \n");
	st = status_of("s1");
	ck_assert_str_eq(st, "published");
	free(st);
	ck_assert(!t_exists(spool, "s1.json")); /* the request is done */
	free(work);
}
END_TEST

static void
stop_at_start(void)
{
	jp_republish_interrupt(SIGTERM);
}

START_TEST(test_stopped_before_start)
{
	struct jp_republish_result res;
	char *st;

	failed_job("j3");
	output_back("j3");
	ro.started = stop_at_start;
	ck_assert_int_eq(run(&res), JP_RETRY);
	ck_assert_int_eq(res.interrupted, SIGTERM);
	ck_assert_uint_eq(res.jobs, 1);
	ck_assert_uint_eq(res.published, 0);
	ck_assert_uint_eq(res.failed, 1); /* never started */
	ck_assert_int_eq(res.first_code, 0);
	ck_assert_str_eq(log_buf, "");
	st = status_of("j3");
	ck_assert_str_eq(st, JP_STATUS_FAILED);
	free(st);
}
END_TEST

static Suite *
republish_suite(void)
{
	Suite *s = suite_create("republish");
	TCase *tc = tcase_create("republish");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_nothing_to_do);
	tcase_add_test(tc, test_failed_job_published);
	tcase_add_test(tc, test_still_failing);
	tcase_add_test(tc, test_dry_run);
	tcase_add_test(tc, test_choice);
	tcase_add_test(tc, test_parallel);
	tcase_add_test(tc, test_missing_catalogue);
	tcase_add_test(tc, test_spool_entry);
	tcase_add_test(tc, test_stopped_before_start);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return t_run(republish_suite());
}
