/*
 * test_gc.c - src/core/gc.c: jp_gc over jobs published with jp_publish to a file:// archive and a
 * temp SQLite catalogue, with leftovers made by hand.  Covers a clean archive, an old stray
 * temporary (listed; deleted only with apply), a young one (left alone), one whose token a
 * live lease holds (in use, kept), a displaced original (kept even with apply), missing and
 * unreferenced files (reported, never touched), the choice of one destination, a destination
 * that cannot be opened, a catalogue that cannot be read, and the destination reports.
 */
#include "config.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "testlib.h"
#include "testpub.h"

#include "catalog.h"
#include "gc.h"

#define OLD_TMP ".jobpub-0123456789abcdef.a"
#define DISPLACED ".jobpub-old-fedcba9876543210.b.txt"

static struct t_pub P;
static struct jp_error err;

/* The reports, one line each: "dest URL-TAIL", "failed URL-TAIL", or
 * "KIND REMOTE-TAIL [job JOB] [ACTION]". */
static char log_buf[8192];

static const char *
tail(const char *url)
{
	const char *t = strstr(url, "/archive");

	return t ? t + 1 : url;
}

static void
record(void *arg, const struct jp_gc_report *r)
{
	size_t n = strlen(log_buf);

	(void)arg;
	if (r->what == JP_GC_DEST)
		snprintf(log_buf + n, sizeof(log_buf) - n, "dest %s\n", tail(r->remote));
	else if (r->what == JP_GC_FAILED)
		snprintf(log_buf + n, sizeof(log_buf) - n, "failed %s\n", tail(r->remote));
	else
		snprintf(log_buf + n, sizeof(log_buf) - n, "%s %s%s%s%s%s\n", r->kind, tail(r->remote),
		         r->job ? " job " : "", r->job ? r->job : "", r->action ? " " : "",
		         r->action ? r->action : "");
}

/* Writes archive/rel with text, last modified age_s seconds ago. */
static void
leftover(const char *rel, const char *text, long age_s)
{
	struct timeval tv[2];
	char *p = t_pub_remote(&P, rel);

	t_write_str(P.archive, rel, text);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= age_s;
	tv[1] = tv[0];
	ck_assert_int_eq(utimes(p, tv), 0);
	free(p);
}

static int
archive_has(const char *rel)
{
	return t_exists(P.archive, rel);
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

static int
run(const char *dest, int apply, long older_s, struct jp_gc_result *res)
{
	struct jp_gc_opts o;
	struct jp_catalog *c = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	o.dest = dest;
	o.apply = apply;
	o.older_s = older_s;
	jp_error_clear(&err);
	ck_assert_int_eq(jp_catalog_open(P.db, 2000, JP_CATALOG_READONLY, &c, &err), JP_OK);
	rc = jp_gc(c, &o, record, NULL, res, &err);
	jp_catalog_close(c);
	return rc;
}

START_TEST(test_clean)
{
	struct jp_gc_result res;

	ck_assert_int_eq(run(NULL, 1, 0, &res), JP_OK);
	ck_assert_str_eq(log_buf, "dest archive\n");
	ck_assert_uint_eq(res.dests, 1);
	ck_assert_uint_eq(res.temps + res.deleted + res.in_use + res.missing + res.unreferenced +
	                  res.displaced, 0);
	ck_assert_int_eq(res.failed, 0);
	ck_assert(archive_has("j1/a") && archive_has("j2/b.txt"));
}
END_TEST

START_TEST(test_old_temporary)
{
	struct jp_gc_result res;

	leftover("j1/" OLD_TMP, "partial\n", 2 * 86400);
	/* Without apply: listed, kept. */
	ck_assert_int_eq(run(NULL, 0, 86400, &res), JP_OK);
	ck_assert_uint_eq(res.temps, 1);
	ck_assert_uint_eq(res.temp_bytes, 8);
	ck_assert_uint_eq(res.deleted, 0);
	ck_assert_str_eq(log_buf, "dest archive\ntemporary archive/j1/" OLD_TMP
	                          " would delete (--apply)\n");
	ck_assert(archive_has("j1/" OLD_TMP));
	/* With apply: deleted, the published files untouched. */
	log_buf[0] = '\0';
	ck_assert_int_eq(run(NULL, 1, 86400, &res), JP_OK);
	ck_assert_uint_eq(res.temps, 1);
	ck_assert_uint_eq(res.deleted, 1);
	ck_assert_ptr_nonnull(strstr(log_buf, "temporary archive/j1/" OLD_TMP " deleted\n"));
	ck_assert(!archive_has("j1/" OLD_TMP));
	ck_assert(archive_has("j1/a") && archive_has("j1/b.txt"));
}
END_TEST

START_TEST(test_young_temporary)
{
	struct jp_gc_result res;

	leftover("j1/" OLD_TMP, "partial\n", 60);
	ck_assert_int_eq(run(NULL, 1, 3600, &res), JP_OK);
	ck_assert_uint_eq(res.temps, 0);
	ck_assert_uint_eq(res.deleted, 0);
	ck_assert_str_eq(log_buf, "dest archive\n");
	ck_assert(archive_has("j1/" OLD_TMP));
}
END_TEST

START_TEST(test_leased_temporary)
{
	struct jp_gc_result res;

	/* A publisher on another host holds the token's lease until 2100: in use. */
	t_sql_exec(P.db, "INSERT INTO jobpub_leases (job, host, pid, token, since, expires, boot_id)"
	                 " VALUES ('j3', 'elsewhere.invalid', 1, '0123456789abcdef',"
	                 " '2020-01-01T00:00:00Z', 4102444800, 'another-boot');");
	leftover("j1/" OLD_TMP, "partial\n", 2 * 86400);
	ck_assert_int_eq(run(NULL, 1, 0, &res), JP_OK);
	ck_assert_uint_eq(res.in_use, 1);
	ck_assert_uint_eq(res.temps, 0);
	ck_assert_uint_eq(res.deleted, 0);
	ck_assert_ptr_nonnull(strstr(log_buf, "in-use archive/j1/" OLD_TMP
	                                      " kept: its publisher holds the lease\n"));
	ck_assert(archive_has("j1/" OLD_TMP));
}
END_TEST

START_TEST(test_displaced_kept)
{
	struct jp_gc_result res;

	leftover("j2/" DISPLACED, "the only copy\n", 2 * 86400);
	ck_assert_int_eq(run(NULL, 1, 0, &res), JP_OK);
	ck_assert_uint_eq(res.displaced, 1);
	ck_assert_uint_eq(res.temps, 0);
	ck_assert_uint_eq(res.unreferenced, 0);
	ck_assert_ptr_nonnull(strstr(log_buf, "displaced archive/j2/" DISPLACED " kept: "));
	ck_assert(archive_has("j2/" DISPLACED));
}
END_TEST

START_TEST(test_missing_and_unreferenced)
{
	struct jp_gc_result res;
	char *p = t_pub_remote(&P, "j1/b.txt");

	ck_assert_int_eq(unlink(p), 0);
	free(p);
	leftover("someone/else.dat", "theirs\n", 30 * 86400);
	ck_assert_int_eq(run(NULL, 1, 0, &res), JP_OK);
	ck_assert_uint_eq(res.missing, 1);
	ck_assert_uint_eq(res.unreferenced, 1);
	ck_assert_uint_eq(res.deleted, 0);
	ck_assert_ptr_nonnull(strstr(log_buf, "unreferenced archive/someone/else.dat\n"));
	ck_assert_ptr_nonnull(strstr(log_buf, "missing archive/j1/b.txt job j1\n"));
	/* Missing comes after the listing of its destination. */
	ck_assert_ptr_nonnull(strstr(log_buf, "else.dat\nmissing"));
	ck_assert(archive_has("someone/else.dat"));
}
END_TEST

START_TEST(test_one_destination)
{
	struct jp_gc_result res;
	char *other;

	/* A destination the catalogue does not know: every object there is unreferenced. */
	other = t_path(P.dir, "other");
	t_write_str(other, "x/y", "y\n");
	free(other);
	ck_assert(asprintf(&other, "file://%s/other", P.dir) > 0);
	ck_assert_int_eq(run(other, 1, 0, &res), JP_OK);
	free(other);
	ck_assert_uint_eq(res.dests, 1);
	ck_assert_uint_eq(res.unreferenced, 1);
	ck_assert_uint_eq(res.missing, 0); /* the archive's files are not looked for there */
	ck_assert_ptr_null(strstr(log_buf, "archive"));
	ck_assert_ptr_nonnull(strstr(log_buf, "unreferenced "));
}
END_TEST

START_TEST(test_destination_unusable)
{
	struct jp_gc_result res;
	char *bad;
	int rc;

	ck_assert(asprintf(&bad, "file://%s/cat.db/sub", P.dir) > 0);
	rc = run(bad, 1, 0, &res);
	free(bad);
	ck_assert_int_ne(res.failed, 0);
	ck_assert_int_eq(rc, jp_severity_of(res.failed));
	ck_assert_int_eq(err.code, 0); /* reported, not on err */
	ck_assert_ptr_nonnull(strstr(log_buf, "failed "));
	ck_assert_uint_eq(res.dests, 1);
}
END_TEST

START_TEST(test_catalogue_error)
{
	struct jp_gc_result res;
	int rc;

	t_sql_exec(P.db, "DROP TABLE jobpub_attempts;");
	rc = run(NULL, 1, 0, &res);
	ck_assert_int_lt(rc, JP_WARN);
	ck_assert_int_ne(err.code, 0);
	ck_assert_str_eq(log_buf, ""); /* nothing reported before the error */
	ck_assert_uint_eq(res.dests, 0);
}
END_TEST

static Suite *
gc_suite(void)
{
	Suite *s = suite_create("gc");
	TCase *tc = tcase_create("gc");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_clean);
	tcase_add_test(tc, test_old_temporary);
	tcase_add_test(tc, test_young_temporary);
	tcase_add_test(tc, test_leased_temporary);
	tcase_add_test(tc, test_displaced_kept);
	tcase_add_test(tc, test_missing_and_unreferenced);
	tcase_add_test(tc, test_one_destination);
	tcase_add_test(tc, test_destination_unusable);
	tcase_add_test(tc, test_catalogue_error);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return t_run(gc_suite());
}
