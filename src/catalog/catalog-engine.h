/*
 * catalog-engine.h - the contract between the catalogue's domain logic (catalog.c: attempts,
 * leases, status transitions) and the database engines that store it (catalog-sqlite.c; next
 * PostgreSQL and MariaDB, one file each).  Only catalog.c and the engines include this header.
 *
 * The model is sqlite's sqlite3_io_methods and git's ref_storage_be: one const table of
 * function pointers per engine, chosen once by the catalogue's location (a plain path or
 * "sqlite:..." is SQLite; an engine claims its URL schemes), versioned by iVersion so that the
 * table can grow without breaking engines written against an older version.
 *
 * The domain writes portable SQL with `?` placeholders (numbered in order, each bound by its
 * own index; an engine for libpq translates them to $1..), quotes every identifier with
 * quote_ident(), and asks the engine for whatever differs between dialects: the DDL of each
 * schema version, how the schema version is stored, upserts, the list of a table's columns,
 * and transactions that take the write lock at once.
 *
 * Errors: every fallible call returns a severity (error.h): JP_OK, JP_RETRY when the database
 * stayed busy or locked past the timeout (or stop() ended the wait), JP_FAILED otherwise, and
 * leaves the class and the engine's own message ("database is locked", no prefix) in the
 * connection's err.  The domain adds "catalog: LOCATION: WHAT: " and its busy wording.
 */
#ifndef JP_CATALOG_ENGINE_H
#define JP_CATALOG_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct jp_catalog_engine;

/* The base of an engine's connection: each engine's connection struct starts with it. */
struct jp_cat_conn {
	const struct jp_catalog_engine *engine;
	int timeout_ms;      /* how long a lock is waited for */
	int (*stop)(void);   /* asked while waiting for a lock; non-zero ends the wait (may be
	                      * NULL; the domain may change it at any time) */
	struct jp_error err; /* the last failure: class and the engine's message */
};

/* The base of a prepared statement. */
struct jp_cat_stmt {
	struct jp_cat_conn *conn;
};

/* How to open (jp_cat_open.flags). */
#define JP_CAT_OPEN_READONLY 1 /* never write; the database must exist */
#define JP_CAT_OPEN_NOCREATE 2 /* the database must exist */

struct jp_cat_open {
	int flags;
	int timeout_ms;
	int (*stop)(void);
};

/* What step() returns besides a severity: a row is ready.  JP_OK means done. */
#define JP_CAT_ROW 1

/* An upsert for upsert_sql(): a row keyed by the first n_key columns. */
enum jp_cat_conflict {
	JP_CAT_REPLACE, /* a row with the same key is replaced (SQLite: INSERT OR REPLACE) */
	JP_CAT_IGNORE,  /* a row with the same key stays; nothing is inserted (INSERT OR IGNORE) */
};

#define JP_CAT_ENGINE_V1 1

struct jp_catalog_engine {
	int iVersion; /* JP_CAT_ENGINE_V1: every slot below exists; later slots say their version */
	const char *name;            /* "sqlite": for messages */
	const char *const *schemes;  /* URL schemes it claims ("sqlite"), NULL-terminated */
	int plain_paths;             /* it claims locations without a scheme (file paths) */

	/* ---- locations (no connection) ---- */

	/* 0 when loc is a well-formed location for this engine; else -1 and why says what is
	 * wrong with it (reported as a configuration error, 78). */
	int (*check)(const char *loc, char *why, size_t whylen);

	/* Does the database at loc exist?  1 yes, 0 certainly not (ENOENT), -1 cannot tell; why
	 * gets the reason when not 1 (strerror's words for SQLite). */
	int (*exists)(const char *loc, char *why, size_t whylen);
	/* The one spelling of loc that every command computes alike (spool entries record it and
	 * republish compares it): for SQLite the absolute path, realpath() of the file or of its
	 * directory.  malloc'd; NULL with errno set (ENOENT: its directory does not exist, EINVAL:
	 * not a database name, ENOMEM). */
	char *(*canonical)(const char *loc);
	/* 1 when loc names the same database whatever the current directory. */
	int (*absolute)(const char *loc);

	/* ---- connection ---- */

	/* Connects; only reads (a file that is not a database is found here).  On failure sets e
	 * (class and message) and returns its severity. */
	int (*open)(const char *loc, const struct jp_cat_open *how, struct jp_cat_conn **out,
	            struct jp_error *e);
	void (*close)(struct jp_cat_conn *c); /* c may be NULL */
	/* Runs sql (one or more statements that return no rows, no parameters). */
	int (*exec)(struct jp_cat_conn *c, const char *sql);
	/* write: the transaction takes the write lock now (SQLite: BEGIN IMMEDIATE), so that what
	 * it reads stays true until it commits. */
	int (*begin)(struct jp_cat_conn *c, int write);
	int (*commit)(struct jp_cat_conn *c);
	void (*rollback)(struct jp_cat_conn *c); /* best effort; nothing open is fine */

	/* ---- statements ---- */

	int (*prepare)(struct jp_cat_conn *c, const char *sql, struct jp_cat_stmt **out);
	/* Parameters count from 1.  bind_text copies s; NULL binds SQL NULL. */
	void (*bind_text)(struct jp_cat_stmt *st, int i, const char *s);
	void (*bind_int)(struct jp_cat_stmt *st, int i, int64_t v);
	void (*bind_null)(struct jp_cat_stmt *st, int i);
	/* Binds a job ID compared with a job table's id column, whose type the manifest's table
	 * chose (pdr_run keys jobs by INTEGER, jobpub's own table by TEXT). */
	void (*bind_key)(struct jp_cat_stmt *st, int i, const char *job);
	/* JP_CAT_ROW, JP_OK when done, or a severity (the statement may be reset and run again). */
	int (*step)(struct jp_cat_stmt *st);
	void (*reset)(struct jp_cat_stmt *st);   /* to run again with new values */
	int (*column_count)(struct jp_cat_stmt *st);
	const char *(*column_name)(struct jp_cat_stmt *st, int i); /* from 0 */
	int (*column_null)(struct jp_cat_stmt *st, int i);
	/* Valid until the next step, reset or finalize; NULL for SQL NULL. */
	const char *(*column_text)(struct jp_cat_stmt *st, int i);
	int64_t (*column_int)(struct jp_cat_stmt *st, int i);
	void (*finalize)(struct jp_cat_stmt *st); /* st may be NULL */
	/* Rows the last UPDATE or DELETE matched.  (A new row's id comes from INSERT ...
	 * RETURNING, which every engine's database has.) */
	int64_t (*changes)(struct jp_cat_conn *c);

	/* ---- identifiers and dialect ---- */

	/* Writes name quoted for this dialect into out ("\"name\"" for SQLite and PostgreSQL,
	 * `name` for MariaDB).  -1 when name is no identifier jobpub accepts
	 * (jp_is_identifier) or out is too short: nothing from a manifest reaches SQL unchecked. */
	int (*quote_ident)(const char *name, char *out, size_t len);
	/* "INSERT ... INTO table (cols) VALUES (?, ...)" that replaces or keeps a row with the
	 * same key (the first n_key columns).  malloc'd; NULL when out of memory. */
	char *(*upsert_sql)(const char *table, const char *const *cols, size_t n, size_t n_key,
	                    enum jp_cat_conflict on_conflict);
	/* 1 when the last failure says the column being added exists already (another publisher
	 * added it at the same moment). */
	int (*duplicate_column)(struct jp_cat_conn *c);

	/* ---- schema ---- */

	/* migrations[i] takes jobpub's tables from version i to i + 1 (the engine's DDL for
	 * catalog.h's JP_SCHEMA_VERSION versions); own_table creates jobpub's own job table `jobs`
	 * (id, status, created_at, updated_at) when missing. */
	const char *const *migrations;
	int n_migrations;
	const char *own_table;
	/* jobpub's schema version (0: jobpub has not written here), read and set inside the
	 * caller's transaction. */
	int (*schema_version)(struct jp_cat_conn *c, int *version);
	int (*set_schema_version)(struct jp_cat_conn *c, int version);
	/* The column names of table, in order; none when it does not exist.  *cols is malloc'd
	 * (free each and the array). */
	int (*table_columns)(struct jp_cat_conn *c, const char *table, char ***cols, size_t *n);
	/* 1 when table exists (0 also when that cannot be read). */
	int (*table_exists)(struct jp_cat_conn *c, const char *table);
	/* Called once the schema is migrated by this connection (from version `from`): the
	 * engine's own setup of a new catalogue (SQLite: WAL, unless on a network filesystem).
	 * Best effort.  May be NULL. */
	void (*migrated)(struct jp_cat_conn *c, int from);
};

/* The engines (catalog.c keeps the registry). */
extern const struct jp_catalog_engine jp_catalog_sqlite;

/* The engine for loc, NULL when no engine claims its scheme.  A location is a URL only when
 * it starts with "SCHEME:" for a scheme an engine claims, or with "SCHEME://": "my:cat.db" is
 * a file. */
const struct jp_catalog_engine *jp_catalog_engine_for(const char *loc);

/* Statement calls through the table, so the domain reads like SQL code. */
static inline void
jp_cat_bind_text(struct jp_cat_stmt *st, int i, const char *s)
{
	st->conn->engine->bind_text(st, i, s);
}

static inline void
jp_cat_bind_int(struct jp_cat_stmt *st, int i, int64_t v)
{
	st->conn->engine->bind_int(st, i, v);
}

static inline void
jp_cat_bind_null(struct jp_cat_stmt *st, int i)
{
	st->conn->engine->bind_null(st, i);
}

static inline int
jp_cat_step(struct jp_cat_stmt *st)
{
	return st->conn->engine->step(st);
}

static inline void
jp_cat_reset(struct jp_cat_stmt *st)
{
	st->conn->engine->reset(st);
}

static inline const char *
jp_cat_text(struct jp_cat_stmt *st, int i)
{
	return st->conn->engine->column_text(st, i);
}

static inline int64_t
jp_cat_int(struct jp_cat_stmt *st, int i)
{
	return st->conn->engine->column_int(st, i);
}

static inline int
jp_cat_null(struct jp_cat_stmt *st, int i)
{
	return st->conn->engine->column_null(st, i);
}

static inline void
jp_cat_finalize(struct jp_cat_stmt *st)
{
	if (st != NULL)
		st->conn->engine->finalize(st);
}

#endif
