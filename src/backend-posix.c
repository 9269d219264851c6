/*
 * backend-posix.c - POSIX filesystem destinations: file:///path or a plain absolute path.
 *
 * Staging writes a 0600 temporary file beside the final name; finish fsyncs it and checks its
 * size; commit renames it into place with RENAME_NOREPLACE (link()+unlink() where the
 * filesystem lacks it), so an existing final name is never clobbered unless asked, and a
 * final name never holds a partial file.  Directories touched by commits are fsynced once, in
 * sync, after all renames.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "backend.h"

#define NAME "posix"
#define READ_CHUNK (1 << 20)

struct posix_dest {
	struct jp_dest base;
	char *root;  /* absolute, no trailing '/' */
	char *real;  /* realpath(root): staged files must resolve below it */
	mode_t mode; /* mode of published files: 0666 & ~umask */
	char **dirs; /* directories with committed names, fsynced by sync */
	size_t n_dirs;
};

struct posix_upload {
	struct jp_upload base;
	int fd;
	char *final, *tmp, *dir;
};

static int
oom(struct jp_error *err)
{
	return jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
}

/* The filesystem path a file:// URL names (curl's parser does the decoding), or a copy of a
 * plain absolute path. */
static int
url_to_path(const char *url, char **path, struct jp_error *err)
{
	CURLU *h;
	CURLUcode uc;
	char *host = NULL, *p = NULL;
	int r = JP_OK;

	*path = NULL;
	if (url[0] == '/') {
		*path = strdup(url);
		return *path ? JP_OK : oom(err);
	}
	if ((h = curl_url()) == NULL)
		return oom(err);
	uc = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME | CURLU_ALLOW_SPACE);
	if (uc == CURLUE_OK)
		uc = curl_url_get(h, CURLUPART_PATH, &p, CURLU_URLDECODE);
	if (uc != CURLUE_OK) {
		r = jp_error_set(err, JP_E_CONFIG, NAME ": destination '%s': %s", url,
		                 curl_url_strerror(uc));
		goto out;
	}
	if (curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '\0' &&
	    strcmp(host, "localhost") != 0) {
		r = jp_error_set(err, JP_E_CONFIG,
		                 NAME ": destination '%s': file:// URLs name a local path (file:///path), "
		                 "not host '%s'",
		                 url, host);
		goto out;
	}
	if (p[0] != '/' || strlen(p) < 1) {
		r = jp_error_set(err, JP_E_CONFIG, NAME ": destination '%s': no absolute path", url);
		goto out;
	}
	if ((*path = strdup(p)) == NULL)
		r = oom(err);
out:
	curl_free(host);
	curl_free(p);
	curl_url_cleanup(h);
	return r;
}

/* mkdir -p of path, tolerating another process creating the same directory meanwhile. */
static int
mkdirs(char *path, struct jp_error *err)
{
	struct stat sb;
	char *p;

	if (stat(path, &sb) == 0) {
		if (S_ISDIR(sb.st_mode))
			return JP_OK;
		return jp_error_errno(err, ENOTDIR, NAME ": %s", path);
	}
	for (p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		{
			char c = *p;
			*p = '\0';
			if (mkdir(path, 0777) != 0 && errno != EEXIST) {
				int e = errno;
				*p = c;
				return jp_error_errno(err, e, NAME ": cannot create directory %s", path);
			}
			if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
				int r = jp_error_errno(err, ENOTDIR,
				                       NAME ": cannot create directory %s: %s is in the way", path,
				                       path);
				*p = c;
				return r;
			}
			*p = c;
		}
		if (*p == '\0')
			break;
	}
	return JP_OK;
}

static void
posix_close(struct jp_dest *d)
{
	struct posix_dest *pd = (struct posix_dest *)d;
	size_t i;

	for (i = 0; i < pd->n_dirs; i++)
		free(pd->dirs[i]);
	free(pd->dirs);
	free(pd->root);
	free(pd->real);
	free(pd);
}

static int
posix_open(const char *url, const struct jp_dest_opts *opts, struct jp_dest **out,
           struct jp_error *err)
{
	struct posix_dest *pd;
	size_t len;
	mode_t um;
	int r;

	*out = NULL;
	if ((pd = calloc(1, sizeof(*pd))) == NULL)
		return oom(err);
	if ((r = url_to_path(url, &pd->root, err)) != JP_OK)
		goto fail;
	len = strlen(pd->root);
	while (len > 1 && pd->root[len - 1] == '/')
		pd->root[--len] = '\0';
	if (!opts->readonly && (r = mkdirs(pd->root, err)) != JP_OK)
		goto fail;
	if ((pd->real = realpath(pd->root, NULL)) == NULL) {
		r = jp_error_errno(err, errno, NAME ": %s", pd->root);
		goto fail;
	}
	um = umask(022);
	umask(um);
	pd->mode = 0666 & ~um;
	*out = &pd->base;
	return JP_OK;
fail:
	posix_close(&pd->base);
	return r;
}

/* 1 when real (a resolved path) is root or below it. */
static int
below(const char *real, const char *root)
{
	size_t n = strlen(root);

	if (strcmp(root, "/") == 0)
		return 1;
	return strncmp(real, root, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

/* Fails (65) when dir, or with `ancestor` its deepest existing ancestor, resolves outside the
 * destination. */
static int
check_inside(struct posix_dest *pd, const char *dir, int ancestor, struct jp_error *err)
{
	char *p = strdup(dir), *real = NULL, *slash;
	int r = JP_OK;

	if (p == NULL)
		return oom(err);
	while ((real = realpath(p, NULL)) == NULL && ancestor && (errno == ENOENT) &&
	       (slash = strrchr(p, '/')) != NULL && slash != p)
		*slash = '\0';
	if (real == NULL)
		r = jp_error_errno(err, errno, NAME ": %s", p);
	else if (!below(real, pd->real))
		r = jp_error_set(err, JP_E_DATA, NAME ": %s resolves to %s, outside the destination %s",
		                 p, real, pd->real);
	free(real);
	free(p);
	return r;
}

static void
upload_free(struct jp_upload *u)
{
	struct posix_upload *pu = (struct posix_upload *)u;

	if (pu->fd >= 0)
		close(pu->fd);
	free(pu->final);
	free(pu->tmp);
	free(pu->dir);
	free(pu);
}

static int
posix_stage(struct jp_dest *d, const char *key, const char *token, struct jp_upload **out,
            struct jp_error *err)
{
	struct posix_dest *pd = (struct posix_dest *)d;
	struct posix_upload *pu;
	const char *base;
	int r;

	*out = NULL;
	if ((pu = calloc(1, sizeof(*pu))) == NULL)
		return oom(err);
	pu->fd = -1;
	if (asprintf(&pu->final, "%s/%s", strcmp(pd->root, "/") ? pd->root : "", key) < 0) {
		pu->final = NULL;
		r = oom(err);
		goto fail;
	}
	base = strrchr(pu->final, '/') + 1;
	if ((pu->dir = strndup(pu->final, (size_t)(base - 1 - pu->final))) == NULL) {
		r = oom(err);
		goto fail;
	}
	if (pu->dir[0] == '\0') {
		free(pu->dir);
		pu->dir = strdup("/");
	}
	/* A symlink inside the destination must not carry a file, or even a directory, outside
	 * it: check the deepest existing ancestor before creating anything, and the result after. */
	if ((r = check_inside(pd, pu->dir, 1, err)) != JP_OK || (r = mkdirs(pu->dir, err)) != JP_OK ||
	    (r = check_inside(pd, pu->dir, 0, err)) != JP_OK)
		goto fail;
	/* NAME_MAX bounds the temporary name too: keep the token, shorten the base name. */
	if (asprintf(&pu->tmp, "%s/%s%s.%.*s", pu->dir, JP_TMP_PREFIX, token,
	             (int)(NAME_MAX - strlen(JP_TMP_PREFIX) - strlen(token) - 1), base) < 0) {
		pu->tmp = NULL;
		r = oom(err);
		goto fail;
	}
	pu->fd = open(pu->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (pu->fd < 0) {
		r = jp_error_errno(err, errno, NAME ": cannot create %s", pu->tmp);
		goto fail;
	}
	pu->base.staged = 1;
	*out = &pu->base;
	return JP_OK;
fail:
	upload_free(&pu->base);
	return r;
}

static int
posix_write(struct jp_upload *u, const void *buf, size_t len, struct jp_error *err)
{
	struct posix_upload *pu = (struct posix_upload *)u;
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(pu->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return jp_error_errno(err, errno, NAME ": write %s", pu->tmp);
		}
		p += n;
		len -= (size_t)n;
	}
	return JP_OK;
}

static int
posix_finish(struct jp_upload *u, uint64_t size, const unsigned char sha256[32],
             struct jp_error *err)
{
	struct posix_upload *pu = (struct posix_upload *)u;
	struct posix_dest *pd = (struct posix_dest *)u->dest;
	struct stat sb;
	int fd = pu->fd;

	pu->fd = -1;
	/* Created 0600 so nobody reads a partial file; published files follow the umask. */
	if (fchmod(fd, pd->mode) != 0 || fsync(fd) != 0 || fstat(fd, &sb) != 0) {
		int e = errno;
		close(fd);
		return jp_error_errno(err, e, NAME ": %s", pu->tmp);
	}
	if (close(fd) != 0)
		return jp_error_errno(err, errno, NAME ": close %s", pu->tmp);
	if ((uint64_t)sb.st_size != size)
		return jp_error_set(err, JP_E_IOERR, NAME ": %s holds %lld bytes, expected %llu",
		                    pu->tmp, (long long)sb.st_size, (unsigned long long)size);
	return JP_OK;
}

static int
remember_dir(struct posix_dest *pd, const char *dir)
{
	char **v;
	size_t i;

	for (i = 0; i < pd->n_dirs; i++)
		if (strcmp(pd->dirs[i], dir) == 0)
			return 0;
	if ((v = realloc(pd->dirs, (pd->n_dirs + 1) * sizeof(*v))) == NULL)
		return -1;
	pd->dirs = v;
	if ((v[pd->n_dirs] = strdup(dir)) == NULL)
		return -1;
	pd->n_dirs++;
	return 0;
}

/* rename without replacing: renameat2(RENAME_NOREPLACE), else link()+unlink(). */
static int
rename_noreplace(const char *from, const char *to)
{
#ifdef HAVE_RENAMEAT2
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
		return -1;
#endif
	if (link(from, to) != 0)
		return -1;
	if (unlink(from) != 0) {
		int e = errno;
		unlink(to);
		errno = e;
		return -1;
	}
	return 0;
}

static int
posix_commit(struct jp_upload *u, int overwrite, int *exists, int *replaced,
             struct jp_error *err)
{
	struct posix_upload *pu = (struct posix_upload *)u;
	struct posix_dest *pd = (struct posix_dest *)u->dest;
	struct stat sb;

	if (overwrite) {
		*replaced = lstat(pu->final, &sb) == 0;
		if (*replaced && S_ISDIR(sb.st_mode))
			return jp_error_errno(err, EISDIR, NAME ": %s", pu->final);
		if (rename(pu->tmp, pu->final) != 0)
			return jp_error_errno(err, errno, NAME ": rename to %s", pu->final);
	} else if (rename_noreplace(pu->tmp, pu->final) != 0) {
		if (errno == EEXIST) {
			*exists = 1;
			return JP_OK;
		}
		return jp_error_errno(err, errno, NAME ": rename to %s", pu->final);
	}
	u->staged = 0;
	u->committed = 1;
	if (remember_dir(pd, pu->dir) != 0)
		return oom(err);
	return JP_OK;
}

static int
posix_abort(struct jp_upload *u, struct jp_error *err)
{
	struct posix_upload *pu = (struct posix_upload *)u;

	if (pu->fd >= 0) {
		close(pu->fd);
		pu->fd = -1;
	}
	u->staged = 0;
	if (unlink(pu->tmp) != 0 && errno != ENOENT)
		return jp_error_errno(err, errno, NAME ": cannot remove %s", pu->tmp);
	return JP_OK;
}

static char *
key_path(struct posix_dest *pd, const char *key)
{
	char *p;

	if (key[0] == '\0')
		return strdup(pd->root);
	return asprintf(&p, "%s/%s", strcmp(pd->root, "/") ? pd->root : "", key) < 0 ? NULL : p;
}

static int
posix_stat(struct jp_dest *d, const char *key, struct jp_stat *st, struct jp_error *err)
{
	char *path = key_path((struct posix_dest *)d, key);
	struct stat sb;
	int r = JP_OK;

	if (path == NULL)
		return oom(err);
	if (stat(path, &sb) == 0) {
		st->exists = 1;
		st->is_dir = S_ISDIR(sb.st_mode);
		st->size = (uint64_t)sb.st_size;
		st->mtime = sb.st_mtime;
	} else if (errno != ENOENT && errno != ENOTDIR) {
		r = jp_error_errno(err, errno, NAME ": %s", path);
	}
	free(path);
	return r;
}

static int
posix_remove(struct jp_dest *d, const char *key, struct jp_error *err)
{
	char *path = key_path((struct posix_dest *)d, key);
	int r = JP_OK;

	if (path == NULL)
		return oom(err);
	if (unlink(path) != 0 && errno != ENOENT)
		r = jp_error_errno(err, errno, NAME ": cannot remove %s", path);
	free(path);
	return r;
}

static int
posix_read(struct jp_dest *d, const char *key, jp_read_fn fn, void *arg, struct jp_error *err)
{
	char *path = key_path((struct posix_dest *)d, key), *buf = NULL;
	int fd = -1, r = JP_OK;
	ssize_t n;

	if (path == NULL || (buf = malloc(READ_CHUNK)) == NULL) {
		r = oom(err);
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		r = jp_error_errno(err, errno, NAME ": %s", path);
		goto out;
	}
	while ((n = read(fd, buf, READ_CHUNK)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = jp_error_errno(err, errno, NAME ": read %s", path);
			goto out;
		}
		if (fn(arg, buf, (size_t)n) != 0) {
			r = jp_error_set(err, JP_E_TEMPFAIL, NAME ": read of %s stopped", path);
			goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(path);
	return r;
}

/* nftw has no user argument: the walk's state lives here for its duration (single-threaded). */
static struct {
	jp_list_fn fn;
	void *arg;
	size_t rootlen;
	int stopped;
} walk;

static int
walk_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	struct jp_stat st;

	if (type != FTW_F)
		return 0;
	memset(&st, 0, sizeof(st));
	st.exists = 1;
	st.size = (uint64_t)sb->st_size;
	st.mtime = sb->st_mtime;
	if (walk.fn(walk.arg, path + walk.rootlen + 1, &st) != 0) {
		walk.stopped = 1;
		return 1;
	}
	return 0;
}

static int
posix_list(struct jp_dest *d, const char *prefix, jp_list_fn fn, void *arg, struct jp_error *err)
{
	struct posix_dest *pd = (struct posix_dest *)d;
	char *path = key_path(pd, prefix);
	int r = JP_OK;

	if (path == NULL)
		return oom(err);
	walk.fn = fn;
	walk.arg = arg;
	walk.rootlen = strcmp(pd->root, "/") ? strlen(pd->root) : 0;
	walk.stopped = 0;
	if (nftw(path, walk_one, 32, FTW_PHYS) < 0 && errno != ENOENT)
		r = jp_error_errno(err, errno, NAME ": cannot list %s", path);
	free(path);
	return r;
}

static int
posix_sync(struct jp_dest *d, struct jp_error *err)
{
	struct posix_dest *pd = (struct posix_dest *)d;
	int r = JP_OK;
	size_t i;

	for (i = 0; i < pd->n_dirs; i++) {
		int fd = open(pd->dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) != 0) {
			if (r == JP_OK)
				r = jp_error_errno(err, errno, NAME ": fsync %s", pd->dirs[i]);
		}
		if (fd >= 0)
			close(fd);
		free(pd->dirs[i]);
	}
	pd->n_dirs = 0;
	return r;
}

static const char *const posix_schemes[] = {"file", NULL};

const struct jp_backend jp_backend_posix = {
	.name = NAME,
	.schemes = posix_schemes,
	.open = posix_open,
	.close = posix_close,
	.stage = posix_stage,
	.write = posix_write,
	.finish = posix_finish,
	.commit = posix_commit,
	.abort = posix_abort,
	.upload_free = upload_free,
	.stat = posix_stat,
	.remove = posix_remove,
	.digest = NULL, /* read back and hashed by dest.c */
	.read = posix_read,
	.list = posix_list,
	.sync = posix_sync,
};
