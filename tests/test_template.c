/*
 * test_template.c - src/core/template.c: every kind of ${...} variable, $$ and a lone '$', and the
 * errors (message and byte offset of the '$'): unknown variable, unterminated ${, ${basename}
 * outside `to:`, ${row.X} NULL, absent, without a row, and as a placeholder.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "template.h"
#include "testlib.h"

static char *row_names[] = {"model_job_name", "nullcol", "empty"};
static char *row_values[] = {"100_40_10_20_00", NULL, ""};
static const struct jp_row row = {3, row_names, row_values};
static const struct jp_kv sets[] = {{"model", "kosma"}, {"x", ""}, {"Dollar", "$"}};

/* All variables known. */
static struct jp_vars
all_vars(void)
{
	struct jp_vars v = {"42", "textout", "TEXTOUT", sets, 3, &row, 0};

	return v;
}

static char why[512];
static size_t off;

/* Expands and returns the result (freed at the next call or by the teardown). */
static char *last;
static const char *
expand(const char *tmpl, const struct jp_vars *v)
{
	free(last);
	why[0] = '\0';
	off = (size_t)-1;
	last = jp_template_expand(tmpl, v, why, sizeof(why), &off);
	ck_assert_msg(last != NULL, "'%s' failed: %s", tmpl, why);
	return last;
}

/* Expects tmpl to fail with exactly msg at byte offset at. */
static void
expect_fail(const char *tmpl, const struct jp_vars *v, const char *msg, size_t at)
{
	char *x;

	why[0] = '\0';
	off = (size_t)-1;
	x = jp_template_expand(tmpl, v, why, sizeof(why), &off);
	ck_assert_msg(x == NULL, "'%s' expanded to '%s'", tmpl, x ? x : "");
	ck_assert_str_eq(why, msg);
	ck_assert_uint_eq(off, at);
}

static void
teardown(void)
{
	free(last);
	last = NULL;
}

/* ---- expansion ---- */

static const struct {
	const char *tmpl, *out;
} good[] = {
	{"", ""},
	{"pdrgrid/TEXTOUT", "pdrgrid/TEXTOUT"},
	{"${job}", "42"},
	{"${name}", "textout"},
	{"${basename}", "TEXTOUT"},
	{"${row.model_job_name}", "100_40_10_20_00"},
	{"${model}", "kosma"},
	{"file:///archive/pdr/${model}/${job}/${name}/${row.model_job_name}.${basename}",
	 "file:///archive/pdr/kosma/42/textout/100_40_10_20_00.TEXTOUT"},
	{"${job}${job}${name}", "4242textout"},
	{"a${x}b", "ab"},                  /* --set with an empty value */
	{"a${row.empty}b", "ab"},          /* an empty column is a value, not NULL */
	{"cost$$5", "cost$5"},
	{"$$", "$"},
	{"$$$$", "$$"},
	{"$${job}", "${job}"},              /* $$ then a literal {job} */
	{"$$$${job}", "$${job}"},
	{"$$${job}", "$42"},
	{"${Dollar}{job}", "${job}"},       /* values are not expanded again */
	{"cost$5", "cost$5"},               /* a '$' before anything but $ or { is literal */
	{"a$", "a$"},
	{"$", "$"},
	{"$x/$job", "$x/$job"},
	{"a}b{c", "a}b{c"},
	{"${job}}", "42}"},
	{"\xc3\xa9t\xc3\xa9/${job}", "\xc3\xa9t\xc3\xa9/42"},
};

START_TEST(test_expand)
{
	struct jp_vars v = all_vars();

	ck_assert_str_eq(expand(good[_i].tmpl, &v), good[_i].out);
}
END_TEST

/* Output longer than the initial buffer, grown many times. */
START_TEST(test_expand_long)
{
	struct jp_vars v = all_vars();
	char tmpl[22 * 150 + 1] = "", want[16 * 150 + 1] = "";
	int i;

	for (i = 0; i < 150; i++) {
		strcat(tmpl, "${row.model_job_name}/");
		strcat(want, "100_40_10_20_00/");
	}
	ck_assert_str_eq(expand(tmpl, &v), want);
}
END_TEST

/* Without a row and with row_placeholder (manifest check), ${row.X} stands as "{row.X}". */
START_TEST(test_row_placeholder)
{
	struct jp_vars v = all_vars();

	v.row = NULL;
	v.row_placeholder = 1;
	ck_assert_str_eq(expand("pdrgrid/TEXTOUT${row.model_job_name}", &v),
	                 "pdrgrid/TEXTOUT{row.model_job_name}");
	ck_assert_str_eq(expand("${row.anything}-${job}", &v), "{row.anything}-42");
}
END_TEST

/* ---- errors ---- */

START_TEST(test_unknown_variable)
{
	struct jp_vars v = all_vars();

	expect_fail("file:///archive/${modle}/x", &v,
	            "unknown variable ${modle} (give it with --set modle=VALUE; built-in: job, name, "
	            "basename, row.COLUMN)",
	            16);
	/* The offset is that of the failing '$', after good variables and $$. */
	expect_fail("${job}/$$/${nope}", &v,
	            "unknown variable ${nope} (give it with --set nope=VALUE; built-in: job, name, "
	            "basename, row.COLUMN)",
	            10);
	/* Names are case-sensitive. */
	expect_fail("${JOB}", &v,
	            "unknown variable ${JOB} (give it with --set JOB=VALUE; built-in: job, name, "
	            "basename, row.COLUMN)",
	            0);
}
END_TEST

START_TEST(test_bad_variable_name)
{
	struct jp_vars v = all_vars();
	char big[300];

	expect_fail("a/${my-var}", &v, "bad variable name ${my-var}", 2);
	expect_fail("a/${ job}", &v, "bad variable name ${ job}", 2);
	expect_fail("x${}", &v, "bad variable name in ${...}", 1);
	memset(big, 'a', sizeof(big));
	memcpy(big, "${", 2);
	memcpy(big + sizeof(big) - 2, "}", 2);
	expect_fail(big, &v, "bad variable name in ${...}", 0);
}
END_TEST

START_TEST(test_unterminated)
{
	struct jp_vars v = all_vars();

	expect_fail("ab${job", &v, "unterminated ${ (missing '}')", 2);
	expect_fail("${job}/${", &v, "unterminated ${ (missing '}')", 7);
	expect_fail("$${job}${name", &v, "unterminated ${ (missing '}')", 7);
}
END_TEST

START_TEST(test_unavailable_builtins)
{
	struct jp_vars v = all_vars();

	v.basename = NULL;
	expect_fail("onion/${basename}", &v, "${basename} is only available in `to:`", 6);
	v = all_vars();
	v.job = NULL;
	expect_fail("x${job}", &v, "${job} is not known here", 1);
	v = all_vars();
	v.name = NULL;
	expect_fail("${job}${name}", &v, "${name} is only available in an output", 6);
}
END_TEST

START_TEST(test_row_errors)
{
	struct jp_vars v = all_vars();

	expect_fail("TEXTOUT${row.nullcol}", &v, "${row.nullcol} is NULL in the job's catalogue row",
	            7);
	expect_fail("${row.model_job}", &v,
	            "unknown variable ${row.model_job}: the job's row has no column model_job", 0);
	expect_fail("${row.a;drop}", &v, "bad column name in ${row.a;drop}", 0);
	expect_fail("${row.}", &v, "bad column name in ${row.}", 0);
	expect_fail("/${row.1a}", &v, "bad column name in ${row.1a}", 1);
	v.row = NULL;
	v.row_placeholder = 0;
	expect_fail("a${row.model_job_name}", &v, "${row.model_job_name} needs the job's catalogue row",
	            1);
	/* A placeholder does not excuse a bad column name. */
	v.row_placeholder = 1;
	expect_fail("${row.a b}", &v, "bad column name in ${row.a b}", 0);
}
END_TEST

/* A small reason buffer is cut, never overrun. */
START_TEST(test_short_why)
{
	struct jp_vars v = all_vars();
	char small[12];
	size_t o = 99;

	memset(small, '#', sizeof(small));
	ck_assert_ptr_null(jp_template_expand("${nope}", &v, small, 8, &o));
	ck_assert_str_eq(small, "unknown");
	ck_assert_int_eq(small[8], '#');
	ck_assert_uint_eq(o, 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("template");
	TCase *tc;

	tc = tcase_create("expand");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_loop_test(tc, test_expand, 0, (int)(sizeof(good) / sizeof(good[0])));
	tcase_add_test(tc, test_expand_long);
	tcase_add_test(tc, test_row_placeholder);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_unknown_variable);
	tcase_add_test(tc, test_bad_variable_name);
	tcase_add_test(tc, test_unterminated);
	tcase_add_test(tc, test_unavailable_builtins);
	tcase_add_test(tc, test_row_errors);
	tcase_add_test(tc, test_short_why);
	suite_add_tcase(s, tc);

	return t_run(s);
}
