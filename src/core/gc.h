/*
 * gc.h - what killed publishers left behind, and what the catalogue and the destinations
 * disagree on.
 *
 * Every object below each destination is classified (kinds below).  Only jobpub's own
 * temporary names (dest.h: JP_TMP_PREFIX + token) older than the limit and not held by a live
 * lease, and incomplete uploads (jp_dest_list's st->upload) older than the limit and started
 * before every live lease, are deleted, and only with `apply`.  Missing and unreferenced files
 * and displaced originals are reported, never touched: they are someone's data.
 */
#ifndef JP_GC_H
#define JP_GC_H

#include <stddef.h>
#include <stdint.h>

#include "dest.h"
#include "error.h"

struct jp_catalog;

struct jp_gc_opts {
	const char *dest;          /* look only here; NULL: every destination the catalogue names */
	long older_s;              /* only temporaries and uploads at least this old (seconds) */
	int apply;                 /* delete them; 0: only report what would be deleted */
	struct jp_dest_opts dopts; /* how destinations are opened (readonly is forced) */
};

enum jp_gc_what {
	JP_GC_DEST,   /* a destination begins: remote is its URL */
	JP_GC_FAILED, /* that destination could not be opened or listed: remote its URL, action the
	               * reason (its remaining objects are not visited) */
	JP_GC_OBJECT, /* an object worth telling about */
};

/*
 * kind of an OBJECT report, with the action taken or proposed:
 *   "temporary"    a staged file of a publisher that is gone: "would delete (--apply)",
 *                  "deleted", or why the delete failed
 *   "upload"       an incomplete upload: "incomplete upload; would abort (--apply)",
 *                  "aborted", or why the abort failed
 *   "in-use"       a temporary or upload a live publisher may own: kept
 *   "displaced"    an original moved aside by an --overwrite (dest.h: JP_TMP_DISPLACED): kept
 *   "unreferenced" an object no catalogue row names (action NULL)
 *   "missing"      a catalogue row whose object is not there (job set, action NULL)
 */
struct jp_gc_report {
	enum jp_gc_what what;
	const char *kind;
	const char *remote; /* the object's URL */
	const char *job;    /* missing: the job whose row names it; else NULL */
	int64_t size;       /* bytes, or -1 when not told */
	int64_t age;        /* seconds since last modified, or -1 when not told */
	const char *action; /* may be NULL */
};

/* Called for every report; the strings are valid during the call only. */
typedef void (*jp_gc_fn)(void *arg, const struct jp_gc_report *r);

struct jp_gc_result {
	size_t dests;                 /* destinations looked at */
	size_t temps;                 /* temporaries and uploads old enough (deleted or to delete) */
	uint64_t temp_bytes;          /* their bytes (uploads count 0) */
	size_t deleted, in_use, missing, unreferenced, displaced;
	int failed;                   /* class of the first failure (a destination that could not
	                               * be listed, a delete that failed), 0: none */
};

/*
 * Runs gc over catalogue c (opened read-only will do: gc never writes to it).  Reports each
 * destination and object to fn (may be NULL) and sums up in *res.  Returns JP_OK; the worst
 * severity of the failures res->failed counts (each already reported); or, when the
 * catalogue's destinations cannot be read, that error on err before any report.
 */
int jp_gc(struct jp_catalog *c, const struct jp_gc_opts *o, jp_gc_fn fn, void *arg,
          struct jp_gc_result *res, struct jp_error *err);

#endif
