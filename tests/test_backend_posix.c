/*
 * test_backend_posix.c - unit tests of src/backends/backend-posix.c, driven through the dest.h API:
 * opening file:// URLs and plain paths, staging under a 0600 temporary name, verification,
 * commit with and without overwrite, abort, stat/remove/digest/list, symlinks that lead out
 * of the destination, long names, and permission errors.
 */
#include "config.h"

#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "testlib.h"

#include "dest.h"
#include "failalloc.h"
#include "log.h"
#include "util.h"

#define TOKEN "0123456789abcdef"

static char *dir;

static void
setup(void)
{
	umask(022);
	dir = t_tempdir();
}

static void
teardown(void)
{
	t_rmtree(dir);
	free(dir);
	dir = NULL;
}

static struct jp_dest *
open_ok(const char *url)
{
	struct jp_dest_opts opts = {0};
	struct jp_dest *d = NULL;
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	r = jp_dest_open(url, &opts, &d, &err);
	ck_assert_msg(r == JP_OK, "open %s: %d %s", url, err.code, err.msg);
	ck_assert_ptr_nonnull(d);
	return d;
}

/* The destination <dir>/dest as a plain path (created by open). */
static struct jp_dest *
open_dest(void)
{
	char *p = t_path(dir, "dest");
	struct jp_dest *d = open_ok(p);

	free(p);
	return d;
}

static struct jp_upload *
stage_ok(struct jp_dest *d, const char *key)
{
	struct jp_upload *u = NULL;
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	r = jp_dest_stage(d, key, TOKEN, UINT64_MAX, &u, &err);
	ck_assert_msg(r == JP_OK, "stage %s: %d %s", key, err.code, err.msg);
	ck_assert_ptr_nonnull(u);
	ck_assert_str_eq(jp_upload_key(u), key);
	return u;
}

static void
sha256_of(const void *buf, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	ck_assert(EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32);
}

/* Stages key with data, finishes it; returns the upload, not committed. */
static struct jp_upload *
stage_data(struct jp_dest *d, const char *key, const char *data, size_t len)
{
	struct jp_upload *u = stage_ok(d, key);
	unsigned char sha[32];
	struct jp_error err;
	int r;

	sha256_of(data, len, sha);
	jp_error_clear(&err);
	r = jp_upload_write(u, data, len, &err);
	ck_assert_msg(r == JP_OK, "write: %s", err.msg);
	r = jp_upload_finish(u, len, sha, &err);
	ck_assert_msg(r == JP_OK, "finish: %s", err.msg);
	return u;
}

/* Stages, finishes and commits key with data (no overwrite); asserts it is committed. */
static void
put(struct jp_dest *d, const char *key, const char *data)
{
	struct jp_upload *u = stage_data(d, key, data, strlen(data));
	struct jp_error err;
	int exists = -1, replaced = -1, r;

	jp_error_clear(&err);
	r = jp_upload_commit(u, 0, &exists, &replaced, &err);
	ck_assert_msg(r == JP_OK, "commit %s: %s", key, err.msg);
	ck_assert_int_eq(exists, 0);
	ck_assert_int_eq(replaced, 0);
	jp_upload_free(u);
}

/* "<dir>/dest/<rel>" */
static char *
dpath(const char *rel)
{
	char *p;

	ck_assert(asprintf(&p, "%s/dest/%s", dir, rel) > 0);
	return p;
}

static mode_t
mode_of(const char *path)
{
	struct stat sb;

	ck_assert_msg(lstat(path, &sb) == 0, "%s: %s", path, strerror(errno));
	return sb.st_mode & 07777;
}

/* ---------------------------------------------------------------- open */

START_TEST(test_open_file_url_creates_prefix)
{
	char *url, *p;
	struct jp_dest *d;
	struct stat sb;

	ck_assert(asprintf(&url, "file://%s/archive/pdr/m7/", dir) > 0);
	d = open_ok(url);
	ck_assert_str_eq(jp_dest_backend(d), "posix");
	url[strlen(url) - 1] = '\0';
	ck_assert_str_eq(jp_dest_url(d), url);
	p = t_path(dir, "archive/pdr/m7");
	ck_assert(stat(p, &sb) == 0 && S_ISDIR(sb.st_mode));
	ck_assert_int_eq(sb.st_mode & 0777, 0755);
	jp_dest_close(d);
	/* again, now that it exists */
	d = open_ok(url);
	jp_dest_close(d);
	free(p);
	free(url);
}
END_TEST

START_TEST(test_open_plain_path_and_localhost)
{
	char *url;
	struct jp_dest *d;

	ck_assert(asprintf(&url, "%s/plain/x", dir) > 0);
	d = open_ok(url);
	ck_assert(t_exists(dir, "plain/x"));
	jp_dest_close(d);
	free(url);

	ck_assert(asprintf(&url, "file://localhost%s/with%%20space", dir) > 0);
	d = open_ok(url);
	ck_assert(t_exists(dir, "with space"));
	jp_dest_close(d);
	free(url);
}
END_TEST

START_TEST(test_open_file_in_the_way)
{
	struct jp_dest_opts opts = {0};
	struct jp_dest *d = (struct jp_dest *)1;
	struct jp_error err;
	char *url;
	int r;

	t_write_str(dir, "blocker", "I am a file\n");
	/* the prefix itself is a file */
	ck_assert(asprintf(&url, "file://%s/blocker", dir) > 0);
	jp_error_clear(&err);
	r = jp_dest_open(url, &opts, &d, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_ptr_null(d);
	ck_assert_msg(err.code == JP_E_UNAVAILABLE, "%d %s", err.code, err.msg);
	ck_assert_msg(strncmp(err.msg, "posix: ", 7) == 0, "%s", err.msg);
	free(url);
	/* a file where a directory of the prefix must go */
	ck_assert(asprintf(&url, "%s/blocker/sub/dir", dir) > 0);
	jp_error_clear(&err);
	r = jp_dest_open(url, &opts, &d, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_msg(err.code == JP_E_UNAVAILABLE, "%d %s", err.code, err.msg);
	ck_assert_msg(strstr(err.msg, "blocker") != NULL, "%s", err.msg);
	free(url);
	url = t_read(dir, "blocker", NULL);
	ck_assert_str_eq(url, "I am a file\n");
	free(url);
	ck_assert_uint_eq(t_count_entries(dir), 1);
}
END_TEST

START_TEST(test_open_remote_host_refused)
{
	struct jp_dest_opts opts = {0};
	struct jp_dest *d = (struct jp_dest *)1;
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	r = jp_dest_open("file://fileserver/archive", &opts, &d, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_ptr_null(d);
	ck_assert_msg(err.code == JP_E_CONFIG, "%d %s", err.code, err.msg);
	ck_assert_msg(strstr(err.msg, "fileserver") != NULL, "%s", err.msg);
}
END_TEST

/* ---------------------------------------------------------------- stage / commit */

START_TEST(test_stage_temp_name_and_mode)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u = stage_ok(d, "pdrgrid/sub/TEXTOUTm7");
	char *tmp = dpath("pdrgrid/sub/" JP_TMP_PREFIX TOKEN ".TEXTOUTm7");
	char *fin = dpath("pdrgrid/sub/TEXTOUTm7");
	unsigned char sha[32];
	struct jp_error err;
	int exists, replaced, r;
	char *back;

	/* parents created, the temp exists 0600 beside the final name, the final name does not */
	ck_assert_msg(mode_of(tmp) == 0600, "staged mode %o", (unsigned)mode_of(tmp));
	ck_assert(!t_exists(dir, "dest/pdrgrid/sub/TEXTOUTm7"));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 1);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_write(u, "hello ", 6, &err), JP_OK);
	ck_assert_int_eq(jp_upload_write(u, "world\n", 6, &err), JP_OK);
	ck_assert_msg(mode_of(tmp) == 0600, "staged mode %o", (unsigned)mode_of(tmp));
	ck_assert(!t_exists(dir, "dest/pdrgrid/sub/TEXTOUTm7"));
	sha256_of("hello world\n", 12, sha);
	r = jp_upload_finish(u, 12, sha, &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert(!t_exists(dir, "dest/pdrgrid/sub/TEXTOUTm7"));
	/* Complete and durable, still not for anyone else's eyes until the rename. */
	ck_assert_msg(mode_of(tmp) == 0600, "finished mode %o", (unsigned)mode_of(tmp));
	back = t_read(dir, "dest/pdrgrid/sub/" JP_TMP_PREFIX TOKEN ".TEXTOUTm7", NULL);
	ck_assert_str_eq(back, "hello world\n");
	free(back);

	r = jp_upload_commit(u, 0, &exists, &replaced, &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_int_eq(exists, 0);
	ck_assert_int_eq(replaced, 0);
	ck_assert(!t_exists(dir, "dest/pdrgrid/sub/" JP_TMP_PREFIX TOKEN ".TEXTOUTm7"));
	back = t_read(dir, "dest/pdrgrid/sub/TEXTOUTm7", NULL);
	ck_assert_str_eq(back, "hello world\n");
	free(back);
	/* umask 022: published 0644 */
	ck_assert_msg(mode_of(fin) == 0644, "published mode %o", (unsigned)mode_of(fin));
	ck_assert_int_eq(jp_dest_sync(d, &err), JP_OK);
	jp_upload_free(u);
	/* free after commit must not remove the committed file */
	ck_assert(t_exists(dir, "dest/pdrgrid/sub/TEXTOUTm7"));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	jp_dest_close(d);
	free(tmp);
	free(fin);
}
END_TEST

START_TEST(test_commit_mode_follows_umask)
{
	struct jp_dest *d;
	char *fin;

	umask(027);
	d = open_dest();
	put(d, "a/f", "data");
	fin = dpath("a/f");
	ck_assert_msg(mode_of(fin) == 0640, "published mode %o", (unsigned)mode_of(fin));
	jp_dest_close(d);
	free(fin);
}
END_TEST

/* Open descriptors of this process. */
static size_t
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	size_t n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* Staged, finished and waiting for their commit, uploads hold no descriptor: a job of more
 * files than RLIMIT_NOFILE is published (it failed with EMFILE), with the same steps. */
START_TEST(test_no_descriptor_held_per_upload)
{
	enum { N = 300 };
	struct rlimit rl = {40, 40};
	struct jp_upload *u[N];
	struct jp_dest *d = open_dest();
	struct jp_error err;
	char key[64], *back;
	size_t before = open_fds();
	int i, exists, replaced, r;

	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "many/d%d/f%03d", i % 7, i);
		u[i] = stage_data(d, key, key, strlen(key));
	}
	ck_assert_uint_eq(open_fds(), before);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), N);
	for (i = 0; i < N; i++) {
		jp_error_clear(&err);
		r = jp_upload_commit(u[i], 0, &exists, &replaced, &err);
		ck_assert_msg(r == JP_OK, "commit %d: %s", i, err.msg);
		ck_assert_int_eq(exists, 0);
	}
	ck_assert_uint_eq(open_fds(), before);
	ck_assert_int_eq(jp_dest_sync(d, &err), JP_OK);
	for (i = 0; i < N; i++)
		jp_upload_free(u[i]);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	back = t_read(dir, "dest/many/d5/f299", NULL);
	ck_assert_str_eq(back, "many/d5/f299");
	free(back);
	jp_dest_close(d);
}
END_TEST

/* A temporary swapped for another file after finish is not what commit puts live. */
START_TEST(test_commit_refuses_replaced_temp)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u = stage_data(d, "x/f", "ours", 4);
	char *tmp = dpath("x/" JP_TMP_PREFIX TOKEN ".f"), *theirs = dpath("x/theirs");
	struct jp_error err;
	int exists, replaced;

	/* Made while ours exists, so it cannot reuse our inode number. */
	t_write_str(dir, "dest/x/theirs", "theirs");
	ck_assert_int_eq(rename(theirs, tmp), 0);
	free(theirs);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	ck_assert_msg(strstr(err.msg, "replaced after it was staged") != NULL, "%s", err.msg);
	ck_assert(!t_exists(dir, "dest/x/f"));
	jp_upload_free(u);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	jp_dest_close(d);
	free(tmp);
}
END_TEST

START_TEST(test_finish_wrong_size)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u = stage_ok(d, "f");
	unsigned char sha[32] = {0};
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_write(u, "12345", 5, &err), JP_OK);
	r = jp_upload_finish(u, 6, sha, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_ne(err.code, JP_E_NONE);
	ck_assert(!t_exists(dir, "dest/f"));
	jp_upload_free(u);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);

	/* what landed is checked on the store: truncate the temp file behind the backend's back */
	u = stage_ok(d, "g");
	ck_assert_int_eq(jp_upload_write(u, "12345", 5, &err), JP_OK);
	{
		char *tmp = dpath(JP_TMP_PREFIX TOKEN ".g");
		ck_assert_int_eq(truncate(tmp, 2), 0);
		free(tmp);
	}
	jp_error_clear(&err);
	r = jp_upload_finish(u, 5, sha, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_msg(err.code == JP_E_IOERR, "%d %s", err.code, err.msg);
	ck_assert_msg(strstr(err.msg, "expected 5") != NULL, "%s", err.msg);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	ck_assert(!t_exists(dir, "dest/g"));
	jp_upload_free(u);
	jp_dest_close(d);
}
END_TEST

START_TEST(test_commit_existing_no_overwrite)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u;
	struct jp_error err;
	int exists = -1, replaced = -1, r;
	char *back;

	t_write_str(dir, "dest/x/f", "original\n");
	u = stage_data(d, "x/f", "newer content\n", 14);
	jp_error_clear(&err);
	r = jp_upload_commit(u, 0, &exists, &replaced, &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_int_eq(exists, 1);
	ck_assert_int_eq(replaced, 0);
	back = t_read(dir, "dest/x/f", NULL);
	ck_assert_str_eq(back, "original\n");
	free(back);
	/* still staged: abort removes the temp, leaves the existing file */
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 1);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	back = t_read(dir, "dest/x/f", NULL);
	ck_assert_str_eq(back, "original\n");
	free(back);
	jp_upload_free(u);
	jp_dest_close(d);
}
END_TEST

START_TEST(test_commit_overwrite)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u;
	struct jp_error err;
	int exists = -1, replaced = -1, r;
	char *back, *fin = dpath("x/f");

	t_write_str(dir, "dest/x/f", "original\n");
	chmod(fin, 0600);
	u = stage_data(d, "x/f", "newer content\n", 14);
	jp_error_clear(&err);
	r = jp_upload_commit(u, 1, &exists, &replaced, &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_int_eq(exists, 0);
	ck_assert_int_eq(replaced, 1);
	back = t_read(dir, "dest/x/f", NULL);
	ck_assert_str_eq(back, "newer content\n");
	free(back);
	ck_assert_msg(mode_of(fin) == 0644, "mode %o", (unsigned)mode_of(fin));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	jp_upload_free(u);

	/* overwrite of a name that does not exist: committed, not "replaced" */
	u = stage_data(d, "x/new", "n", 1);
	r = jp_upload_commit(u, 1, &exists, &replaced, &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_int_eq(replaced, 0);
	ck_assert(t_exists(dir, "dest/x/new"));
	jp_upload_free(u);
	jp_dest_close(d);
	free(fin);
}
END_TEST

START_TEST(test_commit_overwrite_directory_refused)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u;
	struct jp_error err;
	int exists, replaced, r;

	t_write_str(dir, "dest/x/f/inside", "keep\n");
	u = stage_data(d, "x/f", "file\n", 5);
	jp_error_clear(&err);
	r = jp_upload_commit(u, 1, &exists, &replaced, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_msg(err.code == JP_E_UNAVAILABLE, "%d %s", err.code, err.msg);
	ck_assert(t_exists(dir, "dest/x/f/inside"));
	jp_upload_free(u);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	jp_dest_close(d);
}
END_TEST

START_TEST(test_abort_and_free_remove_temp)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u;
	struct jp_error err;

	/* abort mid-write */
	u = stage_ok(d, "a/b");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_write(u, "partial", 7, &err), JP_OK);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 1);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	ck_assert(!t_exists(dir, "dest/a/b"));
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK); /* any state */
	jp_upload_free(u);

	/* free of a finished, uncommitted upload */
	u = stage_data(d, "a/c", "x", 1);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 1);
	jp_upload_free(u);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	ck_assert(!t_exists(dir, "dest/a/c"));

	/* abort after commit leaves the committed file */
	u = stage_data(d, "a/d", "x", 1);
	{
		int exists, replaced;
		ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	}
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_OK);
	ck_assert(t_exists(dir, "dest/a/d"));
	jp_upload_free(u);
	ck_assert(t_exists(dir, "dest/a/d"));
	jp_dest_close(d);
}
END_TEST

START_TEST(test_two_uploads_same_key)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u1 = stage_ok(d, "k"), *u2 = NULL;
	struct jp_error err;
	int r;

	/* the same token and key twice: O_EXCL refuses, the first temp is not clobbered */
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_write(u1, "one", 3, &err), JP_OK);
	r = jp_dest_stage(d, "k", TOKEN, UINT64_MAX, &u2, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_ptr_null(u2);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 1);
	jp_upload_free(u1);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	jp_dest_close(d);
}
END_TEST

START_TEST(test_long_base_name)
{
	struct jp_dest *d = open_dest();
	char base[251], key[300], tmpname[NAME_MAX + 1];
	struct jp_upload *u;
	struct jp_error err;
	int exists, replaced, r;
	DIR *dh;
	struct dirent *de;
	char *sub;
	int found = 0;

	memset(base, 'L', 250);
	base[250] = '\0';
	snprintf(key, sizeof(key), "long/%s", base);
	u = stage_ok(d, key);
	sub = dpath("long");
	ck_assert_ptr_nonnull(dh = opendir(sub));
	while ((de = readdir(dh)) != NULL) {
		if (strncmp(de->d_name, JP_TMP_PREFIX TOKEN ".", strlen(JP_TMP_PREFIX TOKEN ".")) == 0) {
			found++;
			snprintf(tmpname, sizeof(tmpname), "%s", de->d_name);
		}
	}
	closedir(dh);
	ck_assert_int_eq(found, 1);
	ck_assert_uint_le(strlen(tmpname), NAME_MAX);
	ck_assert_msg(strncmp(tmpname + strlen(JP_TMP_PREFIX TOKEN "."), "LLLL", 4) == 0, "%s",
	              tmpname);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_write(u, "z", 1, &err), JP_OK);
	r = jp_upload_finish(u, 1, (const unsigned char *)"01234567890123456789012345678901", &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	r = jp_upload_commit(u, 0, &exists, &replaced, &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert(t_exists(sub, base));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	jp_upload_free(u);
	jp_dest_close(d);
	free(sub);
}
END_TEST

START_TEST(test_bad_keys_refused)
{
	static const char *const bad[] = {"../escape", "/abs", "a//b", "a/./b", "a/",
	                                  JP_TMP_PREFIX "x", ""};
	struct jp_dest *d = open_dest();
	struct jp_upload *u;
	struct jp_error err;
	size_t i;
	int r;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		u = (struct jp_upload *)1;
		jp_error_clear(&err);
		r = jp_dest_stage(d, bad[i], TOKEN, UINT64_MAX, &u, &err);
		ck_assert_msg(r != JP_OK && err.code == JP_E_DATA, "key '%s': %d %s", bad[i], err.code,
		              err.msg);
		ck_assert_ptr_null(u);
	}
	ck_assert(!t_exists(dir, "escape"));
	ck_assert_uint_eq(t_count_entries(dir), 1); /* just dest/ */
	jp_dest_close(d);
}
END_TEST

/* ---------------------------------------------------------------- symlinks */

START_TEST(test_symlink_dir_outside)
{
	struct jp_dest *d = open_dest();
	char *outside = t_path(dir, "outside"), *link = dpath("link");
	struct jp_upload *u;
	struct jp_error err;
	int r;

	ck_assert_int_eq(mkdir(outside, 0755), 0);
	ck_assert_int_eq(symlink(outside, link), 0);

	u = (struct jp_upload *)1;
	jp_error_clear(&err);
	r = jp_dest_stage(d, "link/file", TOKEN, UINT64_MAX, &u, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_ptr_null(u);
	ck_assert_msg(err.code == JP_E_DATA, "%d %s", err.code, err.msg);
	/* No link inside a destination is followed: the message says so. */
	ck_assert_msg(strstr(err.msg, "is a symbolic link") != NULL, "%s", err.msg);
	ck_assert_uint_eq(t_count_entries(outside), 0);
	jp_dest_close(d);
	free(outside);
	free(link);
}
END_TEST

START_TEST(test_symlink_dir_outside_deeper)
{
	struct jp_dest *d = open_dest();
	char *outside = t_path(dir, "outside"), *link = dpath("link");
	struct jp_upload *u;
	struct jp_error err;
	int r;

	/* the symlink is a parent of the parent: no directory may be created through it */
	ck_assert_int_eq(mkdir(outside, 0755), 0);
	ck_assert_int_eq(symlink(outside, link), 0);
	u = (struct jp_upload *)1;
	jp_error_clear(&err);
	r = jp_dest_stage(d, "link/sub/deeper/file", TOKEN, UINT64_MAX, &u, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_ptr_null(u);
	ck_assert_msg(err.code == JP_E_DATA, "%d %s", err.code, err.msg);
	ck_assert_msg(t_count_entries(outside) == 0,
	              "stage created %zu entries outside the destination (e.g. outside/sub)",
	              t_count_entries(outside));
	jp_dest_close(d);
	free(outside);
	free(link);
}
END_TEST

START_TEST(test_symlink_final_name_overwrite)
{
	struct jp_dest *d = open_dest();
	char *target = t_path(dir, "precious"), *link = dpath("f");
	struct jp_upload *u;
	struct jp_error err;
	int exists, replaced, r;
	char *back;

	t_write_str(dir, "precious", "do not touch\n");
	ck_assert_int_eq(symlink(target, link), 0);
	u = stage_data(d, "f", "new\n", 4);
	jp_error_clear(&err);
	r = jp_upload_commit(u, 1, &exists, &replaced, &err);
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	/* the link was replaced by a file; its target is untouched */
	back = t_read(dir, "precious", NULL);
	ck_assert_str_eq(back, "do not touch\n");
	free(back);
	{
		struct stat sb;
		ck_assert(lstat(link, &sb) == 0 && S_ISREG(sb.st_mode));
	}
	jp_upload_free(u);
	jp_dest_close(d);
	free(target);
	free(link);
}
END_TEST

/* ---------------------------------------------------------------- stat / remove / digest */

START_TEST(test_stat_remove)
{
	struct jp_dest *d = open_dest();
	struct jp_stat st;
	struct jp_error err;

	put(d, "s/file", "12345");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_stat(d, "s/file", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 1);
	ck_assert_int_eq(st.is_dir, 0);
	ck_assert_uint_eq(st.size, 5);
	ck_assert_int_gt(st.mtime, 0);
	ck_assert_int_eq(jp_dest_stat(d, "s", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 1);
	ck_assert_int_eq(st.is_dir, 1);
	ck_assert_int_eq(jp_dest_stat(d, "s/missing", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 0);
	ck_assert_int_eq(jp_dest_stat(d, "s/file/under-a-file", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 0);

	ck_assert_int_eq(jp_dest_remove(d, "s/file", &err), JP_OK);
	ck_assert(!t_exists(dir, "dest/s/file"));
	ck_assert_int_eq(jp_dest_remove(d, "s/file", &err), JP_OK); /* missing: fine */
	ck_assert_int_eq(jp_dest_stat(d, "s/file", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 0);
	ck_assert_int_eq(err.code, JP_E_NONE);
	jp_dest_close(d);
}
END_TEST

START_TEST(test_digest)
{
	static const unsigned char abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
	struct jp_dest *d = open_dest();
	unsigned char got[32], want[32];
	struct jp_error err;
	size_t len = 3 * 1024 * 1024 + 17;
	char *big;
	int r;

	put(d, "abc", "abc");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_digest(d, "abc", got, &err), JP_OK);
	ck_assert(memcmp(got, abc, 32) == 0);

	/* bigger than one read chunk, written by someone else */
	t_write_pattern(dir, "dest/big/file", len, 3);
	big = t_read(dir, "dest/big/file", NULL);
	sha256_of(big, len, want);
	free(big);
	ck_assert_int_eq(jp_dest_digest(d, "big/file", got, &err), JP_OK);
	ck_assert(memcmp(got, want, 32) == 0);

	/* and the empty file */
	t_write(dir, "dest/empty", "", 0);
	sha256_of("", 0, want);
	ck_assert_int_eq(jp_dest_digest(d, "empty", got, &err), JP_OK);
	ck_assert(memcmp(got, want, 32) == 0);

	r = jp_dest_digest(d, "missing", got, &err);
	ck_assert_int_ne(r, JP_OK);
	ck_assert_int_ne(err.code, JP_E_NONE);
	jp_dest_close(d);
}
END_TEST

/* ---------------------------------------------------------------- list */

struct seen {
	char keys[16][512];
	uint64_t sizes[16];
	int n, stop_after;
};

static int
list_cb(void *arg, const char *key, const struct jp_stat *st)
{
	struct seen *s = arg;

	ck_assert_int_lt(s->n, 16);
	ck_assert_int_eq(st->exists, 1);
	snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
	s->sizes[s->n++] = st->size;
	return s->stop_after > 0 && s->n >= s->stop_after;
}

static int
seen_has(const struct seen *s, const char *key, uint64_t size)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->keys[i], key) == 0 && s->sizes[i] == size)
			return 1;
	return 0;
}

START_TEST(test_list)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u;
	struct jp_error err;
	struct seen s;

	put(d, "top", "1");
	put(d, "a/b/c/deep", "22");
	put(d, "a/side", "333");
	u = stage_ok(d, "a/b/staged");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_write(u, "4444", 4, &err), JP_OK);

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(jp_dest_list(d, "", list_cb, &s, &err), JP_OK);
	ck_assert_int_eq(s.n, 4);
	ck_assert(seen_has(&s, "top", 1));
	ck_assert(seen_has(&s, "a/b/c/deep", 2));
	ck_assert(seen_has(&s, "a/side", 3));
	ck_assert(seen_has(&s, "a/b/" JP_TMP_PREFIX TOKEN ".staged", 4));

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(jp_dest_list(d, "a/b", list_cb, &s, &err), JP_OK);
	ck_assert_int_eq(s.n, 2);
	ck_assert(seen_has(&s, "a/b/c/deep", 2));

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(jp_dest_list(d, "nothing/here", list_cb, &s, &err), JP_OK);
	ck_assert_int_eq(s.n, 0);

	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	ck_assert_int_eq(jp_dest_list(d, "", list_cb, &s, &err), JP_OK);
	ck_assert_int_eq(s.n, 1);
	ck_assert_int_eq(err.code, JP_E_NONE);
	jp_upload_free(u);
	jp_dest_close(d);
}
END_TEST

/* ---------------------------------------------------------------- permissions */

/* Both stagings into a read-only directory must fail with 77 and leave nothing.  Returns 0 or
 * the number of the failed check, so it can run in a child. */
static int
stage_into_readonly(struct jp_dest *d)
{
	struct jp_upload *u = (struct jp_upload *)1;
	struct jp_error err;

	jp_error_clear(&err);
	if (jp_dest_stage(d, "ro/file", TOKEN, UINT64_MAX, &u, &err) == JP_OK || u != NULL)
		return 1;
	if (err.code != JP_E_NOPERM)
		return 2;
	jp_error_clear(&err);
	if (jp_dest_stage(d, "ro/sub/file", TOKEN, UINT64_MAX, &u, &err) == JP_OK)
		return 3;
	if (err.code != JP_E_NOPERM)
		return 4;
	return 0;
}

START_TEST(test_permission_denied)
{
	struct jp_dest *d;
	char *ro;
	int status;
	pid_t pid;

	d = open_dest();
	ro = dpath("ro");
	ck_assert_int_eq(mkdir(ro, 0755), 0);
	ck_assert_int_eq(chmod(ro, 0500), 0);
	/* Root ignores directory modes: the check runs in a child as an unprivileged user. */
	chmod(dir, 0755);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (geteuid() == 0) {
			struct passwd *pw = getpwnam("nobody");
			if (pw == NULL || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
				_exit(99);
		}
		_exit(stage_into_readonly(d));
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "check %d failed",
	              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	chmod(ro, 0700);
	ck_assert_uint_eq(t_count_entries(ro), 0);
	jp_dest_close(d);
	free(ro);
}
END_TEST

/* Someone with write access to a shared destination swaps a directory for a symlink to
 * elsewhere while files are staged into it (renameat2 RENAME_EXCHANGE, in a loop): nothing may
 * land outside, whatever the timing. */
START_TEST(test_symlink_swap_race)
{
	struct jp_dest *d = open_dest();
	char *outside = t_path(dir, "outside"), *sub = dpath("sub"), *lnk = dpath("sublink");
	pid_t pid;
	int i, status, ok = 0;

	ck_assert_int_eq(mkdir(outside, 0755), 0);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	ck_assert_int_eq(symlink(outside, lnk), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int64_t end = jp_now_ms() + 3000;
		while (jp_now_ms() < end)
			renameat2(AT_FDCWD, sub, AT_FDCWD, lnk, RENAME_EXCHANGE);
		_exit(0);
	}
	for (i = 0; i < 400; i++) {
		struct jp_upload *u = NULL;
		struct jp_error err;
		char key[64];
		int ex, rep;

		snprintf(key, sizeof(key), "sub/f%03d", i);
		jp_error_clear(&err);
		if (jp_dest_stage(d, key, TOKEN, UINT64_MAX, &u, &err) != JP_OK)
			continue; /* refused: the link was there at that moment */
		if (jp_upload_write(u, "x", 1, &err) == JP_OK &&
		    jp_upload_finish(u, 1, NULL, &err) == JP_OK &&
		    jp_upload_commit(u, 0, &ex, &rep, &err) == JP_OK && !ex)
			ok++;
		jp_upload_free(u);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ck_assert_msg(t_count_entries(outside) == 0, "%zu files landed outside the destination",
	              t_count_entries(outside));
	/* How many stagings won the race depends on scheduling (none, under load); that the same
	 * path works once the directory is a directory again is checked here. */
	{
		struct stat sb;
		struct jp_upload *u = NULL;
		struct jp_error err;
		int ex, rep;

		if (lstat(sub, &sb) == 0 && S_ISLNK(sb.st_mode))
			ck_assert_int_eq(renameat2(AT_FDCWD, sub, AT_FDCWD, lnk, RENAME_EXCHANGE), 0);
		jp_error_clear(&err);
		ck_assert_msg(jp_dest_stage(d, "sub/after", TOKEN, UINT64_MAX, &u, &err) == JP_OK, "%s", err.msg);
		ck_assert_int_eq(jp_upload_write(u, "x", 1, &err), JP_OK);
		ck_assert_int_eq(jp_upload_finish(u, 1, NULL, &err), JP_OK);
		ck_assert_int_eq(jp_upload_commit(u, 0, &ex, &rep, &err), JP_OK);
		jp_upload_free(u);
		ok++;
	}
	ck_assert_int_gt(ok, 0);
	jp_dest_close(d);
	free(outside);
	free(sub);
	free(lnk);
}
END_TEST

/* ---------------------------------------------------------------- injected failures
 *
 * This program's own definitions of these libc functions take precedence over libc's for the
 * calls libjobpub makes (tests/failshim.c does the same to the jobpub program).  They pass
 * every call on to libc, except one armed with inject(): the next call whose path (or, for a
 * descriptor, the name it is open on) contains `match` fails with `err`, once.  Two can be
 * armed at a time, for the failures that come in pairs. */
enum fn { F_RENAMEAT2 = 1, F_LINKAT, F_UNLINKAT, F_RENAMEAT, F_WRITE, F_FSYNC, F_CLOSE, F_FCHMOD,
          F_READ, F_OPENAT, F_MKDIRAT, F_MKDIR };
static struct armed {
	enum fn fn;
	int err;
	const char *match;
	int fired;
} inj[2];

static void
inject(int slot, enum fn fn, int err, const char *match)
{
	inj[slot].fn = fn;
	inj[slot].err = err;
	inj[slot].match = match;
	inj[slot].fired = 0;
}

static void
inject_none(void)
{
	memset(inj, 0, sizeof(inj));
}

/* 1 (errno set) when this call must fail. */
static int
fails(enum fn fn, const char *path, int fd)
{
	char link[64], name[PATH_MAX];
	int i;

	for (i = 0; i < 2; i++) {
		if (inj[i].fn != fn || inj[i].fired)
			continue;
		if (path == NULL) {
			ssize_t n;

			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			if ((n = readlink(link, name, sizeof(name) - 1)) < 0)
				continue;
			name[n] = '\0';
			path = name;
		}
		if (strstr(path, inj[i].match) == NULL)
			continue;
		inj[i].fired = 1;
		errno = inj[i].err;
		return 1;
	}
	return 0;
}

#define REAL(name) \
	static __typeof__(&name) real; \
	if (real == NULL) \
		*(void **)&real = dlsym(RTLD_NEXT, #name)

int
renameat2(int a, const char *from, int b, const char *to, unsigned int flags)
{
	REAL(renameat2);
	return fails(F_RENAMEAT2, from, -1) ? -1 : real(a, from, b, to, flags);
}

int
linkat(int a, const char *from, int b, const char *to, int flags)
{
	REAL(linkat);
	return fails(F_LINKAT, from, -1) ? -1 : real(a, from, b, to, flags);
}

int
unlinkat(int d, const char *path, int flags)
{
	REAL(unlinkat);
	return fails(F_UNLINKAT, path, -1) ? -1 : real(d, path, flags);
}

int
renameat(int a, const char *from, int b, const char *to)
{
	REAL(renameat);
	return fails(F_RENAMEAT, from, -1) ? -1 : real(a, from, b, to);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	REAL(write);
	return fails(F_WRITE, NULL, fd) ? -1 : real(fd, buf, len);
}

ssize_t
read(int fd, void *buf, size_t len)
{
	REAL(read);
	return fails(F_READ, NULL, fd) ? -1 : real(fd, buf, len);
}

int
fsync(int fd)
{
	REAL(fsync);
	return fails(F_FSYNC, NULL, fd) ? -1 : real(fd);
}

/* As Linux's close, a failing one still closes the descriptor. */
int
close(int fd)
{
	int f;

	REAL(close);
	f = fails(F_CLOSE, NULL, fd);
	if (real(fd) != 0)
		return -1;
	if (f)
		errno = inj[0].fn == F_CLOSE ? inj[0].err : inj[1].err;
	return f ? -1 : 0;
}

int
fchmod(int fd, mode_t mode)
{
	REAL(fchmod);
	return fails(F_FCHMOD, NULL, fd) ? -1 : real(fd, mode);
}

int
openat(int d, const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	REAL(openat);
	if (flags & O_CREAT) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return fails(F_OPENAT, path, -1) ? -1 : real(d, path, flags, mode);
}

int
mkdirat(int d, const char *path, mode_t mode)
{
	REAL(mkdirat);
	return fails(F_MKDIRAT, path, -1) ? -1 : real(d, path, mode);
}

int
mkdir(const char *path, mode_t mode)
{
	REAL(mkdir);
	return fails(F_MKDIR, path, -1) ? -1 : real(path, mode);
}

/* Filesystems without RENAME_NOREPLACE (renameat2 fails with EINVAL, ENOSYS or ENOTSUP):
 * commit falls back to link + unlink, which refuses an existing name just the same. */
START_TEST(test_commit_without_renameat2)
{
	static const int errs[] = {EINVAL, ENOSYS, ENOTSUP};
	struct jp_dest *d = open_dest();
	struct jp_upload *u;
	struct jp_error err;
	char key[32], *back, *fin;
	int exists, replaced, i;

	for (i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "fb/f%d", i);
		u = stage_data(d, key, "fallback", 8);
		inject(0, F_RENAMEAT2, errs[i], TOKEN);
		jp_error_clear(&err);
		ck_assert_msg(jp_upload_commit(u, 0, &exists, &replaced, &err) == JP_OK, "%s",
		              err.msg);
		ck_assert_int_eq(inj[0].fired, 1);
		ck_assert_int_eq(exists, 0);
		ck_assert_int_eq(jp_upload_committed(u), 1);
		jp_upload_free(u);
		snprintf(key, sizeof(key), "dest/fb/f%d", i);
		back = t_read(dir, key, NULL);
		ck_assert_str_eq(back, "fallback");
		free(back);
		fin = t_path(dir, key);
		ck_assert_msg(mode_of(fin) == 0644, "published mode %o", (unsigned)mode_of(fin));
		free(fin);
	}
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);

	/* an existing name: link() says EEXIST, nothing is replaced without overwrite */
	u = stage_data(d, "fb/f0", "second", 6);
	inject(0, F_RENAMEAT2, EINVAL, TOKEN);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	ck_assert_int_eq(exists, 1);
	ck_assert_int_eq(replaced, 0);
	ck_assert_int_eq(jp_upload_committed(u), 0);
	back = t_read(dir, "dest/fb/f0", NULL);
	ck_assert_str_eq(back, "fallback");
	free(back);
	/* and with overwrite it is replaced */
	inject(0, F_RENAMEAT2, EINVAL, TOKEN);
	ck_assert_int_eq(jp_upload_commit(u, 1, &exists, &replaced, &err), JP_OK);
	ck_assert_int_eq(replaced, 1);
	back = t_read(dir, "dest/fb/f0", NULL);
	ck_assert_str_eq(back, "second");
	free(back);
	jp_upload_free(u);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	inject_none();
	jp_dest_close(d);
}
END_TEST

/* The fallback's unlink of the temporary fails: the new final name is taken back, so the name
 * and the temporary are as before the commit (which fails), and abort removes the temporary. */
START_TEST(test_commit_fallback_unlink_fails)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u = stage_data(d, "fb/f", "data", 4);
	struct jp_error err;
	int exists, replaced;

	inject(0, F_RENAMEAT2, ENOSYS, TOKEN);
	inject(1, F_UNLINKAT, EIO, TOKEN);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	ck_assert_int_eq(inj[1].fired, 1);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_msg(strstr(err.msg, "posix: rename to ") != NULL &&
	                  strstr(err.msg, "/dest/fb/f: Input/output error") != NULL,
	              "%s", err.msg);
	ck_assert_int_eq(exists, 0);
	ck_assert_int_eq(jp_upload_committed(u), 0);
	ck_assert(!t_exists(dir, "dest/fb/f"));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 1);
	jp_upload_free(u);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	inject_none();
	jp_dest_close(d);
}
END_TEST

/* A rename that fails for another reason than an existing name, with and without overwrite,
 * and a mode change that fails after the rename: the first leave the final name as it was;
 * the last leaves the file committed (and says so), only its mode is wrong. */
START_TEST(test_commit_errors)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u;
	struct jp_error err;
	int exists, replaced;
	char *back;

	u = stage_data(d, "e/f", "new", 3);
	inject(0, F_RENAMEAT2, EIO, TOKEN);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_msg(strstr(err.msg, "/dest/e/f: Input/output error") != NULL, "%s", err.msg);
	ck_assert(!t_exists(dir, "dest/e/f"));
	jp_upload_free(u);

	put(d, "e/f", "old");
	u = stage_data(d, "e/f", "new", 3);
	inject(0, F_RENAMEAT, EXDEV, TOKEN);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_commit(u, 1, &exists, &replaced, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_int_eq(replaced, 0);
	back = t_read(dir, "dest/e/f", NULL);
	ck_assert_str_eq(back, "old");
	free(back);
	jp_upload_free(u);

	u = stage_data(d, "e/g", "new", 3);
	inject(0, F_FCHMOD, EPERM, "dest/e/g"); /* renamed by then */
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	ck_assert_int_eq(inj[0].fired, 1);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	ck_assert_msg(strstr(err.msg, "posix: chmod ") != NULL, "%s", err.msg);
	ck_assert_int_eq(jp_upload_committed(u), 1);
	ck_assert_msg(mode_of(back = dpath("e/g")) == 0600, "mode %o", (unsigned)mode_of(back));
	free(back);
	jp_upload_free(u);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	inject_none();
	jp_dest_close(d);
}
END_TEST

/* Writes interrupted by a signal are retried; a failed write, fsync or close fails the upload,
 * and so do calls out of order. */
START_TEST(test_write_finish_errors)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u;
	struct jp_error err;
	unsigned char sha[32];
	int exists, replaced;
	char *back;

	sha256_of("abcdef", 6, sha);
	u = stage_ok(d, "w/f");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_SOFTWARE);
	ck_assert_msg(strstr(err.msg, ": commit before finish") != NULL, "%s", err.msg);
	inject(0, F_WRITE, EINTR, TOKEN);
	ck_assert_int_eq(jp_upload_write(u, "abcdef", 6, &err), JP_OK);
	ck_assert_int_eq(inj[0].fired, 1);
	ck_assert_int_eq(jp_upload_finish(u, 6, sha, &err), JP_OK);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_finish(u, 6, sha, &err), JP_FAILED);
	ck_assert_msg(strstr(err.msg, ": finished twice") != NULL, "%s", err.msg);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_OK);
	jp_upload_free(u);
	back = t_read(dir, "dest/w/f", NULL);
	ck_assert_str_eq(back, "abcdef");
	free(back);

	u = stage_ok(d, "w/g");
	inject(0, F_WRITE, ENOSPC, TOKEN);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_write(u, "abcdef", 6, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "posix: write ") != NULL &&
	                  strstr(err.msg, ": No space left on device") != NULL,
	              "%s", err.msg);
	jp_upload_free(u);

	u = stage_ok(d, "w/h");
	ck_assert_int_eq(jp_upload_write(u, "abcdef", 6, &err), JP_OK);
	inject(0, F_FSYNC, EIO, TOKEN);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_finish(u, 6, sha, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_msg(strstr(err.msg, ": Input/output error") != NULL, "%s", err.msg);
	ck_assert_int_eq(jp_upload_commit(u, 0, &exists, &replaced, &err), JP_FAILED);
	jp_upload_free(u);

	u = stage_ok(d, "w/i");
	ck_assert_int_eq(jp_upload_write(u, "abcdef", 6, &err), JP_OK);
	inject(0, F_CLOSE, EIO, TOKEN);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_finish(u, 6, sha, &err), JP_FAILED);
	ck_assert_int_eq(inj[0].fired, 1);
	ck_assert_msg(strstr(err.msg, "posix: close ") != NULL, "%s", err.msg);
	jp_upload_free(u);
	ck_assert(!t_exists(dir, "dest/w/g") && !t_exists(dir, "dest/w/h") &&
	          !t_exists(dir, "dest/w/i"));
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	inject_none();
	jp_dest_close(d);
}
END_TEST

/* The temporary cannot be removed: abort says so (jobpub gc finds it later). */
START_TEST(test_abort_unlink_fails)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u = stage_ok(d, "a/f");
	struct jp_error err;

	inject(0, F_UNLINKAT, EACCES, TOKEN);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_upload_abort(u, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	ck_assert_msg(strstr(err.msg, "posix: cannot remove ") != NULL, "%s", err.msg);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 1);
	jp_upload_free(u); /* aborted already: nothing more is tried */
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 1);
	inject_none();
	jp_dest_close(d);
}
END_TEST

/* Staging where a directory cannot be made or opened, or the temporary cannot be created:
 * each is an error naming the path, and leaves no temporary. */
START_TEST(test_stage_errors)
{
	struct jp_dest *d = open_dest();
	struct jp_upload *u = (struct jp_upload *)1;
	struct jp_error err;
	char *root = dpath(""), *moved = t_path(dir, "moved");

	inject(0, F_MKDIRAT, EDQUOT, "newdir");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_stage(d, "newdir/f", TOKEN, 1, &u, &err), JP_FAILED);
	ck_assert_ptr_null(u);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "posix: cannot create directory ") != NULL &&
	                  strstr(err.msg, "/dest/newdir: Disk quota exceeded") != NULL,
	              "%s", err.msg);

	ck_assert_int_eq(mkdir(root = (free(root), dpath("closed")), 0755), 0);
	inject(0, F_OPENAT, EACCES, "closed");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_stage(d, "closed/f", TOKEN, 1, &u, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	ck_assert_msg(strstr(err.msg, "/dest/closed: Permission denied") != NULL, "%s", err.msg);

	inject(0, F_OPENAT, EROFS, TOKEN);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_stage(d, "closed/f", TOKEN, 1, &u, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "posix: cannot create ") != NULL &&
	                  strstr(err.msg, "Read-only file system") != NULL,
	              "%s", err.msg);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	inject_none();

	/* the destination's own directory is gone, a file in its place */
	free(root);
	root = t_path(dir, "dest");
	ck_assert_int_eq(rename(root, moved), 0);
	t_write_str(dir, "dest", "not a directory\n");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_stage(d, "f", TOKEN, 1, &u, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, ": Not a directory") != NULL, "%s", err.msg);
	jp_dest_close(d);
	free(root);
	free(moved);
}
END_TEST

/* Destinations that cannot be made, or whose path cannot be resolved; readers of a destination
 * that was never made find it empty. */
START_TEST(test_open_errors)
{
	struct jp_dest_opts ro = {0};
	struct jp_dest *d = (struct jp_dest *)1;
	struct jp_error err;
	struct jp_stat st;
	struct seen s;
	char *url;

	ck_assert(asprintf(&url, "%s/made/here", dir) > 0);
	inject(0, F_MKDIR, EROFS, "made");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_open(url, &ro, &d, &err), JP_FAILED);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "posix: cannot create directory ") != NULL &&
	                  strstr(err.msg, "Read-only file system") != NULL,
	              "%s", err.msg);
	ck_assert(!t_exists(dir, "made"));
	inject_none();

	ro.readonly = 1;
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_open(url, &ro, &d, &err), JP_OK);
	ck_assert(!t_exists(dir, "made"));
	ck_assert_int_eq(jp_dest_stat(d, "a/b", &st, &err), JP_OK);
	ck_assert_int_eq(st.exists, 0);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(jp_dest_list(d, "", list_cb, &s, &err), JP_OK);
	ck_assert_int_eq(s.n, 0);
	ck_assert_int_eq(jp_dest_remove(d, "a/b", &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_NONE);
	jp_dest_close(d);
	free(url);

	/* a reader whose path goes through a file: an error, not "empty" */
	t_write_str(dir, "file", "x\n");
	ck_assert(asprintf(&url, "file://%s/file/sub", dir) > 0);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_open(url, &ro, &d, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "/file/sub: Not a directory") != NULL, "%s", err.msg);
	free(url);
}
END_TEST

/* Reading, stat, remove and list on what the filesystem refuses: a directory under a file's
 * name, a symbolic link, a name too long, a loop of links, a failed read. */
START_TEST(test_object_errors)
{
	struct jp_dest *d = open_dest();
	unsigned char got[32];
	struct jp_error err;
	struct jp_stat st;
	struct seen s;
	char *p, longname[300];

	put(d, "dir/f", "content");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_digest(d, "dir", got, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, "posix: read ") != NULL &&
	                  strstr(err.msg, "/dest/dir: Is a directory") != NULL,
	              "%s", err.msg);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_remove(d, "dir", &err), JP_FAILED);
	ck_assert_msg(strstr(err.msg, "posix: cannot remove ") != NULL, "%s", err.msg);
	ck_assert(t_exists(dir, "dest/dir/f"));

	ck_assert_int_eq(symlink("f", p = dpath("dir/link")), 0);
	free(p);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_digest(d, "dir/link", got, &err), JP_FAILED);
	ck_assert_msg(strstr(err.msg, "/dest/dir/link (a symbolic link): Too many levels of "
	                              "symbolic links") != NULL,
	              "%s", err.msg);

	inject(0, F_READ, EIO, "dest/dir/f");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_digest(d, "dir/f", got, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_msg(strstr(err.msg, "/dest/dir/f: Input/output error") != NULL, "%s", err.msg);
	inject(0, F_READ, EINTR, "dest/dir/f");
	ck_assert_int_eq(jp_dest_digest(d, "dir/f", got, &err), JP_OK);
	ck_assert_int_eq(inj[0].fired, 1);
	inject_none();

	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_stat(d, longname, &st, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_msg(strstr(err.msg, ": File name too long") != NULL, "%s", err.msg);

	ck_assert_int_eq(symlink("loop", p = dpath("loop")), 0);
	free(p);
	memset(&s, 0, sizeof(s));
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_list(d, "loop/sub", list_cb, &s, &err), JP_FAILED);
	ck_assert_msg(strstr(err.msg, "posix: cannot list ") != NULL &&
	                  strstr(err.msg, "/dest/loop/sub: Too many levels of symbolic links") != NULL,
	              "%s", err.msg);
	ck_assert_int_eq(s.n, 0);
	jp_dest_close(d);
}
END_TEST

/* A directory that received a commit and is gone by the sync: the sync fails, naming it. */
START_TEST(test_sync_directory_gone)
{
	struct jp_dest *d = open_dest();
	struct jp_error err;
	char *f = dpath("gone/f"), *g = dpath("gone");

	put(d, "gone/f", "x");
	put(d, "kept", "y");
	ck_assert_int_eq(unlink(f), 0);
	ck_assert_int_eq(rmdir(g), 0);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_sync(d, &err), JP_FAILED);
	ck_assert_msg(strstr(err.msg, "posix: fsync ") != NULL &&
	                  strstr(err.msg, "/dest/gone: No such file or directory") != NULL,
	              "%s", err.msg);
	/* what was to sync is forgotten either way: the next sync has nothing left to fail on */
	jp_error_clear(&err);
	ck_assert_int_eq(jp_dest_sync(d, &err), JP_OK);
	jp_dest_close(d);
	free(f);
	free(g);
}
END_TEST

/* One upload's whole life (open, stage into new directories, write, finish, commit, stat,
 * read back, list, sync, remove, close), with each allocation of jobpub's own
 * (tests/failalloc.h) failed in turn: every failure is "out of memory" (70), and no temporary
 * is ever left behind. */
static int
count_cb(void *arg, const char *key, const struct jp_stat *st)
{
	(void)key;
	(void)st;
	++*(int *)arg;
	return 0;
}

static int
upload_life(const char *url, const char *key, struct jp_error *err)
{
	struct jp_dest_opts opts = {0};
	struct jp_dest *d = NULL;
	struct jp_upload *u = NULL;
	unsigned char sha[32];
	struct jp_stat st;
	int r, exists, replaced, listed = 0;

	if ((r = jp_dest_open(url, &opts, &d, err)) != JP_OK)
		return r;
	if ((r = jp_dest_stage(d, key, TOKEN, 5, &u, err)) == JP_OK &&
	    (r = jp_upload_write(u, "hello", 5, err)) == JP_OK &&
	    (r = jp_upload_finish(u, 5, NULL, err)) == JP_OK &&
	    (r = jp_upload_commit(u, 0, &exists, &replaced, err)) == JP_OK &&
	    (r = jp_dest_stat(d, key, &st, err)) == JP_OK &&
	    (r = jp_dest_digest(d, key, sha, err)) == JP_OK &&
	    (r = jp_dest_list(d, key, count_cb, &listed, err)) == JP_OK &&
	    (r = jp_dest_sync(d, err)) == JP_OK)
		r = jp_dest_remove(d, key, err);
	jp_upload_free(u);
	jp_dest_close(d);
	return r;
}

START_TEST(test_allocation_failures)
{
	struct jp_error err;
	unsigned long n;
	char *url, key[64];
	int r;

	ck_assert(asprintf(&url, "file://%s/dest/x", dir) > 0);
	for (n = 1;; n++) {
		snprintf(key, sizeof(key), "n%lu/sub/f", n);
		jp_error_clear(&err);
		t_fail_alloc(n);
		r = upload_life(url, key, &err);
		t_fail_alloc(0);
		if (!t_fail_alloc_fired())
			break;
		ck_assert_msg(r != JP_OK, "allocation %lu failed, all went well", n);
		ck_assert_msg(err.code == JP_E_SOFTWARE && strstr(err.msg, "out of memory") != NULL,
		              "allocation %lu: %d %s", n, err.code, err.msg);
		ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	}
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_uint_ge(n, 10);
	ck_assert_uint_eq(t_count_prefixed(dir, JP_TMP_PREFIX), 0);
	free(url);
}
END_TEST

static Suite *
backend_posix_suite(void)
{
	Suite *s = suite_create("backend-posix");
	TCase *tc;

	tc = tcase_create("open");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_file_url_creates_prefix);
	tcase_add_test(tc, test_open_plain_path_and_localhost);
	tcase_add_test(tc, test_open_file_in_the_way);
	tcase_add_test(tc, test_open_remote_host_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("stage");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_stage_temp_name_and_mode);
	tcase_add_test(tc, test_commit_mode_follows_umask);
	tcase_add_test(tc, test_no_descriptor_held_per_upload);
	tcase_add_test(tc, test_commit_refuses_replaced_temp);
	tcase_add_test(tc, test_finish_wrong_size);
	tcase_add_test(tc, test_commit_existing_no_overwrite);
	tcase_add_test(tc, test_commit_overwrite);
	tcase_add_test(tc, test_commit_overwrite_directory_refused);
	tcase_add_test(tc, test_abort_and_free_remove_temp);
	tcase_add_test(tc, test_two_uploads_same_key);
	tcase_add_test(tc, test_long_base_name);
	tcase_add_test(tc, test_bad_keys_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("symlinks");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_symlink_dir_outside);
	tcase_add_test(tc, test_symlink_dir_outside_deeper);
	tcase_add_test(tc, test_symlink_swap_race);
	tcase_add_test(tc, test_symlink_final_name_overwrite);
	suite_add_tcase(s, tc);

	tc = tcase_create("objects");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_stat_remove);
	tcase_add_test(tc, test_digest);
	tcase_add_test(tc, test_list);
	suite_add_tcase(s, tc);

	tc = tcase_create("injected");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_commit_without_renameat2);
	tcase_add_test(tc, test_commit_fallback_unlink_fails);
	tcase_add_test(tc, test_commit_errors);
	tcase_add_test(tc, test_write_finish_errors);
	tcase_add_test(tc, test_abort_unlink_fails);
	tcase_add_test(tc, test_stage_errors);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_object_errors);
	tcase_add_test(tc, test_sync_directory_gone);
	tcase_add_test(tc, test_allocation_failures);
	suite_add_tcase(s, tc);

	tc = tcase_create("permissions");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_permission_denied);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	return t_run(backend_posix_suite());
}
