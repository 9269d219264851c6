/*
 * spooled.c - a spool entry taken into a publish's options, a publish queued in the spool
 * (spooled.h).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
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
		r = jp_error_set(err, JP_E_NOPERM, "job %s: the spool entry in %s belongs to uid %u: "
		                 "publish it as that user (the Slurm epilog does)",
		                 key, dir, (unsigned)e->uid);
		jp_spool_entry_free(e);
		return r;
	}
	if ((s->sets = calloc(o->n_sets + e->n_sets + 1, sizeof(*s->sets))) == NULL) {
		jp_spool_entry_free(e);
		return jp_error_set(err, JP_E_SOFTWARE, "out of memory");
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
		r = jp_error_set(err, jp_class_of_errno(errno), "%s", strerror(errno));
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
			r = jp_error_set(err, JP_E_SOFTWARE, "out of memory");
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
