/*
 * hashpipe.c - one read of a file, hashed on a helper thread while the caller writes it.
 *
 * The ring protocol: the caller fills slot k % BUFS only once the hasher has finished chunk
 * k - BUFS (so a slot is never overwritten while being hashed), and it finishes with a slot's
 * sink call before it reads the next chunk (so the hasher never waits on the sink).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hashpipe.h"
#include "util.h"

struct jp_hashpipe {
	char *buf[JP_HASHPIPE_BUFS];
	size_t len[JP_HASHPIPE_BUFS];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t produced, hashed; /* chunk counts */
	int done;                  /* no more chunks will come */
	struct jp_sha256 h;
	/* push mode */
	pthread_t th;
	int pushing;               /* a push run is under way */
	size_t fill;               /* bytes in the slot being filled */
};

struct jp_hashpipe *
jp_hashpipe_new(void)
{
	struct jp_hashpipe *p = calloc(1, sizeof(*p));
	size_t i;

	if (p == NULL)
		return NULL;
	for (i = 0; i < JP_HASHPIPE_BUFS; i++)
		if ((p->buf[i] = malloc(JP_HASHPIPE_CHUNK)) == NULL) {
			jp_hashpipe_free(p);
			return NULL;
		}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	return p;
}

void
jp_hashpipe_free(struct jp_hashpipe *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < JP_HASHPIPE_BUFS; i++)
		free(p->buf[i]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

static void *
hasher(void *arg)
{
	struct jp_hashpipe *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		size_t k;

		while (p->hashed == p->produced && !p->done)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->hashed == p->produced)
			break;
		k = (size_t)(p->hashed % JP_HASHPIPE_BUFS);
		pthread_mutex_unlock(&p->mu);
		jp_sha256_update(&p->h, p->buf[k], p->len[k]);
		pthread_mutex_lock(&p->mu);
		p->hashed++;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static ssize_t
read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Small files: read, hash, sink, in turn. */
static int
run_inline(struct jp_hashpipe *p, int fd, jp_sink_fn sink, void *arg, uint64_t *total)
{
	for (;;) {
		ssize_t n = read_full(fd, p->buf[0], JP_HASHPIPE_CHUNK);
		int r;

		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		jp_sha256_update(&p->h, p->buf[0], (size_t)n);
		*total += (uint64_t)n;
		if (sink != NULL && (r = sink(arg, p->buf[0], (size_t)n)) != 0)
			return r;
	}
}

static int
run_threaded(struct jp_hashpipe *p, int fd, jp_sink_fn sink, void *arg, uint64_t *total)
{
	pthread_t th;
	uint64_t k;
	int r = 0, e = 0;

	p->produced = p->hashed = 0;
	p->done = 0;
	if ((e = pthread_create(&th, NULL, hasher, p)) != 0) {
		errno = e;
		return -1;
	}
	for (k = 0;; k++) {
		size_t slot = (size_t)(k % JP_HASHPIPE_BUFS);
		ssize_t n;

		pthread_mutex_lock(&p->mu);
		while (k - p->hashed >= JP_HASHPIPE_BUFS)
			pthread_cond_wait(&p->cv, &p->mu);
		pthread_mutex_unlock(&p->mu);
		if ((n = read_full(fd, p->buf[slot], JP_HASHPIPE_CHUNK)) <= 0) {
			if (n < 0) {
				e = errno;
				r = -1;
			}
			break;
		}
		pthread_mutex_lock(&p->mu);
		p->len[slot] = (size_t)n;
		p->produced = k + 1;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		*total += (uint64_t)n;
		if (sink != NULL && (r = sink(arg, p->buf[slot], (size_t)n)) != 0)
			break;
	}
	pthread_mutex_lock(&p->mu);
	p->done = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(th, NULL);
	if (r == -1)
		errno = e;
	return r;
}

int
jp_hashpipe_run(struct jp_hashpipe *p, int fd, jp_sink_fn sink, void *arg,
                unsigned char sha256[32], uint64_t *total)
{
	off_t size = lseek(fd, 0, SEEK_END);
	int r;

	*total = 0;
	if (size < 0 || lseek(fd, 0, SEEK_SET) < 0)
		size = 0; /* not seekable: stream it inline */
	if (jp_sha256_init(&p->h) != 0) {
		errno = ENOMEM;
		return -1;
	}
	if (size > 2 * (off_t)JP_HASHPIPE_CHUNK)
		r = run_threaded(p, fd, sink, arg, total);
	else
		r = run_inline(p, fd, sink, arg, total);
	if (r != 0) {
		int e = errno;
		jp_sha256_free(&p->h);
		errno = e;
		return r;
	}
	jp_sha256_final(&p->h, sha256);
	return 0;
}

/* Hands the slot being filled to the hasher. */
static void
publish_slot(struct jp_hashpipe *p)
{
	pthread_mutex_lock(&p->mu);
	p->len[p->produced % JP_HASHPIPE_BUFS] = p->fill;
	p->produced++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	p->fill = 0;
}

int
jp_hashpipe_begin(struct jp_hashpipe *p)
{
	int e;

	if (jp_sha256_init(&p->h) != 0) {
		errno = ENOMEM;
		return -1;
	}
	p->produced = p->hashed = 0;
	p->done = 0;
	p->fill = 0;
	if ((e = pthread_create(&p->th, NULL, hasher, p)) != 0) {
		jp_sha256_free(&p->h);
		errno = e;
		return -1;
	}
	p->pushing = 1;
	return 0;
}

void
jp_hashpipe_push(struct jp_hashpipe *p, const void *buf, size_t len)
{
	const char *b = buf;

	while (len > 0) {
		size_t slot = (size_t)(p->produced % JP_HASHPIPE_BUFS), n;

		if (p->fill == 0) {
			/* Wait until the hasher is done with what this slot held last time round. */
			pthread_mutex_lock(&p->mu);
			while (p->produced - p->hashed >= JP_HASHPIPE_BUFS)
				pthread_cond_wait(&p->cv, &p->mu);
			pthread_mutex_unlock(&p->mu);
		}
		n = JP_HASHPIPE_CHUNK - p->fill;
		if (n > len)
			n = len;
		memcpy(p->buf[slot] + p->fill, b, n);
		p->fill += n;
		b += n;
		len -= n;
		if (p->fill == JP_HASHPIPE_CHUNK)
			publish_slot(p);
	}
}

static void
finish_push(struct jp_hashpipe *p)
{
	if (p->fill > 0)
		publish_slot(p);
	pthread_mutex_lock(&p->mu);
	p->done = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	p->pushing = 0;
}

int
jp_hashpipe_end(struct jp_hashpipe *p, unsigned char sha256[32])
{
	if (!p->pushing)
		return -1;
	finish_push(p);
	jp_sha256_final(&p->h, sha256);
	return 0;
}

void
jp_hashpipe_cancel(struct jp_hashpipe *p)
{
	if (!p->pushing)
		return;
	finish_push(p);
	jp_sha256_free(&p->h);
}
