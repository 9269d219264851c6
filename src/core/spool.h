/*
 * spool.h - spool entries: what a job script registers so its publish can run later, from the
 * end of the job script or from a Slurm epilogue that knows nothing but the job's ID.
 *
 * One entry per job, a JSON file `<job>.json` in the spool directory, written atomically
 * (a 0600 temporary file, fsync, rename) and refused when it is not safe to trust: owned by
 * another user, or writable by group or others.
 *
 *   {"job": "42", "manifest": "/abs/manifest.yaml", "workdir": "/abs/job", "db": "/abs/cat.db",
 *    "dest": null, "sets": {"model": "kt"}, "uid": 1000, "created": "2026-11-22T10:42:03Z"}
 *
 * filed as `<key>.json` with an extra "key": "<key>" when the catalogue's job ID is not the key
 * the epilog will ask for (pdr_run's job IDs are not Slurm's).
 */
#ifndef JP_SPOOL_H
#define JP_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "util.h"

struct jp_spool_entry {
	char *job;           /* the job's ID in the catalogue */
	char *manifest;      /* absolute */
	char *workdir;       /* absolute */
	char *db;            /* absolute, or NULL: the publish's default */
	char *dest;          /* or NULL: the manifest's */
	struct jp_kv *sets;  /* the name/value strings belong to the entry */
	size_t n_sets;
	uid_t uid;           /* who enqueued it */
	char *created;       /* ISO 8601 UTC */
	char *key;           /* the name the entry is filed under, when not the job's ID: the Slurm
	                      * job ID, which is all an epilog knows; NULL: the job's ID */
};

/* The spool directory: $JOBPUB_SPOOL; else /var/spool/jobpub for root; else
 * $XDG_STATE_HOME/jobpub/spool, or ~/.local/state/jobpub/spool.  malloc'd; NULL: out of memory. */
char *jp_spool_dir(void);

/* Writes e as dir/<key or job>.json atomically, creating dir (0700) when missing; an entry already
 * there for the job is replaced.  Errors: 74 I/O, 77 permission. */
int jp_spool_write(const char *dir, const struct jp_spool_entry *e, struct jp_error *err);

/* As jp_spool_write, but never replaces the entry of another request: when dir/<key or job>.json
 * exists and is not for the same job of the same catalogue (db), or cannot be read, nothing is
 * written and err->code is JP_E_UNAVAILABLE (69): the caller may try another key. */
int jp_spool_add(const char *dir, const struct jp_spool_entry *e, struct jp_error *err);

/* Reads dir/<job>.json, `job` being the key it is filed under.  Errors: 66 no entry for the job; 65 not valid (the message names the
 * file and the field); 77 the file is owned by another user than the caller (root may read
 * any, the epilogue does) or is writable by group or others. */
int jp_spool_read(const char *dir, const char *job, struct jp_spool_entry **out,
                  struct jp_error *err);

/* Removes dir/<job>.json (after a successful publish).  A missing entry is JP_OK. */
int jp_spool_remove(const char *dir, const char *job, struct jp_error *err);

void jp_spool_entry_free(struct jp_spool_entry *e); /* e may be NULL */

/* Calls fn for every entry of dir (every `<key>.json`; jobpub's temporaries `.<key>.json.*` are
 * not entries), in name order: with the entry read by jp_spool_read, or e NULL and why it
 * cannot be read in *why (e and why are only valid during the call); mtime is the file's.  fn
 * returns non-zero to stop.  A missing dir has no entries (JP_OK); one that cannot be listed is
 * 74/77. */
typedef int (*jp_spool_fn)(void *arg, const char *key, const struct jp_spool_entry *e,
                           const struct jp_error *why, long long mtime);
int jp_spool_list(const char *dir, jp_spool_fn fn, void *arg, struct jp_error *err);

#endif
