/*
 * test_hashpipe.c - src/core/hashpipe.c: one read, hash on a second thread, chunks in order.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>

#include <openssl/evp.h>

#include "hashpipe.h"
#include "util.h"
#include "testlib.h"

static char *dir;

static void
setup(void)
{
	dir = t_tempdir();
}

static void
teardown(void)
{
	t_rmtree(dir);
	free(dir);
}

/* A file of len pseudo-random bytes; returns its fd (read-only) and its SHA-256. */
static int
make_file(size_t len, unsigned char sha[32], unsigned char **data)
{
	unsigned char *b = malloc(len ? len : 1);
	unsigned int n = 32;
	uint32_t x = 2463534242u;
	char *path;
	size_t i;
	int fd;

	for (i = 0; i < len; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		b[i] = (unsigned char)x;
	}
	EVP_Digest(b, len, sha, &n, EVP_sha256(), NULL);
	t_write(dir, "f", b, len);
	path = t_path(dir, "f");
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	free(path);
	*data = b;
	return fd;
}

/* Sink that checks the chunks arrive in order and add up to the file. */
struct collect {
	const unsigned char *data;
	size_t off;
	int calls;
	int stop_at; /* stop with 7 at this call, 0: never */
};

static int
collect(void *arg, const void *buf, size_t len)
{
	struct collect *c = arg;

	ck_assert_msg(memcmp(c->data + c->off, buf, len) == 0, "chunk %d out of order", c->calls);
	c->off += len;
	if (++c->calls == c->stop_at)
		return 7;
	return 0;
}

static void
check_size(size_t len)
{
	struct jp_hashpipe *p = jp_hashpipe_new();
	unsigned char want[32], got[32], *data;
	struct collect c = {NULL, 0, 0, 0};
	uint64_t total = 99;
	int fd = make_file(len, want, &data);

	c.data = data;
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(jp_hashpipe_run(p, fd, collect, &c, got, &total), 0);
	ck_assert_uint_eq(total, len);
	ck_assert_uint_eq(c.off, len);
	ck_assert_msg(memcmp(want, got, 32) == 0, "wrong SHA-256 for %zu bytes", len);
	/* The same pipe serves the next file. */
	lseek(fd, 0, SEEK_SET);
	memset(got, 0, sizeof(got));
	ck_assert_int_eq(jp_hashpipe_run(p, fd, NULL, NULL, got, &total), 0);
	ck_assert_msg(memcmp(want, got, 32) == 0, "wrong SHA-256 on reuse");
	close(fd);
	free(data);
	jp_hashpipe_free(p);
}

START_TEST(test_sizes)
{
	/* Empty, inline path, exactly at the threshold, threaded with a partial last chunk, and a
	 * file that wraps the ring several times. */
	static const size_t sizes[] = {0, 1, 4096, JP_HASHPIPE_CHUNK, 2 * JP_HASHPIPE_CHUNK,
	                               2 * JP_HASHPIPE_CHUNK + 1, 5 * JP_HASHPIPE_CHUNK + 123,
	                               (JP_HASHPIPE_BUFS * 3 + 1) * JP_HASHPIPE_CHUNK};

	check_size(sizes[_i]);
}
END_TEST

START_TEST(test_sink_stops)
{
	struct jp_hashpipe *p = jp_hashpipe_new();
	unsigned char want[32], got[32], *data;
	struct collect c = {NULL, 0, 0, 3};
	uint64_t total;
	int fd = make_file(10 * JP_HASHPIPE_CHUNK, want, &data);

	c.data = data;
	ck_assert_int_eq(jp_hashpipe_run(p, fd, collect, &c, got, &total), 7);
	ck_assert_int_eq(c.calls, 3);
	close(fd);
	free(data);
	jp_hashpipe_free(p);
}
END_TEST

START_TEST(test_read_error)
{
	struct jp_hashpipe *p = jp_hashpipe_new();
	unsigned char got[32];
	uint64_t total;
	char *path = t_path(dir, "d");
	int fd;

	/* read() on a directory fails with EISDIR: reported as -1 with errno. */
	mkdir(path, 0700);
	fd = open(path, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	errno = 0;
	ck_assert_int_eq(jp_hashpipe_run(p, fd, NULL, NULL, got, &total), -1);
	ck_assert_int_eq(errno, EISDIR);
	close(fd);
	free(path);
	jp_hashpipe_free(p);
}
END_TEST

/* Push mode: the same digest whatever the piece sizes, across many ring turns. */
START_TEST(test_push)
{
	static const size_t pieces[] = {1, 512, 65536, 1000003, JP_HASHPIPE_CHUNK};
	struct jp_hashpipe *p = jp_hashpipe_new();
	size_t len = (JP_HASHPIPE_BUFS * 2 + 1) * JP_HASHPIPE_CHUNK + 777, off = 0, i = 0;
	unsigned char want[32], got[32], *data;
	int fd = make_file(len, want, &data);

	close(fd);
	ck_assert_int_eq(jp_hashpipe_begin(p), 0);
	while (off < len) {
		size_t n = pieces[i++ % 5];
		if (n > len - off)
			n = len - off;
		jp_hashpipe_push(p, data + off, n);
		off += n;
	}
	ck_assert_int_eq(jp_hashpipe_end(p, got), 0);
	ck_assert_msg(memcmp(want, got, 32) == 0, "wrong SHA-256 in push mode");
	/* cancel after end is harmless; an empty run gives the empty digest */
	jp_hashpipe_cancel(p);
	ck_assert_int_eq(jp_hashpipe_begin(p), 0);
	ck_assert_int_eq(jp_hashpipe_end(p, got), 0);
	{
		char hex[65];
		jp_hex(got, 32, hex);
		ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	}
	free(data);
	jp_hashpipe_free(p);
}
END_TEST

/* pthread_create and read as the pipe sees them (this program's definitions win over libc's):
 * refuse_threads makes every thread creation fail with EAGAIN (a pids cgroup, ulimit -u);
 * interrupt_reads makes that many reads fail with EINTR first (a signal during the call). */
static int refuse_threads, interrupt_reads;

int
pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

	if (refuse_threads)
		return EAGAIN;
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
	return real(th, attr, fn, arg);
}

ssize_t
read(int fd, void *buf, size_t len)
{
	static ssize_t (*real)(int, void *, size_t);

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "read");
	if (interrupt_reads > 0) {
		interrupt_reads--;
		errno = EINTR;
		return -1;
	}
	return real(fd, buf, len);
}

/* Without a thread, a big file cannot be hashed on the side: -1 with the reason, in both
 * modes; ending a push that never began is an error too.  Then the same pipe works. */
START_TEST(test_no_thread)
{
	struct jp_hashpipe *p = jp_hashpipe_new();
	size_t len = 3 * JP_HASHPIPE_CHUNK;
	unsigned char want[32], got[32], *data;
	uint64_t total;
	int fd = make_file(len, want, &data);

	refuse_threads = 1;
	errno = 0;
	ck_assert_int_eq(jp_hashpipe_run(p, fd, NULL, NULL, got, &total), -1);
	ck_assert_int_eq(errno, EAGAIN);
	errno = 0;
	ck_assert_int_eq(jp_hashpipe_begin(p), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(jp_hashpipe_end(p, got), -1);
	jp_hashpipe_cancel(p); /* nothing to cancel */
	refuse_threads = 0;
	lseek(fd, 0, SEEK_SET);
	ck_assert_int_eq(jp_hashpipe_run(p, fd, NULL, NULL, got, &total), 0);
	ck_assert_uint_eq(total, len);
	ck_assert_msg(memcmp(want, got, 32) == 0, "wrong SHA-256");
	close(fd);
	free(data);
	jp_hashpipe_free(p);
}
END_TEST

/* A pipe cannot be measured first: it is streamed inline, whatever its length, and reads
 * interrupted by a signal are retried. */
START_TEST(test_pipe_and_eintr)
{
	struct jp_hashpipe *p = jp_hashpipe_new();
	size_t len = 3 * JP_HASHPIPE_CHUNK + 5;
	unsigned char want[32], got[32], *data;
	struct collect c = {NULL, 0, 0, 0};
	uint64_t total;
	int fd = make_file(len, want, &data), pp[2], status;
	pid_t pid;

	close(fd);
	ck_assert_int_eq(pipe(pp), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		size_t off = 0;

		close(pp[0]);
		while (off < len) {
			ssize_t n = write(pp[1], data + off, len - off);
			if (n <= 0)
				_exit(1);
			off += (size_t)n;
		}
		_exit(0);
	}
	close(pp[1]);
	c.data = data;
	interrupt_reads = 2;
	ck_assert_int_eq(jp_hashpipe_run(p, pp[0], collect, &c, got, &total), 0);
	ck_assert_int_eq(interrupt_reads, 0);
	ck_assert_uint_eq(total, len);
	ck_assert_uint_eq(c.off, len);
	ck_assert_msg(memcmp(want, got, 32) == 0, "wrong SHA-256");
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(pp[0]);
	free(data);
	jp_hashpipe_free(p);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("hashpipe");
	TCase *tc = tcase_create("run");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_sizes, 0, 8);
	tcase_add_test(tc, test_sink_stops);
	tcase_add_test(tc, test_read_error);
	tcase_add_test(tc, test_push);
	tcase_add_test(tc, test_no_thread);
	tcase_add_test(tc, test_pipe_and_eintr);
	suite_add_tcase(s, tc);
	return t_run(s);
}
