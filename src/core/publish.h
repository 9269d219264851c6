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

struct jp_options;

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
	int parallel;              /* transfer lanes (connections); 0 or 1: one */
	int lease_s;               /* the job's lease, renewed while it runs; 0: 3600 s */
	int retries;               /* retries of a transient failure, per file */
	/* destination options (dest.h); 0 for the defaults */
	int timeout_ms, stall_ms;
	/* backend options from the command line (options.h), beating the manifest's for the same
	 * key; may be NULL */
	const struct jp_options *options;
};

/* Runs a publish.  Returns a severity (error.h): JP_OK published; else the reason and its
 * class (the exit code, jp_exit_code()) are on err: JP_RETRY when a later run may succeed
 * (class 75), JP_FATAL when a connection died under it, JP_FAILED otherwise.  Messages and events
 * go to the log (log.h). */
int jp_publish(const struct jp_publish_opts *o, struct jp_error *err);

/* 1 when the last jp_publish ended (75) before its attempt was recorded because the catalogue
 * stayed locked past --db-timeout: nothing in the catalogue says the job wants publishing (its
 * row keeps its status, it has no attempt), so `republish` cannot find it there.  The caller
 * leaves a spool entry instead, which `republish` takes. */
int jp_publish_unrecorded(void);

struct jp_catalog;
struct jp_dest_opts;
struct jp_manifest;
struct jp_row;
struct jp_jobtable;

/* The destination options of a publish (defaults filled in; options: the command line's). */
void jp_publish_dest_opts(const struct jp_publish_opts *o, struct jp_dest_opts *d);

/* The job table a manifest names (pointers into m). */
void jp_jobtable_of(const struct jp_manifest *m, struct jp_jobtable *t);

/*
 * Everything about a job that can be checked before anything is written: the catalogue's job
 * table, id and status columns and every mapped column exist (errors point into the manifest),
 * the job's row is loaded into *row (caller frees with jp_row_free), and every ${...} of the
 * manifest expands with that row and the --set values.  dest_override: --dest, or NULL.
 */
int jp_job_prepare(struct jp_catalog *c, const struct jp_manifest *m, const char *job,
                   const struct jp_kv *sets, size_t n_sets, const char *dest_override,
                   struct jp_row **row, struct jp_error *err);

/*
 * The destination a publish would use (dest_override, else the manifest's), expanded and
 * checked as far as it can be without opening it (dest.h: jp_dest_check_url): 78 "no
 * destination" or the reason it is malformed (a manifest's is pointed at by file:line:col).
 * With row NULL, a destination that needs ${row.X} is left for the call with the row.  A
 * publish calls it before the catalogue is opened and again before the attempt begins, so a
 * malformed destination records nothing; enqueue calls it before it writes the spool entry.
 * With dopts, the local settings the destination's open would read are checked too
 * (jp_dest_check_settings: a key file, credentials, ...; 78, without position).
 */
int jp_check_destination(const struct jp_manifest *m, const char *job, const struct jp_kv *sets,
                         size_t n_sets, const char *dest_override, const struct jp_row *row,
                         const struct jp_dest_opts *dopts, struct jp_error *err);

/* Asks a running publish to stop (async-signal-safe: sets a flag).  sig is reported.  The flag
 * stays set for the life of the process, so every later jp_publish stops too (a SIGTERM stops a
 * whole batch); jp_publish_interrupt(0) clears it. */
void jp_publish_interrupt(int sig);

/* 1 when jp_publish_interrupt was called. */
int jp_publish_interrupted(void);

/* fn is called when a publish begins its roll back, after a failure or a stop by
 * jp_publish_interrupt (the command line gives its clean-up a bound of its own, also when the
 * signal comes during it).  NULL: nothing. */
void jp_publish_set_cleanup_hook(void (*fn)(void));

#endif
