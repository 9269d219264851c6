/*
 * test_s3.c - src/backends/s3.c: the request pieces SigV4 signs (canonical query, encoded keys, URLs),
 * the XML S3 answers with, error classes, the AWS credential chain and part sizes.
 */
#include "config.h"

#include <pwd.h>
#include <stdint.h>
#include <unistd.h>

#include <curl/curl.h>

#include <openssl/evp.h>

#include "failalloc.h"
#include "s3.h"
#include "testlib.h"
#include "util.h"

/* The allocating library calls s3.c makes, counted with the allocators of tests/failalloc.c
 * (Makefile.am wraps them): libcurl's header lists and URL parser, OpenSSL's digest context. */
struct curl_slist *__real_curl_slist_append(struct curl_slist *l, const char *s);
struct curl_slist *__wrap_curl_slist_append(struct curl_slist *l, const char *s);
CURLU *__real_curl_url(void);
CURLU *__wrap_curl_url(void);
EVP_MD_CTX *__real_EVP_MD_CTX_new(void);
EVP_MD_CTX *__wrap_EVP_MD_CTX_new(void);

struct curl_slist *
__wrap_curl_slist_append(struct curl_slist *l, const char *s)
{
	return t_fail_alloc_count() ? NULL : __real_curl_slist_append(l, s);
}

CURLU *
__wrap_curl_url(void)
{
	return t_fail_alloc_count() ? NULL : __real_curl_url();
}

EVP_MD_CTX *
__wrap_EVP_MD_CTX_new(void)
{
	return t_fail_alloc_count() ? NULL : __real_EVP_MD_CTX_new();
}

static char *dir;

static void
setup(void)
{
	dir = t_tempdir();
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_DEFAULT_PROFILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_CONFIG_FILE");
}

static void
teardown(void)
{
	t_rmtree(dir);
	free(dir);
}

START_TEST(test_encode)
{
	char *s = jp_s3_encode("runs/a b+c%d=e~f_g.h-\xc3\xa9", 1);

	ck_assert_str_eq(s, "runs/a%20b%2Bc%25d%3De~f_g.h-%C3%A9");
	free(s);
	s = jp_s3_encode("runs/", 0);
	ck_assert_str_eq(s, "runs%2F");
	free(s);
}
END_TEST

/* curl 7.88 signs the query as given: it must already be SigV4's canonical form. */
START_TEST(test_query_canonical)
{
	struct jp_s3_param list[] = {{"prefix", "runs/"}, {"list-type", "2"},
	                             {"continuation-token", "a+b/c="}};
	struct jp_s3_param part[] = {{"uploadId", "2~x y"}, {"partNumber", "10"}};
	struct jp_s3_param bare[] = {{"uploads", NULL}};
	char *q;

	q = jp_s3_query(list, 3);
	ck_assert_str_eq(q, "continuation-token=a%2Bb%2Fc%3D&list-type=2&prefix=runs%2F");
	free(q);
	q = jp_s3_query(part, 2);
	ck_assert_str_eq(q, "partNumber=10&uploadId=2~x%20y");
	free(q);
	q = jp_s3_query(bare, 1);
	ck_assert_str_eq(q, "uploads=");
	free(q);
	q = jp_s3_query(NULL, 0);
	ck_assert_str_eq(q, "");
	free(q);
}
END_TEST

/* curl 7.88 hashes no body for SigV4: every request must say what it signs as its payload, and
 * a session token must be among the signed headers. */
START_TEST(test_headers)
{
	static const char *const extra[] = {"Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==",
	                                    "If-None-Match: *", NULL};
	struct curl_slist *l, *p;
	char *s;

	l = jp_s3_headers("UNSIGNED-PAYLOAD", NULL, NULL);
	ck_assert_ptr_nonnull(l);
	ck_assert_str_eq(l->data, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	ck_assert_ptr_null(l->next);
	curl_slist_free_all(l);

	l = jp_s3_headers(JP_S3_EMPTY_SHA256, "tok/en+=", extra);
	ck_assert_ptr_nonnull(l);
	p = l;
	ck_assert_str_eq(p->data, "x-amz-content-sha256: " JP_S3_EMPTY_SHA256);
	p = p->next;
	ck_assert_str_eq(p->data, "x-amz-security-token: tok/en+=");
	p = p->next;
	ck_assert_str_eq(p->data, extra[0]);
	p = p->next;
	ck_assert_str_eq(p->data, extra[1]);
	ck_assert_ptr_null(p->next);
	curl_slist_free_all(l);

	s = jp_s3_sigv4("eu-central-1");
	ck_assert_str_eq(s, "aws:amz:eu-central-1:s3");
	free(s);
}
END_TEST

START_TEST(test_urls)
{
	struct jp_s3_endpoint ep;
	struct jp_error e;
	char *u;

	jp_error_clear(&e);
	ck_assert_int_eq(jp_s3_endpoint_parse("http://127.0.0.1:7480/", &ep, &e), JP_OK);
	ck_assert_int_eq(jp_s3_path_style_default(&ep, "bucket"), 1);
	u = jp_s3_url(&ep, "bucket", 1, "pdr runs/TEXTOUT+1", "partNumber=1&uploadId=x");
	ck_assert_str_eq(u, "http://127.0.0.1:7480/bucket/pdr%20runs/TEXTOUT%2B1?partNumber=1&uploadId=x");
	free(u);
	u = jp_s3_url(&ep, "bucket", 1, NULL, "uploads=");
	ck_assert_str_eq(u, "http://127.0.0.1:7480/bucket?uploads=");
	free(u);
	jp_s3_endpoint_free(&ep);

	ck_assert_int_eq(jp_s3_endpoint_parse("https://s3.eu-west-1.amazonaws.com", &ep, &e), JP_OK);
	ck_assert_int_eq(jp_s3_path_style_default(&ep, "bucket"), 0);
	ck_assert_int_eq(jp_s3_path_style_default(&ep, "my.bucket"), 1);
	u = jp_s3_url(&ep, "bucket", 0, "k", NULL);
	ck_assert_str_eq(u, "https://bucket.s3.eu-west-1.amazonaws.com/k");
	free(u);
	jp_s3_endpoint_free(&ep);

	ck_assert_int_eq(jp_s3_endpoint_parse("https://storage.googleapis.com", &ep, &e), JP_OK);
	ck_assert_int_eq(jp_s3_path_style_default(&ep, "bucket"), 1);
	jp_s3_endpoint_free(&ep);

	ck_assert_int_eq(jp_s3_endpoint_parse("ftp://x", &ep, &e), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_CONFIG);
	jp_error_clear(&e);
	ck_assert_int_eq(jp_s3_endpoint_parse("https://key:secret@x", &ep, &e), JP_FAILED);
	ck_assert_ptr_null(strstr(e.msg, "secret"));
	/* Not an http(s) URL, and a secret in it all the same: not shown either. */
	jp_error_clear(&e);
	ck_assert_int_eq(jp_s3_endpoint_parse("htps://AKIAX:TopSecret@x", &ep, &e), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_CONFIG);
	ck_assert_ptr_null(strstr(e.msg, "TopSecret"));
	jp_error_clear(&e);
	ck_assert_int_eq(jp_s3_endpoint_parse("https://x/?X-Amz-Signature=abc", &ep, &e), JP_FAILED);
	ck_assert_ptr_null(strstr(e.msg, "Signature"));
	u = jp_s3_aws_endpoint("us-east-1");
	ck_assert_str_eq(u, "https://s3.us-east-1.amazonaws.com");
	free(u);
}
END_TEST

START_TEST(test_bucket_names)
{
	ck_assert_int_eq(jp_s3_bucket_ok("jobpub-test"), 1);
	ck_assert_int_eq(jp_s3_bucket_ok("a.b.c"), 1);
	ck_assert_int_eq(jp_s3_bucket_ok("ab"), 0);
	ck_assert_int_eq(jp_s3_bucket_ok("Upper"), 0);
	ck_assert_int_eq(jp_s3_bucket_ok("-dash"), 0);
	ck_assert_int_eq(jp_s3_bucket_ok("192.168.1.1"), 0);
	ck_assert_int_eq(jp_s3_bucket_ok("under_score"), 0);
}
END_TEST

START_TEST(test_xml)
{
	static const char doc[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<IsTruncated>false</IsTruncated>"
		"<Contents><Key>a &amp; b&lt;c&gt;&#39;</Key><Size>12</Size>"
		"<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag></Contents>"
		"<Contents><Key>z</Key><Size>0</Size><ETag/></Contents>"
		"</ListBucketResult>";
	const char *pos = doc, *end = doc + sizeof(doc) - 1, *in, *in_end;
	char *t;
	int n = 0;

	ck_assert_int_eq(jp_s3_xml_text(doc, end, "IsTruncated", &t), 0);
	ck_assert_str_eq(t, "false");
	free(t);
	ck_assert_int_eq(jp_s3_xml_text(doc, end, "Missing", &t), 0);
	ck_assert_ptr_null(t);
	while (jp_s3_xml_next(&pos, end, "Contents", &in, &in_end)) {
		ck_assert_int_eq(jp_s3_xml_text(in, in_end, "Key", &t), 0);
		ck_assert_str_eq(t, n == 0 ? "a & b<c>'" : "z");
		free(t);
		jp_s3_xml_text(in, in_end, "ETag", &t);
		ck_assert_str_eq(t, n == 0 ? "\"9b2cf535f27731c974343645a3985328\"" : "");
		free(t);
		n++;
	}
	ck_assert_int_eq(n, 2);
	{
		/* An element cut short at the end of the answer is absent. */
		static const char cut[] = "<R><Code";

		t = (char *)"x";
		ck_assert_int_eq(jp_s3_xml_text(cut, cut + sizeof(cut) - 1, "Code", &t), 0);
		ck_assert_ptr_null(t);
	}
}
END_TEST

START_TEST(test_classify)
{
	struct jp_s3_status s;

	s = (struct jp_s3_status){403, "SignatureDoesNotMatch"};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_NOPERM);
	s = (struct jp_s3_status){403, "InvalidAccessKeyId"};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_NOPERM);
	s = (struct jp_s3_status){400, "ExpiredToken"};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_NOPERM);
	s = (struct jp_s3_status){403, "AccessDenied"};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_NOPERM);
	s = (struct jp_s3_status){404, "NoSuchBucket"};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_UNAVAILABLE);
	s = (struct jp_s3_status){503, "SlowDown"};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_TEMPFAIL);
	s = (struct jp_s3_status){400, "RequestTimeout"};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_TEMPFAIL);
	s = (struct jp_s3_status){400, "BadDigest"};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_TEMPFAIL);
	s = (struct jp_s3_status){429, NULL};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_TEMPFAIL);
	s = (struct jp_s3_status){500, NULL};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_TEMPFAIL);
	s = (struct jp_s3_status){0, NULL};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_TEMPFAIL);
	s = (struct jp_s3_status){403, NULL};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_NOPERM);
	s = (struct jp_s3_status){403, "QuotaExceeded"};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_UNAVAILABLE);
	s = (struct jp_s3_status){400, "EntityTooLarge"};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_UNAVAILABLE);
	s = (struct jp_s3_status){400, "EntityTooSmall"};
	ck_assert_int_eq(jp_s3_classify(&s), JP_E_UNAVAILABLE);
}
END_TEST

START_TEST(test_creds_env)
{
	struct jp_s3_creds c;
	struct jp_error e;

	jp_error_clear(&e);
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "skenv", 1);
	setenv("AWS_SESSION_TOKEN", "tok", 1);
	ck_assert_int_eq(jp_s3_creds_find(&c, dir, &e), JP_OK);
	ck_assert_str_eq(c.access_key, "AKENV");
	ck_assert_str_eq(c.secret_key, "skenv");
	ck_assert_str_eq(c.session_token, "tok");
	ck_assert_str_eq(c.source, "the environment");
	jp_s3_creds_free(&c);
	ck_assert_ptr_null(c.secret_key);
}
END_TEST

START_TEST(test_creds_files)
{
	struct jp_s3_creds c;
	struct jp_error e;

	{
		char *aws = t_path(dir, ".aws");
		mkdir(aws, 0700);
		free(aws);
	}
	t_write_str(dir, ".aws/credentials",
	            "[default]\naws_access_key_id = AKDEF\naws_secret_access_key = skdef\n"
	            "# comment\n[archive]\n  aws_access_key_id=AKARC\n aws_secret_access_key = skarc \n");
	t_write_str(dir, ".aws/config",
	            "[default]\nregion = eu-central-1\n[profile cfgonly]\naws_access_key_id = AKCFG\n"
	            "aws_secret_access_key = skcfg\nregion = us-west-2\n");
	jp_error_clear(&e);
	ck_assert_int_eq(jp_s3_creds_find(&c, dir, &e), JP_OK);
	ck_assert_str_eq(c.access_key, "AKDEF");
	ck_assert_str_eq(c.region, "eu-central-1");
	ck_assert_ptr_nonnull(strstr(c.source, "[default]"));
	jp_s3_creds_free(&c);

	setenv("AWS_PROFILE", "archive", 1);
	ck_assert_int_eq(jp_s3_creds_find(&c, dir, &e), JP_OK);
	ck_assert_str_eq(c.access_key, "AKARC");
	ck_assert_str_eq(c.secret_key, "skarc");
	jp_s3_creds_free(&c);

	setenv("AWS_PROFILE", "cfgonly", 1);
	ck_assert_int_eq(jp_s3_creds_find(&c, dir, &e), JP_OK);
	ck_assert_str_eq(c.access_key, "AKCFG");
	ck_assert_str_eq(c.region, "us-west-2");
	jp_s3_creds_free(&c);

	setenv("AWS_PROFILE", "nosuch", 1);
	ck_assert_int_eq(jp_s3_creds_find(&c, dir, &e), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_CONFIG);
	ck_assert_ptr_nonnull(strstr(e.msg, "'nosuch'"));
}
END_TEST

START_TEST(test_creds_no_home)
{
	struct jp_s3_creds c;
	struct jp_error e;
	struct passwd *pw = getpwuid(getuid());
	char want[1024];

	/* Without HOME, the user's home from the password database. */
	ck_assert_ptr_nonnull(pw);
	jp_error_clear(&e);
	unsetenv("HOME");
	ck_assert_int_eq(jp_s3_creds_find(&c, NULL, &e), JP_FAILED);
	snprintf(want, sizeof(want), "%s/.aws/credentials [default]", pw->pw_dir);
	ck_assert_msg(strstr(e.msg, want) != NULL, "%s", e.msg);
}
END_TEST

START_TEST(test_creds_none)
{
	struct jp_s3_creds c;
	struct jp_error e;

	jp_error_clear(&e);
	setenv("AWS_ACCESS_KEY_ID", "only-half", 1);
	ck_assert_int_eq(jp_s3_creds_find(&c, dir, &e), JP_FAILED);
	ck_assert_int_eq(e.code, JP_E_CONFIG);
	ck_assert_ptr_nonnull(strstr(e.msg, "AWS_ACCESS_KEY_ID"));
	ck_assert_ptr_nonnull(strstr(e.msg, "/.aws/credentials [default]"));
	ck_assert_ptr_nonnull(strstr(e.msg, "/.aws/config [default]"));
}
END_TEST

START_TEST(test_part_sizes)
{
	const uint64_t MiB = 1 << 20, TiB = 1ULL << 40;

	ck_assert_uint_eq(jp_s3_part_size(16 * MiB, 1024 * MiB), 16 * MiB);
	ck_assert_uint_eq(jp_s3_part_size(1 * MiB, 10), 5 * MiB);
	ck_assert_uint_eq(jp_s3_part_size(8ULL << 30, 10), JP_S3_MAX_PART); /* 8 GiB asked: 5 */
	/* 10,000 parts must hold any object up to 5 TiB. */
	ck_assert(jp_s3_part_size(16 * MiB, 5 * TiB) * JP_S3_MAX_PARTS >= 5 * TiB);
	ck_assert(jp_s3_part_size(16 * MiB, 200ULL << 30) * JP_S3_MAX_PARTS >= 200ULL << 30);
	ck_assert_uint_eq(jp_s3_part_size(16 * MiB, 200ULL << 30), 32 * MiB);
	ck_assert_uint_eq(jp_s3_part_size(16 * MiB, UINT64_MAX), 16 * MiB);
	ck_assert_uint_eq(jp_s3_stream_part_size(16 * MiB, 1), 16 * MiB);
	ck_assert_uint_eq(jp_s3_stream_part_size(16 * MiB, 1000), 16 * MiB);
	ck_assert_uint_eq(jp_s3_stream_part_size(16 * MiB, 1001), 32 * MiB);
	{
		uint64_t total = 0;
		unsigned n;

		for (n = 1; n <= JP_S3_MAX_PARTS; n++)
			total += jp_s3_stream_part_size(16 * MiB, n);
		ck_assert(total >= 5 * TiB);
	}
}
END_TEST

START_TEST(test_multipart_etag)
{
	/* md5("a") and md5("b"); S3's ETag is md5 of the two digests, "-2". */
	static const unsigned char md5s[2][16] = {
		{0x0c, 0xc1, 0x75, 0xb9, 0xc0, 0xf1, 0xb6, 0xa8, 0x31, 0xc3, 0x99, 0xe2, 0x69, 0x77, 0x26, 0x61},
		{0x92, 0xeb, 0x5f, 0xfe, 0xe6, 0xae, 0x2f, 0xec, 0x3a, 0xd7, 0x1c, 0x77, 0x75, 0x31, 0x57, 0x8f},
	};
	char etag[64];

	jp_s3_multipart_etag(md5s, 2, etag, sizeof(etag));
	ck_assert_str_eq(etag, "\"96e024ba2074fe77e8e965ba43a704be-2\"");
}
END_TEST

START_TEST(test_parse_size)
{
	uint64_t v;

	ck_assert_int_eq(jp_parse_size("16MiB", &v), 0);
	ck_assert_uint_eq(v, 16 << 20);
	ck_assert_int_eq(jp_parse_size("64M", &v), 0);
	ck_assert_uint_eq(v, 64 << 20);
	ck_assert_int_eq(jp_parse_size("1g", &v), 0);
	ck_assert_uint_eq(v, 1 << 30);
	ck_assert_int_eq(jp_parse_size("5242880", &v), 0);
	ck_assert_uint_eq(v, 5242880);
	ck_assert_int_eq(jp_parse_size("16 MB", &v), 0);
	ck_assert_int_eq(jp_parse_size("16Q", &v), -1);
	ck_assert_int_eq(jp_parse_size("-1", &v), -1);
	ck_assert_int_eq(jp_parse_size("", &v), -1);
}
END_TEST

/* Every allocation of each function failing in turn (tests/failalloc.h): the function says so
 * (NULL, -1, 70 "out of memory", "?") and leaves nothing half made; once memory is there, the
 * normal result.  No check macro runs while a failure is armed (check allocates in them). */
START_TEST(test_out_of_memory)
{
	static const struct jp_s3_param q[] = {{"prefix", "a b/"}, {"list-type", "2"}, {"uploads", NULL}};
	static const char *const extra[] = {"Content-MD5: x", "If-None-Match: *", NULL};
	static const char xml[] = "<R><Code>A&amp;B</Code></R>";
	const unsigned char md5s[2][16] = {{1}, {2}};
	struct jp_s3_endpoint ep;
	struct jp_s3_creds c;
	struct jp_error e;
	unsigned long n;
	unsigned fails = 0, done = 0;
	char *cred = t_path(dir, "credentials"), *conf = t_path(dir, "config");
	FILE *fp;

	fp = fopen(cred, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "[p]\naws_access_key_id = AKFILE\naws_secret_access_key = skfile\n"
	            "aws_session_token = tokfile\n");
	fclose(fp);
	fp = fopen(conf, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "[profile p]\nregion = eu-west-1\n");
	fclose(fp);
	memset(&ep, 0, sizeof(ep));
	for (n = 1; done == 0; n++) {
		char *enc, *query, *url1, *url2, *sig, *aws, *text = NULL, etag[64];
		struct curl_slist *h;
		int rx, rep, rce, rcf, fired;

		jp_error_clear(&e);
		t_fail_alloc(n);
		enc = jp_s3_encode("a b/c", 1);
		query = jp_s3_query(q, 3);
		h = jp_s3_headers("UNSIGNED-PAYLOAD", "tok", extra);
		rep = jp_s3_endpoint_parse("http://127.0.0.1:7480/base/", &ep, &e);
		url1 = rep == JP_OK ? jp_s3_url(&ep, "b", 1, "k 1", "x=1") : NULL;
		url2 = rep == JP_OK ? jp_s3_url(&ep, "b", 0, NULL, NULL) : NULL;
		sig = jp_s3_sigv4("eu-west-1");
		aws = jp_s3_aws_endpoint("eu-west-1");
		rx = jp_s3_xml_text(xml, xml + sizeof(xml) - 1, "Code", &text);
		jp_s3_multipart_etag(md5s, 2, etag, sizeof(etag));
		setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
		setenv("AWS_SECRET_ACCESS_KEY", "skenv", 1);
		setenv("AWS_SESSION_TOKEN", "tok", 1);
		rce = jp_s3_creds_find(&c, dir, &e);
		if (rce == JP_OK)
			jp_s3_creds_free(&c);
		unsetenv("AWS_ACCESS_KEY_ID");
		unsetenv("AWS_SECRET_ACCESS_KEY");
		unsetenv("AWS_SESSION_TOKEN");
		setenv("AWS_PROFILE", "p", 1);
		setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
		setenv("AWS_CONFIG_FILE", conf, 1);
		rcf = jp_s3_creds_find(&c, dir, &e);
		t_fail_alloc(0);
		fired = t_fail_alloc_fired();
		unsetenv("AWS_PROFILE");
		unsetenv("AWS_SHARED_CREDENTIALS_FILE");
		unsetenv("AWS_CONFIG_FILE");
		if (!fired) { /* nothing failed: every result whole */
			done = 1;
			ck_assert_str_eq(enc, "a%20b/c");
			ck_assert_str_eq(query, "list-type=2&prefix=a%20b%2F&uploads=");
			ck_assert_ptr_nonnull(h);
			ck_assert_int_eq(rep, JP_OK);
			ck_assert_str_eq(url1, "http://127.0.0.1:7480/base/b/k%201?x=1");
			ck_assert_str_eq(url2, "http://b.127.0.0.1:7480/base/");
			ck_assert_str_eq(sig, "aws:amz:eu-west-1:s3");
			ck_assert_str_eq(aws, "https://s3.eu-west-1.amazonaws.com");
			ck_assert_str_eq(text, "A&B");
			ck_assert_str_ne(etag, "?");
			ck_assert_int_eq(rce, JP_OK);
			ck_assert_int_eq(rcf, JP_OK);
			ck_assert_str_eq(c.session_token, "tokfile");
			ck_assert_str_eq(c.region, "eu-west-1");
		} else {
			/* exactly one call met the failure, and said so */
			unsigned k = (enc == NULL) + (query == NULL) + (h == NULL) + (rep != JP_OK) +
			             (rep == JP_OK && (url1 == NULL || url2 == NULL)) + (sig == NULL) +
			             (aws == NULL) + (rx != 0) + (strcmp(etag, "?") == 0) +
			             (rce != JP_OK) + (rcf != JP_OK);

			ck_assert_msg(k == 1, "allocation %lu failing: %u calls failed", n, k);
			ck_assert_msg(rx == 0 || text == NULL, "allocation %lu: text left", n);
			if (rep != JP_OK || rce != JP_OK || rcf != JP_OK) {
				ck_assert_int_eq(e.code, JP_E_SOFTWARE);
				ck_assert_str_eq(e.msg, "s3: out of memory");
			}
			ck_assert_msg(rep == JP_OK || ep.host == NULL, "allocation %lu: endpoint left", n);
			fails++;
		}
		if (rcf == JP_OK)
			jp_s3_creds_free(&c);
		else
			ck_assert_ptr_null(c.access_key);
		free(enc);
		free(query);
		curl_slist_free_all(h);
		jp_s3_endpoint_free(&ep);
		free(url1);
		free(url2);
		free(sig);
		free(aws);
		free(text);
	}
	ck_assert_uint_gt(fails, 20);
	free(cred);
	free(conf);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("s3");
	TCase *tc = tcase_create("s3");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_encode);
	tcase_add_test(tc, test_query_canonical);
	tcase_add_test(tc, test_headers);
	tcase_add_test(tc, test_urls);
	tcase_add_test(tc, test_bucket_names);
	tcase_add_test(tc, test_xml);
	tcase_add_test(tc, test_classify);
	tcase_add_test(tc, test_creds_env);
	tcase_add_test(tc, test_creds_files);
	tcase_add_test(tc, test_creds_none);
	tcase_add_test(tc, test_creds_no_home);
	tcase_add_test(tc, test_part_sizes);
	tcase_add_test(tc, test_multipart_etag);
	tcase_add_test(tc, test_parse_size);
	tcase_add_test(tc, test_out_of_memory);
	suite_add_tcase(s, tc);
	return t_run(s);
}
