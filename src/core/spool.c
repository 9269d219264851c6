/*
 * spool.c - spool entries: written with the JSON writer, read back with libfyaml (JSON is
 * YAML), and trusted only when the kernel says the caller owns them.
 *
 * The reader is strict because the file is machine-written and read unattended, possibly by a
 * root-run epilogue on the user's behalf: every key must be there, no other key may be, every
 * value must have its JSON type, and the owner and mode are checked on the descriptor that is
 * parsed (O_NOFOLLOW, fstat, then parse that same descriptor), so there is no window between
 * the check and the use.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include <libfyaml.h>

#include "json.h"
#include "catalog.h"
#include "spool.h"

#define ENTRY_MAX (1024 * 1024) /* a real entry is a few hundred bytes */

static int spool_errno(struct jp_error *err, int e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int job_ok(const char *job);
static int utf8_ok(const char *s);
static char *entry_path(const char *dir, const char *job);
static int mkdirs(const char *dir, struct jp_error *err);
static int fsync_dir(const char *dir);
static const char *user_name(uid_t uid, char *buf, size_t len);

/* A local failure: 77 when refused, else 74 (ENOSPC on the spool is not the storage's fault). */
static int
spool_errno(struct jp_error *err, int e, const char *fmt, ...)
{
	char buf[JP_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return jp_error_set(err, e == EACCES || e == EPERM || e == EROFS ? JP_E_NOPERM : JP_E_IOERR,
	                    "%s: %s", buf, strerror(e));
}

/* The CLI checks job IDs already; the library must not build a path from one it did not. */
static int
job_ok(const char *job)
{
	size_t n;

	if (job == NULL || (n = strlen(job)) == 0 || n > 128 || strchr(job, '/') != NULL ||
	    strcmp(job, ".") == 0 || strcmp(job, "..") == 0)
		return 0;
	for (; *job != '\0'; job++)
		if ((unsigned char)*job < 0x20 || *job == 0x7f)
			return 0;
	return 1;
}

/* libfyaml refuses invalid UTF-8, so an entry holding it could be written but never read:
 * refuse it at enqueue time, where the user sees the message. */
static int
utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 1 :
		        (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 3 : -1;
		if (n < 0)
			return 0;
		for (p++; n > 0; n--, p++)
			if ((*p & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

static char *
entry_path(const char *dir, const char *job)
{
	size_t n = strlen(dir);

	return jp_asprintf("%s%s%s.json", dir, n > 0 && dir[n - 1] == '/' ? "" : "/", job);
}

static const char *
user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL && pw->pw_name != NULL)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)uid);
	return buf;
}

char *
jp_spool_dir(void)
{
	const char *env = getenv("JOBPUB_SPOOL"), *home;
	struct passwd *pw;

	if (env != NULL && env[0] != '\0')
		return strdup(env);
	if (geteuid() == 0)
		return strdup("/var/spool/jobpub");
	if ((env = getenv("XDG_STATE_HOME")) != NULL && env[0] == '/')
		return jp_asprintf("%s/jobpub/spool", env);
	home = getenv("HOME");
	if (home == NULL || home[0] != '/')
		home = (pw = getpwuid(geteuid())) != NULL ? pw->pw_dir : NULL;
	/* No home at all: a path that fails with a clear message rather than a relative one (which
	 * would name another spool in each working directory). */
	return jp_asprintf("%s/.local/state/jobpub/spool",
	                   home != NULL && home[0] == '/' ? home : "/nonexistent");
}

/* mkdir -p, new levels 0700 (the XDG state directory's mode). */
static int
mkdirs(const char *dir, struct jp_error *err)
{
	char *p = strdup(dir), *s;
	struct stat sb;
	int r = JP_OK;

	if (p == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, "spool: out of memory");
	for (s = p + 1;; s++) {
		int last = (s = strchr(s, '/')) == NULL;

		if (!last)
			*s = '\0';
		if (p[0] != '\0' && mkdir(p, 0700) != 0 && errno != EEXIST) {
			r = spool_errno(err, errno, "spool: cannot create %s", p);
			break;
		}
		if (!last)
			*s = '/';
		else
			break;
	}
	if (r == JP_OK && (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
		r = jp_error_set(err, JP_E_IOERR, "spool: %s is not a directory", dir);
	free(p);
	return r;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	/* Some filesystems cannot fsync a directory; the rename is then as durable as it gets. */
	if (r != 0 && (errno == EINVAL || errno == ENOTSUP))
		r = 0;
	close(fd);
	return r;
}

/* An entry already filed under the name is the same request when it is for the same job of the
 * same catalogue: replacing it loses nothing. */
static int
same_request(const struct jp_spool_entry *a, const struct jp_spool_entry *b)
{
	return strcmp(a->job, b->job) == 0 &&
	       (a->db == NULL ? b->db == NULL : b->db != NULL && strcmp(a->db, b->db) == 0);
}

/* Writes e; exclusive: never replaces an entry of another request (link() refuses an existing
 * name atomically, where rename() would replace it). */
static int
write_entry(const char *dir, const struct jp_spool_entry *e, int exclusive, struct jp_error *err)
{
	char *path = NULL, *tmp = NULL, now[32];
	struct jp_json j;
	FILE *fp = NULL;
	size_t i;
	int fd = -1, r = JP_OK, saved;

	if (!job_ok(e->job))
		return jp_error_set(err, JP_E_DATA, "spool: job ID '%s' cannot name a spool entry",
		                   e->job != NULL ? e->job : "");
	if (e->manifest == NULL || e->manifest[0] != '/' || e->workdir == NULL ||
	    e->workdir[0] != '/' || (e->db != NULL && !jp_catalog_locator_absolute(e->db)))
		return jp_error_set(err, JP_E_DATA, "spool: job %s: manifest, workdir and db must be "
		                    "absolute paths", e->job);
	if (!utf8_ok(e->manifest) || !utf8_ok(e->workdir) || (e->db && !utf8_ok(e->db)) ||
	    (e->dest && !utf8_ok(e->dest)))
		return jp_error_set(err, JP_E_DATA, "spool: job %s: paths and URLs must be valid UTF-8 "
		                    "to be spooled", e->job);
	for (i = 0; i < e->n_sets; i++)
		if (!jp_is_identifier(e->sets[i].name) || !utf8_ok(e->sets[i].value))
			return jp_error_set(err, JP_E_DATA, "spool: job %s: --set %s: not spoolable "
			                    "(identifier names, UTF-8 values)", e->job, e->sets[i].name);
	if ((r = mkdirs(dir, err)) != JP_OK)
		return r;
	if (e->key != NULL && !job_ok(e->key))
		return jp_error_set(err, JP_E_USAGE, "spool: '%s' is not a valid spool key", e->key);
	path = entry_path(dir, e->key ? e->key : e->job);
	tmp = jp_asprintf("%s/.%s.json.XXXXXX", dir, e->key ? e->key : e->job);
	if (path == NULL || tmp == NULL) {
		r = jp_error_set(err, JP_E_SOFTWARE, "spool: out of memory");
		goto out;
	}
	if ((fd = mkstemp(tmp)) < 0) {
		r = spool_errno(err, errno, "spool: cannot create a file in %s", dir);
		free(tmp);
		tmp = NULL;
		goto out;
	}
	if (fchmod(fd, 0600) != 0 || (fp = fdopen(fd, "w")) == NULL) {
		r = spool_errno(err, errno, "spool: %s", tmp);
		goto out;
	}
	fd = -1;
	jp_json_init(&j, fp);
	jp_json_object(&j, NULL);
	jp_json_str(&j, "job", e->job);
	if (e->key != NULL)
		jp_json_str(&j, "key", e->key);
	jp_json_str(&j, "manifest", e->manifest);
	jp_json_str(&j, "workdir", e->workdir);
	jp_json_str(&j, "db", e->db);
	jp_json_str(&j, "dest", e->dest);
	jp_json_object(&j, "sets");
	for (i = 0; i < e->n_sets; i++)
		jp_json_str(&j, e->sets[i].name, e->sets[i].value);
	jp_json_end(&j, '}');
	jp_json_int(&j, "uid", (int64_t)e->uid);
	jp_json_str(&j, "created", e->created != NULL ? e->created : jp_now_iso(now, sizeof(now)));
	jp_json_end(&j, '}');
	putc('\n', fp);
	if (fflush(fp) != 0 || ferror(fp) || fsync(fileno(fp)) != 0) {
		r = spool_errno(err, errno != 0 ? errno : EIO, "spool: writing %s", tmp);
		goto out;
	}
	saved = fclose(fp);
	fp = NULL;
	if (saved != 0) {
		r = spool_errno(err, errno, "spool: writing %s", tmp);
		goto out;
	}
	if (exclusive && link(tmp, path) == 0) {
		unlink(tmp);
	} else if (exclusive && errno != EEXIST) {
		r = spool_errno(err, errno, "spool: cannot link %s to %s", tmp, path);
		goto out;
	} else {
		if (exclusive) {
			struct jp_spool_entry *old = NULL;
			struct jp_error why;
			int same;

			jp_error_clear(&why);
			jp_spool_read(dir, e->key ? e->key : e->job, &old, &why);
			same = old != NULL && same_request(old, e);
			jp_spool_entry_free(old);
			if (!same) {
				r = jp_error_set(err, JP_E_UNAVAILABLE, "spool: %s holds the entry of "
				                 "another job or catalogue", path);
				goto out;
			}
		}
		if (rename(tmp, path) != 0) {
			r = spool_errno(err, errno, "spool: cannot rename %s to %s", tmp, path);
			goto out;
		}
	}
	free(tmp);
	tmp = NULL;
	if (fsync_dir(dir) != 0)
		r = spool_errno(err, errno, "spool: fsync %s", dir);
out:
	if (fp != NULL)
		fclose(fp);
	if (fd >= 0)
		close(fd);
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	free(path);
	return r;
}

int
jp_spool_write(const char *dir, const struct jp_spool_entry *e, struct jp_error *err)
{
	return write_entry(dir, e, 0, err);
}

int
jp_spool_add(const char *dir, const struct jp_spool_entry *e, struct jp_error *err)
{
	return write_entry(dir, e, 1, err);
}

/* ---- reading ---- */

struct reader {
	const char *file;
	struct jp_error *err;
};

static void
diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
}

static int
rerr(struct reader *R, struct fy_node *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
rerr(struct reader *R, struct fy_node *at, const char *fmt, ...)
{
	const struct fy_mark *mk = NULL;
	char msg[JP_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at != NULL && fy_node_get_type(at) == FYNT_SCALAR)
		mk = fy_token_start_mark(fy_node_get_scalar_token(at));
	if (mk != NULL)
		return jp_error_set(R->err, JP_E_DATA, "%s:%d:%d: %s", R->file, mk->line + 1,
		                    mk->column + 1, msg);
	return jp_error_set(R->err, JP_E_DATA, "%s: %s", R->file, msg);
}

/* Where to point for a value: itself when a scalar, else its key (libfyaml marks only
 * tokens). */
static struct fy_node *
pos_of(struct fy_node *k, struct fy_node *v)
{
	return v != NULL && fy_node_get_type(v) == FYNT_SCALAR ? v : k;
}

/* A JSON string: a double-quoted scalar without NUL bytes.  *dst gets a copy. */
static int
get_str(struct reader *R, struct fy_node *k, struct fy_node *v, const char *key, int nullable,
        char **dst)
{
	const char *s;
	size_t len;

	if (v != NULL && fy_node_get_type(v) == FYNT_SCALAR && nullable &&
	    fy_node_get_style(v) == FYNS_PLAIN) {
		s = fy_node_get_scalar(v, &len);
		if (len == 4 && memcmp(s, "null", 4) == 0)
			return JP_OK;
	}
	if (v == NULL || fy_node_get_type(v) != FYNT_SCALAR ||
	    fy_node_get_style(v) != FYNS_DOUBLE_QUOTED)
		return rerr(R, pos_of(k, v), "%s: expected a string%s", key,
		            nullable ? " or null" : "");
	s = fy_node_get_scalar(v, &len);
	if (s == NULL || memchr(s, '\0', len) != NULL)
		return rerr(R, v, "%s: NUL byte in value", key);
	if ((*dst = strndup(s, len)) == NULL)
		return jp_error_set(R->err, JP_E_SOFTWARE, "spool: out of memory");
	return JP_OK;
}

static int
get_uid(struct reader *R, struct fy_node *k, struct fy_node *v, uid_t *dst)
{
	const char *s;
	size_t len, i;
	unsigned long long u = 0;

	if (v == NULL || fy_node_get_type(v) != FYNT_SCALAR || fy_node_get_style(v) != FYNS_PLAIN)
		return rerr(R, pos_of(k, v), "uid: expected a number");
	s = fy_node_get_scalar(v, &len);
	if (len == 0 || len > 10)
		return rerr(R, v, "uid: expected a number");
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return rerr(R, v, "uid: expected a number");
		u = u * 10 + (unsigned)(s[i] - '0');
	}
	if (u >= (uid_t)-1)
		return rerr(R, v, "uid: %llu is out of range", u);
	*dst = (uid_t)u;
	return JP_OK;
}

static int
get_sets(struct reader *R, struct fy_node *k, struct fy_node *v, struct jp_spool_entry *e)
{
	struct fy_node_pair *p;
	void *it = NULL;
	size_t n, i = 0;
	int r;

	if (v == NULL || fy_node_get_type(v) != FYNT_MAPPING)
		return rerr(R, pos_of(k, v), "sets: expected an object of NAME: \"VALUE\"");
	n = (size_t)fy_node_mapping_item_count(v);
	if (n > 0 && (e->sets = calloc(n, sizeof(*e->sets))) == NULL)
		return jp_error_set(R->err, JP_E_SOFTWARE, "spool: out of memory");
	while ((p = fy_node_mapping_iterate(v, &it)) != NULL && i < n) {
		struct fy_node *kn = fy_node_pair_key(p);
		char *name = NULL, *val = NULL;

		if ((r = get_str(R, kn, kn, "sets key", 0, &name)) != JP_OK)
			return r;
		e->sets[i].name = name;
		e->n_sets = ++i;
		if (!jp_is_identifier(name))
			return rerr(R, kn, "sets: '%s' is not a variable name", name);
		if ((r = get_str(R, kn, fy_node_pair_value(p), name, 0, &val)) != JP_OK)
			return r;
		e->sets[i - 1].value = val;
	}
	return JP_OK;
}

static const char *const keys[] = {
	"job", "manifest", "workdir", "db", "dest", "sets", "uid", "created", "key",
};
#define N_REQUIRED 8 /* "key" is optional */
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static int
parse_entry(struct reader *R, FILE *fp, const char *job, uid_t owner, struct jp_spool_entry *e)
{
	struct fy_diag *diag = NULL;
	struct fy_document *doc = NULL;
	struct fy_diag_cfg dc;
	struct fy_parse_cfg pc;
	struct fy_node *root, *kn;
	struct fy_node_pair *p;
	struct fy_node *at[N_KEYS], *ak[N_KEYS];
	void *it = NULL;
	size_t i;
	int r = JP_OK;

	memset(at, 0, sizeof(at));
	memset(ak, 0, sizeof(ak));
	fy_diag_cfg_default(&dc);
	dc.fp = NULL;
	dc.output_fn = diag_discard;
	dc.colorize = false;
	if ((diag = fy_diag_create(&dc)) == NULL)
		return jp_error_set(R->err, JP_E_SOFTWARE, "spool: out of memory");
	fy_diag_set_collect_errors(diag, true);
	memset(&pc, 0, sizeof(pc));
	pc.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG | FYPCF_JSON_FORCE;
	pc.diag = diag;
	if ((doc = fy_document_build_from_fp(&pc, fp)) == NULL) {
		struct fy_diag_error *de;
		void *dit = NULL;

		while ((de = fy_diag_errors_iterate(diag, &dit)) != NULL)
			if (de->type >= FYET_ERROR)
				break;
		if (de != NULL)
			r = jp_error_set(R->err, JP_E_DATA, "%s:%d:%d: %s", R->file, de->line,
			                 de->column, de->msg);
		else
			r = jp_error_set(R->err, JP_E_DATA, "%s: empty or not JSON", R->file);
		goto out;
	}
	root = fy_document_root(doc);
	if (root == NULL || fy_node_get_type(root) != FYNT_MAPPING) {
		r = rerr(R, root, "expected a JSON object");
		goto out;
	}
	while ((p = fy_node_mapping_iterate(root, &it)) != NULL) {
		const char *k = NULL;
		size_t len = 0;

		kn = fy_node_pair_key(p);
		if (kn != NULL && fy_node_get_type(kn) == FYNT_SCALAR)
			k = fy_node_get_scalar(kn, &len);
		for (i = 0; k != NULL && i < N_KEYS; i++)
			if (strlen(keys[i]) == len && memcmp(keys[i], k, len) == 0)
				break;
		if (k == NULL || i == N_KEYS) {
			r = rerr(R, kn, "unknown key '%.*s' (expected job, manifest, workdir, db, dest, "
			                "sets, uid, created, key)", k != NULL ? (int)len : 1, k != NULL ? k : "?");
			goto out;
		}
		if (at[i] != NULL) {
			r = rerr(R, kn, "%s given twice", keys[i]);
			goto out;
		}
		ak[i] = kn;
		at[i] = fy_node_pair_value(p);
		if (at[i] == NULL) {
			r = rerr(R, kn, "%s: no value", keys[i]);
			goto out;
		}
	}
	for (i = 0; i < N_REQUIRED; i++)
		if (at[i] == NULL) {
			r = rerr(R, NULL, "missing key '%s'", keys[i]);
			goto out;
		}
	if ((r = get_str(R, ak[0], at[0], "job", 0, &e->job)) != JP_OK ||
	    (r = get_str(R, ak[1], at[1], "manifest", 0, &e->manifest)) != JP_OK ||
	    (r = get_str(R, ak[2], at[2], "workdir", 0, &e->workdir)) != JP_OK ||
	    (r = get_str(R, ak[3], at[3], "db", 1, &e->db)) != JP_OK ||
	    (r = get_str(R, ak[4], at[4], "dest", 1, &e->dest)) != JP_OK ||
	    (r = get_sets(R, ak[5], at[5], e)) != JP_OK ||
	    (r = get_uid(R, ak[6], at[6], &e->uid)) != JP_OK ||
	    (r = get_str(R, ak[7], at[7], "created", 0, &e->created)) != JP_OK ||
	    (at[8] != NULL && (r = get_str(R, ak[8], at[8], "key", 1, &e->key)) != JP_OK))
		goto out;
	if (e->key != NULL && (!job_ok(e->key) || strcmp(e->key, job) != 0))
		r = rerr(R, at[8], "key is '%s', expected '%s'", e->key, job);
	else if (e->key == NULL && strcmp(e->job, job) != 0)
		r = rerr(R, at[0], "job is '%s', expected '%s'", e->job, job);
	else if (!job_ok(e->job))
		r = rerr(R, at[0], "job '%s' is not a job ID", e->job);
	else if (e->manifest[0] != '/')
		r = rerr(R, at[1], "manifest: '%s' is not an absolute path", e->manifest);
	else if (e->workdir[0] != '/')
		r = rerr(R, at[2], "workdir: '%s' is not an absolute path", e->workdir);
	else if (e->db != NULL && !jp_catalog_locator_absolute(e->db))
		r = rerr(R, at[3], "db: '%s' is not an absolute path", e->db);
	else if (e->dest != NULL && e->dest[0] == '\0')
		r = rerr(R, at[4], "dest: empty (use null for the manifest's)");
	else if (e->created[0] == '\0')
		r = rerr(R, at[7], "created: empty");
	/* The owner is what the kernel vouches for; an entry claiming someone else is forged or
	 * copied, and the publisher decides whose job it runs from e->uid. */
	else if (e->uid != owner)
		r = rerr(R, at[6], "uid %u does not match the file's owner (uid %u)", (unsigned)e->uid,
		         (unsigned)owner);
out:
	fy_document_destroy(doc);
	fy_diag_destroy(diag);
	return r;
}

int
jp_spool_read(const char *dir, const char *job, struct jp_spool_entry **out,
              struct jp_error *err)
{
	struct jp_spool_entry *e = NULL;
	struct reader R;
	struct stat sb;
	char *path = NULL, who[64];
	FILE *fp = NULL;
	uid_t me = geteuid();
	int fd = -1, r = JP_OK;

	*out = NULL;
	if (!job_ok(job))
		return jp_error_set(err, JP_E_DATA, "spool: job ID '%s' cannot name a spool entry",
		                    job != NULL ? job : "");
	if ((path = entry_path(dir, job)) == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, "spool: out of memory");
	/* O_NONBLOCK: a FIFO planted under the name must not hang the epilogue. */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			r = jp_error_set(err, JP_E_NOINPUT, "no spool entry for job %s in %s (run "
			                 "`jobpub enqueue` from the job script)", job, dir);
		else if (errno == ELOOP)
			r = jp_error_set(err, JP_E_NOPERM, "%s: a symbolic link: refused", path);
		else
			r = spool_errno(err, errno, "%s", path);
		goto out;
	}
	if (fstat(fd, &sb) != 0) {
		r = spool_errno(err, errno, "%s", path);
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		r = jp_error_set(err, JP_E_NOPERM, "%s: not a regular file: refused", path);
		goto out;
	}
	if (me != 0 && sb.st_uid != me) {
		char mine[64];
		r = jp_error_set(err, JP_E_NOPERM, "%s: owned by %s (uid %u), not by %s (uid %u): "
		                 "refused", path, user_name(sb.st_uid, who, sizeof(who)),
		                 (unsigned)sb.st_uid, user_name(me, mine, sizeof(mine)), (unsigned)me);
		goto out;
	}
	if ((sb.st_mode & 022) != 0) {
		r = jp_error_set(err, JP_E_NOPERM, "%s: writable by %s (mode %04o, owner %s): refused; "
		                 "enqueue the job again", path,
		                 (sb.st_mode & 020) && (sb.st_mode & 002) ? "group and others"
		                 : (sb.st_mode & 020) ? "group" : "others",
		                 (unsigned)(sb.st_mode & 07777), user_name(sb.st_uid, who, sizeof(who)));
		goto out;
	}
	if (sb.st_size > ENTRY_MAX) {
		r = jp_error_set(err, JP_E_DATA, "%s: %lld bytes: too large for a spool entry", path,
		                 (long long)sb.st_size);
		goto out;
	}
	/* Back to blocking reads on the (regular) file we just checked. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if ((fp = fdopen(fd, "r")) == NULL) {
		r = spool_errno(err, errno, "%s", path);
		goto out;
	}
	fd = -1;
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		r = jp_error_set(err, JP_E_SOFTWARE, "spool: out of memory");
		goto out;
	}
	R.file = path;
	R.err = err;
	if ((r = parse_entry(&R, fp, job, sb.st_uid, e)) != JP_OK)
		goto out;
	*out = e;
	e = NULL;
out:
	jp_spool_entry_free(e);
	if (fp != NULL)
		fclose(fp);
	if (fd >= 0)
		close(fd);
	free(path);
	return r;
}

int
jp_spool_remove(const char *dir, const char *job, struct jp_error *err)
{
	char *path;
	int r = JP_OK;

	if (!job_ok(job))
		return jp_error_set(err, JP_E_DATA, "spool: job ID '%s' cannot name a spool entry",
		                    job != NULL ? job : "");
	if ((path = entry_path(dir, job)) == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, "spool: out of memory");
	if (unlink(path) != 0 && errno != ENOENT)
		r = spool_errno(err, errno, "spool: cannot remove %s", path);
	else
		fsync_dir(dir); /* best effort: a resurrected entry only repeats a safe publish */
	free(path);
	return r;
}

void
jp_spool_entry_free(struct jp_spool_entry *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n_sets; i++) {
		free((char *)e->sets[i].name);
		free((char *)e->sets[i].value);
	}
	free(e->sets);
	free(e->job);
	free(e->key);
	free(e->manifest);
	free(e->workdir);
	free(e->db);
	free(e->dest);
	free(e->created);
	free(e);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
jp_spool_list(const char *dir, jp_spool_fn fn, void *arg, struct jp_error *err)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL, **v;
	size_t n = 0, i, len;
	int r = JP_OK, stop;

	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? JP_OK : spool_errno(err, errno, "spool %s", dir);
	/* readdir returns NULL at the end and on an error alike: errno tells them apart. */
	for (errno = 0; (de = readdir(d)) != NULL; errno = 0) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		if ((v = realloc(names, (n + 1) * sizeof(*names))) == NULL ||
		    (v[n] = strndup(de->d_name, len - 5)) == NULL) {
			names = v != NULL ? v : names;
			r = jp_error_set(err, JP_E_SOFTWARE, "spool: out of memory");
			goto out;
		}
		names = v;
		n++;
	}
	if (errno != 0) {
		r = spool_errno(err, errno, "spool: cannot list %s", dir);
		goto out;
	}
	/* Names, then reads: the callback may remove entries (jobpub spool --clean). */
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		struct jp_spool_entry *e = NULL;
		struct jp_error why;
		struct stat sb;
		char *path = entry_path(dir, names[i]);
		long long mtime = 0;

		if (path != NULL && lstat(path, &sb) == 0)
			mtime = (long long)sb.st_mtime;
		free(path);
		jp_error_clear(&why);
		if (!job_ok(names[i]))
			jp_error_set(&why, JP_E_DATA, "%s/%s.json: not a job ID", dir, names[i]);
		else
			jp_spool_read(dir, names[i], &e, &why);
		stop = fn(arg, names[i], e, e != NULL ? NULL : &why, mtime);
		jp_spool_entry_free(e);
		if (stop)
			break;
	}
out:
	closedir(d);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}
