/*
 * gc.c - the deletion policy of `jobpub gc` (gc.h): list each destination, classify every
 * object, delete only what no live publisher can own.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "gc.h"

/* The catalogue's files under one destination: key -> seen in the listing. */
struct known {
	char **keys;
	char **jobs;
	char **urls;
	int *seen;
	size_t n;
};

struct run {
	struct jp_catalog *cat;
	const struct jp_gc_opts *o;
	struct jp_dest *d;
	const char *url;
	jp_gc_fn fn;
	void *arg;
	struct jp_gc_result *res;
	struct known k;
	int worst; /* severity of the failures */
	int oom;   /* a callback ran out of memory: what it stopped is incomplete, not done */
};

static void
report(struct run *r, const char *kind, const char *url, const char *job, int64_t size,
       int64_t age, const char *action)
{
	struct jp_gc_report rep = {JP_GC_OBJECT, kind, url, job, size, age, action};

	if (r->fn != NULL)
		r->fn(r->arg, &rep);
}

/* The first failure's class is the run's; every failure counts for the severity. */
static void
failed(struct run *r, int code)
{
	int sev = jp_severity_of(code);

	if (r->res->failed == 0)
		r->res->failed = code;
	r->worst = jp_worst(r->worst, sev);
}

static int
collect_file(void *arg, const char *job, const struct jp_file_info *f)
{
	struct run *r = arg;
	struct known *k = &r->k;

	if (f->destination == NULL || f->key == NULL || strcmp(f->destination, r->url) != 0)
		return 0;
	/* Each array keeps its n entries when another one's growth fails (known_free walks them). */
	char **keys = realloc(k->keys, (k->n + 1) * sizeof(char *));
	char **jobs = keys ? realloc(k->jobs, (k->n + 1) * sizeof(char *)) : NULL;
	char **urls = jobs ? realloc(k->urls, (k->n + 1) * sizeof(char *)) : NULL;
	int *seen = urls ? realloc(k->seen, (k->n + 1) * sizeof(int)) : NULL;

	k->keys = keys ? keys : k->keys;
	k->jobs = jobs ? jobs : k->jobs;
	k->urls = urls ? urls : k->urls;
	k->seen = seen ? seen : k->seen;
	if (seen == NULL) {
		r->oom = 1;
		return 1;
	}
	k->keys[k->n] = strdup(f->key);
	k->jobs[k->n] = strdup(job);
	k->urls[k->n] = strdup(f->remote);
	k->seen[k->n] = 0;
	if (!k->keys[k->n] || !k->jobs[k->n] || !k->urls[k->n]) {
		free(k->keys[k->n]);
		free(k->jobs[k->n]);
		free(k->urls[k->n]);
		r->oom = 1;
		return 1;
	}
	k->n++;
	return 0;
}

static void
known_free(struct known *k)
{
	size_t i;

	for (i = 0; i < k->n; i++) {
		free(k->keys[i]);
		free(k->jobs[i]);
		free(k->urls[i]);
	}
	free(k->keys);
	free(k->jobs);
	free(k->urls);
	free(k->seen);
	memset(k, 0, sizeof(*k));
}

/*
 * An incomplete upload (a store with multipart uploads): staged data no listing of objects
 * shows, kept (and billed) until aborted.  Its key is the final name, so it carries no token:
 * one initiated after a live lease began may belong to that publisher and is kept; others are
 * aborted once old enough.
 */
static void
visit_upload(struct run *r, const char *key, const char *url, const struct jp_stat *st,
             int64_t age)
{
	struct jp_error e;

	if (jp_catalog_lease_since(r->cat, st->mtime)) {
		r->res->in_use++;
		report(r, "in-use", url, NULL, -1, age,
		       "kept: incomplete upload started while a publisher holds a lease");
		return;
	}
	if (age < r->o->older_s)
		return;
	r->res->temps++;
	jp_error_clear(&e);
	if (!r->o->apply) {
		report(r, "upload", url, NULL, -1, age, "incomplete upload; would abort (--apply)");
	} else if (jp_dest_abort_upload(r->d, key, st->upload, &e) == JP_OK) {
		r->res->deleted++;
		report(r, "upload", url, NULL, -1, age, "aborted");
	} else {
		report(r, "upload", url, NULL, -1, age, e.msg);
		failed(r, e.code);
	}
}

/* A staged file: deleted when old enough and no live lease holds its token. */
static void
visit_staged(struct run *r, const char *key, const char *url, const char *tok,
             const struct jp_stat *st, int64_t age)
{
	struct jp_error e;

	if (jp_catalog_token_leased(r->cat, tok)) {
		r->res->in_use++;
		report(r, "in-use", url, NULL, (int64_t)st->size, age,
		       "kept: its publisher holds the lease");
		return;
	}
	if (age < r->o->older_s)
		return;
	r->res->temps++;
	r->res->temp_bytes += st->size;
	jp_error_clear(&e);
	if (!r->o->apply) {
		report(r, "temporary", url, NULL, (int64_t)st->size, age, "would delete (--apply)");
	} else if (jp_dest_remove(r->d, key, &e) == JP_OK) {
		r->res->deleted++;
		report(r, "temporary", url, NULL, (int64_t)st->size, age, "deleted");
	} else {
		report(r, "temporary", url, NULL, (int64_t)st->size, age, e.msg);
		failed(r, e.code);
	}
}

static int
visit(void *arg, const char *key, const struct jp_stat *st)
{
	struct run *r = arg;
	const char *base = strrchr(key, '/');
	char tok[17], *url;
	int64_t age = (int64_t)(time(NULL) - st->mtime);
	size_t i;

	base = base ? base + 1 : key;
	if ((url = jp_dest_key_url(r->d, key)) == NULL) {
		r->oom = 1;
		return 1;
	}
	if (st->upload != NULL) {
		visit_upload(r, key, url, st, age);
	} else {
		switch (jp_tmp_name_kind(base, tok)) {
		case JP_NAME_DISPLACED:
			r->res->displaced++;
			report(r, "displaced", url, NULL, (int64_t)st->size, age,
			       "kept: a replaced file moved aside by --overwrite; restore it if its final "
			       "name is missing, else delete it by hand");
			break;
		case JP_NAME_STAGED:
			visit_staged(r, key, url, tok, st, age);
			break;
		case JP_NAME_OTHER:
			for (i = 0; i < r->k.n && strcmp(r->k.keys[i], key) != 0; i++)
				;
			if (i < r->k.n) {
				r->k.seen[i] = 1;
			} else {
				r->res->unreferenced++;
				report(r, "unreferenced", url, NULL, (int64_t)st->size, -1, NULL);
			}
			break;
		}
	}
	free(url);
	return 0;
}

/* One destination: list it, classify every object, report what the catalogue misses. */
static void
gc_one(struct run *r, struct jp_dest_cache *cache)
{
	struct jp_gc_report rep = {JP_GC_DEST, NULL, r->url, NULL, -1, -1, NULL};
	struct jp_dest_opts dopts = r->o->dopts;
	struct jp_error e;
	size_t i;

	dopts.readonly = 1;
	jp_error_clear(&e);
	if (r->fn != NULL)
		r->fn(r->arg, &rep);
	r->oom = 0;
	if ((r->d = jp_dest_cache_get(cache, r->url, &dopts, &e)) == NULL ||
	    jp_catalog_files(r->cat, NULL, collect_file, r, &e) != JP_OK || r->oom ||
	    jp_dest_list(r->d, "", visit, r, &e) != JP_OK || r->oom) {
		/* A list cut short by a lack of memory would report published files missing. */
		if (r->oom)
			jp_error_set(&e, JP_E_SOFTWARE, "gc: out of memory");
		rep.what = JP_GC_FAILED;
		rep.action = e.msg;
		if (r->fn != NULL)
			r->fn(r->arg, &rep);
		failed(r, e.code);
		known_free(&r->k);
		return;
	}
	for (i = 0; i < r->k.n; i++)
		if (!r->k.seen[i]) {
			r->res->missing++;
			report(r, "missing", r->k.urls[i], r->k.jobs[i], -1, -1, NULL);
		}
	known_free(&r->k);
}

struct urls {
	char **v;
	size_t n;
	int oom; /* the list is incomplete */
};

static int
add_url(void *arg, const char *url)
{
	struct urls *u = arg;
	char **v;
	size_t i;

	for (i = 0; i < u->n; i++)
		if (strcmp(u->v[i], url) == 0)
			return 0;
	if ((v = realloc(u->v, (u->n + 1) * sizeof(char *))) == NULL ||
	    (v[u->n] = strdup(url)) == NULL) {
		u->v = v ? v : u->v;
		u->oom = 1;
		return -1;
	}
	u->v = v;
	u->n++;
	return 0;
}

int
jp_gc(struct jp_catalog *c, const struct jp_gc_opts *o, jp_gc_fn fn, void *arg,
      struct jp_gc_result *res, struct jp_error *err)
{
	struct jp_dest_cache cache;
	struct urls u = {NULL, 0, 0};
	struct run r;
	size_t i;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&cache, 0, sizeof(cache));
	memset(&r, 0, sizeof(r));
	r.cat = c;
	r.o = o;
	r.fn = fn;
	r.arg = arg;
	r.res = res;
	r.worst = JP_OK;
	if (o->dest != NULL)
		add_url(&u, o->dest);
	else if ((rc = jp_catalog_destinations(c, add_url, &u, err)) != JP_OK)
		goto out;
	if (u.oom) { /* not "no destinations" */
		rc = jp_error_set(err, JP_E_SOFTWARE, "gc: out of memory");
		goto out;
	}
	res->dests = u.n;
	for (i = 0; i < u.n; i++) {
		r.url = u.v[i];
		gc_one(&r, &cache);
	}
	rc = r.worst;
out:
	for (i = 0; i < u.n; i++)
		free(u.v[i]);
	free(u.v);
	jp_dest_cache_free(&cache);
	return rc;
}
