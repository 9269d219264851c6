/*
 * test_tarstream.c - src/tarstream.c: deterministic tar streams of directories, read back with
 * libarchive, bsdtar and GNU tar.
 */
#include "config.h"

#include <locale.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <archive.h>
#include <archive_entry.h>

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
	size_t len;

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

int
main(void)
{
	Suite *s = suite_create("tarstream");

	setlocale(LC_CTYPE, "C.UTF-8"); /* as src/jobpub.c does */
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
	suite_add_tcase(s, tc);
	return t_run(s);
}
