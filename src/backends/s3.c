/*
 * s3.c - S3 request building, XML extraction, the AWS credential chain and error classes.
 * Nothing here talks to the network (backend-s3.c does); see s3.h for the contracts.
 */
#include "config.h"

#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "s3.h"
#include "util.h"

static int
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

char *
jp_s3_encode(const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(3 * strlen(s) + 1), *p = out;

	if (out == NULL)
		return NULL;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (unreserved(c) || (keep_slash && c == '/')) {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

struct enc_param {
	char *name, *value;
};

static int
param_cmp(const void *a, const void *b)
{
	const struct enc_param *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

char *
jp_s3_query(const struct jp_s3_param *p, size_t n)
{
	struct enc_param *e = calloc(n + 1, sizeof(*e));
	size_t i, len = 1;
	char *out = NULL, *q;

	if (e == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		e[i].name = jp_s3_encode(p[i].name, 0);
		e[i].value = jp_s3_encode(p[i].value ? p[i].value : "", 0);
		if (e[i].name == NULL || e[i].value == NULL)
			goto out;
		len += strlen(e[i].name) + strlen(e[i].value) + 2;
	}
	/* SigV4 sorts by the encoded names, byte by byte. */
	qsort(e, n, sizeof(*e), param_cmp);
	if ((out = malloc(len)) == NULL)
		goto out;
	q = out;
	*q = '\0';
	for (i = 0; i < n; i++)
		q += sprintf(q, "%s%s=%s", i ? "&" : "", e[i].name, e[i].value);
out:
	for (i = 0; i < n; i++) {
		free(e[i].name);
		free(e[i].value);
	}
	free(e);
	return out;
}

char *
jp_s3_sigv4(const char *region)
{
	return jp_asprintf("aws:amz:%s:s3", region);
}

struct curl_slist *
jp_s3_headers(const char *payload_sha, const char *token, const char *const *extra)
{
	struct curl_slist *l = NULL, *n;
	char *h;
	size_t i;

	if ((h = jp_asprintf("x-amz-content-sha256: %s", payload_sha)) == NULL)
		return NULL;
	l = curl_slist_append(NULL, h);
	free(h);
	if (l == NULL)
		return NULL;
	if (token != NULL) {
		/* The token is a secret: the line built here is wiped (curl keeps its own copy). */
		if ((h = jp_asprintf("x-amz-security-token: %s", token)) == NULL)
			goto fail;
		n = curl_slist_append(l, h);
		explicit_bzero(h, strlen(h));
		free(h);
		if (n == NULL)
			goto fail;
	}
	for (i = 0; extra != NULL && extra[i] != NULL; i++)
		if (curl_slist_append(l, extra[i]) == NULL)
			goto fail;
	return l;
fail:
	curl_slist_free_all(l);
	return NULL;
}

void
jp_s3_endpoint_free(struct jp_s3_endpoint *ep)
{
	free(ep->scheme);
	free(ep->host);
	free(ep->port);
	free(ep->path);
	memset(ep, 0, sizeof(*ep));
}

/* An endpoint as messages may show it: one that could carry a secret (user:password@, a
 * pre-signed query) is not shown at all. */
static const char *
shown(const char *url)
{
	return strpbrk(url, "@?#") != NULL ? "(hidden)" : url;
}

int
jp_s3_endpoint_parse(const char *url, struct jp_s3_endpoint *ep, struct jp_error *err)
{
	CURLU *u = curl_url();
	char *user = NULL, *query = NULL, *frag = NULL, *path = NULL, *host = NULL;
	int r = JP_OK;
	size_t n;

	memset(ep, 0, sizeof(*ep));
	if (u == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, "s3: out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &ep->scheme, 0) != CURLUE_OK ||
	    (strcmp(ep->scheme, "https") != 0 && strcmp(ep->scheme, "http") != 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		r = jp_error_set(err, JP_E_CONFIG,
		                 "s3: endpoint '%s': expected an http(s) URL such as https://s3.example.org",
		                 shown(url));
		goto out;
	}
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
	if (user != NULL || query != NULL || frag != NULL) {
		r = jp_error_set(err, JP_E_CONFIG,
		                 "s3: endpoint '%s': no user, query or fragment, please (credentials come "
		                 "from the environment or ~/.aws)", shown(url));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &ep->port, 0) != CURLUE_OK)
		ep->port = NULL;
	curl_url_get(u, CURLUPART_PATH, &path, 0);
	n = path ? strlen(path) : 0;
	while (n > 0 && path[n - 1] == '/')
		n--;
	if ((ep->path = strndup(path ? path : "", n)) == NULL || (ep->host = strdup(host)) == NULL)
		r = jp_error_set(err, JP_E_SOFTWARE, "s3: out of memory");
out:
	curl_free(user);
	curl_free(query);
	curl_free(frag);
	curl_free(path);
	curl_free(host);
	curl_url_cleanup(u);
	if (r != JP_OK)
		jp_s3_endpoint_free(ep);
	return r;
}

char *
jp_s3_aws_endpoint(const char *region)
{
	return jp_asprintf("https://s3.%s.amazonaws.com", region);
}

static int
is_ipv4(const char *s)
{
	int dots = 0;

	for (; *s; s++) {
		if (*s == '.')
			dots++;
		else if (!isdigit((unsigned char)*s))
			return 0;
	}
	return dots == 3;
}

int
jp_s3_path_style_default(const struct jp_s3_endpoint *ep, const char *bucket)
{
	size_t n = strlen(ep->host);
	const char *aws = ".amazonaws.com";

	if (ep->host[0] == '[' || is_ipv4(ep->host) || strchr(bucket, '.') != NULL)
		return 1;
	return !(n > strlen(aws) && strcmp(ep->host + n - strlen(aws), aws) == 0);
}

char *
jp_s3_url(const struct jp_s3_endpoint *ep, const char *bucket, int path_style, const char *key,
          const char *query)
{
	char *ekey = jp_s3_encode(key ? key : "", 1), *url;
	const char *q = query && *query ? "?" : "";
	char port[16] = "";

	if (ekey == NULL)
		return NULL;
	if (ep->port != NULL)
		snprintf(port, sizeof(port), ":%s", ep->port);
	if (path_style)
		url = jp_asprintf("%s://%s%s%s/%s%s%s%s%s", ep->scheme, ep->host, port, ep->path, bucket,
		                  *ekey ? "/" : "", ekey, q, query ? query : "");
	else
		url = jp_asprintf("%s://%s.%s%s%s/%s%s%s", ep->scheme, bucket, ep->host, port, ep->path,
		                  ekey, q, query ? query : "");
	free(ekey);
	return url;
}

int
jp_s3_bucket_ok(const char *b)
{
	size_t n = strlen(b), i;

	if (n < 3 || n > 63 || is_ipv4(b))
		return 0;
	for (i = 0; i < n; i++)
		if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '.' ||
		      b[i] == '-'))
			return 0;
	return isalnum((unsigned char)b[0]) && isalnum((unsigned char)b[n - 1]);
}

/* ---- XML ---- */

int
jp_s3_xml_next(const char **pos, const char *end, const char *tag, const char **inner,
               const char **inner_end)
{
	size_t tl = strlen(tag);
	const char *p = *pos;

	for (; p + tl + 2 <= end; p++) {
		const char *q;

		if (p[0] != '<' || memcmp(p + 1, tag, tl) != 0 || (p[tl + 1] != '>' && p[tl + 1] != ' ' && p[tl + 1] != '/'))
			continue;
		if ((q = memchr(p, '>', (size_t)(end - p))) == NULL)
			return 0;
		if (q[-1] == '/') { /* <Tag/>: empty */
			*inner = *inner_end = q + 1;
			*pos = q + 1;
			return 1;
		}
		*inner = q + 1;
		for (q = *inner; q + tl + 3 <= end; q++)
			if (q[0] == '<' && q[1] == '/' && memcmp(q + 2, tag, tl) == 0 && q[tl + 2] == '>') {
				*inner_end = q;
				*pos = q + tl + 3;
				return 1;
			}
		return 0;
	}
	return 0;
}

int
jp_s3_xml_text(const char *p, const char *end, const char *tag, char **out)
{
	const char *in, *in_end;
	char *o;

	*out = NULL;
	if (!jp_s3_xml_next(&p, end, tag, &in, &in_end))
		return 0;
	if ((o = *out = malloc((size_t)(in_end - in) + 1)) == NULL)
		return -1;
	while (in < in_end) {
		static const struct {
			const char *ent;
			char c;
		} ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
		size_t i;
		int done = 0;

		if (*in == '&') {
			for (i = 0; i < sizeof(ents) / sizeof(ents[0]) && !done; i++) {
				size_t l = strlen(ents[i].ent);
				if ((size_t)(in_end - in) >= l && memcmp(in, ents[i].ent, l) == 0) {
					*o++ = ents[i].c;
					in += l;
					done = 1;
				}
			}
			if (!done && in + 2 < in_end && in[1] == '#') {
				char *e;
				unsigned long cp = in[2] == 'x' ? strtoul(in + 3, &e, 16) : strtoul(in + 2, &e, 10);
				if (e < in_end && *e == ';' && cp > 0 && cp < 0x80) {
					*o++ = (char)cp;
					in = e + 1;
					done = 1;
				}
			}
		}
		if (!done)
			*o++ = *in++;
	}
	*o = '\0';
	return 0;
}

/* ---- errors ---- */

int
jp_s3_classify(const struct jp_s3_status *s)
{
	static const char *const denied[] = {
		"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "ExpiredToken",
		"InvalidToken", "TokenRefreshRequired", "InvalidSecurity", "AllAccessDisabled",
		"AuthorizationHeaderMalformed", "RequestTimeTooSkewed",
	};
	static const char *const transient[] = {
		"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling",
		"ThrottlingException", "BadDigest", "IncompleteBody",
	};
	size_t i;

	if (s->code != NULL) {
		for (i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
			if (strcmp(s->code, denied[i]) == 0)
				return JP_E_NOPERM;
		for (i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
			if (strcmp(s->code, transient[i]) == 0)
				return JP_E_TEMPFAIL;
		/* The store is full for us (RGW's quotas answer 403): 69 like ENOSPC or EDQUOT on a
		 * file system, not a credentials problem. */
		if (strcmp(s->code, "NoSuchBucket") == 0 || strcmp(s->code, "QuotaExceeded") == 0 ||
		    strcmp(s->code, "EntityTooLarge") == 0)
			return JP_E_UNAVAILABLE;
	}
	if (s->http == 0 || s->http >= 500 || s->http == 429 || s->http == 408)
		return JP_E_TEMPFAIL;
	if (s->http == 401 || s->http == 403)
		return JP_E_NOPERM;
	return JP_E_UNAVAILABLE;
}

/* ---- credentials ---- */

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Reads keys of [section] in an INI file (AWS style).  Returns 1 when the section exists, 0 when
 * not (or no file), -1 when out of memory.  Values found replace NULL fields only. */
static int
ini_section(const char *file, const char *section, struct jp_s3_creds *c)
{
	FILE *fp = fopen(file, "re");
	char *line = NULL; /* any length: session tokens have no stated bound */
	size_t cap = 0;
	int in = 0, found = 0;

	if (fp == NULL)
		return 0;
	while (getline(&line, &cap, fp) != -1) {
		char *l = trim(line), *eq, *k, *v, **dst = NULL;

		if (*l == '#' || *l == ';' || *l == '\0')
			continue;
		if (*l == '[') {
			char *e = strchr(l, ']');
			if (e != NULL)
				*e = '\0';
			in = strcmp(trim(l + 1), section) == 0;
			found |= in;
			continue;
		}
		if (!in || (eq = strchr(l, '=')) == NULL)
			continue;
		*eq = '\0';
		k = trim(l);
		v = trim(eq + 1);
		if (strcmp(k, "aws_access_key_id") == 0)
			dst = &c->access_key;
		else if (strcmp(k, "aws_secret_access_key") == 0)
			dst = &c->secret_key;
		else if (strcmp(k, "aws_session_token") == 0)
			dst = &c->session_token;
		else if (strcmp(k, "region") == 0)
			dst = &c->region;
		if (dst != NULL && *dst == NULL && *v != '\0' && (*dst = strdup(v)) == NULL) {
			found = -1;
			break;
		}
	}
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	fclose(fp);
	return found;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

int
jp_s3_creds_find(struct jp_s3_creds *c, const char *home, struct jp_error *err)
{
	const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : env("AWS_DEFAULT_PROFILE");
	char *cred_file = NULL, *conf_file = NULL, *section = NULL;
	struct passwd *pw;
	int r = JP_OK, a, b;

	memset(c, 0, sizeof(*c));
	if (home == NULL)
		home = env("HOME");
	if (home == NULL && (pw = getpwuid(getuid())) != NULL)
		home = pw->pw_dir;
	if (home == NULL)
		home = "/";
	if (env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) {
		if ((c->access_key = strdup(env("AWS_ACCESS_KEY_ID"))) == NULL ||
		    (c->secret_key = strdup(env("AWS_SECRET_ACCESS_KEY"))) == NULL ||
		    (env("AWS_SESSION_TOKEN") &&
		     (c->session_token = strdup(env("AWS_SESSION_TOKEN"))) == NULL) ||
		    (c->source = strdup("the environment")) == NULL)
			goto oom;
		return JP_OK;
	}
	if (profile == NULL)
		profile = "default";
	cred_file = env("AWS_SHARED_CREDENTIALS_FILE") ? strdup(env("AWS_SHARED_CREDENTIALS_FILE"))
	                                               : jp_asprintf("%s/.aws/credentials", home);
	conf_file = env("AWS_CONFIG_FILE") ? strdup(env("AWS_CONFIG_FILE"))
	                                   : jp_asprintf("%s/.aws/config", home);
	section = strcmp(profile, "default") == 0 ? strdup("default")
	                                          : jp_asprintf("profile %s", profile);
	if (cred_file == NULL || conf_file == NULL || section == NULL)
		goto oom;
	if ((a = ini_section(cred_file, profile, c)) < 0 || (b = ini_section(conf_file, section, c)) < 0)
		goto oom;
	if (c->access_key != NULL && c->secret_key != NULL) {
		if ((c->source = jp_asprintf("%s [%s]", cred_file, profile)) == NULL)
			goto oom;
		goto out;
	}
	if (a == 0 && b == 0 && strcmp(profile, "default") != 0)
		r = jp_error_set(err, JP_E_CONFIG,
		                 "s3: profile '%s' (AWS_PROFILE) is in neither %s nor %s", profile,
		                 cred_file, conf_file);
	else
		r = jp_error_set(err, JP_E_CONFIG,
		                 "s3: no credentials: looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
		                 "%s [%s] and %s [%s]", cred_file, profile, conf_file, section);
	goto out;
oom:
	r = jp_error_set(err, JP_E_SOFTWARE, "s3: out of memory");
out:
	free(cred_file);
	free(conf_file);
	free(section);
	if (r != JP_OK)
		jp_s3_creds_free(c);
	return r;
}

static void
wipe(char **s)
{
	if (*s != NULL) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void
jp_s3_creds_free(struct jp_s3_creds *c)
{
	wipe(&c->access_key);
	wipe(&c->secret_key);
	wipe(&c->session_token);
	free(c->region);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

/* ---- parts ---- */

uint64_t
jp_s3_part_size(uint64_t base, uint64_t size)
{
	if (base < JP_S3_MIN_PART)
		base = JP_S3_MIN_PART;
	if (base > JP_S3_MAX_PART)
		base = JP_S3_MAX_PART;
	while (size != UINT64_MAX && base < JP_S3_MAX_PART && size / JP_S3_MAX_PARTS >= base)
		base *= 2;
	return base > JP_S3_MAX_PART ? JP_S3_MAX_PART : base;
}

uint64_t
jp_s3_stream_part_size(uint64_t base, unsigned n)
{
	unsigned doublings = n > 0 ? (n - 1) / 1000 : 0;

	base = jp_s3_part_size(base, UINT64_MAX);
	while (doublings-- > 0 && base < JP_S3_MAX_PART)
		base *= 2;
	return base > JP_S3_MAX_PART ? JP_S3_MAX_PART : base;
}

void
jp_s3_multipart_etag(const unsigned char (*md5s)[16], unsigned n, char *out, size_t len)
{
	unsigned char md[16];
	char hex[33];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, md5s, (size_t)n * 16) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
		snprintf(out, len, "?");
		EVP_MD_CTX_free(ctx);
		return;
	}
	EVP_MD_CTX_free(ctx);
	jp_hex(md, 16, hex);
	snprintf(out, len, "\"%s-%u\"", hex, n);
}
