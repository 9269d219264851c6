/*
 * cmd-republish.c - `jobpub republish`: publish again the jobs that failed, with what their
 * last attempt recorded (manifest, workdir, destination, --set values).
 *
 * Each job runs in a child process (--parallel at once): a publish is a whole process's work
 * (signals, its catalogue connection, its lanes), and one job's crash cannot take the others.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libfyaml.h>

#include "catalog.h"
#include "cmd.h"
#include "json.h"
#include "log.h"
#include "publish.h"
#include "spool.h"
#include "util.h"

static int cmd_republish(int argc, char **argv);

const struct jp_cmd jp_cmd_republish = {
	.name = "republish",
	.summary = "Publish again the jobs whose last attempt failed, as that attempt was recorded.",
	.usage = "jobpub republish [--db FILE] [--status STATUS] [--job ID]... [--since TIME]\n"
	         "                        [--parallel N] [--overwrite] [--dry-run] [--json]\n"
	         "                        [--db-timeout SECONDS] [--spool DIR] [--retries N]\n"
	         "                        [--timeout SECONDS] [--stall SECONDS] [--identity FILE]\n"
	         "                        [--known-hosts FILE] [--accept-new-host-key]\n"
	         "                        [--s3-endpoint URL] [--part-size SIZE]",
	.options =
		JP_CMD_HELP_DB
		"      --status STATUS       jobs whose status is STATUS (default failed_storage, and\n"
		"                            publishing when its publisher is gone; with --job, any\n"
		"                            status unless --status is given)\n"
		"      --job ID              this job (repeatable)\n"
		"      --since TIME          jobs whose last attempt started at or after TIME\n"
		"                            (2026-11-20, 2026-11-20T10:00:00Z, or an age: 24h, 2d)\n"
		"      --parallel N          publish N jobs at once (default 1)\n"
		"      --overwrite           replace final names that hold other content (a local file\n"
		"                            changed since the job was published) instead of failing\n"
		"                            with a conflict (exit 69)\n"
		"  -n, --dry-run             list the jobs; publish nothing\n"
		"      --json                one JSON document on stdout instead of lines\n"
		JP_CMD_HELP_DB_TIMEOUT
		"      --spool DIR           the spool whose entries are jobs to publish too (default:\n"
		"                            $JOBPUB_SPOOL, else /var/spool/jobpub for root, else\n"
		"                            ~/.local/state/jobpub/spool)\n"
		"An attempt records no credential or connection setting: give them again, as to\n"
		"publish (they apply to every job republished):\n"
		JP_CMD_CONN_HELP
		JP_CMD_HELP_HELP
		"Also publishes the jobs of this catalogue that have a spool entry and are not\n"
		"published (unless --status is given): those whose row could not even be marked.  A\n"
		"job published removes its spool entry.  A catalogue that does not exist is 66 when\n"
		"no spool entry is for it either.\n"
		"One line per job, then a summary.  Exit 0 when every job is published, else the exit\n"
		"code of the first job that still fails.\n",
	.exec = cmd_republish,
};

struct pick {
	struct jp_catalog *cat;
	const char *status;      /* NULL: any */
	int orphans;             /* also jobs left "publishing" by a publisher that is gone */
	int overwrite;           /* --overwrite: a published job's entry is not done */
	char **jobs;             /* NULL-terminated, or NULL: all */
	char since[32];          /* "" or an ISO time */
	struct todo {
		char *job, *manifest, *workdir, *dest, *sets, *status;
		char *spoolkey;                /* its spool entry, removed once it is published */
		struct jp_spool_entry *entry;  /* found through that entry only: its --set values */
	} *v;
	size_t n;
	/* The latest attempt of every job of the catalogue, for the spool entries. */
	struct seen {
		char *job, *outcome, *started;
	} *seen;
	size_t n_seen;
	const char *db_real;     /* the catalogue, as spool entries record it */
	const char *spooldir;
	int skip_spool_errors;
};

/* The spool directory whose entries a successful publish removes (set before the fork). */
static const char *spool_dir;

static char *
dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int
select_job(void *arg, const struct jp_job_brief *b)
{
	struct pick *p = arg;
	struct todo *v;
	struct seen *sv;
	size_t i;

	if ((sv = realloc(p->seen, (p->n_seen + 1) * sizeof(*sv))) == NULL)
		return 1;
	p->seen = sv;
	sv[p->n_seen].job = dup0(b->job);
	sv[p->n_seen].outcome = dup0(b->outcome);
	sv[p->n_seen].started = dup0(b->started_at);
	p->n_seen++;
	if (p->jobs != NULL) {
		for (i = 0; p->jobs[i] != NULL && strcmp(p->jobs[i], b->job) != 0; i++)
			;
		if (p->jobs[i] == NULL)
			return 0;
	}
	if (p->status != NULL && (b->status == NULL || strcmp(b->status, p->status) != 0) &&
	    !(p->orphans && b->status != NULL && strcmp(b->status, JP_STATUS_PUBLISHING) == 0 &&
	      !jp_catalog_job_leased(p->cat, b->job)))
		return 0;
	if (p->since[0] != '\0' && (b->started_at == NULL || strcmp(b->started_at, p->since) < 0))
		return 0;
	if (b->manifest == NULL || b->workdir == NULL)
		return 0; /* a dry run never recorded: nothing to repeat */
	if ((v = realloc(p->v, (p->n + 1) * sizeof(*v))) == NULL)
		return 1;
	p->v = v;
	v[p->n].job = dup0(b->job);
	v[p->n].manifest = dup0(b->manifest);
	v[p->n].workdir = dup0(b->workdir);
	v[p->n].dest = dup0(b->destination);
	v[p->n].sets = dup0(b->sets);
	v[p->n].status = dup0(b->status);
	v[p->n].spoolkey = NULL;
	v[p->n].entry = NULL;
	p->n++;
	return 0;
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

/* A spool entry: a job that asked to be published.  Its catalogue job is taken when it is for
 * this catalogue, passes --job and --since, and is not published since the entry was written
 * nor being published: also when its row was never marked (the catalogue was locked, jobpub
 * missing, the manifest broken after enqueue) and so has no attempt to repeat. */
static int
select_entry(void *arg, const char *key, const struct jp_spool_entry *e,
             const struct jp_error *why, long long mtime)
{
	struct pick *p = arg;
	struct todo *v;
	const struct seen *last = NULL;
	char *real;
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
	if (!same)
		return 0;
	if (p->jobs != NULL) {
		for (i = 0; p->jobs[i] != NULL && strcmp(p->jobs[i], e->job) != 0; i++)
			;
		if (p->jobs[i] == NULL)
			return 0;
	}
	if (p->since[0] != '\0' && (e->created == NULL || strcmp(e->created, p->since) < 0))
		return 0;
	for (i = 0; i < p->n; i++)
		if (strcmp(p->v[i].job, e->job) == 0) {
			if (p->v[i].spoolkey == NULL)
				p->v[i].spoolkey = strdup(key);
			return 0;
		}
	for (i = 0; i < p->n_seen; i++)
		if (strcmp(p->seen[i].job, e->job) == 0)
			last = &p->seen[i];
	if (last != NULL && last->outcome != NULL && last->started != NULL &&
	    (e->created == NULL || strcmp(last->started, e->created) >= 0) &&
	    (strcmp(last->outcome, "published") == 0 ||
	     (strcmp(last->outcome, "running") == 0 && jp_catalog_job_leased(p->cat, e->job))))
		return 0; /* done since, or under way: `jobpub spool --clean` removes done ones */
	/* Published since, then a later attempt failed (the local file changed: a conflict): the
	 * published files stay, the request is done; retrying it would fail forever.  Unless new
	 * content is wanted (--overwrite). */
	if (!p->overwrite && jp_catalog_published_since(p->cat, e->job, e->created))
		return 0;
	{
		char state[128];
		slurm_state(key, state, sizeof(state));
		if (state[0] != '\0') {
			jp_log_error("job %s: its Slurm job %s is %s: left to it and its epilog (spool "
			             "entry %s/%s.json)", e->job, key, state, p->spooldir, key);
			return 0;
		}
	}
	if ((v = realloc(p->v, (p->n + 1) * sizeof(*v))) == NULL)
		return 1;
	p->v = v;
	memset(&v[p->n], 0, sizeof(v[p->n]));
	v[p->n].job = strdup(e->job);
	v[p->n].manifest = strdup(e->manifest);
	v[p->n].workdir = strdup(e->workdir);
	v[p->n].dest = dup0(e->dest);
	v[p->n].status = jp_asprintf("spooled as %s", key);
	v[p->n].spoolkey = strdup(key);
	/* Its own copy, read again: e belongs to the listing. */
	{
		struct jp_error err;
		jp_error_clear(&err);
		if (jp_spool_read(p->spooldir, key, &v[p->n].entry, &err) != JP_OK) {
			jp_log_warn("%s", err.msg);
			free(v[p->n].job);
			free(v[p->n].manifest);
			free(v[p->n].workdir);
			free(v[p->n].dest);
			free(v[p->n].status);
			free(v[p->n].spoolkey);
			return 0;
		}
	}
	p->n++;
	return 0;
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

/* The child: one publish with the options `base` (the command line's) and what the attempt
 * or spool entry recorded, one line on `out` (stdout, or the --json file as
 * "job<TAB>code<TAB>message"), its exit code. */
static int
run_one(const struct todo *t, const struct jp_publish_opts *base, int out, int json)
{
	struct jp_publish_opts o = *base;
	struct fy_document *doc = NULL;
	struct jp_kv *sets = NULL;
	struct jp_error err;
	char line[JP_ERRMSG_MAX + 128];
	size_t n_sets = 0;
	int rc, len;

	jp_error_clear(&err);
	if (t->entry != NULL) {
		if ((sets = calloc(t->entry->n_sets + 1, sizeof(*sets))) != NULL && t->entry->n_sets)
			memcpy(sets, t->entry->sets, t->entry->n_sets * sizeof(*sets));
		n_sets = t->entry->n_sets;
	}
	if (t->entry == NULL && parse_sets(t->sets, &doc, &sets, &n_sets) != 0) {
		rc = jp_error_set(&err, JP_E_DATA, "its recorded --set values are not readable: %s",
		                  t->sets);
		rc = err.code;
	} else {
		o.job = t->job;
		o.manifest = t->manifest;
		o.workdir = t->workdir;
		o.dest = t->dest;
		o.sets = sets;
		o.n_sets = n_sets;
		rc = jp_publish(&o, &err);
		/* Published: the request is done, as after `publish --spool`. */
		if (rc == 0 && t->spoolkey != NULL && spool_dir != NULL) {
			struct jp_error e;
			jp_error_clear(&e);
			if (jp_spool_remove(spool_dir, t->spoolkey, &e) != JP_OK)
				jp_log_warn("%s", e.msg);
		}
	}
	if (json) {
		char *nl;
		while ((nl = strpbrk(err.msg, "\t\n")) != NULL)
			*nl = ' ';
		len = snprintf(line, sizeof(line), "%s\t%d\t%s\n", t->job, rc, rc ? err.msg : "");
	} else if (rc == 0) {
		len = snprintf(line, sizeof(line), "job %s: published\n", t->job);
	} else {
		len = snprintf(line, sizeof(line), "job %s: failed (exit %d): %s\n", t->job, rc, err.msg);
	}
	/* One write (under PIPE_BUF): lines of parallel jobs never mix. */
	if (write(out, line, (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1) < 0)
		rc = rc ? rc : 74;
	free(sets);
	fy_document_destroy(doc);
	return rc;
}

static volatile sig_atomic_t stopping;
static pid_t *volatile running_pids; /* the children, for the handler to pass a signal on */
static volatile int n_running_pids;

static void
on_signal(int sig)
{
	int i;

	stopping = sig;
	jp_publish_interrupt(sig);
	/* kill(2) is async-signal-safe: every running publish stops and records itself. */
	for (i = 0; running_pids != NULL && i < n_running_pids; i++)
		if (running_pids[i] > 0)
			kill(running_pids[i], sig);
}

static int
cmd_republish(int argc, char **argv)
{
	static const struct option longopts[] = {
		JP_CMD_OPT_DB,
		{"status", required_argument, NULL, 's'},
		JP_CMD_OPT_JOB,
		{"since", required_argument, NULL, 'S'},
		{"parallel", required_argument, NULL, 'P'},
		{"dry-run", no_argument, NULL, 'n'},
		{"overwrite", no_argument, NULL, 'O'},
		JP_CMD_OPT_JSON,
		JP_CMD_OPT_DB_TIMEOUT,
		{"spool", required_argument, NULL, 'Q'},
		JP_CMD_CONN_LONGOPTS,
		JP_CMD_OPT_HELP,
		{NULL, 0, NULL, 0},
	};
	const struct jp_cmd *c = &jp_cmd_republish;
	struct pick p;
	struct jp_publish_opts o; /* what every job's publish gets from the command line */
	struct jp_catalog *cat = NULL;
	struct jp_error err;
	const char *db = NULL, *status = NULL, *opt_spool = NULL;
	char **jobs = NULL, *spooldir = NULL, *db_real = NULL;
	size_t n_jobs = 0, i, next = 0, running = 0, ok = 0, failed = 0;
	int ch, r, parallel = 1, dry = 0, first_rc = 0, json = 0, no_db = 0;
	int results[2] = {-1, -1};
	FILE *rfp = NULL;
	struct jp_json j;
	pid_t *pids = NULL;

	memset(&p, 0, sizeof(p));
	memset(&o, 0, sizeof(o));
	o.db_timeout_ms = 30000;
	o.parallel = 4; /* transfer lanes of each publish, as publish's default */
	o.retries = 3;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":j:nh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'D': db = optarg; break;
		case 'Q': opt_spool = optarg; break;
		case 's': status = optarg; break;
		case 'j':
			if (!jp_cmd_job_ok(optarg))
				return jp_cmd_usage_error(c, "--job '%s': not a job ID", optarg);
			jobs = realloc(jobs, (n_jobs + 2) * sizeof(char *));
			jobs[n_jobs++] = optarg;
			jobs[n_jobs] = NULL;
			break;
		case 'S': {
			long age = jp_cmd_duration(optarg);
			if (age >= 0 && strpbrk(optarg, "-:T") == NULL) {
				time_t t = time(NULL) - age;
				struct tm tm;
				gmtime_r(&t, &tm);
				strftime(p.since, sizeof(p.since), "%Y-%m-%dT%H:%M:%SZ", &tm);
			} else if (strlen(optarg) >= 10 && optarg[4] == '-' && optarg[7] == '-') {
				snprintf(p.since, sizeof(p.since), "%s", optarg);
			} else {
				free(jobs);
				return jp_cmd_usage_error(c, "--since %s: expected a date, a time or an age", optarg);
			}
			break;
		}
		case 'P':
			if ((parallel = jp_cmd_count(optarg, 1, 64)) < 0) {
				free(jobs);
				return jp_cmd_usage_error(c, "--parallel %s: expected 1 to 64", optarg);
			}
			break;
		case 'n': dry = 1; break;
		case 'O': o.overwrite = 1; break;
		case 'J': json = 1; break;
		case 'T':
			if (jp_cmd_db_timeout(c, optarg, &o.db_timeout_ms) != 0) {
				free(jobs);
				return 64;
			}
			break;
		case 'h': free(jobs); jp_cmd_print_help(c, stdout); return 0;
		default:
			if ((r = jp_cmd_conn_opt(c, ch, optarg, &o)) > 0)
				break;
			free(jobs);
			return r < 0 ? 64 : jp_cmd_getopt_error(c, ch, argv);
		}
	}
	if (optind < argc) {
		free(jobs);
		return jp_cmd_usage_error(c, "unexpected argument '%s'", argv[optind]);
	}
	p.jobs = jobs;
	p.status = status ? status : jobs ? NULL : JP_STATUS_FAILED;
	/* By default a job whose publisher was killed (SIGKILL, a node crash) counts as failed. */
	p.orphans = status == NULL && jobs == NULL;
	p.overwrite = o.overwrite;
	db = jp_cmd_db(db);
	o.db = db;
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	jp_error_clear(&err);
	if (jp_catalog_open(db, o.db_timeout_ms, JP_CATALOG_READONLY, &cat, &err) != JP_OK &&
	    access(db, F_OK) != 0 && errno == ENOENT) {
		/* No catalogue yet (jobpub's own table mode creates it on the first publish): only
		 * spool entries can name jobs, and their publish creates it.  Said, because a typo
		 * in --db looks the same (it used to end with "0 published", exit 0). */
		jp_error_clear(&err);
		cat = NULL;
		no_db = 1;
	} else if (cat == NULL ||
	           (p.cat = cat, jp_catalog_jobs(cat, select_job, &p, &err)) != JP_OK) {
		jp_log_error("%s", err.msg);
		jp_catalog_close(cat);
		free(jobs);
		return err.code;
	}
	/* The spool's entries for this catalogue (not with --status: they have none yet). */
	spooldir = opt_spool != NULL ? strdup(opt_spool) : jp_spool_dir();
	/* As enqueue records it (the catalogue may not exist yet). */
	db_real = jp_catalog_locator_canonical(db);
	if (spooldir != NULL && status == NULL) {
		p.db_real = db_real != NULL ? db_real : db;
		p.spooldir = spooldir;
		if (jp_spool_list(spooldir, select_entry, &p, &err) != JP_OK)
			jp_log_warn("%s", err.msg);
	}
	spool_dir = spooldir;
	if (no_db && p.n == 0) {
		/* Nothing names a job of it either: most likely a typo, which must not pass for
		 * "nothing to do" in a script (66, as status, gc and verify answer). */
		if (spooldir != NULL && status == NULL)
			jp_log_error("republish: catalogue %s does not exist, and no entry of the spool "
			             "%s is for it", db, spooldir);
		else
			jp_log_error("republish: catalogue %s does not exist", db);
		first_rc = 66;
		goto out;
	}
	if (no_db) /* through jp_log_error: republish logs quietly, and this must be seen */
		jp_log_error("republish: catalogue %s does not exist: only spool entries considered",
		             db);
	/* The children open their own connections: none is carried across fork(). */
	jp_catalog_close(cat);
	if (dry && json) {
		jp_json_init(&j, stdout);
		jp_json_object(&j, NULL);
		jp_json_array(&j, "jobs");
		for (i = 0; i < p.n; i++) {
			jp_json_object(&j, NULL);
			jp_json_str(&j, "job", p.v[i].job);
			jp_json_str(&j, "status", p.v[i].status);
			jp_json_str(&j, "manifest", p.v[i].manifest);
			jp_json_str(&j, "workdir", p.v[i].workdir);
			jp_json_str(&j, "destination", p.v[i].dest);
			jp_json_end(&j, '}');
		}
		jp_json_end(&j, ']');
		jp_json_end(&j, '}');
		putchar('\n');
		goto out;
	}
	if (dry) {
		for (i = 0; i < p.n; i++)
			printf("job %s: would republish (status %s) %s in %s\n", p.v[i].job,
			       p.v[i].status ? p.v[i].status : "none", p.v[i].manifest, p.v[i].workdir);
		printf("republish: %zu job%s\n", p.n, p.n == 1 ? "" : "s");
		goto out;
	}
	jp_cmd_catch_signals(on_signal);
	fflush(stdout);
	if (json) {
		/* The children's results come back through an unlinked file opened O_APPEND, one
		 * short line each (a pipe would fill and block them while we wait for them). */
		char tmpl[] = "/tmp/jobpub-republish.XXXXXX";
		int fd = mkstemp(tmpl);

		if (fd < 0 || unlink(tmpl) != 0 || fcntl(fd, F_SETFL, O_APPEND) != 0 ||
		    (rfp = fdopen(fd, "r")) == NULL) {
			jp_log_error("republish: temporary file: %s", strerror(errno));
			if (fd >= 0)
				close(fd);
			first_rc = 74;
			goto out;
		}
		results[1] = fd;
		jp_json_init(&j, stdout);
		jp_json_object(&j, NULL);
		jp_json_array(&j, "jobs");
	}
	pids = calloc((size_t)parallel, sizeof(pid_t));
	running_pids = pids;
	n_running_pids = parallel;
	while ((next < p.n && !stopping) || running > 0) {
		int st, code;
		pid_t pid;

		while (running < (size_t)parallel && next < p.n && !stopping) {
			sigset_t stopset, old;

			/* A signal between fork() and pids[i] = pid would not reach the child: it waits
			 * until the child is recorded (and the child installs its own handlers). */
			sigemptyset(&stopset);
			sigaddset(&stopset, SIGINT);
			sigaddset(&stopset, SIGTERM);
			sigprocmask(SIG_BLOCK, &stopset, &old);
			if (stopping) {
				sigprocmask(SIG_SETMASK, &old, NULL);
				break;
			}
			if ((pid = fork()) == 0) {
				/* A publish of its own: the stop and clean-up bounds, a second signal ends
				 * it, and a signal to it is not passed on to its siblings. */
				running_pids = NULL;
				n_running_pids = 0;
				jp_cmd_signals_child();
				jp_publish_set_cleanup_hook(jp_cmd_stop_cleanup);
				_exit(run_one(&p.v[next], &o, json ? results[1] : STDOUT_FILENO, json));
			}
			if (pid > 0) {
				for (i = 0; i < (size_t)parallel && pids[i] != 0; i++)
					;
				pids[i] = pid;
				next++;
				running++;
			}
			sigprocmask(SIG_SETMASK, &old, NULL);
			if (pid < 0)
				break;
		}
		if (running == 0)
			break;
		if ((pid = waitpid(-1, &st, 0)) < 0)
			continue;
		for (i = 0; i < (size_t)parallel; i++)
			if (pids[i] == pid)
				pids[i] = 0;
		running--;
		code = WIFEXITED(st) ? WEXITSTATUS(st) : 70;
		if (code == 0) {
			ok++;
		} else {
			failed++;
			if (first_rc == 0)
				first_rc = code;
		}
	}
	if (json) {
		char line[JP_ERRMSG_MAX + 256];

		results[1] = -1; /* the same descriptor as rfp's, closed with it */
		rewind(rfp);
		while (fgets(line, sizeof(line), rfp) != NULL) {
			char *code = strchr(line, '\t'), *msg = code ? strchr(code + 1, '\t') : NULL;

			if (msg == NULL)
				continue;
			*code++ = '\0';
			*msg++ = '\0';
			msg[strcspn(msg, "\n")] = '\0';
			jp_json_object(&j, NULL);
			jp_json_str(&j, "job", line);
			jp_json_str(&j, "outcome", atoi(code) == 0 ? "published" : "failed");
			jp_json_int(&j, "exit_code", atoi(code));
			if (*msg)
				jp_json_str(&j, "message", msg);
			jp_json_end(&j, '}');
		}
		jp_json_end(&j, ']');
		jp_json_int(&j, "published", (int64_t)ok);
		jp_json_int(&j, "failed", (int64_t)(failed + (p.n - next)));
		jp_json_end(&j, '}');
		putchar('\n');
	} else {
		printf("republish: %zu published, %zu still failing%s\n", ok, failed + (p.n - next),
		       stopping ? " (interrupted)" : "");
	}
	if (stopping && first_rc == 0)
		first_rc = 75;
out:
	for (i = 0; i < p.n; i++) {
		free(p.v[i].job);
		free(p.v[i].manifest);
		free(p.v[i].workdir);
		free(p.v[i].dest);
		free(p.v[i].sets);
		free(p.v[i].status);
		free(p.v[i].spoolkey);
		jp_spool_entry_free(p.v[i].entry);
	}
	free(p.v);
	for (i = 0; i < p.n_seen; i++) {
		free(p.seen[i].job);
		free(p.seen[i].outcome);
		free(p.seen[i].started);
	}
	free(p.seen);
	free(spooldir);
	free(db_real);
	running_pids = NULL;
	free(pids);
	free(jobs);
	if (rfp != NULL)
		fclose(rfp);
	if (results[1] >= 0)
		close(results[1]);
	return first_rc;
}
