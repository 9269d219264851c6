/*
 * hashpipe.h - read a file once, SHA-256 it on a second core while the caller writes it.
 *
 * Hashing (about 1 GB/s with SHA-NI) and writing to storage cost about the same, so doing them
 * one after the other halves throughput.  A hashpipe reads chunks into a small ring of buffers;
 * a thread hashes each chunk while the caller's sink consumes the same chunk.  Memory is bounded
 * by JP_HASHPIPE_BUFS * JP_HASHPIPE_CHUNK whatever the file's size.  Small files (a couple of
 * chunks) are hashed inline: a thread would cost more than it saves.
 */
#ifndef JP_HASHPIPE_H
#define JP_HASHPIPE_H

#include <stddef.h>
#include <stdint.h>

#define JP_HASHPIPE_CHUNK (1u << 20)
#define JP_HASHPIPE_BUFS 4

struct jp_hashpipe;

/* Allocates the buffers.  Returns NULL when out of memory.  One pipe serves one file at a time
 * and may be reused for the next. */
struct jp_hashpipe *jp_hashpipe_new(void);
void jp_hashpipe_free(struct jp_hashpipe *p); /* p may be NULL */

/* Receives each chunk, in order, on the calling thread.  Returns 0 to go on; anything else
 * stops the run and is returned by jp_hashpipe_run. */
typedef int (*jp_sink_fn)(void *arg, const void *buf, size_t len);

/*
 * Reads fd to its end.  Every chunk goes to sink (may be NULL: hash only) and into the hash.
 * Returns 0 with sha256 and *total set; the sink's non-zero value when it stopped the run;
 * -1 with errno set when read() failed (or a thread could not be started).
 */
int jp_hashpipe_run(struct jp_hashpipe *p, int fd, jp_sink_fn sink, void *arg,
                    unsigned char sha256[32], uint64_t *total);

/*
 * Push mode, for bytes produced elsewhere (an archive being written): begin starts the hashing
 * thread, push copies data into the ring (waiting for room), end hashes the rest and returns
 * the digest.  Returns 0, or -1 with errno (the thread could not start).  cancel ends a run
 * without a result (error paths); it is safe after end.
 */
int jp_hashpipe_begin(struct jp_hashpipe *p);
void jp_hashpipe_push(struct jp_hashpipe *p, const void *buf, size_t len);
int jp_hashpipe_end(struct jp_hashpipe *p, unsigned char sha256[32]);
void jp_hashpipe_cancel(struct jp_hashpipe *p);

#endif
