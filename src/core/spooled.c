/*
 * spooled.c - a spool entry taken into a publish's options, a publish queued in the spool,
 * the state of a request (spooled.h).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "spooled.h"
#include "util.h"

#define QUEUE_TRIES 10

int
jp_spooled_take(const char *dir, const char *key, struct jp_publish_opts *o,
                struct jp_spooled *s, struct jp_error *err)
{
	struct jp_spool_entry *e = NULL;
	size_t i, k, n;
	int r;

	memset(s, 0, sizeof(*s));
	if ((r = jp_spool_read(dir, key, &e, err)) != JP_OK)
		return r;
	if (geteuid() == 0 && e->uid != 0) {
		r = jp_error_set(err, JP_E_NOPERM, "spool: job %s: the spool entry in %s belongs to uid %u: "
		                 "publish it as that user (the Slurm epilog does)",
		                 key, dir, (unsigned)e->uid);
		jp_spool_entry_free(e);
		return r;
	}
	if ((s->sets = calloc(o->n_sets + e->n_sets + 1, sizeof(*s->sets))) == NULL) {
		jp_spool_entry_free(e);
		return jp_error_set(err, JP_E_SOFTWARE, "spool: out of memory");
	}
	n = o->n_sets;
	if (n > 0)
		memcpy(s->sets, o->sets, n * sizeof(*s->sets));
	for (i = 0; i < e->n_sets; i++) {
		for (k = 0; k < o->n_sets && strcmp(o->sets[k].name, e->sets[i].name) != 0; k++)
			;
		if (k == o->n_sets)
			s->sets[n++] = e->sets[i];
	}
	s->n_sets = n;
	s->entry = e;
	o->job = e->job;
	if (o->manifest == NULL)
		o->manifest = e->manifest;
	if (o->workdir == NULL)
		o->workdir = e->workdir;
	if (o->db == NULL)
		o->db = e->db;
	if (o->dest == NULL)
		o->dest = e->dest;
	o->sets = s->sets;
	o->n_sets = s->n_sets;
	return JP_OK;
}

void
jp_spooled_free(struct jp_spooled *s)
{
	jp_spool_entry_free(s->entry);
	free(s->sets);
	memset(s, 0, sizeof(*s));
}

int
jp_spooled_queue(const char *dir, const struct jp_publish_opts *o, char **key,
                 struct jp_error *err)
{
	struct jp_spool_entry e;
	struct jp_error last;
	char *k = NULL;
	int i, r = JP_FAILED;

	*key = NULL;
	memset(&e, 0, sizeof(e));
	jp_error_clear(&last);
	e.job = (char *)o->job;
	/* The errno of the first call that fails: a later one would overwrite it. */
	if ((e.manifest = realpath(o->manifest, NULL)) == NULL ||
	    (e.workdir = realpath(o->workdir != NULL ? o->workdir : ".", NULL)) == NULL ||
	    (e.db = jp_catalog_locator_canonical(o->db)) == NULL) { /* as enqueue records it */
		r = jp_error_set(err, jp_class_of_errno(errno), "spool: %s", strerror(errno));
		goto out;
	}
	e.dest = (char *)o->dest;
	e.sets = (struct jp_kv *)o->sets;
	e.n_sets = o->n_sets;
	e.uid = geteuid();
	for (i = 1; i <= QUEUE_TRIES; i++) {
		free(k);
		k = i == 1 ? strdup(o->job) : jp_asprintf("%s~%d", o->job, i);
		if (k == NULL) {
			r = jp_error_set(err, JP_E_SOFTWARE, "spool: out of memory");
			goto out;
		}
		if (strlen(k) > 128)
			break;
		e.key = strcmp(k, o->job) == 0 ? NULL : k;
		jp_error_clear(&last);
		if ((r = jp_spool_add(dir, &e, &last)) == JP_OK || last.code != JP_E_UNAVAILABLE)
			break;
	}
	if (r == JP_OK) {
		*key = k;
		k = NULL;
	} else {
		r = jp_error_set(err, last.code ? last.code : JP_E_UNAVAILABLE, "%s", last.msg);
	}
out:
	free(k);
	free(e.manifest);
	free(e.workdir);
	free(e.db);
	return r;
}

/* What the catalogue says of one job: its last attempt. */
struct find {
	const char *job;
	char outcome[32];
	char started[40];
	int found;
};

static int
find_job(void *arg, const struct jp_job_brief *b)
{
	struct find *f = arg;

	if (strcmp(b->job, f->job) != 0)
		return 0;
	snprintf(f->outcome, sizeof(f->outcome), "%s", b->outcome ? b->outcome : "");
	snprintf(f->started, sizeof(f->started), "%s", b->started_at ? b->started_at : "");
	f->found = 1;
	return 0; /* the last one listed is the latest */
}

const char *
jp_spooled_state(const struct jp_spool_entry *e, char *note, size_t len)
{
	struct jp_catalog *cat = NULL;
	struct jp_error err;
	struct find f;
	const char *st = "pending";

	note[0] = '\0';
	memset(&f, 0, sizeof(f));
	f.job = e->job;
	jp_error_clear(&err);
	if (e->db == NULL) {
		snprintf(note, len, "no catalogue recorded");
		return st;
	}
	/* A catalogue jobpub never wrote lists no attempts: the job is simply pending. */
	if (jp_catalog_open(e->db, 2000, JP_CATALOG_READONLY, &cat, &err) != JP_OK ||
	    jp_catalog_jobs(cat, find_job, &f, &err) != JP_OK) {
		snprintf(note, len, "catalogue not readable: %s", err.msg);
		jp_catalog_close(cat);
		return st;
	}
	/* An attempt older than the entry is of an earlier request (the job enqueued again). */
	if (!f.found || (e->created != NULL && strcmp(f.started, e->created) < 0))
		st = "pending";
	else if (strcmp(f.outcome, "published") == 0)
		st = "published";
	else if (jp_catalog_published_since(cat, e->job, e->created)) {
		/* Published, then a later attempt failed (a conflict): the files stay published and
		 * the request is done; `republish --overwrite` is for new content. */
		snprintf(note, len, "a later attempt %s", f.outcome);
		st = "published";
	} else if (strcmp(f.outcome, "running") == 0 && jp_catalog_job_leased(cat, e->job))
		st = "publishing";
	else if (strcmp(f.outcome, "running") == 0) {
		snprintf(note, len, "its publisher is gone");
		st = "failed";
	} else
		st = "failed";
	jp_catalog_close(cat);
	return st;
}
