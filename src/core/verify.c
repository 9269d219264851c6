/*
 * verify.c - checks published files against the catalogue (verify.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "log.h"
#include "util.h"
#include "verify.h"

struct run {
	const struct jp_verify_opts *o;
	struct jp_dest_opts dopts;
	struct jp_dest_cache cache;
	jp_verify_fn fn;
	void *arg;
	struct jp_verify_result *res;
	char *cur;      /* the job whose files are being checked (malloc'd) */
	size_t ok, bad; /* its files so far */
};

static void
emit(struct run *r, const struct jp_verify_report *rep)
{
	if (r->fn != NULL)
		r->fn(r->arg, rep);
}

static void
end_job(struct run *r)
{
	struct jp_verify_report rep = {.what = JP_VERIFY_JOB};

	if (r->cur == NULL)
		return;
	rep.job = r->cur;
	rep.ok = r->ok;
	rep.bad = r->bad;
	emit(r, &rep);
	r->res->jobs_bad += r->bad > 0;
	free(r->cur);
	r->cur = NULL;
}

/* Sums what will be checked, for the progress line. */
static int
count_bytes(void *arg, const char *job, const struct jp_file_info *f)
{
	(void)job;
	*(uint64_t *)arg += f->size > 0 ? (uint64_t)f->size : 0;
	return 0;
}

/* A check that could not be made: the lowest class wins (as the command always answered). */
static void
unchecked(struct run *r, int code)
{
	if (r->res->unchecked == 0 || code < r->res->unchecked)
		r->res->unchecked = code;
}

static int
check_file(void *arg, const char *job, const struct jp_file_info *f)
{
	struct run *r = arg;
	struct jp_verify_report rep = {.what = JP_VERIFY_FILE};
	struct jp_error e;
	struct jp_stat st;
	struct jp_dest *d;
	char problem[JP_ERRMSG_MAX + 64] = "";

	if (r->cur == NULL || strcmp(r->cur, job) != 0) {
		end_job(r);
		r->cur = strdup(job);
		r->ok = r->bad = 0;
	}
	jp_error_clear(&e);
	if (f->destination == NULL || f->key == NULL) {
		snprintf(problem, sizeof(problem),
		         "cannot be checked: published before the catalogue recorded its key");
	} else if ((d = jp_dest_cache_get(&r->cache, f->destination, &r->dopts, &e)) == NULL ||
	           jp_dest_stat(d, f->key, &st, &e) != JP_OK) {
		snprintf(problem, sizeof(problem), "cannot be checked: %s", e.msg);
		unchecked(r, e.code);
	} else if (!st.exists) {
		snprintf(problem, sizeof(problem), "missing");
	} else if ((int64_t)st.size != f->size) {
		snprintf(problem, sizeof(problem), "size %llu, recorded %lld",
		         (unsigned long long)st.size, (long long)f->size);
	} else if (r->o->deep) {
		unsigned char sha[32];
		char hex[65];

		if (jp_dest_hash(d, f->key, sha, &e) != JP_OK) {
			snprintf(problem, sizeof(problem), "cannot be read back: %s", e.msg);
			unchecked(r, e.code);
		} else {
			jp_hex(sha, 32, hex);
			if (strcmp(hex, f->sha256) != 0)
				snprintf(problem, sizeof(problem),
				         "content differs: sha256 %.16s..., recorded %.16s...", hex, f->sha256);
		}
	}
	jp_progress_add(f->size > 0 ? (uint64_t)f->size : 0);
	rep.job = job;
	rep.remote = f->remote;
	rep.problem = problem[0] ? problem : NULL;
	emit(r, &rep);
	if (problem[0]) {
		r->bad++;
		r->res->bad++;
	} else {
		r->ok++;
		r->res->ok++;
	}
	return 0;
}

int
jp_verify(struct jp_catalog *c, const struct jp_verify_opts *o, jp_verify_fn fn, void *arg,
          struct jp_verify_result *res, struct jp_error *err)
{
	struct run r;
	struct jp_verify_report rep;
	struct jp_error ignored;
	uint64_t total = 0;
	size_t k;
	int rc = JP_OK;

	memset(&r, 0, sizeof(r));
	memset(res, 0, sizeof(*res));
	r.o = o;
	r.dopts = o->dest;
	r.dopts.readonly = 1;
	r.fn = fn;
	r.arg = arg;
	r.res = res;

	/* The total for the progress line; a failure here shows up in the run itself. */
	jp_error_clear(&ignored);
	if (o->n_jobs == 0)
		jp_catalog_files(c, NULL, count_bytes, &total, &ignored);
	for (k = 0; k < o->n_jobs; k++)
		jp_catalog_files(c, o->jobs[k], count_bytes, &total, &ignored);
	jp_progress_begin(total);

	if (o->n_jobs == 0) {
		rc = jp_catalog_files(c, NULL, check_file, &r, err);
		if (rc == JP_OK && jp_catalog_empty(c)) {
			memset(&rep, 0, sizeof(rep));
			rep.what = JP_VERIFY_UNWRITTEN;
			emit(&r, &rep);
		}
	}
	for (k = 0; k < o->n_jobs && rc == JP_OK; k++) {
		size_t before = res->ok + res->bad;

		rc = jp_catalog_files(c, o->jobs[k], check_file, &r, err);
		if (rc != JP_OK || res->ok + res->bad != before)
			continue;
		memset(&rep, 0, sizeof(rep));
		rep.job = o->jobs[k];
		/* Nothing to check in a catalogue jobpub has not written yet: nothing is wrong. */
		if (jp_catalog_empty(c)) {
			rep.what = JP_VERIFY_UNWRITTEN;
		} else {
			rep.what = JP_VERIFY_NO_FILES;
			res->bad++;
			res->jobs_bad++;
		}
		emit(&r, &rep);
	}
	jp_progress_end();
	end_job(&r);
	jp_dest_cache_free(&r.cache);
	if (rc != JP_OK)
		return rc;
	if (res->unchecked != 0)
		rc = jp_severity_of(res->unchecked);
	if (res->bad > 0)
		rc = jp_worst(rc, JP_WARN);
	return rc;
}
