/*
 * spooled.h - publishing what the spool holds (spool.h is the entries' format and storage):
 * taking a queued request into a publish's options, queueing a publish that could not record
 * itself so that `republish` finds it, and what became of a request.
 */
#ifndef JP_SPOOLED_H
#define JP_SPOOLED_H

#include <stddef.h>

#include "error.h"
#include "publish.h"
#include "spool.h"

/* A request taken from the spool; what a publish's options point into until it is freed. */
struct jp_spooled {
	struct jp_spool_entry *entry;
	struct jp_kv *sets; /* o's --set values, then the entry's others */
	size_t n_sets;
};

/*
 * Reads the entry filed in dir under key (a job ID, or the Slurm job ID it was queued under)
 * and completes o with it: o->job becomes the entry's job (the catalogue's ID); manifest,
 * workdir, db and dest are the entry's where o has none (NULL): what is given now beats what
 * was queued; the --set values are o's, then the entry's for names o does not set.  o's
 * pointers then point into *s, which the caller frees with jp_spooled_free after the publish.
 * Errors (nothing changed in o): the spool's (66 no such entry, 65 not valid, 77 not safe to
 * trust); 77 when the caller is root and the entry another user's (root never publishes a
 * user's files: the Slurm epilog does, as that user); 70 out of memory.
 */
int jp_spooled_take(const char *dir, const char *key, struct jp_publish_opts *o,
                    struct jp_spooled *s, struct jp_error *err);
void jp_spooled_free(struct jp_spooled *s);

/*
 * Queues the publish o in dir for `republish`: a publish that could not record its attempt
 * (jp_publish_unrecorded) leaves nothing in the catalogue to find.  The entry records o's job,
 * manifest and workdir (made absolute), db (as enqueue records it), dest and --set values.
 * The spool is shared with `enqueue`, which files entries under Slurm job IDs: `<job>.json`
 * may hold another job's request, which is never replaced; the next free name
 * `<job>~2.json`, ... `<job>~10.json` is taken instead.  On JP_OK the key used is in *key
 * (malloc'd).  Errors: the spool's, or 69 when every name is taken.
 */
int jp_spooled_queue(const char *dir, const struct jp_publish_opts *o, char **key,
                     struct jp_error *err);

/*
 * The state of the request e, from its catalogue's latest attempt of its job (the catalogue is
 * opened read-only, with a 2 s busy timeout):
 *   "pending"     no attempt since the entry was written (or the catalogue cannot say: no
 *                 catalogue recorded, or it cannot be read; note says which)
 *   "publishing"  an attempt since runs, under a live lease
 *   "failed"      the latest attempt since failed, or its publisher is gone (note says so)
 *   "published"   an attempt since published the job, also when a later one failed (note:
 *                 "a later attempt failed_storage"): the files stay published, the request is
 *                 done (`republish --overwrite` is for new content)
 * note (len bytes) gets "" or a reason; never NULL.
 */
const char *jp_spooled_state(const struct jp_spool_entry *e, char *note, size_t len);

#endif
