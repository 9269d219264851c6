/*
 * catalog.h - the catalogue: jobpub's own tables and the job table it updates, in a database
 * of one of the engines behind catalog-engine.h (SQLite: catalog-sqlite.c).
 *
 * jobpub owns these tables, created and migrated by the first write that needs them (schema
 * version, SQLite: PRAGMA user_version; a catalogue jobpub has not written yet has version 0
 * and none of them):
 *   jobs               the job table used when the manifest names none (made by
 *                      jp_catalog_prepare, only for a manifest that names no table)
 *   jobpub_files       what each job has published (remote URL, size, SHA-256, entries, ...)
 *   jobpub_attempts    every publish attempt, its parameters and its outcome
 *   jobpub_attributes  HDF5 root attributes of published files (job, output, name, value)
 *   jobpub_leases      who is publishing which job right now (host, pid, token, expiry, and
 *                      where the pid means that process: boot ID, PID namespace, start time)
 * and it updates a job table it may not own (pdr_run's pdr_model_jobs).  Table and column names
 * come from the manifest: they are checked against the real schema and quoted; values are
 * always bound.  Writes take the write lock when they begin (SQLite: BEGIN IMMEDIATE) and wait
 * for it up to a timeout; a catalogue that stays locked past the timeout is JP_E_TEMPFAIL
 * (JP_RETRY).
 */
#ifndef JP_CATALOG_H
#define JP_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"
#include "row.h"

#define JP_SCHEMA_VERSION 5
#define JP_STATUS_FAILED "failed_storage"
#define JP_STATUS_PUBLISHING "publishing"

struct jp_catalog;

/* Which table holds the job's row and its two fixed columns. */
struct jp_jobtable {
	const char *table;
	const char *id_column;
	const char *status_column;
	int external; /* not jobpub's own `jobs`: never altered, rows never created */
	/* The status a successful publish sets (the manifest's published-status).  A job whose row
	 * has it and whose files are in jobpub_files is published: an attempt that fails leaves its
	 * row as it is (see jp_catalog_begin).  NULL: not known, every failure marks the job. */
	const char *published_status;
};

/* Modes of jp_catalog_open, or-ed. */
#define JP_CATALOG_READONLY 1 /* the file must exist; nothing is ever written or migrated
                               * (status, dry runs) */
#define JP_CATALOG_EXISTING 2 /* the file must exist (a manifest naming an external table) */

/* ---- where a catalogue is ----
 *
 * A catalogue is named by a location: a file path or "sqlite:PATH" / "sqlite:///PATH" is a
 * SQLite file; "SCHEME://..." is the URL of the engine that claims SCHEME (catalog-engine.h).
 * Nothing outside the catalogue looks inside a location. */

/* The location used when none is given ("jobpub.db": a file in the current directory). */
const char *jp_catalog_default_location(void);

/* JP_OK when an engine claims loc; else 78 ("no catalogue engine for scheme 'x'"). */
int jp_catalog_location_check(const char *loc, struct jp_error *err);

/* 1 when the catalogue at loc exists, 0 when it certainly does not, -1 when that cannot be
 * told (no engine, a permission error); why gets the reason when not 1. */
int jp_catalog_exists(const char *loc, char *why, size_t whylen);

/* The one spelling of loc every command computes alike (spool entries record it, republish
 * compares it): for SQLite the absolute path, also of a file that does not exist yet.
 * malloc'd; NULL with errno set: ENOENT its directory does not exist, EINVAL not a file name,
 * EPROTONOSUPPORT no engine for its scheme, ENOMEM. */
char *jp_catalog_locator_canonical(const char *loc);

/* 1 when loc names the same catalogue from any directory (an absolute path, a URL). */
int jp_catalog_locator_absolute(const char *loc);

/*
 * Opens the catalogue at path (a location, see above).  Opening only reads: the schema version is read without a lock,
 * and the schema is migrated (under a write lock, re-checked) by the first write that needs it,
 * WAL then being enabled unless the file lives on a network filesystem.  Without a mode the
 * file is created when missing.  timeout_ms is the busy timeout.
 * Errors: 66 missing (READONLY, EXISTING: the message names the path), 78 cannot open / newer
 * schema, 75 locked, 65 not a database, 74 I/O.
 */
int jp_catalog_open(const char *path, int timeout_ms, int mode, struct jp_catalog **out,
                    struct jp_error *err);
void jp_catalog_close(struct jp_catalog *c); /* c may be NULL */

/* While waiting for a locked catalogue, stop() is asked every few milliseconds; when it
 * returns non-zero the wait ends at once with JP_E_TEMPFAIL ("interrupted").  stop may be NULL. */
void jp_catalog_set_stop(struct jp_catalog *c, int (*stop)(void));
/* The stop() every catalogue opened from now on starts with (its schema migration included). */
void jp_catalog_set_default_stop(int (*stop)(void));

/* 1 when the catalogue was opened read-only. */
int jp_catalog_readonly(const struct jp_catalog *c);

/* 1 when the last call failed because the catalogue stayed locked past the timeout (not
 * because a signal stopped the wait, nor because another publisher holds the job's lease). */
int jp_catalog_busy(const struct jp_catalog *c);

/* 1 when jobpub has not written to the catalogue yet (no jobpub tables: a fresh pdr_run
 * database).  Every reading function then finds nothing, and says so with JP_OK. */
int jp_catalog_empty(const struct jp_catalog *c);

/*
 * Checks the job table: it must exist and have the id, status and `columns` (n of them, the
 * manifest's mapped columns).  For jobpub's own table, the table and missing mapped columns
 * are made (TEXT) unless read-only (read-only, a missing own table is fine: no job yet).  Only
 * once an external table is found good is the catalogue migrated: a wrong table or column
 * changes nothing.  Errors name the table and column: 65.
 */
int jp_catalog_prepare(struct jp_catalog *c, const struct jp_jobtable *t,
                       const char *const *columns, size_t n, struct jp_error *err);

/* Loads the job's row as text into *row (caller frees with jp_row_free).  An external table
 * without the row is 65 ("unknown job"); jobpub's own table gives a row of NULLs instead. */
int jp_catalog_load_row(struct jp_catalog *c, const struct jp_jobtable *t, const char *job,
                        struct jp_row **row, struct jp_error *err);

/* An attempt as recorded when it starts.  All strings may be NULL except job and token. */
struct jp_attempt {
	const char *job, *token, *host;
	long pid;
	const char *manifest, *workdir, *destination, *sets_json;
	int overwrite; /* the attempt may replace published files (--overwrite) */
};

/* Inserts the attempt (outcome "running") and returns its id in *id. */
int jp_catalog_attempt_begin(struct jp_catalog *c, const struct jp_jobtable *t,
                             const struct jp_attempt *a, int64_t *id, struct jp_error *err);

/*
 * One publisher per job: in one transaction, takes the job's lease (for lease_s seconds), sets
 * its status column to "publishing" and inserts the attempt, as jp_catalog_attempt_begin.  A
 * lease held by a live publisher refuses with 75 ("job 42 is being published by node17:12345
 * since 10:42:03"); one whose owner is gone (in this boot and PID namespace: the pid no longer
 * runs, or names a process started at another time) or whose expiry passed is taken over, and
 * *took_over is set (the caller logs it).  A lease of another host, boot or container, even
 * under this host's name, counts until it expires.  The lease is given back by
 * jp_catalog_record_success / _failure with the same token.
 *
 * A published job (t->published_status, see struct jp_jobtable) keeps its status: its row goes
 * on describing the files that are published while the attempt runs, and after it fails.  With
 * a->overwrite its status is "publishing" meanwhile (files may be replaced), and a failure that
 * replaced nothing (jp_outcome.replaced) gives the published status back.
 */
int jp_catalog_begin(struct jp_catalog *c, const struct jp_jobtable *t, const struct jp_attempt *a,
                     int lease_s, int64_t *id, char *took_over, size_t took_over_len,
                     struct jp_error *err);

/* Records the expanded destination on the attempt as soon as it is known, so `gc` finds the
 * temporary files of a publish that is killed before it ends. */
int jp_catalog_attempt_destination(struct jp_catalog *c, int64_t attempt, const char *dest,
                                   struct jp_error *err);

/* Extends the lease of job (token) by lease_s seconds from now.  Best effort by design: a
 * failure only means the lease may expire earlier. */
int jp_catalog_renew(struct jp_catalog *c, const char *job, const char *token, int lease_s,
                     struct jp_error *err);

/* 1 when token is the token of a lease currently held: not expired, and its owner not known to
 * be gone (for gc: its temporary files are in use). */
/* 1 when a live lease began before t (give or take the clocks): an incomplete upload started
 * at t may be that publisher's. */
int jp_catalog_lease_since(struct jp_catalog *c, time_t t);
int jp_catalog_token_leased(struct jp_catalog *c, const char *token);
/* The same for a job (for republish: a job left "publishing" by a killed publisher). */
int jp_catalog_job_leased(struct jp_catalog *c, const char *job);
/* 1 when an attempt of job that started at or after since (ISO time; NULL: ever) published it:
 * the request of a spool entry created at since is done, whatever later attempts did (a failed
 * re-publish leaves the published files in place).  0 also when that cannot be read, or c is
 * NULL (no catalogue). */
int jp_catalog_published_since(struct jp_catalog *c, const char *job, const char *since);

struct jp_attr; /* validate.h */

/* One published file, as recorded. */
struct jp_file_rec {
	const char *output, *column, *local, *remote, *sha256;
	uint64_t size;
	uint64_t entries;             /* entries of an archive; 0: not an archive (NULL) */
	const struct jp_attr *attrs;  /* HDF5 root attributes for jobpub_attributes; may be NULL */
	size_t n_attrs;
	const char *destination;      /* the destination URL and the key below it (for verify/gc) */
	const char *key;
	const char *etag;             /* the object's ETag where the store has one; may be NULL */
};

/* How an attempt ended. */
struct jp_outcome {
	const char *outcome; /* published, failed_storage, interrupted */
	int code;            /* exit code / jp_class */
	const char *message; /* NULL on success */
	uint64_t bytes;      /* bytes transferred by this attempt */
	size_t files;
	int64_t duration_ms;
	const char *destination; /* the expanded destination, recorded when set (may be NULL) */
	int replaced;            /* a failure after --overwrite replaced a published file: the
	                          * published files are no longer those recorded */
};

/*
 * The commit of a successful publish, in one transaction: every mapped column gets its file's
 * remote URL, the status column gets `published_status`, the job's jobpub_files and
 * jobpub_attributes rows are replaced by `files` and their attributes, the attempt row gets its
 * outcome.  All or nothing.
 */
int jp_catalog_record_success(struct jp_catalog *c, const struct jp_jobtable *t, const char *job,
                              int64_t attempt, const char *published_status,
                              const struct jp_file_rec *files, size_t n,
                              const struct jp_outcome *o, struct jp_error *err);

/* 1 when a file this publisher committed is someone else's by now: the job's lease was taken
 * over, or another job's published row names the same destination and key.  A rollback keeps
 * such files. */
int jp_catalog_claimed_elsewhere(struct jp_catalog *c, const char *job, const char *dest,
                                 const char *key);

/* 1 when a published file at destination/key was recorded with this ETag: its recorded SHA-256
 * (64 hex digits) goes to hex.  0 when not known (or on any error). */
int jp_catalog_known_sha256(struct jp_catalog *c, const char *destination, const char *key,
                            const char *etag, char hex[65]);

/* The lease token a record gives back (NULL: none); set before record_success / _failure. */
void jp_catalog_set_lease_token(struct jp_catalog *c, const char *token);

/* Marks the job failed_storage (mapped columns untouched) and ends the attempt, in one
 * transaction.  attempt < 0: no attempt row to update.  A published job (see jp_catalog_begin)
 * stays published: only its attempt records the failure. */
int jp_catalog_record_failure(struct jp_catalog *c, const struct jp_jobtable *t, const char *job,
                              int64_t attempt, const struct jp_outcome *o, struct jp_error *err);

/* ---- reading, for `jobpub status` ---- */

struct jp_file_info {
	char *output, *column, *local, *remote, *sha256, *published_at;
	int64_t size;
	int64_t entries;   /* -1: not an archive */
	char *destination; /* NULL for rows written before schema 3 */
	char *key;
	char *etag;        /* NULL where the store has none (and before schema 4) */
};

struct jp_attempt_info {
	int64_t id, pid, exit_code, bytes, files, duration_ms; /* -1 when NULL */
	char *started_at, *finished_at, *host, *outcome, *error_class, *message;
	char *manifest, *workdir, *destination, *sets;
};

struct jp_job_info {
	char *table, *id_column, *status_column; /* from the latest attempt, else jobs/id/status */
	char *status;                            /* NULL when the job has no row */
	struct jp_row *row;                      /* the whole row, or NULL */
	struct jp_file_info *files;
	size_t n_files;
	struct jp_attempt_info *attempts;        /* oldest first */
	size_t n_attempts;
	/* A live lease on the job (someone is publishing it now; a published job keeps its
	 * status meanwhile): its holder's host, pid and since; holder NULL when none. */
	char *lease_host, *lease_since;
	int64_t lease_pid;
};

/* Everything known about job.  *out is NULL (and JP_OK) when the catalogue has never heard of
 * it.  Free with jp_job_info_free. */
int jp_catalog_job_info(struct jp_catalog *c, const char *job, struct jp_job_info **out,
                        struct jp_error *err);
void jp_job_info_free(struct jp_job_info *ji);

/* Every job jobpub has an attempt for, with its current status (NULL: no row), its table and
 * its latest attempt: for `republish`.  fn returns 0 to go on. */
struct jp_job_brief {
	const char *job, *status, *table, *id_column, *status_column;
	const char *manifest, *workdir, *destination, *sets, *started_at, *outcome;
};
typedef int (*jp_job_fn)(void *arg, const struct jp_job_brief *b);
int jp_catalog_jobs(struct jp_catalog *c, jp_job_fn fn, void *arg, struct jp_error *err);

/* Every jobpub_files row (job NULL: of all jobs), for `verify` and `gc`. */
typedef int (*jp_file_fn)(void *arg, const char *job, const struct jp_file_info *f);
int jp_catalog_files(struct jp_catalog *c, const char *job, jp_file_fn fn, void *arg,
                     struct jp_error *err);

/* Every destination any attempt or file names (expanded URLs only), for `gc`. */
typedef int (*jp_url_fn)(void *arg, const char *url);
int jp_catalog_destinations(struct jp_catalog *c, jp_url_fn fn, void *arg, struct jp_error *err);

/* Calls fn for each (table, status, count) over the job tables jobpub has published into. */
typedef void (*jp_count_fn)(void *arg, const char *table, const char *status, int64_t count);
int jp_catalog_status_counts(struct jp_catalog *c, jp_count_fn fn, void *arg,
                             struct jp_error *err);

#endif
