/*
 * publish.c - the publish protocol (see publish.h): plan, stage, commit, record, roll back.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "dest.h"
#include "hashpipe.h"
#include "json.h"
#include "log.h"
#include "manifest.h"
#include "options.h"
#include "plan.h"
#include "publish.h"
#include "tarstream.h"
#include "template.h"

#define NAME "publish"

static volatile sig_atomic_t interrupted;

void
jp_publish_interrupt(int sig)
{
	interrupted = sig;
}

int
jp_publish_interrupted(void)
{
	return interrupted != 0;
}

/* The last jp_publish could not record its attempt: the catalogue stayed locked. */
static int last_unrecorded;

int
jp_publish_unrecorded(void)
{
	return last_unrecorded;
}

static void (*cleanup_hook)(void);

void
jp_publish_set_cleanup_hook(void (*fn)(void))
{
	cleanup_hook = fn;
}

/* State of one planned file through the protocol. */
struct pfile {
	struct jp_item *it;
	char *url;
	unsigned char sha[32];
	char hex[65];
	int identical;         /* the final name already holds this content */
	uint64_t entries;      /* of an archive, once written */
	struct jp_upload *up;  /* staged or committed upload; NULL when identical */
	int committed, replaced;
	char etag[96];         /* the remote object's ETag where the store has one */
};

/* One transfer lane: its own connection to the destination and its own read buffers.  Lane 0
 * uses the run's destination; commits and the catalogue stay on the main thread. */
struct worker {
	struct run *R;
	struct jp_dest *dest;
	struct jp_hashpipe *pipe;
	struct jp_error err;
	int r;
	int follower;             /* failed only because another lane had */
	pthread_t th;
};

/* Everything one publish holds; released by run_free. */
struct run {
	const struct jp_publish_opts *o;
	struct jp_manifest *m;
	struct jp_catalog *cat;
	struct jp_jobtable t;
	struct jp_row *row;
	struct jp_plan *plan;
	struct jp_dest *dest;     /* = workers[0].dest */
	struct pfile *files;
	char token[17];
	int64_t attempt;
	uint64_t bytes;           /* sent by this attempt (atomic: lanes add to it) */
	int64_t t0;
	struct jp_dest_opts dopts; /* the command line's, then the manifest's */
	struct jp_options options; /* dopts.options: the manifest's, overridden by the command line */
	struct worker *workers;
	size_t n_workers;
	int64_t renewed_ms;       /* last renewal of the lease */
	/* the pool's shared state */
	pthread_mutex_t mu;
	pthread_mutex_t catmu;    /* the catalogue connection, while lanes run */
	size_t next;              /* next file for a lane to take */
	int failed;               /* a lane failed: the others stop taking files */
	/* the watch thread (watch below) */
	pthread_t watch;
	int watching, watch_end;
	sigset_t mask;            /* the main thread's, while the watch takes the signals */
};

/* After a signal, a lane stops at its next chunk; one blocked on a silent network would wait
 * for the stall limit (60 s).  The lanes get this long to stop by themselves (keeping their
 * connections for the rollback), then theirs are cut. */
#define CANCEL_GRACE_MS 1000

static int
lease_s(const struct jp_publish_opts *o)
{
	return o->lease_s > 0 ? o->lease_s : 3600;
}

/* Keeps the lease alive through a long transfer, a third of the way to expiry.  Any lane may
 * do it: the main thread leaves the catalogue alone while lanes run, and the run's mutex keeps
 * two lanes from using the connection at once. */
static void
renew_lease(struct run *R)
{
	struct jp_error e;

	if (R->cat == NULL ||
	    jp_now_ms() - __atomic_load_n(&R->renewed_ms, __ATOMIC_RELAXED) <
	        (int64_t)lease_s(R->o) * 1000 / 3)
		return;
	/* Whoever gets the catalogue renews; the others go on transferring. */
	if (pthread_mutex_trylock(&R->catmu) != 0)
		return;
	if (jp_now_ms() - R->renewed_ms >= (int64_t)lease_s(R->o) * 1000 / 3) {
		jp_error_clear(&e);
		if (jp_catalog_renew(R->cat, R->o->job, R->token, lease_s(R->o), &e) == JP_OK)
			__atomic_store_n(&R->renewed_ms, jp_now_ms(), __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&R->catmu);
}

/* The one publish of this process, for the destination's read-back hook below. */
static struct run *current_run;

/* Between chunks of a read-back (a comparison with an existing file): stop at a signal, and
 * keep the lease alive like a transfer does. */
static int
readback_tick(void)
{
	if (current_run != NULL)
		renew_lease(current_run);
	return interrupted != 0;
}

static int
check_interrupt(struct jp_error *err)
{
	if (!interrupted)
		return JP_OK;
	return jp_error_set(err, JP_E_TEMPFAIL, NAME ": interrupted by %s",
	                    interrupted == SIGINT ? "SIGINT" : interrupted == SIGTERM ? "SIGTERM"
	                                                                              : "a signal");
}

static void
event(struct run *R, const char *name, const struct pfile *f, int64_t ms, const char *msg)
{
	struct jp_event ev = {name, R->o->job, NULL, NULL, NULL, -1, NULL, -1, 0, msg};

	if (f != NULL) {
		ev.output = f->it->out->name.s;
		ev.local = f->it->local;
		ev.remote = f->url;
		ev.bytes = (int64_t)f->it->size;
		ev.sha256 = f->hex[0] ? f->hex : NULL;
	}
	ev.duration_ms = ms;
	jp_log_event(&ev);
}

/* Where a stream's chunks go: the staged upload (or nowhere, when only hashing). */
struct sink {
	struct run *R;
	struct jp_upload *u;
	struct jp_error *err;
	int r;
};

static int
sink_chunk(void *arg, const void *buf, size_t len)
{
	struct sink *k = arg;

	if ((k->r = check_interrupt(k->err)) != JP_OK)
		return 1;
	/* Another lane failed: the publish is over, do not send the rest of a big file. */
	if (__atomic_load_n(&k->R->failed, __ATOMIC_RELAXED)) {
		k->r = jp_error_set(k->err, JP_E_TEMPFAIL,
		                    NAME ": stopped: another file of the job failed");
		return 1;
	}
	renew_lease(k->R); /* hashing for a comparison counts as work too */
	if (k->u == NULL)
		return 0;
	if ((k->r = jp_upload_write(k->u, buf, len, k->err)) != JP_OK)
		return 1;
	__atomic_add_fetch(&k->R->bytes, (uint64_t)len, __ATOMIC_RELAXED);
	jp_progress_add(len);
	return 0;
}

/* Reads the local file once: every chunk is hashed and, when u is set, written to the staged
 * upload.  It is opened as the plan checked it (jp_plan_open: no link followed, same inode,
 * unmodified since its validation), so a link swapped in since cannot send a file from
 * elsewhere.  The size actually read must match the plan, and the file must be unmodified at
 * the end too: a file still being written is refused. */
static int
stream_file(struct worker *w, struct pfile *f, struct jp_upload *u, struct jp_error *err)
{
	struct sink k = {w->R, u, err, JP_OK};
	uint64_t total = 0;
	int fd, rc;

	if ((rc = jp_plan_open(w->R->plan, f->it, &fd, err)) != JP_OK)
		return rc;
#ifdef HAVE_POSIX_FADVISE
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	rc = jp_hashpipe_run(w->pipe, fd, sink_chunk, &k, f->sha, &total);
	if (rc < 0)
		rc = jp_error_set(err, JP_E_IOERR, NAME ": %s: read: %s", f->it->local,
		                  strerror(errno));
	else if (rc > 0)
		rc = k.r;
	if (rc == JP_OK && total == f->it->size)
		rc = jp_plan_unchanged(f->it, fd, err);
	close(fd);
	if (rc != JP_OK)
		return rc;
	if (total != f->it->size)
		return jp_error_set(err, JP_E_IOERR,
		                    NAME ": %s changed while being published (%llu bytes planned, %llu "
		                    "read); is the job still writing it?",
		                    f->it->local, (unsigned long long)f->it->size,
		                    (unsigned long long)total);
	jp_hex(f->sha, 32, f->hex);
	return JP_OK;
}

/* An archive has no size before it is written: it is made (and hashed) as a stream, into the
 * staged upload or, for a comparison, into nothing. */
static int
stream_archive(struct worker *w, struct pfile *f, struct jp_upload *u, struct jp_error *err)
{
	struct sink k = {w->R, u, err, JP_OK};
	struct jp_archive_result res;
	int fd, r;

	/* The directory the plan checked, reached without following links; the archive walks
	 * down from this descriptor the same way (tarstream.h). */
	if ((r = jp_plan_open(w->R->plan, f->it, &fd, err)) != JP_OK)
		return r;
	r = jp_archive_write_piped(fd, f->it->local, (enum jp_archive_format)f->it->out->archive_fmt,
	                           sink_chunk, &k, w->pipe, &res, err);
	close(fd);
	if (r != JP_OK)
		return r;
	f->it->size = res.size;
	f->entries = res.entries;
	memcpy(f->sha, res.sha256, 32);
	jp_hex(f->sha, 32, f->hex);
	return JP_OK;
}

/* Reads (or for a directory, archives) one planned item into u, or only hashes it. */
static int
produce(struct worker *w, struct pfile *f, struct jp_upload *u, struct jp_error *err)
{
	return f->it->is_archive ? stream_archive(w, f, u, err) : stream_file(w, f, u, err);
}

/* The final name exists: same content is published already; different content is a conflict
 * unless --overwrite. */
static int
compare_existing(struct run *R, struct jp_dest *dest, struct pfile *f, struct jp_error *err)
{
	unsigned char remote[32];
	char rhex[65], known[65];
	int r, found;

	/* An object whose ETag is the one the catalogue recorded holds the content it recorded:
	 * no read-back (an object a store assembled from parts carries no SHA-256 of its own). */
	pthread_mutex_lock(&R->catmu);
	found = f->etag[0] != '\0' && R->cat != NULL &&
	        jp_catalog_known_sha256(R->cat, R->plan->destination, f->it->key, f->etag, known) &&
	        jp_unhex(known, remote, 32) == 0;
	pthread_mutex_unlock(&R->catmu);
	if (!found && (r = jp_dest_digest(dest, f->it->key, remote, err)) != JP_OK)
		return r;
	if (memcmp(remote, f->sha, 32) == 0) {
		f->identical = 1;
		return JP_OK;
	}
	if (R->o->overwrite)
		return JP_OK;
	jp_hex(remote, 32, rhex);
	return jp_error_set(err, JP_E_UNAVAILABLE,
	                    NAME ": conflict: %s already holds different content (sha256 %.12s..., "
	                    "ours %.12s... from %s); nothing was changed; --overwrite replaces it",
	                    f->url, rhex, f->hex, f->it->local);
}

/* Before anything is staged: a final name that exists is compared now, so a conflict touches
 * nothing and an unchanged re-publish uploads nothing. */
static int
precheck_one(struct worker *w, struct pfile *f, struct jp_error *err)
{
	struct run *R = w->R;
	struct jp_stat st;
	int r;

	if ((r = jp_dest_stat(w->dest, f->it->key, &st, err)) != JP_OK || !st.exists)
		return r;
	if (st.is_dir)
		return jp_error_set(err, JP_E_UNAVAILABLE,
		                    NAME ": %s is a directory; cannot publish %s there",
		                    f->url, f->it->local);
	memcpy(f->etag, st.etag, sizeof(f->etag));
	/* An archive's size is known once it is made: make it, without sending it. */
	if (f->it->is_archive && (r = produce(w, f, NULL, err)) != JP_OK)
		return r;
	if (st.size != f->it->size && !R->o->overwrite)
		return jp_error_set(err, JP_E_UNAVAILABLE,
		                    NAME ": conflict: %s already holds different content (%llu bytes, "
		                    "ours %llu from %s); nothing was changed; --overwrite replaces it",
		                    f->url, (unsigned long long)st.size,
		                    (unsigned long long)f->it->size, f->it->local);
	if (st.size != f->it->size)
		return JP_OK;
	if ((!f->it->is_archive && (r = produce(w, f, NULL, err)) != JP_OK) ||
	    (r = compare_existing(R, w->dest, f, err)) != JP_OK)
		return r;
	if (f->identical)
		event(R, "identical", f, -1, "already published");
	return JP_OK;
}

/* Sleeps ms milliseconds unless a signal asks to stop. */
static void
nap(struct run *R, int64_t ms)
{
	int64_t end = jp_now_ms() + ms;

	while (!interrupted && !__atomic_load_n(&R->failed, __ATOMIC_RELAXED) && jp_now_ms() < end)
		usleep(20000);
}

/* Stages one file: a transient failure (the destination said "try again", a connection broke)
 * is retried from the start of the file, with exponential backoff and jitter, a bounded number
 * of times.  What a failed try staged is removed before the next. */
static int
stage_one(struct worker *w, struct pfile *f, struct jp_error *err)
{
	struct run *R = w->R;
	int tries = 0, r;

	if (f->identical)
		return JP_OK;
	for (;;) {
		int64_t t = jp_now_ms();
		struct jp_upload *up = NULL;
		struct jp_error e;

		jp_error_clear(&e);
		if ((r = jp_dest_stage(w->dest, f->it->key, R->token,
		                        f->it->is_archive ? UINT64_MAX : f->it->size, &up, &e)) == JP_OK &&
		    (r = produce(w, f, up, &e)) == JP_OK &&
		    (r = jp_upload_finish(up, f->it->size, f->sha, &e)) == JP_OK) {
			f->up = up;
			event(R, "staged", f, jp_now_ms() - t, NULL);
			return JP_OK;
		}
		jp_upload_free(up); /* removes the temporary data where the destination still answers */
		/* Retried: a transient failure (JP_RETRY), or a connection that died (JP_FATAL for its
		 * handle, class 75), which the backend's next stage reopens (backend.h). */
		if (!(r == JP_RETRY || (r == JP_FATAL && e.code == JP_E_TEMPFAIL)) || interrupted ||
		    tries >= R->o->retries ||
		    __atomic_load_n(&R->failed, __ATOMIC_RELAXED)) {
			return jp_error_set(err, e.code, "%s", e.msg);
		}
		{
			int64_t base = jp_backoff_ms(tries);

			tries++;
			jp_log_warn("job %s: %s: %s; try %d of %d in %.1f s", R->o->job, f->it->local, e.msg,
			            tries + 1, R->o->retries + 1, (double)base / 1000.0);
			nap(R, base);
		}
	}
}

typedef int (*lane_fn)(struct worker *w, struct pfile *f, struct jp_error *err);

struct lane_job {
	struct worker *w;
	lane_fn fn;
	int own; /* each lane goes through every file (fn picks its own), not a shared queue */
};

/* A lane takes files one by one until none is left or some lane failed. */
static void *
lane(void *arg)
{
	struct lane_job *j = arg;
	struct worker *w = j->w;
	struct run *R = w->R;

	for (size_t k = 0;; k++) {
		size_t i;

		pthread_mutex_lock(&R->mu);
		if (R->failed || (j->own ? k : R->next) >= R->plan->n_items) {
			pthread_mutex_unlock(&R->mu);
			break;
		}
		i = j->own ? k : R->next++;
		pthread_mutex_unlock(&R->mu);
		if ((w->r = check_interrupt(&w->err)) != JP_OK ||
		    (w->r = j->fn(w, &R->files[i], &w->err)) != JP_OK) {
			pthread_mutex_lock(&R->mu);
			/* A lane stopped by another's failure is not a cause of its own. */
			w->follower = R->failed;
			__atomic_store_n(&R->failed, 1, __ATOMIC_RELAXED);
			pthread_mutex_unlock(&R->mu);
			break;
		}
	}
	return NULL;
}

/* Runs fn over every file on all lanes (each file once from a shared queue, or with `own` every
 * file on every lane, fn choosing its own).  The worst lane's severity is the run's; its reason
 * is the first (in lane order) of a lane that failed on its own, a permanent failure before a
 * transient one. */
static int
run_lanes(struct run *R, lane_fn fn, int own, struct jp_error *err)
{
	struct lane_job jobs[64];
	size_t i, started = 0;
	int r = JP_OK;

	R->next = 0;
	R->failed = 0;
	for (i = 0; i < R->n_workers; i++) {
		jobs[i].w = &R->workers[i];
		jobs[i].fn = fn;
		jobs[i].own = own;
		jp_error_clear(&R->workers[i].err);
		R->workers[i].r = JP_OK;
		R->workers[i].follower = 0;
	}
	/* Lane 0 is this thread; the others are threads of their own.  A lane whose thread cannot
	 * be created (EAGAIN under a pids limit) runs here after lane 0: with `own`, its files are
	 * on its connection and no other lane would do them. */
	for (i = 1; i < R->n_workers; i++)
		if (pthread_create(&R->workers[i].th, NULL, lane, &jobs[i]) == 0)
			started = i;
		else
			break;
	lane(&jobs[0]);
	for (i = started + 1; i < R->n_workers; i++)
		lane(&jobs[i]);
	for (i = 1; i <= started; i++)
		pthread_join(R->workers[i].th, NULL);
	for (i = 0; i < R->n_workers; i++)
		r = jp_worst(r, R->workers[i].r);
	if (r == JP_OK)
		return JP_OK;
	/* The reason told: the class decides (a lost connection is FATAL for its lane but class 75,
	 * and a refusal elsewhere says more about the run). */
	for (i = 0; i < R->n_workers; i++)
		if (R->workers[i].r != JP_OK && !R->workers[i].follower &&
		    jp_severity_of(R->workers[i].err.code) == JP_FAILED) {
			jp_error_set(err, R->workers[i].err.code, "%s", R->workers[i].err.msg);
			return r;
		}
	for (i = 0; i < R->n_workers; i++)
		if (R->workers[i].r != JP_OK && !R->workers[i].follower) {
			jp_error_set(err, R->workers[i].err.code, "%s", R->workers[i].err.msg);
			return r;
		}
	/* Only transient failures (or a signal) left: report the first of those. */
	for (i = 0; i < R->n_workers; i++)
		if (R->workers[i].r != JP_OK) {
			jp_error_set(err, R->workers[i].err.code, "%s", R->workers[i].err.msg);
			break;
		}
	return r;
}

/* The backend options: the manifest's, each replaced by the command line's for the same key. */
static int
merge_options(struct run *R, struct jp_error *err)
{
	int r;

	if ((r = jp_options_merge(&R->options, &R->m->options, err)) != JP_OK ||
	    (r = jp_options_merge(&R->options, R->o->options, err)) != JP_OK)
		return r;
	R->dopts.options = &R->options;
	return JP_OK;
}

/* Opens the lanes: min(--parallel, files) connections to the destination. */
static int
open_lanes(struct run *R, struct jp_error *err)
{
	size_t n = (size_t)(R->o->parallel > 0 ? R->o->parallel : 1), i;
	int r;

	if (n > R->plan->n_items)
		n = R->plan->n_items;
	if (n == 0)
		n = 1;
	if (n > 64)
		n = 64;
	if ((R->workers = calloc(n, sizeof(*R->workers))) == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
	R->n_workers = n;
	for (i = 0; i < n; i++) {
		struct worker *w = &R->workers[i];

		w->R = R;
		if ((w->pipe = jp_hashpipe_new()) == NULL)
			return jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
		if (i == 0)
			w->dest = R->dest;
		else if ((r = jp_dest_open(R->plan->destination, &R->dopts, &w->dest, err)) != JP_OK)
			return r;
	}
	return JP_OK;
}

static int
precheck(struct run *R, struct jp_error *err)
{
	return run_lanes(R, precheck_one, 0, err);
}

static int
stage_all(struct run *R, struct jp_error *err)
{
	uint64_t todo = 0;
	size_t i;
	int r;

	for (i = 0; i < R->plan->n_items; i++)
		if (!R->files[i].identical)
			todo += R->files[i].it->size;
	jp_progress_begin(todo);
	r = run_lanes(R, stage_one, 0, err);
	jp_progress_end();
	return r;
}

/* Step 3 for one file, on the lane (connection) that staged it. */
static int
commit_one(struct worker *w, struct pfile *f, struct jp_error *err)
{
	struct run *R = w->R;
	int exists, r;

	if (f->identical || f->up == NULL || jp_upload_dest(f->up) != w->dest)
		return JP_OK;
	if ((r = jp_upload_commit(f->up, R->o->overwrite, &exists, &f->replaced, err)) != JP_OK) {
		/* A failure after the rename (chmod, out of memory): the final name holds our data,
		 * and the rollback must remove it like any committed file. */
		if (jp_upload_committed(f->up))
			f->committed = 1;
		return r;
	}
	if (exists) {
		/* Someone created the name since the precheck. */
		f->etag[0] = '\0';
		if ((r = compare_existing(R, w->dest, f, err)) != JP_OK ||
		    (r = jp_upload_abort(f->up, err)) != JP_OK)
			return r;
		f->identical = 1;
		event(R, "identical", f, -1, "already published");
		return JP_OK;
	}
	f->committed = 1;
	snprintf(f->etag, sizeof(f->etag), "%s", jp_upload_etag(f->up));
	event(R, "committed", f, -1, NULL);
	return JP_OK;
}

static int
commit_all(struct run *R, struct jp_error *err)
{
	size_t i;
	int r;

	if ((r = run_lanes(R, commit_one, 1, err)) != JP_OK)
		return r;
	/* Nothing is recorded that was not committed: a file no lane took would be a bug here. */
	for (i = 0; i < R->plan->n_items; i++)
		if (!R->files[i].identical && !R->files[i].committed)
			return jp_error_set(err, JP_E_SOFTWARE, "publish: %s was not committed",
			                    R->files[i].url);
	for (i = 0; i < R->n_workers; i++)
		if ((r = jp_dest_sync(R->workers[i].dest, err)) != JP_OK)
			return r;
	return JP_OK;
}

/* While the lanes run: once a signal has come and CANCEL_GRACE_MS have passed, every lane's
 * network wait is cut (jp_dest_cancel), so the rollback starts in bounded time whatever the
 * network does.  Polls: a signal handler can only set a flag. */
static void *
watch(void *arg)
{
	struct run *R = arg;
	int64_t since = 0;
	size_t i;

	while (!__atomic_load_n(&R->watch_end, __ATOMIC_ACQUIRE)) {
		if (interrupted && since == 0)
			since = jp_now_ms();
		if (since != 0 && jp_now_ms() - since >= CANCEL_GRACE_MS) {
			jp_log_warn("job %s: still transferring %.1f s after the signal: cutting the "
			            "connections", R->o->job, (double)CANCEL_GRACE_MS / 1000.0);
			for (i = 0; i < R->n_workers; i++)
				jp_dest_cancel(R->workers[i].dest);
			break;
		}
		usleep(20000);
	}
	return NULL;
}

static void
watch_start(struct run *R)
{
	sigset_t stop;

	if (!jp_dest_can_cancel(R->dest))
		return; /* nothing to cut: every wait of this destination stops on the flag */
	/* SIGINT and SIGTERM go to the watch alone: delivered to a lane waiting in a network
	 * library, one would cut its wait short (EINTR) and break its connection, and the rollback
	 * could not remove the files staged over it.  The lanes (and their hashing threads)
	 * inherit the main thread's mask, blocked until watch_stop. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	R->watching = pthread_create(&R->watch, NULL, watch, R) == 0;
	if (R->watching)
		pthread_sigmask(SIG_BLOCK, &stop, &R->mask);
}

static void
watch_stop(struct run *R)
{
	if (!R->watching)
		return;
	/* A signal still pending reaches this thread now, and sets the flag. */
	pthread_sigmask(SIG_SETMASK, &R->mask, NULL);
	__atomic_store_n(&R->watch_end, 1, __ATOMIC_RELEASE);
	pthread_join(R->watch, NULL);
	R->watching = 0;
}

/* Step 5: what this attempt staged goes; what it committed without replacing goes too.  Every
 * file and lane is tried; returns the worst of their results (each reason is logged). */
static int
rollback(struct run *R)
{
	struct jp_error e;
	size_t i;
	int ret = JP_OK, r;

	for (i = 0; R->files != NULL && i < R->plan->n_items; i++) {
		struct pfile *f = &R->files[i];

		jp_error_clear(&e);
		if (f->up != NULL && (r = jp_upload_abort(f->up, &e)) != JP_OK) {
			jp_log_error("rollback: %s", e.msg);
			ret = jp_worst(ret, r);
		}
		if (f->committed && !f->replaced && R->cat != NULL &&
		    jp_catalog_claimed_elsewhere(R->cat, R->o->job, R->plan->destination, f->it->key)) {
			jp_log_warn("rollback: %s kept: another publisher has recorded it since", f->url);
		} else if (f->committed && !f->replaced) {
			jp_error_clear(&e);
			if ((r = jp_upload_uncommit(f->up, &e)) != JP_OK) {
				jp_log_error("rollback: %s", e.msg);
				ret = jp_worst(ret, r);
			} else
				f->committed = 0;
		} else if (f->committed) {
			jp_log_warn("rollback: %s was replaced by this attempt (--overwrite) and keeps the "
			            "new content",
			            f->url);
		}
	}
	/* A lane whose connection never opened (the server died between two connects) has no
	 * destination: nothing of it to sync. */
	for (i = 0; R->workers != NULL && i < R->n_workers; i++) {
		jp_error_clear(&e);
		if (R->workers[i].dest != NULL && (r = jp_dest_sync(R->workers[i].dest, &e)) != JP_OK) {
			jp_log_warn("rollback: %s", e.msg);
			ret = jp_worst(ret, r);
		}
	}
	return ret;
}

static char *
sets_json(const struct jp_publish_opts *o)
{
	struct jp_json j;
	char *s = NULL;
	size_t len = 0, i;
	FILE *fp = open_memstream(&s, &len);

	if (fp == NULL)
		return NULL;
	jp_json_init(&j, fp);
	jp_json_object(&j, NULL);
	for (i = 0; i < o->n_sets; i++)
		jp_json_str(&j, o->sets[i].name, o->sets[i].value);
	jp_json_end(&j, '}');
	fclose(fp);
	return s;
}

static void
run_free(struct run *R)
{
	size_t i;

	if (current_run == R)
		current_run = NULL;
	watch_stop(R);

	for (i = 0; R->files != NULL && i < R->plan->n_items; i++) {
		jp_upload_free(R->files[i].up);
		free(R->files[i].url);
	}
	free(R->files);
	/* Lane 0 holds R->dest; the uploads above needed their lanes' connections until now. */
	for (i = 0; i < R->n_workers; i++) {
		if (R->workers[i].dest != R->dest)
			jp_dest_close(R->workers[i].dest);
		jp_hashpipe_free(R->workers[i].pipe);
	}
	free(R->workers);
	jp_dest_close(R->dest);
	jp_plan_free(R->plan);
	jp_row_free(R->row);
	jp_catalog_close(R->cat);
	jp_manifest_free(R->m);
	jp_options_free(&R->options);
	pthread_mutex_destroy(&R->mu);
	pthread_mutex_destroy(&R->catmu);
}

static void
print_plan(struct run *R, FILE *fp)
{
	char sz[32];
	size_t i;

	fprintf(fp, "destination %s\n", R->plan->destination);
	/* Plain text for people: placeholders like {row.X} (no catalogue yet) stay readable. */
	for (i = 0; i < R->plan->n_items; i++) {
		const struct jp_item *it = &R->plan->items[i];

		if (it->is_archive)
			fprintf(fp, "%10s  %s/ (as %s) -> %s/%s\n", "dir", it->local, it->out->archive.s,
			        R->plan->destination, it->key);
		else
			fprintf(fp, "%10s  %s -> %s/%s\n", jp_human_size(it->size, sz, sizeof(sz)), it->local,
			        R->plan->destination, it->key);
	}
	for (i = 0; i < R->plan->n_skipped; i++)
		fprintf(fp, "%10s  %s (optional, absent: skipped)\n", "-", R->plan->skipped[i]->name.s);
	fprintf(fp, "%zu files, %s\n", R->plan->n_items,
	        jp_human_size(R->plan->total, sz, sizeof(sz)));
}

void
jp_publish_dest_opts(const struct jp_publish_opts *o, struct jp_dest_opts *d)
{
	memset(d, 0, sizeof(*d));
	d->overwrite = o->overwrite;
	d->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
	d->stall_ms = o->stall_ms > 0 ? o->stall_ms : 60000;
	d->retries = o->retries > 0 ? o->retries : -1;
	d->options = o->options;
}

void
jp_jobtable_of(const struct jp_manifest *m, struct jp_jobtable *t)
{
	t->table = m->table.s;
	t->id_column = m->id_column.s;
	t->status_column = m->status_column.s;
	t->external = m->external;
	t->published_status = m->published_status.s;
}

/* Re-points a catalogue error at the manifest line that caused it. */
static int
at_manifest(const struct jp_manifest *m, const struct jp_str *at, const struct jp_error *e,
            struct jp_error *err)
{
	if (e->code != JP_E_DATA)
		return jp_error_set(err, e->code, "%s", e->msg);
	return jp_manifest_error(m, at, err, "%s", e->msg);
}

int
jp_job_prepare(struct jp_catalog *c, const struct jp_manifest *m, const char *job,
               const struct jp_kv *sets, size_t n_sets, const char *dest_override,
               struct jp_row **row, struct jp_error *err)
{
	struct jp_jobtable t;
	struct jp_error e;
	size_t i;
	int r;

	*row = NULL;
	jp_jobtable_of(m, &t);
	jp_error_clear(&e);
	if (jp_catalog_prepare(c, &t, NULL, 0, &e) != JP_OK)
		return at_manifest(m, &m->table, &e, err);
	for (i = 0; i < m->n_outputs; i++) {
		const char *col = m->outputs[i].column.s;

		if (col != NULL && jp_catalog_prepare(c, &t, &col, 1, &e) != JP_OK)
			return at_manifest(m, &m->outputs[i].column, &e, err);
	}
	if ((r = jp_catalog_load_row(c, &t, job, row, err)) != JP_OK)
		return r;
	return jp_manifest_check_job(m, job, sets, n_sets, *row, dest_override, err);
}

/* Own table, in a catalogue jobpub has not written yet: preparing it creates jobpub's tables
 * (and the file).  The job's row is then the one any new catalogue gives it, so what needs the
 * row (${row.*} in the manifest and the destination) is checked against such a catalogue in
 * memory first: a usage error creates and changes nothing. */
static int
row_checks_first(struct run *R, struct jp_error *err)
{
	const struct jp_publish_opts *o = R->o;
	struct jp_catalog *mem = NULL;
	struct jp_row *row = NULL;
	int r;

	if ((r = jp_catalog_open(":memory:", 0, 0, &mem, err)) != JP_OK)
		return r;
	if ((r = jp_job_prepare(mem, R->m, o->job, o->sets, o->n_sets, o->dest, &row, err)) == JP_OK)
		r = jp_check_destination(R->m, o->job, o->sets, o->n_sets, o->dest, row, &R->dopts, err);
	jp_row_free(row);
	jp_catalog_close(mem);
	return r;
}

/* Catalogue and job row: everything the plan needs to know about the job.  A dry run reads a
 * catalogue that exists and never creates one. */
static int
open_catalog(struct run *R, struct jp_error *err)
{
	const struct jp_publish_opts *o = R->o;
	char why[256];
	int r;

	/* A location no engine claims is no catalogue to leave out of a dry run. */
	if ((r = jp_catalog_location_check(o->db, err)) != JP_OK)
		return r;
	/* A manifest naming an external table needs that table's catalogue: one that does not
	 * exist is an error (66), never created. */
	if (o->dry_run && !R->m->external && jp_catalog_exists(o->db, why, sizeof(why)) != 1)
		return jp_manifest_check_job(R->m, o->job, o->sets, o->n_sets, NULL, o->dest, err);
	/* Own table, no catalogue yet: see row_checks_first. */
	if (!o->dry_run && !R->m->external && jp_catalog_exists(o->db, why, sizeof(why)) == 0 &&
	    (r = row_checks_first(R, err)) != JP_OK)
		return r;
	jp_catalog_set_default_stop(jp_publish_interrupted);
	current_run = R;
	jp_dest_set_stop(readback_tick);
	if ((r = jp_catalog_open(o->db, o->db_timeout_ms,
	                         (o->dry_run ? JP_CATALOG_READONLY : 0) |
	                             (R->m->external ? JP_CATALOG_EXISTING : 0),
	                         &R->cat, err)) != JP_OK)
		return r;
	/* A database jobpub has not written yet (its tables and the jobs table are made now). */
	if (!o->dry_run && !R->m->external && jp_catalog_empty(R->cat) &&
	    (r = row_checks_first(R, err)) != JP_OK)
		return r;
	return jp_job_prepare(R->cat, R->m, o->job, o->sets, o->n_sets, o->dest, &R->row, err);
}

/* Called before the catalogue is opened (row NULL) and again with the job's row, before the
 * attempt begins: a malformed destination records nothing.  Expansion errors are the manifest
 * checks' to report. */
int
jp_check_destination(const struct jp_manifest *m, const char *job, const struct jp_kv *sets,
                     size_t n_sets, const char *dest_override, const struct jp_row *row,
                     const struct jp_dest_opts *dopts, struct jp_error *err)
{
	struct jp_vars v = {job, NULL, NULL, sets, n_sets, row, 0};
	const char *tmpl = dest_override != NULL ? dest_override : m->destination.s;
	char why[512], *url;
	struct jp_error e;
	size_t off = 0;
	int r;

	if (tmpl == NULL)
		return jp_error_set(err, JP_E_CONFIG,
		                    NAME ": no destination: give --dest URL, $JOBPUB_DEST or 'destination:' "
		                    "in %s",
		                    m->file);
	if (row == NULL && strstr(tmpl, "${row.") != NULL)
		return JP_OK;
	if ((url = jp_template_expand(tmpl, &v, why, sizeof(why), &off)) == NULL)
		return JP_OK;
	jp_error_clear(&e);
	r = jp_dest_check_url(url, &e);
	if (r == JP_OK && dopts != NULL)
		r = jp_dest_check_settings(url, dopts, err);
	free(url);
	if (r == JP_OK || e.code == JP_E_NONE)
		return r;
	if (dest_override == NULL && m->destination.line > 0)
		return jp_error_set(err, e.code, "%s:%d:%d: %s", m->file, m->destination.line,
		                    m->destination.col, e.msg);
	return jp_error_set(err, e.code, "%s", e.msg);
}

static int
record_success(struct run *R, struct jp_error *err)
{
	struct jp_outcome oc = {"published", 0, NULL, R->bytes, R->plan->n_items, 0,
	                        R->plan->destination, 0};
	struct jp_file_rec *recs;
	size_t i;
	int r;

	if ((recs = calloc(R->plan->n_items + 1, sizeof(*recs))) == NULL)
		return jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
	for (i = 0; i < R->plan->n_items; i++) {
		const struct pfile *f = &R->files[i];
		recs[i].output = f->it->out->name.s;
		recs[i].column = f->it->out->column.s;
		recs[i].local = f->it->local;
		recs[i].remote = f->url;
		recs[i].sha256 = f->hex;
		recs[i].size = f->it->size;
		recs[i].entries = f->entries;
		recs[i].attrs = f->it->attrs;
		recs[i].n_attrs = f->it->n_attrs;
		recs[i].destination = R->plan->destination;
		recs[i].key = f->it->key;
		recs[i].etag = f->etag[0] ? f->etag : NULL;
	}
	oc.duration_ms = jp_now_ms() - R->t0;
	r = jp_catalog_record_success(R->cat, &R->t, R->o->job, R->attempt,
	                              R->m->published_status.s, recs, R->plan->n_items, &oc, err);
	free(recs);
	return r;
}

static void
record_failure(struct run *R, const struct jp_error *why)
{
	struct jp_outcome oc = {interrupted ? "interrupted" : JP_STATUS_FAILED, why->code, why->msg,
	                        R->bytes, 0, jp_now_ms() - R->t0,
	                        R->plan ? R->plan->destination : NULL, 0};
	struct jp_error e;
	size_t i;

	/* A published file replaced by this attempt (--overwrite) keeps the new content. */
	for (i = 0; R->files != NULL && i < R->plan->n_items; i++)
		oc.replaced |= R->files[i].committed && R->files[i].replaced;
	/* The failure is worth its full lock wait, even after a signal. */
	jp_catalog_set_stop(R->cat, NULL);
	jp_error_clear(&e);
	if (jp_catalog_record_failure(R->cat, &R->t, R->o->job, R->attempt, &oc, &e) != JP_OK)
		jp_log_error("job %s: could not mark the job %s: %s", R->o->job, JP_STATUS_FAILED, e.msg);
}

static int
root_guard(const struct jp_publish_opts *o, struct jp_error *err)
{
	const char *paths[2] = {o->manifest, o->workdir ? o->workdir : "."};
	struct stat sb;
	size_t i;

	if (geteuid() != 0)
		return JP_OK;
	for (i = 0; i < 2; i++)
		if (stat(paths[i], &sb) == 0 && sb.st_uid != 0)
			return jp_error_set(err, JP_E_NOPERM,
			                    NAME ": refusing to publish as root: %s belongs to uid %u; run jobpub "
			                    "as that user (runuser -u USER -- jobpub ..., as the Slurm epilog does)",
			                    paths[i], (unsigned)sb.st_uid);
	return JP_OK;
}

int
jp_publish(const struct jp_publish_opts *o, struct jp_error *err)
{
	struct run R;
	char host[256] = "";
	char *sets = NULL;
	size_t i, n_identical = 0;
	uint64_t total = 0;
	int r;

	memset(&R, 0, sizeof(R));
	pthread_mutex_init(&R.mu, NULL);
	pthread_mutex_init(&R.catmu, NULL);
	R.o = o;
	R.t0 = jp_now_ms();
	R.attempt = -1;

	/* Root never acts on files a user controls (a recorded attempt, a spool entry): their
	 * manifest names where things go, and root would write there. */
	if ((r = root_guard(o, err)) != JP_OK)
		goto out;
	/* Before anything else: the manifest must be right, or nothing happens.  Then what the
	 * manifest asks of the catalogue and the job's row: refused before anything is recorded. */
	if ((r = jp_manifest_load(o->manifest, &R.m, err)) != JP_OK ||
	    (r = jp_manifest_check_job(R.m, o->job, o->sets, o->n_sets, NULL, o->dest, err)) != JP_OK)
		goto out;
	/* The destination and the settings it will be opened with (command line, then manifest):
	 * a configuration error is found here, before the catalogue is touched. */
	jp_publish_dest_opts(o, &R.dopts);
	if ((r = merge_options(&R, err)) != JP_OK ||
	    (r = jp_check_destination(R.m, o->job, o->sets, o->n_sets, o->dest, NULL,
	                              o->dry_run ? NULL : &R.dopts, err)) != JP_OK ||
	    (r = check_interrupt(err)) != JP_OK)
		goto out;
	jp_jobtable_of(R.m, &R.t);
	last_unrecorded = 0;
	if ((r = open_catalog(&R, err)) != JP_OK ||
	    (r = jp_check_destination(R.m, o->job, o->sets, o->n_sets, o->dest, R.row,
	                              o->dry_run ? NULL : &R.dopts, err)) != JP_OK ||
	    (r = check_interrupt(err)) != JP_OK) { /* a signal before the attempt: nothing recorded */
		last_unrecorded = err->code == JP_E_TEMPFAIL && !interrupted &&
		                  (R.cat == NULL || jp_catalog_busy(R.cat));
		goto out;
	}

	if (o->dry_run) {
		struct jp_plan_input in = {R.m,      o->workdir, o->job, o->sets, o->n_sets,
		                           R.row,     o->dest,    jp_publish_interrupted};

		if ((r = jp_plan_build(&in, &R.plan, err)) != JP_OK ||
		    (r = jp_dest_check_url(R.plan->destination, err)) != JP_OK)
			goto out;
		print_plan(&R, o->plan_out ? o->plan_out : stdout);
		goto out;
	}

	/* From here on every failure is recorded against the job. */
	if (jp_random_token(R.token) != 0) {
		r = jp_error_set(err, JP_E_SOFTWARE, NAME ": no randomness for the attempt token");
		goto out;
	}
	gethostname(host, sizeof(host) - 1);
	sets = sets_json(o);
	{
		char *wd = realpath(o->workdir ? o->workdir : ".", NULL);
		char *mf = realpath(o->manifest, NULL);
		struct jp_attempt a = {o->job, R.token, host, (long)getpid(), mf ? mf : o->manifest,
		                       wd ? wd : o->workdir, o->dest, sets, o->overwrite};
		char took[512];

		/* One publisher per job: the lease, the status "publishing" and the attempt, at once.
		 * Refused while another publisher is alive: nothing is recorded then. */
		r = jp_catalog_begin(R.cat, &R.t, &a, lease_s(o), &R.attempt, took, sizeof(took), err);
		free(wd);
		free(mf);
		if (r != JP_OK) {
			last_unrecorded = jp_catalog_busy(R.cat) && !interrupted;
			goto out;
		}
		if (took[0] != '\0')
			jp_log_warn("job %s: took over the lease of %s", o->job, took);
		R.renewed_ms = jp_now_ms();
	}
	{
		struct jp_plan_input in = {R.m,      o->workdir, o->job, o->sets, o->n_sets,
		                           R.row,     o->dest,    jp_publish_interrupted};

		if ((r = jp_plan_build(&in, &R.plan, err)) != JP_OK || (r = check_interrupt(err)) != JP_OK)
			goto failed;
		{
			struct jp_error e;
			jp_error_clear(&e);
			jp_catalog_attempt_destination(R.cat, R.attempt, R.plan->destination, &e);
		}
		for (i = 0; i < R.plan->n_skipped; i++)
			jp_log_info("job %s: optional output %s is absent; skipped", o->job,
			            R.plan->skipped[i]->name.s);
		if ((r = jp_dest_open(R.plan->destination, &R.dopts, &R.dest, err)) != JP_OK ||
		    (r = check_interrupt(err)) != JP_OK)
			goto failed;
	}
	if ((R.files = calloc(R.plan->n_items + 1, sizeof(*R.files))) == NULL) {
		r = jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
		goto failed;
	}
	if ((r = open_lanes(&R, err)) != JP_OK || (r = check_interrupt(err)) != JP_OK)
		goto failed;
	watch_start(&R);
	for (i = 0; i < R.plan->n_items; i++) {
		R.files[i].it = &R.plan->items[i];
		if ((R.files[i].url = jp_dest_key_url(R.dest, R.plan->items[i].key)) == NULL) {
			r = jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
			goto failed;
		}
	}
	if ((r = precheck(&R, err)) != JP_OK || (r = stage_all(&R, err)) != JP_OK ||
	    (r = commit_all(&R, err)) != JP_OK || (r = check_interrupt(err)) != JP_OK)
		goto failed;

	watch_stop(&R);
	/* Files are in place.  If the catalogue cannot take the record now, they stay: they are
	 * complete, and a re-publish finds them identical and adopts them. */
	if ((r = record_success(&R, err)) != JP_OK) {
		jp_log_error("job %s: all %zu files are published under %s but the catalogue could not "
		             "be updated; publish again to record them",
		             o->job, R.plan->n_items, R.plan->destination);
		/* Best effort: if the catalogue takes a smaller write, the job says failed_storage and
		 * the attempt its reason, rather than staying "running". */
		record_failure(&R, err);
		if (err->code != JP_E_TEMPFAIL) {
			char msg[JP_ERRMSG_MAX];
			snprintf(msg, sizeof(msg), "%s", err->msg);
			jp_error_clear(err);
			jp_error_set(err, JP_E_TEMPFAIL, "%s", msg);
		}
		goto out;
	}
	for (i = 0; i < R.plan->n_items; i++) {
		n_identical += R.files[i].identical;
		total += R.files[i].it->size; /* archives have a size only once made */
	}
	{
		char sz[32];
		jp_log_info("job %s: published %zu files (%s%s) to %s in %.1f s", o->job,
		            R.plan->n_items, jp_human_size(total, sz, sizeof(sz)),
		            n_identical == R.plan->n_items && n_identical > 0 ? ", all already there"
		            : n_identical > 0 ? ", some already there" : "",
		            R.plan->destination, (double)(jp_now_ms() - R.t0) / 1000.0);
		event(&R, "published", NULL, jp_now_ms() - R.t0, NULL);
	}
	r = JP_OK;
	goto out;

failed:
	/* The rollback needs the connections: no more cutting. */
	watch_stop(&R);
	/* After a signal, whatever failed (a connection cut short by it, most often) is part of
	 * the interruption: the attempt says so, and the exit status is 75. */
	if (interrupted &&
	    strncmp(err->msg, NAME ": interrupted by ", strlen(NAME ": interrupted by ")) != 0) {
		jp_log_info("job %s: after the signal: %s", o->job, err->msg);
		jp_error_clear(err);
		r = check_interrupt(err);
	}
	/* Every rollback, not only a signal's: a signal that comes during the rollback of an
	 * ordinary failure must not cut it short with the bound of a publish that did not stop. */
	if (cleanup_hook != NULL)
		cleanup_hook();
	/* A rollback that failed too does not change the reason told; its severity counts. */
	r = jp_worst(r, rollback(&R));
	{
		struct jp_event ev = {"failed", o->job, NULL, NULL, NULL, (int64_t)R.bytes, NULL,
		                      jp_now_ms() - R.t0, err->code, err->msg};
		jp_log_event(&ev);
	}
	record_failure(&R, err);
out:
	free(sets);
	run_free(&R);
	if (r != JP_OK && err->code == JP_E_NONE)
		jp_error_set(err, JP_E_SOFTWARE, NAME ": internal error: failure without a reason");
	/* The class of the first reason decides between RETRY and FAILED (a rollback or a signal
	 * may have rewritten it); a dead connection stays FATAL. */
	if (r == JP_OK)
		return JP_OK;
	return r == JP_FATAL ? JP_FATAL : jp_severity_of(err->code);
}
