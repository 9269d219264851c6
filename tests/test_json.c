/*
 * test_json.c - src/core/json.c: string escaping (quotes, backslash, control characters, bytes that
 * are not ASCII), nesting and commas.  Output goes to open_memstream and is compared exactly.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "testlib.h"

static struct t_mem mem;

static void
setup(void)
{
	t_mem_open(&mem);
}

static void
teardown(void)
{
	t_mem_close(&mem);
}

/* jp_json_quote of s, as written. */
static const char *
quoted(const char *s)
{
	fseek(mem.fp, 0, SEEK_SET);
	jp_json_quote(mem.fp, s);
	putc('\0', mem.fp);
	return t_mem_text(&mem);
}

/* ---- escaping ---- */

static const struct {
	const char *in, *out;
} quotes[] = {
	{"", "\"\""},
	{"plain", "\"plain\""},
	{"say \"hi\"", "\"say \\\"hi\\\"\""},
	{"C:\\dir\\file", "\"C:\\\\dir\\\\file\""},
	{"\\\"", "\"\\\\\\\"\""},
	{"a\nb\rc\td", "\"a\\nb\\rc\\td\""},
	{"\x01", "\"\\u0001\""},
	{"\x08\x0c", "\"\\u0008\\u000c\""},
	{"\x1f|\x1b[K", "\"\\u001f|\\u001b[K\""},
	{"del\x7f", "\"del\\u007f\""},
	{"a/b", "\"a/b\""},
	{" ~", "\" ~\""},
	{"caf\xc3\xa9 \xe2\x82\xac", "\"caf\xc3\xa9 \xe2\x82\xac\""}, /* UTF-8 passes through */
	{"bad\xff\xfe", "\"bad\xff\xfe\""},                          /* and so do other bytes */
	{"{\"k\":[1]}", "\"{\\\"k\\\":[1]}\""},
};

START_TEST(test_quote)
{
	ck_assert_str_eq(quoted(quotes[_i].in), quotes[_i].out);
}
END_TEST

/* Every byte 0x01..0x7f gives a valid JSON string that decodes back to itself (checked for
 * the escapes this writer uses). */
START_TEST(test_quote_all_ascii_valid)
{
	char in[128];
	const char *out;
	int c;

	for (c = 1; c < 128; c++)
		in[c - 1] = (char)c;
	in[127] = '\0';
	out = quoted(in);
	ck_assert_msg(t_json_valid(out, strlen(out)), "invalid JSON: %s", out);
	for (c = 0; out[c] != '\0'; c++)
		ck_assert_msg((unsigned char)out[c] >= 0x20 && out[c] != 0x7f,
		              "raw control byte 0x%02x at %d", (unsigned char)out[c], c);
}
END_TEST

/* ---- values and commas ---- */

START_TEST(test_object_members)
{
	struct jp_json j;

	jp_json_init(&j, mem.fp);
	jp_json_object(&j, NULL);
	jp_json_str(&j, "a", "x");
	jp_json_int(&j, "b", 1);
	jp_json_null(&j, "c");
	jp_json_str(&j, "d", NULL);
	jp_json_int(&j, "e", -42);
	jp_json_end(&j, '}');
	ck_assert_str_eq(t_mem_text(&mem), "{\"a\":\"x\",\"b\":1,\"c\":null,\"d\":null,\"e\":-42}");
	ck_assert_int_eq(j.depth, 0);
}
END_TEST

START_TEST(test_empty_containers)
{
	struct jp_json j;

	jp_json_init(&j, mem.fp);
	jp_json_object(&j, NULL);
	jp_json_object(&j, "o");
	jp_json_end(&j, '}');
	jp_json_array(&j, "a");
	jp_json_end(&j, ']');
	jp_json_end(&j, '}');
	ck_assert_str_eq(t_mem_text(&mem), "{\"o\":{},\"a\":[]}");
}
END_TEST

START_TEST(test_int64_limits)
{
	struct jp_json j;

	jp_json_init(&j, mem.fp);
	jp_json_array(&j, NULL);
	jp_json_int(&j, NULL, INT64_MIN);
	jp_json_int(&j, NULL, INT64_MAX);
	jp_json_int(&j, NULL, 0);
	jp_json_end(&j, ']');
	ck_assert_str_eq(t_mem_text(&mem), "[-9223372036854775808,9223372036854775807,0]");
}
END_TEST

START_TEST(test_keys_escaped)
{
	struct jp_json j;

	jp_json_init(&j, mem.fp);
	jp_json_object(&j, NULL);
	jp_json_str(&j, "k\"ey", "v\\al");
	jp_json_int(&j, "new\nline", 7);
	jp_json_end(&j, '}');
	ck_assert_str_eq(t_mem_text(&mem), "{\"k\\\"ey\":\"v\\\\al\",\"new\\nline\":7}");
}
END_TEST

/* Commas belong to each level: closing an inner level must not eat or add the outer comma. */
START_TEST(test_nesting_commas)
{
	struct jp_json j;
	const char *want = "{\"job\":\"42\",\"files\":[{\"name\":\"a\",\"bytes\":1},"
	                   "{\"name\":\"b\",\"tags\":[\"x\",\"y\"],\"bytes\":2},[],[[1],[2,3]]],"
	                   "\"total\":3,\"empty\":{}}";
	const char *got;

	jp_json_init(&j, mem.fp);
	jp_json_object(&j, NULL);
	jp_json_str(&j, "job", "42");
	jp_json_array(&j, "files");
	jp_json_object(&j, NULL);
	jp_json_str(&j, "name", "a");
	jp_json_int(&j, "bytes", 1);
	jp_json_end(&j, '}');
	jp_json_object(&j, NULL);
	jp_json_str(&j, "name", "b");
	jp_json_array(&j, "tags");
	jp_json_str(&j, NULL, "x");
	jp_json_str(&j, NULL, "y");
	jp_json_end(&j, ']');
	jp_json_int(&j, "bytes", 2);
	jp_json_end(&j, '}');
	jp_json_array(&j, NULL);
	jp_json_end(&j, ']');
	jp_json_array(&j, NULL);
	jp_json_array(&j, NULL);
	jp_json_int(&j, NULL, 1);
	jp_json_end(&j, ']');
	jp_json_array(&j, NULL);
	jp_json_int(&j, NULL, 2);
	jp_json_int(&j, NULL, 3);
	jp_json_end(&j, ']');
	jp_json_end(&j, ']');
	jp_json_end(&j, ']');
	jp_json_int(&j, "total", 3);
	jp_json_object(&j, "empty");
	jp_json_end(&j, '}');
	jp_json_end(&j, '}');
	got = t_mem_text(&mem);
	ck_assert_str_eq(got, want);
	ck_assert(t_json_valid(got, strlen(got)));
	ck_assert_int_eq(j.depth, 0);
}
END_TEST

/* Levels up to the documented depth keep their own comma state. */
START_TEST(test_deep_nesting)
{
	struct jp_json j;
	char want[256], *p = want;
	const char *got;
	int i;

	jp_json_init(&j, mem.fp);
	for (i = 0; i < JP_JSON_DEPTH - 1; i++) {
		jp_json_array(&j, NULL);
		jp_json_int(&j, NULL, i);
		*p++ = '[';
		p += sprintf(p, "%d,", i);
	}
	jp_json_str(&j, NULL, "deep");
	p += sprintf(p, "\"deep\"");
	for (i = 0; i < JP_JSON_DEPTH - 1; i++) {
		jp_json_end(&j, ']');
		p += sprintf(p, "]");
		if (i < JP_JSON_DEPTH - 2) {
			jp_json_int(&j, NULL, i);
			p += sprintf(p, ",%d", i);
		}
	}
	got = t_mem_text(&mem);
	ck_assert_str_eq(got, want);
	ck_assert(t_json_valid(got, strlen(got)));
	ck_assert_int_eq(j.depth, 0);
}
END_TEST

/* Init starts a fresh document: no comma from what an earlier document wrote. */
START_TEST(test_init_resets)
{
	struct jp_json j;

	jp_json_init(&j, mem.fp);
	jp_json_object(&j, NULL);
	jp_json_int(&j, "a", 1);
	jp_json_end(&j, '}');
	putc('\n', mem.fp);
	jp_json_init(&j, mem.fp);
	jp_json_object(&j, NULL);
	jp_json_int(&j, "b", 2);
	jp_json_end(&j, '}');
	putc('\n', mem.fp);
	ck_assert_str_eq(t_mem_text(&mem), "{\"a\":1}\n{\"b\":2}\n");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("json");
	TCase *tc;

	tc = tcase_create("quote");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_quote, 0, (int)(sizeof(quotes) / sizeof(quotes[0])));
	tcase_add_test(tc, test_quote_all_ascii_valid);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_object_members);
	tcase_add_test(tc, test_empty_containers);
	tcase_add_test(tc, test_int64_limits);
	tcase_add_test(tc, test_keys_escaped);
	suite_add_tcase(s, tc);

	tc = tcase_create("nesting");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_nesting_commas);
	tcase_add_test(tc, test_deep_nesting);
	tcase_add_test(tc, test_init_resets);
	suite_add_tcase(s, tc);

	return t_run(s);
}
