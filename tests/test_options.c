/*
 * test_options.c - src/core/options.c: the backends' option tables as the registry gives them, the
 * check of a value by its type and by the backend's own hook, the store (a later value
 * replaces, the command line beats the manifest, where each came from), the refusals of the
 * command line (unknown backend, unknown key, a secret, a bad value: 64, never echoing a
 * value that may be a secret), the older flags as aliases, and the help listing.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "options.h"
#include "testlib.h"

static struct jp_options s;
static struct jp_error err;

static void
setup(void)
{
	memset(&s, 0, sizeof(s));
	jp_error_clear(&err);
}

static void
teardown(void)
{
	jp_options_free(&s);
}

/* ---- the tables ---- */

START_TEST(test_tables)
{
	char buf[256];

	ck_assert_ptr_nonnull(jp_options_of("sftp"));
	ck_assert_ptr_nonnull(jp_options_of("s3"));
	ck_assert_ptr_null(jp_options_of("posix")); /* a backend without options */
	ck_assert_ptr_null(jp_options_of("nosuch")); /* no such backend */
	ck_assert_ptr_nonnull(jp_option_find("s3.part-size"));
	ck_assert_int_eq(jp_option_find("s3.part-size")->type, JP_OPTION_SIZE);
	ck_assert_int_eq(jp_option_find("sftp.identity")->type, JP_OPTION_PATH);
	ck_assert_ptr_null(jp_option_find("s3.identity")); /* another backend's key */
	ck_assert_ptr_null(jp_option_find("s3"));
	ck_assert_ptr_null(jp_option_find("s3."));
	ck_assert_ptr_null(jp_option_find(".part-size"));
	ck_assert_ptr_null(jp_option_find("posix.x"));
	/* registry order; a backend added later comes after these */
	jp_options_backend_names(buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, "sftp, s3", 8) == 0, "%s", buf);
	/* What a manifest may set: no secret, nothing for the command line only. */
	jp_options_manifest_names("sftp", buf, sizeof(buf));
	ck_assert_str_eq(buf, "identity, known-hosts");
	jp_options_manifest_names("s3", buf, sizeof(buf));
	ck_assert_str_eq(buf, "endpoint, region, path-style, part-size");
	jp_options_manifest_names("posix", buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
	/* A short buffer is cut, not overrun. */
	jp_options_manifest_names("s3", buf, 12);
	ck_assert_int_lt(strlen(buf), 12);
}
END_TEST

/* ---- the check of a value ---- */

/* The reason key=value is refused ("" when it is good). */
static const char *
why_of(const char *key, const char *value)
{
	static char why[512];
	const struct jp_option_def *d = jp_option_find(key);

	ck_assert_msg(d != NULL, "no option %s", key);
	why[0] = '\0';
	if (jp_option_check(key, d, value, why, sizeof(why)) == 0)
		ck_assert_str_eq(why, "");
	else
		ck_assert_str_ne(why, "");
	return why;
}

START_TEST(test_check_by_type)
{
	/* size, within the table's bounds */
	ck_assert_str_eq(why_of("s3.part-size", "64MiB"), "");
	ck_assert_str_eq(why_of("s3.part-size", "5M"), "");
	ck_assert_str_eq(why_of("s3.part-size", "5GiB"), "");
	ck_assert_str_eq(why_of("s3.part-size", "1MiB"),
	                 "'1MiB' is not a size from 5MiB to 5GiB (e.g. 64MiB)");
	ck_assert_str_eq(why_of("s3.part-size", "6G"),
	                 "'6G' is not a size from 5MiB to 5GiB (e.g. 64MiB)");
	ck_assert_str_eq(why_of("s3.part-size", "lots"),
	                 "'lots' is not a size from 5MiB to 5GiB (e.g. 64MiB)");
	/* bool */
	ck_assert_str_eq(why_of("s3.path-style", "true"), "");
	ck_assert_str_eq(why_of("s3.path-style", "false"), "");
	ck_assert_str_eq(why_of("s3.path-style", "yes"), "expected true or false");
	ck_assert_str_eq(why_of("sftp.accept-new-host-key", "1"), "expected true or false");
	/* strings and paths: anything but empty */
	ck_assert_str_eq(why_of("sftp.identity", "~/.ssh/id_ed25519"), "");
	ck_assert_str_eq(why_of("sftp.identity", ""), "empty value");
	ck_assert_str_eq(why_of("s3.endpoint", "http://127.0.0.1:7480"), "");
	/* a secret is refused whatever its value, and the reason names the variable only */
	ck_assert_str_eq(why_of("s3.secret-access-key", "TopSecret"),
	                 "a secret is read from the environment only (a command line or a "
	                 "manifest would show it); set AWS_SECRET_ACCESS_KEY");
	ck_assert_ptr_null(strstr(why_of("sftp.passphrase", "TopSecret"), "TopSecret"));
	ck_assert_ptr_nonnull(strstr(why_of("sftp.passphrase", "x"), "JOBPUB_SSH_PASSPHRASE_FILE"));
}
END_TEST

/* The s3 backend's hook: a region names a host, so only its characters pass. */
START_TEST(test_check_backend_hook)
{
	ck_assert_str_eq(why_of("s3.region", "eu-central-1"), "");
	ck_assert_str_eq(why_of("s3.region", "evil.example/x"),
	                 "'evil.example/x' is not a region name (letters, digits and '-', e.g. "
	                 "eu-central-1)");
	/* the type's check comes first */
	ck_assert_str_eq(why_of("s3.region", ""), "empty value");
}
END_TEST

/* INT, and a size without an upper bound: no backend has one yet, the check is generic. */
START_TEST(test_check_int_and_unbounded)
{
	const struct jp_option_def n = {.name = "n", .type = JP_OPTION_INT, .min = 1, .max = 64};
	const struct jp_option_def m = {.name = "m", .type = JP_OPTION_INT, .min = 0};
	const struct jp_option_def z = {.name = "z", .type = JP_OPTION_SIZE, .example = "1GiB"};
	char why[256];

	ck_assert_int_eq(jp_option_check("x.n", &n, "8", why, sizeof(why)), 0);
	ck_assert_int_eq(jp_option_check("x.n", &n, "65", why, sizeof(why)), -1);
	ck_assert_str_eq(why, "'65' is not a whole number from 1 to 64");
	ck_assert_int_eq(jp_option_check("x.n", &n, "0", why, sizeof(why)), -1);
	ck_assert_int_eq(jp_option_check("x.n", &n, "8x", why, sizeof(why)), -1);
	ck_assert_int_eq(jp_option_check("x.n", &n, "99999999999999999999", why, sizeof(why)), -1);
	ck_assert_int_eq(jp_option_check("x.m", &m, "123456", why, sizeof(why)), 0);
	ck_assert_int_eq(jp_option_check("x.m", &m, "-1", why, sizeof(why)), -1);
	ck_assert_str_eq(why, "'-1' is not a whole number from 0");
	ck_assert_int_eq(jp_option_check("x.z", &z, "3T", why, sizeof(why)), 0);
	ck_assert_int_eq(jp_option_check("x.z", &z, "3 apples", why, sizeof(why)), -1);
	ck_assert_str_eq(why, "'3 apples' is not a size (e.g. 1GiB)");
}
END_TEST

/* ---- the store ---- */

START_TEST(test_store)
{
	struct jp_options cli = {NULL, 0};

	/* an empty store, and none at all, read as "not given" */
	ck_assert_ptr_null(jp_options_get(&s, "s3.endpoint"));
	ck_assert_ptr_null(jp_options_get(NULL, "s3.endpoint"));
	ck_assert_ptr_null(jp_options_where(NULL, "s3.endpoint"));
	ck_assert_int_eq(jp_options_bool(NULL, "s3.path-style", -1), -1);
	ck_assert_uint_eq(jp_options_size(NULL, "s3.part-size", 7), 7);
	ck_assert_int_eq(jp_options_int(NULL, "x.n", 9), 9);

	ck_assert_int_eq(jp_options_put(&s, "s3.endpoint", "http://a", JP_OPTION_FROM_MANIFEST,
	                                "m.yaml:3:13", &err), JP_OK);
	ck_assert_int_eq(jp_options_put(&s, "s3.part-size", "64MiB", JP_OPTION_FROM_MANIFEST,
	                                "m.yaml:4:14", &err), JP_OK);
	ck_assert_int_eq(jp_options_put(&s, "s3.path-style", "false", JP_OPTION_FROM_MANIFEST,
	                                NULL, &err), JP_OK);
	ck_assert_int_eq(jp_options_put(&s, "x.n", "12", JP_OPTION_FROM_MANIFEST, NULL, &err), JP_OK);
	ck_assert_str_eq(jp_options_get(&s, "s3.endpoint"), "http://a");
	ck_assert_str_eq(jp_options_where(&s, "s3.endpoint"), "m.yaml:3:13");
	ck_assert_ptr_null(jp_options_where(&s, "s3.path-style"));
	ck_assert_uint_eq(jp_options_size(&s, "s3.part-size", 0), 64ULL << 20);
	ck_assert_int_eq(jp_options_bool(&s, "s3.path-style", -1), 0);
	ck_assert_int_eq(jp_options_int(&s, "x.n", 0), 12);

	/* the command line's values replace the manifest's for the same key, keep the others */
	ck_assert_int_eq(jp_options_set_arg(&cli, "-o", "s3.endpoint=http://b", &err), JP_OK);
	ck_assert_int_eq(jp_options_set_arg(&cli, "-o", "s3.path-style=true", &err), JP_OK);
	ck_assert_int_eq(jp_options_merge(&s, &cli, &err), JP_OK);
	ck_assert_int_eq(jp_options_merge(&s, NULL, &err), JP_OK);
	ck_assert_uint_eq(s.n, 4);
	ck_assert_str_eq(jp_options_get(&s, "s3.endpoint"), "http://b");
	ck_assert_str_eq(jp_options_where(&s, "s3.endpoint"), "-o");
	ck_assert_int_eq(s.v[0].source, JP_OPTION_FROM_CLI);
	ck_assert_int_eq(jp_options_bool(&s, "s3.path-style", -1), 1);
	ck_assert_str_eq(jp_options_where(&s, "s3.part-size"), "m.yaml:4:14");
	ck_assert_int_eq(err.code, JP_E_NONE);
	jp_options_free(&cli);
	jp_options_free(&cli); /* twice: empty */
	jp_options_free(NULL);
}
END_TEST

/* The command line: KEY=VALUE checked, refused with the option named, values never echoed. */
START_TEST(test_set_arg)
{
	const char *want;

	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "s3.part-size=32M", &err), JP_OK);
	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "s3.part-size=64M", &err), JP_OK);
	ck_assert_uint_eq(s.n, 1); /* a later value replaces */
	ck_assert_str_eq(jp_options_get(&s, "s3.part-size"), "64M");
	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "s3.endpoint=http://h/?a=b", &err), JP_OK);
	ck_assert_str_eq(jp_options_get(&s, "s3.endpoint"), "http://h/?a=b"); /* split at the first = */
	ck_assert_int_eq(err.code, JP_E_NONE);

	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "s3.bogus=1", &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_USAGE);
	ck_assert_str_eq(err.msg, "-o s3.bogus: unknown option (s3 has endpoint, region, path-style, "
	                          "part-size)");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "nosuch.bucket=x", &err), JP_FAILED);
	want = "-o nosuch.bucket: unknown option (options are BACKEND.KEY, for BACKEND one of: "
	       "sftp, s3";
	ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "posix.x=1", &err), JP_FAILED);
	ck_assert_ptr_nonnull(strstr(err.msg, "-o posix.x: unknown option"));
	jp_error_clear(&err);
	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "part-size=1", &err), JP_FAILED);
	ck_assert_ptr_nonnull(strstr(err.msg, "-o part-size: unknown option"));
	jp_error_clear(&err);
	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "s3.part-size", &err), JP_FAILED);
	ck_assert_str_eq(err.msg, "-o s3.part-size: expected BACKEND.KEY=VALUE (jobpub help options "
	                          "lists them)");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "s3.part-size=1k", &err), JP_FAILED);
	ck_assert_str_eq(err.msg, "-o s3.part-size: '1k' is not a size from 5MiB to 5GiB (e.g. 64MiB)");
	jp_error_clear(&err);
	/* a secret: refused, its value nowhere in the message */
	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "s3.secret-access-key=TopSecret", &err),
	                 JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_USAGE);
	ck_assert_ptr_null(strstr(err.msg, "TopSecret"));
	ck_assert_ptr_nonnull(strstr(err.msg, "-o s3.secret-access-key: "));
	ck_assert_ptr_nonnull(strstr(err.msg, "set AWS_SECRET_ACCESS_KEY"));
	jp_error_clear(&err);
	/* something that is no key (a pasted secret?) is not echoed either */
	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "AKIA/TopSecret", &err), JP_FAILED);
	ck_assert_ptr_null(strstr(err.msg, "TopSecret"));
	ck_assert_str_eq(err.msg, "-o: expected BACKEND.KEY=VALUE (jobpub help options lists them)");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "Key With Space=TopSecret", &err), JP_FAILED);
	ck_assert_ptr_null(strstr(err.msg, "TopSecret"));
	jp_error_clear(&err);
	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "=x", &err), JP_FAILED);
	/* nothing refused was stored */
	ck_assert_uint_eq(s.n, 2);
}
END_TEST

/* The older flags: each sets its key, and its errors name the flag. */
START_TEST(test_aliases)
{
	const char *a;
	int has_arg = -1;
	size_t i;
	int seen_identity = 0, seen_accept = 0;

	for (i = 0; (a = jp_options_alias(i, &has_arg)) != NULL; i++) {
		if (strcmp(a, "identity") == 0)
			seen_identity = has_arg == 1;
		if (strcmp(a, "accept-new-host-key") == 0)
			seen_accept = has_arg == 0;
	}
	ck_assert_uint_eq(i, 5); /* identity, known-hosts, accept-new-host-key, s3-endpoint, part-size */
	ck_assert(seen_identity);
	ck_assert(seen_accept);

	ck_assert_int_eq(jp_options_set_alias(&s, "identity", "/k", &err), JP_OK);
	ck_assert_int_eq(jp_options_set_alias(&s, "accept-new-host-key", NULL, &err), JP_OK);
	ck_assert_int_eq(jp_options_set_alias(&s, "s3-endpoint", "http://e", &err), JP_OK);
	ck_assert_int_eq(jp_options_set_alias(&s, "part-size", "16MiB", &err), JP_OK);
	ck_assert_str_eq(jp_options_get(&s, "sftp.identity"), "/k");
	ck_assert_str_eq(jp_options_where(&s, "sftp.identity"), "--identity");
	ck_assert_int_eq(jp_options_bool(&s, "sftp.accept-new-host-key", 0), 1);
	ck_assert_str_eq(jp_options_get(&s, "s3.endpoint"), "http://e");
	ck_assert_uint_eq(jp_options_size(&s, "s3.part-size", 0), 16ULL << 20);
	/* -o and the flag set the same key: the later wins */
	ck_assert_int_eq(jp_options_set_arg(&s, "-o", "sftp.identity=/k2", &err), JP_OK);
	ck_assert_str_eq(jp_options_get(&s, "sftp.identity"), "/k2");

	ck_assert_int_eq(jp_options_set_alias(&s, "part-size", "1k", &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_USAGE);
	ck_assert_str_eq(err.msg, "--part-size 1k: expected 5MiB to 5GiB");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_options_set_alias(&s, "no-such-flag", "x", &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_SOFTWARE);
}
END_TEST

/* Help lists every key of every backend with options, the aliases, and no value. */
START_TEST(test_help)
{
	struct t_mem m;
	const char *t;

	t_mem_open(&m);
	jp_options_print_help(m.fp);
	t = t_mem_text(&m);
	ck_assert_ptr_nonnull(strstr(t, "  sftp.identity=FILE "));
	ck_assert_ptr_nonnull(strstr(t, "  sftp.accept-new-host-key=true|false\n"));
	ck_assert_ptr_nonnull(strstr(t, "  s3.endpoint=URL "));
	ck_assert_ptr_nonnull(strstr(t, "  s3.part-size=SIZE "));
	ck_assert_ptr_nonnull(strstr(t, "default 16MiB"));
	ck_assert_ptr_nonnull(strstr(t, "  s3.secret-access-key "));
	ck_assert_ptr_nonnull(strstr(t, "$AWS_SECRET_ACCESS_KEY"));
	ck_assert_ptr_nonnull(strstr(t, "      --identity FILE       -o sftp.identity=FILE\n"));
	ck_assert_ptr_nonnull(
		strstr(t, "      --accept-new-host-key -o sftp.accept-new-host-key=true\n"));
	ck_assert_ptr_nonnull(strstr(t, "      --part-size SIZE      -o s3.part-size=SIZE\n"));
	ck_assert_ptr_null(strstr(t, "posix."));
	/* every line fits a terminal */
	for (const char *p = t; *p != '\0';) {
		size_t n = strcspn(p, "\n");

		ck_assert_msg(n <= 92, "help line too long: %.*s", (int)n, p);
		p += n + (p[n] == '\n');
	}
	t_mem_close(&m);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("options");
	TCase *tc;

	tc = tcase_create("tables");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_tables);
	tcase_add_test(tc, test_check_by_type);
	tcase_add_test(tc, test_check_backend_hook);
	tcase_add_test(tc, test_check_int_and_unbounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_store);
	tcase_add_test(tc, test_set_arg);
	tcase_add_test(tc, test_aliases);
	tcase_add_test(tc, test_help);
	suite_add_tcase(s, tc);

	return t_run(s);
}
