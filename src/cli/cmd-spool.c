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

#include "cmd.h"
#include "json.h"
#include "log.h"
#include "spool.h"
#include "spooled.h"

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
		state = jp_spooled_state(e, note, sizeof(note));
	else
		snprintf(note, sizeof(note), "%s", why->msg);
	if (strcmp(state, "published") == 0) {
		L->n_published++;
		if (L->clean) {
			struct jp_error err;
			jp_error_clear(&err);
			int r = jp_spool_remove(L->dir, key, &err);

			if (r == JP_OK) {
				removed = 1;
				L->n_removed++;
			} else {
				jp_log_error("%s", err.msg);
				L->rc = jp_exit_code(r, &err);
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
		return jp_exit_code(r, &err);
	}
	return L.rc;
}
