/*
 * cmd-gc.c - `jobpub gc`: find what killed publishers left behind, and what the catalogue and
 * the destinations disagree on (gc.h holds the policy; this prints what it reports).
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "cmd.h"
#include "gc.h"
#include "json.h"
#include "log.h"
#include "util.h"

static int cmd_gc(int argc, char **argv);

const struct jp_cmd jp_cmd_gc = {
	.name = "gc",
	.summary = "List (and with --apply delete) temporary files left by killed publishers.",
	.usage = "jobpub gc [--db FILE] [--dest URL] [--older-than DURATION] [--apply] [--json]\n"
	         "                 [--timeout SECONDS] [-o KEY=VALUE]...",
	.options =
		JP_CMD_HELP_DB
		"      --dest URL            look only here (default: every destination the catalogue knows)\n"
		"      --older-than DURATION only temporary files older than this (default 24h; 90s, 15m, 2d)\n"
		"      --apply               delete them (default: only list)\n"
		JP_CMD_HELP_JSON
		JP_CMD_NET_HELP
		JP_CMD_HELP_HELP
		"Also reports catalogue rows whose files are missing and files no row references;\n"
		"those are never deleted.\n",
	.exec = cmd_gc,
	.backend_options = 1,
};

/* Prints the reports: an indented line per object under a line per destination, or the
 * "objects" array of one JSON document (begun with the first report, so that a catalogue that
 * cannot be read prints nothing but its error). */
struct out {
	int json;
	int begun;
	struct jp_json j;
};

static void
begin(struct out *out)
{
	if (!out->json || out->begun)
		return;
	out->begun = 1;
	jp_json_init(&out->j, stdout);
	jp_json_object(&out->j, NULL);
	jp_json_array(&out->j, "objects");
}

static void
print_report(void *arg, const struct jp_gc_report *r)
{
	struct out *out = arg;
	struct jp_json *j = &out->j;
	char sz[32];

	begin(out);
	if (r->what == JP_GC_DEST) {
		if (!out->json)
			printf("%s:\n", r->remote);
		return;
	}
	if (r->what == JP_GC_FAILED) {
		jp_log_error("%s: %s", r->remote, r->action);
		return;
	}
	if (out->json) {
		jp_json_object(j, NULL);
		jp_json_str(j, "kind", r->kind);
		jp_json_str(j, "remote", r->remote);
		if (r->job) jp_json_str(j, "job", r->job);
		if (r->size >= 0) jp_json_int(j, "size", r->size);
		if (r->age >= 0) jp_json_int(j, "age_s", r->age);
		if (r->action) jp_json_str(j, "action", r->action);
		jp_json_end(j, '}');
		return;
	}
	printf("  %-12s %s", r->kind, r->remote);
	if (r->job)
		printf("  (job %s)", r->job);
	if (r->size >= 0)
		printf("  %s", jp_human_size((uint64_t)r->size, sz, sizeof(sz)));
	if (r->age >= 0)
		printf("  %.1f h old", (double)r->age / 3600.0);
	if (r->action)
		printf("  %s", r->action);
	putchar('\n');
}

static void
print_summary(struct out *out, const struct jp_gc_result *g, int apply)
{
	char sz[32], done[64];

	if (out->json) {
		begin(out);
		jp_json_end(&out->j, ']');
		jp_json_int(&out->j, "temporary", (int64_t)g->temps);
		jp_json_int(&out->j, "deleted", (int64_t)g->deleted);
		jp_json_int(&out->j, "in_use", (int64_t)g->in_use);
		jp_json_int(&out->j, "missing", (int64_t)g->missing);
		jp_json_int(&out->j, "unreferenced", (int64_t)g->unreferenced);
		jp_json_int(&out->j, "displaced", (int64_t)g->displaced);
		jp_json_end(&out->j, '}');
		putchar('\n');
		return;
	}
	/* With --apply, a deletion that failed (its line says why) is not counted as done. */
	if (!apply)
		snprintf(done, sizeof(done), "to delete with --apply");
	else if (g->deleted == g->temps)
		snprintf(done, sizeof(done), "deleted");
	else
		snprintf(done, sizeof(done), "found, %zu deleted", g->deleted);
	printf("%zu destination%s: %zu temporary file%s (%s) %s, %zu in use, %zu missing, "
	       "%zu unreferenced, %zu displaced\n",
	       g->dests, g->dests == 1 ? "" : "s", g->temps, g->temps == 1 ? "" : "s",
	       jp_human_size(g->temp_bytes, sz, sizeof(sz)), done, g->in_use, g->missing,
	       g->unreferenced, g->displaced);
}

static int
cmd_gc(int argc, char **argv)
{
	static const struct option longopts[] = {
		JP_CMD_OPT_DB,
		JP_CMD_OPT_DEST,
		{"older-than", required_argument, NULL, 'A'},
		{"apply", no_argument, NULL, 'a'},
		JP_CMD_OPT_JSON,
		JP_CMD_OPT_HELP,
		JP_CMD_NET_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	const struct jp_cmd *c = &jp_cmd_gc;
	struct jp_gc_opts o;
	struct jp_gc_result res;
	struct jp_catalog *cat = NULL;
	struct out out;
	struct jp_error err;
	const char *db = NULL;
	int ch, n, r;

	memset(&o, 0, sizeof(o));
	memset(&out, 0, sizeof(out));
	o.older_s = 24 * 3600;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":o:h", jp_cmd_longopts(longopts), NULL)) != -1) {
		if ((n = jp_cmd_net_option(c, ch, optarg, &o.dopts)) != 0) {
			if (n < 0)
				return 64;
			continue;
		}
		switch (ch) {
		case 'D': db = optarg; break;
		case 'd': o.dest = optarg; break;
		case 'a': o.apply = 1; break;
		case 'J': out.json = 1; break;
		case 'A':
			if ((o.older_s = jp_cmd_duration(optarg)) < 0)
				return jp_cmd_usage_error(c, "--older-than %s: expected a duration (90s, 15m, 24h, 2d)",
				                          optarg);
			break;
		case 'h': jp_cmd_print_help(c, stdout); return 0;
		default: return jp_cmd_getopt_error(c, ch, argv);
		}
	}
	if (optind < argc)
		return jp_cmd_usage_error(c, "unexpected argument '%s'", argv[optind]);
	jp_log_setup(JP_LOG_TEXT, 0, NULL);
	jp_error_clear(&err);
	if ((r = jp_catalog_open(jp_cmd_db(db), 30000, JP_CATALOG_READONLY, &cat, &err)) != JP_OK) {
		jp_log_error("%s", err.msg);
		return jp_exit_code(r, &err);
	}
	/* Failures of single objects are in their lines and res.failed; err is the run's own. */
	if ((r = jp_gc(cat, &o, print_report, &out, &res, &err)) != JP_OK && err.code != 0) {
		jp_log_error("%s", err.msg);
		jp_catalog_close(cat);
		return jp_exit_code(r, &err);
	}
	print_summary(&out, &res, o.apply);
	jp_catalog_close(cat);
	return res.failed;
}
