/*
 * republish.h - publish again the jobs that failed, with what their last attempt recorded
 * (manifest, workdir, destination, --set values), and the jobs of the catalogue that a spool
 * entry asks for and whose row could never be marked.
 *
 * Each job is published by a child process (`parallel` at once): a publish is a whole
 * process's work (signals, its catalogue connection, its lanes), and one job's crash cannot
 * take the others.  The parent opens the catalogue only to choose the jobs, and closes it
 * before the first fork.
 */
#ifndef JP_REPUBLISH_H
#define JP_REPUBLISH_H

#include <stddef.h>

#include "error.h"
#include "publish.h"

struct jp_republish_opts {
	/*
	 * Which jobs.  status NULL and jobs NULL: those whose status is failed_storage, those left
	 * "publishing" by a publisher that is gone (no live lease), and the spool's entries for
	 * this catalogue.  jobs given: those jobs in any status (unless status is given), and their
	 * spool entries.  status given: the jobs with that status only (spool entries have no
	 * status, so none).
	 */
	const char *status;
	const char *const *jobs;  /* NULL-terminated, or NULL: all */
	const char *since;        /* ISO time: only jobs whose last attempt (or entry) started at
	                           * or after it; NULL or "": any */
	const char *spool;        /* the spool directory; NULL: jp_spool_dir() */
	int parallel;             /* jobs at once, 1 to 64 (0: 1) */
	int dry_run;              /* report the jobs chosen; publish nothing */
	/* What every job's publish gets: db (the catalogue), db_timeout_ms, overwrite (also: a
	 * spool entry whose job was published since is taken again), the connection options.
	 * job, manifest, workdir, dest and sets come from each job's attempt or entry. */
	const struct jp_publish_opts *publish;
	/* Called once the jobs are chosen, before the first child starts (not on a dry run): the
	 * command line catches SIGINT/SIGTERM there and passes them to jp_republish_interrupt.
	 * May be NULL. */
	void (*started)(void);
	/* Called in each child before its publish (the command line gives the child its own stop
	 * bounds there).  May be NULL. */
	void (*child)(void);
};

enum jp_republish_what {
	JP_REPUBLISH_PLANNED, /* dry run: a job that would be published */
	JP_REPUBLISH_DONE,    /* a job's publish ended (in the order they end) */
};

struct jp_republish_report {
	enum jp_republish_what what;
	const char *job;
	/* PLANNED: the job's status ("spooled as KEY" when only a spool entry names it; may be
	 * NULL: no row), manifest, workdir and destination (NULL: the manifest's). */
	const char *status, *manifest, *workdir, *dest;
	int code;            /* DONE: the publish's exit code (0 published) */
	const char *message; /* DONE: why it failed; "" when published */
};

/* Called in the parent for every report; the strings are valid during the call only. */
typedef void (*jp_republish_fn)(void *arg, const struct jp_republish_report *r);

struct jp_republish_result {
	size_t jobs;      /* chosen */
	size_t published;
	size_t failed;    /* failed, plus those never started because of a stop */
	int first_code;   /* exit code of the first job that failed (by when it ended); 0: none */
	int interrupted;  /* the signal jp_republish_interrupt was given, or 0 */
};

/*
 * Chooses the jobs (catalogue o->publish->db, spool o->spool) and publishes them, reporting
 * each to fn (may be NULL).  A child that dies without a result (a signal) counts as failed
 * with 70 and has no DONE report.  A spool entry whose job is published is removed.
 * Returns JP_OK when every job chosen was published (or on a dry run), else the severity of
 * res->first_code (or JP_RETRY when only stopped).  Before any report, it fails with err set:
 * the catalogue cannot be read (its class), or it does not exist and no spool entry names a
 * job of it (66, most likely a typo in the path).
 */
int jp_republish(const struct jp_republish_opts *o, jp_republish_fn fn, void *arg,
                 struct jp_republish_result *res, struct jp_error *err);

/* Stops a running jp_republish (async-signal-safe: for a signal handler): no job is started
 * any more, and sig is passed on to every running child, which rolls back and records itself
 * as interrupted (75). */
void jp_republish_interrupt(int sig);

#endif
