/*
 * test_row.c - src/core/row.c: a column's value by name (present, SQL NULL, absent, no row), and
 * freeing whole rows, half-allocated rows and NULL.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "row.h"
#include "testlib.h"

static char *row_names[] = {"model_job_name", "nullcol", "empty"};
static char *row_values[] = {"100_40_10_20_00", NULL, ""};
static const struct jp_row row = {3, row_names, row_values};

START_TEST(test_row_get)
{
	int found = -1;

	ck_assert_str_eq(jp_row_get(&row, "model_job_name", &found), "100_40_10_20_00");
	ck_assert_int_eq(found, 1);
	ck_assert_ptr_null(jp_row_get(&row, "nullcol", &found));
	ck_assert_int_eq(found, 1);
	ck_assert_ptr_null(jp_row_get(&row, "absent", &found));
	ck_assert_int_eq(found, 0);
	ck_assert_ptr_null(jp_row_get(NULL, "model_job_name", &found));
	ck_assert_int_eq(found, 0);
}
END_TEST

START_TEST(test_row_free)
{
	struct jp_row *r = calloc(1, sizeof(*r));

	r->n = 2;
	r->names = calloc(2, sizeof(char *));
	r->values = calloc(2, sizeof(char *));
	r->names[0] = strdup("a");
	r->values[0] = strdup("1");
	r->names[1] = strdup("b");
	r->values[1] = NULL;
	jp_row_free(r); /* valgrind checks nothing leaks */
	jp_row_free(NULL);
}
END_TEST

/* A row whose values array failed to allocate (catalog.c, out of memory) frees its names. */
START_TEST(test_row_free_half)
{
	struct jp_row *r = calloc(1, sizeof(*r));
	int found = -1;

	r->n = 2;
	r->names = calloc(2, sizeof(char *));
	r->names[0] = strdup("a");
	ck_assert_ptr_null(jp_row_get(&(struct jp_row){1, r->names, (char *[]){NULL}}, "a", &found));
	ck_assert_int_eq(found, 1);
	jp_row_free(r); /* values NULL: no crash, names freed (valgrind) */
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("row");
	TCase *tc;

	tc = tcase_create("row");
	tcase_add_test(tc, test_row_get);
	tcase_add_test(tc, test_row_free);
	tcase_add_test(tc, test_row_free_half);
	suite_add_tcase(s, tc);

	return t_run(s);
}
