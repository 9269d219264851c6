/*
 * cmd-spool.c - `jobpub spool`: the spool as the durable record of the publishes jobs asked
 * for.  Lists every entry with its state, taken from its catalogue when that can be read, and
 * its age; --clean removes the entries of jobs that are published.
 *
 * An entry stays until its job is published (publish --spool and republish remove it), so an
 * entry that is not "published" is a job someone still has to publish: `jobpub republish`
 * finds it through the entry even when its catalogue row could never be marked.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "cmd.h"
#include "json.h"
#include "log.h"
#include "spool.h"

static int cmd_spool(int argc, char **argv);

const struct jp_cmd jp_cmd_spool = {
	.name = "spool",
	.summary = "List the spool's entries with their state; clean the published ones.",
	.usage = "jobpub spool [--spool DIR] [--json] [--clean]",
	.options =
		JP_CMD_HELP_SPOOL_DIR
		JP_CMD_HELP_JSON_LINES
		"      --clean               remove the entries whose job is published\n"
		JP_CMD_HELP_HELP
		"States, from the entry's catalogue: pending (not published yet: no attempt, or\n"
		"one older than the entry), publishing (a live publisher holds the job's lease),\n"
		"failed (the last attempt failed, or its publisher is gone), published (also when\n"
		"a later attempt failed: the files stay published); invalid: the entry cannot be\n"
		"read (the line says why).  Exit 0, or 74/77 when the spool cannot be listed.\n",
	.exec = cmd_spool,
};

/* What the catalogue says of one job: its last attempt. */
struct find {
	const char *job;
	char outcome[32];
	char started[40];
	int found;
};

static int
find_job(void *arg, const struct jp_job_brief *b)
{
	struct find *f = arg;

	if (strcmp(b->job, f->job) != 0)
		return 0;
	snprintf(f->outcome, sizeof(f->outcome), "%s", b->outcome ? b->outcome : "");
	snprintf(f->started, sizeof(f->started), "%s", b->started_at ? b->started_at : "");
	f->found = 1;
	return 0; /* the last one listed is the latest */
}

/* The state of an entry's job, and a note when the catalogue could not say. */
static const char *
state_of(const struct jp_spool_entry *e, char *note, size_t len)
{
	struct jp_catalog *cat = NULL;
	struct jp_error err;
	struct find f;
	const char *st = "pending";

	note[0] = '\0';
	memset(&f, 0, sizeof(f));
	f.job = e->job;
	jp_error_clear(&err);
	if (e->db == NULL) {
		snprintf(note, len, "no catalogue recorded");
		return st;
	}
	/* A catalogue jobpub never wrote lists no attempts: the job is simply pending. */
	if (jp_catalog_open(e->db, 2000, JP_CATALOG_READONLY, &cat, &err) != JP_OK ||
	    jp_catalog_jobs(cat, find_job, &f, &err) != JP_OK) {
		snprintf(note, len, "catalogue not readable: %s", err.msg);
		jp_catalog_close(cat);
		return st;
	}
	/* An attempt older than the entry is of an earlier request (the job enqueued again). */
	if (!f.found || (e->created != NULL && strcmp(f.started, e->created) < 0))
		st = "pending";
	else if (strcmp(f.outcome, "published") == 0)
		st = "published";
	else if (jp_catalog_published_since(cat, e->job, e->created)) {
		/* Published, then a later attempt failed (a conflict): the files stay published and
		 * the request is done; `republish --overwrite` is for new content. */
		snprintf(note, len, "a later attempt %s", f.outcome);
		st = "published";
	} else if (strcmp(f.outcome, "running") == 0 && jp_catalog_job_leased(cat, e->job))
		st = "publishing";
	else if (strcmp(f.outcome, "running") == 0) {
		snprintf(note, len, "its publisher is gone");
		st = "failed";
	} else
		st = "failed";
	jp_catalog_close(cat);
	return st;
}

static void
age_text(long long secs, char *buf, size_t len)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, len, "%llds", secs);
	else if (secs < 7200)
		snprintf(buf, len, "%lldm", secs / 60);
	else if (secs < 172800)
		snprintf(buf, len, "%lldh", secs / 3600);
	else
		snprintf(buf, len, "%lldd", secs / 86400);
}

struct listing {
	const char *dir;
	int json, clean;
	struct jp_json j;
	size_t n, n_pending, n_published, n_failed, n_invalid, n_removed;
	time_t now;
	int rc;
};

static int
one_entry(void *arg, const char *key, const struct jp_spool_entry *e, const struct jp_error *why,
          long long mtime)
{
	struct listing *L = arg;
	char note[JP_ERRMSG_MAX + 64], age[32];
	const char *state = "invalid";
	int removed = 0;

	L->n++;
	note[0] = '\0';
	if (e != NULL)
		state = state_of(e, note, sizeof(note));
	else
		snprintf(note, sizeof(note), "%s", why->msg);
	if (strcmp(state, "published") == 0) {
		L->n_published++;
		if (L->clean) {
			struct jp_error err;
			jp_error_clear(&err);
			if (jp_spool_remove(L->dir, key, &err) == JP_OK) {
				removed = 1;
				L->n_removed++;
			} else {
				jp_log_error("%s", err.msg);
				L->rc = err.code;
			}
		}
	} else if (strcmp(state, "invalid") == 0) {
		L->n_invalid++;
	} else if (strcmp(state, "failed") == 0) {
		L->n_failed++;
	} else {
		L->n_pending++;
	}
	age_text((long long)L->now - mtime, age, sizeof(age));
	if (L->json) {
		jp_json_object(&L->j, NULL);
		jp_json_str(&L->j, "key", key);
		jp_json_str(&L->j, "job", e ? e->job : NULL);
		jp_json_str(&L->j, "db", e ? e->db : NULL);
		jp_json_str(&L->j, "state", state);
		jp_json_int(&L->j, "age_seconds", (int64_t)(L->now - mtime));
		jp_json_str(&L->j, "created", e ? e->created : NULL);
		jp_json_str(&L->j, "manifest", e ? e->manifest : NULL);
		jp_json_str(&L->j, "workdir", e ? e->workdir : NULL);
		if (note[0] != '\0')
			jp_json_str(&L->j, "message", note);
		if (L->clean)
			jp_json_int(&L->j, "removed", removed);
		jp_json_end(&L->j, '}');
	} else if (e != NULL) {
		printf("%s: job %s %s (%s old) in %s%s%s%s\n", key, e->job, state, age,
		       e->db ? e->db : "(default catalogue)", note[0] ? ": " : "", note,
		       removed ? "; removed" : "");
	} else {
		printf("%s: invalid (%s old): %s\n", key, age, note);
	}
	return 0;
}

static int
cmd_spool(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"spool", required_argument, NULL, 'S'},
		JP_CMD_OPT_JSON,
		{"clean", no_argument, NULL, 'C'},
		JP_CMD_OPT_HELP,
		{NULL, 0, NULL, 0},
	};
	const struct jp_cmd *c = &jp_cmd_spool;
	struct listing L;
	struct jp_error err;
	char *dir = NULL;
	const char *opt_dir = NULL;
	int ch, r;

	memset(&L, 0, sizeof(L));
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'S': opt_dir = optarg; break;
		case 'J': L.json = 1; break;
		case 'C': L.clean = 1; break;
		case 'h': jp_cmd_print_help(c, stdout); return 0;
		default: return jp_cmd_getopt_error(c, ch, argv);
		}
	}
	if (optind < argc)
		return jp_cmd_usage_error(c, "unexpected argument '%s'", argv[optind]);
	if (opt_dir != NULL && opt_dir[0] == '\0')
		return jp_cmd_usage_error(c, "--spool: empty directory name");
	jp_log_setup(JP_LOG_TEXT, 0, NULL);
	if ((dir = opt_dir ? strdup(opt_dir) : jp_spool_dir()) == NULL) {
		jp_log_error("out of memory");
		return 70;
	}
	L.dir = dir;
	L.now = time(NULL);
	if (L.json) {
		jp_json_init(&L.j, stdout);
		jp_json_object(&L.j, NULL);
		jp_json_str(&L.j, "spool", dir);
		jp_json_array(&L.j, "entries");
	}
	jp_error_clear(&err);
	r = jp_spool_list(dir, one_entry, &L, &err);
	if (L.json) {
		jp_json_end(&L.j, ']');
		jp_json_int(&L.j, "pending", (int64_t)L.n_pending);
		jp_json_int(&L.j, "published", (int64_t)L.n_published);
		jp_json_int(&L.j, "failed", (int64_t)L.n_failed);
		jp_json_int(&L.j, "invalid", (int64_t)L.n_invalid);
		if (L.clean)
			jp_json_int(&L.j, "removed", (int64_t)L.n_removed);
		jp_json_end(&L.j, '}');
		putchar('\n');
	} else if (r == JP_OK) {
		printf("spool %s: %zu entr%s: %zu pending, %zu failed, %zu published, %zu invalid",
		       dir, L.n, L.n == 1 ? "y" : "ies", L.n_pending, L.n_failed, L.n_published,
		       L.n_invalid);
		if (L.clean)
			printf("; %zu removed", L.n_removed);
		putchar('\n');
	}
	free(dir);
	if (r != JP_OK) {
		jp_log_error("%s", err.msg);
		return err.code;
	}
	return L.rc;
}
