/*
 * verify.h - is every published file still there, as the catalogue recorded it?
 *
 * For each jobpub_files row: the object must exist at its destination and key with the
 * recorded size; with `deep`, it is read back in full and its SHA-256 compared.  Nothing is
 * ever written, neither to the catalogue nor to a destination (opened read-only).  Results
 * come through a callback, in catalogue order, so the caller prints them as it likes.
 */
#ifndef JP_VERIFY_H
#define JP_VERIFY_H

#include <stddef.h>

#include "dest.h"
#include "error.h"

struct jp_catalog;

struct jp_verify_opts {
	const char *const *jobs;  /* the jobs to check; n_jobs 0: every job with published files */
	size_t n_jobs;
	int deep;                 /* read every file back and compare its SHA-256 */
	struct jp_dest_opts dest; /* how destinations are opened (readonly is forced) */
};

/* What one report is about. */
enum jp_verify_what {
	JP_VERIFY_FILE,       /* one file: problem NULL when as recorded */
	JP_VERIFY_JOB,        /* the files of a job are done: ok and bad count them */
	JP_VERIFY_NO_FILES,   /* a job asked for has no published file (counts as one bad) */
	JP_VERIFY_UNWRITTEN,  /* jobpub has not written to the catalogue yet: nothing to check,
	                         nothing wrong; job NULL when no job was asked for */
};

struct jp_verify_report {
	enum jp_verify_what what;
	const char *job;
	const char *remote;   /* FILE: the file's remote URL */
	const char *problem;  /* FILE: "missing", "size 3, recorded 4", "cannot be checked: ...",
	                       * ...; NULL when as recorded */
	size_t ok, bad;       /* JOB: the job's files as recorded, and not */
};

/* Called for every report; the strings are valid during the call only. */
typedef void (*jp_verify_fn)(void *arg, const struct jp_verify_report *r);

struct jp_verify_result {
	size_t ok, bad;   /* files as recorded; files missing, different or not checked, plus one
	                   * per job asked for without published files */
	size_t jobs_bad;  /* jobs with at least one bad file */
	int unchecked;    /* the lowest exit class among files that could not be checked (a
	                   * destination that would not open, a stat or read-back that failed),
	                   * 0 when every file was checked */
};

/*
 * Checks the files of o->jobs (or of every job) in catalogue c, reporting each to fn (may be
 * NULL), and sums them up in *res.  A progress line is drawn on a terminal (log.h).  Returns
 * the worst of: JP_OK (all as recorded); JP_WARN (some file missing or different);
 * jp_severity_of(res->unchecked) (some file could not be checked; its reason is in its
 * report, err is not set); a catalogue error that stopped the run (on err, the reports so far
 * and the current job's JOB report were made).
 */
int jp_verify(struct jp_catalog *c, const struct jp_verify_opts *o, jp_verify_fn fn, void *arg,
              struct jp_verify_result *res, struct jp_error *err);

#endif
