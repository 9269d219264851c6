/*
 * plan.c - resolving a manifest against a work directory.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dest.h"
#include "plan.h"

#define NAME "plan"

void
jp_plan_free(struct jp_plan *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n_items; i++) {
		jp_attrs_free(p->items[i].attrs, p->items[i].n_attrs);
		free(p->items[i].local);
		free(p->items[i].abs);
		free(p->items[i].rel);
		free(p->items[i].key);
	}
	if (p->wdfd >= 0)
		close(p->wdfd);
	free(p->items);
	free(p->skipped);
	free(p->workdir);
	free(p->destination);
	free(p);
}

static int
oom(struct jp_error *err)
{
	return jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
}

/*
 * Opens rel below dirfd one component at a time, never following a symlink: a link swapped in
 * since realpath() saw none fails (ELOOP, ENOTDIR) instead of leading elsewhere.  The last
 * component is opened only when lstat finds a regular file or a directory (and O_NONBLOCK: a
 * FIFO swapped in meanwhile must not block us), and must be what lstat found (else ESTALE).
 * Returns 0 with *fd open and *sb its fstat, or 0 with *fd = -1 and *sb the lstat of something
 * that is neither; -1 with errno on failure.
 */
static int
open_nofollow(int dirfd, const char *rel, struct stat *sb, int *fd)
{
	char *path = strdup(rel), *c, *slash;
	struct stat ls;
	int cur = dirfd, e = 0, fl;

	*fd = -1;
	if (path == NULL)
		return -1;
	for (c = path; (slash = strchr(c, '/')) != NULL; c = slash + 1) {
		int nfd;

		*slash = '\0';
		if (c[0] == '\0' || strcmp(c, ".") == 0)
			continue;
		/* O_PATH: a directory the user may search but not list is still a way through. */
		if ((nfd = openat(cur, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			e = errno;
			goto out;
		}
		if (cur != dirfd)
			close(cur);
		cur = nfd;
	}
	if (fstatat(cur, c, &ls, AT_SYMLINK_NOFOLLOW) != 0) {
		e = errno;
		goto out;
	}
	if (!S_ISREG(ls.st_mode) && !S_ISDIR(ls.st_mode)) {
		*sb = ls;
		goto out;
	}
	*fd = openat(cur, c, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
	                         (S_ISDIR(ls.st_mode) ? O_DIRECTORY : 0));
	if (*fd < 0 || fstat(*fd, sb) != 0)
		e = errno;
	else if (sb->st_dev != ls.st_dev || sb->st_ino != ls.st_ino)
		e = ESTALE;
	else if ((fl = fcntl(*fd, F_GETFL)) < 0 || fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		e = errno;
out:
	if (e != 0 && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	if (cur != dirfd)
		close(cur);
	free(path);
	errno = e;
	return e != 0 ? -1 : 0;
}

static int
changed(const struct jp_item *it, struct jp_error *err)
{
	return jp_error_set(err, JP_E_IOERR,
	                    NAME ": %s changed since it was checked (removed, replaced, or a symbolic "
	                    "link swapped in); it is not published",
	                    it->local);
}

static int
same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* sb (of the file open for it) against what the plan recorded. */
static int
check_identity(const struct jp_item *it, const struct stat *sb, struct jp_error *err)
{
	if (sb->st_dev != it->dev || sb->st_ino != it->ino || (sb->st_mode & S_IFMT) != it->type)
		return changed(it, err);
	if (it->type == S_IFREG &&
	    ((uint64_t)sb->st_size != it->size || !same_time(&sb->st_mtim, &it->mtime) ||
	     !same_time(&sb->st_ctim, &it->ctime)))
		return jp_error_set(err, JP_E_IOERR,
		                    NAME ": %s changed since it was checked (%llu bytes then, %llu now, "
		                    "modified since); is the job still writing it?",
		                    it->local, (unsigned long long)it->size,
		                    (unsigned long long)sb->st_size);
	return JP_OK;
}

int
jp_plan_unchanged(const struct jp_item *it, int fd, struct jp_error *err)
{
	struct stat sb;

	if (fstat(fd, &sb) != 0)
		return jp_error_set(err, JP_E_IOERR, NAME ": %s: %s", it->local, strerror(errno));
	return check_identity(it, &sb, err);
}

int
jp_plan_open(const struct jp_plan *p, const struct jp_item *it, int *fd, struct jp_error *err)
{
	struct stat sb;
	int e;

	if (open_nofollow(p->wdfd, it->rel, &sb, fd) != 0) {
		e = errno;
		if (e == ELOOP || e == ENOTDIR || e == ESTALE || e == ENOENT)
			return changed(it, err);
		return jp_error_set(err, e == ENOMEM ? JP_E_SOFTWARE : JP_E_IOERR, NAME ": %s: %s",
		                    it->local, strerror(e));
	}
	if (*fd < 0)
		return changed(it, err); /* a special file now */
	if (check_identity(it, &sb, err) != JP_OK) {
		close(*fd);
		*fd = -1;
		return JP_FAILED;
	}
	return JP_OK;
}

/* Expands a manifest template; errors point into the manifest. */
static char *
expand(const struct jp_manifest *m, const struct jp_str *s, const struct jp_vars *v,
       struct jp_error *err)
{
	char why[512];
	size_t off = 0;
	char *x = jp_template_expand(s->s, v, why, sizeof(why), &off);

	if (x == NULL && errno == ENOMEM) {
		oom(err);
	} else if (x == NULL) {
		struct jp_str at = {NULL, s->line, s->col + (int)off};
		jp_manifest_error(m, &at, err, "%s", why);
	}
	return x;
}

/* Backslash-escapes glob metacharacters so a workdir named "run[1]" matches itself. */
static char *
glob_escape(const char *s)
{
	char *out = malloc(2 * strlen(s) + 1), *p = out;

	if (out == NULL)
		return NULL;
	for (; *s != '\0'; s++) {
		if (strchr("*?[]\\", *s) != NULL)
			*p++ = '\\';
		*p++ = *s;
	}
	*p = '\0';
	return out;
}

/* A directory of the pattern that does not exist means no match, not an I/O error. */
static int
glob_err(const char *path, int e)
{
	(void)path;
	return e != ENOENT && e != ENOTDIR;
}

static int
add_item(struct jp_plan *p, const struct jp_output *o, char *local, char *abs, uint64_t size,
         struct jp_error *err)
{
	struct jp_item *v = realloc(p->items, (p->n_items + 1) * sizeof(*v));

	if (v == NULL) {
		free(local);
		free(abs);
		return oom(err);
	}
	p->items = v;
	memset(&v[p->n_items], 0, sizeof(v[p->n_items]));
	v[p->n_items].out = o;
	v[p->n_items].local = local;
	v[p->n_items].abs = abs;
	v[p->n_items].size = size;
	p->n_items++;
	p->total += size;
	return JP_OK;
}

/* HDF checks before anything leaves: an invalid file fails the plan (65).  fd is the file the
 * plan recorded: what is validated is what will be staged. */
static int
validate(struct jp_item *it, int fd, struct jp_error *err)
{
	const struct jp_output *o = it->out;
	int r;

	r = jp_validate(fd, it->local, o->check_kind, (const char *const *)o->attributes,
	                o->n_attributes, &it->attrs, &it->checked, err);
	if (r == JP_OK && it->attrs != NULL)
		it->n_attrs = o->n_attributes;
	return r;
}

/* 1 when rel climbs above its starting directory by its own '..' components. */
static int
lexically_escapes(const char *rel)
{
	long depth = 0;

	for (;;) {
		size_t n = strcspn(rel, "/");

		if (n == 2 && rel[0] == '.' && rel[1] == '.') {
			if (--depth < 0)
				return 1;
		} else if (n > 0 && !(n == 1 && rel[0] == '.')) {
			depth++;
		}
		if (rel[n] == '\0')
			return 0;
		rel += n + 1;
	}
}

/*
 * Checks one local path, relative to the workdir, and adds it to the plan under that name (the
 * path as matched: a symlink keeps its own name).  *missing is set instead of an error when it
 * does not exist, so the caller can tell required from optional.
 */
static int
add_path(struct jp_plan *p, const struct jp_manifest *m, const struct jp_output *o,
         const char *path, int *missing, struct jp_error *err)
{
	char *full = NULL, *real = NULL, *local = NULL, *rel = NULL;
	size_t wl = strlen(p->workdir);
	struct stat sb;
	int fd = -1, r = JP_OK;

	*missing = 0;
	/* Before asking the filesystem: a name that leaves the workdir is refused even when it
	 * does not exist (it must not pass for a missing optional output). */
	if (path[0] == '/' || lexically_escapes(path))
		return jp_manifest_error(m, o->path.s ? &o->path : &o->glob, err,
		                         "output %s: %s is outside the work directory %s", o->name.s,
		                         path, p->workdir);
	if (asprintf(&full, "%s/%s", p->workdir, path) < 0)
		full = NULL;
	if (full == NULL)
		return oom(err);
	if ((real = realpath(full, NULL)) == NULL) {
		if (errno == ENOENT) {
			*missing = 1;
			r = JP_OK;
		} else if (errno == ENOTDIR) {
			*missing = 1;
		} else {
			r = jp_error_set(err, JP_E_IOERR, NAME ": output %s: %s: %s", o->name.s, path,
			                 strerror(errno));
		}
		goto out;
	}
	if (!(strcmp(p->workdir, "/") == 0 ||
	      (strncmp(real, p->workdir, wl) == 0 && real[wl] == '/'))) {
		r = jp_manifest_error(m, o->path.s ? &o->path : &o->glob, err,
		                      "output %s: %s resolves to %s, outside the work directory %s",
		                      o->name.s, path, real, p->workdir);
		goto out;
	}
	/* From here on the file is reached from the workdir's descriptor by its resolved name,
	 * never through a link, so that what is checked is what realpath() vetted. */
	if ((rel = strdup(real + (strcmp(p->workdir, "/") == 0 ? 1 : wl + 1))) == NULL) {
		r = oom(err);
		goto out;
	}
	if (open_nofollow(p->wdfd, rel, &sb, &fd) != 0) {
		int e = errno;

		if (e == ELOOP || e == ENOTDIR || e == ESTALE || e == ENOENT)
			r = jp_error_set(err, JP_E_IOERR,
			                 NAME ": output %s: %s changed while being checked (removed, "
			                 "replaced, or a symbolic link swapped in)",
			                 o->name.s, path);
		else
			r = jp_error_set(err, e == ENOMEM ? JP_E_SOFTWARE : JP_E_IOERR,
			                 NAME ": output %s: %s: %s", o->name.s, path, strerror(e));
		goto out;
	}
	if (S_ISLNK(sb.st_mode)) { /* realpath() resolved every link: this one is new */
		r = jp_error_set(err, JP_E_IOERR,
		                 NAME ": output %s: %s changed while being checked (a symbolic link "
		                 "swapped in)",
		                 o->name.s, path);
		goto out;
	}
	if (S_ISDIR(sb.st_mode) && o->archive_fmt == 0) {
		r = jp_manifest_error(m, o->path.s ? &o->path : &o->glob, err,
		                      "output %s: %s is a directory; add 'archive: tar.gz' (or tar, "
		                      "tar.zst) to publish it as one archive",
		                      o->name.s, path);
		goto out;
	}
	if (!S_ISDIR(sb.st_mode) && o->archive_fmt != 0) {
		r = jp_manifest_error(m, &o->archive, err,
		                      "output %s: archive needs a directory, but %s is not one",
		                      o->name.s, path);
		goto out;
	}
	if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)) {
		r = jp_manifest_error(m, o->path.s ? &o->path : &o->glob, err,
		                      "output %s: %s is a special file, not a regular file", o->name.s,
		                      path);
		goto out;
	}
	/* Messages, ${basename} and the catalogue name the file as the job does. */
	local = strdup(path);
	if (local == NULL) {
		r = oom(err);
		goto out;
	}
	r = add_item(p, o, local, real, S_ISDIR(sb.st_mode) ? 0 : (uint64_t)sb.st_size, err);
	real = NULL;
	if (r == JP_OK) {
		struct jp_item *it = &p->items[p->n_items - 1];

		it->rel = rel;
		rel = NULL;
		it->dev = sb.st_dev;
		it->ino = sb.st_ino;
		it->type = sb.st_mode & S_IFMT;
		it->mtime = sb.st_mtim;
		it->ctime = sb.st_ctim;
		if (S_ISDIR(sb.st_mode))
			it->is_archive = 1;
		else
			r = validate(it, fd, err);
	}
out:
	if (fd >= 0)
		close(fd);
	free(full);
	free(real);
	free(rel);
	return r;
}

static int
resolve_output(struct jp_plan *p, const struct jp_plan_input *in, const struct jp_output *o,
               struct jp_error *err)
{
	struct jp_vars v = {in->job, o->name.s, NULL, in->sets, in->n_sets, in->row, in->row == NULL};
	const struct jp_manifest *m = in->m;
	size_t before = p->n_items, i, wl = strlen(p->workdir);
	char *pat = NULL;
	int r = JP_OK, missing = 0;

	if ((pat = expand(m, o->path.s ? &o->path : &o->glob, &v, err)) == NULL)
		return JP_FAILED;
	if (o->path.s != NULL) {
		if ((r = add_path(p, m, o, pat, &missing, err)) != JP_OK)
			goto out;
	} else {
		char *wd = glob_escape(p->workdir), *full = NULL;
		glob_t g;
		int gr;

		if (wd == NULL || (pat[0] != '/' && asprintf(&full, "%s/%s", wd, pat) < 0)) {
			free(wd);
			r = oom(err);
			goto out;
		}
		free(wd);
		memset(&g, 0, sizeof(g));
		gr = glob(full ? full : pat, 0, glob_err, &g);
		free(full);
		if (gr == GLOB_NOSPACE) {
			r = oom(err);
		} else if (gr == GLOB_ABORTED) {
			r = jp_error_set(err, JP_E_IOERR, NAME ": output %s: cannot read the directories of %s",
			                 o->name.s, pat);
		} else {
			/* glob() sorts; directories are not files to publish and are passed over. */
			for (i = 0; gr == 0 && i < g.gl_pathc && r == JP_OK; i++) {
				struct stat sb;
				const char *rel = g.gl_pathv[i];

				/* A glob of a million files takes a while: a SIGTERM must not wait for it. */
				if (in->stop != NULL && in->stop()) {
					r = jp_error_set(err, JP_E_TEMPFAIL, NAME ": interrupted");
					break;
				}
				if (stat(rel, &sb) == 0 && S_ISDIR(sb.st_mode))
					continue;
				/* Matches of workdir/pattern start with the workdir: name them relative. */
				if (strncmp(rel, p->workdir, wl) == 0 && rel[wl] == '/')
					rel += wl + 1;
				r = add_path(p, m, o, rel, &missing, err);
				missing = 0; /* vanished between glob and stat: not a match */
			}
			missing = p->n_items == before;
		}
		globfree(&g);
		if (r != JP_OK)
			goto out;
	}
	if (missing) {
		if (o->required) {
			r = jp_error_set(err, JP_E_NOINPUT, "plan: required output %s is missing: %s%s",
			                 o->name.s, pat, o->glob.s ? " matches no file" : " does not exist");
			goto out;
		}
		{
			const struct jp_output **sv = realloc(p->skipped, (p->n_skipped + 1) * sizeof(*sv));
			if (sv == NULL) {
				r = oom(err);
				goto out;
			}
			p->skipped = sv;
			sv[p->n_skipped++] = o;
		}
	}
	if (o->column.s != NULL && p->n_items - before > 1) {
		r = jp_manifest_error(m, &o->column, err,
		                      "output %s: %zu files match but column %s can hold one URL",
		                      o->name.s, p->n_items - before, o->column.s);
		goto out;
	}
	/* Remote names. */
	for (i = before; i < p->n_items; i++) {
		struct jp_item *it = &p->items[i];
		const char *slash = strrchr(it->local, '/');
		char why[512];

		v.basename = slash ? slash + 1 : it->local;
		if ((it->key = expand(m, &o->to, &v, err)) == NULL) {
			r = JP_FAILED;
			goto out;
		}
		if (jp_key_check(it->key, why, sizeof(why)) != 0) {
			r = jp_manifest_error(m, &o->to, err, "output %s: %s", o->name.s, why);
			goto out;
		}
	}
out:
	free(pat);
	return r;
}

static int
cmp_key(const void *a, const void *b)
{
	const struct jp_item *x = *(const struct jp_item *const *)a;
	const struct jp_item *y = *(const struct jp_item *const *)b;

	return strcmp(x->key, y->key);
}

/* Two files under one remote name would overwrite each other: refuse. */
static int
check_duplicates(struct jp_plan *p, const struct jp_manifest *m, struct jp_error *err)
{
	const struct jp_item **v;
	size_t i;
	int r = JP_OK;

	if (p->n_items < 2)
		return JP_OK;
	if ((v = malloc(p->n_items * sizeof(*v))) == NULL)
		return oom(err);
	for (i = 0; i < p->n_items; i++)
		v[i] = &p->items[i];
	qsort(v, p->n_items, sizeof(*v), cmp_key);
	for (i = 1; i < p->n_items && r == JP_OK; i++)
		if (strcmp(v[i]->key, v[i - 1]->key) == 0)
			r = jp_manifest_error(m, &v[i]->out->to, err,
			                      "remote name %s is produced twice: by %s (%s) and %s (%s)",
			                      v[i]->key, v[i - 1]->out->name.s, v[i - 1]->local,
			                      v[i]->out->name.s, v[i]->local);
	free(v);
	return r;
}

int
jp_plan_build(const struct jp_plan_input *in, struct jp_plan **out, struct jp_error *err)
{
	struct jp_vars v = {in->job, NULL, NULL, in->sets, in->n_sets, in->row, in->row == NULL};
	const struct jp_manifest *m = in->m;
	struct jp_plan *p;
	struct stat sb;
	size_t i;
	int r;

	*out = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return oom(err);
	p->wdfd = -1;
	if ((p->workdir = realpath(in->workdir ? in->workdir : ".", NULL)) == NULL) {
		if (errno == ENOENT)
			r = jp_error_set(err, JP_E_NOINPUT, "plan: outputs no longer on disk at %s: no such "
			                                    "work directory",
			                 in->workdir ? in->workdir : ".");
		else
			r = jp_error_set(err, JP_E_IOERR, NAME ": work directory %s: %s",
			                 in->workdir ? in->workdir : ".", strerror(errno));
		goto fail;
	}
	if (stat(p->workdir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		r = jp_error_set(err, JP_E_NOINPUT, NAME ": work directory %s is not a directory",
		                 in->workdir);
		goto fail;
	}
	/* Opened once, by its resolved name and without following links on the way: every item is
	 * reached from this descriptor, whatever happens to the names above it later. */
	{
		int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), e = 0;

		if (root < 0)
			e = errno;
		else if (strcmp(p->workdir, "/") == 0)
			p->wdfd = root;
		else if (open_nofollow(root, p->workdir + 1, &sb, &p->wdfd) != 0 || p->wdfd < 0)
			e = p->wdfd < 0 && errno == 0 ? ENOTDIR : errno;
		if (root >= 0 && root != p->wdfd)
			close(root);
		if (e == 0 && !S_ISDIR(sb.st_mode))
			e = ENOTDIR;
		if (e != 0) {
			r = jp_error_set(err, e == ENOMEM ? JP_E_SOFTWARE : JP_E_IOERR,
			                 NAME ": work directory %s: %s", p->workdir, strerror(e));
			goto fail;
		}
	}
	if (in->dest_override != NULL) {
		struct jp_str s = {(char *)in->dest_override, 0, 0};
		char why[512];
		size_t off;

		p->destination = jp_template_expand(s.s, &v, why, sizeof(why), &off);
		if (p->destination == NULL) {
			r = errno == ENOMEM ? oom(err)
			                    : jp_error_set(err, JP_E_USAGE, NAME ": --dest %s: %s",
			                                   in->dest_override, why);
			goto fail;
		}
	} else if (m->destination.s != NULL) {
		if ((p->destination = expand(m, &m->destination, &v, err)) == NULL) {
			r = JP_FAILED;
			goto fail;
		}
	} else {
		r = jp_error_set(err, JP_E_CONFIG,
		                 NAME ": no destination: give --dest URL, $JOBPUB_DEST or 'destination:' in %s",
		                 m->file);
		goto fail;
	}
	for (i = 0; i < m->n_outputs; i++)
		if ((r = resolve_output(p, in, &m->outputs[i], err)) != JP_OK)
			goto fail;
	if ((r = check_duplicates(p, m, err)) != JP_OK)
		goto fail;
	*out = p;
	return JP_OK;
fail:
	jp_plan_free(p);
	return r == JP_OK ? JP_FAILED : r;
}
