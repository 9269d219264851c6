/*
 * catalog.c - the SQLite catalogue.
 *
 * Identifiers from the manifest reach SQL only after jp_is_identifier() and a check against
 * PRAGMA table_info, and always double-quoted; every value is bound.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "catalog.h"
#include "util.h"
#include "validate.h"

struct jp_catalog {
	sqlite3 *db;
	char *path;
	int readonly;
	int timeout_ms;
	int (*stop)(void);   /* asked while waiting for a lock */
	int64_t busy_since;  /* start of the current wait, ms */
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

/* jobpub's own job table, made by the first publish that uses it (jp_catalog_prepare): a
 * catalogue whose manifest names another table never gets it.  Catalogues made before schema
 * 5 got it from the first migration. */
static const char own_table_sql[] =
	"CREATE TABLE IF NOT EXISTS jobs ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" status TEXT,"
	" created_at TEXT NOT NULL,"
	" updated_at TEXT NOT NULL)";

/* Forward migrations: entry i takes the schema from version i to i+1. */
static const char *const migrations[] = {
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
	/* 5: who holds a lease, beyond host name and pid (see owner_gone) */
	"ALTER TABLE jobpub_leases ADD COLUMN boot_id TEXT;"
	"ALTER TABLE jobpub_leases ADD COLUMN start_time INTEGER;",
};

/* Class of a failed SQLite call: a lock that outlived the busy timeout is worth a retry. */
static int
db_class(int rc)
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

/* sqlite3_busy_timeout() with a way out: a SIGTERM must not wait for the timeout. */
static int
busy_wait(void *arg, int count)
{
	struct jp_catalog *c = arg;
	int64_t now = jp_now_ms(), left;

	if (count == 0)
		c->busy_since = now;
	if (c->stop != NULL && c->stop())
		return 0;
	left = c->timeout_ms - (now - c->busy_since);
	if (left <= 0)
		return 0;
	usleep((useconds_t)(left < 10 ? left : 10) * 1000);
	return 1;
}

static int (*default_stop)(void);

void
jp_catalog_set_stop(struct jp_catalog *c, int (*stop)(void))
{
	c->stop = stop;
}

void
jp_catalog_set_default_stop(int (*stop)(void))
{
	default_stop = stop;
}

static int
db_error(struct jp_catalog *c, int rc, struct jp_error *err, const char *what)
{
	if (((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) && c->stop != NULL &&
	    c->stop())
		return jp_error_set(err, JP_E_TEMPFAIL,
		                    "catalog: %s: %s: interrupted while waiting for the lock", c->path,
		                    what);
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
		c->busy = 1;
		return jp_error_set(err, JP_E_TEMPFAIL,
		                    "catalog: %s: %s: database is locked by another process (waited %d "
		                    "ms; --db-timeout sets the limit)",
		                    c->path, what, c->timeout_ms);
	}
	return jp_error_set(err, db_class(rc), "catalog: %s: %s: %s", c->path, what,
	                    c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
}

static int
exec(struct jp_catalog *c, const char *sql, struct jp_error *err, const char *what)
{
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? JP_OK : db_error(c, rc, err, what);
}

static int
prepare(struct jp_catalog *c, const char *sql, sqlite3_stmt **st, struct jp_error *err)
{
	int rc = sqlite3_prepare_v2(c->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? JP_OK : db_error(c, rc, err, "prepare");
}

/* Binds a job ID: as an integer when it is one exactly in decimal (external tables key jobs by
 * INTEGER), else as text ("+5", "007" stay text).  Column affinity makes either match a TEXT
 * key. */
static void
bind_job(sqlite3_stmt *st, int i, const char *job)
{
	char back[32];
	char *end;
	long long v;

	errno = 0;
	v = strtoll(job, &end, 10);
	snprintf(back, sizeof(back), "%lld", v);
	if (*job != '\0' && *end == '\0' && errno == 0 && strcmp(back, job) == 0)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_text(st, i, job, -1, SQLITE_TRANSIENT);
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

/* Runs a statement that returns no rows and finalizes it. */
static int
step_done(struct jp_catalog *c, sqlite3_stmt *st, struct jp_error *err, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? JP_OK : db_error(c, rc, err, what);
}

/* WAL needs shared memory between processes, which network filesystems do not give. */
static int
wal_safe(const char *path)
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

/* PRAGMA user_version: jobpub's schema version, 0 when jobpub has not written here yet. */
static int
read_version(struct jp_catalog *c, int *v, struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	*v = 0;
	if ((r = prepare(c, "PRAGMA user_version", &st, err)) != JP_OK)
		return r;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? JP_OK : db_error(c, rc, err, "read schema version");
}

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

static int
newer_schema(struct jp_catalog *c, int version, struct jp_error *err)
{
	return jp_error_set(err, JP_E_CONFIG,
	                    "catalog: %s: schema version %d is newer than this jobpub knows (%d); "
	                    "upgrade jobpub",
	                    c->path, version, N_MIGRATIONS);
}

/*
 * Brings jobpub's tables up to date before the first write of this connection.  The version
 * was read at open without a lock; only a catalogue that needs a migration is locked (BEGIN
 * IMMEDIATE), and the version is read again under the lock: another process may have migrated
 * it meanwhile.  A current catalogue costs no write lock: 50 publishers opening one catalogue
 * at once wait only for each other's short records.
 */
static int
ensure_schema(struct jp_catalog *c, struct jp_error *err)
{
	const int n = N_MIGRATIONS;
	sqlite3_stmt *st = NULL;
	int version, r, i;

	if (c->readonly || c->version == n)
		return JP_OK;
	if ((r = exec(c, "BEGIN IMMEDIATE", err, "migrate")) != JP_OK)
		return r;
	if ((r = prepare(c, "PRAGMA user_version", &st, err)) != JP_OK)
		goto fail;
	version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (version > n) {
		r = newer_schema(c, version, err);
		goto fail;
	}
	for (i = version; i < n; i++) {
		char sql[64];

		if ((r = exec(c, migrations[i], err, "migrate")) != JP_OK)
			goto fail;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", i + 1);
		if ((r = exec(c, sql, err, "migrate")) != JP_OK)
			goto fail;
	}
	if ((r = exec(c, "COMMIT", err, "migrate")) != JP_OK)
		goto fail;
	c->version = n;
	/* WAL once the catalogue holds jobpub's tables (one we refuse stays as it was), set by
	 * whoever migrates it.  Files are created by SQLite with the umask's mode: a catalogue is
	 * shared with the project. */
	if (version < n && wal_safe(c->path))
		sqlite3_exec(c->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	return JP_OK;
fail:
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* A write transaction on a current schema: every change to the catalogue starts here. */
static int
begin_write(struct jp_catalog *c, struct jp_error *err)
{
	int r;

	if ((r = ensure_schema(c, err)) != JP_OK)
		return r;
	return exec(c, "BEGIN IMMEDIATE", err, "begin");
}

int
jp_catalog_open(const char *path, int timeout_ms, int mode, struct jp_catalog **out,
                struct jp_error *err)
{
	struct jp_catalog *c;
	struct stat sb;
	int rc, r, flags, readonly = (mode & JP_CATALOG_READONLY) != 0;

	*out = NULL;
	/* A catalogue with someone else's job table is that project's database: a path that
	 * names nothing is a mistake (a typo in --db), not a catalogue to create. */
	if ((mode & JP_CATALOG_EXISTING) && stat(path, &sb) != 0)
		return jp_error_set(err, JP_E_NOINPUT,
		                    "catalog: %s: %s (the manifest's catalog.table is an existing table, "
		                    "so the catalogue must exist; check --db)",
		                    path, strerror(errno));
	if (readonly && stat(path, &sb) != 0)
		return jp_error_set(err, JP_E_NOINPUT, "catalog: %s: %s", path, strerror(errno));
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->path = strdup(path)) == NULL) {
		free(c);
		return jp_error_set(err, JP_E_SOFTWARE, "catalog: out of memory");
	}
	c->readonly = readonly;
	c->timeout_ms = timeout_ms;
	c->stop = default_stop;
	flags = readonly                      ? SQLITE_OPEN_READONLY
	        : (mode & JP_CATALOG_EXISTING) ? SQLITE_OPEN_READWRITE
	                                       : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = db_error(c, rc, err, "open");
		goto fail;
	}
	sqlite3_busy_handler(c->db, busy_wait, c);
	sqlite3_extended_result_codes(c->db, 1);
	/* Only reads here, whatever the mode: "not a database" is found now, and the schema is
	 * migrated (under a write lock) by the first write that needs it, never by a reader (a
	 * dry run changes nothing: it reads what this version has). */
	if ((r = exec(c, "SELECT count(*) FROM sqlite_schema", err, "open")) != JP_OK ||
	    (r = read_version(c, &c->version, err)) != JP_OK)
		goto fail;
	if (!readonly && c->version > N_MIGRATIONS) {
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
	sqlite3_close_v2(c->db);
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

/* Column names of table, via PRAGMA table_info (the table name is bound, not pasted). */
static int
table_columns(struct jp_catalog *c, const char *table, char ***cols, size_t *n,
              struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	char **v = NULL;
	size_t cnt = 0;
	int rc, r;

	*cols = NULL;
	*n = 0;
	if ((r = prepare(c, "SELECT name FROM pragma_table_info(?)", &st, err)) != JP_OK)
		return r;
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
		return db_error(c, rc, err, "table_info");
	}
	*cols = v;
	*n = cnt;
	return JP_OK;
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

	/* SQLite matches column names case-insensitively; so do we. */
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
		    (r = exec(c, own_table_sql, err, "create table jobs")) != JP_OK ||
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
		char sql[256];

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
		snprintf(sql, sizeof(sql), "ALTER TABLE \"%s\" ADD COLUMN \"%s\" TEXT", t->table,
		         columns[i]);
		if ((r = exec(c, sql, err, "add column")) != JP_OK &&
		    strstr(err->msg, "duplicate column") != NULL) {
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
	sqlite3_stmt *st = NULL;
	int yes = 0;

	if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?",
	                       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		yes = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	return yes;
}

static char *
dup_col(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? strdup((const char *)s) : NULL;
}

int
jp_catalog_load_row(struct jp_catalog *c, const struct jp_jobtable *t, const char *job,
                    struct jp_row **out, struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	struct jp_row *row;
	char sql[256];
	int rc, r, i;

	*out = NULL;
	if ((row = calloc(1, sizeof(*row))) == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, "catalog: out of memory");
	/* jobpub's own table before any job used it (a dry run): a row of nothing. */
	if (!t->external && !table_exists(c, t->table)) {
		*out = row;
		return JP_OK;
	}
	snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\" WHERE \"%s\" = ?", t->table, t->id_column);
	if ((r = prepare(c, sql, &st, err)) != JP_OK)
		goto fail;
	bind_job(st, 1, job);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		r = db_error(c, rc, err, "read job row");
		goto fail;
	}
	row->n = (size_t)sqlite3_column_count(st);
	row->names = calloc(row->n + 1, sizeof(char *));
	row->values = calloc(row->n + 1, sizeof(char *));
	if (row->names == NULL || row->values == NULL)
		goto nomem;
	for (i = 0; i < (int)row->n; i++) {
		if ((row->names[i] = strdup(sqlite3_column_name(st, i))) == NULL)
			goto nomem;
		if (rc == SQLITE_ROW && sqlite3_column_type(st, i) != SQLITE_NULL &&
		    (row->values[i] = dup_col(st, i)) == NULL)
			goto nomem;
	}
	if (rc == SQLITE_DONE && t->external) {
		r = jp_error_set(err, JP_E_DATA, "catalog: unknown job %s: no row with %s = %s in table %s",
		                 job, t->id_column, job, t->table);
		goto fail;
	}
	sqlite3_finalize(st);
	*out = row;
	return JP_OK;
nomem:
	r = jp_error_set(err, JP_E_SOFTWARE, "catalog: out of memory");
fail:
	sqlite3_finalize(st);
	jp_row_free(row);
	return r;
}

int
jp_catalog_attempt_begin(struct jp_catalog *c, const struct jp_jobtable *t,
                         const struct jp_attempt *a, int64_t *id, struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int r;

	if ((r = ensure_schema(c, err)) != JP_OK)
		return r;
	r = prepare(c,
	            "INSERT INTO jobpub_attempts (job, token, started_at, host, pid, manifest, workdir,"
	            " destination, sets, job_table, id_column, status_column)"
	            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
	            &st, err);
	if (r != JP_OK)
		return r;
	bind_text(st, 1, a->job);
	bind_text(st, 2, a->token);
	bind_text(st, 3, jp_now_iso(now, sizeof(now)));
	bind_text(st, 4, a->host);
	sqlite3_bind_int64(st, 5, a->pid);
	bind_text(st, 6, a->manifest);
	bind_text(st, 7, a->workdir);
	bind_text(st, 8, a->destination);
	bind_text(st, 9, a->sets_json);
	bind_text(st, 10, t->table);
	bind_text(st, 11, t->id_column);
	bind_text(st, 12, t->status_column);
	/* A single INSERT is its own transaction; the busy timeout covers the wait for the lock. */
	if ((r = step_done(c, st, err, "record attempt")) != JP_OK)
		return r;
	*id = sqlite3_last_insert_rowid(c->db);
	return JP_OK;
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
owner_gone_at(sqlite3_stmt *st, int i)
{
	return owner_gone((const char *)sqlite3_column_text(st, i), (long)sqlite3_column_int64(st, i + 1),
	                  (const char *)sqlite3_column_text(st, i + 2),
	                  sqlite3_column_type(st, i + 3) == SQLITE_NULL ? -1
	                                                                : sqlite3_column_int64(st, i + 3));
}

/* The attempt that holds the lease, for people reading the table. */
static int
lease_attempt(struct jp_catalog *c, const char *job, int64_t attempt, struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = prepare(c, "UPDATE jobpub_leases SET attempt = ? WHERE job = ?", &st, err)) != JP_OK)
		return r;
	sqlite3_bind_int64(st, 1, attempt);
	sqlite3_bind_text(st, 2, job, -1, SQLITE_TRANSIENT);
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
	sqlite3_stmt *st = NULL;
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
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *col = (const char *)sqlite3_column_text(st, 0);
		const char *url = (const char *)sqlite3_column_text(st, 1);

		n++;
		if (col != NULL && ((v = jp_row_get(row, col, &found)) == NULL || url == NULL ||
		                    strcmp(v, url) != 0))
			break;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = db_error(c, rc, err, "read files");
	else
		*yes = rc == SQLITE_DONE && n > 0;
out:
	jp_row_free(row);
	return r;
}

int
jp_catalog_begin(struct jp_catalog *c, const struct jp_jobtable *t, const struct jp_attempt *a,
                 int lease_s, int64_t *id, char *took_over, size_t took_over_len,
                 struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
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
	sqlite3_bind_text(st, 1, a->job, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *since = (const char *)sqlite3_column_text(st, 0);
		int64_t expires = sqlite3_column_int64(st, 1);
		const char *host = (const char *)sqlite3_column_text(st, 2);
		long pid = (long)sqlite3_column_int64(st, 3);
		int gone = owner_gone_at(st, 2), expired = expires < (int64_t)time(NULL);

		if (!gone && !expired) {
			r = jp_error_set(err, JP_E_TEMPFAIL, "job %s is being published by %s:%ld since %s",
			                 a->job, host, pid, since);
			sqlite3_finalize(st);
			goto fail;
		}
		snprintf(took_over, took_over_len, "%s:%ld since %s (%s)", host, pid, since,
		         gone ? "that process is gone" : "the lease expired");
		/* Its attempt will never end by itself: say what became of it. */
		sqlite3_finalize(st);
		st = NULL;
		if ((r = prepare(c, "UPDATE jobpub_attempts SET outcome = 'abandoned', finished_at = ?"
		                    " WHERE job = ? AND outcome = 'running'", &st, err)) != JP_OK)
			goto fail;
		bind_text(st, 1, jp_now_iso(now, sizeof(now)));
		sqlite3_bind_text(st, 2, a->job, -1, SQLITE_TRANSIENT);
		r = step_done(c, st, err, "abandon attempt"); /* finalizes st */
		st = NULL;
		if (r != JP_OK)
			goto fail;
	} else if (rc != SQLITE_DONE) {
		r = db_error(c, rc, err, "read lease");
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	r = prepare(c, "INSERT OR REPLACE INTO jobpub_leases (job, host, pid, token, since, expires,"
	               " boot_id, start_time) VALUES (?,?,?,?,?,?,?,?)", &st, err);
	if (r != JP_OK)
		goto fail;
	sqlite3_bind_text(st, 1, a->job, -1, SQLITE_TRANSIENT);
	bind_text(st, 2, a->host ? a->host : "?");
	sqlite3_bind_int64(st, 3, a->pid);
	bind_text(st, 4, a->token);
	bind_text(st, 5, jp_now_iso(now, sizeof(now)));
	sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL) + lease_s);
	/* Who we are beyond host and pid, when the lease is this process's own (it always is for
	 * a publish) and /proc says. */
	if (a->pid == (long)getpid() && pid_scope()[0] != '\0') {
		int zombie;
		long long start = proc_start(a->pid, &zombie);

		bind_text(st, 7, pid_scope());
		if (start > 0)
			sqlite3_bind_int64(st, 8, start);
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
	    (r = exec(c, "COMMIT", err, "commit")) != JP_OK)
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
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	free(restore);
	return r;
}

int
jp_catalog_attempt_destination(struct jp_catalog *c, int64_t attempt, const char *dest,
                               struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = prepare(c, "UPDATE jobpub_attempts SET destination = ? WHERE id = ?", &st, err)) != JP_OK)
		return r;
	bind_text(st, 1, dest);
	sqlite3_bind_int64(st, 2, attempt);
	return step_done(c, st, err, "record destination");
}

int
jp_catalog_renew(struct jp_catalog *c, const char *job, const char *token, int lease_s,
                 struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = prepare(c, "UPDATE jobpub_leases SET expires = ? WHERE job = ? AND token = ?", &st,
	                 err)) != JP_OK)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL) + lease_s);
	sqlite3_bind_text(st, 2, job, -1, SQLITE_TRANSIENT);
	bind_text(st, 3, token);
	return step_done(c, st, err, "renew lease");
}

/* A lease counts while it has not expired and its owner is not known to be gone.  where
 * selects the leases to look at (one parameter); 1 when any of them is live. */
static int
lease_live(struct jp_catalog *c, const char *where, const char *arg)
{
	sqlite3_stmt *st = NULL;
	char sql[256];
	int live = 0;

	if (c->version < 3)
		return 0; /* no lease table (an older catalogue, or none yet): nothing is leased */
	snprintf(sql, sizeof(sql), "SELECT expires, %s FROM jobpub_leases WHERE %s", owner_cols(c),
	         where);
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return 0;
	bind_text(st, 1, arg);
	while (!live && sqlite3_step(st) == SQLITE_ROW)
		live = sqlite3_column_int64(st, 0) >= (int64_t)time(NULL) && !owner_gone_at(st, 1);
	sqlite3_finalize(st);
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
	sqlite3_stmt *st = NULL;
	struct jp_error e;
	int yes;

	jp_error_clear(&e);
	if (c == NULL || c->version == 0 ||
	    prepare(c, "SELECT 1 FROM jobpub_attempts WHERE job = ? AND outcome = 'published'"
	               " AND (?2 IS NULL OR started_at >= ?2) LIMIT 1", &st, &e) != JP_OK)
		return 0;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	bind_text(st, 2, since);
	yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

/* jobpub's own table gets the job's row on first use; external rows must already exist. */
static int
ensure_own_row(struct jp_catalog *c, const struct jp_jobtable *t, const char *job,
               struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int r;

	if (t->external)
		return JP_OK;
	r = prepare(c, "INSERT OR IGNORE INTO jobs (id, status, created_at, updated_at) VALUES (?, NULL, ?, ?)",
	            &st, err);
	if (r != JP_OK)
		return r;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	jp_now_iso(now, sizeof(now));
	bind_text(st, 2, now);
	bind_text(st, 3, now);
	return step_done(c, st, err, "create job row");
}

static int
end_attempt(struct jp_catalog *c, int64_t attempt, const struct jp_outcome *o,
            struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
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
	bind_text(st, 1, jp_now_iso(now, sizeof(now)));
	bind_text(st, 2, o->outcome);
	sqlite3_bind_int(st, 3, o->code);
	bind_text(st, 4, o->code ? jp_class_name(o->code) : NULL);
	bind_text(st, 5, o->message);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)o->bytes);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)o->files);
	sqlite3_bind_int64(st, 8, o->duration_ms);
	bind_text(st, 9, o->destination);
	sqlite3_bind_int64(st, 10, attempt);
	return step_done(c, st, err, "record attempt");
}

/* UPDATE table SET status = ?, col = ?, ... WHERE id = ?; cols may be empty. */
static int
update_row(struct jp_catalog *c, const struct jp_jobtable *t, const char *job, const char *status,
           const struct jp_file_rec *files, size_t n, int require_row, struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	size_t len, i;
	char *sql, *p;
	int r, k;

	len = 128 + strlen(t->table) + strlen(t->status_column) + strlen(t->id_column);
	for (i = 0; i < n; i++)
		if (files[i].column != NULL)
			len += strlen(files[i].column) + 16;
	if ((sql = malloc(len)) == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, "catalog: out of memory");
	p = sql + sprintf(sql, "UPDATE \"%s\" SET \"%s\" = ?", t->table, t->status_column);
	for (i = 0; i < n; i++)
		if (files[i].column != NULL)
			p += sprintf(p, ", \"%s\" = ?", files[i].column);
	if (!t->external)
		p += sprintf(p, ", updated_at = ?");
	sprintf(p, " WHERE \"%s\" = ?", t->id_column);
	r = prepare(c, sql, &st, err);
	free(sql);
	if (r != JP_OK)
		return r;
	k = 1;
	bind_text(st, k++, status);
	for (i = 0; i < n; i++)
		if (files[i].column != NULL)
			bind_text(st, k++, files[i].remote);
	if (!t->external) {
		char now[32];
		bind_text(st, k++, jp_now_iso(now, sizeof(now)));
	}
	bind_job(st, k, job);
	if ((r = step_done(c, st, err, "update job row")) != JP_OK)
		return r;
	if (require_row && sqlite3_changes(c->db) != 1)
		return jp_error_set(err, JP_E_DATA, "catalog: job %s: its row in %s disappeared", job,
		                    t->table);
	return JP_OK;
}

/* DELETE FROM table WHERE job = ? */
static int
delete_job_rows(struct jp_catalog *c, const char *sql, const char *job, struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = prepare(c, sql, &st, err)) != JP_OK)
		return r;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	return step_done(c, st, err, "replace files");
}

static int
insert_attrs(struct jp_catalog *c, const char *job, const struct jp_file_rec *f,
             struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	size_t i;
	int r, rc;

	if (f->n_attrs == 0)
		return JP_OK;
	r = prepare(c, "INSERT OR REPLACE INTO jobpub_attributes (job, output, name, value)"
	               " VALUES (?,?,?,?)", &st, err);
	if (r != JP_OK)
		return r;
	for (i = 0; i < f->n_attrs; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
		bind_text(st, 2, f->output);
		bind_text(st, 3, f->attrs[i].name);
		bind_text(st, 4, f->attrs[i].value);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
			sqlite3_finalize(st);
			return db_error(c, rc, err, "record attribute");
		}
	}
	sqlite3_finalize(st);
	return JP_OK;
}

static int
replace_files(struct jp_catalog *c, const char *job, int64_t attempt,
              const struct jp_file_rec *files, size_t n, struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
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
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
		bind_text(st, 2, files[i].output);
		bind_text(st, 3, files[i].column);
		bind_text(st, 4, files[i].local);
		bind_text(st, 5, files[i].remote);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)files[i].size);
		bind_text(st, 7, files[i].sha256);
		bind_text(st, 8, now);
		sqlite3_bind_int64(st, 9, attempt);
		if (files[i].entries > 0)
			sqlite3_bind_int64(st, 10, (sqlite3_int64)files[i].entries);
		else
			sqlite3_bind_null(st, 10);
		bind_text(st, 11, files[i].destination);
		bind_text(st, 12, files[i].key);
		bind_text(st, 13, files[i].etag);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
			sqlite3_finalize(st);
			return db_error(c, rc, err, "record file");
		}
	}
	sqlite3_finalize(st);
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
	sqlite3_stmt *st = NULL;
	int ours = 1;

	if (c->lease_token == NULL)
		return 1;
	if (sqlite3_prepare_v2(c->db, "SELECT token, host, pid FROM jobpub_leases WHERE job = ?", -1,
	                       &st, NULL) != SQLITE_OK)
		return 1;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW) {
		/* Only a publisher gives a lease back: whoever took ours over has finished. */
		ours = 0;
		snprintf(who, wholen, "another publisher, which has finished since");
	} else if (strcmp((const char *)sqlite3_column_text(st, 0), c->lease_token) != 0) {
		ours = 0;
		snprintf(who, wholen, "%s:%lld", (const char *)sqlite3_column_text(st, 1),
		         (long long)sqlite3_column_int64(st, 2));
	}
	sqlite3_finalize(st);
	return ours;
}

int
jp_catalog_claimed_elsewhere(struct jp_catalog *c, const char *job, const char *dest,
                             const char *key)
{
	sqlite3_stmt *st = NULL;
	char who[300];
	int yes = 0;

	if (!still_ours(c, job, who, sizeof(who)))
		return 1;
	if (c->version < 3 ||
	    sqlite3_prepare_v2(c->db, "SELECT 1 FROM jobpub_files WHERE destination = ? AND key = ?"
	                              " AND job <> ?", -1, &st, NULL) != SQLITE_OK)
		return 0;
	bind_text(st, 1, dest);
	bind_text(st, 2, key);
	sqlite3_bind_text(st, 3, job, -1, SQLITE_TRANSIENT);
	yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

int
jp_catalog_known_sha256(struct jp_catalog *c, const char *destination, const char *key,
                        const char *etag, char hex[65])
{
	sqlite3_stmt *st = NULL;
	int yes = 0;

	if (c->version < 4 ||
	    sqlite3_prepare_v2(c->db, "SELECT sha256 FROM jobpub_files WHERE destination = ? AND"
	                              " key = ? AND etag = ? LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return 0;
	bind_text(st, 1, destination);
	bind_text(st, 2, key);
	bind_text(st, 3, etag);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		if (v != NULL && strlen(v) == 64) {
			memcpy(hex, v, 65);
			yes = 1;
		}
	}
	sqlite3_finalize(st);
	return yes;
}

/* Gives the lease back, if this publisher holds it. */
static int
release(struct jp_catalog *c, const char *job, struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (c->lease_token == NULL)
		return JP_OK;
	if ((r = prepare(c, "DELETE FROM jobpub_leases WHERE job = ? AND token = ?", &st, err)) != JP_OK)
		return r;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	bind_text(st, 2, c->lease_token);
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
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	if ((r = ensure_own_row(c, t, job, err)) != JP_OK ||
	    (r = update_row(c, t, job, published_status, files, n, 1, err)) != JP_OK ||
	    (r = replace_files(c, job, attempt, files, n, err)) != JP_OK ||
	    (r = end_attempt(c, attempt, o, err)) != JP_OK || (r = release(c, job, err)) != JP_OK ||
	    (r = exec(c, "COMMIT", err, "commit")) != JP_OK) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
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
	    (r = exec(c, "COMMIT", err, "commit")) != JP_OK) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	return JP_OK;
}

/* ---- reading ---- */

static int64_t
col_int(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
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
	sqlite3_stmt *st = NULL;
	char sql[256];

	if (c->version < 3)
		return;
	snprintf(sql, sizeof(sql), "SELECT expires, %s, since FROM jobpub_leases WHERE job = ?",
	         owner_cols(c));
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) >= (int64_t)time(NULL) &&
	    !owner_gone_at(st, 1)) {
		ji->lease_host = dup_col(st, 1);
		ji->lease_pid = sqlite3_column_int64(st, 2);
		ji->lease_since = dup_col(st, 5);
	}
	sqlite3_finalize(st);
}

static int
load_attempts(struct jp_catalog *c, struct jp_job_info *ji, const char *job, struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
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
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct jp_attempt_info *v = realloc(ji->attempts, (ji->n_attempts + 1) * sizeof(*v)), *a;
		if (v == NULL) {
			rc = SQLITE_NOMEM;
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
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? JP_OK : db_error(c, rc, err, "read attempts");
}

static int
load_files(struct jp_catalog *c, struct jp_job_info *ji, const char *job, struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
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
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct jp_file_info *v = realloc(ji->files, (ji->n_files + 1) * sizeof(*v)), *f;
		if (v == NULL) {
			rc = SQLITE_NOMEM;
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
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? JP_OK : db_error(c, rc, err, "read files");
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
	sqlite3_stmt *tabs = NULL, *st = NULL;
	int rc, r;

	/* The tables jobpub has published into, and its own. */
	r = prepare(c,
	            c->version == 0 ? "SELECT 'jobs', 'status'"
	                            : "SELECT 'jobs', 'status' UNION SELECT DISTINCT job_table,"
	                              " status_column FROM jobpub_attempts ORDER BY 1",
	            &tabs, err);
	if (r != JP_OK)
		return r;
	while ((rc = sqlite3_step(tabs)) == SQLITE_ROW) {
		const char *table = (const char *)sqlite3_column_text(tabs, 0);
		const char *scol = (const char *)sqlite3_column_text(tabs, 1);
		char sql[256];

		if (!jp_is_identifier(table) || !jp_is_identifier(scol))
			continue;
		snprintf(sql, sizeof(sql),
		         "SELECT coalesce(\"%s\", '(none)'), count(*) FROM \"%s\" GROUP BY 1 ORDER BY 1",
		         scol, table);
		if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
			continue; /* a table that was dropped since */
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			fn(arg, table, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			break;
	}
	sqlite3_finalize(tabs);
	return rc == SQLITE_DONE ? JP_OK : db_error(c, rc, err, "count jobs");
}

int
jp_catalog_jobs(struct jp_catalog *c, jp_job_fn fn, void *arg, struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
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
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct jp_job_brief b;
		struct jp_jobtable t;
		struct jp_row *row = NULL;
		struct jp_error e;
		int found, stop;

		memset(&b, 0, sizeof(b));
		b.job = (const char *)sqlite3_column_text(st, 0);
		b.table = (const char *)sqlite3_column_text(st, 1);
		b.id_column = (const char *)sqlite3_column_text(st, 2);
		b.status_column = (const char *)sqlite3_column_text(st, 3);
		b.manifest = (const char *)sqlite3_column_text(st, 4);
		b.workdir = (const char *)sqlite3_column_text(st, 5);
		b.destination = (const char *)sqlite3_column_text(st, 6);
		b.sets = (const char *)sqlite3_column_text(st, 7);
		b.started_at = (const char *)sqlite3_column_text(st, 8);
		b.outcome = (const char *)sqlite3_column_text(st, 9);
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
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? JP_OK : db_error(c, rc, err, "list jobs");
}

int
jp_catalog_files(struct jp_catalog *c, const char *job, jp_file_fn fn, void *arg,
                 struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	if (c->version == 0)
		return JP_OK;
	r = prepare(c,
	            c->version >= 4
	                ? "SELECT job, output, column_name, local_path, remote_url, sha256, published_at,"
	                  " size, entries, destination, key, etag FROM jobpub_files"
	                  " WHERE ?1 IS NULL OR job = ?1 ORDER BY job, remote_url"
	                : c->version == 3
	                ? "SELECT job, output, column_name, local_path, remote_url, sha256, published_at,"
	                  " size, entries, destination, key, NULL FROM jobpub_files"
	                  " WHERE ?1 IS NULL OR job = ?1 ORDER BY job, remote_url"
	                : "SELECT job, output, column_name, local_path, remote_url, sha256, published_at,"
	                  " size, NULL, NULL, NULL, NULL FROM jobpub_files"
	                  " WHERE ?1 IS NULL OR job = ?1 ORDER BY job, remote_url",
	            &st, err);
	if (r != JP_OK)
		return r;
	bind_text(st, 1, job);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct jp_file_info f;

		f.output = (char *)sqlite3_column_text(st, 1);
		f.column = (char *)sqlite3_column_text(st, 2);
		f.local = (char *)sqlite3_column_text(st, 3);
		f.remote = (char *)sqlite3_column_text(st, 4);
		f.sha256 = (char *)sqlite3_column_text(st, 5);
		f.published_at = (char *)sqlite3_column_text(st, 6);
		f.size = col_int(st, 7);
		f.entries = col_int(st, 8);
		f.destination = (char *)sqlite3_column_text(st, 9);
		f.key = (char *)sqlite3_column_text(st, 10);
		f.etag = (char *)sqlite3_column_text(st, 11);
		if (fn(arg, (const char *)sqlite3_column_text(st, 0), &f) != 0)
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? JP_OK : db_error(c, rc, err, "list files");
}

int
jp_catalog_destinations(struct jp_catalog *c, jp_url_fn fn, void *arg, struct jp_error *err)
{
	sqlite3_stmt *st = NULL;
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
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *u = (const char *)sqlite3_column_text(st, 0);
		/* A template recorded before destinations were expanded cannot be listed. */
		if (strstr(u, "${") == NULL && fn(arg, u) != 0)
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? JP_OK : db_error(c, rc, err, "list destinations");
}
