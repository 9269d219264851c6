/*
 * test_tarstream.c - src/core/tarstream.c: deterministic tar streams of directories, read back with
 * libarchive, bsdtar and GNU tar.
 */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <locale.h>
#include <stdarg.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <archive.h>
#include <archive_entry.h>

#include "failalloc.h"
#include "log.h"
#include "hashpipe.h"
#include "tarstream.h"
#include "util.h"
#include "testlib.h"

static char *dir;

static void
setup(void)
{
	dir = t_tempdir();
	chmod(dir, 0755);
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
}

static void
teardown(void)
{
	t_rmtree(dir);
	free(dir);
}

/* Sink writing to a FILE. */
static int
to_file(void *arg, const void *buf, size_t len)
{
	return fwrite(buf, 1, len, arg) == len ? 0 : 1;
}

/* Archives dir/src into dir/out; returns the result. */
static struct jp_archive_result
archive_to(const char *src, const char *out, enum jp_archive_format fmt)
{
	struct jp_archive_result res;
	struct jp_error err;
	char *s = t_path(dir, src), *o = t_path(dir, out);
	FILE *fp = fopen(o, "wb");

	jp_error_clear(&err);
	ck_assert_ptr_nonnull(fp);
	ck_assert_msg(jp_archive_write(s, src, fmt, to_file, fp, &res, &err) == JP_OK, "%s", err.msg);
	fclose(fp);
	free(s);
	free(o);
	return res;
}

/* A tree with the cases the issue names. */
static void
make_tree(void)
{
	char *p;

	t_write_str(dir, "Out/b.dat", "bbbb\n");
	t_write_str(dir, "Out/a.dat", "aaaa\n");
	t_write_str(dir, "Out/sub/z.dat", "zzzz\n");
	t_write_str(dir, "Out/with space.dat", "space\n");
	t_write_str(dir, "Out/\xc3\xa9t\xc3\xa9 \xe2\x82\x82.dat", "utf8\n");
	p = t_path(dir, "Out/empty");
	mkdir(p, 0755);
	free(p);
	p = t_path(dir, "Out/link-in");
	ck_assert_int_eq(symlink("a.dat", p), 0);
	free(p);
	p = t_path(dir, "Out/link-out");
	ck_assert_int_eq(symlink("/etc/passwd", p), 0);
	free(p);
	p = t_path(dir, "Out/fifo");
	ck_assert_int_eq(mkfifo(p, 0644), 0);
	free(p);
}

/* Entry names, types and contents of an archive file, as one string. */
static char *
listing(const char *rel)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char *path = t_path(dir, rel), *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);

	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	ck_assert_int_eq(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		char data[64] = "";
		ssize_t n;

		ck_assert_int_eq(archive_entry_uid(e), 0);
		ck_assert_int_eq(archive_entry_gid(e), 0);
		fprintf(fp, "%s|%o", archive_entry_pathname(e), archive_entry_filetype(e) >> 12);
		if (archive_entry_symlink(e))
			fprintf(fp, "->%s", archive_entry_symlink(e));
		n = archive_read_data(a, data, sizeof(data) - 1);
		if (n > 0)
			fprintf(fp, "=%.*s", (int)n - 1, data);
		fputc('\n', fp);
	}
	archive_read_free(a);
	fclose(fp);
	free(path);
	return out;
}

START_TEST(test_tree)
{
	/* Sorted bytewise depth first, symlinks as symlinks, the FIFO skipped. */
	static const char expect[] =
		"Out/|4\n"
		"Out/a.dat|10=aaaa\n"
		"Out/b.dat|10=bbbb\n"
		"Out/empty/|4\n"
		"Out/link-in|12->a.dat\n"
		"Out/link-out|12->/etc/passwd\n"
		"Out/sub/|4\n"
		"Out/sub/z.dat|10=zzzz\n"
		"Out/with space.dat|10=space\n"
		"Out/\xc3\xa9t\xc3\xa9 \xe2\x82\x82.dat|10=utf8\n";
	static const enum jp_archive_format fmts[] = {JP_ARCHIVE_TAR, JP_ARCHIVE_TAR_GZ,
	                                              JP_ARCHIVE_TAR_ZST};
	struct jp_archive_result res;
	char *got;

	make_tree();
	res = archive_to("Out", "out.tar", fmts[_i]);
	ck_assert_uint_eq(res.entries, 10);
	got = listing("out.tar");
	ck_assert_str_eq(got, expect);
	free(got);
}
END_TEST

START_TEST(test_deterministic)
{
	static const enum jp_archive_format fmts[] = {JP_ARCHIVE_TAR, JP_ARCHIVE_TAR_GZ,
	                                              JP_ARCHIVE_TAR_ZST};
	struct jp_archive_result r1, r2;
	size_t l1 = 0, l2 = 0;
	char *a, *b;

	make_tree();
	r1 = archive_to("Out", "1", fmts[_i]);
	sleep(1); /* a timestamp of writing would now differ */
	r2 = archive_to("Out", "2", fmts[_i]);
	a = t_read(dir, "1", &l1);
	b = t_read(dir, "2", &l2);
	ck_assert_uint_eq(l1, l2);
	ck_assert_msg(memcmp(a, b, l1) == 0, "archives differ");
	ck_assert_uint_eq(r1.size, l1);
	ck_assert_msg(memcmp(r1.sha256, r2.sha256, 32) == 0, "hashes differ");
	free(a);
	free(b);
	/* Hashing on a second thread gives the same digest. */
	{
		struct jp_hashpipe *hp = jp_hashpipe_new();
		struct jp_archive_result r3;
		struct jp_error e;
		char *src = t_path(dir, "Out");
		int srcfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		ck_assert_int_ge(srcfd, 0);
		jp_error_clear(&e);
		ck_assert_int_eq(jp_archive_write_piped(srcfd, "Out", fmts[_i], NULL, NULL, hp, &r3, &e), JP_OK);
		ck_assert_msg(memcmp(r1.sha256, r3.sha256, 32) == 0, "piped hash differs");
		ck_assert_uint_eq(r3.size, r1.size);
		jp_hashpipe_free(hp);
		close(srcfd);
		free(src);
	}
	/* And a change in one file changes the archive. */
	t_write_str(dir, "Out/a.dat", "AAAA\n");
	r2 = archive_to("Out", "3", fmts[_i]);
	ck_assert_msg(memcmp(r1.sha256, r2.sha256, 32) != 0, "change not seen");
}
END_TEST

/* Runs cmd through the shell and returns its exit status. */
static int
sh(const char *fmt, const char *arg)
	__attribute__((format(printf, 1, 0)));
static int
sh(const char *fmt, const char *arg)
{
	char *cmd;
	int r;

	if (asprintf(&cmd, fmt, arg, arg) < 0)
		ck_abort();
	r = system(cmd);
	free(cmd);
	return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

START_TEST(test_other_readers)
{
	char *p;

	make_tree();
	archive_to("Out", "out.tar.gz", JP_ARCHIVE_TAR_GZ);
	p = t_path(dir, "out.tar.gz");
	/* GNU tar and bsdtar list every entry; the count matches ours. */
	ck_assert_int_eq(sh("test \"$(tar -tzf '%s' 2>&1 | wc -l)\" -eq 10 && tar -tzf '%s' | grep -q '^Out/sub/z.dat$'", p), 0);
	ck_assert_int_eq(sh("test \"$(bsdtar -tf '%s' | wc -l)\" -eq 10 && bsdtar -tf '%s' | grep -q 'with space'", p), 0);
	free(p);
}
END_TEST

START_TEST(test_empty_dir)
{
	struct jp_archive_result res;
	char *p = t_path(dir, "Empty"), *got;

	mkdir(p, 0755);
	res = archive_to("Empty", "e.tar", JP_ARCHIVE_TAR);
	ck_assert_uint_eq(res.entries, 1);
	got = listing("e.tar");
	ck_assert_str_eq(got, "Empty/|4\n");
	free(got);
	free(p);
}
END_TEST

/* An unreadable file fails naming it.  Root reads everything, so as root the archive is made
 * by a child that drops to an unprivileged user. */
START_TEST(test_unreadable)
{
	struct jp_archive_result res;
	struct jp_error err;
	char *src, *f;
	int status;
	pid_t pid;

	t_write_str(dir, "Out/ok.dat", "ok\n");
	t_write_str(dir, "Out/secret.dat", "no\n");
	f = t_path(dir, "Out/secret.dat");
	chmod(f, 0);
	src = t_path(dir, "Out");
	chmod(src, 0755);
	pid = fork();
	if (pid == 0) {
		if (geteuid() == 0) {
			struct passwd *pw = getpwnam("nobody");
			if (pw == NULL || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
				_exit(3);
		}
		jp_error_clear(&err);
		if (jp_archive_write(src, "Out", JP_ARCHIVE_TAR, NULL, NULL, &res, &err) != JP_FAILED)
			_exit(1);
		if (err.code != JP_E_IOERR || strstr(err.msg, "Out/secret.dat: cannot read") == NULL)
			_exit(2);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	free(f);
	free(src);
}
END_TEST

/* An open() failure says why: not every failure is "not a directory". */
START_TEST(test_open_errors)
{
	struct jp_archive_result res;
	char *missing = t_path(dir, "missing"), *file = t_path(dir, "file");
	struct jp_error err;
	struct rlimit rl;
	pid_t pid;
	int status;

	jp_error_clear(&err);
	t_write(dir, "file", "x", 1);
	ck_assert_int_eq(jp_archive_write(missing, "Missing", JP_ARCHIVE_TAR, NULL, NULL, &res, &err),
	                 JP_FAILED);
	ck_assert_msg(strstr(err.msg, strerror(ENOENT)) != NULL, "%s", err.msg);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_archive_write(file, "File", JP_ARCHIVE_TAR, NULL, NULL, &res, &err),
	                 JP_FAILED);
	ck_assert_msg(strstr(err.msg, "File: not a directory") != NULL, "%s", err.msg);
	pid = fork();
	if (pid == 0) {
		jp_error_clear(&err);
		rl.rlim_cur = rl.rlim_max = 3; /* stdin, stdout, stderr: no descriptor left */
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			_exit(3);
		if (jp_archive_write(dir, "Dir", JP_ARCHIVE_TAR, NULL, NULL, &res, &err) != JP_FAILED)
			_exit(1);
		_exit(strstr(err.msg, strerror(EMFILE)) != NULL ? 0 : 2);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	free(missing);
	free(file);
}
END_TEST

/* Sink that stops at its second call, like a destination that failed. */
static int
stop_second(void *arg, const void *buf, size_t len)
{
	(void)buf;
	(void)len;
	return ++*(int *)arg >= 2;
}

START_TEST(test_big_sparse)
{
	/* A file over 4 GiB (a hole: no disk used) needs pax's size record; zstd keeps it small. */
	const off_t big = (off_t)4 * 1024 * 1024 * 1024 + 12345;
	struct jp_archive_result res;
	struct jp_error err;
	char *f, *src = t_path(dir, "Big"), *out;
	struct archive *a;
	struct archive_entry *e;
	int fd;
	FILE *fp;

	t_write_str(dir, "Big/small", "x\n");
	f = t_path(dir, "Big/huge.bin");
	fd = open(f, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_eq(ftruncate(fd, big), 0);
	close(fd);
	jp_error_clear(&err);
	out = t_path(dir, "big.tar.zst");
	fp = fopen(out, "wb");
	ck_assert_int_eq(jp_archive_write(src, "Big", JP_ARCHIVE_TAR_ZST, to_file, fp, &res, &err), JP_OK);
	fclose(fp);
	ck_assert_uint_eq(res.entries, 3);
	a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	ck_assert_int_eq(archive_read_open_filename(a, out, 65536), ARCHIVE_OK);
	ck_assert_int_eq(archive_read_next_header(a, &e), ARCHIVE_OK); /* Big */
	ck_assert_int_eq(archive_read_next_header(a, &e), ARCHIVE_OK); /* Big/huge.bin */
	ck_assert_str_eq(archive_entry_pathname(e), "Big/huge.bin");
	ck_assert_int_eq(archive_entry_size(e), big);
	archive_read_free(a);
	free(f);
	free(src);
	free(out);
}
END_TEST

START_TEST(test_sink_stop)
{
	struct jp_archive_result res;
	struct jp_error err;
	char *src;
	int calls = 0;

	/* Enough data for several blocks, so the sink is called more than once. */
	make_tree();
	{
		char *big = calloc(1, 512 * 1024);
		t_write(dir, "Out/big.bin", big, 512 * 1024);
		free(big);
	}
	src = t_path(dir, "Out");
	jp_error_clear(&err);
	jp_error_set(&err, JP_E_TEMPFAIL, "interrupted by SIGTERM");
	ck_assert_int_eq(jp_archive_write(src, "Out", JP_ARCHIVE_TAR, stop_second, &calls, &res, &err),
	                 JP_FAILED);
	ck_assert_int_eq(calls, 2);
	/* The sink's reason, set first, is what stays. */
	ck_assert_int_eq(err.code, JP_E_TEMPFAIL);
	ck_assert_str_eq(err.msg, "interrupted by SIGTERM");
	free(src);
}
END_TEST

/* Sink of the swap test: writes to a FILE and, at its first call (the archive is then inside
 * Out/a/big.bin), swaps the directory Out/a for a symlink to a directory outside that holds
 * the same names. */
struct swapper {
	FILE *fp;
	int calls;
};

static int
swap_at_first(void *arg, const void *buf, size_t len)
{
	struct swapper *sw = arg;

	if (sw->calls++ == 0) {
		char *a = t_path(dir, "Out/a"), *old = t_path(dir, "Out/a.old");
		char *ext = t_path(dir, "ext");

		ck_assert_int_eq(rename(a, old), 0);
		ck_assert_int_eq(symlink(ext, a), 0);
		free(a);
		free(old);
		free(ext);
	}
	return fwrite(buf, 1, len, sw->fp) == len ? 0 : 1;
}

/* A directory swapped for a symlink while it is being archived (issue 13, defect 8): the walk
 * goes on in the directory it opened, by descriptor, and never reads the outside files that
 * the same path now leads to. */
START_TEST(test_directory_swapped_during_walk)
{
	struct swapper sw = {NULL, 0};
	struct jp_archive_result res;
	struct jp_error err;
	char *src = t_path(dir, "Out"), *out = t_path(dir, "out.tar"), *back;
	size_t len = 0;

	{
		char *big = calloc(1, 512 * 1024);
		t_write(dir, "Out/a/big.bin", big, 512 * 1024);
		free(big);
	}
	t_write_str(dir, "Out/a/z.txt", "inside\n");
	t_write_str(dir, "ext/big.bin", "OUTSIDE-OUTSIDE\n");
	t_write_str(dir, "ext/z.txt", "OUTSIDE\n");
	sw.fp = fopen(out, "wb");
	ck_assert_ptr_nonnull(sw.fp);
	jp_error_clear(&err);
	ck_assert_msg(jp_archive_write(src, "Out", JP_ARCHIVE_TAR, swap_at_first, &sw, &res, &err) ==
	                  JP_OK,
	              "%s", err.msg);
	fclose(sw.fp);
	ck_assert_int_ge(sw.calls, 2);
	back = t_read(dir, "out.tar", &len);
	ck_assert_msg(memmem(back, len, "OUTSIDE", 7) == NULL, "outside bytes in the archive");
	ck_assert_msg(memmem(back, len, "inside\n", 7) != NULL, "Out/a/z.txt not archived");
	free(back);
	free(src);
	free(out);
}
END_TEST

/* Sink that stops at its first call: the destination failed as soon as it was written to. */
static int
stop_first(void *arg, const void *buf, size_t len)
{
	(void)buf;
	(void)len;
	++*(int *)arg;
	return 1;
}

/* Out/ holds a.bin of 64,000 bytes and then `second`: the first 64 KiB block is full exactly
 * when second's header is written (512 for Out/, 512 + 64,000 for a.bin, 512 for second), so
 * the destination's failure is met writing that header, of whatever type the entry is. */
START_TEST(test_stop_at_header)
{
	static const char *const kinds[] = {"file", "symlink", "directory"};
	struct jp_archive_result res;
	struct jp_error err;
	char *src = t_path(dir, "Out"), *second = t_path(dir, "Out/second"), *a;
	int calls = 0;

	a = calloc(1, 64000);
	t_write(dir, "Out/a.bin", a, 64000);
	free(a);
	if (_i == 0)
		t_write_str(dir, "Out/second", "x");
	else if (_i == 1)
		ck_assert_int_eq(symlink("a.bin", second), 0);
	else
		ck_assert_int_eq(mkdir(second, 0755), 0);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_archive_write(src, "Out", JP_ARCHIVE_TAR, stop_first, &calls, &res, &err),
	                 JP_FAILED);
	ck_assert_int_eq(calls, 1);
	ck_assert_int_eq(err.code, JP_E_SOFTWARE);
	ck_assert_msg(strncmp(err.msg, "archive: Out/second: ", 21) == 0, "%s: %s", kinds[_i],
	              err.msg);
	ck_assert_uint_eq(res.size, 0);
	free(src);
	free(second);
}
END_TEST

/* A small tree fits in the last block: the destination fails at the close, and the archive
 * fails saying it was stopped (no other reason was given). */
START_TEST(test_stop_at_close)
{
	struct jp_archive_result res;
	struct jp_error err;
	char *src = t_path(dir, "Out");
	int calls = 0;

	t_write_str(dir, "Out/a", "a");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_archive_write(src, "Out", JP_ARCHIVE_TAR, stop_first, &calls, &res, &err),
	                 JP_FAILED);
	ck_assert_int_eq(calls, 1);
	ck_assert_int_eq(err.code, JP_E_SOFTWARE);
	ck_assert_str_eq(err.msg, "archive: Out: stopped");
	free(src);
}
END_TEST

/* Misuse of the piped entry: a descriptor that is not a directory, a format that is none. */
START_TEST(test_piped_misuse)
{
	struct jp_archive_result res;
	struct jp_error err;
	char *f = t_path(dir, "file"), *src = t_path(dir, "Out");
	int fd;

	t_write_str(dir, "file", "x");
	t_write_str(dir, "Out/a", "a");
	ck_assert_int_ge(fd = open(f, O_RDONLY), 0);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_archive_write_piped(fd, "dir/file", JP_ARCHIVE_TAR, NULL, NULL, NULL,
	                                        &res, &err),
	                 JP_FAILED);
	ck_assert_str_eq(err.msg, "archive: dir/file: not a directory");
	close(fd);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_archive_write(src, "Out", JP_ARCHIVE_NONE, NULL, NULL, &res, &err),
	                 JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_SOFTWARE);
	ck_assert_msg(strncmp(err.msg, "archive: Out: ", 14) == 0, "%s", err.msg);
	ck_assert_int_eq(jp_archive_format_parse("tar.bz2"), JP_ARCHIVE_NONE);
	ck_assert_int_eq(jp_archive_format_parse("tar.zst"), JP_ARCHIVE_TAR_ZST);
	free(f);
	free(src);
}
END_TEST

/* Every allocation of jobpub's own (tests/failalloc.h) while a tree is archived failed in
 * turn: each fails the archive with "out of memory" (70), never as an I/O error; then the tree
 * is archived whole. */
START_TEST(test_allocation_failures)
{
	struct jp_archive_result res;
	struct jp_error err;
	char *src = t_path(dir, "Out"), *out = t_path(dir, "out.tar");
	unsigned long n;
	FILE *fp;
	int r;

	make_tree();
	for (n = 1;; n++) {
		ck_assert_ptr_nonnull(fp = fopen(out, "wb"));
		jp_error_clear(&err);
		t_fail_alloc(n);
		r = jp_archive_write(src, "Out", JP_ARCHIVE_TAR_GZ, to_file, fp, &res, &err);
		t_fail_alloc(0);
		fclose(fp);
		if (!t_fail_alloc_fired())
			break;
		ck_assert_msg(r == JP_FAILED, "allocation %lu failed, archive made", n);
		ck_assert_msg(err.code == JP_E_SOFTWARE && (strstr(err.msg, "out of memory") != NULL ||
		                                            strstr(err.msg, "Cannot allocate") != NULL),
		              "allocation %lu: %d %s", n, err.code, err.msg);
	}
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_uint_ge(n, 10);
	ck_assert_uint_eq(res.entries, 10);
	free(src);
	free(out);
}
END_TEST

/* ---- races and errors at the exact moment ----
 *
 * This program's own openat, fstatat, readlinkat, read, readdir and dup take precedence over
 * libc's for the calls libjobpub makes.  Armed with at_call(), the next call on the entry
 * `name` (for read, the file its descriptor is open on; for readdir and dup, any) first runs
 * `action` (what another process could do at that moment: the entry removed, replaced,
 * truncated), or fails with `fail_errno`; then, unless failed, makes the real call. */
enum { AT_OPENAT = 1, AT_FSTATAT, AT_READLINKAT, AT_READ, AT_READDIR, AT_DUP };
static struct {
	int at, fail_errno, fired;
	const char *name;
	void (*action)(void);
} race;

static void
at_call(int at, const char *name, void (*action)(void), int fail_errno)
{
	race.at = at;
	race.name = name;
	race.action = action;
	race.fail_errno = fail_errno;
	race.fired = 0;
}

/* 1 when this call must fail (errno set).  name NULL: the file descriptor fd is open on. */
static int
race_point(int at, const char *name, int fd)
{
	char link[64], target[4096];
	const char *base;
	ssize_t n;

	if (race.at != at || race.fired)
		return 0;
	if (race.name != NULL) {
		if (name == NULL) {
			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			if ((n = readlink(link, target, sizeof(target) - 1)) < 0)
				return 0;
			target[n] = '\0';
			name = (base = strrchr(target, '/')) != NULL ? base + 1 : target;
		}
		if (strcmp(name, race.name) != 0)
			return 0;
	}
	race.fired = 1;
	if (race.action != NULL)
		race.action();
	if (race.fail_errno == 0)
		return 0;
	errno = race.fail_errno;
	return 1;
}

#define REAL(name) \
	static __typeof__(&name) real; \
	if (real == NULL) \
		*(void **)&real = dlsym(RTLD_NEXT, #name)

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
	return race_point(AT_OPENAT, path, -1) ? -1 : real(d, path, flags, mode);
}

int
fstatat(int d, const char *path, struct stat *sb, int flags)
{
	REAL(fstatat);
	return race_point(AT_FSTATAT, path, -1) ? -1 : real(d, path, sb, flags);
}

ssize_t
readlinkat(int d, const char *path, char *buf, size_t len)
{
	REAL(readlinkat);
	return race_point(AT_READLINKAT, path, -1) ? -1 : real(d, path, buf, len);
}

ssize_t
read(int fd, void *buf, size_t len)
{
	REAL(read);
	return race_point(AT_READ, NULL, fd) ? -1 : real(fd, buf, len);
}

struct dirent *
readdir(DIR *dp)
{
	REAL(readdir);
	return race_point(AT_READDIR, "", -1) ? NULL : real(dp);
}

int
dup(int fd)
{
	REAL(dup);
	return race_point(AT_DUP, "", -1) ? -1 : real(fd);
}

/* Archives dir/Out into dir/out.tar, expecting a failure of class code with a message that
 * contains want; the hook must have fired. */
static void
archive_fails(int code, const char *want)
{
	struct jp_archive_result res;
	struct jp_error err;
	char *src = t_path(dir, "Out"), *out = t_path(dir, "out.tar");
	FILE *fp = fopen(out, "wb");

	ck_assert_ptr_nonnull(fp);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_archive_write(src, "Out", JP_ARCHIVE_TAR, to_file, fp, &res, &err),
	                 JP_FAILED);
	fclose(fp);
	ck_assert_int_eq(race.fired, 1);
	ck_assert_int_eq(err.code, code);
	ck_assert_msg(strstr(err.msg, want) != NULL, "want '%s', got '%s'", want, err.msg);
	free(src);
	free(out);
}

static void
remove_b(void)
{
	char *p = t_path(dir, "Out/b.dat");

	ck_assert_int_eq(unlink(p), 0);
	free(p);
}

static void
replace_b(void)
{
	char *p = t_path(dir, "Out/b.dat"), *n = t_path(dir, "Out/b.new");

	t_write_str(dir, "Out/b.new", "BBBB\n");
	ck_assert_int_eq(rename(n, p), 0);
	free(p);
	free(n);
}

/* Out/sub swapped with another directory (a new inode) under the same name. */
static void
replace_sub(void)
{
	char *p = t_path(dir, "Out/sub"), *n = t_path(dir, "Out/sub.new");

	t_write_str(dir, "Out/sub.new/z.dat", "ZZZZ\n");
	ck_assert_int_eq(renameat2(AT_FDCWD, n, AT_FDCWD, p, RENAME_EXCHANGE), 0);
	free(p);
	free(n);
}

static void
remove_link(void)
{
	char *p = t_path(dir, "Out/link-in");

	ck_assert_int_eq(unlink(p), 0);
	free(p);
}

static void
truncate_b(void)
{
	char *p = t_path(dir, "Out/b.dat");

	ck_assert_int_eq(truncate(p, 2), 0);
	free(p);
}

/* make_tree() in a fresh Out. */
static void
fresh_tree(void)
{
	char *p = t_path(dir, "Out");

	t_rmtree(p);
	free(p);
	make_tree();
}

/* Entries removed, replaced or cut short while the tree is walked, and the errors of reading
 * them: each fails the archive naming the entry and saying what happened. */
START_TEST(test_walk_races)
{
	fresh_tree();
	at_call(AT_OPENAT, "b.dat", remove_b, 0);
	archive_fails(JP_E_IOERR, "archive: Out/b.dat changed while being archived");
	fresh_tree();
	at_call(AT_OPENAT, "b.dat", replace_b, 0);
	archive_fails(JP_E_IOERR, "archive: Out/b.dat changed while being archived");
	fresh_tree();
	at_call(AT_OPENAT, "sub", replace_sub, 0);
	archive_fails(JP_E_IOERR, "archive: Out/sub changed while being archived");
	fresh_tree();
	at_call(AT_FSTATAT, "b.dat", remove_b, 0);
	archive_fails(JP_E_IOERR, "archive: Out/b.dat: No such file or directory");
	fresh_tree();
	at_call(AT_READLINKAT, "link-in", remove_link, 0);
	archive_fails(JP_E_IOERR, "archive: Out/link-in: No such file or directory");
	fresh_tree();
	at_call(AT_READ, "b.dat", truncate_b, 0);
	archive_fails(JP_E_IOERR, "archive: Out/b.dat: file shrank while being archived");
}
END_TEST

START_TEST(test_read_errors)
{
	struct jp_archive_result res;
	char *got;

	fresh_tree();
	at_call(AT_OPENAT, "b.dat", NULL, EACCES);
	archive_fails(JP_E_IOERR, "archive: Out/b.dat: cannot read: Permission denied");
	at_call(AT_READ, "b.dat", NULL, EIO);
	archive_fails(JP_E_IOERR, "archive: Out/b.dat: Input/output error");
	at_call(AT_READDIR, NULL, NULL, EIO);
	archive_fails(JP_E_IOERR, "archive: Out: cannot read directory: Input/output error");
	at_call(AT_DUP, NULL, NULL, EMFILE);
	archive_fails(JP_E_IOERR, "archive: Out: cannot read directory: Too many open files");
	at_call(AT_READDIR, NULL, NULL, ENOMEM);
	archive_fails(JP_E_SOFTWARE, "archive: Out: cannot read directory: Cannot allocate memory");
	/* a read interrupted by a signal is retried: the archive is whole */
	at_call(AT_READ, "b.dat", NULL, EINTR);
	res = archive_to("Out", "out.tar", JP_ARCHIVE_TAR);
	ck_assert_int_eq(race.fired, 1);
	ck_assert_uint_eq(res.entries, 10);
	got = listing("out.tar");
	ck_assert_msg(strstr(got, "Out/b.dat|10=bbbb\n") != NULL, "%s", got);
	free(got);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("tarstream");

	setlocale(LC_CTYPE, "C.UTF-8"); /* as src/cli/jobpub.c does */
	TCase *tc = tcase_create("archive");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_tree, 0, 3);
	tcase_add_loop_test(tc, test_deterministic, 0, 3);
	tcase_add_test(tc, test_directory_swapped_during_walk);
	tcase_add_test(tc, test_other_readers);
	tcase_add_test(tc, test_empty_dir);
	tcase_add_test(tc, test_unreadable);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_big_sparse);
	tcase_add_test(tc, test_sink_stop);
	tcase_add_loop_test(tc, test_stop_at_header, 0, 3);
	tcase_add_test(tc, test_stop_at_close);
	tcase_add_test(tc, test_piped_misuse);
	tcase_add_test(tc, test_walk_races);
	tcase_add_test(tc, test_read_errors);
	tcase_add_test(tc, test_allocation_failures);
	suite_add_tcase(s, tc);
	return t_run(s);
}
