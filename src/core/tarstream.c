/*
 * tarstream.c - deterministic tar streams of directories with libarchive.
 *
 * The tree is walked by descriptors: each entry is looked up in its directory's descriptor with
 * fstatat/openat/readlinkat and O_NOFOLLOW, never by a path from the top, so a directory swapped
 * for a symlink during the walk is refused (or stored as the link it now is), never followed out
 * of the tree.  One descriptor is open per level of depth, whatever the number of entries.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "tarstream.h"
#include "log.h"
#include "util.h"

#define NAME "archive"
#define DATA_CHUNK (256 * 1024)

/* What the libarchive write callback needs. */
struct out {
	jp_sink_fn sink;
	void *arg;
	int stopped;          /* the sink said stop */
	struct jp_sha256 h;   /* inline hashing, when pipe is NULL */
	struct jp_hashpipe *pipe;
	uint64_t size;
};

/* The walk's state. */
struct walk {
	struct archive *a;
	struct archive_entry *e;
	const char *label;
	char *buf;
	uint64_t entries;
	struct jp_error *err;
};

enum jp_archive_format
jp_archive_format_parse(const char *s)
{
	if (strcmp(s, "tar") == 0)
		return JP_ARCHIVE_TAR;
	if (strcmp(s, "tar.gz") == 0)
		return JP_ARCHIVE_TAR_GZ;
	if (strcmp(s, "tar.zst") == 0)
		return JP_ARCHIVE_TAR_ZST;
	return JP_ARCHIVE_NONE;
}

static la_ssize_t
out_write(struct archive *a, void *client, const void *buf, size_t len)
{
	struct out *o = client;

	if (o->stopped)
		return -1;
	if (o->pipe != NULL)
		jp_hashpipe_push(o->pipe, buf, len);
	else
		jp_sha256_update(&o->h, buf, len);
	o->size += len;
	if (o->sink != NULL && o->sink(o->arg, buf, len) != 0) {
		o->stopped = 1;
		archive_set_error(a, ECANCELED, "stopped by the destination");
		return -1;
	}
	return (la_ssize_t)len;
}

/* Bytewise order: independent of the locale, unlike alphasort. */
static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
free_names(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The names in directory fd (not . and ..), sorted; fd stays open for the caller.  Returns 0,
 * or -1 with errno. */
static int
list_dir(int fd, char ***names, size_t *n)
{
	char **v = NULL;
	size_t len = 0, cap = 0;
	struct dirent *d;
	DIR *dp;
	int dfd = dup(fd), e = 0;

	*names = NULL;
	*n = 0;
	if (dfd < 0)
		return -1;
	if ((dp = fdopendir(dfd)) == NULL) {
		e = errno;
		close(dfd);
		errno = e;
		return -1;
	}
	rewinddir(dp); /* dup shares the offset */
	for (errno = 0; (d = readdir(dp)) != NULL; errno = 0) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (len == cap) {
			char **nv = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v));
			if (nv == NULL) {
				e = ENOMEM;
				break;
			}
			v = nv;
		}
		if ((v[len] = strdup(d->d_name)) == NULL) {
			e = ENOMEM;
			break;
		}
		len++;
	}
	if (e == 0 && errno != 0)
		e = errno;
	closedir(dp);
	if (e != 0) {
		free_names(v, len);
		errno = e;
		return -1;
	}
	if (len > 1)
		qsort(v, len, sizeof(*v), by_name);
	*names = v;
	*n = len;
	return 0;
}

static int
lib_error(struct walk *w, const char *rel)
{
	return jp_error_set(w->err, JP_E_SOFTWARE, NAME ": %s: %s", rel,
	                    archive_error_string(w->a) ? archive_error_string(w->a) : "failed");
}

/* Names are stored as UTF-8 whatever the locale; ASCII names go through the plain setter so
 * they need no pax header at all, bytes that are not UTF-8 go as they are. */
static void
set_name(struct archive_entry *e, const char *name,
         void (*copy)(struct archive_entry *, const char *),
         int (*utf8)(struct archive_entry *, const char *))
{
	const unsigned char *p;

	for (p = (const unsigned char *)name; *p != '\0' && *p < 0x80; p++)
		;
	if (*p == '\0' || !utf8(e, name))
		copy(e, name);
}

/* A header with every field that could differ between two runs normalised. */
static void
entry_init(struct walk *w, const char *rel, const struct stat *sb, mode_t type)
{
	archive_entry_clear(w->e);
	set_name(w->e, rel, archive_entry_copy_pathname, archive_entry_update_pathname_utf8);
	archive_entry_set_filetype(w->e, type);
	archive_entry_set_perm(w->e, sb->st_mode & 07777);
	archive_entry_set_uid(w->e, 0);
	archive_entry_set_gid(w->e, 0);
	archive_entry_set_mtime(w->e, sb->st_mtime, 0);
	archive_entry_set_size(w->e, type == AE_IFREG ? sb->st_size : 0);
}

static int
changed(struct walk *w, const char *rel)
{
	return jp_error_set(w->err, JP_E_IOERR,
	                    NAME ": %s changed while being archived (replaced, or a symbolic link "
	                    "swapped in)",
	                    rel);
}

/* Opens name in dirfd as the entry lstat found (same inode), without following a link.
 * Returns the descriptor, or -1 with the error set. */
static int
open_entry(struct walk *w, int dirfd, const char *name, const char *rel, const struct stat *ls,
           struct stat *sb)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
	                                 (S_ISDIR(ls->st_mode) ? O_DIRECTORY : 0)), fl;

	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR || errno == ENOENT)
			changed(w, rel);
		else
			jp_error_set(w->err, JP_E_IOERR, NAME ": %s: cannot read: %s", rel,
			             strerror(errno));
		return -1;
	}
	if (fstat(fd, sb) != 0 || sb->st_dev != ls->st_dev || sb->st_ino != ls->st_ino ||
	    (fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		changed(w, rel);
		close(fd);
		return -1;
	}
	return fd;
}

static int
add_file(struct walk *w, int dirfd, const char *name, const char *rel, const struct stat *ls)
{
	struct stat st;
	const struct stat *sb = &st;
	uint64_t left;
	int fd, r = JP_OK;

	/* Opened before the header is written, so an unreadable file fails cleanly. */
	if ((fd = open_entry(w, dirfd, name, rel, ls, &st)) < 0)
		return JP_FAILED;
	left = (uint64_t)sb->st_size;
	entry_init(w, rel, sb, AE_IFREG);
	if (archive_write_header(w->a, w->e) < ARCHIVE_WARN) {
		r = lib_error(w, rel);
		goto out;
	}
	while (left > 0) {
		ssize_t n = read(fd, w->buf, left < DATA_CHUNK ? (size_t)left : DATA_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = jp_error_set(w->err, JP_E_IOERR, NAME ": %s: %s", rel,
			                 n < 0 ? strerror(errno) : "file shrank while being archived");
			goto out;
		}
		if (archive_write_data(w->a, w->buf, (size_t)n) != n) {
			r = lib_error(w, rel);
			goto out;
		}
		left -= (uint64_t)n;
	}
	w->entries++;
out:
	close(fd);
	return r;
}

static int
add_symlink(struct walk *w, int dirfd, const char *name, const char *rel, const struct stat *sb)
{
	char target[4096];
	ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);

	if (n < 0)
		return jp_error_set(w->err, JP_E_IOERR, NAME ": %s: %s", rel, strerror(errno));
	target[n] = '\0';
	entry_init(w, rel, sb, AE_IFLNK);
	set_name(w->e, target, archive_entry_copy_symlink, archive_entry_update_symlink_utf8);
	if (archive_write_header(w->a, w->e) < ARCHIVE_WARN)
		return lib_error(w, rel);
	w->entries++;
	return JP_OK;
}

/* fd: the directory, open; the caller closes it. */
static int
add_dir(struct walk *w, int fd, const char *rel, const struct stat *sb)
{
	char **list = NULL;
	size_t n = 0, i;
	int r = JP_OK;

	entry_init(w, rel, sb, AE_IFDIR);
	if (archive_write_header(w->a, w->e) < ARCHIVE_WARN)
		return lib_error(w, rel);
	w->entries++;
	if (list_dir(fd, &list, &n) != 0)
		return jp_error_set(w->err, errno == ENOMEM ? JP_E_SOFTWARE : JP_E_IOERR,
		                    NAME ": %s: cannot read directory: %s", rel, strerror(errno));
	for (i = 0; i < n && r == JP_OK; i++) {
		char *crel = jp_asprintf("%s/%s", rel, list[i]);
		struct stat cs, os;
		int cfd;

		if (crel == NULL) {
			r = jp_error_set(w->err, JP_E_SOFTWARE, NAME ": out of memory");
		} else if (fstatat(fd, list[i], &cs, AT_SYMLINK_NOFOLLOW) != 0) {
			r = jp_error_set(w->err, JP_E_IOERR, NAME ": %s: %s", crel, strerror(errno));
		} else if (S_ISDIR(cs.st_mode)) {
			if ((cfd = open_entry(w, fd, list[i], crel, &cs, &os)) < 0) {
				r = JP_FAILED;
			} else {
				r = add_dir(w, cfd, crel, &os);
				close(cfd);
			}
		} else if (S_ISREG(cs.st_mode)) {
			r = add_file(w, fd, list[i], crel, &cs);
		} else if (S_ISLNK(cs.st_mode)) {
			r = add_symlink(w, fd, list[i], crel, &cs);
		} else {
			jp_log_warn("%s: skipping special file %s", w->label, crel);
		}
		free(crel);
	}
	free_names(list, n);
	return r;
}

static int
setup(struct archive *a, enum jp_archive_format fmt)
{
	/* hdrcharset=UTF-8 is pax's default charset: names go as UTF-8 without an extra keyword
	 * (BINARY would make GNU tar warn about every non-ASCII name). */
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "pax", "hdrcharset", "UTF-8") < ARCHIVE_WARN ||
	    archive_write_set_bytes_per_block(a, 64 * 1024) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK)
		return -1;
	switch (fmt) {
	case JP_ARCHIVE_TAR:
		return 0;
	case JP_ARCHIVE_TAR_GZ:
		if (archive_write_add_filter_gzip(a) != ARCHIVE_OK)
			return -1;
		/* The gzip header carries the time of writing unless told not to. */
		return archive_write_set_filter_option(a, "gzip", "timestamp", NULL) < ARCHIVE_WARN
		           ? -1 : 0;
	case JP_ARCHIVE_TAR_ZST:
		return archive_write_add_filter_zstd(a) == ARCHIVE_OK ? 0 : -1;
	default:
		return -1;
	}
}

int
jp_archive_write(const char *dir, const char *label, enum jp_archive_format fmt,
                 jp_sink_fn sink, void *arg, struct jp_archive_result *res,
                 struct jp_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r;

	if (fd < 0) {
		int e = errno;
		memset(res, 0, sizeof(*res));
		/* ENOTDIR, ELOOP (a symbolic link, O_NOFOLLOW): not a directory; EACCES, EMFILE, ENOENT
		 * ... say so, they need another remedy. */
		return jp_error_set(err, JP_E_IOERR, NAME ": %s: %s", label,
		                    e == ENOTDIR || e == ELOOP ? "not a directory" : strerror(e));
	}
	r = jp_archive_write_piped(fd, label, fmt, sink, arg, NULL, res, err);
	close(fd);
	return r;
}

int
jp_archive_write_piped(int dirfd, const char *label, enum jp_archive_format fmt,
                       jp_sink_fn sink, void *arg, struct jp_hashpipe *pipe,
                       struct jp_archive_result *res, struct jp_error *err)
{
	struct out o = {sink, arg, 0, {NULL}, NULL, 0};
	struct walk w = {NULL, NULL, label, NULL, 0, err};
	/* Entries are named after the directory as the job names it (a symlink keeps its name). */
	const char *base = strrchr(label, '/');
	struct stat sb;
	int r = JP_OK;

	memset(res, 0, sizeof(*res));
	base = base && base[1] ? base + 1 : label;
	if (fstat(dirfd, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return jp_error_set(err, JP_E_IOERR, NAME ": %s: not a directory", label);
	if (pipe != NULL && jp_hashpipe_begin(pipe) != 0) {
		r = jp_error_set(err, JP_E_SOFTWARE, NAME ": cannot start hashing: %s", strerror(errno));
		goto out;
	}
	o.pipe = pipe;
	if ((pipe == NULL && jp_sha256_init(&o.h) != 0) || (w.a = archive_write_new()) == NULL ||
	    (w.e = archive_entry_new()) == NULL || (w.buf = malloc(DATA_CHUNK)) == NULL) {
		r = jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
		goto out;
	}
	if (setup(w.a, fmt) != 0 || archive_write_open2(w.a, &o, NULL, out_write, NULL, NULL) !=
	                                ARCHIVE_OK) {
		r = o.stopped ? JP_FAILED : lib_error(&w, label);
		goto out;
	}
	r = add_dir(&w, dirfd, base, &sb);
	if (archive_write_close(w.a) != ARCHIVE_OK && r == JP_OK)
		r = o.stopped ? JP_FAILED : lib_error(&w, label);
	if (o.stopped && r == JP_OK)
		r = JP_FAILED;
	if (r == JP_OK) {
		if (pipe != NULL)
			jp_hashpipe_end(pipe, res->sha256);
		else
			jp_sha256_final(&o.h, res->sha256);
		res->size = o.size;
		res->entries = w.entries;
	}
out:
	if (o.stopped && err->code == JP_E_NONE)
		jp_error_set(err, JP_E_SOFTWARE, NAME ": %s: stopped", label);
	if (w.a != NULL)
		archive_write_free(w.a);
	archive_entry_free(w.e);
	free(w.buf);
	jp_sha256_free(&o.h);
	if (pipe != NULL)
		jp_hashpipe_cancel(pipe); /* nothing after a successful end */
	return r;
}
