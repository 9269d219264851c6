/*
 * test_backend_s3.c - unit tests of src/backends/backend-s3.c, driven through the dest.h API (and the
 * backend table of backend.h where dest.c guards a slot) against a private Ceph RADOS Gateway:
 * tests/rgw-start.sh starts it once for the whole program, tests/rgw-stop.sh stops it by PID.
 * As in tests/cmd-publish-s3.sh, a gateway that cannot be started is a hard error (99), not a
 * skip.
 *
 * What the gateway does not do on demand (a 503 then success, a 200 with an <Error> body on
 * CompleteMultipartUpload, 412/404 on Complete, an ETag or token changed on the way, listings
 * cut short, a connection dropped before or during an answer, a stall) comes from
 * tests/relay.py's http mode in front of it: real requests to the real gateway, their answers
 * altered, refused or cut (each rule is documented in relay.py).  Every such test checks in the
 * relay's log that its fault was injected.
 *
 * What is checked in the bucket is looked at with requests signed by libcurl itself (raw()),
 * never with the code under test.
 */
#include "config.h"

#include <curl/curl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "failalloc.h"
#include "testlib.h"

#include "backend.h"
#include "dest.h"
#include "error.h"
#include "log.h"
#include "options.h"
#include "s3.h"
#include "util.h"

extern const struct jp_backend jp_backend_s3; /* in the registry (dest.c) */

#define TOKEN "0123456789abcdef"
#define MIB (1024 * 1024)

static pid_t main_pid;
static char *work;               /* the program's temporary directory */
static char rgw_dir[PATH_MAX];   /* the gateway's (rgw-start.sh DIR) */
static char endpoint[128];       /* RGW_ENDPOINT */
static char tls_endpoint[128];   /* RGW_TLS_ENDPOINT */
static char rgw_port[16];
static char rgw_ca[PATH_MAX];
static char access_key[64], secret_key[128], bucket[64];

/* ---- allocation failures ----
 *
 * Built with tests/failalloc.c (the allocators, through --wrap) and these wrappers of the
 * library calls that allocate for the code under test, counted with them: libcurl's handles,
 * header lists, URL parser and unescaping, OpenSSL's digest context.  Armed only around calls
 * of the code under test (sweep()). */
struct curl_slist *__real_curl_slist_append(struct curl_slist *l, const char *s);
struct curl_slist *__wrap_curl_slist_append(struct curl_slist *l, const char *s);
CURL *__real_curl_easy_init(void);
CURL *__wrap_curl_easy_init(void);
CURLM *__real_curl_multi_init(void);
CURLM *__wrap_curl_multi_init(void);
CURLU *__real_curl_url(void);
CURLU *__wrap_curl_url(void);
char *__real_curl_easy_unescape(CURL *h, const char *s, int n, int *outlen);
char *__wrap_curl_easy_unescape(CURL *h, const char *s, int n, int *outlen);
EVP_MD_CTX *__real_EVP_MD_CTX_new(void);
EVP_MD_CTX *__wrap_EVP_MD_CTX_new(void);

struct curl_slist *
__wrap_curl_slist_append(struct curl_slist *l, const char *s)
{
	return t_fail_alloc_count() ? NULL : __real_curl_slist_append(l, s);
}

CURL *
__wrap_curl_easy_init(void)
{
	return t_fail_alloc_count() ? NULL : __real_curl_easy_init();
}

CURLM *
__wrap_curl_multi_init(void)
{
	return t_fail_alloc_count() ? NULL : __real_curl_multi_init();
}

CURLU *
__wrap_curl_url(void)
{
	return t_fail_alloc_count() ? NULL : __real_curl_url();
}

char *
__wrap_curl_easy_unescape(CURL *h, const char *s, int n, int *outlen)
{
	return t_fail_alloc_count() ? NULL : __real_curl_easy_unescape(h, s, n, outlen);
}

EVP_MD_CTX *
__wrap_EVP_MD_CTX_new(void)
{
	return t_fail_alloc_count() ? NULL : __real_EVP_MD_CTX_new();
}

/* ---- the gateway ---- */

static void
rgw_stop(void)
{
	char cmd[2 * PATH_MAX];

	if (getpid() != main_pid || rgw_dir[0] == '\0') /* check's test processes exit too */
		return;
	snprintf(cmd, sizeof(cmd), "sh '%s/tests/rgw-stop.sh' '%s' >/dev/null 2>&1",
	         JP_TEST_SRCDIR, rgw_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_backend_s3: rgw-stop.sh %s failed\n", rgw_dir);
	rgw_dir[0] = '\0';
}

static void
on_signal(int sig)
{
	(void)sig;
	exit(1); /* runs rgw_stop */
}

/* Reads NAME='value' or NAME=value from the gateway's env file into buf. */
static int
env_value(const char *text, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);
	const char *p = text;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '=') {
			const char *v = p + n + 1, *e;

			if (*v == '\'')
				v++;
			e = v + strcspn(v, "'\n");
			if ((size_t)(e - v) >= len)
				return -1;
			memcpy(buf, v, (size_t)(e - v));
			buf[e - v] = '\0';
			return 0;
		}
		p += n;
	}
	return -1;
}

/* ---- the bucket as libcurl alone sees it ---- */

struct buf {
	char *p;
	size_t len;
};

static size_t
buf_add(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	char *p = realloc(b->p, b->len + size * n + 1);

	if (p == NULL)
		return 0;
	memcpy(p + b->len, data, size * n);
	b->p = p;
	b->len += size * n;
	b->p[b->len] = '\0';
	return size * n;
}

struct src {
	const char *p;
	size_t len, off;
};

static size_t
src_read(char *data, size_t size, size_t n, void *arg)
{
	struct src *s = arg;
	size_t k = size * n < s->len - s->off ? size * n : s->len - s->off;

	memcpy(data, s->p + s->off, k);
	s->off += k;
	return k;
}

static struct curl_slist *raw_hdrs;

static CURL *
raw_handle(const char *method, const char *path, struct src *body, struct buf *out)
{
	CURL *h = curl_easy_init();
	char url[1024], auth[256];

	ck_assert_ptr_nonnull(h);
	snprintf(url, sizeof(url), "%s/%s%s", endpoint, bucket, path);
	snprintf(auth, sizeof(auth), "%s:%s", access_key, secret_key);
	if (raw_hdrs == NULL)
		raw_hdrs = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
	curl_easy_setopt(h, CURLOPT_USERPWD, auth);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, raw_hdrs);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_add);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, src_read);
		curl_easy_setopt(h, CURLOPT_READDATA, body);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body->len);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	return h;
}

/* One request on /BUCKET + path (path and query already encoded).  Returns the HTTP status;
 * the body is in *out (free it) when out is not NULL. */
static long
raw(const char *method, const char *path, const void *data, size_t len, char **out)
{
	struct src s = {data, len, 0};
	struct buf b = {NULL, 0};
	CURL *h = raw_handle(method, path, &s, &b);
	long status = 0;
	CURLcode cc = curl_easy_perform(h);

	ck_assert_msg(cc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(cc));
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (out != NULL)
		*out = b.p ? b.p : strdup("");
	else
		free(b.p);
	return status;
}

/* n requests "METHOD /BUCKET/PREFIX%04u[QUERY]" with a small body (PUT), 16 at a time; each must
 * answer 200. */
static void
raw_many(const char *method, const char *prefix, const char *query, unsigned n)
{
	CURLM *m = curl_multi_init();
	CURL **hs = calloc(n, sizeof(*hs));
	struct src *srcs = calloc(n, sizeof(*srcs));
	struct buf *bufs = calloc(n, sizeof(*bufs));
	unsigned next = 0, done = 0, i;
	int running;

	ck_assert(m != NULL && hs != NULL && srcs != NULL && bufs != NULL);
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 16L);
	for (i = 0; i < n; i++) {
		char path[512];

		snprintf(path, sizeof(path), "/%s%04u%s", prefix, i, query);
		srcs[i].p = strdup(path); /* the body: the object's own name */
		srcs[i].len = strlen(path);
		hs[i] = raw_handle(method, path, &srcs[i], &bufs[i]);
	}
	while (done < n) {
		CURLMsg *msg;
		int left;

		while (next < n && next - done < 16)
			curl_multi_add_handle(m, hs[next++]);
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			long status = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			ck_assert_msg(msg->data.result == CURLE_OK && status == 200, "%s %s*: %s, HTTP %ld",
			              method, prefix, curl_easy_strerror(msg->data.result), status);
			curl_multi_remove_handle(m, msg->easy_handle);
			done++;
		}
		curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	for (i = 0; i < n; i++) {
		curl_easy_cleanup(hs[i]);
		free((char *)srcs[i].p);
		free(bufs[i].p);
	}
	curl_multi_cleanup(m);
	free(hs);
	free(srcs);
	free(bufs);
}

/* Occurrences of needle in s. */
static unsigned
count_of(const char *s, const char *needle)
{
	unsigned n = 0;

	while (s != NULL && (s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

/* The incomplete multipart uploads below prefix, as the gateway lists them (at most 1000). */
static unsigned
raw_uploads(const char *prefix)
{
	char path[512], *xml, *q = path;
	unsigned n;

	/* SigV4's canonical query, which curl 7.88 signs as given: '/' encoded. */
	q += sprintf(q, "?prefix=");
	for (; *prefix != '\0'; prefix++)
		q += *prefix == '/' ? sprintf(q, "%%2F") : sprintf(q, "%c", *prefix);
	sprintf(q, "&uploads=");
	ck_assert_int_eq(raw("GET", path, NULL, 0, &xml), 200);
	n = count_of(xml, "<Upload>");
	free(xml);
	return n;
}

/* The object's bytes (malloc'd, *len its size) or NULL when the gateway answers 404. */
static char *
raw_get(const char *key, size_t *len)
{
	char path[512], *data;
	struct buf b = {NULL, 0};
	struct src s = {NULL, 0, 0};
	CURL *h;
	long status = 0;

	snprintf(path, sizeof(path), "/%s", key);
	h = raw_handle("GET", path, &s, &b);
	ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (status == 404) {
		free(b.p);
		return NULL;
	}
	ck_assert_msg(status == 200, "GET %s: HTTP %ld", key, status);
	data = b.p ? b.p : strdup("");
	*len = b.len;
	return data;
}

static void
raw_put(const char *key, const char *data)
{
	char path[512];

	snprintf(path, sizeof(path), "/%s", key);
	ck_assert_int_eq(raw("PUT", path, data, strlen(data), NULL), 200);
}

/* ---- the relay (tests/relay.py http RULE...) ---- */

static pid_t relay_pid;
static char relay_url[64], relay_log[PATH_MAX];

/* Starts relay.py in http mode with the rule words given (NULL-terminated); relay_url is its
 * endpoint.  It dies with the test process (PR_SET_PDEATHSIG) if relay_stop is not reached. */
static void
relay_start(const char *word, ...)
{
	const char *argv[160];
	char script[PATH_MAX], portfile[PATH_MAX];
	size_t n = 0;
	va_list ap;
	int i;

	snprintf(script, sizeof(script), "%s/tests/relay.py", JP_TEST_SRCDIR);
	snprintf(portfile, sizeof(portfile), "%s/relay.%d.port", work, (int)getpid());
	snprintf(relay_log, sizeof(relay_log), "%s/relay.%d.log", work, (int)getpid());
	unlink(portfile);
	argv[n++] = "python3";
	argv[n++] = script;
	argv[n++] = portfile;
	argv[n++] = rgw_port;
	argv[n++] = "http";
	va_start(ap, word);
	for (; word != NULL && n < 159; word = va_arg(ap, const char *))
		argv[n++] = word;
	va_end(ap);
	argv[n] = NULL;
	relay_pid = fork();
	ck_assert_int_ge(relay_pid, 0);
	if (relay_pid == 0) {
		int fd = open(relay_log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	for (i = 0; i < 200; i++) {
		char *port = t_read(work, strrchr(portfile, '/') + 1, NULL);

		if (port != NULL && *port != '\0') {
			snprintf(relay_url, sizeof(relay_url), "http://127.0.0.1:%d", atoi(port));
			free(port);
			return;
		}
		free(port);
		usleep(25000);
	}
	ck_abort_msg("relay.py did not start: %s", t_read(work, strrchr(relay_log, '/') + 1, NULL));
}

static void
relay_stop(void)
{
	if (relay_pid > 0) {
		kill(relay_pid, SIGTERM);
		waitpid(relay_pid, NULL, 0);
	}
	relay_pid = 0;
}

/* How many lines of the relay's log contain s ("inject refuse", "req GET"). */
static unsigned
relay_count(const char *s)
{
	char *text = t_read(work, strrchr(relay_log, '/') + 1, NULL);
	unsigned n = count_of(text, s);

	free(text);
	return n;
}

/* ---- fixtures and helpers ---- */

static struct jp_dest_opts opts;
static struct jp_options bopts; /* opts.options: the backend options (options.h) */
static struct jp_error err;
static const char *stop_after; /* see stop_when() */
static struct t_mem logmem; /* warnings of the backend */

/* Sets backend option key (options.h: "s3.endpoint") for the next open; value NULL removes it. */
static void
set_opt(const char *key, const char *value)
{
	struct jp_options n = {NULL, 0};
	size_t i;

	for (i = 0; i < bopts.n; i++)
		if (strcmp(bopts.v[i].key, key) != 0)
			ck_assert_int_eq(jp_options_put(&n, bopts.v[i].key, bopts.v[i].value,
			                                JP_OPTION_FROM_CLI, "-o", &err), JP_OK);
	if (value != NULL)
		ck_assert_int_eq(jp_options_put(&n, key, value, JP_OPTION_FROM_CLI, "-o", &err), JP_OK);
	jp_options_free(&bopts);
	bopts = n;
	opts.options = &bopts;
}

static void
setup(void)
{
	memset(&opts, 0, sizeof(opts));
	opts.timeout_ms = 10000;
	opts.stall_ms = 10000;
	opts.retries = -1; /* none, unless a test wants them */
	jp_options_free(&bopts);
	set_opt("s3.endpoint", endpoint);
	stop_after = NULL;
	jp_error_clear(&err);
	t_mem_open(&logmem);
	jp_log_setup(JP_LOG_TEXT, 0, logmem.fp);
}

static void
teardown(void)
{
	relay_stop();
	jp_dest_set_stop(NULL);
	jp_log_setup(JP_LOG_TEXT, 0, NULL);
	t_mem_close(&logmem);
	jp_options_free(&bopts);
	opts.options = NULL;
}

static struct jp_dest *
open_at(const char *prefix)
{
	char url[256];
	struct jp_dest *d = NULL;
	int r;

	snprintf(url, sizeof(url), "s3://%s/%s", bucket, prefix);
	jp_error_clear(&err);
	r = jp_dest_open(url, &opts, &d, &err);
	ck_assert_msg(r == JP_OK, "open %s: %d %s", url, err.code, err.msg);
	return d;
}

/* jp_dest_open's result for url; the error in err. */
static int
open_rc(const char *url)
{
	struct jp_dest *d = NULL;
	int r;

	jp_error_clear(&err);
	r = jp_dest_open(url, &opts, &d, &err);
	if (r == JP_OK)
		jp_dest_close(d);
	else
		ck_assert_ptr_null(d);
	return r;
}

static void
sha_of(const void *data, size_t len, unsigned char sha[32])
{
	struct jp_sha256 h;

	ck_assert_int_eq(jp_sha256_init(&h), 0);
	jp_sha256_update(&h, data, len);
	jp_sha256_final(&h, sha);
}

/* Stages key with data (written in pieces of chunk bytes) and finishes it. */
static struct jp_upload *
staged(struct jp_dest *d, const char *key, const void *data, size_t len, uint64_t hint,
       size_t chunk)
{
	struct jp_upload *u = NULL;
	unsigned char sha[32];
	size_t off;
	int r;

	jp_error_clear(&err);
	r = jp_dest_stage(d, key, TOKEN, hint, &u, &err);
	ck_assert_msg(r == JP_OK, "stage %s: %s", key, err.msg);
	for (off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;

		r = jp_upload_write(u, (const char *)data + off, n, &err);
		ck_assert_msg(r == JP_OK, "write %s: %s", key, err.msg);
	}
	sha_of(data, len, sha);
	r = jp_upload_finish(u, len, sha, &err);
	ck_assert_msg(r == JP_OK, "finish %s: %s", key, err.msg);
	return u;
}

/* Stages, finishes and commits (no overwrite) key; returns the upload, committed. */
static struct jp_upload *
published(struct jp_dest *d, const char *key, const char *text)
{
	struct jp_upload *u = staged(d, key, text, strlen(text), strlen(text), 1 << 20);
	int exists = -1, replaced = -1, r;

	r = jp_upload_commit(u, 0, &exists, &replaced, &err);
	ck_assert_msg(r == JP_OK, "commit %s: %s", key, err.msg);
	ck_assert_int_eq(exists, 0);
	ck_assert(jp_upload_committed(u));
	return u;
}

/* Asserts that the gateway holds exactly text under key (NULL: no object). */
static void
assert_object(const char *key, const char *text)
{
	size_t len = 0;
	char *got = raw_get(key, &len);

	if (text == NULL) {
		ck_assert_msg(got == NULL, "%s should not exist, holds '%s'", key, got);
		return;
	}
	ck_assert_msg(got != NULL, "%s does not exist", key);
	ck_assert_msg(len == strlen(text) && memcmp(got, text, len) == 0, "%s holds '%s', not '%s'",
	              key, got, text);
	free(got);
}

struct seen {
	unsigned objects, uploads;
	unsigned stop_after; /* say stop after this many entries (0: never) */
	uint64_t bytes;
	char first_upload[256], first_upload_id[256];
};

static int
seen_add(void *arg, const char *key, const struct jp_stat *st)
{
	struct seen *s = arg;

	if (st->upload != NULL) {
		if (s->uploads++ == 0) {
			snprintf(s->first_upload, sizeof(s->first_upload), "%s", key);
			snprintf(s->first_upload_id, sizeof(s->first_upload_id), "%s", st->upload);
		}
	} else {
		s->objects++;
		s->bytes += st->size;
	}
	return s->stop_after > 0 && s->objects + s->uploads >= s->stop_after;
}

static char *
pattern(size_t len, unsigned seed)
{
	char *p = malloc(len);
	size_t i;

	ck_assert_ptr_nonnull(p);
	for (i = 0; i < len; i++)
		p[i] = (char)('a' + (i * 7 + seed + i / 4099) % 26);
	return p;
}

/* A regular expression (or any string) built with printf: from a pool of 32, so that a test
 * can build all its relay rules in one call. */
static const char *
fmt(const char *f, ...)
{
	static char pool[32][512];
	static unsigned next;
	char *p = pool[next++ % 32];
	va_list ap;

	va_start(ap, f);
	vsnprintf(p, sizeof(pool[0]), f, ap);
	va_end(ap);
	return p;
}

/* The stop hook (a signal, as a publish sees it): says stop once the relay's log holds
 * stop_count lines with stop_after, and stop_delay_ms more have passed. */
static unsigned stop_count = 1;
static int64_t stop_delay_ms, stop_seen_at;

static int
stop_when(void)
{
	if (stop_after == NULL)
		return 0;
	if (stop_seen_at == 0) {
		if (relay_count(stop_after) < stop_count)
			return 0;
		stop_seen_at = jp_now_ms();
	}
	return jp_now_ms() - stop_seen_at >= stop_delay_ms;
}

static void
stop_on(const char *line, unsigned count, int64_t delay_ms)
{
	stop_after = line;
	stop_count = count;
	stop_delay_ms = delay_ms;
	stop_seen_at = 0;
	jp_dest_set_stop(stop_when);
}

static void
assert_log(const char *s)
{
	ck_assert_msg(strstr(t_mem_text(&logmem), s) != NULL, "no '%s' in the log: %s", s,
	              t_mem_text(&logmem));
}

static void
assert_err(const char *s)
{
	ck_assert_msg(strstr(err.msg, s) != NULL, "no '%s' in the error: %s", s, err.msg);
}

/* ---- the tests ---- */

/* A small object: staged, committed, found by stat (from the prefix's listing) and list, its
 * SHA-256 from its metadata and read back; committed again over it with and without
 * overwrite; removed. */
START_TEST(test_small_object)
{
	struct jp_dest *d = open_at("small");
	struct jp_upload *u;
	struct jp_stat st;
	struct seen seen = {0};
	unsigned char sha[32], want[32];
	int exists, replaced;

	ck_assert_str_eq(jp_dest_backend(d), "s3");
	ck_assert_int_eq(jp_dest_stat(d, "a.txt", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 0);
	u = published(d, "a.txt", "hello");
	ck_assert_str_ne(jp_upload_etag(u), "");
	jp_upload_free(u);
	assert_object("small/a.txt", "hello");

	ck_assert_int_eq(jp_dest_stat(d, "a.txt", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 1);
	ck_assert_int_eq(st.size, 5);
	ck_assert_msg(st.mtime > time(NULL) - 600, "mtime %lld", (long long)st.mtime);
	sha_of("hello", 5, want);
	ck_assert_int_eq(jp_dest_digest(d, "a.txt", sha, &err), JP_OK);
	ck_assert_mem_eq(sha, want, 32);
	ck_assert_int_eq(jp_dest_hash(d, "a.txt", sha, &err), JP_OK);
	ck_assert_mem_eq(sha, want, 32);
	ck_assert_int_eq(jp_dest_list(d, "", seen_add, &seen, &err), JP_OK);
	ck_assert_int_eq(seen.objects, 1);
	ck_assert_int_eq(seen.bytes, 5);

	/* Without overwrite, the HEAD before Complete finds it: nothing changes. */
	u = staged(d, "a.txt", "other", 5, 5, 2);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	ck_assert_int_eq(exists, 1);
	ck_assert(!jp_upload_committed(u));
	ck_assert_int_eq(raw_uploads("small/"), 1);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	ck_assert_int_eq(raw_uploads("small/"), 0);
	jp_upload_free(u);
	assert_object("small/a.txt", "hello");

	/* With it, replaced; a rollback keeps the new content (the old one is gone anyway). */
	u = staged(d, "a.txt", "newer", 5, 5, 5);
	ck_assert_int_eq(jp_upload_commit(u, 1, &exists, &replaced, &err), JP_OK);
	ck_assert_int_eq(exists, 0);
	ck_assert_int_eq(replaced, 1);
	ck_assert_int_eq(jp_upload_uncommit(u, &err), JP_OK);
	ck_assert_msg(strstr(t_mem_text(&logmem), "keeps the new content") != NULL, "log: %s",
	              t_mem_text(&logmem));
	jp_upload_free(u);
	assert_object("small/a.txt", "newer");

	ck_assert_int_eq(jp_dest_remove(d, "a.txt", &err), JP_OK);
	assert_object("small/a.txt", NULL);
	ck_assert_int_eq(jp_dest_remove(d, "a.txt", &err), JP_OK); /* gone already: fine */
	ck_assert_int_eq(jp_dest_stat(d, "a.txt", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 0);
	jp_dest_close(d);
}
END_TEST

/* Parts of the smallest size, written in odd pieces, as a stream of unknown size and as a file
 * of known size; the multipart object has no SHA-256 metadata, so digest reads it back; a
 * rollback removes it. */
START_TEST(test_multipart)
{
	size_t len = 11 * MIB + 123;
	char *data = pattern(len, 3), *got;
	struct jp_dest *d;
	struct jp_upload *u;
	unsigned char sha[32], want[32];
	int exists, replaced;
	size_t glen = 0;
	const char *etag;

	set_opt("s3.part-size", "1"); /* raised to the smallest S3 allows, 5 MiB */
	d = open_at("multi");
	u = staged(d, "stream.bin", data, len, UINT64_MAX, MIB + 7);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	etag = jp_upload_etag(u);
	ck_assert_msg(strlen(etag) > 3 && strcmp(etag + strlen(etag) - 3, "-3\"") == 0,
	              "ETag %s: not of 3 parts", etag);
	jp_upload_free(u);
	got = raw_get("multi/stream.bin", &glen);
	ck_assert_msg(got != NULL && glen == len && memcmp(got, data, len) == 0,
	              "multi/stream.bin differs (%zu bytes)", glen);
	free(got);
	sha_of(data, len, want);
	ck_assert_int_eq(jp_dest_digest(d, "stream.bin", sha, &err), JP_OK);
	ck_assert_mem_eq(sha, want, 32);

	u = staged(d, "file.bin", data, len, len, 3 * MIB);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	ck_assert_int_eq(exists, 0);
	ck_assert_int_eq(jp_upload_uncommit(u, &err), JP_OK);
	ck_assert(!jp_upload_committed(u));
	jp_upload_free(u);
	ck_assert_ptr_null(raw_get("multi/file.bin", &glen));
	ck_assert_int_eq(raw_uploads("multi/"), 0);
	jp_dest_close(d);
	free(data);
}
END_TEST

/* An upload aborted while its parts are on the wire leaves nothing; one aborted before anything
 * was sent needs no request; an empty object is one empty part. */
START_TEST(test_abort_and_empty)
{
	size_t len = 12 * MIB;
	char *data = pattern(len, 5);
	struct jp_dest *d;
	struct jp_upload *u = NULL;
	int exists, replaced;
	size_t glen = 1;
	char *got;

	set_opt("s3.part-size", "5MiB");
	d = open_at("abort");
	ck_assert_int_eq(jp_dest_stage(d, "big.bin", TOKEN, len, &u, &err), JP_OK);
	ck_assert_int_eq(jp_upload_write(u, data, len, &err), JP_OK); /* two parts out */
	ck_assert_int_eq(raw_uploads("abort/"), 1);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	ck_assert_int_eq(raw_uploads("abort/"), 0);
	ck_assert_ptr_null(raw_get("abort/big.bin", &glen));

	ck_assert_int_eq(jp_dest_stage(d, "never.bin", TOKEN, 10, &u, &err), JP_OK);
	ck_assert_int_eq(jp_upload_write(u, "0123456789", 10, &err), JP_OK); /* kept for finish */
	ck_assert_int_eq(raw_uploads("abort/"), 0);
	jp_upload_free(u); /* aborts */

	/* A file that grew past its planned size (0): its first part is cut at 64 KiB, and the
	 * store refuses a part that small but the last; nothing is published. */
	u = staged(d, "grown", data, 100 * 1024, 0, 100 * 1024);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	assert_err("EntityTooSmall");
	jp_error_clear(&err);
	jp_upload_free(u);
	ck_assert_ptr_null(raw_get("abort/grown", &glen));

	u = staged(d, "empty", "", 0, 0, 1);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	jp_upload_free(u);
	got = raw_get("abort/empty", &glen);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(glen, 0);
	free(got);
	jp_dest_close(d);
	free(data);
}
END_TEST

/* Calls out of order, which dest.c passes on or guards: a commit before anything was sent, a
 * finish whose size is not what was sent (the backend's own check, called directly). */
START_TEST(test_misuse)
{
	struct jp_dest *d = open_at("misuse");
	struct jp_upload *u = NULL;
	unsigned char sha[32] = {0};
	int exists, replaced;

	ck_assert_int_eq(jp_dest_stage(d, "x", TOKEN, 3, &u, &err), JP_OK);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_SOFTWARE);
	ck_assert_msg(strstr(err.msg, "before it was staged") != NULL, "%s", err.msg);
	jp_upload_free(u);

	ck_assert_int_eq(jp_dest_stage(d, "y", TOKEN, 3, &u, &err), JP_OK);
	ck_assert_int_eq(jp_upload_write(u, "abc", 3, &err), JP_OK);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_backend_s3.finish(u, 4, sha, &err), JP_FAILED);
	ck_assert_msg(strstr(err.msg, "sent 3 bytes of 4") != NULL, "%s", err.msg);
	jp_upload_free(u);
	ck_assert_int_eq(raw_uploads("misuse/"), 0);
	jp_dest_close(d);
}
END_TEST

/* Credentials, bucket, endpoint and CA settings that are wrong: refused at open with the class
 * the CLI exits with and the server's reason. */
START_TEST(test_open_errors)
{
	char url[256], ca[PATH_MAX];

	snprintf(url, sizeof(url), "s3://%s/x", bucket);
	setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value", 1);
	ck_assert_int_eq(open_rc(url), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	ck_assert_msg(strstr(err.msg, "SignatureDoesNotMatch") != NULL &&
	              strstr(err.msg, "check the access key") != NULL &&
	              strstr(err.msg, "wrong-secret-value") == NULL, "%s", err.msg);
	setenv("AWS_SECRET_ACCESS_KEY", secret_key, 1);
	setenv("AWS_ACCESS_KEY_ID", "NOSUCHKEY0000000000", 1);
	ck_assert_int_eq(open_rc(url), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	ck_assert_msg(strstr(err.msg, "InvalidAccessKeyId") != NULL, "%s", err.msg);
	unsetenv("AWS_ACCESS_KEY_ID");
	ck_assert_int_eq(open_rc(url), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	ck_assert_msg(strstr(err.msg, "no credentials") != NULL, "%s", err.msg);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_check_settings(url, &opts, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	assert_err("no credentials");
	setenv("AWS_ACCESS_KEY_ID", access_key, 1);

	ck_assert_int_eq(open_rc("s3://no-such-bucket-here/x"), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "NoSuchBucket: bucket 'no-such-bucket-here' does not exist at "
	                              "http://127.0.0.1:") != NULL, "%s", err.msg);
	ck_assert_int_eq(open_rc("s3://No_Such/x"), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	snprintf(url, sizeof(url), "s3://%s/a/../b", bucket);
	ck_assert_int_eq(open_rc(url), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_CONFIG);

	snprintf(url, sizeof(url), "s3://%s/x", bucket);
	set_opt("s3.endpoint", "ftp://127.0.0.1/");
	ck_assert_int_eq(open_rc(url), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	/* Nobody listens: a transient failure, not retried here (retries < 0). */
	set_opt("s3.endpoint", "http://127.0.0.1:1");
	ck_assert_int_eq(open_rc(url), JP_RETRY);
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);

	/* The endpoint from the environment, S3's own variable first. */
	set_opt("s3.endpoint", NULL);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
	setenv("AWS_ENDPOINT_URL_S3", endpoint, 1);
	ck_assert_int_eq(open_rc(url), JP_OK);
	unsetenv("AWS_ENDPOINT_URL_S3");
	ck_assert_int_eq(open_rc(url), JP_RETRY);
	setenv("AWS_ENDPOINT_URL", endpoint, 1);
	ck_assert_int_eq(open_rc(url), JP_OK);
	ck_assert_int_eq(jp_dest_check_settings(url, &opts, &err), JP_OK);
	setenv("AWS_ENDPOINT_URL", "gopher://x", 1);
	ck_assert_int_eq(jp_dest_check_settings(url, &opts, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	unsetenv("AWS_ENDPOINT_URL");

	/* TLS: the gateway's certificate is from a private CA. */
	set_opt("s3.endpoint", tls_endpoint);
	ck_assert_int_eq(open_rc(url), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	ck_assert_msg(strstr(err.msg, "AWS_CA_BUNDLE may name a CA file") != NULL, "%s", err.msg);
	snprintf(ca, sizeof(ca), "%s/no-such-ca.pem", work);
	setenv("AWS_CA_BUNDLE", ca, 1);
	ck_assert_int_eq(open_rc(url), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	ck_assert_msg(strstr(err.msg, "AWS_CA_BUNDLE=") != NULL, "%s", err.msg);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_check_settings(url, &opts, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_CONFIG);
	setenv("AWS_CA_BUNDLE", rgw_ca, 1);
	ck_assert_int_eq(open_rc(url), JP_OK);
	set_opt("s3.endpoint", NULL);
	ck_assert_int_eq(jp_dest_check_settings(url, &opts, &err), JP_OK);
	unsetenv("AWS_CA_BUNDLE");
}
END_TEST

/* The region and the addressing style come from the options, then the environment, then the
 * profile's config; the gateway accepts any region, so each open must simply work. */
START_TEST(test_region_sources)
{
	char url[256], conf[PATH_MAX];
	FILE *fp;

	snprintf(url, sizeof(url), "s3://%s", bucket);
	set_opt("s3.region", "eu-central-1");
	set_opt("s3.path-style", "true");
	ck_assert_int_eq(open_rc(url), JP_OK);
	set_opt("s3.region", NULL);
	set_opt("s3.path-style", NULL);
	/* A region is a host name's part: anything else is refused where it is given. */
	{
		struct jp_options o = {NULL, 0};

		ck_assert_int_eq(jp_options_set_arg(&o, "-o", "s3.region=eu west", &err), JP_FAILED);
		ck_assert_int_eq(err.code, JP_E_USAGE);
		assert_err("'eu west' is not a region name");
		jp_error_clear(&err);
		ck_assert_int_eq(jp_options_set_arg(&o, "-o", "s3.region=eu-west-3", &err), JP_OK);
		jp_options_free(&o);
	}
	setenv("AWS_REGION", "eu-west-3", 1);
	ck_assert_int_eq(open_rc(url), JP_OK);
	setenv("AWS_REGION", "", 1); /* set but empty: as unset */
	opts.retries = 0;              /* the default, 3 */
	ck_assert_int_eq(open_rc(url), JP_OK);
	opts.retries = -1;
	unsetenv("AWS_REGION");
	setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
	ck_assert_int_eq(open_rc(url), JP_OK);
	unsetenv("AWS_DEFAULT_REGION");
	snprintf(conf, sizeof(conf), "%s/aws-config", work);
	fp = fopen(conf, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "[default]\nregion = sa-east-1\n");
	fclose(fp);
	setenv("AWS_CONFIG_FILE", conf, 1);
	ck_assert_int_eq(open_rc(url), JP_OK);
	unsetenv("AWS_CONFIG_FILE");
	/* Slashes around the prefix do not count. */
	{
		struct jp_dest *d = open_at("/rs//");
		struct jp_upload *u = published(d, "k", "v");

		jp_upload_free(u);
		assert_object("rs/k", "v");
		jp_dest_close(d);
	}
	/* No endpoint at all: AWS's for the region, which does not know the gateway's keys (or
	 * cannot be reached from here). */
	set_opt("s3.endpoint", NULL);
	set_opt("s3.region", "eu-north-1");
	opts.timeout_ms = 3000;
	ck_assert_int_ne(open_rc(url), JP_OK);
	ck_assert_str_ne(err.msg, "");
	set_opt("s3.endpoint", endpoint);
	set_opt("s3.region", NULL);
	/* A bucket at the top, no prefix: keys are not prefixed. */
	{
		struct jp_dest *d = open_at("");
		struct jp_upload *u = published(d, "top-level.txt", "top");

		jp_upload_free(u);
		assert_object("top-level.txt", "top");
		ck_assert_int_eq(jp_dest_remove(d, "top-level.txt", &err), JP_OK);
		jp_dest_close(d);
	}
}
END_TEST

/* More than 1000 objects and more than 1000 incomplete uploads below a prefix: the listings
 * come in pages (continuation token; key and upload-id markers), and none is lost. */
START_TEST(test_listing_pages)
{
	struct jp_dest *d;
	struct seen seen = {0};
	struct jp_stat st;
	char key[sizeof(seen.first_upload)];

	raw_many("PUT", "pages/o", "", 1001);
	raw_put("pages/", "a directory marker: the prefix itself, not below it");
	raw_many("POST", "pages/u/", "?uploads=", 1001);
	d = open_at("pages");
	ck_assert_int_eq(jp_dest_list(d, "", seen_add, &seen, &err), JP_OK);
	ck_assert_int_eq(seen.objects, 1001);
	ck_assert_int_eq(seen.uploads, 1001);
	ck_assert_int_eq(seen.bytes, 1001 * strlen("/pages/o0000"));
	/* stat reads the prefix's two pages once, then answers from them. */
	ck_assert_int_eq(jp_dest_stat(d, "o1000", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 1);
	ck_assert_int_eq(st.size, strlen("/pages/o1000"));
	ck_assert_int_eq(jp_dest_stat(d, "o1001", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 0);

	/* A caller that has seen enough. */
	memset(&seen, 0, sizeof(seen));
	seen.stop_after = 1;
	ck_assert_int_eq(jp_dest_list(d, "", seen_add, &seen, &err), JP_OK);
	ck_assert_int_eq(seen.objects, 1);
	ck_assert_int_eq(seen.uploads, 0);
	memset(&seen, 0, sizeof(seen));
	seen.stop_after = 1;
	ck_assert_int_eq(jp_dest_list(d, "u/", seen_add, &seen, &err), JP_OK);
	ck_assert_int_eq(seen.uploads, 1);
	/* gc's way to drop one of the uploads: the first listed is gone from the next listing. */
	memcpy(key, seen.first_upload, sizeof(key));
	ck_assert_int_eq(jp_dest_abort_upload(d, seen.first_upload, seen.first_upload_id, &err), JP_OK);
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(jp_dest_list(d, "u/", seen_add, &seen, &err), JP_OK);
	ck_assert_int_eq(seen.objects, 0);
	ck_assert_int_eq(seen.uploads, 1000);
	ck_assert_str_eq(key, "u/0000");
	ck_assert_str_eq(seen.first_upload, "u/0001");
	jp_dest_close(d);
}
END_TEST

/* Transient failures that go away: a part refused (503 SlowDown), a part's kept-alive
 * connection dropped before its answer, the HEAD before Complete failing (500), a Complete
 * answered 200 with an <Error> body (as S3 may): each is tried again and the object is whole. */
START_TEST(test_transient_failures)
{
	size_t len = 11 * MIB, glen = 0;
	char *data = pattern(len, 7), *got;
	struct jp_dest *d;
	struct jp_upload *u;
	int exists, replaced;

	relay_start("refuse", "1", fmt("^PUT /%s/retry/f[?]partNumber=1&", bucket), "503", "SlowDown",
	            "close", "1", fmt("^PUT /%s/retry/f[?]partNumber=2&", bucket),
	            "replace", "1", fmt("^HEAD /%s/retry/f ", bucket), "500", "InternalError",
	            "refuse", "1", fmt("^POST /%s/retry/f[?]uploadId=", bucket), "200", "InternalError",
	            "close", "1", fmt("^PUT /%s/retry/seek[?]partNumber=1&", bucket),
	            "replace", "1", fmt("^DELETE /%s/retry/ab[?]uploadId=", bucket), "503", "SlowDown",
	            NULL);
	set_opt("s3.endpoint", relay_url);
	opts.retries = 2;
	set_opt("s3.part-size", "5MiB");
	d = open_at("retry");
	u = staged(d, "f", data, len, len, MIB);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	ck_assert_int_eq(exists, 0);
	ck_assert(jp_upload_committed(u));
	jp_upload_free(u);
	ck_assert_int_eq(relay_count("inject refuse PUT"), 1);
	ck_assert_int_eq(relay_count("inject close PUT"), 1);
	ck_assert_int_eq(relay_count("inject replace HEAD"), 1);
	ck_assert_int_eq(relay_count("inject refuse POST"), 1);
	ck_assert_int_eq(relay_count("req POST /jobpub-test/retry/f?uploadId="), 2);
	assert_log("(part 1): server error; sending it again");
	got = raw_get("retry/f", &glen);
	ck_assert_msg(got != NULL && glen == len && memcmp(got, data, len) == 0, "retry/f differs");
	free(got);
	/* One part, sent on the connection its initiation used: dropped before its answer, sent
	 * again. */
	u = staged(d, "seek", "rewound", 7, 7, 7);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	jp_upload_free(u);
	assert_object("retry/seek", "rewound");
	ck_assert_int_eq(relay_count("inject close PUT /jobpub-test/retry/seek"), 1);
	/* An abort answered 503 after the server did it: tried again, "no such upload" is fine. */
	ck_assert_int_eq(jp_dest_stage(d, "ab", TOKEN, len, &u, &err), JP_OK);
	ck_assert_int_eq(jp_upload_write(u, data, 5 * MIB + 1, &err), JP_OK);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	ck_assert_int_eq(relay_count("req DELETE /jobpub-test/retry/ab?uploadId="), 2);
	ck_assert_int_eq(raw_uploads("retry/"), 0);
	jp_dest_close(d);
	free(data);
}
END_TEST

/* What CompleteMultipartUpload may answer besides 200: 404 NoSuchUpload or 412 after the
 * server did it (a retried Complete: our object is there, so it is ours), 412 because another
 * object came first (not ours: exists), 404 with nothing there (gone), 200 with a permanent
 * <Error>, 409, an ETag other than the object's, an ETag that is the object's but written
 * otherwise (W/, upper case), and an object whose token is not ours afterwards. */
START_TEST(test_complete_answers)
{
	struct jp_dest *d;
	struct jp_upload *u;
	int exists, replaced, r;
	unsigned char md5[16], md5s[1][16];
	char etag[64], upper[72], longid[201], *p;
	size_t glen = 0;

	memset(longid, 'Q', 200);
	longid[200] = '\0';

	/* The ETag the gateway gives "same" as a one-part object. */
	EVP_Digest("same", 4, md5, NULL, EVP_md5(), NULL);
	memcpy(md5s[0], md5, 16);
	jp_s3_multipart_etag((const unsigned char(*)[16])md5s, 1, etag, sizeof(etag));
	snprintf(upper, sizeof(upper), "W/%.*s", (int)strlen(etag) - 2, etag + 1); /* no quotes */
	for (p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	relay_start(
		"replace", "1", fmt("^POST /%s/cmp/done404[?]uploadId=", bucket), "404", "NoSuchUpload",
		"replace", "1", fmt("^POST /%s/cmp/done412[?]uploadId=", bucket), "412", "PreconditionFailed",
		"refuse", "1", fmt("^POST /%s/cmp/first412[?]uploadId=", bucket), "412", "PreconditionFailed",
		"refuse", "1", fmt("^POST /%s/cmp/gone404[?]uploadId=", bucket), "404", "NoSuchUpload",
		"refuse", "1", fmt("^POST /%s/cmp/bad200[?]uploadId=", bucket), "200", "AccessDenied",
		"refuse", "1", fmt("^POST /%s/cmp/c409[?]uploadId=", bucket), "409", "ConditionalRequestConflict",
		"sub", "1", fmt("^POST /%s/cmp/etag[?]uploadId=", bucket), "<ETag>[^<]*</ETag>",
		"<ETag>&quot;00000000000000000000000000000000-1&quot;</ETag>",
		"sub", "1", fmt("^POST /%s/cmp/same[?]uploadId=", bucket), "<ETag>[^<]*</ETag>",
		fmt("<ETag>%s</ETag>", upper),
		"sub", "1", fmt("^POST /%s/cmp/vanish[?]uploadId=", bucket), "<ETag>[^<]*</ETag>",
		"<ETag>&quot;abc&quot;</ETag>",
		"replace", "1+1", fmt("^HEAD /%s/cmp/vanish ", bucket), "404", "NoSuchKey",
		"sub", "0", fmt("^HEAD /%s/cmp/other ", bucket), "(?i)x-amz-meta-jobpub-token: [0-9a-f]+",
		"x-amz-meta-jobpub-token: ffffffffffffffff",
		"sub", "0", fmt("^HEAD /%s/cmp/same ", bucket), "(?i)(etag: )\"", "\\1W/\"",
		"refuse", "1", fmt("^POST /%s/cmp/headfail[?]uploadId=", bucket), "404", "NoSuchUpload",
		"refuse", "1+1", fmt("^HEAD /%s/cmp/headfail ", bucket), "403", "AccessDenied",
		"sub", "1", fmt("^HEAD /%s/cmp/longid ", bucket),
		"(?s)^HTTP/1.1 404 Not Found(.*)(?i:x-amz-request-id): [^\\r]*",
		fmt("HTTP/1.1 403 Forbidden\\1x-amz-request-id: %s", longid), NULL);
	set_opt("s3.endpoint", relay_url);
	d = open_at("cmp");

	u = staged(d, "done404", "a", 1, 1, 1);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	ck_assert(jp_upload_committed(u));
	ck_assert_str_ne(jp_upload_etag(u), "");
	jp_upload_free(u);
	assert_object("cmp/done404", "a");

	u = staged(d, "done412", "b", 1, 1, 1);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	ck_assert_int_eq(exists, 0);
	ck_assert(jp_upload_committed(u));
	jp_upload_free(u);
	assert_object("cmp/done412", "b");

	u = staged(d, "first412", "c", 1, 1, 1);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	ck_assert_int_eq(exists, 1);
	ck_assert(!jp_upload_committed(u));
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	assert_object("cmp/first412", NULL);

	u = staged(d, "gone404", "d", 1, 1, 1);
	r = jp_upload_commit(u, 0, &exists, &replaced, &err);
	ck_assert_int_eq(r, JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	assert_err("the upload is gone (NoSuchUpload)");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	assert_object("cmp/gone404", NULL);

	u = staged(d, "bad200", "e", 1, 1, 1);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	assert_err("500 AccessDenied");
	assert_err("not allowed this request");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);

	u = staged(d, "c409", "f", 1, 1, 1);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	assert_err("409 ConditionalRequestConflict");
	jp_error_clear(&err);
	jp_upload_free(u); /* aborts */

	/* Our token, another ETag than Complete told: not recorded, and the rollback removes it. */
	u = staged(d, "etag", "g", 1, 1, 1);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	assert_err("carries this attempt's token but ETag");
	ck_assert(!jp_upload_committed(u));
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	assert_object("cmp/etag", NULL);

	u = staged(d, "same", "same", 4, 4, 4);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	ck_assert(jp_upload_committed(u));
	jp_upload_free(u);

	/* Another token on the key after our Complete: someone else's object; the rollback leaves
	 * it alone. */
	u = staged(d, "other", "h", 1, 1, 1);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	assert_err("was written by someone else while we committed it");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	assert_object("cmp/other", "h");

	/* Gone right after our Complete (someone deleted it): not recorded as ours. */
	u = staged(d, "vanish", "v", 1, 1, 1);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	assert_err("cmp/vanish was written by someone else while we committed it (ETag none, ours \"abc\")");
	jp_error_clear(&err);
	jp_upload_free(u);
	ck_assert_int_eq(jp_dest_remove(d, "vanish", &err), JP_OK);

	/* The Complete answered 404 and the HEAD that should tell what happened refused. */
	u = staged(d, "headfail", "i", 1, 1, 1);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	assert_err("HEAD s3://jobpub-test/cmp/headfail: 403 Forbidden");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	assert_object("cmp/headfail", NULL);

	/* A request id longer than the backend keeps is cut, not overflowed. */
	ck_assert_int_eq(jp_dest_digest(d, "longid", (unsigned char[32]){0}, &err), JP_FAILED);
	ck_assert_int_eq(count_of(err.msg, "Q"), 127);
	jp_error_clear(&err);

	/* eight Completes, the two HEADs of "other" and of "same", the headfail pair, longid, the
	 * vanish pair */
	ck_assert_int_eq(relay_count("inject"), 8 + 2 + 2 + 2 + 1 + 2);
	ck_assert_int_eq(raw_uploads("cmp/"), 0);
	ck_assert_ptr_null(raw_get("cmp/c409", &glen));
	jp_dest_close(d);
}
END_TEST

/* Rolling back a commit: another writer's object put over ours since stays; a HEAD that fails
 * leaves the question open (warning, error); an abort whose DELETE and HEAD both fail reports
 * the worse. */
START_TEST(test_rollback_failures)
{
	struct jp_dest *d;
	struct jp_upload *u;
	int exists, replaced, r;

	relay_start("refuse", "2+1", fmt("^HEAD /%s/rb/headfail ", bucket), "403", "AccessDenied",
	            "refuse", "1", fmt("^POST /%s/rb/both[?]uploadId=", bucket), "503", "SlowDown",
	            "refuse", "1", fmt("^DELETE /%s/rb/both[?]uploadId=", bucket), "500", "InternalError",
	            "refuse", "1+1", fmt("^HEAD /%s/rb/both ", bucket), "403", "AccessDenied",
	            "refuse", "1", fmt("^HEAD /%s/rb/before ", bucket), "503", "SlowDown",
	            "refuse", "1+1", fmt("^HEAD /%s/rb/after ", bucket), "503", "SlowDown",
	            "refuse", "1", fmt("^POST /%s/rb/ovw[?]uploadId=", bucket), "503", "SlowDown",
	            "refuse", "1", fmt("^DELETE /%s/rb/delfail ", bucket), "500", "InternalError", NULL);
	set_opt("s3.endpoint", relay_url);
	d = open_at("rb");

	u = published(d, "theirs", "ours");
	raw_put("rb/theirs", "theirs");
	ck_assert_int_eq(jp_upload_uncommit(u, &err), JP_OK);
	assert_log("rb/theirs kept: another writer's object replaced ours since the commit");
	jp_upload_free(u);
	assert_object("rb/theirs", "theirs");

	u = published(d, "headfail", "x");
	ck_assert_int_eq(jp_upload_uncommit(u, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	assert_err("403 Forbidden"); /* a HEAD's answer has no body, hence no code */
	assert_log("rb/headfail may hold this attempt's data");
	ck_assert(jp_upload_committed(u));
	jp_upload_free(u);
	assert_object("rb/headfail", "x");

	/* The Complete fails (503, no retries): the key's state is unknown, so abort also looks. */
	u = staged(d, "both", "y", 1, 1, 1);
	r = jp_upload_commit(u, 0, &exists, &replaced, &err);
	ck_assert_int_eq(r, JP_RETRY);
	assert_err("SlowDown");
	jp_error_clear(&err);
	r = jp_upload_abort(u, &err);
	ck_assert_int_eq(r, JP_FAILED); /* the HEAD's 403, worse than the DELETE's 500 */
	assert_err("abort upload");
	assert_err("500 InternalError");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK); /* the relay lets it through now */
	jp_upload_free(u);
	/* The HEAD before Complete fails: nothing was sent, the abort drops the upload. */
	u = staged(d, "before", "b", 1, 1, 1);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_RETRY);
	assert_err("HEAD s3://jobpub-test/rb/before: 503");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	assert_object("rb/before", NULL);
	/* The HEAD after Complete fails: our object may be there, and the abort removes it. */
	u = staged(d, "after", "a", 1, 1, 1);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_RETRY);
	assert_err("HEAD s3://jobpub-test/rb/after: 503");
	ck_assert(!jp_upload_committed(u));
	jp_error_clear(&err);
	assert_object("rb/after", "a");
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	assert_object("rb/after", NULL);

	/* --overwrite, the Complete fails: the object there is not ours, and stays. */
	raw_put("rb/ovw", "old");
	u = staged(d, "ovw", "new", 3, 3, 3);
	ck_assert_int_eq(jp_upload_commit(u, 1, &exists, &replaced, &err), JP_RETRY);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	assert_object("rb/ovw", "old");
	/* A rollback whose DELETE fails: still committed, for the caller to report. */
	u = published(d, "delfail", "d");
	ck_assert_int_eq(jp_upload_uncommit(u, &err), JP_RETRY);
	assert_err("DELETE s3://jobpub-test/rb/delfail: 500 InternalError");
	ck_assert(jp_upload_committed(u));
	jp_error_clear(&err);
	jp_upload_free(u);
	assert_object("rb/delfail", "d");

	ck_assert_int_eq(relay_count("inject"), 8);
	ck_assert_int_eq(raw_uploads("rb/"), 0);
	assert_object("rb/both", NULL);
	jp_dest_close(d);
}
END_TEST

/* Permanent refusals: a part (400), an initiation answered without UploadId, a DELETE (500, no
 * retries), a HEAD (403 without a body). */
START_TEST(test_permanent_failures)
{
	size_t len = 6 * MIB;
	char *data = pattern(len, 9);
	struct jp_dest *d;
	struct jp_upload *u = NULL;
	unsigned char sha[32];
	struct jp_stat st;
	size_t off;
	int r;

	relay_start("refuse", "0", fmt("^PUT /%s/pf/part[?]", bucket), "400", "InvalidDigest",
	            "refuse", "1", fmt("^PUT /%s/pf/p503[?]", bucket), "503", "SlowDown",
	            "sub", "1", fmt("^POST /%s/pf/noid[?]uploads=", bucket), "<UploadId>[^<]*</UploadId>", "",
	            "refuse", "0", fmt("^DELETE /%s/pf/keep ", bucket), "500", "InternalError",
	            "refuse", "0", fmt("^HEAD /%s/pf/keep ", bucket), "403", "AccessDenied",
	            "refuse", "1", fmt("^POST /%s/pf/initfail[?]uploads=", bucket), "403", "AccessDenied",
	            "refuse", "1", fmt("^PUT /%s/pf/w[?]partNumber=1&", bucket), "400", "InvalidDigest",
	            NULL);
	set_opt("s3.endpoint", relay_url);
	set_opt("s3.part-size", "5MiB");
	d = open_at("pf");

	ck_assert_int_eq(jp_dest_stage(d, "part", TOKEN, len, &u, &err), JP_OK);
	ck_assert_int_eq(jp_upload_write(u, data, len, &err), JP_OK);
	sha_of(data, len, sha);
	r = jp_upload_finish(u, len, sha, &err);
	ck_assert_int_eq(r, JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	assert_err("400 InvalidDigest");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);

	ck_assert_int_eq(jp_dest_stage(d, "noid", TOKEN, 1, &u, &err), JP_OK);
	ck_assert_int_eq(jp_upload_write(u, "z", 1, &err), JP_OK);
	sha_of("z", 1, sha);
	ck_assert_int_eq(jp_upload_finish(u, 1, sha, &err), JP_FAILED);
	assert_err("no UploadId in the answer");
	jp_error_clear(&err);
	jp_upload_free(u);

	raw_put("pf/keep", "kept");
	ck_assert_int_eq(jp_dest_remove(d, "keep", &err), JP_RETRY);
	assert_err("DELETE s3://jobpub-test/pf/keep: 500 InternalError");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_digest(d, "keep", sha, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	assert_err("403 Forbidden");
	assert_object("pf/keep", "kept");
	/* The listing says it exists, with the size a HEAD could not tell. */
	ck_assert_int_eq(jp_dest_stat(d, "keep", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 1);
	ck_assert_int_eq(st.size, 4);
	/* A multipart upload whose initiation is refused: the write that needs it fails. */
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_stage(d, "initfail", TOKEN, len, &u, &err), JP_OK);
	ck_assert_int_eq(jp_upload_write(u, data, len, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	assert_err("initiate upload s3://jobpub-test/pf/initfail: 403 AccessDenied");
	jp_error_clear(&err);
	jp_upload_free(u);
	/* A part refused while more is written: a later write tells, and so does finish. */
	ck_assert_int_eq(jp_dest_stage(d, "w", TOKEN, len, &u, &err), JP_OK);
	ck_assert_int_eq(jp_upload_write(u, data, 5 * MIB + 1, &err), JP_OK);
	for (r = JP_OK, off = 5 * MIB + 1; r == JP_OK && off < len; off++) {
		r = jp_upload_write(u, data + off, 1, &err);
		usleep(2000);
	}
	ck_assert_int_eq(r, JP_FAILED);
	assert_err("(part 1): 400 InvalidDigest");
	jp_error_clear(&err);
	sha_of(data, off, sha);
	ck_assert_int_eq(jp_backend_s3.finish(u, off, sha, &err), JP_FAILED);
	assert_err("(part 1): 400 InvalidDigest");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	ck_assert_int_eq(raw_uploads("pf/w"), 0);

	/* A part refused by a transient error, no retries: the upload fails with 75. */
	ck_assert_int_eq(jp_dest_stage(d, "p503", TOKEN, 1, &u, &err), JP_OK);
	ck_assert_int_eq(jp_upload_write(u, "5", 1, &err), JP_OK);
	sha_of("5", 1, sha);
	ck_assert_int_eq(jp_upload_finish(u, 1, sha, &err), JP_RETRY);
	assert_err("(part 1): 503 SlowDown");
	jp_error_clear(&err);
	jp_upload_free(u);

	ck_assert_int_eq(relay_count("inject refuse PUT"), 4);
	ck_assert_int_eq(relay_count("inject sub POST"), 1);
	jp_dest_close(d);
	free(data);
}
END_TEST

/* Listings the gateway cuts short: truncated without a continuation token (stat then asks key
 * by key; a full listing fails), more than two pages (stat asks key by key), truncated uploads
 * without markers, an empty answer, XML without its closing tags. */
START_TEST(test_listing_faults)
{
	struct jp_dest *d;
	struct jp_stat st;
	struct seen seen = {0};
	/* ListObjectsV2 of the prefix (not open's, which has max-keys), any page */
	const char *objs = fmt("^GET /%s[?][^ ]*list-type=2&prefix=lf%%2F", bucket);

	raw_put("lf/a", "aa");
	raw_put("lf/b", "bbb");
	raw_put("lg/x", "xx");
	relay_start("sub", "2", objs, "<IsTruncated>false</IsTruncated>", "<IsTruncated>true</IsTruncated>",
	            "sub", "2", objs, "<IsTruncated>false</IsTruncated>",
	            "<IsTruncated>true</IsTruncated><NextContinuationToken>lf/zz</NextContinuationToken>",
	            "sub", "1", objs, "(?s)<[?]xml.*", "",
	            "sub", "1", objs, "</Contents>", "",
	            "sub", "1", fmt("^GET /%s[?]prefix=lf%%2F&uploads=", bucket),
	            "<IsTruncated>false</IsTruncated>", "<IsTruncated>true</IsTruncated>",
	            "refuse", "1", fmt("^GET /%s[?][^ ]*list-type=2&prefix=lg%%2F", bucket), "503", "SlowDown",
	            "sub", "1", fmt("^GET /%s[?][^ ]*list-type=2&prefix=lg%%2F", bucket),
	            "<LastModified>[^<]*</LastModified>|<Size>[^<]*</Size>|<ETag>[^<]*</ETag>",
	            "<LastModified>yesterday</LastModified>", NULL);
	set_opt("s3.endpoint", relay_url);
	d = open_at("lf");
	/* 1: truncated, no token: key by key. */
	ck_assert_int_eq(jp_dest_stat(d, "b", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 1);
	ck_assert_int_eq(st.size, 3);
	ck_assert_int_eq(relay_count("req HEAD /jobpub-test/lf/b "), 1);
	/* 2: the same for a full listing is an error. */
	ck_assert_int_eq(jp_dest_list(d, "", seen_add, &seen, &err), JP_FAILED);
	assert_err("the listing is truncated and has no continuation token");
	jp_error_clear(&err);
	jp_dest_close(d);
	/* 3, 4: two pages that say there is more: key by key. */
	d = open_at("lf");
	ck_assert_int_eq(jp_dest_stat(d, "a", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 1);
	ck_assert_int_eq(st.size, 2);
	ck_assert_int_eq(relay_count("req GET /jobpub-test?continuation-token=lf%2Fzz&"), 1);
	ck_assert_int_eq(relay_count("req HEAD /jobpub-test/lf/a "), 1);
	/* 5: an empty answer. */
	ck_assert_int_eq(jp_dest_list(d, "", seen_add, &seen, &err), JP_FAILED);
	assert_err("empty answer");
	jp_error_clear(&err);
	/* 6: elements without their end: nothing read from them. */
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(jp_dest_list(d, "", seen_add, &seen, &err), JP_FAILED);
	assert_err("the listing is truncated and has no next markers");
	ck_assert_int_eq(seen.objects, 0);
	ck_assert_int_eq(relay_count("inject sub"), 7);
	jp_dest_close(d);
	/* 7: the listing stat needs refused; then one with a time that is not one. */
	d = open_at("lg");
	ck_assert_int_eq(jp_dest_stat(d, "x", &st, &err), JP_RETRY);
	assert_err("list s3://jobpub-test/lg/: 503 SlowDown");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_stat(d, "x", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 1);
	ck_assert_int_eq(st.size, 0); /* the entry had no size */
	ck_assert_str_eq(st.etag, "");
	ck_assert_int_eq(st.mtime, 0);
	jp_dest_close(d);
	/* 8: from the bucket's top, keys are the bucket's. */
	d = open_at("");
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(jp_dest_list(d, "lg/", seen_add, &seen, &err), JP_OK);
	ck_assert_int_eq(seen.objects, 1);
	ck_assert_int_eq(seen.bytes, 2);
	jp_dest_close(d);
}
END_TEST

/* Reading back: an answer cut mid-body is not tried again once bytes went to the caller (a
 * listing is); an error answer larger than the backend keeps; a reader that says stop; a
 * stalled answer ends by the stall rule. */
static int
sink_stop(void *arg, const void *buf, size_t len)
{
	(void)arg;
	(void)buf;
	(void)len;
	return 1;
}

START_TEST(test_read_faults)
{
	size_t len = 5 * MIB;
	char *data = pattern(len, 11);
	struct jp_dest *d;
	struct jp_upload *u;
	unsigned char sha[32];
	struct seen seen = {0};
	int exists, replaced;
	int64_t t0;

	relay_start("cutbody", "1", fmt("^GET /%s/rd/big ", bucket), "100000",
	            "cutbody", "1", fmt("^GET /%s[?]list-type=2&prefix=rd%%2F ", bucket), "10",
	            "sub", "1", fmt("^GET /%s/rd/big ", bucket), "^HTTP/1.1 200 OK", "HTTP/1.1 500 Internal Server Error",
	            "stallbody", "1", fmt("^GET /%s/rd/big ", bucket), "1000", NULL);
	set_opt("s3.endpoint", endpoint);
	set_opt("s3.part-size", "5MiB");
	d = open_at("rd");
	u = staged(d, "big", data, len, len, MIB);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	jp_upload_free(u);
	jp_dest_close(d);

	set_opt("s3.endpoint", relay_url);
	opts.retries = 1;
	opts.stall_ms = 1000;
	d = open_at("rd");
	ck_assert_int_eq(jp_dest_hash(d, "big", sha, &err), JP_RETRY);
	assert_err("GET s3://jobpub-test/rd/big");
	ck_assert_int_eq(relay_count("req GET /jobpub-test/rd/big "), 1);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_list(d, "", seen_add, &seen, &err), JP_OK);
	ck_assert_int_eq(seen.objects, 1);
	ck_assert_int_eq(relay_count("inject cutbody GET /jobpub-test?list-type"), 1);
	opts.retries = -1;
	jp_dest_close(d);
	d = open_at("rd");
	ck_assert_int_eq(jp_dest_hash(d, "big", sha, &err), JP_RETRY);
	ck_assert_int_eq(relay_count("inject sub GET /jobpub-test/rd/big "), 1);
	jp_error_clear(&err);
	t0 = jp_now_ms();
	ck_assert_int_eq(jp_dest_hash(d, "big", sha, &err), JP_RETRY);
	assert_err("(--timeout, --stall)");
	ck_assert_msg(jp_now_ms() - t0 < 8000, "the stall rule took %lld ms", (long long)(jp_now_ms() - t0));
	jp_error_clear(&err);
	ck_assert_int_eq(jp_backend_s3.read(d, "big", sink_stop, NULL, &err), JP_RETRY);
	assert_err("GET s3://jobpub-test/rd/big: stopped");
	jp_dest_close(d);
	free(data);
}
END_TEST

/* A signal (the stop hook) during a retry's pause, while a request waits, while parts are on
 * the wire (full window, finish), and after a Complete was refused: each call ends at once
 * with 75, and the clean-up afterwards leaves nothing. */
START_TEST(test_stop)
{
	size_t len = 26 * MIB;
	char *data = pattern(len, 13);
	struct jp_dest *d;
	struct jp_upload *u = NULL;
	unsigned char sha[32];
	int exists, replaced, r;
	size_t off;

	relay_start("refuse", "0", fmt("^HEAD /%s/stop/pause ", bucket), "503", "SlowDown",
	            "mute", "0", fmt("^GET /%s/stop/wait ", bucket),
	            "mute", "0", fmt("^PUT /%s/stop/window[?]", bucket),
	            "mute", "0", fmt("^PUT /%s/stop/fin[?]", bucket),
	            "refuse", "1", fmt("^POST /%s/stop/c503[?]uploadId=", bucket), "503", "SlowDown",
	            "refuse", "1", fmt("^POST /%s/stop/c200[?]uploadId=", bucket), "200", "InternalError",
	            NULL);
	set_opt("s3.endpoint", relay_url);
	opts.retries = 5;
	set_opt("s3.part-size", "5MiB");
	d = open_at("stop");

	stop_on("inject refuse HEAD", 1, 150);
	ck_assert_int_eq(jp_dest_digest(d, "pause", sha, &err), JP_RETRY);
	assert_err("HEAD s3://jobpub-test/stop/pause: 503 error");
	ck_assert_int_eq(relay_count("inject refuse HEAD"), 1); /* no second try */
	jp_error_clear(&err);

	stop_on("inject mute GET", 1, 0);
	ck_assert_int_eq(jp_dest_hash(d, "wait", sha, &err), JP_RETRY);
	assert_err("GET s3://jobpub-test/stop/wait: interrupted");
	jp_error_clear(&err);

	/* Four parts out and unanswered, the fifth full. */
	stop_on("inject mute PUT /jobpub-test/stop/window", 4, 200);
	ck_assert_int_eq(jp_dest_stage(d, "window", TOKEN, len, &u, &err), JP_OK);
	for (r = JP_OK, off = 0; off < len && r == JP_OK; off += MIB)
		r = jp_upload_write(u, data + off, MIB, &err);
	ck_assert_int_eq(r, JP_RETRY);
	assert_err("stop/window: interrupted");
	jp_error_clear(&err);
	jp_dest_set_stop(NULL);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);

	stop_on("inject mute PUT /jobpub-test/stop/fin", 2, 0);
	ck_assert_int_eq(jp_dest_stage(d, "fin", TOKEN, 7 * MIB, &u, &err), JP_OK);
	ck_assert_int_eq(jp_upload_write(u, data, 7 * MIB, &err), JP_OK);
	sha_of(data, 7 * MIB, sha);
	ck_assert_int_eq(jp_upload_finish(u, 7 * MIB, sha, &err), JP_RETRY);
	assert_err("stop/fin: interrupted");
	jp_error_clear(&err);
	jp_dest_set_stop(NULL);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);

	/* A Complete refused while a signal is pending is not tried again. */
	u = staged(d, "c503", "x", 1, 1, 1);
	stop_on("inject refuse POST /jobpub-test/stop/c503", 1, 0);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_RETRY);
	assert_err("SlowDown");
	jp_error_clear(&err);
	jp_dest_set_stop(NULL);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	u = staged(d, "c200", "x", 1, 1, 1);
	stop_on("inject refuse POST /jobpub-test/stop/c200", 1, 0);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_RETRY);
	assert_err("500 InternalError");
	jp_error_clear(&err);
	jp_dest_set_stop(NULL);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	jp_upload_free(u);
	ck_assert_int_eq(relay_count("req POST /jobpub-test/stop/c503?uploadId"), 1);
	ck_assert_int_eq(relay_count("req POST /jobpub-test/stop/c200?uploadId"), 1);
	ck_assert_int_eq(raw_uploads("stop/"), 0);
	jp_dest_close(d);
	free(data);
}
END_TEST

/* Part buffers of all uploads together stay within the budget: a third upload waits for room
 * while the parts of two others are on the wire (and unanswered), until the stop hook ends it. */
START_TEST(test_memory_budget)
{
	size_t len = 25 * MIB, off;
	char *data = pattern(len, 17);
	struct jp_dest *d;
	struct jp_upload *u[3] = {NULL, NULL, NULL};
	static const char *const keys[3] = {"a", "b", "c"};
	int i, r = JP_OK;

	relay_start("mute", "0", fmt("^PUT /%s/budget/", bucket), NULL);
	set_opt("s3.endpoint", relay_url);
	set_opt("s3.part-size", "5MiB");
	d = open_at("budget");
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(jp_dest_stage(d, keys[i], TOKEN, 100 * MIB, &u[i], &err), JP_OK);
	for (i = 0; i < 2; i++) /* four parts out, the fifth full: 25 MiB each */
		for (off = 0; off < len; off += MIB)
			ck_assert_int_eq(jp_upload_write(u[i], data + off, MIB, &err), JP_OK);
	stop_on("inject mute PUT", 10, 100);
	for (off = 0; off < len && r == JP_OK; off += MIB)
		r = jp_upload_write(u[2], data + off, MIB, &err);
	ck_assert_int_eq(r, JP_RETRY);
	assert_err("budget/c: interrupted");
	ck_assert_int_eq(off, 11 * MIB); /* two parts of c out, the third found no room */
	ck_assert_int_eq(relay_count("inject mute PUT"), 10);
	jp_error_clear(&err);
	jp_dest_set_stop(NULL);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(jp_upload_abort(u[i], &err), JP_OK);
		jp_upload_free(u[i]);
	}
	ck_assert_int_eq(raw_uploads("budget/"), 0);
	jp_dest_close(d);
	free(data);
}
END_TEST

/* ---- out of memory: every allocation of each call failing in turn ---- */

#define SMALL 1000 /* bytes of the object "up" */

struct oom_ctx {
	char url[256];
	struct jp_dest *d;
	struct jp_upload *u;
	char *data;
	size_t len;
	unsigned char sha[32]; /* of data */
	const char *wrong;     /* set by a step whose result is wrong (no check macros while armed:
	                        * they allocate) */
	struct seen seen;
	char upload_key[256], upload_id[256];
};

static unsigned oom_failures; /* runs that ended with "out of memory" */

/* Runs step with its 1st, 2nd, ... allocation failing until a run does not reach the failure;
 * returns that run's result.  A run that failed must say why (out of memory: class 70); undo
 * (may be NULL) puts things back after each run that met a failure. */
static int
sweep(const char *what, int (*step)(struct oom_ctx *), void (*undo)(struct oom_ctx *),
      struct oom_ctx *c)
{
	long n;
	int r;

	for (n = 1; n < 10000; n++) {
		jp_error_clear(&err);
		c->wrong = NULL;
		t_fail_alloc((unsigned long)n);
		r = step(c);
		t_fail_alloc(0);
		ck_assert_msg(c->wrong == NULL, "%s with allocation %ld failing", c->wrong, n);
		if (!t_fail_alloc_fired())
			return r;
		if (r != JP_OK) {
			ck_assert_msg(err.code != 0 && err.msg[0] != '\0',
			              "%s with allocation %ld failing: %d without a reason", what, n, r);
			if (strstr(err.msg, "out of memory") != NULL) {
				ck_assert_msg(err.code == JP_E_SOFTWARE, "%s: %d %s", what, err.code, err.msg);
				oom_failures++;
			}
		}
		if (undo != NULL)
			undo(c);
	}
	ck_abort_msg("%s: more than 10000 allocations", what);
	return JP_FAILED;
}

static int
oom_open(struct oom_ctx *c)
{
	return jp_dest_open(c->url, &opts, &c->d, &err);
}

static void
oom_close(struct oom_ctx *c)
{
	jp_dest_close(c->d);
	c->d = NULL;
}

static void
oom_reopen(struct oom_ctx *c)
{
	oom_close(c);
	ck_assert_int_eq(oom_open(c), JP_OK);
}

static int
oom_check(struct oom_ctx *c)
{
	return jp_dest_check_settings(c->url, &opts, &err);
}

static int
oom_stat(struct oom_ctx *c)
{
	struct jp_stat st;
	int r = jp_dest_stat(c->d, "o1", &st, &err);

	if (r == JP_OK && !st.exists)
		c->wrong = "stat: oom/o1 looks absent";
	return r;
}

static int
oom_upload(struct oom_ctx *c)
{
	int exists, replaced, r;

	/* one part: each run is cheap; staged_abort has parts sent while writing */
	if ((r = jp_dest_stage(c->d, "up", TOKEN, SMALL, &c->u, &err)) != JP_OK ||
	    (r = jp_upload_write(c->u, c->data, SMALL, &err)) != JP_OK ||
	    (r = jp_upload_finish(c->u, SMALL, c->sha, &err)) != JP_OK)
		return r;
	return jp_upload_commit(c->u, 1, &exists, &replaced, &err);
}

static void
oom_upload_undo(struct oom_ctx *c)
{
	struct jp_error e;

	jp_error_clear(&e);
	if (c->u != NULL && jp_upload_committed(c->u))
		jp_upload_uncommit(c->u, &e);
	jp_upload_free(c->u);
	c->u = NULL;
}

static int
oom_staged_abort(struct oom_ctx *c)
{
	int r;

	if ((r = jp_dest_stage(c->d, "ab", TOKEN, c->len, &c->u, &err)) != JP_OK ||
	    (r = jp_upload_write(c->u, c->data, c->len, &err)) != JP_OK)
		return r;
	return jp_upload_abort(c->u, &err);
}

static int
oom_digest(struct oom_ctx *c)
{
	unsigned char sha[32];
	int r = jp_dest_digest(c->d, "up", sha, &err);

	if (r == JP_OK && memcmp(sha, c->sha, 32) != 0)
		c->wrong = "digest: a wrong SHA-256";
	return r;
}

static int
oom_hash(struct oom_ctx *c)
{
	unsigned char sha[32];
	int r = jp_dest_hash(c->d, "up", sha, &err);

	if (r == JP_OK && memcmp(sha, c->sha, 32) != 0)
		c->wrong = "read back: a wrong SHA-256";
	return r;
}

static int
oom_list(struct oom_ctx *c)
{
	memset(&c->seen, 0, sizeof(c->seen));
	return jp_dest_list(c->d, "", seen_add, &c->seen, &err);
}

static int
oom_remove(struct oom_ctx *c)
{
	return jp_dest_remove(c->d, "o2", &err);
}

static int
oom_abort_upload(struct oom_ctx *c)
{
	return jp_dest_abort_upload(c->d, c->upload_key, c->upload_id, &err);
}

/* Out of memory at every allocation of open (with credentials from the environment and from a
 * file), the settings check, stat, a multipart upload and its commit, digest, list, remove,
 * abort: never a crash, always a reason, and the normal result once memory is there. */
START_TEST(test_out_of_memory)
{
	struct oom_ctx c;
	char creds[PATH_MAX];
	FILE *fp;

	memset(&c, 0, sizeof(c));
	c.len = 5 * MIB + 1000;
	c.data = pattern(c.len, 19);
	sha_of(c.data, SMALL, c.sha);
	raw_put("oom/o1", "one");
	raw_put("oom/o2", "two");
	raw_put("oom/o3", "three");
	ck_assert_int_eq(raw("POST", "/oom/pending?uploads=", NULL, 0, NULL), 200);
	set_opt("s3.part-size", "5MiB");
	snprintf(c.url, sizeof(c.url), "s3://%s/oom", bucket);

	ck_assert_int_eq(sweep("check", oom_check, NULL, &c), JP_OK);
	ck_assert_int_eq(sweep("open", oom_open, oom_close, &c), JP_OK);
	ck_assert_ptr_nonnull(c.d);
	ck_assert_int_eq(sweep("stat", oom_stat, oom_reopen, &c), JP_OK);
	ck_assert_int_eq(sweep("upload", oom_upload, oom_upload_undo, &c), JP_OK);
	ck_assert(jp_upload_committed(c.u));
	jp_upload_free(c.u);
	c.u = NULL;
	ck_assert_int_eq(sweep("staged abort", oom_staged_abort, oom_upload_undo, &c), JP_OK);
	oom_upload_undo(&c);
	ck_assert_int_eq(sweep("digest", oom_digest, NULL, &c), JP_OK);
	ck_assert_int_eq(sweep("read back", oom_hash, NULL, &c), JP_OK);
	ck_assert_int_eq(sweep("list", oom_list, NULL, &c), JP_OK);
	ck_assert_int_eq(c.seen.objects, 4); /* o1 o2 o3 up */
	/* "pending", and those whose initiation went through but whose answer could not be read
	 * (their id unknown: gc's to find) */
	ck_assert_int_ge(c.seen.uploads, 1);
	ck_assert_int_eq(raw_uploads("oom/"), c.seen.uploads);
	snprintf(c.upload_key, sizeof(c.upload_key), "%s", c.seen.first_upload);
	snprintf(c.upload_id, sizeof(c.upload_id), "%s", c.seen.first_upload_id);
	ck_assert_int_eq(sweep("abort upload", oom_abort_upload, NULL, &c), JP_OK);
	ck_assert_int_eq(raw_uploads("oom/"), c.seen.uploads - 1);
	ck_assert_int_eq(sweep("remove", oom_remove, NULL, &c), JP_OK);
	assert_object("oom/o2", NULL);
	assert_object("oom/o1", "one");
	oom_close(&c);

	/* The credentials from a file, a session token with them: AWS's chain under the same. */
	snprintf(creds, sizeof(creds), "%s/oom-credentials", work);
	fp = fopen(creds, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", access_key,
	        secret_key);
	fclose(fp);
	setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	ck_assert_int_eq(sweep("open, credentials file", oom_open, oom_close, &c), JP_OK);
	oom_close(&c);
	setenv("AWS_ACCESS_KEY_ID", access_key, 1);
	setenv("AWS_SESSION_TOKEN", "not-a-token", 1);
	/* (radosgw ignores a token it did not issue) */
	ck_assert_int_eq(sweep("open, session token", oom_open, oom_close, &c), JP_OK);
	oom_close(&c);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	ck_assert_msg(oom_failures > 50, "only %u runs ended with 'out of memory'", oom_failures);
	free(c.data);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("backend_s3");
	TCase *tc = tcase_create("rgw");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_small_object);
	tcase_add_test(tc, test_multipart);
	tcase_add_test(tc, test_abort_and_empty);
	tcase_add_test(tc, test_misuse);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_region_sources);
	tcase_add_test(tc, test_listing_pages);
	tcase_add_test(tc, test_transient_failures);
	tcase_add_test(tc, test_complete_answers);
	tcase_add_test(tc, test_rollback_failures);
	tcase_add_test(tc, test_permanent_failures);
	tcase_add_test(tc, test_listing_faults);
	tcase_add_test(tc, test_read_faults);
	tcase_add_test(tc, test_stop);
	tcase_add_test(tc, test_memory_budget);
	tcase_add_test(tc, test_out_of_memory);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	char tmpl[PATH_MAX], cmd[4 * PATH_MAX], *env;
	const char *base = getenv("TMPDIR");
	int rc;

	main_pid = getpid();
	snprintf(tmpl, sizeof(tmpl), "%s/jobpub-s3test.XXXXXX", base && *base ? base : "/tmp");
	if ((work = mkdtemp(tmpl)) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	snprintf(rgw_dir, sizeof(rgw_dir), "%s/rgw", work);
	atexit(rgw_stop);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);
	/* Small objects only: a small memstore. */
	snprintf(cmd, sizeof(cmd),
	         "RGW_MEMSTORE_BYTES=1073741824 sh '%s/tests/rgw-start.sh' '%s' >'%s/rgw-start.log' 2>&1",
	         JP_TEST_SRCDIR, rgw_dir, work);
	rc = system(cmd);
	if (rc != 0) {
		snprintf(cmd, sizeof(cmd), "cat '%s/rgw-start.log' >&2", work);
		if (system(cmd) != 0)
			fprintf(stderr, "test_backend_s3: no log\n");
		fprintf(stderr, "test_backend_s3: rgw-start.sh failed (%d): a hard error, as in "
		                "cmd-publish-s3.sh\n", rc);
		t_rmtree(work);
		return 99;
	}
	env = t_read(rgw_dir, "env", NULL);
	if (env == NULL || env_value(env, "RGW_ENDPOINT", endpoint, sizeof(endpoint)) != 0 ||
	    env_value(env, "RGW_TLS_ENDPOINT", tls_endpoint, sizeof(tls_endpoint)) != 0 ||
	    env_value(env, "RGW_PORT", rgw_port, sizeof(rgw_port)) != 0 ||
	    env_value(env, "RGW_CA", rgw_ca, sizeof(rgw_ca)) != 0 ||
	    env_value(env, "RGW_ACCESS_KEY", access_key, sizeof(access_key)) != 0 ||
	    env_value(env, "RGW_SECRET_KEY", secret_key, sizeof(secret_key)) != 0 ||
	    env_value(env, "RGW_BUCKET", bucket, sizeof(bucket)) != 0) {
		fprintf(stderr, "test_backend_s3: %s/env is incomplete\n", rgw_dir);
		free(env);
		return 99;
	}
	free(env);
	/* The credentials of the gateway's user, and nothing of the caller's AWS setup. */
	{
		static const char *const drop[] = {
			"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
			"AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
			"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE"};
		size_t i;

		for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
			unsetenv(drop[i]);
	}
	setenv("HOME", work, 1);
	setenv("AWS_ACCESS_KEY_ID", access_key, 1);
	setenv("AWS_SECRET_ACCESS_KEY", secret_key, 1);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = t_run(suite());
	rgw_stop();
	t_rmtree(work);
	return rc;
}
