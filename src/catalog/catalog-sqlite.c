/*
 * catalog-sqlite.c - the SQLite catalogue engine (catalog-engine.h): every sqlite3_* call and
 * all of SQLite's dialect.  The location is a file path, or "sqlite:PATH" / "sqlite:///PATH".
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <sqlite3.h>

#include "catalog-engine.h"
#include "util.h"

struct sq_conn {
	struct jp_cat_conn base; /* first: the domain sees this */
	sqlite3 *db;
	char *path;
	int64_t busy_since; /* start of the current wait, ms */
};

struct sq_stmt {
	struct jp_cat_stmt base;
	sqlite3_stmt *st;
};

/* jobpub's own job table, made by the first publish that uses it (jp_catalog_prepare): a
 * catalogue whose manifest names another table never gets it.  Catalogues made before schema
 * 5 got it from the first migration. */
static const char sq_own_table[] =
	"CREATE TABLE IF NOT EXISTS jobs ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" status TEXT,"
	" created_at TEXT NOT NULL,"
	" updated_at TEXT NOT NULL)";

/* Forward migrations: entry i takes the schema from version i to i+1. */
static const char *const sq_migrations[] = {
	"CREATE TABLE jobpub_attempts ("
	" id INTEGER PRIMARY KEY,"
	" job TEXT NOT NULL,"
	" token TEXT NOT NULL,"
	" started_at TEXT NOT NULL,"
	" finished_at TEXT,"
	" host TEXT,"
	" pid INTEGER,"
	" manifest TEXT,"
	" workdir TEXT,"
	" destination TEXT,"
	" sets TEXT,"
	" job_table TEXT NOT NULL,"
	" id_column TEXT NOT NULL,"
	" status_column TEXT NOT NULL,"
	" outcome TEXT NOT NULL DEFAULT 'running',"
	" exit_code INTEGER,"
	" error_class TEXT,"
	" message TEXT,"
	" bytes INTEGER,"
	" files INTEGER,"
	" duration_ms INTEGER);"
	"CREATE INDEX jobpub_attempts_job ON jobpub_attempts(job, id);"
	"CREATE TABLE jobpub_files ("
	" job TEXT NOT NULL,"
	" output TEXT NOT NULL,"
	" column_name TEXT,"
	" local_path TEXT NOT NULL,"
	" remote_url TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" sha256 TEXT NOT NULL,"
	" published_at TEXT NOT NULL,"
	" attempt INTEGER NOT NULL,"
	" PRIMARY KEY (job, remote_url));",
	/* 2: directory archives and HDF5 attributes */
	"ALTER TABLE jobpub_files ADD COLUMN entries INTEGER;"
	"CREATE TABLE jobpub_attributes ("
	" job TEXT NOT NULL,"
	" output TEXT NOT NULL,"
	" name TEXT NOT NULL,"
	" value TEXT,"
	" PRIMARY KEY (job, output, name));",
	/* 3: one publisher per job; where each file is, for verify and gc */
	"ALTER TABLE jobpub_files ADD COLUMN destination TEXT;"
	"ALTER TABLE jobpub_files ADD COLUMN key TEXT;"
	"CREATE TABLE jobpub_leases ("
	" job TEXT PRIMARY KEY NOT NULL,"
	" host TEXT NOT NULL,"
	" pid INTEGER NOT NULL,"
	" token TEXT NOT NULL,"
	" since TEXT NOT NULL,"
	" expires INTEGER NOT NULL,"
	" attempt INTEGER);",
	/* 4: object stores' ETags, so an unchanged object is known without reading it back */
	"ALTER TABLE jobpub_files ADD COLUMN etag TEXT;",
	/* 5: who holds a lease, beyond host name and pid (see owner_gone in catalog.c) */
	"ALTER TABLE jobpub_leases ADD COLUMN boot_id TEXT;"
	"ALTER TABLE jobpub_leases ADD COLUMN start_time INTEGER;",
};

/* ---- locations ---- */

/* The file a location names: "sqlite:///abs", "sqlite:rel" or a plain path.  NULL for a
 * "sqlite://HOST/..." (SQLite has no host). */
static const char *
sq_file(const char *loc)
{
	if (strncmp(loc, "sqlite:", 7) != 0)
		return loc;
	loc += 7;
	if (strncmp(loc, "//", 2) == 0) {
		loc += 2;
		if (*loc != '/')
			return NULL;
	}
	return loc;
}

static int
sq_check(const char *loc, char *why, size_t whylen)
{
	if (sq_file(loc) != NULL)
		return 0;
	snprintf(why, whylen, "a sqlite: URL names a file: sqlite:///PATH or sqlite:PATH, no host");
	return -1;
}

static int
sq_exists(const char *loc, char *why, size_t whylen)
{
	const char *path = sq_file(loc);
	struct stat sb;

	if (path == NULL) {
		snprintf(why, whylen, "%s", strerror(EINVAL));
		return -1;
	}
	if (stat(path, &sb) == 0)
		return 1;
	snprintf(why, whylen, "%s", strerror(errno));
	return errno == ENOENT ? 0 : -1;
}

static char *
sq_canonical(const char *loc)
{
	const char *path = sq_file(loc);

	if (path == NULL) {
		errno = EINVAL;
		return NULL;
	}
	return jp_db_abspath(path);
}

static int
sq_absolute(const char *loc)
{
	const char *path = sq_file(loc);

	return path != NULL && path[0] == '/';
}

/* ---- errors ---- */

/* Class of a failed SQLite call: a lock that outlived the busy timeout is worth a retry. */
static int
sq_class(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return JP_E_TEMPFAIL;
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_AUTH:
		return JP_E_CONFIG;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return JP_E_DATA;
	case SQLITE_NOMEM:
		return JP_E_SOFTWARE;
	default:
		return JP_E_IOERR;
	}
}

/* Records a failed call on the connection: JP_RETRY for busy/locked, JP_FAILED otherwise. */
static int
sq_fail(struct sq_conn *q, int rc)
{
	jp_error_clear(&q->base.err);
	return jp_error_set(&q->base.err, sq_class(rc), "%s",
	                    q->db != NULL ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
}

/* sqlite3_busy_timeout() with a way out: a SIGTERM must not wait for the timeout. */
static int
sq_busy_wait(void *arg, int count)
{
	struct sq_conn *q = arg;
	int64_t now = jp_now_ms(), left;

	if (count == 0)
		q->busy_since = now;
	if (q->base.stop != NULL && q->base.stop())
		return 0;
	left = q->base.timeout_ms - (now - q->busy_since);
	if (left <= 0)
		return 0;
	usleep((useconds_t)(left < 10 ? left : 10) * 1000);
	return 1;
}

/* ---- connection ---- */

static void
sq_close(struct jp_cat_conn *c)
{
	struct sq_conn *q = (struct sq_conn *)c;

	if (q == NULL)
		return;
	sqlite3_close_v2(q->db);
	free(q->path);
	free(q);
}

static int
sq_exec(struct jp_cat_conn *c, const char *sql)
{
	struct sq_conn *q = (struct sq_conn *)c;
	int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? JP_OK : sq_fail(q, rc);
}

static int
sq_open(const char *loc, const struct jp_cat_open *how, struct jp_cat_conn **out,
        struct jp_error *e)
{
	const char *path = sq_file(loc);
	struct sq_conn *q;
	int rc, r, flags;

	*out = NULL;
	if (path == NULL)
		return jp_error_set(e, JP_E_CONFIG, "catalog: a sqlite: URL names a file: sqlite:///PATH or "
		                                    "sqlite:PATH, no host");
	if ((q = calloc(1, sizeof(*q))) == NULL || (q->path = strdup(path)) == NULL) {
		free(q);
		return jp_error_set(e, JP_E_SOFTWARE, "catalog: out of memory");
	}
	q->base.engine = &jp_catalog_sqlite;
	q->base.timeout_ms = how->timeout_ms;
	q->base.stop = how->stop;
	flags = (how->flags & JP_CAT_OPEN_READONLY)   ? SQLITE_OPEN_READONLY
	        : (how->flags & JP_CAT_OPEN_NOCREATE) ? SQLITE_OPEN_READWRITE
	                                              : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &q->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = sq_fail(q, rc);
		goto fail;
	}
	sqlite3_busy_handler(q->db, sq_busy_wait, q);
	sqlite3_extended_result_codes(q->db, 1);
	/* Only reads: "not a database" is found now. */
	if ((r = sq_exec(&q->base, "SELECT count(*) FROM sqlite_schema")) != JP_OK)
		goto fail;
	*out = &q->base;
	return JP_OK;
fail:
	jp_error_set(e, q->base.err.code, "%s", q->base.err.msg);
	sq_close(&q->base);
	return r;
}

static int
sq_begin(struct jp_cat_conn *c, int write)
{
	return sq_exec(c, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

static int
sq_commit(struct jp_cat_conn *c)
{
	return sq_exec(c, "COMMIT");
}

static void
sq_rollback(struct jp_cat_conn *c)
{
	sqlite3_exec(((struct sq_conn *)c)->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- statements ---- */

static int
sq_prepare(struct jp_cat_conn *c, const char *sql, struct jp_cat_stmt **out)
{
	struct sq_conn *q = (struct sq_conn *)c;
	struct sq_stmt *s;
	int rc;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return sq_fail(q, SQLITE_NOMEM);
	s->base.conn = c;
	if ((rc = sqlite3_prepare_v2(q->db, sql, -1, &s->st, NULL)) != SQLITE_OK) {
		free(s);
		return sq_fail(q, rc);
	}
	*out = &s->base;
	return JP_OK;
}

#define SQ(st) (((struct sq_stmt *)(st))->st)

static void
sq_bind_text(struct jp_cat_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(SQ(st), i);
	else
		sqlite3_bind_text(SQ(st), i, s, -1, SQLITE_TRANSIENT);
}

static void
sq_bind_int(struct jp_cat_stmt *st, int i, int64_t v)
{
	sqlite3_bind_int64(SQ(st), i, (sqlite3_int64)v);
}

static void
sq_bind_null(struct jp_cat_stmt *st, int i)
{
	sqlite3_bind_null(SQ(st), i);
}

/* As an integer when the ID is one exactly in decimal, else as text ("+5", "007" stay text):
 * column affinity makes either match a TEXT key, and an INTEGER key needs the integer. */
static void
sq_bind_key(struct jp_cat_stmt *st, int i, const char *job)
{
	char back[32];
	char *end;
	long long v;

	errno = 0;
	v = strtoll(job, &end, 10);
	snprintf(back, sizeof(back), "%lld", v);
	if (*job != '\0' && *end == '\0' && errno == 0 && strcmp(back, job) == 0)
		sqlite3_bind_int64(SQ(st), i, v);
	else
		sqlite3_bind_text(SQ(st), i, job, -1, SQLITE_TRANSIENT);
}

static int
sq_step(struct jp_cat_stmt *st)
{
	int rc = sqlite3_step(SQ(st));

	if (rc == SQLITE_ROW)
		return JP_CAT_ROW;
	if (rc == SQLITE_DONE)
		return JP_OK;
	return sq_fail((struct sq_conn *)st->conn, rc);
}

static void
sq_reset(struct jp_cat_stmt *st)
{
	sqlite3_reset(SQ(st));
}

static int
sq_column_count(struct jp_cat_stmt *st)
{
	return sqlite3_column_count(SQ(st));
}

static const char *
sq_column_name(struct jp_cat_stmt *st, int i)
{
	return sqlite3_column_name(SQ(st), i);
}

static int
sq_column_null(struct jp_cat_stmt *st, int i)
{
	return sqlite3_column_type(SQ(st), i) == SQLITE_NULL;
}

static const char *
sq_column_text(struct jp_cat_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(SQ(st), i);
}

static int64_t
sq_column_int(struct jp_cat_stmt *st, int i)
{
	return sqlite3_column_int64(SQ(st), i);
}

static void
sq_finalize(struct jp_cat_stmt *st)
{
	if (st == NULL)
		return;
	sqlite3_finalize(SQ(st));
	free(st);
}

static int64_t
sq_changes(struct jp_cat_conn *c)
{
	return sqlite3_changes(((struct sq_conn *)c)->db);
}

/* ---- identifiers and dialect ---- */

static int
sq_quote_ident(const char *name, char *out, size_t len)
{
	int n;

	/* jp_is_identifier admits no '"': nothing to double. */
	if (!jp_is_identifier(name))
		return -1;
	n = snprintf(out, len, "\"%s\"", name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static char *
sq_upsert_sql(const char *table, const char *const *cols, size_t n, size_t n_key,
              enum jp_cat_conflict on_conflict)
{
	size_t len = 64 + strlen(table), i;
	char *sql, *p;

	(void)n_key; /* SQLite's OR REPLACE / OR IGNORE act on any unique key */
	for (i = 0; i < n; i++)
		len += strlen(cols[i]) + 4;
	if ((sql = malloc(len)) == NULL)
		return NULL;
	p = sql + sprintf(sql, "INSERT OR %s INTO %s (",
	                  on_conflict == JP_CAT_IGNORE ? "IGNORE" : "REPLACE", table);
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i ? ", " : "", cols[i]);
	p += sprintf(p, ") VALUES (");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s?", i ? "," : "");
	sprintf(p, ")");
	return sql;
}

static int
sq_duplicate_column(struct jp_cat_conn *c)
{
	return strstr(c->err.msg, "duplicate column") != NULL;
}

/* ---- schema ---- */

/* PRAGMA user_version: jobpub's schema version, 0 when jobpub has not written here yet. */
static int
sq_schema_version(struct jp_cat_conn *c, int *v)
{
	struct sq_conn *q = (struct sq_conn *)c;
	sqlite3_stmt *st = NULL;
	int rc;

	*v = 0;
	if ((rc = sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st, NULL)) != SQLITE_OK)
		return sq_fail(q, rc);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? JP_OK : sq_fail(q, rc);
}

static int
sq_set_schema_version(struct jp_cat_conn *c, int version)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
	return sq_exec(c, sql);
}

/* Column names of table, via PRAGMA table_info (the table name is bound, not pasted). */
static int
sq_table_columns(struct jp_cat_conn *c, const char *table, char ***cols, size_t *n)
{
	struct sq_conn *q = (struct sq_conn *)c;
	sqlite3_stmt *st = NULL;
	char **v = NULL;
	size_t cnt = 0;
	int rc;

	*cols = NULL;
	*n = 0;
	rc = sqlite3_prepare_v2(q->db, "SELECT name FROM pragma_table_info(?)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(q, rc);
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char **nv = realloc(v, (cnt + 1) * sizeof(*v));
		if (nv == NULL || (nv[cnt] = strdup((const char *)sqlite3_column_text(st, 0))) == NULL) {
			v = nv ? nv : v;
			rc = SQLITE_NOMEM;
			break;
		}
		v = nv;
		cnt++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		while (cnt > 0)
			free(v[--cnt]);
		free(v);
		return sq_fail(q, rc);
	}
	*cols = v;
	*n = cnt;
	return JP_OK;
}

static int
sq_table_exists(struct jp_cat_conn *c, const char *table)
{
	struct sq_conn *q = (struct sq_conn *)c;
	sqlite3_stmt *st = NULL;
	int yes = 0;

	if (sqlite3_prepare_v2(q->db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?",
	                       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		yes = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	return yes;
}

/* WAL needs shared memory between processes, which network filesystems do not give. */
static int
sq_wal_safe(const char *path)
{
	struct statfs sf;
	char *dir = strdup(path), *slash;
	int ok = 1;

	if (dir == NULL)
		return 0;
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		strcpy(dir, ".");
	if (statfs(dir, &sf) == 0) {
		switch ((unsigned long)sf.f_type) {
		case 0x6969UL:     /* NFS */
		case 0xFF534D42UL: /* CIFS */
		case 0x0BD00BD0UL: /* Lustre */
		case 0x47504653UL: /* GPFS */
		case 0x65735546UL: /* FUSE */
			ok = 0;
		}
	}
	free(dir);
	return ok;
}

/* WAL once the catalogue holds jobpub's tables (one we refuse stays as it was), set by whoever
 * migrates it.  Files are created by SQLite with the umask's mode: a catalogue is shared with
 * the project. */
static void
sq_migrated(struct jp_cat_conn *c, int from)
{
	struct sq_conn *q = (struct sq_conn *)c;

	if (from < (int)(sizeof(sq_migrations) / sizeof(sq_migrations[0])) && sq_wal_safe(q->path))
		sqlite3_exec(q->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
}

static const char *const sq_schemes[] = {"sqlite", NULL};

const struct jp_catalog_engine jp_catalog_sqlite = {
	.iVersion = JP_CAT_ENGINE_V1,
	.name = "sqlite",
	.schemes = sq_schemes,
	.plain_paths = 1,
	.check = sq_check,
	.exists = sq_exists,
	.canonical = sq_canonical,
	.absolute = sq_absolute,
	.open = sq_open,
	.close = sq_close,
	.exec = sq_exec,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.prepare = sq_prepare,
	.bind_text = sq_bind_text,
	.bind_int = sq_bind_int,
	.bind_null = sq_bind_null,
	.bind_key = sq_bind_key,
	.step = sq_step,
	.reset = sq_reset,
	.column_count = sq_column_count,
	.column_name = sq_column_name,
	.column_null = sq_column_null,
	.column_text = sq_column_text,
	.column_int = sq_column_int,
	.finalize = sq_finalize,
	.changes = sq_changes,
	.quote_ident = sq_quote_ident,
	.upsert_sql = sq_upsert_sql,
	.duplicate_column = sq_duplicate_column,
	.migrations = sq_migrations,
	.n_migrations = (int)(sizeof(sq_migrations) / sizeof(sq_migrations[0])),
	.own_table = sq_own_table,
	.schema_version = sq_schema_version,
	.set_schema_version = sq_set_schema_version,
	.table_columns = sq_table_columns,
	.table_exists = sq_table_exists,
	.migrated = sq_migrated,
};
