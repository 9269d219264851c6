/*
 * catalog.c - the catalogue's domain logic: jobpub's tables and their versions, the job
 * table's checks, attempts, leases and status transitions.  It speaks SQL with `?`
 * placeholders and asks its engine (catalog-engine.h; catalog-sqlite.c) for everything a
 * dialect does differently; no engine's API is called here.
 *
 * Identifiers from the manifest reach SQL only after jp_is_identifier(), a check against the
 * table's real columns, and the engine's quote_ident(); every value is bound.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "catalog-engine.h"
#include "catalog.h"
#include "util.h"
#include "validate.h"

struct jp_catalog {
	const struct jp_catalog_engine *eng;
	struct jp_cat_conn *conn;
	char *path;          /* the location as given, for messages */
	int readonly;
	int timeout_ms;
	char *lease_token;   /* given back by the records */
	int version;         /* schema version as opened (a reader may see an older one) */
	int keep_status;     /* the job is published: a failure leaves its row alone */
	int busy;            /* the last failure was the lock wait running out */
	char *restore_status; /* published, --overwrite: a failure that replaced nothing gives
	                       * this status back */
};

static int ensure_own_row(struct jp_catalog *, const struct jp_jobtable *, const char *,
                          struct jp_error *);
static int update_row(struct jp_catalog *, const struct jp_jobtable *, const char *, const char *,
                      const struct jp_file_rec *, size_t, int, struct jp_error *);

/* ---- engines ---- */

/* The registry: a new engine is one file and one line here. */
static const struct jp_catalog_engine *const engines[] = {
	&jp_catalog_sqlite,
};

#define N_ENGINES (sizeof(engines) / sizeof(engines[0]))

/* Length of loc's "SCHEME:" prefix when it has the form of one (RFC 3986: a letter, then
 * letters, digits, '+', '-', '.'), else 0. */
static size_t
scheme_len(const char *loc)
{
	size_t i = 0;

	if (!((loc[0] >= 'a' && loc[0] <= 'z') || (loc[0] >= 'A' && loc[0] <= 'Z')))
		return 0;
	while ((loc[i] >= 'a' && loc[i] <= 'z') || (loc[i] >= 'A' && loc[i] <= 'Z') ||
	       (loc[i] >= '0' && loc[i] <= '9') || loc[i] == '+' || loc[i] == '-' || loc[i] == '.')
		i++;
	return loc[i] == ':' ? i : 0;
}

const struct jp_catalog_engine *
jp_catalog_engine_for(const char *loc)
{
	size_t n = scheme_len(loc), i;
	const char *const *s;

	/* "SCHEME:" for a scheme an engine claims is that engine's URL. */
	for (i = 0; n > 0 && i < N_ENGINES; i++)
		for (s = engines[i]->schemes; s != NULL && *s != NULL; s++)
			if (strlen(*s) == n && strncasecmp(*s, loc, n) == 0)
				return engines[i];
	/* "SCHEME://" is a URL nobody claims; anything else ("my:cat.db" too) is a file. */
	if (n > 0 && strncmp(loc + n, "://", 3) == 0)
		return NULL;
	for (i = 0; i < N_ENGINES; i++)
		if (engines[i]->plain_paths)
			return engines[i];
	return NULL;
}

int
jp_catalog_location_check(const char *loc, struct jp_error *err)
{
	const struct jp_catalog_engine *e = jp_catalog_engine_for(loc);
	char list[128] = "", why[256];
	size_t i, n;
	const char *const *s;

	if (e != NULL && e->check(loc, why, sizeof(why)) == 0)
		return JP_OK;
	if (e != NULL)
		return jp_error_set(err, JP_E_CONFIG, "catalog: %s: %s", loc, why);
	for (i = 0; i < N_ENGINES; i++)
		for (s = engines[i]->schemes; s != NULL && *s != NULL; s++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s:",
			         list[0] ? ", " : "", *s);
	n = scheme_len(loc);
	return jp_error_set(err, JP_E_CONFIG,
	                    "catalog: %s: no catalogue engine for scheme '%.*s' (supported: %s, or a "
	                    "file path)",
	                    loc, (int)n, loc, list);
}

const char *
jp_catalog_default_location(void)
{
	return "jobpub.db";
}

int
jp_catalog_exists(const char *loc, char *why, size_t whylen)
{
	const struct jp_catalog_engine *e = jp_catalog_engine_for(loc);

	if (e == NULL) {
		snprintf(why, whylen, "no catalogue engine for this scheme");
		return -1;
	}
	return e->exists(loc, why, whylen);
}

char *
jp_catalog_locator_canonical(const char *loc)
{
	const struct jp_catalog_engine *e = jp_catalog_engine_for(loc);

	if (e == NULL) {
		errno = EPROTONOSUPPORT;
		return NULL;
	}
	return e->canonical(loc);
}

int
jp_catalog_locator_absolute(const char *loc)
{
	const struct jp_catalog_engine *e = jp_catalog_engine_for(loc);

	return e != NULL && e->absolute(loc);
}

/* ---- errors and the engine's calls ---- */

static int (*default_stop)(void);

void
jp_catalog_set_stop(struct jp_catalog *c, int (*stop)(void))
{
	c->conn->stop = stop;
}

void
jp_catalog_set_default_stop(int (*stop)(void))
{
	default_stop = stop;
}

/* The engine's failure r (its message on the connection) as the catalogue's error: a lock that
 * outlived the timeout, or a wait that stop() ended, is worth a retry. */
static int
db_error(struct jp_catalog *c, int r, struct jp_error *err, const char *what)
{
	if (r == JP_RETRY && c->conn->stop != NULL && c->conn->stop())
		return jp_error_set(err, JP_E_TEMPFAIL,
		                    "catalog: %s: %s: interrupted while waiting for the lock", c->path,
		                    what);
	if (r == JP_RETRY) {
		c->busy = 1;
		return jp_error_set(err, JP_E_TEMPFAIL,
		                    "catalog: %s: %s: database is locked by another process (waited %d "
		                    "ms; --db-timeout sets the limit)",
		                    c->path, what, c->timeout_ms);
	}
	return jp_error_set(err, c->conn->err.code ? c->conn->err.code : JP_E_IOERR,
	                    "catalog: %s: %s: %s", c->path, what, c->conn->err.msg);
}

/* Out of memory while reading rows: as the engine would say it. */
static int
oom(struct jp_catalog *c)
{
	jp_error_clear(&c->conn->err);
	return jp_error_set(&c->conn->err, JP_E_SOFTWARE, "catalog: out of memory");
}

static int
exec(struct jp_catalog *c, const char *sql, struct jp_error *err, const char *what)
{
	int r = c->eng->exec(c->conn, sql);

	return r == JP_OK ? JP_OK : db_error(c, r, err, what);
}

/* A transaction that holds the write lock from its start. */
static int
begin(struct jp_catalog *c, struct jp_error *err, const char *what)
{
	int r = c->eng->begin(c->conn, 1);

	return r == JP_OK ? JP_OK : db_error(c, r, err, what);
}

static int
commit(struct jp_catalog *c, struct jp_error *err, const char *what)
{
	int r = c->eng->commit(c->conn);

	return r == JP_OK ? JP_OK : db_error(c, r, err, what);
}

static int
prepare(struct jp_catalog *c, const char *sql, struct jp_cat_stmt **st, struct jp_error *err)
{
	int r = c->eng->prepare(c->conn, sql, st);

	return r == JP_OK ? JP_OK : db_error(c, r, err, "prepare");
}

/* Prepares the engine's INSERT of cols into table that replaces (or keeps) a row with the same
 * key, the first n_key columns. */
static int
prepare_upsert(struct jp_catalog *c, const char *table, const char *const *cols, size_t n,
               size_t n_key, enum jp_cat_conflict on_conflict, struct jp_cat_stmt **st,
               struct jp_error *err)
{
	char *sql = c->eng->upsert_sql(table, cols, n, n_key, on_conflict);
	int r;

	if (sql == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, "catalog: out of memory");
	r = prepare(c, sql, st, err);
	free(sql);
	return r;
}

/* Writes name quoted by the engine into out; its callers have checked it already. */
static const char *
quote(struct jp_catalog *c, const char *name, char *out, size_t len)
{
	return c->eng->quote_ident(name, out, len) == 0 ? out : NULL;
}

/* Runs a statement that returns no rows and finalizes it. */
static int
step_done(struct jp_catalog *c, struct jp_cat_stmt *st, struct jp_error *err, const char *what)
{
	int rc = jp_cat_step(st);

	jp_cat_finalize(st);
	return rc == JP_OK ? JP_OK : db_error(c, rc == JP_CAT_ROW ? JP_FAILED : rc, err, what);
}

/* jobpub's schema version, 0 when jobpub has not written here yet. */
static int
read_version(struct jp_catalog *c, int *v, struct jp_error *err)
{
	int r = c->eng->schema_version(c->conn, v);

	return r == JP_OK ? JP_OK : db_error(c, r, err, "read schema version");
}

static int
newer_schema(struct jp_catalog *c, int version, struct jp_error *err)
{
	return jp_error_set(err, JP_E_CONFIG,
	                    "catalog: %s: schema version %d is newer than this jobpub knows (%d); "
	                    "upgrade jobpub",
	                    c->path, version, JP_SCHEMA_VERSION);
}

/*
 * Brings jobpub's tables up to date before the first write of this connection.  The version
 * was read at open without a lock; only a catalogue that needs a migration is locked (a write
 * transaction), and the version is read again under the lock: another process may have
 * migrated it meanwhile.  A current catalogue costs no write lock: 50 publishers opening one
 * catalogue at once wait only for each other's short records.
 */
static int
ensure_schema(struct jp_catalog *c, struct jp_error *err)
{
	const int n = JP_SCHEMA_VERSION;
	int version = 0, r, i;

	if (c->readonly || c->version == n)
		return JP_OK;
	if ((r = begin(c, err, "migrate")) != JP_OK)
		return r;
	if ((r = c->eng->schema_version(c->conn, &version)) != JP_OK) {
		r = db_error(c, r, err, "migrate");
		goto fail;
	}
	if (version > n) {
		r = newer_schema(c, version, err);
		goto fail;
	}
	for (i = version; i < n; i++) {
		if ((r = exec(c, c->eng->migrations[i], err, "migrate")) != JP_OK)
			goto fail;
		if ((r = c->eng->set_schema_version(c->conn, i + 1)) != JP_OK) {
			r = db_error(c, r, err, "migrate");
			goto fail;
		}
	}
	if ((r = commit(c, err, "migrate")) != JP_OK)
		goto fail;
	c->version = n;
	if (version < n && c->eng->migrated != NULL)
		c->eng->migrated(c->conn, version);
	return JP_OK;
fail:
	c->eng->rollback(c->conn);
	return r;
}

/* A write transaction on a current schema: every change to the catalogue starts here. */
static int
begin_write(struct jp_catalog *c, struct jp_error *err)
{
	int r;

	if ((r = ensure_schema(c, err)) != JP_OK)
		return r;
	return begin(c, err, "begin");
}

int
jp_catalog_open(const char *path, int timeout_ms, int mode, struct jp_catalog **out,
                struct jp_error *err)
{
	const struct jp_catalog_engine *eng;
	struct jp_catalog *c;
	struct jp_cat_open how;
	struct jp_error e;
	char why[256];
	int r, readonly = (mode & JP_CATALOG_READONLY) != 0;

	*out = NULL;
	if ((r = jp_catalog_location_check(path, err)) != JP_OK)
		return r;
	eng = jp_catalog_engine_for(path);
	/* Engines of a newer table than this catalog.c knows work as the version they offer. */
	if (eng->iVersion < JP_CAT_ENGINE_V1 || eng->n_migrations != JP_SCHEMA_VERSION)
		return jp_error_set(err, JP_E_SOFTWARE, "catalog: %s: engine %s does not fit",
		                    path, eng->name);
	/* A catalogue with someone else's job table is that project's database: a path that
	 * names nothing is a mistake (a typo in --db), not a catalogue to create. */
	if ((mode & JP_CATALOG_EXISTING) && eng->exists(path, why, sizeof(why)) != 1)
		return jp_error_set(err, JP_E_NOINPUT,
		                    "catalog: %s: %s (the manifest's catalog.table is an existing table, "
		                    "so the catalogue must exist; check --db)",
		                    path, why);
	if (readonly && eng->exists(path, why, sizeof(why)) != 1)
		return jp_error_set(err, JP_E_NOINPUT, "catalog: %s: %s", path, why);
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->path = strdup(path)) == NULL) {
		free(c);
		return jp_error_set(err, JP_E_SOFTWARE, "catalog: out of memory");
	}
	c->eng = eng;
	c->readonly = readonly;
	c->timeout_ms = timeout_ms;
	how.flags = readonly                       ? JP_CAT_OPEN_READONLY
	            : (mode & JP_CATALOG_EXISTING) ? JP_CAT_OPEN_NOCREATE
	                                           : 0;
	how.timeout_ms = timeout_ms;
	how.stop = default_stop;
	jp_error_clear(&e);
	/* Only reads here, whatever the mode: "not a database" is found now, and the schema is
	 * migrated (under a write lock) by the first write that needs it, never by a reader (a
	 * dry run changes nothing: it reads what this version has). */
	if ((r = eng->open(path, &how, &c->conn, &e)) != JP_OK) {
		if (r == JP_RETRY && default_stop != NULL && default_stop())
			r = jp_error_set(err, JP_E_TEMPFAIL,
			                 "catalog: %s: open: interrupted while waiting for the lock", path);
		else if (r == JP_RETRY) {
			c->busy = 1;
			r = jp_error_set(err, JP_E_TEMPFAIL,
			                 "catalog: %s: open: database is locked by another process (waited "
			                 "%d ms; --db-timeout sets the limit)",
			                 path, timeout_ms);
		} else
			r = jp_error_set(err, e.code ? e.code : JP_E_IOERR, "catalog: %s: open: %s", path,
			                 e.msg);
		goto fail;
	}
	if ((r = read_version(c, &c->version, err)) != JP_OK)
		goto fail;
	if (!readonly && c->version > JP_SCHEMA_VERSION) {
		r = newer_schema(c, c->version, err);
		goto fail;
	}
	*out = c;
	return JP_OK;
fail:
	jp_catalog_close(c);
	return r;
}

void
jp_catalog_close(struct jp_catalog *c)
{
	if (c == NULL)
		return;
	if (c->conn != NULL)
		c->eng->close(c->conn);
	free(c->path);
	free(c->lease_token);
	free(c->restore_status);
	free(c);
}

int
jp_catalog_readonly(const struct jp_catalog *c)
{
	return c->readonly;
}

int
jp_catalog_busy(const struct jp_catalog *c)
{
	return c->busy;
}

int
jp_catalog_empty(const struct jp_catalog *c)
{
	return c->version == 0;
}

/* Column names of table, as the engine reads them (the table name is bound, not pasted). */
static int
table_columns(struct jp_catalog *c, const char *table, char ***cols, size_t *n,
              struct jp_error *err)
{
	int r = c->eng->table_columns(c->conn, table, cols, n);

	return r == JP_OK ? JP_OK : db_error(c, r, err, "table_info");
}

static void
free_strv(char **v, size_t n)
{
	while (n > 0)
		free(v[--n]);
	free(v);
}

static int
has_col(char **cols, size_t n, const char *name)
{
	size_t i;

	/* SQLite (and MariaDB) match column names case-insensitively; so do we. */
	for (i = 0; i < n; i++)
		if (strcasecmp(cols[i], name) == 0)
			return 1;
	return 0;
}

int
jp_catalog_prepare(struct jp_catalog *c, const struct jp_jobtable *t, const char *const *columns,
                   size_t n, struct jp_error *err)
{
	char **cols = NULL;
	size_t ncols = 0, i;
	int r;

	if (!jp_is_identifier(t->table) || !jp_is_identifier(t->id_column) ||
	    !jp_is_identifier(t->status_column))
		return jp_error_set(err, JP_E_DATA, "catalog: invalid table or column name");
	if ((r = table_columns(c, t->table, &cols, &ncols, err)) != JP_OK)
		return r;
	if (ncols == 0 && !t->external && c->readonly)
		return JP_OK; /* no job has used jobpub's own table yet: rows of NULLs */
	if (ncols == 0 && !t->external) {
		if ((r = ensure_schema(c, err)) != JP_OK ||
		    (r = exec(c, c->eng->own_table, err, "create table jobs")) != JP_OK ||
		    (r = table_columns(c, t->table, &cols, &ncols, err)) != JP_OK)
			return r;
	}
	if (ncols == 0) {
		r = jp_error_set(err, JP_E_DATA, "catalog: %s: no table '%s'%s", c->path, t->table,
		                 t->external ? " (catalog.table must name an existing table)" : "");
		goto out;
	}
	if (!has_col(cols, ncols, t->id_column) || !has_col(cols, ncols, t->status_column)) {
		r = jp_error_set(err, JP_E_DATA, "catalog: table %s has no column '%s'", t->table,
		                 has_col(cols, ncols, t->id_column) ? t->status_column : t->id_column);
		goto out;
	}
	/* jobpub's own tables are made by the first write (jp_catalog_begin), after every check:
	 * a manifest naming a wrong table or column changes nothing. */
	for (i = 0; i < n; i++) {
		char sql[256], qt[80], qc[80];

		if (!jp_is_identifier(columns[i])) {
			r = jp_error_set(err, JP_E_DATA, "catalog: invalid column name");
			goto out;
		}
		if (has_col(cols, ncols, columns[i]))
			continue;
		if (t->external || c->readonly) {
			if (!t->external)
				continue; /* would be added by a real publish */
			r = jp_error_set(err, JP_E_DATA, "catalog: table %s has no column '%s'", t->table,
			                 columns[i]);
			goto out;
		}
		snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s TEXT",
		         quote(c, t->table, qt, sizeof(qt)), quote(c, columns[i], qc, sizeof(qc)));
		if ((r = exec(c, sql, err, "add column")) != JP_OK &&
		    c->eng->duplicate_column(c->conn)) {
			/* Another publisher added it at the same moment: that is what we wanted. */
			jp_error_clear(err);
			r = JP_OK;
		}
		if (r != JP_OK)
			goto out;
	}
	r = JP_OK;
out:
	free_strv(cols, ncols);
	return r;
}

static int
table_exists(struct jp_catalog *c, const char *table)
{
	return c->eng->table_exists(c->conn, table);
}

static char *
dup_col(struct jp_cat_stmt *st, int i)
{
	const char *s = jp_cat_text(st, i);

	return s ? strdup(s) : NULL;
}

int
jp_catalog_load_row(struct jp_catalog *c, const struct jp_jobtable *t, const char *job,
                    struct jp_row **out, struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	struct jp_row *row;
	char sql[256], qt[80], qi[80];
	int rc, r, i;

	*out = NULL;
	if ((row = calloc(1, sizeof(*row))) == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, "catalog: out of memory");
	/* jobpub's own table before any job used it (a dry run): a row of nothing. */
	if (!t->external && !table_exists(c, t->table)) {
		*out = row;
		return JP_OK;
	}
	if (quote(c, t->table, qt, sizeof(qt)) == NULL || quote(c, t->id_column, qi, sizeof(qi)) == NULL) {
		r = jp_error_set(err, JP_E_DATA, "catalog: invalid table or column name");
		goto fail;
	}
	snprintf(sql, sizeof(sql), "SELECT * FROM %s WHERE %s = ?", qt, qi);
	if ((r = prepare(c, sql, &st, err)) != JP_OK)
		goto fail;
	c->eng->bind_key(st, 1, job);
	rc = jp_cat_step(st);
	if (rc != JP_CAT_ROW && rc != JP_OK) {
		r = db_error(c, rc, err, "read job row");
		goto fail;
	}
	row->n = (size_t)c->eng->column_count(st);
	row->names = calloc(row->n + 1, sizeof(char *));
	row->values = calloc(row->n + 1, sizeof(char *));
	if (row->names == NULL || row->values == NULL)
		goto nomem;
	for (i = 0; i < (int)row->n; i++) {
		if ((row->names[i] = strdup(c->eng->column_name(st, i))) == NULL)
			goto nomem;
		if (rc == JP_CAT_ROW && !jp_cat_null(st, i) &&
		    (row->values[i] = dup_col(st, i)) == NULL)
			goto nomem;
	}
	if (rc == JP_OK && t->external) {
		r = jp_error_set(err, JP_E_DATA, "catalog: unknown job %s: no row with %s = %s in table %s",
		                 job, t->id_column, job, t->table);
		goto fail;
	}
	jp_cat_finalize(st);
	*out = row;
	return JP_OK;
nomem:
	r = jp_error_set(err, JP_E_SOFTWARE, "catalog: out of memory");
fail:
	jp_cat_finalize(st);
	jp_row_free(row);
	return r;
}

int
jp_catalog_attempt_begin(struct jp_catalog *c, const struct jp_jobtable *t,
                         const struct jp_attempt *a, int64_t *id, struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	char now[32];
	int r;

	if ((r = ensure_schema(c, err)) != JP_OK)
		return r;
	r = prepare(c,
	            "INSERT INTO jobpub_attempts (job, token, started_at, host, pid, manifest, workdir,"
	            " destination, sets, job_table, id_column, status_column)"
	            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
	            &st, err);
	if (r != JP_OK)
		return r;
	jp_cat_bind_text(st, 1, a->job);
	jp_cat_bind_text(st, 2, a->token);
	jp_cat_bind_text(st, 3, jp_now_iso(now, sizeof(now)));
	jp_cat_bind_text(st, 4, a->host);
	jp_cat_bind_int(st, 5, a->pid);
	jp_cat_bind_text(st, 6, a->manifest);
	jp_cat_bind_text(st, 7, a->workdir);
	jp_cat_bind_text(st, 8, a->destination);
	jp_cat_bind_text(st, 9, a->sets_json);
	jp_cat_bind_text(st, 10, t->table);
	jp_cat_bind_text(st, 11, t->id_column);
	jp_cat_bind_text(st, 12, t->status_column);
	/* A single INSERT is its own transaction; the busy timeout covers the wait for the lock.
	 * RETURNING (SQLite 3.35, PostgreSQL, MariaDB 10.5) gives the id in every dialect. */
	if ((r = jp_cat_step(st)) != JP_CAT_ROW) {
		jp_cat_finalize(st);
		return db_error(c, r == JP_OK ? JP_FAILED : r, err, "record attempt");
	}
	*id = jp_cat_int(st, 0);
	return step_done(c, st, err, "record attempt");
}

/*
 * Where a pid names a process: the kernel's boot ID and the PID namespace, as
 * "<boot id>/pid:[<inode>]"; "" when /proc does not say.  Host names clash (two nodes named
 * alike, a container named like its host), and after a reboot or in another container the
 * same pid is someone else: a lease owner is asked about only where its pid means it.
 */
static const char *
pid_scope(void)
{
	static char scope[128];
	static int done;
	char boot[64] = "", ns[64] = "";
	ssize_t n;
	FILE *fp;

	if (done)
		return scope;
	done = 1;
	if ((fp = fopen("/proc/sys/kernel/random/boot_id", "re")) != NULL) {
		if (fgets(boot, sizeof(boot), fp) == NULL)
			boot[0] = '\0';
		fclose(fp);
	}
	boot[strcspn(boot, "\n")] = '\0';
	if ((n = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1)) > 0)
		ns[n] = '\0';
	else
		ns[0] = '\0';
	if (strlen(boot) >= 32 && ns[0] != '\0')
		snprintf(scope, sizeof(scope), "%s/%s", boot, ns);
	return scope;
}

/* A process's start time (clock ticks after boot, field 22 of /proc/PID/stat): with the pid
 * it names one process for the whole boot, as a reused pid gets another start time.  -1 when
 * there is no such process; *zombie set for one that ended and waits to be reaped. */
static long long
proc_start(long pid, int *zombie)
{
	char path[64], buf[1024], *p;
	long long start = -1;
	size_t len;
	FILE *fp;
	int i;

	*zombie = 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fp = fopen(path, "re")) == NULL)
		return -1;
	len = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[len] = '\0';
	/* The command name (field 2) may hold spaces and parentheses: fields go on after the
	 * last ')'.  Then field 3 is the state, and field 22 the start time. */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return -1;
	p += 2;
	*zombie = *p == 'Z' || *p == 'X';
	for (i = 3; i < 22 && p != NULL; i++)
		if ((p = strchr(p, ' ')) != NULL)
			p++;
	if (p != NULL)
		start = strtoll(p, NULL, 10);
	return start;
}

/*
 * Is the holder of a lease gone?  Only a process in this boot of this kernel, in this PID
 * namespace, can be asked: there a pid that no longer runs, has ended, or now names a process
 * that started at another time (the pid was reused) is gone.  A lease held elsewhere -- another
 * host, even one with the same name, another boot, another container -- counts until it
 * expires.  Leases written before schema 5 have no scope: host name and pid only.
 */
static int
owner_gone(const char *host, long pid, const char *scope, long long start)
{
	char me[256] = "";
	long long now;
	int zombie;

	if (pid <= 0)
		return 0;
	if (scope == NULL) {
		gethostname(me, sizeof(me) - 1);
		if (host == NULL || strcmp(host, me) != 0)
			return 0;
	} else if (pid_scope()[0] == '\0' || strcmp(scope, pid_scope()) != 0) {
		return 0;
	}
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
		return 1;
	/* It exists (kill said so, perhaps EPERM: another user's).  A start time /proc will not
	 * show (hidepid) proves nothing. */
	now = proc_start(pid, &zombie);
	return zombie || (scope != NULL && start > 0 && now > 0 && now != start);
}

/* The columns owner_gone needs, for a SELECT: host, pid, boot_id, start_time. */
static const char *
owner_cols(const struct jp_catalog *c)
{
	return c->version >= 5 ? "host, pid, boot_id, start_time" : "host, pid, NULL, NULL";
}

static int
owner_gone_at(struct jp_cat_stmt *st, int i)
{
	return owner_gone((const char *)jp_cat_text(st, i), (long)jp_cat_int(st, i + 1),
	                  (const char *)jp_cat_text(st, i + 2),
	                  jp_cat_null(st, i + 3) ? -1
	                                                                : jp_cat_int(st, i + 3));
}

/* The attempt that holds the lease, for people reading the table. */
static int
lease_attempt(struct jp_catalog *c, const char *job, int64_t attempt, struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	int r;

	if ((r = prepare(c, "UPDATE jobpub_leases SET attempt = ? WHERE job = ?", &st, err)) != JP_OK)
		return r;
	jp_cat_bind_int(st, 1, attempt);
	jp_cat_bind_text(st, 2, job);
	return step_done(c, st, err, "take lease");
}

/*
 * Is the job published?  Its status is the published status, jobpub_files has its files, and
 * every mapped column still names its file: the row describes what is published.  pdr_run
 * sets its own "finished" before jobpub runs, so the status alone does not tell.
 */
static int
job_published(struct jp_catalog *c, const struct jp_jobtable *t, const char *job, int *yes,
              struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	struct jp_row *row = NULL;
	const char *v;
	int found, rc, r, n = 0;

	*yes = 0;
	if (t->published_status == NULL)
		return JP_OK;
	jp_error_clear(err);
	if ((r = jp_catalog_load_row(c, t, job, &row, err)) != JP_OK) {
		/* A missing row is for the caller's next step to report. */
		jp_error_clear(err);
		return JP_OK;
	}
	v = jp_row_get(row, t->status_column, &found);
	if (v == NULL || strcmp(v, t->published_status) != 0)
		goto out;
	if ((r = prepare(c, "SELECT column_name, remote_url FROM jobpub_files WHERE job = ?", &st,
	                 err)) != JP_OK)
		goto out;
	jp_cat_bind_text(st, 1, job);
	while ((rc = jp_cat_step(st)) == JP_CAT_ROW) {
		const char *col = (const char *)jp_cat_text(st, 0);
		const char *url = (const char *)jp_cat_text(st, 1);

		n++;
		if (col != NULL && ((v = jp_row_get(row, col, &found)) == NULL || url == NULL ||
		                    strcmp(v, url) != 0))
			break;
	}
	jp_cat_finalize(st);
	if (rc != JP_OK && rc != JP_CAT_ROW)
		r = db_error(c, rc, err, "read files");
	else
		*yes = rc == JP_OK && n > 0;
out:
	jp_row_free(row);
	return r;
}

static const char *const lease_cols[] = {"job",     "host",  "pid",     "token",
                                         "since",   "expires", "boot_id", "start_time"};

int
jp_catalog_begin(struct jp_catalog *c, const struct jp_jobtable *t, const struct jp_attempt *a,
                 int lease_s, int64_t *id, char *took_over, size_t took_over_len,
                 struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	char now[32], *restore = NULL;
	int r, rc, published = 0;

	took_over[0] = '\0';
	c->busy = 0;
	c->keep_status = 0;
	free(c->restore_status);
	c->restore_status = NULL;
	/* Allocated before BEGIN: nothing may fail once the lease and the row are committed. */
	if (a->overwrite && t->published_status != NULL &&
	    (restore = strdup(t->published_status)) == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, "catalog: out of memory");
	if ((r = begin_write(c, err)) != JP_OK) {
		free(restore);
		return r;
	}
	/* The schema is current here (ensure_schema): the lease has its owner's scope. */
	if ((r = prepare(c, "SELECT since, expires, host, pid, boot_id, start_time"
	                    " FROM jobpub_leases WHERE job = ?", &st, err)) != JP_OK)
		goto fail;
	jp_cat_bind_text(st, 1, a->job);
	rc = jp_cat_step(st);
	if (rc == JP_CAT_ROW) {
		const char *since = (const char *)jp_cat_text(st, 0);
		int64_t expires = jp_cat_int(st, 1);
		const char *host = (const char *)jp_cat_text(st, 2);
		long pid = (long)jp_cat_int(st, 3);
		int gone = owner_gone_at(st, 2), expired = expires < (int64_t)time(NULL);

		if (!gone && !expired) {
			r = jp_error_set(err, JP_E_TEMPFAIL, "catalog: job %s is being published by %s:%ld since %s",
			                 a->job, host, pid, since);
			jp_cat_finalize(st);
			goto fail;
		}
		snprintf(took_over, took_over_len, "%s:%ld since %s (%s)", host, pid, since,
		         gone ? "that process is gone" : "the lease expired");
		/* Its attempt will never end by itself: say what became of it. */
		jp_cat_finalize(st);
		st = NULL;
		if ((r = prepare(c, "UPDATE jobpub_attempts SET outcome = 'abandoned', finished_at = ?"
		                    " WHERE job = ? AND outcome = 'running'", &st, err)) != JP_OK)
			goto fail;
		jp_cat_bind_text(st, 1, jp_now_iso(now, sizeof(now)));
		jp_cat_bind_text(st, 2, a->job);
		r = step_done(c, st, err, "abandon attempt"); /* finalizes st */
		st = NULL;
		if (r != JP_OK)
			goto fail;
	} else if (rc != JP_OK) {
		r = db_error(c, rc, err, "read lease");
		jp_cat_finalize(st);
		goto fail;
	}
	jp_cat_finalize(st);
	r = prepare_upsert(c, "jobpub_leases", lease_cols, 8, 1, JP_CAT_REPLACE, &st, err);
	if (r != JP_OK)
		goto fail;
	jp_cat_bind_text(st, 1, a->job);
	jp_cat_bind_text(st, 2, a->host ? a->host : "?");
	jp_cat_bind_int(st, 3, a->pid);
	jp_cat_bind_text(st, 4, a->token);
	jp_cat_bind_text(st, 5, jp_now_iso(now, sizeof(now)));
	jp_cat_bind_int(st, 6, (int64_t)time(NULL) + lease_s);
	/* Who we are beyond host and pid, when the lease is this process's own (it always is for
	 * a publish) and /proc says. */
	if (a->pid == (long)getpid() && pid_scope()[0] != '\0') {
		int zombie;
		long long start = proc_start(a->pid, &zombie);

		jp_cat_bind_text(st, 7, pid_scope());
		if (start > 0)
			jp_cat_bind_int(st, 8, start);
	}
	/* A published job's row keeps saying so: its files stay what they are unless this
	 * attempt may replace them. */
	if ((r = step_done(c, st, err, "take lease")) != JP_OK ||
	    (r = job_published(c, t, a->job, &published, err)) != JP_OK ||
	    (r = ensure_own_row(c, t, a->job, err)) != JP_OK ||
	    (!(published && !a->overwrite) &&
	     (r = update_row(c, t, a->job, JP_STATUS_PUBLISHING, NULL, 0, 0, err)) != JP_OK) ||
	    (r = jp_catalog_attempt_begin(c, t, a, id, err)) != JP_OK ||
	    (r = lease_attempt(c, a->job, *id, err)) != JP_OK ||
	    (r = commit(c, err, "commit")) != JP_OK)
		goto fail;
	jp_catalog_set_lease_token(c, a->token);
	c->keep_status = published && !a->overwrite;
	if (published && a->overwrite) {
		c->restore_status = restore;
		restore = NULL;
	}
	free(restore);
	return JP_OK;
fail:
	c->eng->rollback(c->conn);
	free(restore);
	return r;
}

int
jp_catalog_attempt_destination(struct jp_catalog *c, int64_t attempt, const char *dest,
                               struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	int r;

	if ((r = prepare(c, "UPDATE jobpub_attempts SET destination = ? WHERE id = ?", &st, err)) != JP_OK)
		return r;
	jp_cat_bind_text(st, 1, dest);
	jp_cat_bind_int(st, 2, attempt);
	return step_done(c, st, err, "record destination");
}

int
jp_catalog_renew(struct jp_catalog *c, const char *job, const char *token, int lease_s,
                 struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	int r;

	if ((r = prepare(c, "UPDATE jobpub_leases SET expires = ? WHERE job = ? AND token = ?", &st,
	                 err)) != JP_OK)
		return r;
	jp_cat_bind_int(st, 1, (int64_t)time(NULL) + lease_s);
	jp_cat_bind_text(st, 2, job);
	jp_cat_bind_text(st, 3, token);
	return step_done(c, st, err, "renew lease");
}

/* A lease counts while it has not expired and its owner is not known to be gone.  where
 * selects the leases to look at (one parameter); 1 when any of them is live. */
static int
lease_live(struct jp_catalog *c, const char *where, const char *arg)
{
	struct jp_cat_stmt *st = NULL;
	char sql[256];
	int live = 0;

	if (c->version < 3)
		return 0; /* no lease table (an older catalogue, or none yet): nothing is leased */
	snprintf(sql, sizeof(sql), "SELECT expires, %s FROM jobpub_leases WHERE %s", owner_cols(c),
	         where);
	if (c->eng->prepare(c->conn, sql, &st) != JP_OK)
		return 0;
	jp_cat_bind_text(st, 1, arg);
	while (!live && jp_cat_step(st) == JP_CAT_ROW)
		live = jp_cat_int(st, 0) >= (int64_t)time(NULL) && !owner_gone_at(st, 1);
	jp_cat_finalize(st);
	return live;
}

int
jp_catalog_token_leased(struct jp_catalog *c, const char *token)
{
	return lease_live(c, "token = ?", token);
}

int
jp_catalog_lease_since(struct jp_catalog *c, time_t t)
{
	char iso[32];
	struct tm tm;
	time_t slack = t + 300; /* the store's clock against ours */

	gmtime_r(&slack, &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return lease_live(c, "since <= ?", iso);
}

int
jp_catalog_job_leased(struct jp_catalog *c, const char *job)
{
	return lease_live(c, "job = ?", job);
}

int
jp_catalog_published_since(struct jp_catalog *c, const char *job, const char *since)
{
	struct jp_cat_stmt *st = NULL;
	struct jp_error e;
	int yes;

	jp_error_clear(&e);
	/* Two statements rather than "? IS NULL OR": a NULL parameter has no type in every
	 * dialect (PostgreSQL cannot infer one). */
	if (c == NULL || c->version == 0 ||
	    prepare(c, since == NULL ? "SELECT 1 FROM jobpub_attempts WHERE job = ? AND"
	                               " outcome = 'published' LIMIT 1"
	                             : "SELECT 1 FROM jobpub_attempts WHERE job = ? AND"
	                               " outcome = 'published' AND started_at >= ? LIMIT 1",
	            &st, &e) != JP_OK)
		return 0;
	jp_cat_bind_text(st, 1, job);
	if (since != NULL)
		jp_cat_bind_text(st, 2, since);
	yes = jp_cat_step(st) == JP_CAT_ROW;
	jp_cat_finalize(st);
	return yes;
}

static const char *const own_cols[] = {"id", "status", "created_at", "updated_at"};

/* jobpub's own table gets the job's row on first use; external rows must already exist. */
static int
ensure_own_row(struct jp_catalog *c, const struct jp_jobtable *t, const char *job,
               struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	char now[32];
	int r;

	if (t->external)
		return JP_OK;
	r = prepare_upsert(c, "jobs", own_cols, 4, 1, JP_CAT_IGNORE, &st, err);
	if (r != JP_OK)
		return r;
	jp_cat_bind_text(st, 1, job);
	jp_now_iso(now, sizeof(now));
	jp_cat_bind_null(st, 2);
	jp_cat_bind_text(st, 3, now);
	jp_cat_bind_text(st, 4, now);
	return step_done(c, st, err, "create job row");
}

static int
end_attempt(struct jp_catalog *c, int64_t attempt, const struct jp_outcome *o,
            struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	char now[32];
	int r;

	if (attempt < 0)
		return JP_OK;
	r = prepare(c,
	            "UPDATE jobpub_attempts SET finished_at = ?, outcome = ?, exit_code = ?,"
	            " error_class = ?, message = ?, bytes = ?, files = ?, duration_ms = ?,"
	            " destination = coalesce(?, destination) WHERE id = ? AND outcome = 'running'",
	            &st, err);
	if (r != JP_OK)
		return r;
	jp_cat_bind_text(st, 1, jp_now_iso(now, sizeof(now)));
	jp_cat_bind_text(st, 2, o->outcome);
	jp_cat_bind_int(st, 3, o->code);
	jp_cat_bind_text(st, 4, o->code ? jp_class_name(o->code) : NULL);
	jp_cat_bind_text(st, 5, o->message);
	jp_cat_bind_int(st, 6, (int64_t)o->bytes);
	jp_cat_bind_int(st, 7, (int64_t)o->files);
	jp_cat_bind_int(st, 8, o->duration_ms);
	jp_cat_bind_text(st, 9, o->destination);
	jp_cat_bind_int(st, 10, attempt);
	return step_done(c, st, err, "record attempt");
}

/* UPDATE table SET status = ?, col = ?, ... WHERE id = ?; cols may be empty. */
static int
update_row(struct jp_catalog *c, const struct jp_jobtable *t, const char *job, const char *status,
           const struct jp_file_rec *files, size_t n, int require_row, struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	size_t len, i;
	char *sql, *p, qt[80], qs[80], qi[80], q[80];
	int r, k;

	if (quote(c, t->table, qt, sizeof(qt)) == NULL ||
	    quote(c, t->status_column, qs, sizeof(qs)) == NULL ||
	    quote(c, t->id_column, qi, sizeof(qi)) == NULL)
		return jp_error_set(err, JP_E_DATA, "catalog: invalid table or column name");
	len = 128 + strlen(qt) + strlen(qs) + strlen(qi);
	for (i = 0; i < n; i++)
		if (files[i].column != NULL)
			len += sizeof(q) + 8;
	if ((sql = malloc(len)) == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, "catalog: out of memory");
	p = sql + sprintf(sql, "UPDATE %s SET %s = ?", qt, qs);
	for (i = 0; i < n; i++) {
		if (files[i].column == NULL)
			continue;
		if (quote(c, files[i].column, q, sizeof(q)) == NULL) {
			free(sql);
			return jp_error_set(err, JP_E_DATA, "catalog: invalid column name");
		}
		p += sprintf(p, ", %s = ?", q);
	}
	if (!t->external)
		p += sprintf(p, ", updated_at = ?");
	sprintf(p, " WHERE %s = ?", qi);
	r = prepare(c, sql, &st, err);
	free(sql);
	if (r != JP_OK)
		return r;
	k = 1;
	jp_cat_bind_text(st, k++, status);
	for (i = 0; i < n; i++)
		if (files[i].column != NULL)
			jp_cat_bind_text(st, k++, files[i].remote);
	if (!t->external) {
		char now[32];
		jp_cat_bind_text(st, k++, jp_now_iso(now, sizeof(now)));
	}
	c->eng->bind_key(st, k, job);
	if ((r = step_done(c, st, err, "update job row")) != JP_OK)
		return r;
	if (require_row && c->eng->changes(c->conn) != 1)
		return jp_error_set(err, JP_E_DATA, "catalog: job %s: its row in %s disappeared", job,
		                    t->table);
	return JP_OK;
}

/* DELETE FROM table WHERE job = ? */
static int
delete_job_rows(struct jp_catalog *c, const char *sql, const char *job, struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	int r;

	if ((r = prepare(c, sql, &st, err)) != JP_OK)
		return r;
	jp_cat_bind_text(st, 1, job);
	return step_done(c, st, err, "replace files");
}

static const char *const attr_cols[] = {"job", "output", "name", "value"};

static int
insert_attrs(struct jp_catalog *c, const char *job, const struct jp_file_rec *f,
             struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	size_t i;
	int r, rc;

	if (f->n_attrs == 0)
		return JP_OK;
	r = prepare_upsert(c, "jobpub_attributes", attr_cols, 4, 3, JP_CAT_REPLACE, &st, err);
	if (r != JP_OK)
		return r;
	for (i = 0; i < f->n_attrs; i++) {
		jp_cat_reset(st);
		jp_cat_bind_text(st, 1, job);
		jp_cat_bind_text(st, 2, f->output);
		jp_cat_bind_text(st, 3, f->attrs[i].name);
		jp_cat_bind_text(st, 4, f->attrs[i].value);
		if ((rc = jp_cat_step(st)) != JP_OK) {
			jp_cat_finalize(st);
			return db_error(c, rc, err, "record attribute");
		}
	}
	jp_cat_finalize(st);
	return JP_OK;
}

static int
replace_files(struct jp_catalog *c, const char *job, int64_t attempt,
              const struct jp_file_rec *files, size_t n, struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	char now[32];
	size_t i;
	int r, rc;

	if ((r = delete_job_rows(c, "DELETE FROM jobpub_files WHERE job = ?", job, err)) != JP_OK ||
	    (r = delete_job_rows(c, "DELETE FROM jobpub_attributes WHERE job = ?", job, err)) != JP_OK)
		return r;
	r = prepare(c,
	            "INSERT INTO jobpub_files (job, output, column_name, local_path, remote_url, size,"
	            " sha256, published_at, attempt, entries, destination, key, etag)"
	            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
	            &st, err);
	if (r != JP_OK)
		return r;
	jp_now_iso(now, sizeof(now));
	for (i = 0; i < n; i++) {
		jp_cat_reset(st);
		jp_cat_bind_text(st, 1, job);
		jp_cat_bind_text(st, 2, files[i].output);
		jp_cat_bind_text(st, 3, files[i].column);
		jp_cat_bind_text(st, 4, files[i].local);
		jp_cat_bind_text(st, 5, files[i].remote);
		jp_cat_bind_int(st, 6, (int64_t)files[i].size);
		jp_cat_bind_text(st, 7, files[i].sha256);
		jp_cat_bind_text(st, 8, now);
		jp_cat_bind_int(st, 9, attempt);
		if (files[i].entries > 0)
			jp_cat_bind_int(st, 10, (int64_t)files[i].entries);
		else
			jp_cat_bind_null(st, 10);
		jp_cat_bind_text(st, 11, files[i].destination);
		jp_cat_bind_text(st, 12, files[i].key);
		jp_cat_bind_text(st, 13, files[i].etag);
		if ((rc = jp_cat_step(st)) != JP_OK) {
			jp_cat_finalize(st);
			return db_error(c, rc, err, "record file");
		}
	}
	jp_cat_finalize(st);
	for (i = 0; i < n; i++)
		if ((r = insert_attrs(c, job, &files[i], err)) != JP_OK)
			return r;
	return JP_OK;
}

void
jp_catalog_set_lease_token(struct jp_catalog *c, const char *token)
{
	free(c->lease_token);
	c->lease_token = token ? strdup(token) : NULL;
}

/* 1 when the job's lease is still this publisher's (or it never had one). */
static int
still_ours(struct jp_catalog *c, const char *job, char *who, size_t wholen)
{
	struct jp_cat_stmt *st = NULL;
	int ours = 1;

	if (c->lease_token == NULL)
		return 1;
	if (c->eng->prepare(c->conn, "SELECT token, host, pid FROM jobpub_leases WHERE job = ?", &st) != JP_OK)
		return 1;
	jp_cat_bind_text(st, 1, job);
	if (jp_cat_step(st) != JP_CAT_ROW) {
		/* Only a publisher gives a lease back: whoever took ours over has finished. */
		ours = 0;
		snprintf(who, wholen, "another publisher, which has finished since");
	} else if (strcmp((const char *)jp_cat_text(st, 0), c->lease_token) != 0) {
		ours = 0;
		snprintf(who, wholen, "%s:%lld", (const char *)jp_cat_text(st, 1),
		         (long long)jp_cat_int(st, 2));
	}
	jp_cat_finalize(st);
	return ours;
}

int
jp_catalog_claimed_elsewhere(struct jp_catalog *c, const char *job, const char *dest,
                             const char *key)
{
	struct jp_cat_stmt *st = NULL;
	char who[300];
	int yes = 0;

	if (!still_ours(c, job, who, sizeof(who)))
		return 1;
	if (c->version < 3 ||
	    c->eng->prepare(c->conn, "SELECT 1 FROM jobpub_files WHERE destination = ? AND key = ?"
	                              " AND job <> ?", &st) != JP_OK)
		return 0;
	jp_cat_bind_text(st, 1, dest);
	jp_cat_bind_text(st, 2, key);
	jp_cat_bind_text(st, 3, job);
	yes = jp_cat_step(st) == JP_CAT_ROW;
	jp_cat_finalize(st);
	return yes;
}

int
jp_catalog_known_sha256(struct jp_catalog *c, const char *destination, const char *key,
                        const char *etag, char hex[65])
{
	struct jp_cat_stmt *st = NULL;
	int yes = 0;

	if (c->version < 4 ||
	    c->eng->prepare(c->conn, "SELECT sha256 FROM jobpub_files WHERE destination = ? AND"
	                              " key = ? AND etag = ? LIMIT 1", &st) != JP_OK)
		return 0;
	jp_cat_bind_text(st, 1, destination);
	jp_cat_bind_text(st, 2, key);
	jp_cat_bind_text(st, 3, etag);
	if (jp_cat_step(st) == JP_CAT_ROW) {
		const char *v = (const char *)jp_cat_text(st, 0);

		if (v != NULL && strlen(v) == 64) {
			memcpy(hex, v, 65);
			yes = 1;
		}
	}
	jp_cat_finalize(st);
	return yes;
}

/* Gives the lease back, if this publisher holds it. */
static int
release(struct jp_catalog *c, const char *job, struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	int r;

	if (c->lease_token == NULL)
		return JP_OK;
	if ((r = prepare(c, "DELETE FROM jobpub_leases WHERE job = ? AND token = ?", &st, err)) != JP_OK)
		return r;
	jp_cat_bind_text(st, 1, job);
	jp_cat_bind_text(st, 2, c->lease_token);
	return step_done(c, st, err, "release lease");
}

int
jp_catalog_record_success(struct jp_catalog *c, const struct jp_jobtable *t, const char *job,
                          int64_t attempt, const char *published_status,
                          const struct jp_file_rec *files, size_t n, const struct jp_outcome *o,
                          struct jp_error *err)
{
	char who[300];
	int r;

	if ((r = begin_write(c, err)) != JP_OK)
		return r;
	/* A publisher that lost its lease (it expired and another took the job over) records
	 * nothing: the job is the other publisher's now. */
	if (!still_ours(c, job, who, sizeof(who))) {
		r = jp_error_set(err, JP_E_TEMPFAIL,
		                 "catalog: job %s: the lease was taken over by %s; nothing recorded", job,
		                 who);
		c->eng->rollback(c->conn);
		return r;
	}
	if ((r = ensure_own_row(c, t, job, err)) != JP_OK ||
	    (r = update_row(c, t, job, published_status, files, n, 1, err)) != JP_OK ||
	    (r = replace_files(c, job, attempt, files, n, err)) != JP_OK ||
	    (r = end_attempt(c, attempt, o, err)) != JP_OK || (r = release(c, job, err)) != JP_OK ||
	    (r = commit(c, err, "commit")) != JP_OK) {
		c->eng->rollback(c->conn);
		return r;
	}
	return JP_OK;
}

int
jp_catalog_record_failure(struct jp_catalog *c, const struct jp_jobtable *t, const char *job,
                          int64_t attempt, const struct jp_outcome *o, struct jp_error *err)
{
	int r;

	char who[300];
	int ours;

	if ((r = begin_write(c, err)) != JP_OK)
		return r;
	/* Only the attempt is ended when another publisher has the job now, or when the job is
	 * published and this attempt changed nothing of it. */
	ours = still_ours(c, job, who, sizeof(who)) && !c->keep_status;
	if ((ours && (r = ensure_own_row(c, t, job, err)) != JP_OK) ||
	    (ours && (r = update_row(c, t, job,
	                             c->restore_status != NULL && !o->replaced ? c->restore_status
	                                                                       : JP_STATUS_FAILED,
	                             NULL, 0, 0, err)) != JP_OK) ||
	    (r = end_attempt(c, attempt, o, err)) != JP_OK || (r = release(c, job, err)) != JP_OK ||
	    (r = commit(c, err, "commit")) != JP_OK) {
		c->eng->rollback(c->conn);
		return r;
	}
	return JP_OK;
}

/* ---- reading ---- */

static int64_t
col_int(struct jp_cat_stmt *st, int i)
{
	return jp_cat_null(st, i) ? -1 : jp_cat_int(st, i);
}

void
jp_job_info_free(struct jp_job_info *ji)
{
	size_t i;

	if (ji == NULL)
		return;
	for (i = 0; i < ji->n_files; i++) {
		struct jp_file_info *f = &ji->files[i];
		free(f->output); free(f->column); free(f->local); free(f->remote);
		free(f->sha256); free(f->published_at); free(f->destination); free(f->key);
		free(f->etag);
	}
	for (i = 0; i < ji->n_attempts; i++) {
		struct jp_attempt_info *a = &ji->attempts[i];
		free(a->started_at); free(a->finished_at); free(a->host); free(a->outcome);
		free(a->error_class); free(a->message); free(a->manifest); free(a->workdir);
		free(a->destination); free(a->sets);
	}
	free(ji->files);
	free(ji->attempts);
	free(ji->table);
	free(ji->id_column);
	free(ji->status_column);
	free(ji->status);
	free(ji->lease_host);
	free(ji->lease_since);
	jp_row_free(ji->row);
	free(ji);
}

/* The job's lease when it is live (see lease_live); nothing otherwise. */
static void
load_lease(struct jp_catalog *c, struct jp_job_info *ji, const char *job)
{
	struct jp_cat_stmt *st = NULL;
	char sql[256];

	if (c->version < 3)
		return;
	snprintf(sql, sizeof(sql), "SELECT expires, %s, since FROM jobpub_leases WHERE job = ?",
	         owner_cols(c));
	if (c->eng->prepare(c->conn, sql, &st) != JP_OK)
		return;
	jp_cat_bind_text(st, 1, job);
	if (jp_cat_step(st) == JP_CAT_ROW && jp_cat_int(st, 0) >= (int64_t)time(NULL) &&
	    !owner_gone_at(st, 1)) {
		ji->lease_host = dup_col(st, 1);
		ji->lease_pid = jp_cat_int(st, 2);
		ji->lease_since = dup_col(st, 5);
	}
	jp_cat_finalize(st);
}

static int
load_attempts(struct jp_catalog *c, struct jp_job_info *ji, const char *job, struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	int rc, r;

	if (c->version == 0)
		return JP_OK; /* jobpub has recorded nothing here yet */
	r = prepare(c,
	            "SELECT id, pid, exit_code, bytes, files, duration_ms, started_at, finished_at,"
	            " host, outcome, error_class, message, manifest, workdir, destination, sets,"
	            " job_table, id_column, status_column"
	            " FROM jobpub_attempts WHERE job = ? ORDER BY id",
	            &st, err);
	if (r != JP_OK)
		return r;
	jp_cat_bind_text(st, 1, job);
	while ((rc = jp_cat_step(st)) == JP_CAT_ROW) {
		struct jp_attempt_info *v = realloc(ji->attempts, (ji->n_attempts + 1) * sizeof(*v)), *a;
		if (v == NULL) {
			rc = oom(c);
			break;
		}
		ji->attempts = v;
		a = &v[ji->n_attempts++];
		a->id = col_int(st, 0);
		a->pid = col_int(st, 1);
		a->exit_code = col_int(st, 2);
		a->bytes = col_int(st, 3);
		a->files = col_int(st, 4);
		a->duration_ms = col_int(st, 5);
		a->started_at = dup_col(st, 6);
		a->finished_at = dup_col(st, 7);
		a->host = dup_col(st, 8);
		a->outcome = dup_col(st, 9);
		a->error_class = dup_col(st, 10);
		a->message = dup_col(st, 11);
		a->manifest = dup_col(st, 12);
		a->workdir = dup_col(st, 13);
		a->destination = dup_col(st, 14);
		a->sets = dup_col(st, 15);
		free(ji->table);
		free(ji->id_column);
		free(ji->status_column);
		ji->table = dup_col(st, 16);
		ji->id_column = dup_col(st, 17);
		ji->status_column = dup_col(st, 18);
	}
	jp_cat_finalize(st);
	return rc == JP_OK ? JP_OK : db_error(c, rc, err, "read attempts");
}

static int
load_files(struct jp_catalog *c, struct jp_job_info *ji, const char *job, struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	int rc, r;

	if (c->version == 0)
		return JP_OK;
	r = prepare(c,
	            c->version >= 4
	                ? "SELECT output, column_name, local_path, remote_url, sha256, published_at,"
	                  " size, entries, destination, key, etag FROM jobpub_files WHERE job = ?"
	                  " ORDER BY output, remote_url"
	                : c->version == 3
	                ? "SELECT output, column_name, local_path, remote_url, sha256, published_at,"
	                  " size, entries, destination, key, NULL FROM jobpub_files WHERE job = ?"
	                  " ORDER BY output, remote_url"
	                : c->version == 2
	                ? "SELECT output, column_name, local_path, remote_url, sha256, published_at,"
	                  " size, entries, NULL, NULL, NULL FROM jobpub_files WHERE job = ?"
	                  " ORDER BY output, remote_url"
	                : "SELECT output, column_name, local_path, remote_url, sha256, published_at,"
	                  " size, NULL, NULL, NULL, NULL FROM jobpub_files WHERE job = ?"
	                  " ORDER BY output, remote_url",
	            &st, err);
	if (r != JP_OK)
		return r;
	jp_cat_bind_text(st, 1, job);
	while ((rc = jp_cat_step(st)) == JP_CAT_ROW) {
		struct jp_file_info *v = realloc(ji->files, (ji->n_files + 1) * sizeof(*v)), *f;
		if (v == NULL) {
			rc = oom(c);
			break;
		}
		ji->files = v;
		f = &v[ji->n_files++];
		f->output = dup_col(st, 0);
		f->column = dup_col(st, 1);
		f->local = dup_col(st, 2);
		f->remote = dup_col(st, 3);
		f->sha256 = dup_col(st, 4);
		f->published_at = dup_col(st, 5);
		f->size = col_int(st, 6);
		f->entries = col_int(st, 7);
		f->destination = dup_col(st, 8);
		f->key = dup_col(st, 9);
		f->etag = dup_col(st, 10);
	}
	jp_cat_finalize(st);
	return rc == JP_OK ? JP_OK : db_error(c, rc, err, "read files");
}

int
jp_catalog_job_info(struct jp_catalog *c, const char *job, struct jp_job_info **out,
                    struct jp_error *err)
{
	struct jp_job_info *ji;
	struct jp_jobtable t;
	struct jp_row *row = NULL;
	struct jp_error e2;
	int r, found;

	*out = NULL;
	if ((ji = calloc(1, sizeof(*ji))) == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, "catalog: out of memory");
	if ((r = load_attempts(c, ji, job, err)) != JP_OK || (r = load_files(c, ji, job, err)) != JP_OK)
		goto fail;
	load_lease(c, ji, job);
	if (ji->table == NULL) {
		ji->table = strdup("jobs");
		ji->id_column = strdup("id");
		ji->status_column = strdup("status");
		if (!ji->table || !ji->id_column || !ji->status_column) {
			r = jp_error_set(err, JP_E_SOFTWARE, "catalog: out of memory");
			goto fail;
		}
	}
	t.table = ji->table;
	t.id_column = ji->id_column;
	t.status_column = ji->status_column;
	t.external = 1; /* a missing row must not look like a row of NULLs */
	jp_error_clear(&e2);
	if (jp_is_identifier(t.table) && jp_is_identifier(t.id_column) &&
	    jp_catalog_load_row(c, &t, job, &row, &e2) == JP_OK) {
		const char *s = jp_row_get(row, t.status_column, &found);
		ji->row = row;
		ji->status = s ? strdup(s) : NULL;
	}
	if (ji->row == NULL && ji->n_attempts == 0) {
		jp_job_info_free(ji);
		return JP_OK;
	}
	*out = ji;
	return JP_OK;
fail:
	jp_job_info_free(ji);
	return r;
}

int
jp_catalog_status_counts(struct jp_catalog *c, jp_count_fn fn, void *arg, struct jp_error *err)
{
	struct jp_cat_stmt *tabs = NULL, *st = NULL;
	int rc, r;

	/* The tables jobpub has published into, and its own. */
	r = prepare(c,
	            c->version == 0 ? "SELECT 'jobs', 'status'"
	                            : "SELECT 'jobs', 'status' UNION SELECT DISTINCT job_table,"
	                              " status_column FROM jobpub_attempts ORDER BY 1",
	            &tabs, err);
	if (r != JP_OK)
		return r;
	while ((rc = jp_cat_step(tabs)) == JP_CAT_ROW) {
		const char *table = (const char *)jp_cat_text(tabs, 0);
		const char *scol = (const char *)jp_cat_text(tabs, 1);
		char sql[256], qs[80], qt[80];

		if (quote(c, table, qt, sizeof(qt)) == NULL || quote(c, scol, qs, sizeof(qs)) == NULL)
			continue;
		snprintf(sql, sizeof(sql),
		         "SELECT coalesce(%s, '(none)'), count(*) FROM %s GROUP BY 1 ORDER BY 1", qs, qt);
		if ((r = c->eng->prepare(c->conn, sql, &st)) != JP_OK) {
			if (!table_exists(c, table))
				continue; /* a table that was dropped since */
			rc = r; /* anything else (out of memory, I/O) is not "no jobs" */
			break;
		}
		while ((rc = jp_cat_step(st)) == JP_CAT_ROW)
			fn(arg, table, (const char *)jp_cat_text(st, 0), jp_cat_int(st, 1));
		jp_cat_finalize(st);
		if (rc != JP_OK)
			break;
	}
	jp_cat_finalize(tabs);
	return rc == JP_OK ? JP_OK : db_error(c, rc, err, "count jobs");
}

int
jp_catalog_jobs(struct jp_catalog *c, jp_job_fn fn, void *arg, struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	int rc, r;

	if (c->version == 0)
		return JP_OK;
	/* The latest attempt of every job. */
	r = prepare(c,
	            "SELECT a.job, a.job_table, a.id_column, a.status_column, a.manifest, a.workdir,"
	            " a.destination, a.sets, a.started_at, a.outcome FROM jobpub_attempts a"
	            " JOIN (SELECT job, max(id) AS id FROM jobpub_attempts GROUP BY job) l ON a.id = l.id"
	            " ORDER BY a.id",
	            &st, err);
	if (r != JP_OK)
		return r;
	while ((rc = jp_cat_step(st)) == JP_CAT_ROW) {
		struct jp_job_brief b;
		struct jp_jobtable t;
		struct jp_row *row = NULL;
		struct jp_error e;
		int found, stop;

		memset(&b, 0, sizeof(b));
		b.job = (const char *)jp_cat_text(st, 0);
		b.table = (const char *)jp_cat_text(st, 1);
		b.id_column = (const char *)jp_cat_text(st, 2);
		b.status_column = (const char *)jp_cat_text(st, 3);
		b.manifest = (const char *)jp_cat_text(st, 4);
		b.workdir = (const char *)jp_cat_text(st, 5);
		b.destination = (const char *)jp_cat_text(st, 6);
		b.sets = (const char *)jp_cat_text(st, 7);
		b.started_at = (const char *)jp_cat_text(st, 8);
		b.outcome = (const char *)jp_cat_text(st, 9);
		t.table = b.table;
		t.id_column = b.id_column;
		t.status_column = b.status_column;
		t.external = 1;
		jp_error_clear(&e);
		if (jp_is_identifier(t.table) && jp_is_identifier(t.id_column) &&
		    jp_is_identifier(t.status_column) &&
		    jp_catalog_load_row(c, &t, b.job, &row, &e) == JP_OK)
			b.status = jp_row_get(row, t.status_column, &found);
		stop = fn(arg, &b);
		jp_row_free(row);
		if (stop)
			break;
	}
	jp_cat_finalize(st);
	return rc == JP_OK || rc == JP_CAT_ROW ? JP_OK : db_error(c, rc, err, "list jobs");
}

int
jp_catalog_files(struct jp_catalog *c, const char *job, jp_file_fn fn, void *arg,
                 struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	char sql[320];
	int rc, r;

	if (c->version == 0)
		return JP_OK;
	/* Columns that older schemas lack read as NULL; no "? IS NULL OR" (see
	 * jp_catalog_published_since). */
	snprintf(sql, sizeof(sql),
	         "SELECT job, output, column_name, local_path, remote_url, sha256, published_at, size,"
	         " %s FROM jobpub_files%s ORDER BY job, remote_url",
	         c->version >= 4    ? "entries, destination, key, etag"
	         : c->version == 3 ? "entries, destination, key, NULL"
	                           : "NULL, NULL, NULL, NULL",
	         job != NULL ? " WHERE job = ?" : "");
	if ((r = prepare(c, sql, &st, err)) != JP_OK)
		return r;
	if (job != NULL)
		jp_cat_bind_text(st, 1, job);
	while ((rc = jp_cat_step(st)) == JP_CAT_ROW) {
		struct jp_file_info f;

		f.output = (char *)jp_cat_text(st, 1);
		f.column = (char *)jp_cat_text(st, 2);
		f.local = (char *)jp_cat_text(st, 3);
		f.remote = (char *)jp_cat_text(st, 4);
		f.sha256 = (char *)jp_cat_text(st, 5);
		f.published_at = (char *)jp_cat_text(st, 6);
		f.size = col_int(st, 7);
		f.entries = col_int(st, 8);
		f.destination = (char *)jp_cat_text(st, 9);
		f.key = (char *)jp_cat_text(st, 10);
		f.etag = (char *)jp_cat_text(st, 11);
		if (fn(arg, (const char *)jp_cat_text(st, 0), &f) != 0)
			break;
	}
	jp_cat_finalize(st);
	return rc == JP_OK || rc == JP_CAT_ROW ? JP_OK : db_error(c, rc, err, "list files");
}

int
jp_catalog_destinations(struct jp_catalog *c, jp_url_fn fn, void *arg, struct jp_error *err)
{
	struct jp_cat_stmt *st = NULL;
	int rc, r;

	if (c->version == 0)
		return JP_OK;
	r = prepare(c,
	            c->version >= 3
	                ? "SELECT destination FROM jobpub_attempts WHERE destination IS NOT NULL"
	                  " UNION SELECT destination FROM jobpub_files WHERE destination IS NOT NULL"
	                  " ORDER BY 1"
	                : "SELECT DISTINCT destination FROM jobpub_attempts"
	                  " WHERE destination IS NOT NULL ORDER BY 1",
	            &st, err);
	if (r != JP_OK)
		return r;
	while ((rc = jp_cat_step(st)) == JP_CAT_ROW) {
		const char *u = (const char *)jp_cat_text(st, 0);
		/* A template recorded before destinations were expanded cannot be listed. */
		if (strstr(u, "${") == NULL && fn(arg, u) != 0)
			break;
	}
	jp_cat_finalize(st);
	return rc == JP_OK || rc == JP_CAT_ROW ? JP_OK : db_error(c, rc, err, "list destinations");
}
