/*
 * test_util.c - src/core/util.c: identifiers (the gate before SQL), hex, human sizes, time strings,
 * random tokens and streaming SHA-256 against published test vectors.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testlib.h"
#include "util.h"

/* ---- identifiers ---- */

static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static const char *const good_ids[] = {
	"a", "_", "Z", "_9", "A_1", "model_job_name", "output_textout_file", "__x__", "id",
};
static const char *const bad_ids[] = {
	"", "1a", "9", "a-b", "a b", " a", "a ", "a;drop", "a;drop table jobs", "a.b", "row.x",
	"a\"b", "a'b", "$a", "a$", "\xc3\xa9t\xc3\xa9", "a\xc3\xa9", "a\n", "-", "a/b",
};

START_TEST(test_identifier_good)
{
	ck_assert_msg(jp_is_identifier(good_ids[_i]) == 1, "'%s' refused", good_ids[_i]);
}
END_TEST

START_TEST(test_identifier_bad)
{
	ck_assert_msg(jp_is_identifier(bad_ids[_i]) == 0, "'%s' accepted", bad_ids[_i]);
}
END_TEST

START_TEST(test_identifier_null)
{
	ck_assert_int_eq(jp_is_identifier(NULL), 0);
}
END_TEST

START_TEST(test_identifier_length)
{
	char *s63 = repeat('a', 63), *s64 = repeat('b', 64), *s65 = repeat('c', 65),
	     *s1000 = repeat('d', 1000);

	ck_assert_int_eq(jp_is_identifier(s63), 1);
	ck_assert_int_eq(jp_is_identifier(s64), 1);
	ck_assert_int_eq(jp_is_identifier(s65), 0);
	ck_assert_int_eq(jp_is_identifier(s1000), 0);
	/* 64 with a digit last, 65 with an underscore first. */
	s64[63] = '9';
	s65[0] = '_';
	ck_assert_int_eq(jp_is_identifier(s64), 1);
	ck_assert_int_eq(jp_is_identifier(s65), 0);
	free(s63);
	free(s64);
	free(s65);
	free(s1000);
}
END_TEST

/* ---- hex, asprintf ---- */

START_TEST(test_hex)
{
	const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
	char out[2 * sizeof(in) + 2];

	memset(out, '#', sizeof(out));
	jp_hex(in, sizeof(in), out);
	ck_assert_str_eq(out, "00017f80abcdefff");
	ck_assert_int_eq(out[2 * sizeof(in) + 1], '#'); /* nothing written past 2n+1 */
}
END_TEST

START_TEST(test_hex_empty)
{
	char out[2] = {'#', '#'};

	jp_hex((const unsigned char *)"", 0, out);
	ck_assert_int_eq(out[0], '\0');
	ck_assert_int_eq(out[1], '#');
}
END_TEST

START_TEST(test_asprintf)
{
	char *s = jp_asprintf("%s/%d/%s", "pdrgrid", 42, "");

	ck_assert_str_eq(s, "pdrgrid/42/");
	free(s);
}
END_TEST

/* ---- human sizes ---- */

static const struct {
	uint64_t n;
	const char *s;
} sizes[] = {
	{0, "0 B"},
	{1, "1 B"},
	{1023, "1023 B"},
	{1024, "1.0 KiB"},
	{1536, "1.5 KiB"},
	{1234, "1.2 KiB"},
	{1024 * 1024, "1.0 MiB"},
	{1024 * 1024 * 3 / 2, "1.5 MiB"},
	{5ULL << 30, "5.0 GiB"},
	{3ULL << 40, "3.0 TiB"},
	{1ULL << 50, "1.0 PiB"},
	{1ULL << 60, "1024.0 PiB"}, /* no unit above PiB */
};

START_TEST(test_human_size)
{
	char buf[32];

	ck_assert_ptr_eq(jp_human_size(sizes[_i].n, buf, sizeof(buf)), buf);
	ck_assert_str_eq(buf, sizes[_i].s);
}
END_TEST

START_TEST(test_human_size_small_buffer)
{
	char buf[8];

	memset(buf, '#', sizeof(buf));
	jp_human_size(1536, buf, 4);
	ck_assert_str_eq(buf, "1.5");
	ck_assert_int_eq(buf[4], '#');
}
END_TEST

/* ---- time ---- */

START_TEST(test_now_iso)
{
	char buf[32], want[32];
	struct tm tm;
	time_t before = time(NULL), t;
	int i;

	ck_assert_ptr_eq(jp_now_iso(buf, sizeof(buf)), buf);
	ck_assert_uint_eq(strlen(buf), 20);
	for (i = 0; i < 20; i++) {
		const char *fmt = "dddd-dd-ddTdd:dd:ddZ";
		if (fmt[i] == 'd')
			ck_assert_msg(buf[i] >= '0' && buf[i] <= '9', "'%s' at %d", buf, i);
		else
			ck_assert_msg(buf[i] == fmt[i], "'%s' at %d", buf, i);
	}
	/* It is UTC and now: it parses back to within a few seconds of time(). */
	memset(&tm, 0, sizeof(tm));
	ck_assert_ptr_nonnull(strptime(buf, "%Y-%m-%dT%H:%M:%SZ", &tm));
	t = timegm(&tm);
	ck_assert_msg(t >= before && t <= time(NULL) + 1, "%s is not now", buf);
	strftime(want, sizeof(want), "%Y", gmtime(&t));
	ck_assert(strncmp(buf, want, 4) == 0);
}
END_TEST

START_TEST(test_now_ms_monotonic)
{
	int64_t a = jp_now_ms(), b;
	struct timespec ts = {0, 30 * 1000 * 1000};

	nanosleep(&ts, NULL);
	b = jp_now_ms();
	ck_assert_int_ge(b - a, 29);
	ck_assert_int_lt(b - a, 5000);
}
END_TEST

/* ---- random tokens ---- */

START_TEST(test_random_token_format)
{
	char tok[18];
	int i;

	memset(tok, '#', sizeof(tok));
	ck_assert_int_eq(jp_random_token(tok), 0);
	ck_assert_uint_eq(strlen(tok), 16);
	ck_assert_int_eq(tok[17], '#');
	for (i = 0; i < 16; i++)
		ck_assert_msg(strchr("0123456789abcdef", tok[i]) != NULL, "token '%s'", tok);
}
END_TEST

static int
cmp_tok(const void *a, const void *b)
{
	return strcmp(a, b);
}

START_TEST(test_random_token_unique)
{
	enum { N = 1000 };
	static char toks[N][17];
	int i, seen[16] = {0}, distinct = 0;

	for (i = 0; i < N; i++)
		ck_assert_int_eq(jp_random_token(toks[i]), 0);
	qsort(toks, N, sizeof(toks[0]), cmp_tok);
	for (i = 1; i < N; i++)
		ck_assert_msg(strcmp(toks[i], toks[i - 1]) != 0, "token %s twice", toks[i]);
	/* Every hex digit shows up somewhere among 16000 characters. */
	for (i = 0; i < N; i++) {
		const char *p;
		for (p = toks[i]; *p; p++)
			seen[*p <= '9' ? *p - '0' : *p - 'a' + 10] = 1;
	}
	for (i = 0; i < 16; i++)
		distinct += seen[i];
	ck_assert_int_eq(distinct, 16);
}
END_TEST

/* ---- SHA-256 ---- */

static void
sha_hex(const void *buf, size_t len, size_t piece, char out[65])
{
	struct jp_sha256 h;
	unsigned char md[32];
	size_t off = 0;

	ck_assert_int_eq(jp_sha256_init(&h), 0);
	if (piece == 0)
		piece = len ? len : 1;
	while (off < len) {
		size_t n = len - off < piece ? len - off : piece;
		jp_sha256_update(&h, (const char *)buf + off, n);
		off += n;
	}
	jp_sha256_final(&h, md);
	ck_assert_ptr_null(h.ctx); /* final frees the context */
	jp_hex(md, 32, out);
}

START_TEST(test_sha256_empty)
{
	char hex[65];

	sha_hex("", 0, 0, hex);
	ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(test_sha256_abc)
{
	char hex[65];

	sha_hex("abc", 3, 0, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha_hex("abc", 3, 1, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_sha256_two_blocks)
{
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char hex[65];

	sha_hex(m, strlen(m), 0, hex);
	ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

/* FIPS 180-2 vector: one million 'a', fed in odd-sized pieces. */
START_TEST(test_sha256_million_a)
{
	char *a = repeat('a', 1000000), hex[65];

	sha_hex(a, 1000000, 4099, hex);
	ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(a);
}
END_TEST

/* 1 MiB of patterned bytes: one piece, odd pieces, and pieces of varying sizes agree. */
START_TEST(test_sha256_pieces)
{
	const size_t len = 1 << 20;
	unsigned char *buf = malloc(len);
	const size_t pieces[] = {1, 3, 63, 64, 65, 1000, 4097, 65521, 524289};
	char one[65], other[65];
	struct jp_sha256 h;
	unsigned char md[32];
	size_t i, off, step;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)((i * 31 + 7) % 251);
	sha_hex(buf, len, 0, one);
	for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		sha_hex(buf, len, pieces[i], other);
		ck_assert_msg(strcmp(one, other) == 0, "piece %zu: %s != %s", pieces[i], other, one);
	}
	/* Growing pieces 1, 2, 3, ... with empty updates in between. */
	ck_assert_int_eq(jp_sha256_init(&h), 0);
	for (off = 0, step = 1; off < len; off += step, step++) {
		jp_sha256_update(&h, buf + off, off + step > len ? len - off : step);
		jp_sha256_update(&h, buf, 0);
	}
	jp_sha256_final(&h, md);
	jp_hex(md, 32, other);
	ck_assert_str_eq(other, one);
	/* A changed byte changes the hash. */
	buf[len / 2] ^= 1;
	sha_hex(buf, len, 0, other);
	ck_assert_str_ne(other, one);
	free(buf);
}
END_TEST

START_TEST(test_sha256_free_paths)
{
	struct jp_sha256 h;
	unsigned char md[32];

	/* Freed without a result (error path), then freed again: safe. */
	ck_assert_int_eq(jp_sha256_init(&h), 0);
	jp_sha256_update(&h, "abc", 3);
	jp_sha256_free(&h);
	ck_assert_ptr_null(h.ctx);
	jp_sha256_free(&h);
	/* Reusable after init again; free after final is safe. */
	ck_assert_int_eq(jp_sha256_init(&h), 0);
	jp_sha256_final(&h, md);
	jp_sha256_free(&h);
	ck_assert_ptr_null(h.ctx);
}
END_TEST

START_TEST(test_backoff)
{
	static const int64_t full[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
	int tries, n;

	for (tries = 0; tries < 7; tries++)
		for (n = 0; n < 50; n++) {
			int64_t ms = jp_backoff_ms(tries);

			ck_assert_msg(ms >= full[tries] / 2 && ms <= full[tries], "try %d: %lld ms", tries,
			              (long long)ms);
		}
}
END_TEST

START_TEST(test_unhex)
{
	unsigned char b[3] = {0, 0, 0}, in[3] = {0x00, 0xab, 0xff};
	char hex[7];

	jp_hex(in, 3, hex);
	ck_assert_int_eq(jp_unhex(hex, b, 3), 0);
	ck_assert_mem_eq(b, in, 3);
	ck_assert_int_eq(jp_unhex("00abf", b, 3), -1);
	ck_assert_int_eq(jp_unhex("00ABff", b, 3), -1);
	ck_assert_int_eq(jp_unhex("00abffe", b, 3), -1);
	ck_assert_int_eq(jp_unhex("00ab g", b, 3), -1);
}
END_TEST

/* jp_db_abspath: a catalogue that exists or not, relative or absolute, is named the same. */
START_TEST(test_db_abspath)
{
	char *dir = t_tempdir(), *real = realpath(dir, NULL), *p, *want, *old = getcwd(NULL, 0);

	ck_assert_ptr_nonnull(real);
	t_write_str(dir, "cat.db", "x");
	ck_assert_int_eq(chdir(dir), 0);
	want = jp_asprintf("%s/cat.db", real);
	p = jp_db_abspath("cat.db");
	ck_assert_str_eq(p, want);
	free(p);
	p = jp_db_abspath("./sub/../cat.db"); /* sub does not exist */
	ck_assert_ptr_null(p);
	free(want);
	want = jp_asprintf("%s/new.db", real);
	p = jp_db_abspath("new.db");
	ck_assert_str_eq(p, want);
	free(p);
	p = jp_db_abspath(want);
	ck_assert_str_eq(p, want);
	free(p);
	errno = 0;
	ck_assert_ptr_null(jp_db_abspath("no/such/dir/x.db"));
	ck_assert_int_eq(errno, ENOENT);
	p = jp_db_abspath("/");
	ck_assert_str_eq(p, "/"); /* exists */
	free(p);
	errno = 0;
	ck_assert_ptr_null(jp_db_abspath("gone/.."));
	ck_assert_int_eq(chdir(old), 0);
	free(want);
	free(old);
	free(real);
	t_rmtree(dir);
	free(dir);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("util");
	TCase *tc;

	tc = tcase_create("identifier");
	tcase_add_loop_test(tc, test_identifier_good, 0, (int)(sizeof(good_ids) / sizeof(good_ids[0])));
	tcase_add_loop_test(tc, test_identifier_bad, 0, (int)(sizeof(bad_ids) / sizeof(bad_ids[0])));
	tcase_add_test(tc, test_identifier_null);
	tcase_add_test(tc, test_identifier_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("strings");
	tcase_add_test(tc, test_hex);
	tcase_add_test(tc, test_hex_empty);
	tcase_add_test(tc, test_asprintf);
	tcase_add_loop_test(tc, test_human_size, 0, (int)(sizeof(sizes) / sizeof(sizes[0])));
	tcase_add_test(tc, test_human_size_small_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("time");
	tcase_add_test(tc, test_now_iso);
	tcase_add_test(tc, test_now_ms_monotonic);
	suite_add_tcase(s, tc);

	tc = tcase_create("token");
	tcase_add_test(tc, test_random_token_format);
	tcase_add_test(tc, test_random_token_unique);
	suite_add_tcase(s, tc);

	tc = tcase_create("sha256");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_sha256_empty);
	tcase_add_test(tc, test_sha256_abc);
	tcase_add_test(tc, test_sha256_two_blocks);
	tcase_add_test(tc, test_sha256_million_a);
	tcase_add_test(tc, test_sha256_pieces);
	tcase_add_test(tc, test_sha256_free_paths);
	tcase_add_test(tc, test_backoff);
	tcase_add_test(tc, test_unhex);
	tcase_add_test(tc, test_db_abspath);
	suite_add_tcase(s, tc);

	return t_run(s);
}
