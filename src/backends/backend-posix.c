/*
 * backend-posix.c - POSIX filesystem destinations: file:///path or a plain absolute path.
 *
 * Staging writes a 0600 temporary file beside the final name; finish fsyncs it, checks its
 * size and closes it; commit renames it into place with RENAME_NOREPLACE (link()+unlink()
 * where the filesystem lacks it), so an existing final name is never clobbered unless asked,
 * and a final name never holds a partial file.  The temporary stays 0600 until the rename: the
 * published mode (0666 & ~umask) is set on the renamed file.  Directories touched by commits
 * are fsynced once, in sync, after all renames.
 *
 * No descriptor is held between the calls of an upload: a job of 10,000 files staged before
 * the first commit must not need 10,000 descriptors (EMFILE under `ulimit -n 1024`).  commit and
 * abort open the parent directory again, through the same no-follow walk as stage.
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
#include "util.h"

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
	struct jp_upload jp;
	int fd;               /* the temporary, from stage to finish only */
	char *tmpname, *base; /* names in the parent directory (open_parent) */
	char *final, *tmp, *dir; /* full paths, for messages and the directory fsync */
	dev_t dev;            /* the temporary finish made durable: commit renames only it */
	ino_t ino;
	int finished;
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
posix_check(const char *url, const struct jp_dest_opts *opts, struct jp_error *err)
{
	char *path = NULL;
	int r = url_to_path(url, &path, err);

	(void)opts; /* nothing local to read before the open */
	free(path);
	return r;
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
		/* A reader (gc, verify) of a destination whose directory was never made (its
		 * publisher died first) finds nothing there; it must not fail. */
		if (opts->readonly && errno == ENOENT && (pd->real = strdup(pd->root)) != NULL)
			goto opened;
		r = jp_error_errno(err, errno, NAME ": %s", pd->root);
		goto fail;
	}
opened:
	um = umask(022);
	umask(um);
	pd->mode = 0666 & ~um;
	*out = &pd->base;
	return JP_OK;
fail:
	posix_close(&pd->base);
	return r;
}

static int remember_dir(struct posix_dest *pd, const char *dir);

/*
 * Opens the directory that holds key's final name, creating what is missing when `create`.
 * Every step is openat(O_NOFOLLOW) from the destination's own descriptor, so no symlink, even
 * one swapped in by someone else during the walk, leads out of the destination: a link inside
 * the destination is refused (65).  *dirfd is -1 (JP_OK) when !create and a directory is
 * missing.  *base points into key at the final component.
 */
static int
open_parent(struct posix_dest *pd, const char *key, int create, int *dirfd, const char **base,
            struct jp_error *err)
{
	char *k = strdup(key), *p, *slash;
	int fd, r = JP_OK;

	*dirfd = -1;
	*base = key;
	if (k == NULL)
		return oom(err);
	if ((fd = open(pd->real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		if (!create && errno == ENOENT)
			goto out; /* no destination directory (a reader's open): absent */
		r = jp_error_errno(err, errno, NAME ": %s", pd->real);
		goto out;
	}
	for (p = k; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
		int nfd;

		*slash = '\0';
		if (create && mkdirat(fd, p, 0777) == 0) {
			/* A new directory's entry lives in its parent: that parent is fsynced with the
			 * committed names, or a crash could lose the whole new subtree. */
			char *parent = p == k ? strdup(pd->real)
			                      : jp_asprintf("%s/%.*s", pd->real, (int)(p - 1 - k), k);
			if (parent == NULL || remember_dir(pd, parent) != 0) {
				free(parent);
				r = oom(err);
				goto out;
			}
			free(parent);
		} else if (create && errno != EEXIST) {
			r = jp_error_errno(err, errno, NAME ": cannot create directory %s/%s", pd->root, k);
			goto out;
		}
		nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			int e = errno;
			struct stat sb;

			if ((e == ENOENT || e == ENOTDIR) && !create &&
			    !(fstatat(fd, p, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode)))
				goto out; /* nothing below (or a file where a directory would be): absent */
			if (fstatat(fd, p, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
				r = jp_error_set(err, JP_E_DATA,
				                 NAME ": %s/%s is a symbolic link; jobpub does not follow links "
				                 "inside a destination",
				                 pd->root, k);
			else if (e == ENOTDIR || (e == ELOOP))
				r = jp_error_errno(err, ENOTDIR,
				                   NAME ": cannot create directory %s/%s: a file is in the way",
				                   pd->root, k);
			else
				r = jp_error_errno(err, e, NAME ": %s/%s", pd->root, k);
			goto out;
		}
		close(fd);
		fd = nfd;
		*slash = '/';
	}
	*base = key + (p - k);
	*dirfd = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	free(k);
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
	free(pu->tmpname);
	free(pu->base);
	free(pu);
}

static int
posix_stage(struct jp_dest *d, const char *key, const char *token, uint64_t size_hint,
            struct jp_upload **out, struct jp_error *err)
{
	struct posix_dest *pd = (struct posix_dest *)d;
	struct posix_upload *pu;
	const char *base;
	int dirfd = -1, r;

	(void)size_hint; /* files are written as they come */
	*out = NULL;
	if ((pu = calloc(1, sizeof(*pu))) == NULL)
		return oom(err);
	pu->fd = -1;
	if ((r = open_parent(pd, key, 1, &dirfd, &base, err)) != JP_OK)
		goto fail;
	/* NAME_MAX bounds the temporary name too: keep the token, shorten the base name. */
	pu->base = strdup(base);
	pu->tmpname = jp_asprintf("%s%s.%.*s", JP_TMP_PREFIX, token,
	                          (int)(NAME_MAX - strlen(JP_TMP_PREFIX) - strlen(token) - 1), base);
	pu->dir = (base == key) ? strdup(pd->real)
	                        : jp_asprintf("%s/%.*s", pd->real, (int)(base - 1 - key), key);
	pu->final = jp_asprintf("%s/%s", pu->dir, base);
	pu->tmp = pu->tmpname && pu->dir ? jp_asprintf("%s/%s", pu->dir, pu->tmpname) : NULL;
	if (!pu->base || !pu->tmpname || !pu->dir || !pu->final || !pu->tmp) {
		r = oom(err);
		goto fail;
	}
	pu->fd = openat(dirfd, pu->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	                0600);
	if (pu->fd < 0) {
		r = jp_error_errno(err, errno, NAME ": cannot create %s", pu->tmp);
		goto fail;
	}
	close(dirfd);
	pu->jp.staged = 1;
	*out = &pu->jp;
	return JP_OK;
fail:
	if (dirfd >= 0)
		close(dirfd);
	upload_free(&pu->jp);
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
	struct stat sb;
	int fd = pu->fd;

	(void)sha256;
	if (fd < 0)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": %s: finished twice", pu->tmp);
	pu->fd = -1;
	/* Durable now and closed: commit needs no descriptor of it, only its name. */
	if (fsync(fd) != 0 || fstat(fd, &sb) != 0) {
		int e = errno;
		close(fd);
		return jp_error_errno(err, e, NAME ": %s", pu->tmp);
	}
	if (close(fd) != 0)
		return jp_error_errno(err, errno, NAME ": close %s", pu->tmp);
	if ((uint64_t)sb.st_size != size)
		return jp_error_set(err, JP_E_IOERR, NAME ": %s holds %lld bytes, expected %llu",
		                    pu->tmp, (long long)sb.st_size, (unsigned long long)size);
	pu->dev = sb.st_dev;
	pu->ino = sb.st_ino;
	pu->finished = 1;
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

/* rename without replacing, inside one directory: renameat2(RENAME_NOREPLACE), else
 * linkat()+unlinkat() where the filesystem lacks it. */
static int
rename_noreplace(int dirfd, const char *from, const char *to)
{
#ifdef HAVE_RENAMEAT2
	if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
		return -1;
#endif
	if (linkat(dirfd, from, dirfd, to, 0) != 0)
		return -1;
	if (unlinkat(dirfd, from, 0) != 0) {
		int e = errno;
		unlinkat(dirfd, to, 0);
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
	const char *base;
	struct stat sb;
	int dirfd = -1, fd = -1, r = JP_OK;

	if (!pu->finished)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": %s: commit before finish", pu->tmp);
	if ((r = open_parent(pd, u->key, 0, &dirfd, &base, err)) != JP_OK)
		return r;
	if (dirfd < 0)
		return jp_error_errno(err, ENOENT, NAME ": staged file %s", pu->tmp);
	/* The temporary finish made durable, and nothing else, is what goes live: opened without
	 * following a link, held through the rename, and given its final mode only after it. */
	if ((fd = openat(dirfd, pu->tmpname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fstat(fd, &sb) != 0) {
		r = jp_error_errno(err, errno, NAME ": staged file %s", pu->tmp);
		goto out;
	}
	if (sb.st_dev != pu->dev || sb.st_ino != pu->ino || !S_ISREG(sb.st_mode)) {
		r = jp_error_set(err, JP_E_IOERR, NAME ": %s was replaced after it was staged",
		                 pu->tmp);
		goto out;
	}
	if (rename_noreplace(dirfd, pu->tmpname, pu->base) != 0) {
		if (errno != EEXIST) {
			r = jp_error_errno(err, errno, NAME ": rename to %s", pu->final);
			goto out;
		}
		if (!overwrite) {
			*exists = 1;
			goto out;
		}
		/* Only a name that exists is replaced, so `replaced` is never wrong: a rollback
		 * never deletes a file this attempt did not create. */
		if (fstatat(dirfd, pu->base, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode)) {
			r = jp_error_errno(err, EISDIR, NAME ": %s", pu->final);
			goto out;
		}
		if (renameat(dirfd, pu->tmpname, dirfd, pu->base) != 0) {
			r = jp_error_errno(err, errno, NAME ": rename to %s", pu->final);
			goto out;
		}
		*replaced = 1;
	}
	u->staged = 0;
	u->committed = 1;
	/* Published files follow the umask.  The mode change reaches the disk with the directory
	 * fsync of sync (a journalled metadata change ordered before it); were it lost in a crash,
	 * the file would stay 0600 with its content intact, never the other way round. */
	if (fchmod(fd, pd->mode) != 0) {
		r = jp_error_errno(err, errno, NAME ": chmod %s", pu->final);
		goto out;
	}
	if (remember_dir(pd, pu->dir) != 0)
		r = oom(err);
out:
	if (fd >= 0)
		close(fd);
	close(dirfd);
	return r;
}

static int
posix_abort(struct jp_upload *u, struct jp_error *err)
{
	struct posix_upload *pu = (struct posix_upload *)u;
	struct posix_dest *pd = (struct posix_dest *)u->dest;
	const char *base;
	int dirfd, r;

	if (pu->fd >= 0) {
		close(pu->fd);
		pu->fd = -1;
	}
	u->staged = 0;
	if ((r = open_parent(pd, u->key, 0, &dirfd, &base, err)) != JP_OK || dirfd < 0)
		return r; /* no directory: no temporary either */
	if (unlinkat(dirfd, pu->tmpname, 0) != 0 && errno != ENOENT)
		r = jp_error_errno(err, errno, NAME ": cannot remove %s", pu->tmp);
	close(dirfd);
	return r;
}

static int
posix_stat(struct jp_dest *d, const char *key, struct jp_stat *st, struct jp_error *err)
{
	struct posix_dest *pd = (struct posix_dest *)d;
	const char *base;
	struct stat sb;
	int dirfd, r;

	if ((r = open_parent(pd, key, 0, &dirfd, &base, err)) != JP_OK || dirfd < 0)
		return r;
	/* A symlink under a final name is reported as what it is, never followed. */
	if (fstatat(dirfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		st->exists = 1;
		st->is_dir = S_ISDIR(sb.st_mode);
		st->size = (uint64_t)sb.st_size;
		st->mtime = sb.st_mtime;
	} else if (errno != ENOENT && errno != ENOTDIR) {
		r = jp_error_errno(err, errno, NAME ": %s/%s", pd->root, key);
	}
	close(dirfd);
	return r;
}

static int
posix_remove(struct jp_dest *d, const char *key, struct jp_error *err)
{
	struct posix_dest *pd = (struct posix_dest *)d;
	const char *base;
	int dirfd, r;

	if ((r = open_parent(pd, key, 0, &dirfd, &base, err)) != JP_OK || dirfd < 0)
		return r;
	if (unlinkat(dirfd, base, 0) != 0 && errno != ENOENT)
		r = jp_error_errno(err, errno, NAME ": cannot remove %s/%s", pd->root, key);
	close(dirfd);
	return r;
}

static int
posix_read(struct jp_dest *d, const char *key, jp_read_fn fn, void *arg, struct jp_error *err)
{
	struct posix_dest *pd = (struct posix_dest *)d;
	const char *base;
	char *buf = NULL;
	int dirfd = -1, fd = -1, r;
	ssize_t n;

	if ((r = open_parent(pd, key, 0, &dirfd, &base, err)) != JP_OK)
		return r;
	if (dirfd < 0)
		return jp_error_errno(err, ENOENT, NAME ": %s/%s", pd->root, key);
	if ((buf = malloc(READ_CHUNK)) == NULL) {
		r = oom(err);
		goto out;
	}
	if ((fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		r = jp_error_errno(err, errno, NAME ": %s/%s%s", pd->root, key,
		                   errno == ELOOP ? " (a symbolic link)" : "");
		goto out;
	}
	while ((n = read(fd, buf, READ_CHUNK)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = jp_error_errno(err, errno, NAME ": read %s/%s", pd->root, key);
			goto out;
		}
		if (fn(arg, buf, (size_t)n) != 0) {
			r = jp_error_set(err, JP_E_TEMPFAIL, NAME ": read of %s/%s stopped", pd->root, key);
			goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	close(dirfd);
	free(buf);
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
	/* From the resolved root: a destination that is itself a link (its admin's choice) is
	 * listed; links below it are not followed (FTW_PHYS). */
	char *path = prefix[0] ? jp_asprintf("%s/%s", strcmp(pd->real, "/") ? pd->real : "", prefix)
	                       : strdup(pd->real);
	int r = JP_OK;

	if (path == NULL)
		return oom(err);
	walk.fn = fn;
	walk.arg = arg;
	walk.rootlen = strcmp(pd->real, "/") ? strlen(pd->real) : 0;
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
	.uncommit = NULL, /* dest.c removes the name */
	.sync = posix_sync,
	.check = posix_check,
};
