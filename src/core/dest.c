/*
 * dest.c - picks the backend for a URL and turns its optional slots into fallbacks or
 * "not supported", so the publish core never tests a slot.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"
#include "util.h"

#define NAME "dest"

extern const struct jp_backend jp_backend_posix, jp_backend_sftp, jp_backend_s3;

const struct jp_backend *const jp_backends[] = {
	&jp_backend_posix,
	&jp_backend_sftp,
	&jp_backend_s3,
	NULL,
};

/* Every scheme of the registry, ", "-separated, for messages. */
static void
scheme_list(char *buf, size_t len)
{
	const char *const *s;
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; jp_backends[i] != NULL; i++)
		for (s = jp_backends[i]->schemes; *s != NULL && n + 1 < len; s++)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n > 0 ? ", " : "", *s);
}

/* Length of the URL scheme before "://", or 0 when there is none. */
static size_t
scheme_len(const char *url)
{
	size_t n = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");

	return n > 0 && strncmp(url + n, "://", 3) == 0 ? n : 0;
}

/* Length of url without trailing '/', keeping the root of its path: "file:///a/" -> "file:///a",
 * "file:///" and "/" stay as they are. */
static size_t
trimmed_len(const char *url)
{
	const char *sep = strstr(url, "://");
	size_t len = strlen(url), min = 0;

	if (sep != NULL) {
		min = (size_t)(sep - url) + 3;
		while (url[min] != '\0' && url[min] != '/')
			min++; /* the authority */
	}
	if (url[min] == '/')
		min++;
	while (len > min && url[len - 1] == '/')
		len--;
	return len;
}

static int
find_backend(const char *url, const struct jp_backend **out, struct jp_error *err)
{
	const struct jp_backend *be = NULL;
	size_t n = scheme_len(url), i;
	char list[128];

	if (n == 0 && url[0] == '/') {
		be = jp_backends[0]; /* a plain absolute path is a POSIX destination */
	} else if (n == 0) {
		return jp_error_set(err, JP_E_CONFIG,
		                    NAME ": destination '%s': expected a URL (file:///path) or an absolute "
		                    "path",
		                    url);
	} else {
		for (i = 0; jp_backends[i] != NULL && be == NULL; i++) {
			const char *const *s;
			for (s = jp_backends[i]->schemes; *s != NULL; s++)
				if (strlen(*s) == n && strncasecmp(*s, url, n) == 0)
					be = jp_backends[i];
		}
		if (be == NULL) {
			scheme_list(list, sizeof(list));
			return jp_error_set(err, JP_E_CONFIG,
			                    NAME ": destination '%s': unknown scheme '%.*s' (supported: %s)",
			                    url, (int)n, url, list);
		}
	}
	*out = be;
	return JP_OK;
}

/* 1 when url carries a password (scheme://user:secret@host): it would end up in argv, logs
 * and the catalogue. */
int
jp_url_has_password(const char *url)
{
	const char *p = strstr(url, "://"), *end, *at, *colon;

	if (p == NULL)
		return 0;
	p += 3;
	end = p + strcspn(p, "/");
	at = memchr(p, '@', (size_t)(end - p));
	colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
	return colon != NULL;
}

int
jp_dest_check_url(const char *url, struct jp_error *err)
{
	const struct jp_backend *be;
	int r;

	if (jp_url_has_password(url))
		return jp_error_set(err, JP_E_CONFIG,
		                    NAME ": destination: a password in the URL is refused (it would be "
		                    "stored and logged); use a key");
	if ((r = find_backend(url, &be, err)) != JP_OK)
		return r;
	return be->check != NULL ? be->check(url, NULL, err) : JP_OK;
}

int
jp_dest_check_settings(const char *url, const struct jp_dest_opts *opts, struct jp_error *err)
{
	const struct jp_backend *be;
	int r;

	if ((r = jp_dest_check_url(url, err)) != JP_OK || (r = find_backend(url, &be, err)) != JP_OK)
		return r;
	return be->check != NULL ? be->check(url, opts, err) : JP_OK;
}

int
jp_dest_open(const char *url, const struct jp_dest_opts *opts, struct jp_dest **out,
             struct jp_error *err)
{
	const struct jp_backend *be = NULL;
	struct jp_dest *d = NULL;
	size_t len;
	int r;

	*out = NULL;
	if ((r = jp_dest_check_url(url, err)) != JP_OK || (r = find_backend(url, &be, err)) != JP_OK)
		return r;
	if ((r = be->open(url, opts, &d, err)) != JP_OK)
		return r;
	d->be = be;
	len = trimmed_len(url);
	if ((d->url = strndup(url, len)) == NULL) {
		be->close(d);
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
	}
	*out = d;
	return JP_OK;
}

void
jp_dest_close(struct jp_dest *d)
{
	char *url;

	if (d == NULL)
		return;
	url = d->url;
	d->be->close(d);
	free(url);
}

const char *
jp_dest_backend(const struct jp_dest *d)
{
	return d->be->name;
}

const char *
jp_dest_url(const struct jp_dest *d)
{
	return d->url;
}

char *
jp_dest_key_url(const struct jp_dest *d, const char *key)
{
	if (d == NULL)
		return NULL;
	return jp_url_join(d->url, key);
}

char *
jp_url_join(const char *base, const char *key)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t ulen = strlen(base), i;
	char *s, *p;

	ulen = trimmed_len(base);
	/* Keys are file names; what a URL parser would misread is percent-encoded. */
	if ((s = malloc(ulen + 1 + 3 * strlen(key) + 1)) == NULL)
		return NULL;
	memcpy(s, base, ulen);
	p = s + ulen;
	if (ulen == 0 || base[ulen - 1] != '/')
		*p++ = '/';
	for (i = 0; key[i] != '\0'; i++) {
		unsigned char c = (unsigned char)key[i];
		/* A destination given as a plain path records plain paths. */
		if (base[0] != '/' && (c <= 0x20 || c >= 0x7f || c == '%' || c == '?' || c == '#' || c == '"' ||
		    c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' || c == '{' ||
		    c == '|' || c == '}')) {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		} else {
			*p++ = (char)c;
		}
	}
	*p = '\0';
	return s;
}

int
jp_key_check(const char *key, char *why, size_t whylen)
{
	const char *p = key, *slash;
	size_t len = strlen(key);

	if (len == 0 || len > 4096) {
		snprintf(why, whylen, "remote name is %s", len ? "too long" : "empty");
		return -1;
	}
	if (key[0] == '/') {
		snprintf(why, whylen, "remote name '%s' is absolute; it must be relative to the "
		                      "destination", key);
		return -1;
	}
	for (; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(why, whylen, "remote name '%s' contains a control character", key);
			return -1;
		}
	for (p = key;; p = slash + 1) {
		size_t n;

		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			snprintf(why, whylen, "remote name '%s' %s", key,
			         n == 0 ? "has an empty component ('//' or a trailing '/')"
			                : "escapes the destination ('.' or '..' component)");
			return -1;
		}
		if (n > 255) {
			snprintf(why, whylen, "remote name '%s' has a component longer than 255 bytes", key);
			return -1;
		}
		if (strncmp(p, JP_TMP_PREFIX, strlen(JP_TMP_PREFIX)) == 0) {
			snprintf(why, whylen, "remote name '%s' uses jobpub's temporary prefix '%s'", key,
			         JP_TMP_PREFIX);
			return -1;
		}
		if (slash == NULL)
			break;
	}
	return 0;
}

/* A lane whose connection could not be (re)opened is NULL: the failure paths that still walk
 * every lane (rollback, clean-up) meet it, and must get an error, not a crash. */
static int
not_open(struct jp_error *err)
{
	return jp_error_set(err, JP_E_SOFTWARE, NAME ": destination not open");
}

int
jp_dest_stage(struct jp_dest *d, const char *key, const char *token, uint64_t size_hint,
              struct jp_upload **out, struct jp_error *err)
{
	char why[512];
	char *k;
	int r;

	*out = NULL;
	if (d == NULL)
		return not_open(err);
	if (jp_key_check(key, why, sizeof(why)) != 0)
		return jp_error_set(err, JP_E_DATA, NAME ": %s", why);
	if ((k = strdup(key)) == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
	if ((r = d->be->stage(d, key, token, size_hint, out, err)) != JP_OK) {
		free(k);
		return r;
	}
	(*out)->dest = d;
	(*out)->key = k;
	return JP_OK;
}

int
jp_upload_write(struct jp_upload *u, const void *buf, size_t len, struct jp_error *err)
{
	int r = u->dest->be->write(u, buf, len, err);

	if (r == JP_OK)
		u->written += len;
	return r;
}

int
jp_upload_finish(struct jp_upload *u, uint64_t size, const unsigned char sha256[32],
                 struct jp_error *err)
{
	if (u->written != size)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": %s: %s: wrote %llu bytes of %llu",
		                    u->dest->be->name, u->key, (unsigned long long)u->written,
		                    (unsigned long long)size);
	return u->dest->be->finish(u, size, sha256, err);
}

int
jp_upload_commit(struct jp_upload *u, int overwrite, int *exists, int *replaced,
                 struct jp_error *err)
{
	*exists = *replaced = 0;
	return u->dest->be->commit(u, overwrite, exists, replaced, err);
}

int
jp_upload_abort(struct jp_upload *u, struct jp_error *err)
{
	if (u == NULL || !u->staged)
		return JP_OK;
	return u->dest->be->abort(u, err);
}

int
jp_upload_uncommit(struct jp_upload *u, struct jp_error *err)
{
	int r;

	if (u == NULL || !u->committed)
		return JP_OK;
	r = u->dest->be->uncommit != NULL ? u->dest->be->uncommit(u, err)
	                                  : u->dest->be->remove(u->dest, u->key, err);
	if (r == JP_OK)
		u->committed = 0;
	return r;
}

void
jp_upload_free(struct jp_upload *u)
{
	struct jp_error e;
	char *key;

	if (u == NULL)
		return;
	jp_error_clear(&e);
	if (jp_upload_abort(u, &e) != JP_OK)
		jp_log_warn("%s (jobpub gc finds what is left)", e.msg);
	key = u->key;
	u->dest->be->upload_free(u);
	free(key);
}

const char *
jp_upload_key(const struct jp_upload *u)
{
	return u->key;
}

const char *
jp_upload_etag(const struct jp_upload *u)
{
	return u->etag;
}

int
jp_upload_committed(const struct jp_upload *u)
{
	return u->committed;
}

struct jp_dest *
jp_upload_dest(const struct jp_upload *u)
{
	return u->dest;
}

int
jp_dest_stat(struct jp_dest *d, const char *key, struct jp_stat *st, struct jp_error *err)
{
	memset(st, 0, sizeof(*st));
	if (d == NULL)
		return not_open(err);
	return d->be->stat(d, key, st, err);
}

int
jp_dest_remove(struct jp_dest *d, const char *key, struct jp_error *err)
{
	if (d == NULL)
		return not_open(err);
	return d->be->remove(d, key, err);
}

static int (*stop_fn)(void);

void
jp_dest_set_stop(int (*stop)(void))
{
	stop_fn = stop;
}

int
jp_dest_stopping(void)
{
	return stop_fn != NULL && stop_fn();
}

static int
hash_chunk(void *arg, const void *buf, size_t len)
{
	/* A read-back of a big object stops at a signal like a transfer does. */
	if (stop_fn != NULL && stop_fn())
		return 1;
	jp_sha256_update(arg, buf, len);
	return 0;
}

int
jp_dest_digest(struct jp_dest *d, const char *key, unsigned char sha256[32], struct jp_error *err)
{
	if (d == NULL)
		return not_open(err);
	if (d->be->digest != NULL)
		return d->be->digest(d, key, sha256, err);
	return jp_dest_hash(d, key, sha256, err);
}

int
jp_dest_hash(struct jp_dest *d, const char *key, unsigned char sha256[32], struct jp_error *err)
{
	struct jp_sha256 h;
	int r;

	if (d == NULL)
		return not_open(err);
	if (d->be->read == NULL)
		return jp_error_set(err, JP_E_UNAVAILABLE,
		                    NAME ": %s: reading back '%s' is not supported",
		                    d->be->name, key);
	if (jp_sha256_init(&h) != 0)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
	r = d->be->read(d, key, hash_chunk, &h, err);
	if (r == JP_OK)
		jp_sha256_final(&h, sha256);
	else
		jp_sha256_free(&h);
	return r;
}

void
jp_dest_cancel(struct jp_dest *d)
{
	if (d != NULL && d->be->cancel != NULL)
		d->be->cancel(d);
}

int
jp_dest_can_cancel(const struct jp_dest *d)
{
	return d != NULL && d->be->cancel != NULL;
}

int
jp_dest_sync(struct jp_dest *d, struct jp_error *err)
{
	/* Nothing was committed through a destination that never opened. */
	if (d == NULL)
		return JP_OK;
	return d->be->sync != NULL ? d->be->sync(d, err) : JP_OK;
}

int
jp_dest_abort_upload(struct jp_dest *d, const char *key, const char *upload,
                     struct jp_error *err)
{
	if (d == NULL)
		return not_open(err);
	if (d->be->abort_upload == NULL)
		return jp_error_set(err, JP_E_UNAVAILABLE,
		                    NAME ": %s: incomplete uploads are not supported",
		                    d->be->name);
	return d->be->abort_upload(d, key, upload, err);
}

int
jp_dest_list(struct jp_dest *d, const char *prefix, jp_list_fn fn, void *arg,
             struct jp_error *err)
{
	if (d == NULL)
		return not_open(err);
	if (d->be->list == NULL)
		return jp_error_set(err, JP_E_UNAVAILABLE, NAME ": %s: listing is not supported",
		                    d->be->name);
	return d->be->list(d, prefix, fn, arg, err);
}

enum jp_name_kind
jp_tmp_name_kind(const char *base, char tok[17])
{
	size_t n = strlen(JP_TMP_PREFIX);

	if (strncmp(base, JP_TMP_DISPLACED, strlen(JP_TMP_DISPLACED)) == 0)
		return JP_NAME_DISPLACED;
	if (strncmp(base, JP_TMP_PREFIX, n) != 0 || strspn(base + n, "0123456789abcdef") < 16)
		return JP_NAME_OTHER;
	memcpy(tok, base + n, 16);
	tok[16] = '\0';
	return JP_NAME_STAGED;
}

struct jp_dest *
jp_dest_cache_get(struct jp_dest_cache *c, const char *url, const struct jp_dest_opts *o,
                  struct jp_error *err)
{
	struct jp_dest *d = NULL;
	struct jp_error e;
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->urls[i], url) == 0) {
			if (c->dests[i] == NULL)
				jp_error_set(err, c->codes[i], "%s", c->errors[i]);
			return c->dests[i];
		}
	jp_error_clear(&e);
	jp_dest_open(url, o, &d, &e);
	/* Each array is replaced only once it has grown: a failed realloc keeps the old one (and
	 * c->n entries in every array), so the cache stays whole for the next call and the free. */
	{
		char **u = realloc(c->urls, (c->n + 1) * sizeof(*u)), **m, *us, *ms;
		struct jp_dest **dv;
		int *cv;

		if (u != NULL)
			c->urls = u;
		dv = u ? realloc(c->dests, (c->n + 1) * sizeof(*dv)) : NULL;
		if (dv != NULL)
			c->dests = dv;
		m = dv ? realloc(c->errors, (c->n + 1) * sizeof(*m)) : NULL;
		if (m != NULL)
			c->errors = m;
		cv = m ? realloc(c->codes, (c->n + 1) * sizeof(*cv)) : NULL;
		if (cv != NULL)
			c->codes = cv;
		us = cv ? strdup(url) : NULL;
		ms = us ? strdup(e.msg) : NULL;
		if (ms == NULL) {
			free(us);
			jp_dest_close(d);
			jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
			return NULL;
		}
		c->urls[c->n] = us;
		c->errors[c->n] = ms;
	}
	c->dests[c->n] = d;
	c->codes[c->n] = e.code;
	c->n++;
	if (d == NULL)
		jp_error_set(err, e.code, "%s", e.msg);
	return d;
}

void
jp_dest_cache_free(struct jp_dest_cache *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		jp_dest_close(c->dests[i]);
		free(c->urls[i]);
		free(c->errors[i]);
	}
	free(c->urls);
	free(c->dests);
	free(c->errors);
	free(c->codes);
	memset(c, 0, sizeof(*c));
}
