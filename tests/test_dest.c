/*
 * test_dest.c - src/core/dest.c: the remote-name gate (jp_key_check), URL joining with
 * percent-encoding (jp_url_join), picking a backend from a URL (jp_dest_check_url), and the
 * dispatch around an open destination (URL kept without a trailing '/', keys checked at stage),
 * jobpub's temporary names (jp_tmp_name_kind) and the destination cache.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h" /* jp_dest_stopping */
#include "dest.h"
#include "failalloc.h"
#include "testlib.h"
#include "util.h"

static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* ---- jp_key_check ---- */

static const char *const accepted[] = {
	"a",
	"a/b",
	"pdrgrid/TEXTOUT100_40_10_20_00",
	"oniongrid/ONION100_40.jerg_CO.smli",
	".hidden",
	"..a",
	"a..",
	"...",
	"a/.b/c",
	".jobpub",          /* the prefix is ".jobpub-" */
	"x.jobpub-y",       /* only at the start of a component */
	"a/b.jobpub-",
	"with space/and%percent?#",
	"caf\xc3\xa9/\xe2\x82\xac",
	"a\\b",
};

START_TEST(test_key_accepted)
{
	char why[256] = "untouched";

	ck_assert_msg(jp_key_check(accepted[_i], why, sizeof(why)) == 0, "'%s' refused: %s",
	              accepted[_i], why);
}
END_TEST

static const struct {
	const char *key, *why;
} refused[] = {
	{"", "remote name is empty"},
	{"/a", "remote name '/a' is absolute; it must be relative to the destination"},
	{"/", "remote name '/' is absolute; it must be relative to the destination"},
	{"a//b", "remote name 'a//b' has an empty component ('//' or a trailing '/')"},
	{"a/", "remote name 'a/' has an empty component ('//' or a trailing '/')"},
	{"a/b/", "remote name 'a/b/' has an empty component ('//' or a trailing '/')"},
	{".", "remote name '.' escapes the destination ('.' or '..' component)"},
	{"..", "remote name '..' escapes the destination ('.' or '..' component)"},
	{"./a", "remote name './a' escapes the destination ('.' or '..' component)"},
	{"a/./b", "remote name 'a/./b' escapes the destination ('.' or '..' component)"},
	{"../x", "remote name '../x' escapes the destination ('.' or '..' component)"},
	{"a/../../x", "remote name 'a/../../x' escapes the destination ('.' or '..' component)"},
	{"a/..", "remote name 'a/..' escapes the destination ('.' or '..' component)"},
	{".jobpub-x", "remote name '.jobpub-x' uses jobpub's temporary prefix '.jobpub-'"},
	{".jobpub-", "remote name '.jobpub-' uses jobpub's temporary prefix '.jobpub-'"},
	{"a/.jobpub-0123456789abcdef.TEXTOUT",
	 "remote name 'a/.jobpub-0123456789abcdef.TEXTOUT' uses jobpub's temporary prefix "
	 "'.jobpub-'"},
	{"a\nb", "remote name 'a\nb' contains a control character"},
	{"a\tb", "remote name 'a\tb' contains a control character"},
	{"\x01", "remote name '\x01' contains a control character"},
	{"a/b\x1b[K", "remote name 'a/b\x1b[K' contains a control character"},
	{"del\x7f", "remote name 'del\x7f' contains a control character"},
	{"a\r", "remote name 'a\r' contains a control character"},
};

START_TEST(test_key_refused)
{
	char why[512] = "";

	ck_assert_msg(jp_key_check(refused[_i].key, why, sizeof(why)) == -1, "'%s' accepted",
	              refused[_i].key);
	ck_assert_str_eq(why, refused[_i].why);
}
END_TEST

/* 255 bytes is the longest component (NAME_MAX); 256 is refused, first or last. */
START_TEST(test_key_component_length)
{
	char *c255 = repeat('x', 255), *c256 = repeat('y', 256), key[600], want[700], why[1024];

	ck_assert_int_eq(jp_key_check(c255, why, sizeof(why)), 0);
	snprintf(key, sizeof(key), "dir/%s", c255);
	ck_assert_int_eq(jp_key_check(key, why, sizeof(why)), 0);
	snprintf(key, sizeof(key), "%s/%s", c255, c255);
	ck_assert_int_eq(jp_key_check(key, why, sizeof(why)), 0);

	ck_assert_int_eq(jp_key_check(c256, why, sizeof(why)), -1);
	snprintf(want, sizeof(want), "remote name '%s' has a component longer than 255 bytes", c256);
	ck_assert_str_eq(why, want);
	snprintf(key, sizeof(key), "dir/%s", c256);
	ck_assert_int_eq(jp_key_check(key, why, sizeof(why)), -1);
	snprintf(key, sizeof(key), "%s/file", c256);
	ck_assert_int_eq(jp_key_check(key, why, sizeof(why)), -1);
	free(c255);
	free(c256);
}
END_TEST

/* 4096 bytes in all is accepted, 4097 refused. */
START_TEST(test_key_total_length)
{
	char *key = malloc(4098), why[256];
	size_t i;

	/* Components of 200 bytes, the last one shorter. */
	for (i = 0; i < 4097; i++)
		key[i] = (i % 201 == 200) ? '/' : 'k';
	key[4096] = '\0';
	ck_assert_uint_eq(strlen(key), 4096);
	ck_assert_int_eq(key[4095], 'k');
	ck_assert_msg(jp_key_check(key, why, sizeof(why)) == 0, "4096 refused: %s", why);
	key[4096] = 'k';
	key[4097] = '\0';
	ck_assert_int_eq(jp_key_check(key, why, sizeof(why)), -1);
	ck_assert_str_eq(why, "remote name is too long");
	free(key);
}
END_TEST

/* ---- jp_url_join ---- */

static const struct {
	const char *base, *key, *url;
} joins[] = {
	{"file:///archive", "pdrgrid/TEXTOUT42", "file:///archive/pdrgrid/TEXTOUT42"},
	{"file:///archive/", "a", "file:///archive/a"},
	{"file:///archive///", "a", "file:///archive/a"},
	{"/archive", "a/b", "/archive/a/b"},
	{"file:///a", "with space", "file:///a/with%20space"},
	{"file:///a", "100%", "file:///a/100%25"},
	{"file:///a", "q?x=1", "file:///a/q%3Fx=1"},
	{"file:///a", "frag#1", "file:///a/frag%231"},
	{"file:///a", "caf\xc3\xa9", "file:///a/caf%C3%A9"},
	{"file:///a", "\xe2\x82\xac", "file:///a/%E2%82%AC"},
	{"file:///a", "\xff", "file:///a/%FF"},
	{"file:///a", "a\"<>\\^`{|}", "file:///a/a%22%3C%3E%5C%5E%60%7B%7C%7D"},
	{"file:///a", "keep-_.~!$&'()*+,;=:@/x", "file:///a/keep-_.~!$&'()*+,;=:@/x"},
	{"file:///a", "%20", "file:///a/%2520"}, /* no double decoding later */
};

START_TEST(test_url_join)
{
	char *u = jp_url_join(joins[_i].base, joins[_i].key);

	ck_assert_ptr_nonnull(u);
	ck_assert_str_eq(u, joins[_i].url);
	free(u);
}
END_TEST

/* Every byte of a long key encoded: the result is exactly 3 bytes per input byte (a plain-path
 * base gives plain paths; see the join table). */
START_TEST(test_url_join_worst_case)
{
	char *key = repeat(' ', 4096), *u = jp_url_join("file:///", key);
	size_t i;

	ck_assert_ptr_nonnull(u);
	ck_assert_uint_eq(strlen(u), 8 + 3 * 4096);
	ck_assert(strncmp(u, "file:///%20%20", 14) == 0);
	for (i = 8; i < strlen(u); i += 3)
		ck_assert(strncmp(u + i, "%20", 3) == 0);
	free(u);
	free(key);
}
END_TEST

/* ---- jp_dest_check_url ---- */

static const char *const good_urls[] = {
	"file:///archive/pdr", "file:///", "FILE:///archive", "/archive/pdr", "/", "s3://bucket/pdr",
	"sftp://host/archive", "sftp://user@host:2222/archive/pdr", "file://localhost/archive",
};

START_TEST(test_check_url_good)
{
	struct jp_error e;

	jp_error_clear(&e);
	ck_assert_msg(jp_dest_check_url(good_urls[_i], &e) == JP_OK, "%s: %s", good_urls[_i], e.msg);
	ck_assert_int_eq(e.code, JP_E_NONE);
}
END_TEST

static const struct {
	const char *url, *why;
} bad_urls[] = {
	{"archive/pdr", "dest: destination 'archive/pdr': expected a URL (file:///path) or an absolute path"},
	{"./archive", "dest: destination './archive': expected a URL (file:///path) or an absolute path"},
	{"", "dest: destination '': expected a URL (file:///path) or an absolute path"},
	{"file:/archive", "dest: destination 'file:/archive': expected a URL (file:///path) or an absolute "
	                  "path"},
	{"s4://bucket/pdr", "dest: destination 's4://bucket/pdr': unknown scheme 's4' (supported: file, sftp, s3)"},
	{"gs://bucket/pdr", "dest: destination 'gs://bucket/pdr': unknown scheme 'gs' (supported: file, sftp, s3)"},
	{"files:///a", "dest: destination 'files:///a': unknown scheme 'files' (supported: file, sftp, s3)"},
	{"fil:///a", "dest: destination 'fil:///a': unknown scheme 'fil' (supported: file, sftp, s3)"},
	/* well-known schemes, malformed for their backend: refused without connecting */
	{"sftp://", "sftp: destination 'sftp://': No host part in the URL"},
	{"sftp://host/~/x", "sftp: destination 'sftp://host/~/x': give an absolute remote path "
	                    "(sftp://host/abs/path)"},
	{"s3://", "s3: destination 's3://': '' is not a valid bucket name (3-63 characters of a-z "
	          "0-9 . -)"},
	{"s3://bucket/a/../b", "s3: destination 's3://bucket/a/../b': prefix: remote name 'a/../b' "
	                       "escapes the destination ('.' or '..' component)"},
	{"file://host/x", "posix: destination 'file://host/x': Bad file:// URL"},
	/* a path that does not decode to a file name (a NUL byte) */
	{"file:///a%00b", "posix: destination 'file:///a%00b': URL decode error, most likely "
	                  "because of rubbish in the input"},
};

START_TEST(test_check_url_bad)
{
	struct jp_error e;

	jp_error_clear(&e);
	ck_assert_int_eq(jp_dest_check_url(bad_urls[_i].url, &e), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_CONFIG);
	ck_assert_str_eq(e.msg, bad_urls[_i].why);
}
END_TEST

/* ---- an open destination ---- */

static char *tmp;

static void
setup(void)
{
	tmp = t_tempdir();
}

static void
teardown(void)
{
	t_rmtree(tmp);
	free(tmp);
}

START_TEST(test_open_url_and_key_url)
{
	struct jp_dest_opts opts = {0};
	struct jp_dest *d = NULL;
	struct jp_error e;
	char *url, *want, *ku;

	jp_error_clear(&e);
	if (asprintf(&url, "file://%s/arch//", tmp) < 0)
		ck_abort();
	ck_assert_msg(jp_dest_open(url, &opts, &d, &e) == JP_OK, "%s", e.msg);
	ck_assert_str_eq(jp_dest_backend(d), "posix");
	ck_assert_int_eq(jp_dest_can_cancel(d), 0); /* its waits are local */
	if (asprintf(&want, "file://%s/arch", tmp) < 0)
		ck_abort();
	ck_assert_str_eq(jp_dest_url(d), want);
	ku = jp_dest_key_url(d, "pdr grid/TEXTOUT#1");
	ck_assert_ptr_nonnull(ku);
	free(want);
	if (asprintf(&want, "file://%s/arch/pdr%%20grid/TEXTOUT%%231", tmp) < 0)
		ck_abort();
	ck_assert_str_eq(ku, want);
	free(ku);
	free(want);
	free(url);
	jp_dest_close(d);
	jp_dest_close(NULL);
}
END_TEST

START_TEST(test_open_bad_scheme)
{
	struct jp_dest_opts opts = {0};
	struct jp_dest *d = (struct jp_dest *)&opts;
	struct jp_error e;

	jp_error_clear(&e);
	ck_assert_int_eq(jp_dest_open("s4://bucket/x", &opts, &d, &e), JP_FAILED);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(e.code, JP_E_CONFIG);
	ck_assert_str_eq(e.msg, "dest: destination 's4://bucket/x': unknown scheme 's4' (supported: file, sftp, s3)");
}
END_TEST

/* A lane whose destination never opened is NULL: failure paths walk it anyway.  Sync has
 * nothing to do; every other call is an error, never a crash. */
START_TEST(test_not_open)
{
	unsigned char sha[32];
	struct jp_upload *u = (struct jp_upload *)&sha;
	struct jp_stat st;
	struct jp_error e;

	jp_error_clear(&e);
	ck_assert_int_eq(jp_dest_sync(NULL, &e), JP_OK);
	ck_assert_int_eq(e.code, JP_E_NONE);
	ck_assert_int_eq(jp_dest_stage(NULL, "a", "tok", 1, &u, &e), JP_FAILED);
	ck_assert_ptr_null(u);
	ck_assert_str_eq(e.msg, "dest: destination not open");
	ck_assert_int_eq(jp_dest_stat(NULL, "a", &st, &e), JP_FAILED);
	ck_assert_int_eq(st.exists, 0);
	ck_assert_int_eq(jp_dest_remove(NULL, "a", &e), JP_FAILED);
	ck_assert_int_eq(jp_dest_digest(NULL, "a", sha, &e), JP_FAILED);
	ck_assert_int_eq(jp_dest_hash(NULL, "a", sha, &e), JP_FAILED);
	ck_assert_int_eq(jp_dest_abort_upload(NULL, "a", "id", &e), JP_FAILED);
	ck_assert_int_eq(jp_dest_list(NULL, "", NULL, NULL, &e), JP_FAILED);
	ck_assert_ptr_null(jp_dest_key_url(NULL, "a"));
	ck_assert_int_eq(e.code, JP_E_SOFTWARE);
	ck_assert_int_eq(jp_upload_abort(NULL, &e), JP_OK);
	ck_assert_int_eq(jp_upload_uncommit(NULL, &e), JP_OK);
	jp_upload_free(NULL);
	jp_dest_close(NULL);
	ck_assert_int_eq(jp_dest_can_cancel(NULL), 0);
	jp_dest_cancel(NULL);
}
END_TEST

/* Staging checks the key before the backend sees it: nothing is created for a bad key. */
START_TEST(test_stage_refuses_bad_key)
{
	struct jp_dest_opts opts = {0};
	struct jp_dest *d = NULL;
	struct jp_upload *u = (struct jp_upload *)&opts;
	struct jp_error e;

	jp_error_clear(&e);
	ck_assert_msg(jp_dest_open(tmp, &opts, &d, &e) == JP_OK, "%s", e.msg);
	ck_assert_int_eq(jp_dest_stage(d, "../escape", "0123456789abcdef", UINT64_MAX, &u, &e), JP_FAILED);
	ck_assert_ptr_null(u);
	ck_assert_int_eq(e.code, JP_E_DATA);
	ck_assert_str_eq(e.msg, "dest: remote name '../escape' escapes the destination ('.' or '..' "
	                        "component)");
	ck_assert_uint_eq(t_count_prefixed(tmp, ".jobpub-"), 0);
	jp_dest_close(d);
}
END_TEST

/* stage, write, finish, commit through dest.c: the written count is checked at finish. */
START_TEST(test_stage_write_commit)
{
	struct jp_dest_opts opts = {0};
	struct jp_dest *d = NULL;
	struct jp_upload *u = NULL;
	struct jp_error e;
	unsigned char sha[32] = {0};
	int exists = -1, replaced = -1;
	char *got;

	jp_error_clear(&e);
	ck_assert_msg(jp_dest_open(tmp, &opts, &d, &e) == JP_OK, "%s", e.msg);
	ck_assert_msg(jp_dest_stage(d, "dir/file", "0123456789abcdef", UINT64_MAX, &u, &e) == JP_OK, "%s", e.msg);
	ck_assert_str_eq(jp_upload_key(u), "dir/file");
	ck_assert_int_eq(jp_upload_write(u, "hello", 5, &e), JP_OK);
	/* Finishing with a size other than what was written is refused. */
	ck_assert_int_eq(jp_upload_finish(u, 6, sha, &e), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_SOFTWARE);
	ck_assert_str_eq(e.msg, "dest: posix: dir/file: wrote 5 bytes of 6");
	jp_error_clear(&e);
	ck_assert_msg(jp_upload_finish(u, 5, sha, &e) == JP_OK, "%s", e.msg);
	ck_assert_msg(jp_upload_commit(u, 0, &exists, &replaced, &e) == JP_OK, "%s", e.msg);
	ck_assert_int_eq(exists, 0);
	ck_assert_int_eq(replaced, 0);
	jp_upload_free(u);
	got = t_read(tmp, "dir/file", NULL);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, "hello");
	free(got);
	ck_assert_uint_eq(t_count_prefixed(tmp, ".jobpub-"), 0);
	jp_dest_close(d);
}
END_TEST

/* Freeing a staged upload aborts it: no temporary file is left. */
START_TEST(test_upload_free_aborts)
{
	struct jp_dest_opts opts = {0};
	struct jp_dest *d = NULL;
	struct jp_upload *u = NULL;
	struct jp_error e;

	jp_error_clear(&e);
	ck_assert_msg(jp_dest_open(tmp, &opts, &d, &e) == JP_OK, "%s", e.msg);
	ck_assert_msg(jp_dest_stage(d, "f", "0123456789abcdef", UINT64_MAX, &u, &e) == JP_OK, "%s", e.msg);
	ck_assert_int_eq(jp_upload_write(u, "x", 1, &e), JP_OK);
	ck_assert_uint_eq(t_count_prefixed(tmp, ".jobpub-"), 1);
	jp_upload_free(u);
	ck_assert_uint_eq(t_count_prefixed(tmp, ".jobpub-"), 0);
	ck_assert(!t_exists(tmp, "f"));
	ck_assert_int_eq(jp_upload_abort(NULL, &e), JP_OK);
	jp_upload_free(NULL);
	jp_dest_close(d);
}
END_TEST

/* The digest falls back to reading the object back (posix has no stored digest). */
START_TEST(test_digest_read_back)
{
	struct jp_dest_opts opts = {0};
	struct jp_dest *d = NULL;
	struct jp_error e;
	unsigned char sha[32];
	char hex[65];

	jp_error_clear(&e);
	t_write_str(tmp, "obj", "abc");
	ck_assert_msg(jp_dest_open(tmp, &opts, &d, &e) == JP_OK, "%s", e.msg);
	ck_assert_msg(jp_dest_digest(d, "obj", sha, &e) == JP_OK, "%s", e.msg);
	jp_hex(sha, 32, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	jp_dest_close(d);
}
END_TEST

/* A read-back stops at a signal (the stop hook), like a transfer. */
static int stop_now(void) { return 1; }

START_TEST(test_hash_stopped)
{
	struct jp_dest_opts opts = {0};
	struct jp_dest *d = NULL;
	struct jp_error e;
	unsigned char sha[32];

	jp_error_clear(&e);
	t_write_str(tmp, "obj", "abc");
	ck_assert_msg(jp_dest_open(tmp, &opts, &d, &e) == JP_OK, "%s", e.msg);
	jp_dest_set_stop(stop_now);
	ck_assert_int_eq(jp_dest_stopping(), 1);
	ck_assert_int_ne(jp_dest_digest(d, "obj", sha, &e), JP_OK);
	jp_dest_set_stop(NULL);
	ck_assert_int_eq(e.code, JP_E_TEMPFAIL);
	ck_assert_msg(strstr(e.msg, "/obj stopped") != NULL, "%s", e.msg);
	ck_assert_int_eq(jp_dest_stopping(), 0);
	jp_error_clear(&e);
	ck_assert_int_eq(jp_dest_hash(d, "obj", sha, &e), JP_OK);
	jp_dest_close(d);
}
END_TEST

/* What a backend lacks is said, not attempted: file:// has no incomplete uploads to abort and
 * cannot be cancelled. */
START_TEST(test_unsupported)
{
	struct jp_dest_opts opts = {0};
	struct jp_dest *d = NULL;
	struct jp_error e;

	jp_error_clear(&e);
	ck_assert_msg(jp_dest_open(tmp, &opts, &d, &e) == JP_OK, "%s", e.msg);
	ck_assert_int_eq(jp_dest_abort_upload(d, "k", "upload-id", &e), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_UNAVAILABLE);
	ck_assert_str_eq(e.msg, "dest: posix: incomplete uploads are not supported");
	ck_assert_int_eq(jp_dest_can_cancel(d), 0);
	jp_dest_cancel(d);
	jp_dest_close(d);
}
END_TEST

/* Settings are checked after the URL: a bad URL is reported first, a good one is checked by
 * its backend. */
START_TEST(test_check_settings)
{
	struct jp_dest_opts opts = {0};
	struct jp_error e;

	jp_error_clear(&e);
	ck_assert_int_eq(jp_dest_check_settings("ftp://host/x", &opts, &e), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_CONFIG);
	ck_assert_msg(strstr(e.msg, "unknown scheme 'ftp'") != NULL, "%s", e.msg);
	jp_error_clear(&e);
	ck_assert_int_eq(jp_dest_check_settings("file://server/x", &opts, &e), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_CONFIG);
	ck_assert_msg(strstr(e.msg, "'file://server/x'") != NULL, "%s", e.msg);
	jp_error_clear(&e);
	ck_assert_int_eq(jp_dest_check_settings(tmp, &opts, &e), JP_OK);
	ck_assert_int_eq(e.code, JP_E_NONE);
}
END_TEST

/* jobpub's temporary names as gc tells them apart (staged, displaced, neither). */
START_TEST(test_tmp_name_kind)
{
	char tok[17] = "";

	ck_assert_int_eq(jp_tmp_name_kind(".jobpub-0123456789abcdef.a", tok), JP_NAME_STAGED);
	ck_assert_str_eq(tok, "0123456789abcdef");
	ck_assert_int_eq(jp_tmp_name_kind(".jobpub-old-fedcba9876543210.b", tok),
	                 JP_NAME_DISPLACED);
	ck_assert_int_eq(jp_tmp_name_kind(".jobpub-0123.a", tok), JP_NAME_OTHER); /* short token */
	ck_assert_int_eq(jp_tmp_name_kind(".jobpub-0123456789ABCDEF.a", tok), JP_NAME_OTHER);
	ck_assert_int_eq(jp_tmp_name_kind("result.txt", tok), JP_NAME_OTHER);
}
END_TEST

/* The cache opens a URL once, and remembers a failed open with its reason. */
START_TEST(test_dest_cache)
{
	struct jp_dest_cache c;
	struct jp_dest_opts o;
	struct jp_dest *d1, *d2;
	struct jp_error e;
	char *url, *bad;

	memset(&c, 0, sizeof(c));
	memset(&o, 0, sizeof(o));
	o.readonly = 1;
	ck_assert(asprintf(&url, "file://%s", tmp) > 0);
	ck_assert(asprintf(&bad, "nosuch://%s", tmp) > 0);
	jp_error_clear(&e);
	d1 = jp_dest_cache_get(&c, url, &o, &e);
	d2 = jp_dest_cache_get(&c, url, &o, &e);
	ck_assert_ptr_nonnull(d1);
	ck_assert_ptr_eq(d1, d2);
	ck_assert_uint_eq(c.n, 1);
	ck_assert_ptr_null(jp_dest_cache_get(&c, bad, &o, &e));
	ck_assert_int_eq(e.code, 78);
	jp_error_clear(&e);
	ck_assert_ptr_null(jp_dest_cache_get(&c, bad, &o, &e)); /* remembered, said again */
	ck_assert_int_eq(e.code, 78);
	ck_assert_uint_eq(c.n, 2);
	jp_dest_cache_free(&c);
	ck_assert_uint_eq(c.n, 0);
	free(url);
	free(bad);
}
END_TEST

/* Each allocation of jobpub's own (tests/failalloc.h) failed in turn while a cache that holds
 * an open destination takes a second and a third URL: the cache stays whole (it lost its
 * arrays to a failed realloc, and then crashed), the next lookups answer, the free frees what
 * it holds; then both are added. */
START_TEST(test_dest_cache_out_of_memory)
{
	struct jp_dest_cache c;
	struct jp_dest_opts o;
	struct jp_dest *d;
	struct jp_error e;
	char *url, *url2, *sub = t_path(tmp, "sub");
	struct jp_dest *bad;
	unsigned long n;

	memset(&o, 0, sizeof(o));
	o.readonly = 1;
	ck_assert(asprintf(&url, "file://%s", tmp) > 0);
	ck_assert(asprintf(&url2, "file://%s/sub", tmp) > 0);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	for (n = 1;; n++) {
		memset(&c, 0, sizeof(c));
		jp_error_clear(&e);
		ck_assert_ptr_nonnull(jp_dest_cache_get(&c, url, &o, &e));
		t_fail_alloc(n);
		d = jp_dest_cache_get(&c, url2, &o, &e);
		bad = jp_dest_cache_get(&c, "nosuch://x", &o, &e);
		t_fail_alloc(0);
		if (!t_fail_alloc_fired())
			break;
		ck_assert_msg(c.n >= 1 && c.n <= 3, "allocation %lu: %zu entries", n, c.n);
		jp_error_clear(&e);
		ck_assert_ptr_nonnull(jp_dest_cache_get(&c, url, &o, &e)); /* still there */
		/* an open that failed for want of memory is remembered like any failed open */
		d = jp_dest_cache_get(&c, url2, &o, &e);
		ck_assert_msg(d != NULL || e.code == JP_E_SOFTWARE, "allocation %lu, then: %s", n,
		              e.msg);
		jp_dest_cache_free(&c);
		ck_assert_uint_eq(c.n, 0);
	}
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_null(bad);
	ck_assert_uint_eq(c.n, 3);
	jp_dest_cache_free(&c);
	free(url);
	free(url2);
	free(sub);
}
END_TEST


int
main(void)
{
	Suite *s = suite_create("dest");
	TCase *tc;

	tc = tcase_create("key");
	tcase_add_loop_test(tc, test_key_accepted, 0, (int)(sizeof(accepted) / sizeof(accepted[0])));
	tcase_add_loop_test(tc, test_key_refused, 0, (int)(sizeof(refused) / sizeof(refused[0])));
	tcase_add_test(tc, test_key_component_length);
	tcase_add_test(tc, test_key_total_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("url");
	tcase_add_loop_test(tc, test_url_join, 0, (int)(sizeof(joins) / sizeof(joins[0])));
	tcase_add_test(tc, test_url_join_worst_case);
	tcase_add_loop_test(tc, test_check_url_good, 0,
	                    (int)(sizeof(good_urls) / sizeof(good_urls[0])));
	tcase_add_loop_test(tc, test_check_url_bad, 0, (int)(sizeof(bad_urls) / sizeof(bad_urls[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("open");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_url_and_key_url);
	tcase_add_test(tc, test_open_bad_scheme);
	tcase_add_test(tc, test_not_open);
	tcase_add_test(tc, test_stage_refuses_bad_key);
	tcase_add_test(tc, test_stage_write_commit);
	tcase_add_test(tc, test_upload_free_aborts);
	tcase_add_test(tc, test_digest_read_back);
	tcase_add_test(tc, test_hash_stopped);
	tcase_add_test(tc, test_unsupported);
	tcase_add_test(tc, test_check_settings);
	tcase_add_test(tc, test_tmp_name_kind);
	tcase_add_test(tc, test_dest_cache);
	tcase_add_test(tc, test_dest_cache_out_of_memory);
	suite_add_tcase(s, tc);

	return t_run(s);
}
