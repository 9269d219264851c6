/*
 * publish.h - the publish protocol: plan, stage, commit, record; roll back on any error.
 *
 *   1. plan    resolve the manifest against the workdir, check every input (plan.h)
 *   2. stage   stream each file to a temporary name, SHA-256 in the same pass, durable, verified
 *   3. commit  move every staged file to its final name; identical content already there counts
 *              as published; different content is a conflict (69) unless overwrite
 *   4. record  one catalogue transaction: mapped columns, status, jobpub_files, the attempt
 *   5. on any error: delete staged files, undo this attempt's commits that replaced nothing,
 *      mark the job failed_storage, record the attempt, return the error's class
 *   6. SIGINT/SIGTERM (jp_publish_interrupt): stop at the next chunk, clean up as in 5, 75
 */
#ifndef JP_PUBLISH_H
#define JP_PUBLISH_H

#include <stddef.h>

#include "error.h"
#include "util.h"

struct jp_publish_opts {
	const char *job;
	const char *manifest;      /* path */
	const char *workdir;       /* NULL: current directory */
	const char *db;            /* catalogue path */
	const char *dest;          /* overrides the manifest's destination; may be NULL */
	const struct jp_kv *sets;
	size_t n_sets;
	int dry_run;               /* print the plan on `plan_out`, touch nothing */
	int overwrite;
	int db_timeout_ms;
	void *plan_out;            /* FILE * for --dry-run output; NULL: stdout */
};

/* Runs a publish.  Returns the exit code (0 published, else a jp_class); the reason of a
 * failure is on err.  Messages and events go to the log (log.h). */
int jp_publish(const struct jp_publish_opts *o, struct jp_error *err);

/* Asks a running publish to stop (async-signal-safe: sets a flag).  sig is reported. */
void jp_publish_interrupt(int sig);

/* 1 when jp_publish_interrupt was called. */
int jp_publish_interrupted(void);

#endif
