/*
 * backend-s3.c - S3-compatible object stores with libcurl: s3://bucket/prefix.
 *
 * Every file is staged as a multipart upload to its final key.  Parts are cut from the same
 * read-and-hash pass, sent several at a time on the lane's curl multi handle, each with
 * Content-MD5 so the server refuses a part damaged on the way; a failed part is sent again from
 * memory, not the whole file.  Nothing is visible in the bucket until commit sends
 * CompleteMultipartUpload, which the core does only once every file of the job is staged, with
 * If-None-Match: * unless --overwrite.  Servers that ignore that header on Complete (Ceph
 * Pacific) are covered by a HEAD before it and the ETag after it: a lost race is reported,
 * though not prevented (see the man page).  Abort sends AbortMultipartUpload; gc finds what a
 * SIGKILL left with ListMultipartUploads.
 *
 * Requests are signed by curl (CURLOPT_AWS_SIGV4).  curl 7.88 signs the query string as given
 * and hashes no body itself, so every request carries x-amz-content-sha256 and a canonical
 * query (s3.c builds both; tests/test_s3.c keeps them right).  Secrets live in this process's
 * memory only: curl gets them through CURLOPT_USERNAME/PASSWORD, no message ever prints them.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "backend.h"
#include "log.h"
#include "s3.h"
#include "util.h"

#define NAME "s3"
#define MAX_INFLIGHT 4               /* parts of one upload on the wire at once */
#define MEMORY_BUDGET (64ULL << 20)  /* part buffers of the whole process, see part_new() */
#define RESP_MAX (4 << 20)           /* an XML answer larger than this is refused */

struct s3_dest {
	struct jp_dest base;
	char *bucket;
	char *root;          /* the key prefix, no leading or trailing '/'; "" for none */
	char *region;
	char *sigv4;         /* "aws:amz:REGION:s3" */
	struct jp_s3_endpoint ep;
	int path_style;
	struct jp_s3_creds creds;
	char *ca_bundle;     /* AWS_CA_BUNDLE */
	struct jp_dest_opts opts;
	uint64_t part_base;
	int retries;
	CURLM *multi;
	/* What one listing of the prefix found, so that the checks before staging cost no HEAD per
	 * file; only kept when the prefix holds few objects (see s3_stat). */
	int listed;          /* 0 not yet, 1 complete below, -1 too many: HEAD each key */
	struct listed_obj *objs;
	size_t n_objs, cap_objs;
};

struct listed_obj {
	char *key;           /* below the root */
	struct jp_stat st;
};

/* One HTTP exchange: what is sent, what came back. */
struct req {
	struct s3_dest *d;
	CURL *h;
	struct curl_slist *hdrs;
	const char *method;          /* GET HEAD PUT POST DELETE */
	char *url;
	char *what;                  /* "PUT s3://b/k (part 3)", for messages */
	const unsigned char *body;   /* may be NULL */
	size_t body_len, body_off;
	long accept[3];              /* non-2xx statuses that are answers, not failures */
	int interruptible;           /* a signal stops it (not for clean-up requests) */
	int settle;                  /* a Complete: no stall rule (the server may think for long),
	                              * not cut by a signal, but not tried again after one */
	long deadline_ms;
	jp_read_fn sink;             /* GET: the body goes here when the status is 2xx */
	void *sink_arg;
	int sink_stopped;
	/* the answer */
	int done;
	CURLcode cc;
	long status;
	char errbuf[CURL_ERROR_SIZE];
	char *resp;
	size_t resp_len, resp_cap;
	char etag[96], request_id[128], meta_sha[72], meta_token[24], last_modified[64];
};

enum part_state { P_FILLING, P_FLIGHT, P_WAIT, P_DONE };

struct part {
	struct req rq;
	unsigned num;
	unsigned char *buf;
	size_t len, cap;
	unsigned char md5[16];
	int tries;
	int64_t retry_at;
	enum part_state state;
};

struct s3_upload {
	struct jp_upload base;
	char *objkey;          /* root + "/" + key */
	char *s3url;           /* s3://bucket/objkey for messages */
	char *upload_id;       /* NULL until initiated */
	char token[17];
	uint64_t size_hint;
	uint64_t offset;       /* bytes handed to parts so far */
	struct part *fill;     /* the part being filled */
	struct part *flight[MAX_INFLIGHT];
	size_t n_flight;
	unsigned next_num;
	unsigned n_parts;      /* parts sent and acknowledged (numbers 1..n_parts) */
	unsigned char (*md5s)[16];
	char (*etags)[96];
	size_t parts_cap;
	int failed;            /* a part failed for good; perr says why */
	struct jp_error perr;
	int completing;        /* Complete was sent and not confirmed: the key may hold our object */
	int before_exists;     /* the key held an object before our Complete (--overwrite) */
	char etag[96];         /* the object's, after commit */
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static uint64_t mem_inuse; /* part buffers allocated, all lanes (atomic) */

static void
lib_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int
oom(struct jp_error *err)
{
	return jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* root + "/" + key, or key alone under the bucket's top. */
static char *
object_key(const struct s3_dest *d, const char *key)
{
	return *d->root ? jp_asprintf("%s/%s", d->root, key) : strdup(key);
}

/* ---- requests ---- */

static size_t
on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct req *rq = arg;
	size_t len = size * n, nl;
	static const struct {
		const char *name;
		size_t off, cap;
	} want[] = {
		{"etag", offsetof(struct req, etag), sizeof(((struct req *)0)->etag)},
		{"x-amz-request-id", offsetof(struct req, request_id), sizeof(((struct req *)0)->request_id)},
		{"x-amz-meta-sha256", offsetof(struct req, meta_sha), sizeof(((struct req *)0)->meta_sha)},
		{"x-amz-meta-jobpub-token", offsetof(struct req, meta_token),
		 sizeof(((struct req *)0)->meta_token)},
		{"last-modified", offsetof(struct req, last_modified),
		 sizeof(((struct req *)0)->last_modified)},
	};
	size_t i;

	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		/* A new answer (after a 100 Continue or a redirect): forget the last one's. */
		rq->etag[0] = rq->request_id[0] = rq->meta_sha[0] = rq->last_modified[0] = '\0';
		rq->meta_token[0] = '\0';
		return len;
	}
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		nl = strlen(want[i].name);
		if (len > nl + 1 && strncasecmp(buf, want[i].name, nl) == 0 && buf[nl] == ':') {
			const char *v = buf + nl + 1;
			size_t vl = len - nl - 1;
			char *dst = (char *)rq + want[i].off;

			while (vl > 0 && (*v == ' ' || *v == '\t'))
				v++, vl--;
			while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
				vl--;
			if (vl >= want[i].cap)
				vl = want[i].cap - 1;
			memcpy(dst, v, vl);
			dst[vl] = '\0';
		}
	}
	return len;
}

static size_t
on_body(char *buf, size_t size, size_t n, void *arg)
{
	struct req *rq = arg;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(rq->h, CURLINFO_RESPONSE_CODE, &status);
	if (rq->sink != NULL && status >= 200 && status < 300) {
		if (rq->sink(rq->sink_arg, buf, len) != 0) {
			rq->sink_stopped = 1;
			return 0;
		}
		return len;
	}
	if (rq->resp_len + len > RESP_MAX)
		return 0;
	if (rq->resp_len + len + 1 > rq->resp_cap) {
		size_t cap = (rq->resp_len + len + 1) * 2;
		char *p = realloc(rq->resp, cap);

		if (p == NULL)
			return 0;
		rq->resp = p;
		rq->resp_cap = cap;
	}
	memcpy(rq->resp + rq->resp_len, buf, len);
	rq->resp_len += len;
	rq->resp[rq->resp_len] = '\0';
	return len;
}

static size_t
on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct req *rq = arg;
	size_t len = size * n;

	if (len > rq->body_len - rq->body_off)
		len = rq->body_len - rq->body_off;
	memcpy(buf, rq->body + rq->body_off, len);
	rq->body_off += len;
	return len;
}

static int
on_seek(void *arg, curl_off_t off, int origin)
{
	struct req *rq = arg;

	if (origin != SEEK_SET || off < 0 || (size_t)off > rq->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	rq->body_off = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* Sets up rq for method on url (taken over: freed with rq).  extra: more headers, NULL-ended. */
static int
req_init(struct req *rq, struct s3_dest *d, const char *method, char *url, const char *what,
         const char *payload_sha, const char *const *extra, struct jp_error *err)
{
	memset(rq, 0, sizeof(*rq));
	rq->d = d;
	rq->method = method;
	rq->url = url;
	rq->interruptible = 1;
	rq->deadline_ms = 10L * d->opts.timeout_ms;
	if (url == NULL || (rq->what = strdup(what)) == NULL)
		return oom(err);
	if ((rq->hdrs = jp_s3_headers(payload_sha, d->creds.session_token, extra)) == NULL)
		return oom(err);
	return JP_OK;
}

static void
req_free(struct req *rq)
{
	if (rq->h != NULL) {
		curl_multi_remove_handle(rq->d->multi, rq->h);
		curl_easy_cleanup(rq->h);
		rq->h = NULL;
	}
	curl_slist_free_all(rq->hdrs);
	free(rq->url);
	free(rq->what);
	free(rq->resp);
	memset(rq, 0, sizeof(*rq));
}

/* Starts one try of rq on the destination's multi handle. */
static int
req_start(struct req *rq, struct jp_error *err)
{
	struct s3_dest *d = rq->d;
	CURL *h;

	if (rq->h != NULL) {
		curl_multi_remove_handle(d->multi, rq->h);
		curl_easy_cleanup(rq->h);
	}
	rq->done = 0;
	rq->cc = CURLE_OK;
	rq->status = 0;
	rq->body_off = 0;
	rq->resp_len = 0;
	rq->errbuf[0] = '\0';
	rq->sink_stopped = 0;
	if ((rq->h = h = curl_easy_init()) == NULL)
		return oom(err);
	curl_easy_setopt(h, CURLOPT_URL, rq->url);
	curl_easy_setopt(h, CURLOPT_PRIVATE, rq);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, d->sigv4);
	curl_easy_setopt(h, CURLOPT_USERNAME, d->creds.access_key);
	curl_easy_setopt(h, CURLOPT_PASSWORD, d->creds.secret_key);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, rq->hdrs);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, rq);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, rq);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, rq->errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)d->opts.timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, rq->deadline_ms);
	/* The stall rule: less than 1 KiB/s over --stall seconds ends the request. */
	if (!rq->settle) {
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)(d->opts.stall_ms + 999) / 1000);
	}
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	/* No waiting for "100 Continue": the part is in memory, a refusal costs little. */
	curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
	if (d->ca_bundle != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, d->ca_bundle);
	if (strcmp(rq->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(rq->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, rq);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, rq);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
		curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
	} else if (strcmp(rq->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? (const char *)rq->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	} else if (strcmp(rq->method, "DELETE") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else {
		curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
	}
	if (curl_multi_add_handle(d->multi, h) != CURLM_OK)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": curl_multi_add_handle failed");
	return JP_OK;
}

/* Marks the requests curl has finished; returns how many. */
static int
collect(struct s3_dest *d)
{
	CURLMsg *m;
	int left, n = 0;

	while ((m = curl_multi_info_read(d->multi, &left)) != NULL) {
		struct req *rq = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&rq);
		if (rq == NULL)
			continue;
		rq->cc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &rq->status);
		rq->done = 1;
		n++;
	}
	return n;
}

/* Moves every transfer of d along; unless one finished, waits up to wait_ms for something to
 * happen.  It waits also when nothing runs (parts waiting out a backoff): curl_multi_poll then
 * sleeps, where returning at once would make the callers' loops spin. */
static void
pump(struct s3_dest *d, int wait_ms)
{
	int running;

	curl_multi_perform(d->multi, &running);
	if (collect(d) > 0 || wait_ms <= 0)
		return;
	curl_multi_poll(d->multi, NULL, 0, wait_ms, NULL);
	curl_multi_perform(d->multi, &running);
	collect(d);
}

/* 1 when the finished rq is an answer its caller wants (2xx or an accepted status). */
static int
req_ok(const struct req *rq)
{
	size_t i;

	if (rq->cc != CURLE_OK)
		return 0;
	if (rq->status >= 200 && rq->status < 300)
		return 1;
	for (i = 0; i < sizeof(rq->accept) / sizeof(rq->accept[0]); i++)
		if (rq->accept[i] != 0 && rq->accept[i] == rq->status)
			return 1;
	return 0;
}

/* The S3 error code of a failed answer ("SlowDown"), malloc'd, or NULL. */
static char *
resp_code(const struct req *rq)
{
	char *code = NULL;

	if (rq->resp != NULL)
		jp_s3_xml_text(rq->resp, rq->resp + rq->resp_len, "Code", &code);
	return code;
}

/* The class of a failed try: JP_E_TEMPFAIL (severity JP_RETRY) when another try may work. */
static int
req_class(const struct req *rq)
{
	struct jp_s3_status s = {0, NULL};
	char *code;
	int c;

	if (rq->cc != CURLE_OK) {
		switch (rq->cc) {
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_ISSUER_ERROR:
			return JP_E_NOPERM;
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
			return JP_E_CONFIG;
		case CURLE_OUT_OF_MEMORY:
			return JP_E_SOFTWARE;
		default:
			return JP_E_TEMPFAIL;
		}
	}
	s.http = rq->status;
	s.code = code = resp_code(rq);
	c = jp_s3_classify(&s);
	free(code);
	return c;
}

/* Puts the reason rq failed on err: S3 code, message, key and request id; never a secret. */
static int
req_error(const struct req *rq, int cls, struct jp_error *err)
{
	char *code = NULL, *msg = NULL, *rid = NULL;
	int r;

	if (rq->sink_stopped)
		return jp_error_set(err, JP_E_TEMPFAIL, NAME ": %s: stopped", rq->what);
	if (rq->cc != CURLE_OK) {
		const char *hint = cls == JP_E_NOPERM ? " (the server's TLS certificate is not trusted; "
		                                        "AWS_CA_BUNDLE may name a CA file)"
		                   : rq->cc == CURLE_OPERATION_TIMEDOUT ? " (--timeout, --stall)"
		                                                       : "";
		return jp_error_set(err, cls, NAME ": %s: %s%s", rq->what,
		                    rq->errbuf[0] ? rq->errbuf : curl_easy_strerror(rq->cc), hint);
	}
	if (rq->resp != NULL) {
		jp_s3_xml_text(rq->resp, rq->resp + rq->resp_len, "Code", &code);
		jp_s3_xml_text(rq->resp, rq->resp + rq->resp_len, "Message", &msg);
		jp_s3_xml_text(rq->resp, rq->resp + rq->resp_len, "RequestId", &rid);
	}
	if (code != NULL && strcmp(code, "NoSuchBucket") == 0)
		r = jp_error_set(err, cls, NAME ": %s: %ld NoSuchBucket: bucket '%s' does not exist at %s://%s%s%s (request id %s)",
		                 rq->what, rq->status, rq->d->bucket, rq->d->ep.scheme, rq->d->ep.host,
		                 rq->d->ep.port ? ":" : "", rq->d->ep.port ? rq->d->ep.port : "",
		                 rid ? rid : rq->request_id[0] ? rq->request_id : "none");
	else
		r = jp_error_set(err, cls, NAME ": %s: %ld %s%s%s (request id %s)%s", rq->what, rq->status,
		                 code ? code : rq->status == 404 ? "Not Found"
		                        : rq->status == 403 ? "Forbidden"
		                                            : "error",
		                 msg && *msg ? ": " : "", msg ? msg : "",
		                 rid ? rid : rq->request_id[0] ? rq->request_id : "none",
		                 cls != JP_E_NOPERM ? ""
		                 /* known keys, but not allowed this request */
		                 : code != NULL && strcmp(code, "AccessDenied") == 0
		                     ? "; the key is not allowed this request (its user's or the "
		                       "bucket's policy)"
		                     : "; check the access key and secret (AWS_ACCESS_KEY_ID, "
		                       "AWS_PROFILE, ~/.aws/credentials)");
	free(code);
	free(msg);
	free(rid);
	return r;
}

/* Runs rq to the end, trying again after transient failures. */
static int
req_run(struct req *rq, struct jp_error *err)
{
	struct s3_dest *d = rq->d;
	int tries, r, cls;

	for (tries = 0;; tries++) {
		if ((r = req_start(rq, err)) != JP_OK)
			return r;
		while (!rq->done) {
			if (rq->interruptible && jp_dest_stopping()) {
				curl_multi_remove_handle(d->multi, rq->h);
				return jp_error_set(err, JP_E_TEMPFAIL, NAME ": %s: interrupted", rq->what);
			}
			pump(d, 100);
		}
		curl_multi_remove_handle(d->multi, rq->h);
		if (req_ok(rq))
			return JP_OK;
		cls = req_class(rq);
		if (jp_severity_of(cls) != JP_RETRY || tries >= d->retries || rq->sink_stopped ||
		    (rq->sink != NULL && rq->status >= 200 && rq->status < 300) ||
		    (rq->settle && jp_dest_stopping()))
			return req_error(rq, cls, err);
		{
			int64_t end = jp_now_ms() + jp_backoff_ms(tries);

			while (jp_now_ms() < end) {
				if (rq->interruptible && jp_dest_stopping())
					return req_error(rq, cls, err);
				usleep(20000);
			}
		}
	}
}

/* A request without body: HEAD, GET, DELETE, or POST of nothing. */
static int
simple(struct req *rq, struct s3_dest *d, const char *method, const char *key,
       const struct jp_s3_param *q, size_t nq, const char *what, const char *const *extra,
       struct jp_error *err)
{
	char *query = jp_s3_query(q, nq), *url = NULL, *label;
	const char *named = key ? key : "";
	size_t i;
	int r;

	if (query != NULL)
		url = jp_s3_url(&d->ep, d->bucket, d->path_style, key, query);
	/* A request on the bucket names the prefix it is about, if any. */
	for (i = 0; key == NULL && i < nq; i++)
		if (strcmp(q[i].name, "prefix") == 0 && q[i].value != NULL)
			named = q[i].value;
	label = jp_asprintf("%s s3://%s/%s", what, d->bucket, named);
	r = req_init(rq, d, method, url, label ? label : what, JP_S3_EMPTY_SHA256, extra, err);
	free(query);
	free(label);
	return r;
}

/* ---- open and close ---- */

static void listing_drop(struct s3_dest *d);

static void
s3_close(struct jp_dest *dd)
{
	struct s3_dest *d = (struct s3_dest *)dd;

	listing_drop(d);
	if (d->multi != NULL)
		curl_multi_cleanup(d->multi);
	free(d->bucket);
	free(d->root);
	free(d->region);
	free(d->sigv4);
	jp_s3_endpoint_free(&d->ep);
	jp_s3_creds_free(&d->creds);
	free(d->ca_bundle);
	free(d);
}

/* s3://bucket[/prefix]: the bucket and the prefix, percent-decoded, without '/' at its ends. */
static int
parse_url(struct s3_dest *d, const char *url, struct jp_error *err)
{
	const char *p = url + strlen("s3://"), *slash = strchr(p, '/');
	char why[512], *dec;
	size_t n;

	d->bucket = slash ? strndup(p, (size_t)(slash - p)) : strdup(p);
	if (d->bucket == NULL)
		return oom(err);
	if (!jp_s3_bucket_ok(d->bucket))
		return jp_error_set(err, JP_E_CONFIG,
		                    NAME ": destination '%s': '%s' is not a valid bucket name (3-63 "
		                         "characters of a-z 0-9 . -)", url, d->bucket);
	p = slash ? slash + 1 : "";
	if ((dec = curl_easy_unescape(NULL, p, 0, NULL)) == NULL)
		return oom(err);
	for (p = dec; *p == '/'; p++)
		;
	n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	d->root = strndup(p, n);
	curl_free(dec);
	if (d->root == NULL)
		return oom(err);
	if (*d->root && jp_key_check(d->root, why, sizeof(why)) != 0)
		return jp_error_set(err, JP_E_CONFIG, NAME ": destination '%s': prefix: %s", url, why);
	return JP_OK;
}

static int
s3_check(const char *url, const struct jp_dest_opts *opts, struct jp_error *err)
{
	struct s3_dest *d = calloc(1, sizeof(*d));
	struct jp_s3_endpoint ep;
	const char *endpoint;
	int r;

	if (d == NULL)
		return oom(err);
	r = parse_url(d, url, err);
	free(d->bucket);
	free(d->root);
	free(d);
	if (r != JP_OK || opts == NULL)
		return r;
	/* What s3_open reads before its first request, in its order. */
	{
		struct jp_s3_creds creds;

		memset(&creds, 0, sizeof(creds));
		r = jp_s3_creds_find(&creds, NULL, err);
		jp_s3_creds_free(&creds);
		if (r != JP_OK)
			return r;
	}
	endpoint = jp_options_get(opts->options, NAME ".endpoint");
	if (endpoint == NULL)
		endpoint = env("AWS_ENDPOINT_URL_S3") ? env("AWS_ENDPOINT_URL_S3")
		                                      : env("AWS_ENDPOINT_URL");
	if (endpoint != NULL) {
		if ((r = jp_s3_endpoint_parse(endpoint, &ep, err)) != JP_OK)
			return r;
		jp_s3_endpoint_free(&ep);
	}
	if (env("AWS_CA_BUNDLE") != NULL && access(env("AWS_CA_BUNDLE"), R_OK) != 0)
		return jp_error_set(err, JP_E_CONFIG, NAME ": AWS_CA_BUNDLE=%s: %s",
		                    env("AWS_CA_BUNDLE"), strerror(errno));
	return JP_OK;
}

static int
s3_open(const char *url, const struct jp_dest_opts *opts, struct jp_dest **out,
        struct jp_error *err)
{
	struct s3_dest *d = calloc(1, sizeof(*d));
	const char *endpoint, *region;
	char *aws = NULL;
	struct req rq;
	struct jp_s3_param q[] = {{"list-type", "2"}, {"max-keys", "1"}, {"prefix", NULL}};
	int r;

	*out = NULL;
	if (d == NULL)
		return oom(err);
	pthread_once(&init_once, lib_init);
	d->opts = *opts;
	d->opts.options = NULL; /* read here only: the caller's store need not outlive d */
	d->part_base = jp_s3_part_size(jp_options_size(opts->options, NAME ".part-size",
	                                               JP_S3_DEFAULT_PART),
	                               UINT64_MAX);
	d->retries = opts->retries > 0 ? opts->retries : opts->retries < 0 ? 0 : 3;
	if ((r = parse_url(d, url, err)) != JP_OK ||
	    (r = jp_s3_creds_find(&d->creds, NULL, err)) != JP_OK)
		goto fail;
	region = jp_options_get(opts->options, NAME ".region");
	region = region ? region
	         : env("AWS_REGION") ? env("AWS_REGION")
	         : env("AWS_DEFAULT_REGION") ? env("AWS_DEFAULT_REGION")
	         : d->creds.region ? d->creds.region
	                           : "us-east-1";
	endpoint = jp_options_get(opts->options, NAME ".endpoint");
	if (endpoint == NULL)
		endpoint = env("AWS_ENDPOINT_URL_S3") ? env("AWS_ENDPOINT_URL_S3")
		                                      : env("AWS_ENDPOINT_URL");
	if (endpoint == NULL)
		endpoint = aws = jp_s3_aws_endpoint(region);
	if ((d->region = strdup(region)) == NULL || endpoint == NULL ||
	    (d->sigv4 = jp_s3_sigv4(region)) == NULL) {
		r = oom(err);
		goto fail;
	}
	if ((r = jp_s3_endpoint_parse(endpoint, &d->ep, err)) != JP_OK)
		goto fail;
	d->path_style = jp_options_bool(opts->options, NAME ".path-style", -1);
	if (d->path_style < 0)
		d->path_style = jp_s3_path_style_default(&d->ep, d->bucket);
	if (env("AWS_CA_BUNDLE") != NULL) {
		/* A mistyped path would otherwise look like an untrusted server (77), not a setting. */
		if (access(env("AWS_CA_BUNDLE"), R_OK) != 0) {
			r = jp_error_set(err, JP_E_CONFIG, NAME ": AWS_CA_BUNDLE=%s: %s",
			                 env("AWS_CA_BUNDLE"), strerror(errno));
			goto fail;
		}
		if ((d->ca_bundle = strdup(env("AWS_CA_BUNDLE"))) == NULL) {
			r = oom(err);
			goto fail;
		}
	}
	if ((d->multi = curl_multi_init()) == NULL) {
		r = oom(err);
		goto fail;
	}
	free(aws);
	aws = NULL;
	/* Is the bucket there, and do the keys work?  One listing of at most one key says both,
	 * with the S3 error code a HEAD would not give. */
	q[2].value = *d->root ? d->root : "";
	if ((r = simple(&rq, d, "GET", NULL, q, *d->root ? 3 : 2, "list", NULL, err)) == JP_OK)
		r = req_run(&rq, err);
	req_free(&rq);
	if (r != JP_OK)
		goto fail;
	*out = &d->base;
	return JP_OK;
fail:
	free(aws);
	s3_close(&d->base);
	return r;
}

/* ---- staging ---- */

static int
s3_stage(struct jp_dest *dd, const char *key, const char *token, uint64_t size_hint,
         struct jp_upload **out, struct jp_error *err)
{
	struct s3_dest *d = (struct s3_dest *)dd;
	struct s3_upload *u = calloc(1, sizeof(*u));

	*out = NULL;
	if (u == NULL)
		return oom(err);
	if ((u->objkey = object_key(d, key)) == NULL ||
	    (u->s3url = jp_asprintf("s3://%s/%s", d->bucket, u->objkey)) == NULL) {
		free(u->objkey);
		free(u);
		return oom(err);
	}
	snprintf(u->token, sizeof(u->token), "%s", token);
	u->size_hint = size_hint;
	u->next_num = 1;
	/* Staged from the start: even before the upload is initiated, abort has to run. */
	u->base.staged = 1;
	*out = &u->base;
	return JP_OK;
}

/* CreateMultipartUpload; sha256 (may be NULL) becomes x-amz-meta-sha256 when known already. */
static int
initiate(struct s3_upload *u, const unsigned char *sha256, struct jp_error *err)
{
	struct s3_dest *d = (struct s3_dest *)u->base.dest;
	struct jp_s3_param q[] = {{"uploads", NULL}};
	char hex[65], *meta = NULL, *tok = jp_asprintf("x-amz-meta-jobpub-token: %s", u->token);
	const char *extra[4] = {"Content-Type: application/octet-stream", tok, NULL, NULL};
	struct req rq;
	int r;

	if (tok == NULL)
		return oom(err);
	if (sha256 != NULL) {
		jp_hex(sha256, 32, hex);
		if ((meta = jp_asprintf("x-amz-meta-sha256: %s", hex)) == NULL) {
			free(tok);
			return oom(err);
		}
		extra[2] = meta;
	}
	if ((r = simple(&rq, d, "POST", u->objkey, q, 1, "initiate upload", extra, err)) == JP_OK) {
		/* Short, and a signal mid-way would leave an upload whose id we never learn. */
		rq.interruptible = 0;
		r = req_run(&rq, err);
	}
	if (r == JP_OK) {
		if (jp_s3_xml_text(rq.resp, rq.resp + rq.resp_len, "UploadId", &u->upload_id) != 0)
			r = oom(err);
		else if (u->upload_id == NULL || *u->upload_id == '\0')
			r = jp_error_set(err, JP_E_UNAVAILABLE, NAME ": initiate upload %s: no UploadId in "
			                                             "the answer (request id %s)",
			                 u->s3url, rq.request_id[0] ? rq.request_id : "none");
	}
	req_free(&rq);
	free(tok);
	free(meta);
	return r;
}

static int
part_table_grow(struct s3_upload *u, unsigned num)
{
	if (num <= u->parts_cap)
		return 0;
	{
		size_t cap = u->parts_cap ? u->parts_cap * 2 : 16;
		void *a, *b;

		while (cap < num)
			cap *= 2;
		if ((a = realloc(u->md5s, cap * sizeof(*u->md5s))) == NULL)
			return -1;
		u->md5s = a;
		if ((b = realloc(u->etags, cap * sizeof(*u->etags))) == NULL)
			return -1;
		u->etags = b;
		u->parts_cap = cap;
	}
	return 0;
}

static void
part_free(struct part *p)
{
	if (p == NULL)
		return;
	req_free(&p->rq);
	if (p->buf != NULL)
		__atomic_sub_fetch(&mem_inuse, p->cap, __ATOMIC_RELAXED);
	free(p->buf);
	free(p);
}

static void upload_pump(struct s3_upload *u, int wait_ms);

/* Takes size bytes of the part-buffer budget: always when force, else only within
 * MEMORY_BUDGET.  Returns 1 when taken.  One compare-and-swap, so two lanes cannot both take the
 * last room. */
static int
budget_take(uint64_t size, int force)
{
	uint64_t cur = __atomic_load_n(&mem_inuse, __ATOMIC_RELAXED);

	do {
		if (!force && cur + size > MEMORY_BUDGET)
			return 0;
	} while (!__atomic_compare_exchange_n(&mem_inuse, &cur, cur + size, 1, __ATOMIC_RELAXED,
	                                      __ATOMIC_RELAXED));
	return 1;
}

/*
 * A new part to fill.  Its buffer holds a whole part, or what remains of a file of known size.
 * All lanes together keep at most MEMORY_BUDGET in part buffers, plus at most one part per
 * lane: an upload with nothing in flight always gets its one buffer (so no lane waits for
 * another forever); with parts larger than the budget (--part-size, or a file over 640 GiB)
 * memory is one part per lane.
 */
static int
part_new(struct s3_upload *u, struct jp_error *err)
{
	struct s3_dest *d = (struct s3_dest *)u->base.dest;
	uint64_t size = u->size_hint == UINT64_MAX
	                    ? jp_s3_stream_part_size(d->part_base, u->next_num)
	                    : jp_s3_part_size(d->part_base, u->size_hint);
	struct part *p;

	if (u->size_hint != UINT64_MAX && u->size_hint >= u->offset && u->size_hint - u->offset < size)
		size = u->size_hint - u->offset;
	if (size == 0)
		size = 64 << 10; /* an empty file, or one that grew past its planned size */
	for (;;) {
		if (u->failed)
			return jp_error_set(err, u->perr.code, "%s", u->perr.msg);
		if (budget_take(size, u->n_flight == 0))
			break;
		if (jp_dest_stopping())
			return jp_error_set(err, JP_E_TEMPFAIL, NAME ": %s: interrupted", u->s3url);
		upload_pump(u, 50);
	}
	if ((p = calloc(1, sizeof(*p))) == NULL || (p->buf = malloc(size)) == NULL) {
		free(p);
		__atomic_sub_fetch(&mem_inuse, size, __ATOMIC_RELAXED);
		return oom(err);
	}
	p->cap = size;
	p->num = u->next_num++;
	p->state = P_FILLING;
	u->fill = p;
	return JP_OK;
}

/* Sends the filled part: its MD5 in Content-MD5, the payload itself unsigned (the MD5 and TLS
 * guard it; hashing it again for SigV4 would cost a third pass over every byte). */
static int
part_send(struct s3_upload *u, struct part *p, struct jp_error *err)
{
	struct s3_dest *d = (struct s3_dest *)u->base.dest;
	char num[16], md5hdr[64], *query, *url, *label;
	const char *extra[2] = {md5hdr, NULL};
	struct jp_s3_param q[2];
	unsigned char b64[32];
	int r;

	if (EVP_Digest(p->buf, p->len, p->md5, NULL, EVP_md5(), NULL) != 1)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": MD5 failed");
	EVP_EncodeBlock(b64, p->md5, 16);
	snprintf(md5hdr, sizeof(md5hdr), "Content-MD5: %s", b64);
	snprintf(num, sizeof(num), "%u", p->num);
	q[0].name = "partNumber";
	q[0].value = num;
	q[1].name = "uploadId";
	q[1].value = u->upload_id;
	if ((query = jp_s3_query(q, 2)) == NULL)
		return oom(err);
	url = jp_s3_url(&d->ep, d->bucket, d->path_style, u->objkey, query);
	free(query);
	if ((label = jp_asprintf("PUT %s (part %u)", u->s3url, p->num)) == NULL) {
		free(url);
		return oom(err);
	}
	r = req_init(&p->rq, d, "PUT", url, label, "UNSIGNED-PAYLOAD", extra, err);
	free(label);
	if (r != JP_OK)
		return r;
	p->rq.body = p->buf;
	p->rq.body_len = p->len;
	/* A part may take a while on a slow link: scale the deadline with its size. */
	p->rq.deadline_ms = 10L * d->opts.timeout_ms * (long)(1 + p->len / JP_S3_DEFAULT_PART);
	if ((r = req_start(&p->rq, err)) != JP_OK)
		return r;
	p->state = P_FLIGHT;
	u->flight[u->n_flight++] = p;
	return JP_OK;
}

/* Takes in the parts that finished: acknowledged ones are recorded and their memory freed, a
 * transient failure is sent again after a pause, anything else fails the upload. */
static void
upload_pump(struct s3_upload *u, int wait_ms)
{
	struct s3_dest *d = (struct s3_dest *)u->base.dest;
	size_t i;

	pump(d, wait_ms);
	for (i = 0; i < u->n_flight;) {
		struct part *p = u->flight[i];
		int cls;

		if (p->state == P_WAIT) {
			if (jp_now_ms() >= p->retry_at) {
				struct jp_error e;

				jp_error_clear(&e);
				if (req_start(&p->rq, &e) != JP_OK && !u->failed) {
					u->failed = 1;
					jp_error_set(&u->perr, e.code, "%s", e.msg);
				}
				p->state = P_FLIGHT;
			}
			i++;
			continue;
		}
		if (!p->rq.done) {
			i++;
			continue;
		}
		curl_multi_remove_handle(d->multi, p->rq.h);
		if (req_ok(&p->rq)) {
			memcpy(u->md5s[p->num - 1], p->md5, 16);
			snprintf(u->etags[p->num - 1], sizeof(u->etags[0]), "%s", p->rq.etag);
			u->n_parts++;
			u->flight[i] = u->flight[--u->n_flight];
			part_free(p);
			continue;
		}
		cls = req_class(&p->rq);
		if (jp_severity_of(cls) == JP_RETRY && p->tries < d->retries) {
			int64_t wait = jp_backoff_ms(p->tries++);

			jp_log_warn("%s (part %u): %s; sending it again in %.1f s", u->s3url, p->num,
			            p->rq.cc != CURLE_OK ? (p->rq.errbuf[0] ? p->rq.errbuf
			                                                    : curl_easy_strerror(p->rq.cc))
			                                 : "server error",
			            (double)wait / 1000.0);
			p->retry_at = jp_now_ms() + wait;
			p->state = P_WAIT;
			i++;
			continue;
		}
		if (!u->failed) {
			u->failed = 1;
			req_error(&p->rq, cls, &u->perr);
		}
		i++;
	}
}

/* Hands the filled part to the wire; waits while MAX_INFLIGHT are out. */
static int
submit_fill(struct s3_upload *u, struct jp_error *err)
{
	struct part *p = u->fill;
	int r;

	if (part_table_grow(u, p->num) != 0)
		return oom(err);
	while (u->n_flight >= MAX_INFLIGHT && !u->failed) {
		if (jp_dest_stopping())
			return jp_error_set(err, JP_E_TEMPFAIL, NAME ": %s: interrupted", u->s3url);
		upload_pump(u, 100);
	}
	if (u->failed)
		return jp_error_set(err, u->perr.code, "%s", u->perr.msg);
	u->fill = NULL;
	if ((r = part_send(u, p, err)) != JP_OK) {
		part_free(p);
		return r;
	}
	return JP_OK;
}

/*
 * A full part goes out when more data comes (here) or at finish: a file that fits one part is
 * therefore initiated only at finish, once its SHA-256 is known for x-amz-meta-sha256.
 */
static int
s3_write(struct jp_upload *uu, const void *buf, size_t len, struct jp_error *err)
{
	struct s3_upload *u = (struct s3_upload *)uu;
	const unsigned char *b = buf;
	int r;

	while (len > 0) {
		size_t n;

		if (u->fill != NULL && u->fill->len == u->fill->cap) {
			if (u->upload_id == NULL && (r = initiate(u, NULL, err)) != JP_OK)
				return r;
			if ((r = submit_fill(u, err)) != JP_OK)
				return r;
		}
		if (u->fill == NULL && (r = part_new(u, err)) != JP_OK)
			return r;
		n = u->fill->cap - u->fill->len;
		if (n > len)
			n = len;
		memcpy(u->fill->buf + u->fill->len, b, n);
		u->fill->len += n;
		u->offset += n;
		b += n;
		len -= n;
	}
	upload_pump(u, 0);
	if (u->failed)
		return jp_error_set(err, u->perr.code, "%s", u->perr.msg);
	return JP_OK;
}

/* Every part acknowledged, each checked by the server against its Content-MD5. */
static int
s3_finish(struct jp_upload *uu, uint64_t size, const unsigned char sha256[32],
          struct jp_error *err)
{
	struct s3_upload *u = (struct s3_upload *)uu;
	int r;

	/* An object of one part is initiated only now, so its SHA-256 goes into its metadata. */
	if (u->fill == NULL && u->n_flight == 0 && u->n_parts == 0 && (r = part_new(u, err)) != JP_OK)
		return r; /* an empty file: one empty part */
	if (u->upload_id == NULL && (r = initiate(u, sha256, err)) != JP_OK)
		return r;
	if (u->fill != NULL && (r = submit_fill(u, err)) != JP_OK)
		return r;
	while (u->n_flight > 0 && !u->failed) {
		if (jp_dest_stopping())
			return jp_error_set(err, JP_E_TEMPFAIL, NAME ": %s: interrupted", u->s3url);
		upload_pump(u, 100);
	}
	if (u->failed)
		return jp_error_set(err, u->perr.code, "%s", u->perr.msg);
	if (u->offset != size)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": %s: sent %llu bytes of %llu", u->s3url,
		                    (unsigned long long)u->offset, (unsigned long long)size);
	return JP_OK;
}

/* Drops the parts still in memory or on the wire. */
static void
drop_parts(struct s3_upload *u)
{
	size_t i;

	for (i = 0; i < u->n_flight; i++)
		part_free(u->flight[i]);
	u->n_flight = 0;
	part_free(u->fill);
	u->fill = NULL;
}

static int
abort_id(struct s3_dest *d, const char *objkey, const char *upload_id, struct jp_error *err)
{
	struct jp_s3_param q[] = {{"uploadId", upload_id}};
	struct req rq;
	int r;

	if ((r = simple(&rq, d, "DELETE", objkey, q, 1, "abort upload", NULL, err)) == JP_OK) {
		rq.accept[0] = 404; /* gone already (aborted or completed by a retried call) */
		rq.interruptible = 0; /* clean-up runs after a signal too */
		r = req_run(&rq, err);
	}
	req_free(&rq);
	return r;
}

/* jobpub's metadata on an object. */
struct meta {
	char sha[72];   /* x-amz-meta-sha256: set on objects of one part */
	char token[24]; /* x-amz-meta-jobpub-token: the attempt that staged it */
};

static int head(struct s3_dest *d, const char *objkey, struct jp_stat *st, struct meta *m,
                int interruptible, struct jp_error *err);

/*
 * Removes our object from its key, if it is there: a commit that failed after sending its
 * Complete (its answer lost, the server gone, the HEAD after it failed) may have made it
 * visible, and a rollback undoes a commit that succeeded.  Only an object with our token goes:
 * another writer's object under the key since then stays (a plain DELETE would remove it).  An
 * object that replaced another (--overwrite) keeps the new content, as on the other stores.
 */
static int
unpublish(struct s3_upload *u, struct jp_error *err)
{
	struct s3_dest *d = (struct s3_dest *)u->base.dest;
	struct jp_stat st;
	struct meta m;
	struct req rq;
	int r;

	if ((r = head(d, u->objkey, &st, &m, 0, err)) != JP_OK) {
		jp_log_warn("rollback: %s may hold this attempt's data (the server did not answer the "
		            "HEAD that would tell); jobpub verify will tell",
		            u->s3url);
		return r;
	}
	if (!st.exists || strcmp(m.token, u->token) != 0) {
		if (st.exists && u->base.committed)
			jp_log_warn("rollback: %s kept: another writer's object replaced ours since the "
			            "commit",
			            u->s3url);
		u->completing = 0;
		return JP_OK;
	}
	if (u->before_exists) {
		jp_log_warn("rollback: %s was replaced by this attempt (--overwrite) and keeps the new "
		            "content",
		            u->s3url);
		u->completing = 0;
		return JP_OK;
	}
	listing_drop(d);
	if ((r = simple(&rq, d, "DELETE", u->objkey, NULL, 0, "DELETE", NULL, err)) == JP_OK) {
		rq.accept[0] = 404;
		rq.interruptible = 0;
		r = req_run(&rq, err);
	}
	req_free(&rq);
	if (r == JP_OK)
		u->completing = 0;
	return r;
}

static int
s3_abort(struct jp_upload *uu, struct jp_error *err)
{
	struct s3_upload *u = (struct s3_upload *)uu;
	struct s3_dest *d = (struct s3_dest *)u->base.dest;
	int r = JP_OK;

	drop_parts(u);
	if (u->upload_id != NULL && (r = abort_id(d, u->objkey, u->upload_id, err)) == JP_OK) {
		free(u->upload_id);
		u->upload_id = NULL;
	}
	/* Independent of the abort: a refused AbortMultipartUpload (no permission for it, a server
	 * that keeps failing) must not leave a completed object of ours visible, which gc would
	 * not find.  The worse result wins; the first message stays. */
	if (u->completing) {
		int r2 = unpublish(u, err);

		if (r2 < r)
			r = r2;
	}
	if (r == JP_OK)
		u->base.staged = 0;
	return r;
}

static int
s3_uncommit(struct jp_upload *uu, struct jp_error *err)
{
	return unpublish((struct s3_upload *)uu, err);
}

static void
s3_upload_free(struct jp_upload *uu)
{
	struct s3_upload *u = (struct s3_upload *)uu;

	drop_parts(u);
	free(u->objkey);
	free(u->s3url);
	free(u->upload_id);
	free(u->md5s);
	free(u->etags);
	free(u);
}

/* HEAD of a full object key: exists, size, mtime, ETag, our metadata (m may be NULL).  Not
 * interruptible when it must settle what a Complete did. */
static int
head(struct s3_dest *d, const char *objkey, struct jp_stat *st, struct meta *m, int interruptible,
     struct jp_error *err)
{
	struct req rq;
	int r;

	memset(st, 0, sizeof(*st));
	if (m != NULL)
		memset(m, 0, sizeof(*m));
	if ((r = simple(&rq, d, "HEAD", objkey, NULL, 0, "HEAD", NULL, err)) != JP_OK)
		goto out;
	rq.accept[0] = 404;
	rq.interruptible = interruptible;
	if ((r = req_run(&rq, err)) != JP_OK)
		goto out;
	if (rq.status == 404)
		goto out;
	{
		curl_off_t len = -1, ft = -1;

		curl_easy_getinfo(rq.h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
		curl_easy_getinfo(rq.h, CURLINFO_FILETIME_T, &ft);
		st->exists = 1;
		st->size = len >= 0 ? (uint64_t)len : 0;
		st->mtime = ft >= 0 ? (time_t)ft
		            : rq.last_modified[0] ? curl_getdate(rq.last_modified, NULL)
		                                  : 0;
		snprintf(st->etag, sizeof(st->etag), "%s", rq.etag);
		if (m != NULL) {
			snprintf(m->sha, sizeof(m->sha), "%s", rq.meta_sha);
			snprintf(m->token, sizeof(m->token), "%s", rq.meta_token);
		}
	}
out:
	req_free(&rq);
	return r;
}

/* The XML body of CompleteMultipartUpload. */
static char *
complete_body(const struct s3_upload *u)
{
	size_t cap = 128 + (size_t)u->n_parts * 160, i;
	char *b = malloc(cap), *p = b;

	if (b == NULL)
		return NULL;
	p += sprintf(p, "<CompleteMultipartUpload>");
	for (i = 0; i < u->n_parts; i++)
		p += sprintf(p, "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1,
		             u->etags[i]);
	sprintf(p, "</CompleteMultipartUpload>");
	return b;
}

/* CompleteMultipartUpload.  *precondition: the server refused it because the key exists. */
static int
complete(struct s3_upload *u, int overwrite, int *precondition, struct jp_error *err)
{
	struct s3_dest *d = (struct s3_dest *)u->base.dest;
	struct jp_s3_param q[] = {{"uploadId", u->upload_id}};
	char *body = complete_body(u), *query = NULL, *url = NULL, *label = NULL, *code = NULL;
	unsigned char sha[32];
	char hex[65];
	const char *extra[3] = {"Content-Type: application/xml", overwrite ? NULL : "If-None-Match: *",
	                        NULL};
	struct req rq;
	int r, tries;

	memset(&rq, 0, sizeof(rq));
	*precondition = 0;
	if (body == NULL || (query = jp_s3_query(q, 1)) == NULL ||
	    (url = jp_s3_url(&d->ep, d->bucket, d->path_style, u->objkey, query)) == NULL ||
	    (label = jp_asprintf("complete upload %s", u->s3url)) == NULL) {
		r = oom(err);
		free(url);
		goto out;
	}
	EVP_Digest(body, strlen(body), sha, NULL, EVP_sha256(), NULL);
	jp_hex(sha, 32, hex);
	if ((r = req_init(&rq, d, "POST", url, label, hex, extra, err)) != JP_OK)
		goto out;
	rq.body = (const unsigned char *)body;
	rq.body_len = strlen(body);
	/* Once sent, a Complete must end with a known outcome: a signal does not cut it short, and
	 * the server may assemble a large object for minutes without sending a byte. */
	rq.interruptible = 0;
	rq.settle = 1;
	rq.accept[0] = 412;
	rq.accept[1] = 404; /* NoSuchUpload: a retried Complete whose first try went through */
	/* S3 may answer 200 and put an error in the body: that is retried here like a 5xx. */
	for (tries = 0;; tries++) {
		if ((r = req_run(&rq, err)) != JP_OK)
			goto out;
		free(code);
		code = resp_code(&rq);
		if (rq.status == 404 || rq.status == 412 || code == NULL)
			break;
		{
			struct jp_s3_status s = {500, code};
			int cls = jp_s3_classify(&s);

			if (jp_severity_of(cls) != JP_RETRY || tries >= d->retries || jp_dest_stopping()) {
				rq.status = 500;
				r = req_error(&rq, cls, err);
				goto out;
			}
			usleep((useconds_t)jp_backoff_ms(tries) * 1000);
		}
	}
	if (rq.status == 404 || rq.status == 412) {
		/* NoSuchUpload, or the key exists: a retried Complete whose first try went through
		 * (its answer lost) finds our own object there.  Anything else: not ours. */
		struct jp_stat st;
		struct meta m;

		if ((r = head(d, u->objkey, &st, &m, 0, err)) != JP_OK)
			goto out;
		if (rq.status == 412 &&
		    !(st.exists && st.size == u->offset && strcmp(m.token, u->token) == 0)) {
			*precondition = 1;
			goto out;
		}
		if (!st.exists || st.size != u->offset || strcmp(m.token, u->token) != 0) {
			r = jp_error_set(err, JP_E_UNAVAILABLE,
			                 NAME ": complete upload %s: the upload is gone (NoSuchUpload) and "
			                      "the key does not hold our data; was it aborted by gc?",
			                 u->s3url);
			goto out;
		}
		snprintf(u->etag, sizeof(u->etag), "%s", st.etag);
		goto out;
	}
	{
		char *etag = NULL;

		jp_s3_xml_text(rq.resp, rq.resp + rq.resp_len, "ETag", &etag);
		snprintf(u->etag, sizeof(u->etag), "%s", etag ? etag : "");
		free(etag);
	}
out:
	free(code);
	req_free(&rq);
	free(body);
	free(query);
	free(label);
	return r;
}

/* Two ETags name the same object: quotes and a weak marker aside, equal. */
static int
etag_eq(const char *a, const char *b)
{
	size_t la, lb;

	if (strncmp(a, "W/", 2) == 0)
		a += 2;
	if (strncmp(b, "W/", 2) == 0)
		b += 2;
	if (*a == '"')
		a++;
	if (*b == '"')
		b++;
	la = strlen(a);
	lb = strlen(b);
	if (la > 0 && a[la - 1] == '"')
		la--;
	if (lb > 0 && b[lb - 1] == '"')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0; /* hex digits in either case */
}

static int
s3_commit(struct jp_upload *uu, int overwrite, int *exists, int *replaced,
          struct jp_error *err)
{
	struct s3_upload *u = (struct s3_upload *)uu;
	struct s3_dest *d = (struct s3_dest *)u->base.dest;
	struct jp_stat before, after;
	struct meta m;
	int r, precondition;

	if (u->upload_id == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": commit of %s before it was staged",
		                    u->s3url);
	listing_drop(d); /* what the prefix held before is not what it holds from now on */
	/* A HEAD first: servers that ignore If-None-Match on Complete would overwrite silently. */
	if ((r = head(d, u->objkey, &before, NULL, 1, err)) != JP_OK)
		return r;
	if (before.exists && !overwrite) {
		*exists = 1;
		return JP_OK;
	}
	/* From here until the object is confirmed, a failure leaves the key's state unknown: abort
	 * (the rollback) then looks and removes our object if it is there. */
	u->completing = 1;
	u->before_exists = before.exists;
	if ((r = complete(u, overwrite, &precondition, err)) != JP_OK)
		return r;
	if (precondition) {
		u->completing = 0;
		*exists = 1;
		return JP_OK;
	}
	/* The upload is consumed: whatever happens next, there is nothing left to abort. */
	free(u->upload_id);
	u->upload_id = NULL;
	/* The object after: another writer's Complete between our HEAD and now shows here, as a
	 * different ETag (where Complete told ours; Ceph answers an empty one) or without our
	 * attempt's token. */
	if ((r = head(d, u->objkey, &after, &m, 0, err)) != JP_OK)
		return r;
	if (!after.exists || strcmp(m.token, u->token) != 0) {
		u->completing = 0; /* not ours: the rollback leaves it alone */
		return jp_error_set(err, JP_E_UNAVAILABLE,
		                    NAME ": %s was written by someone else while we committed it (ETag "
		                         "%s, ours %s); not recorded",
		                    u->s3url, after.exists ? after.etag : "none",
		                    u->etag[0] ? u->etag : "?");
	}
	if (u->etag[0] != '\0' && !etag_eq(after.etag, u->etag))
		/* Our token but not the ETag our Complete returned: nothing is recorded that cannot be
		 * verified, and `completing` stays set so the rollback removes our object. */
		return jp_error_set(err, JP_E_UNAVAILABLE,
		                    NAME ": %s carries this attempt's token but ETag %s, not the %s its "
		                         "Complete returned; not recorded",
		                    u->s3url, after.etag, u->etag);
	u->completing = 0;
	snprintf(u->etag, sizeof(u->etag), "%s", after.etag);
	snprintf(u->base.etag, sizeof(u->base.etag), "%s", u->etag);
	*replaced = before.exists;
	u->base.staged = 0;
	u->base.committed = 1;
	return JP_OK;
}

/* ---- inspecting ---- */

static void
listing_drop(struct s3_dest *d)
{
	size_t i;

	for (i = 0; i < d->n_objs; i++)
		free(d->objs[i].key);
	free(d->objs);
	d->objs = NULL;
	d->n_objs = d->cap_objs = 0;
	d->listed = 0;
}

static int list_objects(struct s3_dest *d, const char *full, unsigned max_pages, jp_list_fn fn,
                        void *arg, int *truncated, int *stopped, struct jp_error *err);

static int
listing_add(void *arg, const char *key, const struct jp_stat *st)
{
	struct s3_dest *d = arg;

	if (d->n_objs == d->cap_objs) {
		size_t cap = d->cap_objs ? 2 * d->cap_objs : 256;
		struct listed_obj *o = realloc(d->objs, cap * sizeof(*o));

		if (o == NULL)
			return 1;
		d->objs = o;
		d->cap_objs = cap;
	}
	if ((d->objs[d->n_objs].key = strdup(key)) == NULL)
		return 1;
	d->objs[d->n_objs++].st = *st;
	return 0;
}

static int
listed_cmp(const void *a, const void *b)
{
	return strcmp(((const struct listed_obj *)a)->key, ((const struct listed_obj *)b)->key);
}

/* Lists the prefix once: at most 2000 objects are worth it (two answers instead of a HEAD per
 * file); a prefix that holds more (a grid of many jobs) is checked key by key. */
static int
listing_load(struct s3_dest *d, struct jp_error *err)
{
	char *full = *d->root ? jp_asprintf("%s/", d->root) : strdup("");
	int truncated = 0, r;

	if (full == NULL)
		return oom(err);
	r = list_objects(d, full, 2, listing_add, d, &truncated, NULL, err);
	free(full);
	if (r != JP_OK) {
		listing_drop(d);
		return r;
	}
	if (truncated) {
		listing_drop(d);
		d->listed = -1;
		return JP_OK;
	}
	if (d->n_objs > 0) /* an empty listing has no array, and qsort(NULL, 0) is undefined */
		qsort(d->objs, d->n_objs, sizeof(*d->objs), listed_cmp);
	d->listed = 1;
	return JP_OK;
}

/* From the prefix's listing while it is fresh (before anything of this publish is committed),
 * else a HEAD. */
static int
s3_stat(struct jp_dest *dd, const char *key, struct jp_stat *st, struct jp_error *err)
{
	struct s3_dest *d = (struct s3_dest *)dd;
	char *ok;
	int r;

	if (d->listed == 0 && (r = listing_load(d, err)) != JP_OK)
		return r;
	if (d->listed == 1) {
		struct listed_obj k = {(char *)key, {0}}, *hit;

		/* bsearch on an empty listing's NULL array is undefined */
		hit = d->n_objs > 0 ? bsearch(&k, d->objs, d->n_objs, sizeof(*d->objs), listed_cmp)
		                    : NULL;
		memset(st, 0, sizeof(*st));
		if (hit != NULL)
			*st = hit->st;
		return JP_OK;
	}
	if ((ok = object_key(d, key)) == NULL)
		return oom(err);
	r = head(d, ok, st, NULL, 1, err);
	free(ok);
	return r;
}

static int
s3_remove(struct jp_dest *dd, const char *key, struct jp_error *err)
{
	struct s3_dest *d = (struct s3_dest *)dd;
	char *ok = object_key(d, key);
	struct req rq;
	int r;

	if (ok == NULL)
		return oom(err);
	listing_drop(d);
	if ((r = simple(&rq, d, "DELETE", ok, NULL, 0, "DELETE", NULL, err)) == JP_OK) {
		rq.accept[0] = 404;
		rq.interruptible = 0;
		r = req_run(&rq, err);
	}
	req_free(&rq);
	free(ok);
	return r;
}

static int
s3_read(struct jp_dest *dd, const char *key, jp_read_fn fn, void *arg, struct jp_error *err)
{
	struct s3_dest *d = (struct s3_dest *)dd;
	char *ok = object_key(d, key);
	struct req rq;
	int r;

	if (ok == NULL)
		return oom(err);
	if ((r = simple(&rq, d, "GET", ok, NULL, 0, "GET", NULL, err)) == JP_OK) {
		rq.sink = fn;
		rq.sink_arg = arg;
		/* A read-back of a big object is a transfer: no total deadline, the stall rule holds. */
		rq.deadline_ms = 0;
		r = req_run(&rq, err);
	}
	req_free(&rq);
	free(ok);
	return r;
}

/* jobpub's own metadata where the object has it (objects of one part: the hash was known
 * before the upload began); else the object is read back and hashed. */
static int
s3_digest(struct jp_dest *dd, const char *key, unsigned char sha256[32], struct jp_error *err)
{
	struct s3_dest *d = (struct s3_dest *)dd;
	struct jp_stat st;
	struct meta m;
	char *ok = object_key(d, key);
	int r;

	if (ok == NULL)
		return oom(err);
	r = head(d, ok, &st, &m, 1, err);
	free(ok);
	if (r != JP_OK)
		return r;
	if (jp_unhex(m.sha, sha256, 32) == 0)
		return JP_OK;
	return jp_dest_hash(dd, key, sha256, err);
}

/* ---- listing (gc) ---- */

static time_t
iso_time(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
		return 0;
	return timegm(&tm);
}

/* One page of a listing: its XML answer, or an error. */
static int
list_page(struct s3_dest *d, struct req *rq, const struct jp_s3_param *q, size_t nq,
          struct jp_error *err)
{
	int r;

	if ((r = simple(rq, d, "GET", NULL, q, nq, "list", NULL, err)) == JP_OK)
		r = req_run(rq, err);
	if (r == JP_OK && rq->resp == NULL)
		r = jp_error_set(err, JP_E_UNAVAILABLE, NAME ": list s3://%s: empty answer", d->bucket);
	return r;
}

/* The key below the destination, or NULL when k is not below it. */
static const char *
below_root(const struct s3_dest *d, const char *k)
{
	size_t n = strlen(d->root);

	if (n == 0)
		return k;
	return strncmp(k, d->root, n) == 0 && k[n] == '/' ? k + n + 1 : NULL;
}

/* Objects below the full prefix (ListObjectsV2), page by page; max_pages 0: all.  *truncated
 * (may be NULL) tells whether pages were left, *stopped (may be NULL) whether fn said stop. */
static int
list_objects(struct s3_dest *d, const char *full, unsigned max_pages, jp_list_fn fn, void *arg,
             int *truncated, int *stopped, struct jp_error *err)
{
	char *token = NULL;
	unsigned pages = 0;
	int r = JP_OK, stop = 0;

	if (truncated != NULL)
		*truncated = 0;
	do {
		struct jp_s3_param q[3] = {{"list-type", "2"}, {"prefix", full}, {"continuation-token", token}};
		struct req rq;
		const char *pos, *in, *in_end;
		char *trunc = NULL;

		if (max_pages > 0 && pages++ == max_pages) {
			if (truncated != NULL)
				*truncated = 1;
			break;
		}
		if ((r = list_page(d, &rq, q, token ? 3 : 2, err)) != JP_OK) {
			req_free(&rq);
			break;
		}
		pos = rq.resp;
		while (!stop && r == JP_OK &&
		       jp_s3_xml_next(&pos, rq.resp + rq.resp_len, "Contents", &in, &in_end)) {
			char *k = NULL, *size = NULL, *lm = NULL, *etag = NULL;
			const char *rel;
			struct jp_stat st;

			/* An entry that could not be read must not look absent: out of memory fails. */
			if (jp_s3_xml_text(in, in_end, "Key", &k) != 0 ||
			    jp_s3_xml_text(in, in_end, "Size", &size) != 0 ||
			    jp_s3_xml_text(in, in_end, "LastModified", &lm) != 0 ||
			    jp_s3_xml_text(in, in_end, "ETag", &etag) != 0)
				r = oom(err);
			memset(&st, 0, sizeof(st));
			st.exists = 1;
			st.size = size ? strtoull(size, NULL, 10) : 0;
			st.mtime = iso_time(lm);
			snprintf(st.etag, sizeof(st.etag), "%s", etag ? etag : "");
			if (r == JP_OK && k != NULL && (rel = below_root(d, k)) != NULL && *rel)
				stop = fn(arg, rel, &st) != 0;
			free(k);
			free(size);
			free(lm);
			free(etag);
		}
		free(token);
		token = NULL;
		if (r == JP_OK && jp_s3_xml_text(rq.resp, rq.resp + rq.resp_len, "IsTruncated", &trunc) != 0)
			r = oom(err);
		if (r == JP_OK && trunc != NULL && strcmp(trunc, "true") == 0) {
			if (jp_s3_xml_text(rq.resp, rq.resp + rq.resp_len, "NextContinuationToken", &token) != 0)
				r = oom(err);
			else if (token == NULL || *token == '\0') {
				/* More there, and no way to ask for it: never take a part for the whole. */
				free(token);
				token = NULL;
				if (truncated != NULL)
					*truncated = 1;
				else
					r = jp_error_set(err, JP_E_UNAVAILABLE,
					                 NAME ": list s3://%s/%s: the listing is truncated and "
					                      "has no continuation token",
					                 d->bucket, full);
			}
		}
		free(trunc);
		req_free(&rq);
	} while (r == JP_OK && !stop && token != NULL);
	free(token);
	if (stopped != NULL)
		*stopped = stop;
	if (r == JP_OK && stop && truncated != NULL)
		r = oom(err); /* the callback could not keep it */
	return r;
}

static int
s3_list(struct jp_dest *dd, const char *prefix, jp_list_fn fn, void *arg, struct jp_error *err)
{
	struct s3_dest *d = (struct s3_dest *)dd;
	char *full = *d->root ? jp_asprintf("%s/%s", d->root, prefix) : strdup(prefix);
	char *kmark = NULL, *umark = NULL;
	int r = JP_OK, stop = 0;

	if (full == NULL)
		return oom(err);
	if ((r = list_objects(d, full, 0, fn, arg, NULL, &stop, err)) != JP_OK) {
		free(full);
		return r;
	}
	/* Incomplete multipart uploads (ListMultipartUploads): what killed publishers left; not
	 * once fn said stop among the objects. */
	while (r == JP_OK && !stop) {
		struct jp_s3_param q[4] = {{"uploads", NULL}, {"prefix", full}, {"key-marker", kmark},
		                           {"upload-id-marker", umark}};
		struct req rq;
		const char *pos, *in, *in_end;
		char *trunc = NULL;

		if ((r = list_page(d, &rq, q, kmark ? 4 : 2, err)) != JP_OK) {
			req_free(&rq);
			break;
		}
		pos = rq.resp;
		while (!stop && r == JP_OK &&
		       jp_s3_xml_next(&pos, rq.resp + rq.resp_len, "Upload", &in, &in_end)) {
			char *k = NULL, *id = NULL, *when = NULL;
			const char *rel;
			struct jp_stat st;

			if (jp_s3_xml_text(in, in_end, "Key", &k) != 0 ||
			    jp_s3_xml_text(in, in_end, "UploadId", &id) != 0 ||
			    jp_s3_xml_text(in, in_end, "Initiated", &when) != 0)
				r = oom(err);
			memset(&st, 0, sizeof(st));
			st.exists = 1;
			st.mtime = iso_time(when);
			st.upload = id;
			if (r == JP_OK && k != NULL && id != NULL && (rel = below_root(d, k)) != NULL && *rel)
				stop = fn(arg, rel, &st) != 0;
			free(k);
			free(id);
			free(when);
		}
		free(kmark);
		free(umark);
		kmark = umark = NULL;
		if (r == JP_OK && jp_s3_xml_text(rq.resp, rq.resp + rq.resp_len, "IsTruncated", &trunc) != 0)
			r = oom(err);
		if (r == JP_OK && trunc != NULL && strcmp(trunc, "true") == 0) {
			if (jp_s3_xml_text(rq.resp, rq.resp + rq.resp_len, "NextKeyMarker", &kmark) != 0 ||
			    jp_s3_xml_text(rq.resp, rq.resp + rq.resp_len, "NextUploadIdMarker", &umark) != 0)
				r = oom(err);
			else if (kmark == NULL || umark == NULL)
				/* More there, and no way to ask for it: gc must not report a part as all. */
				r = jp_error_set(err, JP_E_UNAVAILABLE,
				                 NAME ": list uploads s3://%s/%s: the listing is truncated and "
				                      "has no next markers",
				                 d->bucket, full);
		}
		free(trunc);
		req_free(&rq);
		if (r != JP_OK || kmark == NULL || umark == NULL)
			break;
	}
	free(kmark);
	free(umark);
	free(full);
	return r;
}

static int
s3_abort_upload(struct jp_dest *dd, const char *key, const char *upload, struct jp_error *err)
{
	struct s3_dest *d = (struct s3_dest *)dd;
	char *ok = object_key(d, key);
	int r;

	if (ok == NULL)
		return oom(err);
	r = abort_id(d, ok, upload, err);
	free(ok);
	return r;
}

static const char *const s3_schemes[] = {"s3", NULL};

/* A region names a host (s3.REGION.amazonaws.com) and the signing scope: letters, digits, '-'. */
static int
s3_check_option(const struct jp_option_def *def, const char *value, char *why, size_t len)
{
	if (strcmp(def->name, "region") == 0 &&
	    strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
	        strlen(value)) {
		snprintf(why, len, "'%s' is not a region name (letters, digits and '-', e.g. "
		                   "eu-central-1)", value);
		return -1;
	}
	return 0;
}

/* What `-o s3.KEY=VALUE` and the manifest's s3: section may set (options.h); the order is the
 * one messages list them in. */
static const struct jp_option_def s3_options[] = {
	{.name = "endpoint", .type = JP_OPTION_STRING, .alias = "s3-endpoint", .arg = "URL",
	 .def = "$AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS's for the region",
	 .help = "S3 endpoint https://host[:port]"},
	{.name = "region", .type = JP_OPTION_STRING, .arg = "NAME",
	 .def = "$AWS_REGION, $AWS_DEFAULT_REGION, the profile's, else us-east-1",
	 .help = "region requests are signed for"},
	{.name = "path-style", .type = JP_OPTION_BOOL,
	 .def = "false on AWS's endpoints for a bucket without '.', else true",
	 .help = "address the bucket in the path, not the host name"},
	{.name = "part-size", .type = JP_OPTION_SIZE, .alias = "part-size",
	 .min = 5ULL << 20, .max = 5ULL << 30, .example = "64MiB", .def = "16MiB",
	 .help = "multipart part size, grown so 10,000 parts hold the file"},
	{.name = "access-key-id", .type = JP_OPTION_SECRET_ENV, .env = "AWS_ACCESS_KEY_ID",
	 .help = "access key (else $AWS_PROFILE's in ~/.aws/credentials)"},
	{.name = "secret-access-key", .type = JP_OPTION_SECRET_ENV, .env = "AWS_SECRET_ACCESS_KEY",
	 .help = "secret key of the access key"},
	{.name = "session-token", .type = JP_OPTION_SECRET_ENV, .env = "AWS_SESSION_TOKEN",
	 .help = "session token of temporary credentials"},
	{.name = NULL},
};

const struct jp_backend jp_backend_s3 = {
	.name = NAME,
	.schemes = s3_schemes,
	.open = s3_open,
	.close = s3_close,
	.stage = s3_stage,
	.write = s3_write,
	.finish = s3_finish,
	.commit = s3_commit,
	.abort = s3_abort,
	.upload_free = s3_upload_free,
	.stat = s3_stat,
	.remove = s3_remove,
	.digest = s3_digest,
	.read = s3_read,
	.list = s3_list,
	.abort_upload = s3_abort_upload,
	.uncommit = s3_uncommit, /* only while the key still holds our object */
	.sync = NULL,
	.check = s3_check,
	.options = s3_options,
	.check_option = s3_check_option,
};
