/*
 * test_error.c - src/core/error.c: the error handle keeps the first message, errno values map to the
 * documented classes, class names are stable, and severities order so the worst one wins.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "error.h"
#include "testlib.h"

/* ---- first message wins ---- */

START_TEST(test_first_message_wins)
{
	struct jp_error e;
	int r;

	jp_error_clear(&e);
	ck_assert_int_eq(e.code, JP_E_NONE);
	ck_assert_str_eq(e.msg, "");
	r = jp_error_set(&e, JP_E_NOPERM, "posix: open %s: %s", "/a/b", "denied");
	ck_assert_int_eq(r, JP_FAILED);
	r = jp_error_set(&e, JP_E_IOERR, "publish: giving up on %d files", 3);
	ck_assert_int_eq(r, JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_NOPERM);
	ck_assert_str_eq(e.msg, "posix: open /a/b: denied");
}
END_TEST

START_TEST(test_clear_starts_over)
{
	struct jp_error e;

	jp_error_clear(&e);
	jp_error_set(&e, JP_E_DATA, "first");
	jp_error_clear(&e);
	ck_assert_int_eq(e.code, JP_E_NONE);
	ck_assert_str_eq(e.msg, "");
	jp_error_set(&e, JP_E_CONFIG, "second %s", "one");
	ck_assert_int_eq(e.code, JP_E_CONFIG);
	ck_assert_str_eq(e.msg, "second one");
}
END_TEST

/* An empty first message still counts as set: its class must not be replaced. */
START_TEST(test_empty_message_still_first)
{
	struct jp_error e;

	jp_error_clear(&e);
	jp_error_set(&e, JP_E_USAGE, "%s", "");
	jp_error_set(&e, JP_E_DATA, "later");
	ck_assert_int_eq(e.code, JP_E_USAGE);
	ck_assert_str_eq(e.msg, "");
}
END_TEST

START_TEST(test_set_returns_retry_for_tempfail)
{
	struct jp_error e;

	jp_error_clear(&e);
	ck_assert_int_eq(jp_error_set(&e, JP_E_TEMPFAIL, "catalog: database is locked"), JP_RETRY);
	/* Not stored again, but the severity still follows the class asked for. */
	ck_assert_int_eq(jp_error_set(&e, JP_E_DATA, "x"), JP_FAILED);
	ck_assert_int_eq(jp_error_set(&e, JP_E_TEMPFAIL, "y"), JP_RETRY);
	ck_assert_int_eq(e.code, JP_E_TEMPFAIL);
	ck_assert_str_eq(e.msg, "catalog: database is locked");
}
END_TEST

START_TEST(test_long_message_truncated)
{
	struct jp_error e;
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	jp_error_clear(&e);
	jp_error_set(&e, JP_E_IOERR, "m: %s", big);
	ck_assert_uint_eq(strlen(e.msg), JP_ERRMSG_MAX - 1);
	ck_assert(strncmp(e.msg, "m: xxx", 6) == 0);
}
END_TEST

/* ---- errno classes ---- */

static const struct {
	int err;
	int cls;
} errno_table[] = {
	{EACCES, JP_E_NOPERM},       {EPERM, JP_E_NOPERM},         {ENOSPC, JP_E_UNAVAILABLE},
	{EDQUOT, JP_E_UNAVAILABLE},  {ENOTDIR, JP_E_UNAVAILABLE},  {EEXIST, JP_E_UNAVAILABLE},
	{EROFS, JP_E_UNAVAILABLE},   {ETIMEDOUT, JP_E_TEMPFAIL},   {ESTALE, JP_E_TEMPFAIL},
	{EINTR, JP_E_TEMPFAIL},      {EIO, JP_E_IOERR},            {ENOENT, JP_E_IOERR},
	{EBADF, JP_E_IOERR},         {0, JP_E_IOERR},
};

START_TEST(test_errno_classes)
{
	struct jp_error e;
	char want[JP_ERRMSG_MAX];
	int err = errno_table[_i].err, cls = errno_table[_i].cls, r;

	ck_assert_int_eq(jp_class_of_errno(err), cls);
	jp_error_clear(&e);
	r = jp_error_errno(&e, err, "posix: rename %s", "a/.jobpub-1.b");
	ck_assert_int_eq(e.code, cls);
	ck_assert_int_eq(r, cls == JP_E_TEMPFAIL ? JP_RETRY : JP_FAILED);
	snprintf(want, sizeof(want), "posix: rename a/.jobpub-1.b: %s", strerror(err));
	ck_assert_str_eq(e.msg, want);
}
END_TEST

START_TEST(test_errno_does_not_override)
{
	struct jp_error e;

	jp_error_clear(&e);
	jp_error_set(&e, JP_E_DATA, "plan: bad");
	ck_assert_int_eq(jp_error_errno(&e, EACCES, "posix: open"), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_DATA);
	ck_assert_str_eq(e.msg, "plan: bad");
}
END_TEST

/* ---- class names ---- */

static const struct {
	int cls;
	const char *name;
} name_table[] = {
	{JP_E_NONE, "ok"},         {JP_E_USAGE, "usage"},         {JP_E_DATA, "data"},
	{JP_E_NOINPUT, "noinput"}, {JP_E_UNAVAILABLE, "unavailable"}, {JP_E_SOFTWARE, "software"},
	{JP_E_IOERR, "ioerr"},     {JP_E_TEMPFAIL, "tempfail"},   {JP_E_NOPERM, "noperm"},
	{JP_E_CONFIG, "config"},
};

START_TEST(test_class_names)
{
	ck_assert_str_eq(jp_class_name(name_table[_i].cls), name_table[_i].name);
}
END_TEST

START_TEST(test_class_name_unknown_not_null)
{
	const int odd[] = {1, 63, 67, 71, 76, 79, 255, -1};
	size_t i;

	for (i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		const char *n = jp_class_name(odd[i]);
		ck_assert_ptr_nonnull(n);
		ck_assert_str_eq(n, "unknown");
	}
}
END_TEST

/* The classes are the exit codes of sysexits.h, the table of `man jobpub`. */
START_TEST(test_classes_are_sysexits)
{
	ck_assert_int_eq(JP_E_USAGE, EX_USAGE);
	ck_assert_int_eq(JP_E_DATA, EX_DATAERR);
	ck_assert_int_eq(JP_E_NOINPUT, EX_NOINPUT);
	ck_assert_int_eq(JP_E_UNAVAILABLE, EX_UNAVAILABLE);
	ck_assert_int_eq(JP_E_SOFTWARE, EX_SOFTWARE);
	ck_assert_int_eq(JP_E_IOERR, EX_IOERR);
	ck_assert_int_eq(JP_E_TEMPFAIL, EX_TEMPFAIL);
	ck_assert_int_eq(JP_E_NOPERM, EX_NOPERM);
	ck_assert_int_eq(JP_E_CONFIG, EX_CONFIG);
}
END_TEST

/* ---- severities ---- */

START_TEST(test_severity_of)
{
	ck_assert_int_eq(jp_severity_of(JP_E_NONE), JP_OK);
	ck_assert_int_eq(jp_severity_of(JP_E_TEMPFAIL), JP_RETRY);
	ck_assert_int_eq(jp_severity_of(JP_E_DATA), JP_FAILED);
	ck_assert_int_eq(jp_severity_of(JP_E_NOPERM), JP_FAILED);
	ck_assert_int_eq(jp_severity_of(JP_E_CONFIG), JP_FAILED);
	ck_assert_int_eq(jp_severity_of(JP_E_SOFTWARE), JP_FAILED);
}
END_TEST

/* libarchive's rule: `if (r < ret) ret = r;` keeps the worst, so the order must be strict. */
START_TEST(test_severity_order)
{
	const int order[] = {JP_OK, JP_RETRY, JP_WARN, JP_FAILED, JP_FATAL};
	size_t i;

	for (i = 1; i < sizeof(order) / sizeof(order[0]); i++)
		ck_assert_int_lt(order[i], order[i - 1]);
	ck_assert_int_eq(JP_OK, 0);
}
END_TEST

START_TEST(test_worst_result_wins)
{
	struct jp_error e;
	int ret = JP_OK, r;

	jp_error_clear(&e);
	/* A retry, then a failure, then a retry again: the failure is the worst. */
	r = jp_error_set(&e, JP_E_TEMPFAIL, "catalog: busy");
	if (r < ret)
		ret = r;
	ck_assert_int_eq(ret, JP_RETRY);
	r = jp_error_errno(&e, EACCES, "posix: open");
	if (r < ret)
		ret = r;
	r = jp_error_errno(&e, EINTR, "posix: write");
	if (r < ret)
		ret = r;
	ck_assert_int_eq(ret, JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_TEMPFAIL); /* but the first message is the one kept */
	ck_assert_str_eq(e.msg, "catalog: busy");
}
END_TEST

/* jp_worst() over every pair of severities: the lower one, whichever order. */
START_TEST(test_worst_helper)
{
	const int sev[] = {JP_OK, JP_RETRY, JP_WARN, JP_FAILED, JP_FATAL};
	size_t i, j, n = sizeof(sev) / sizeof(sev[0]);
	int ret = JP_OK;

	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++) {
			ck_assert_int_eq(jp_worst(sev[i], sev[j]), sev[i > j ? i : j]);
			ck_assert_int_eq(jp_worst(sev[j], sev[i]), sev[i > j ? i : j]);
		}
	/* Merging lanes: a fatal lane is not hidden by a later retry or success. */
	ret = jp_worst(ret, JP_RETRY);
	ret = jp_worst(ret, JP_FATAL);
	ret = jp_worst(ret, JP_RETRY);
	ret = jp_worst(ret, JP_OK);
	ck_assert_int_eq(ret, JP_FATAL);
}
END_TEST

/* The one mapping from a severity and its reason to the exit code of a command. */
START_TEST(test_exit_code)
{
	struct jp_error e;

	jp_error_clear(&e);
	ck_assert_int_eq(jp_exit_code(JP_OK, &e), 0);
	ck_assert_int_eq(jp_exit_code(JP_WARN, &e), 0);
	/* A failure without a reason is an internal error, never a success. */
	ck_assert_int_eq(jp_exit_code(JP_FAILED, &e), JP_E_SOFTWARE);
	ck_assert_int_eq(jp_exit_code(JP_FATAL, NULL), JP_E_SOFTWARE);
	ck_assert_int_eq(jp_exit_code(JP_RETRY, &e), JP_E_SOFTWARE);
	/* Otherwise the class on the handle, whatever the severity. */
	ck_assert_int_eq(jp_exit_code(jp_error_set(&e, JP_E_TEMPFAIL, "sftp: lost"), &e), 75);
	ck_assert_int_eq(jp_exit_code(JP_FATAL, &e), 75);
	jp_error_clear(&e);
	ck_assert_int_eq(jp_exit_code(jp_error_set(&e, JP_E_DATA, "manifest: bad"), &e), 65);
	jp_error_clear(&e);
	ck_assert_int_eq(jp_exit_code(jp_error_set(&e, JP_E_NOPERM, "posix: denied"), &e), 77);
	/* A WARN is done: its message is told, the command still exits 0. */
	ck_assert_int_eq(jp_exit_code(JP_WARN, &e), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("error");
	TCase *tc;

	tc = tcase_create("handle");
	tcase_add_test(tc, test_first_message_wins);
	tcase_add_test(tc, test_clear_starts_over);
	tcase_add_test(tc, test_empty_message_still_first);
	tcase_add_test(tc, test_set_returns_retry_for_tempfail);
	tcase_add_test(tc, test_long_message_truncated);
	suite_add_tcase(s, tc);

	tc = tcase_create("errno");
	tcase_add_loop_test(tc, test_errno_classes, 0,
	                    (int)(sizeof(errno_table) / sizeof(errno_table[0])));
	tcase_add_test(tc, test_errno_does_not_override);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_loop_test(tc, test_class_names, 0,
	                    (int)(sizeof(name_table) / sizeof(name_table[0])));
	tcase_add_test(tc, test_class_name_unknown_not_null);
	tcase_add_test(tc, test_classes_are_sysexits);
	suite_add_tcase(s, tc);

	tc = tcase_create("severity");
	tcase_add_test(tc, test_severity_of);
	tcase_add_test(tc, test_severity_order);
	tcase_add_test(tc, test_worst_result_wins);
	tcase_add_test(tc, test_worst_helper);
	tcase_add_test(tc, test_exit_code);
	suite_add_tcase(s, tc);

	return t_run(s);
}
