/*
 * republish.c - choosing the jobs to publish again and publishing them in child processes
 * (republish.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libfyaml.h>

#include "catalog.h"
#include "log.h"
#include "republish.h"
#include "spool.h"
#include "util.h"

/* A job to publish, from its latest attempt or from a spool entry. */
struct todo {
	char *job, *manifest, *workdir, *dest, *sets, *status;
	char *spoolkey;                /* its spool entry, removed once it is published */
	struct jp_spool_entry *entry;  /* found through that entry only: its --set values */
};

/* The latest attempt of a job of the catalogue, for the spool entries. */
struct seen {
	char *job, *outcome, *started;
};

struct pick {
	struct jp_catalog *cat;
	const char *status;      /* NULL: any */
	int orphans;             /* also jobs left "publishing" by a publisher that is gone */
	int overwrite;           /* a published job's entry is not done */
	const char *const *jobs; /* NULL-terminated, or NULL: all */
	const char *since;       /* "" or an ISO time */
	struct todo *v;
	size_t n;
	struct seen *seen;
	size_t n_seen;
	const char *db_real;     /* the catalogue, as spool entries record it */
	const char *spooldir;
	int oom;                 /* a list stopped for lack of memory: the choice is incomplete */
};

/* The running children, for jp_republish_interrupt to pass a signal on. */
static volatile sig_atomic_t stopping;
static pid_t *volatile running_pids;
static volatile int n_running_pids;

static char *
dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int
wanted(const char *const *jobs, const char *job)
{
	size_t i;

	if (jobs == NULL)
		return 1;
	for (i = 0; jobs[i] != NULL; i++)
		if (strcmp(jobs[i], job) == 0)
			return 1;
	return 0;
}

static void
todo_free(struct todo *t)
{
	free(t->job);
	free(t->manifest);
	free(t->workdir);
	free(t->dest);
	free(t->sets);
	free(t->status);
	free(t->spoolkey);
	jp_spool_entry_free(t->entry);
}

static int
select_job(void *arg, const struct jp_job_brief *b)
{
	struct pick *p = arg;
	struct todo *v;
	struct seen *sv;

	if ((sv = realloc(p->seen, (p->n_seen + 1) * sizeof(*sv))) == NULL)
		goto oom;
	p->seen = sv;
	sv[p->n_seen].job = dup0(b->job);
	sv[p->n_seen].outcome = dup0(b->outcome);
	sv[p->n_seen].started = dup0(b->started_at);
	p->n_seen++;
	if (sv[p->n_seen - 1].job == NULL || (b->outcome && !sv[p->n_seen - 1].outcome) ||
	    (b->started_at && !sv[p->n_seen - 1].started))
		goto oom;
	if (!wanted(p->jobs, b->job))
		return 0;
	if (p->status != NULL && (b->status == NULL || strcmp(b->status, p->status) != 0) &&
	    !(p->orphans && b->status != NULL && strcmp(b->status, JP_STATUS_PUBLISHING) == 0 &&
	      !jp_catalog_job_leased(p->cat, b->job)))
		return 0;
	if (p->since[0] != '\0' && (b->started_at == NULL || strcmp(b->started_at, p->since) < 0))
		return 0;
	if (b->manifest == NULL || b->workdir == NULL)
		return 0; /* a dry run never recorded: nothing to repeat */
	if ((v = realloc(p->v, (p->n + 1) * sizeof(*v))) == NULL)
		goto oom;
	p->v = v;
	memset(&v[p->n], 0, sizeof(v[p->n]));
	v[p->n].job = dup0(b->job);
	v[p->n].manifest = dup0(b->manifest);
	v[p->n].workdir = dup0(b->workdir);
	v[p->n].dest = dup0(b->destination);
	v[p->n].sets = dup0(b->sets);
	v[p->n].status = dup0(b->status);
	p->n++;
	if (!v[p->n - 1].job || !v[p->n - 1].manifest || !v[p->n - 1].workdir ||
	    (b->destination && !v[p->n - 1].dest) || (b->sets && !v[p->n - 1].sets) ||
	    (b->status && !v[p->n - 1].status))
		goto oom;
	return 0;
oom:
	/* Not a shorter list: republish must not skip a job for lack of memory. */
	p->oom = 1;
	return 1;
}

/* The state Slurm gives the job an entry is filed under (enqueue files it under $SLURM_JOB_ID),
 * into state: "" when Slurm does not list it (ended, or no Slurm here).  A job Slurm still
 * lists (RUNNING, COMPLETING while its epilog runs, ...) has not asked for a retry: its outputs
 * are still being written, or its epilog is publishing them.  `squeue` is asked, bounded to
 * 10 s; when it is missing, fails or says nothing, the job counts as ended. */
static void
slurm_state(const char *key, char *state, size_t len)
{
	char buf[128];
	struct pollfd pfd;
	size_t n = 0, i;
	pid_t pid;
	int fds[2], st, waited = 0;

	state[0] = '\0';
	/* Slurm job IDs: digits, and for array tasks digits_digits. */
	for (i = 0; key[i] != '\0'; i++)
		if (!((key[i] >= '0' && key[i] <= '9') || (key[i] == '_' && i > 0)))
			return;
	if (i == 0 || pipe(fds) != 0)
		return;
	if ((pid = fork()) == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, STDIN_FILENO);
		dup2(fds[1], STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		close(fds[0]);
		execlp("squeue", "squeue", "-h", "-j", key, "-o", "%T", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return;
	}
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while (n < sizeof(buf) - 1 && waited < 10000) {
		ssize_t r;
		if (poll(&pfd, 1, 100) == 0) {
			waited += 100;
			continue;
		}
		if ((r = read(fds[0], buf + n, sizeof(buf) - 1 - n)) <= 0)
			break;
		n += (size_t)r;
	}
	close(fds[0]);
	if (waited >= 10000)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (waited >= 10000 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(state, len, "%s", buf);
}

/* 1 when the request of entry e is done or under way by what the catalogue says: an attempt
 * since the entry was written published the job or still runs under a live lease; or the job
 * was published since and a later attempt failed (the local file changed: a conflict), whose
 * published files stay, the request done (retrying it would fail forever), unless new content
 * is wanted (overwrite). */
static int
entry_done(const struct pick *p, const struct jp_spool_entry *e)
{
	const struct seen *last = NULL;
	size_t i;

	for (i = 0; i < p->n_seen; i++)
		if (strcmp(p->seen[i].job, e->job) == 0)
			last = &p->seen[i];
	if (last != NULL && last->outcome != NULL && last->started != NULL &&
	    (e->created == NULL || strcmp(last->started, e->created) >= 0) &&
	    (strcmp(last->outcome, "published") == 0 ||
	     (strcmp(last->outcome, "running") == 0 && jp_catalog_job_leased(p->cat, e->job))))
		return 1; /* `jobpub spool --clean` removes done ones */
	return !p->overwrite && jp_catalog_published_since(p->cat, e->job, e->created);
}

/* A spool entry: a job that asked to be published.  Its catalogue job is taken when it is for
 * this catalogue, passes jobs and since, and is not published since the entry was written
 * nor being published: also when its row was never marked (the catalogue was locked, jobpub
 * missing, the manifest broken after enqueue) and so has no attempt to repeat. */
static int
select_entry(void *arg, const char *key, const struct jp_spool_entry *e,
             const struct jp_error *why, long long mtime)
{
	struct pick *p = arg;
	struct todo t, *v;
	struct jp_error err;
	char *real, state[128];
	size_t i;
	int same;

	(void)mtime;
	if (e == NULL) {
		/* Shown even at republish's quiet level: a request nobody can publish as it is. */
		jp_log_error("%s (entry skipped)", why->msg);
		return 0;
	}
	if (e->db == NULL)
		return 0;
	real = jp_catalog_locator_canonical(e->db);
	same = strcmp(real != NULL ? real : e->db, p->db_real) == 0;
	free(real);
	if (!same || !wanted(p->jobs, e->job))
		return 0;
	if (p->since[0] != '\0' && (e->created == NULL || strcmp(e->created, p->since) < 0))
		return 0;
	for (i = 0; i < p->n; i++)
		if (strcmp(p->v[i].job, e->job) == 0) {
			if (p->v[i].spoolkey == NULL && (p->v[i].spoolkey = strdup(key)) == NULL) {
				p->oom = 1;
				return 1;
			}
			return 0;
		}
	if (entry_done(p, e))
		return 0;
	slurm_state(key, state, sizeof(state));
	if (state[0] != '\0') {
		jp_log_error("job %s: its Slurm job %s is %s: left to it and its epilog (spool "
		             "entry %s/%s.json)", e->job, key, state, p->spooldir, key);
		return 0;
	}
	memset(&t, 0, sizeof(t));
	/* Its own copy, read again: e belongs to the listing. */
	jp_error_clear(&err);
	if (jp_spool_read(p->spooldir, key, &t.entry, &err) != JP_OK) {
		jp_log_warn("%s", err.msg);
		return 0;
	}
	t.job = strdup(e->job);
	t.manifest = strdup(e->manifest);
	t.workdir = strdup(e->workdir);
	t.dest = dup0(e->dest);
	t.status = jp_asprintf("spooled as %s", key);
	t.spoolkey = strdup(key);
	if (!t.job || !t.manifest || !t.workdir || (e->dest && !t.dest) || !t.status ||
	    !t.spoolkey || (v = realloc(p->v, (p->n + 1) * sizeof(*p->v))) == NULL) {
		todo_free(&t);
		p->oom = 1;
		return 1;
	}
	p->v = v;
	p->v[p->n++] = t;
	return 0;
}

/* The jobs to publish into p (the catalogue's, then the spool's), or err. */
static int
choose(const struct jp_republish_opts *o, struct pick *p, char **spooldir, char **db_real,
       struct jp_error *err)
{
	const char *db = o->publish->db;
	int no_db = 0, r;

	p->jobs = o->jobs;
	p->since = o->since != NULL ? o->since : "";
	p->status = o->status ? o->status : o->jobs ? NULL : JP_STATUS_FAILED;
	/* By default a job whose publisher was killed (SIGKILL, a node crash) counts as failed. */
	p->orphans = o->status == NULL && o->jobs == NULL;
	p->overwrite = o->publish->overwrite;
	if ((r = jp_catalog_open(db, o->publish->db_timeout_ms, JP_CATALOG_READONLY, &p->cat,
	                         err)) != JP_OK &&
	    access(db, F_OK) != 0 && errno == ENOENT) {
		/* No catalogue yet (jobpub's own table mode creates it on the first publish): only
		 * spool entries can name jobs, and their publish creates it.  Said, because a typo
		 * in --db looks the same (it used to end with "0 published", exit 0). */
		jp_error_clear(err);
		p->cat = NULL;
		no_db = 1;
	} else if (r != JP_OK || (r = jp_catalog_jobs(p->cat, select_job, p, err)) != JP_OK) {
		goto out;
	}
	/* The spool's entries for this catalogue (not with a status: they have none yet). */
	*spooldir = o->spool != NULL ? strdup(o->spool) : jp_spool_dir();
	/* As enqueue records it (the catalogue may not exist yet). */
	*db_real = jp_catalog_locator_canonical(db);
	if (*spooldir != NULL && o->status == NULL) {
		struct jp_error e;

		p->db_real = *db_real != NULL ? *db_real : db;
		p->spooldir = *spooldir;
		jp_error_clear(&e);
		/* Shown even at republish's quiet level: the spool's requests were not looked at. */
		if (jp_spool_list(*spooldir, select_entry, p, &e) != JP_OK)
			jp_log_error("%s (spool entries not considered)", e.msg);
	}
	if (p->oom || (*spooldir == NULL && o->status == NULL)) {
		r = jp_error_set(err, JP_E_SOFTWARE, "republish: out of memory");
		goto out;
	}
	if (no_db && p->n == 0) {
		/* Nothing names a job of it either: most likely a typo, which must not pass for
		 * "nothing to do" in a script (66, as status, gc and verify answer). */
		if (*spooldir != NULL && o->status == NULL)
			r = jp_error_set(err, JP_E_NOINPUT, "republish: catalogue %s does not exist, and "
			                 "no entry of the spool %s is for it", db, *spooldir);
		else
			r = jp_error_set(err, JP_E_NOINPUT, "republish: catalogue %s does not exist", db);
		goto out;
	}
	if (no_db) /* through jp_log_error: republish logs quietly, and this must be seen */
		jp_log_error("republish: catalogue %s does not exist: only spool entries considered",
		             db);
	r = JP_OK;
out:
	/* The children open their own connections: none is carried across fork(). */
	jp_catalog_close(p->cat);
	p->cat = NULL;
	return r;
}

/* The recorded --set values ({"model": "kt"}) back into pairs; libfyaml reads JSON. */
static int
parse_sets(const char *json, struct fy_document **doc, struct jp_kv **out, size_t *n)
{
	struct fy_node *root;
	struct fy_node_pair *p;
	void *it = NULL;

	*out = NULL;
	*n = 0;
	*doc = NULL;
	if (json == NULL || json[0] == '\0')
		return 0;
	if ((*doc = fy_document_build_from_string(NULL, json, FY_NT)) == NULL ||
	    (root = fy_document_root(*doc)) == NULL || fy_node_get_type(root) != FYNT_MAPPING)
		return -1;
	*out = calloc((size_t)fy_node_mapping_item_count(root) + 1, sizeof(**out));
	if (*out == NULL)
		return -1;
	while ((p = fy_node_mapping_iterate(root, &it)) != NULL) {
		const char *k = fy_node_get_scalar0(fy_node_pair_key(p));
		const char *v = fy_node_get_scalar0(fy_node_pair_value(p));

		if (k == NULL || v == NULL)
			return -1;
		(*out)[*n].name = k;
		(*out)[*n].value = v;
		(*n)++;
	}
	return 0;
}

/* The child: one publish with the options `base` and what the attempt or spool entry
 * recorded; its result on fd `out` as "CODE\nMESSAGE"; its exit code. */
static int
run_one(const struct todo *t, const struct jp_publish_opts *base, const char *spooldir, int out)
{
	struct jp_publish_opts o = *base;
	struct fy_document *doc = NULL;
	struct jp_kv *sets = NULL;
	struct jp_error err;
	char *line;
	size_t n_sets = 0;
	int rc;

	jp_error_clear(&err);
	if (t->entry != NULL) {
		if ((sets = calloc(t->entry->n_sets + 1, sizeof(*sets))) != NULL && t->entry->n_sets)
			memcpy(sets, t->entry->sets, t->entry->n_sets * sizeof(*sets));
		n_sets = t->entry->n_sets;
	}
	if (t->entry == NULL && parse_sets(t->sets, &doc, &sets, &n_sets) != 0) {
		jp_error_set(&err, JP_E_DATA, "republish: its recorded --set values are not readable: %s", t->sets);
		rc = err.code;
	} else {
		o.job = t->job;
		o.manifest = t->manifest;
		o.workdir = t->workdir;
		o.dest = t->dest;
		o.sets = sets;
		o.n_sets = n_sets;
		rc = jp_exit_code(jp_publish(&o, &err), &err);
		/* Published: the request is done, as after `publish --spool`. */
		if (rc == 0 && t->spoolkey != NULL && spooldir != NULL) {
			struct jp_error e;
			jp_error_clear(&e);
			if (jp_spool_remove(spooldir, t->spoolkey, &e) != JP_OK)
				jp_log_warn("%s", e.msg);
		}
	}
	/* One write, under PIPE_BUF (the message is at most JP_ERRMSG_MAX). */
	line = jp_asprintf("%d\n%s", rc, rc ? err.msg : "");
	if (line == NULL || write(out, line, strlen(line)) < 0)
		rc = rc ? rc : 74;
	free(line);
	free(sets);
	fy_document_destroy(doc);
	return rc;
}

void
jp_republish_interrupt(int sig)
{
	int i;

	stopping = sig;
	jp_publish_interrupt(sig);
	/* kill(2) is async-signal-safe: every running publish stops and records itself. */
	for (i = 0; running_pids != NULL && i < n_running_pids; i++)
		if (running_pids[i] > 0)
			kill(running_pids[i], sig);
}

/* The pool: a slot per running child, its pid and the read end of its result pipe. */
struct pool {
	const struct jp_republish_opts *o;
	const struct pick *p;
	const char *spooldir;
	pid_t *pids;   /* 0: a free slot */
	int *fds;
	size_t *jobs;  /* index into p->v */
	int size;
	jp_republish_fn fn;
	void *arg;
	struct jp_republish_result *res;
};

/* Starts the child for job t.  0 started; -1 not (no process or pipe: the rest stay undone). */
static int
start(struct pool *pl, size_t job)
{
	const struct todo *t = &pl->p->v[job];
	sigset_t stopset, old;
	int fds[2], i, k;
	pid_t pid;

	for (i = 0; i < pl->size && pl->pids[i] != 0; i++)
		;
	if (pipe(fds) != 0)
		return -1;
	/* A signal between fork() and pids[i] = pid would not reach the child: it waits until the
	 * child is recorded (and the child installs its own handlers). */
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGINT);
	sigaddset(&stopset, SIGTERM);
	sigprocmask(SIG_BLOCK, &stopset, &old);
	if (stopping) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if ((pid = fork()) == 0) {
		/* A publish of its own: a signal to it is not passed on to its siblings. */
		running_pids = NULL;
		n_running_pids = 0;
		close(fds[0]);
		for (k = 0; k < pl->size; k++)
			if (pl->pids[k] != 0)
				close(pl->fds[k]);
		if (pl->o->child != NULL)
			pl->o->child();
		_exit(run_one(t, pl->o->publish, pl->spooldir, fds[1]));
	}
	close(fds[1]);
	if (pid > 0) {
		pl->pids[i] = pid;
		pl->fds[i] = fds[0];
		pl->jobs[i] = job;
	} else {
		close(fds[0]);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid > 0 ? 0 : -1;
}

/* Reads what the child of slot i said (it has ended) and reports it. */
static void
collect(struct pool *pl, int i, int code)
{
	struct jp_republish_report rep;
	char buf[JP_ERRMSG_MAX + 64], *msg;
	size_t n = 0;
	ssize_t r;

	while (n < sizeof(buf) - 1 &&
	       ((r = read(pl->fds[i], buf + n, sizeof(buf) - 1 - n)) > 0 || (r < 0 && errno == EINTR)))
		if (r > 0)
			n += (size_t)r;
	buf[n] = '\0';
	close(pl->fds[i]);
	pl->pids[i] = 0;
	if (code == 0)
		pl->res->published++;
	else if (pl->res->failed++, pl->res->first_code == 0)
		pl->res->first_code = code;
	if ((msg = strchr(buf, '\n')) == NULL || pl->fn == NULL)
		return; /* died without a word (a signal) */
	*msg++ = '\0';
	memset(&rep, 0, sizeof(rep));
	rep.what = JP_REPUBLISH_DONE;
	rep.job = pl->p->v[pl->jobs[i]].job;
	rep.code = atoi(buf);
	rep.message = msg;
	pl->fn(pl->arg, &rep);
}

/* Publishes p's jobs, o->parallel at a time, until all are done or a stop. */
static void
run_pool(struct pool *pl)
{
	size_t next = 0, running = 0;
	int i, st;
	pid_t pid;

	while ((next < pl->p->n && !stopping) || running > 0) {
		while (running < (size_t)pl->size && next < pl->p->n && !stopping) {
			if (start(pl, next) != 0)
				break;
			next++;
			running++;
		}
		if (running == 0)
			break;
		if ((pid = waitpid(-1, &st, 0)) < 0)
			continue;
		for (i = 0; i < pl->size && pl->pids[i] != pid; i++)
			;
		if (i == pl->size)
			continue; /* not one of ours (squeue is waited for where it runs) */
		running--;
		collect(pl, i, WIFEXITED(st) ? WEXITSTATUS(st) : 70);
	}
	pl->res->failed += pl->p->n - next;
}

static void
plan(const struct pick *p, jp_republish_fn fn, void *arg)
{
	struct jp_republish_report rep;
	size_t i;

	for (i = 0; i < p->n && fn != NULL; i++) {
		memset(&rep, 0, sizeof(rep));
		rep.what = JP_REPUBLISH_PLANNED;
		rep.job = p->v[i].job;
		rep.status = p->v[i].status;
		rep.manifest = p->v[i].manifest;
		rep.workdir = p->v[i].workdir;
		rep.dest = p->v[i].dest;
		fn(arg, &rep);
	}
}

int
jp_republish(const struct jp_republish_opts *o, jp_republish_fn fn, void *arg,
             struct jp_republish_result *res, struct jp_error *err)
{
	struct pick p;
	struct pool pl;
	char *spooldir = NULL, *db_real = NULL;
	size_t i;
	int r;

	memset(&p, 0, sizeof(p));
	memset(&pl, 0, sizeof(pl));
	memset(res, 0, sizeof(*res));
	stopping = 0;
	if ((r = choose(o, &p, &spooldir, &db_real, err)) != JP_OK)
		goto out;
	res->jobs = p.n;
	if (o->dry_run) {
		plan(&p, fn, arg);
		goto out;
	}
	if (o->started != NULL)
		o->started();
	fflush(stdout);
	pl.o = o;
	pl.p = &p;
	pl.spooldir = spooldir;
	pl.size = o->parallel > 0 ? o->parallel : 1;
	pl.fn = fn;
	pl.arg = arg;
	pl.res = res;
	pl.pids = calloc((size_t)pl.size, sizeof(*pl.pids));
	pl.fds = calloc((size_t)pl.size, sizeof(*pl.fds));
	pl.jobs = calloc((size_t)pl.size, sizeof(*pl.jobs));
	if (pl.pids == NULL || pl.fds == NULL || pl.jobs == NULL) {
		r = jp_error_set(err, JP_E_SOFTWARE, "republish: out of memory");
		goto out;
	}
	n_running_pids = pl.size;
	running_pids = pl.pids;
	run_pool(&pl);
	running_pids = NULL;
	n_running_pids = 0;
	res->interrupted = stopping;
	r = res->first_code != 0 ? jp_severity_of(res->first_code) : stopping ? JP_RETRY : JP_OK;
out:
	for (i = 0; i < p.n; i++)
		todo_free(&p.v[i]);
	free(p.v);
	for (i = 0; i < p.n_seen; i++) {
		free(p.seen[i].job);
		free(p.seen[i].outcome);
		free(p.seen[i].started);
	}
	free(p.seen);
	free(pl.pids);
	free(pl.fds);
	free(pl.jobs);
	free(spooldir);
	free(db_real);
	return r;
}
