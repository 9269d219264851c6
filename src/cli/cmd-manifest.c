/*
 * cmd-manifest.c - `jobpub manifest check`: validate a manifest before any job uses it.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog.h"
#include "cmd.h"
#include "dest.h"
#include "log.h"
#include "manifest.h"
#include "plan.h"
#include "publish.h"

static int cmd_manifest(int argc, char **argv);

const struct jp_cmd jp_cmd_manifest = {
	.name = "manifest",
	.summary = "Check a manifest; with --workdir also resolve and validate the outputs of a job.",
	.usage = "jobpub manifest check FILE [--workdir DIR] [--set NAME=VALUE]... [--job ID]\n"
	         "                      [--db FILE] [--dest URL]",
	.options =
		"  -w, --workdir DIR         resolve the outputs against this job directory\n"
		"      --set NAME=VALUE      a value for ${NAME}; repeatable\n"
		"  -j, --job ID              the job, for ${job} and, with --db, ${row.COLUMN}\n"
		"      --db FILE             read the job's row and check the catalog: section against it\n"
		JP_CMD_HELP_DEST
		JP_CMD_HELP_HELP,
	.exec = cmd_manifest,
};

static int
check(const char *file, const char *workdir, const char *job, const char *db, const char *dest,
      const struct jp_sets *sets)
{
	struct jp_manifest *m = NULL;
	struct jp_catalog *cat = NULL;
	struct jp_row *row = NULL;
	struct jp_plan *plan = NULL;
	struct jp_error err;
	int r;

	jp_error_clear(&err);
	if ((r = jp_manifest_load(file, &m, &err)) != JP_OK ||
	    (r = jp_manifest_check_job(m, job, sets->v, sets->n, NULL, dest, &err)) != JP_OK)
		goto out;
	if (db != NULL) {
		if ((r = jp_catalog_open(db, 30000, 1, &cat, &err)) != JP_OK)
			goto out;
		if (job != NULL)
			r = jp_job_prepare(cat, m, job, sets->v, sets->n, dest, &row, &err);
		else {
			struct jp_jobtable t;
			jp_jobtable_of(m, &t);
			r = jp_catalog_prepare(cat, &t, NULL, 0, &err);
		}
		if (r != JP_OK)
			goto out;
	}
	if (workdir != NULL) {
		struct jp_plan_input in = {m,   workdir, job ? job : "{job}", sets->v, sets->n,
		                           row, dest,    NULL};
		size_t i;

		if ((r = jp_plan_build(&in, &plan, &err)) != JP_OK ||
		    (r = jp_dest_check_url(plan->destination, &err)) != JP_OK)
			goto out;
		/* Plain text for people: placeholders like {row.X} stay readable. */
		for (i = 0; i < plan->n_items; i++)
			printf("%s%s -> %s/%s\n", plan->items[i].local, plan->items[i].is_archive ? "/" : "",
			       plan->destination, plan->items[i].key);
		for (i = 0; i < plan->n_skipped; i++)
			printf("(optional output %s is absent: it would be skipped)\n",
			       plan->skipped[i]->name.s);
	}
	printf("%s: ok (%zu outputs)\n", file, m->n_outputs);
out:
	if (r != JP_OK)
		jp_log_error("%s", err.msg);
	jp_plan_free(plan);
	jp_row_free(row);
	jp_catalog_close(cat);
	jp_manifest_free(m);
	return jp_exit_code(r, &err);
}

static int
cmd_manifest(int argc, char **argv)
{
	static const struct option longopts[] = {
		JP_CMD_OPT_WORKDIR,
		JP_CMD_OPT_SET,
		JP_CMD_OPT_JOB,
		JP_CMD_OPT_DB,
		JP_CMD_OPT_DEST,
		JP_CMD_OPT_HELP,
		{NULL, 0, NULL, 0},
	};
	const struct jp_cmd *c = &jp_cmd_manifest;
	const char *workdir = NULL, *job = NULL, *db = NULL, *dest = NULL, *file, *env;
	struct jp_sets sets = {NULL, 0};
	int ch, rc;

	opterr = 0;
	/* `manifest check FILE ...`: the sub-verb comes first. */
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		jp_cmd_print_help(c, stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "check") != 0)
		return jp_cmd_usage_error(c, argc < 2 ? "manifest needs a sub-command: check"
		                                      : "unknown manifest sub-command '%s'",
		                          argc < 2 ? "" : argv[1]);
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, ":w:j:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'w': workdir = optarg; break;
		case 'j': job = optarg; break;
		case 'D': db = optarg; break;
		case 'd': dest = optarg; break;
		case 's':
			if (jp_sets_add(c, &sets, optarg) != 0) {
				jp_sets_free(&sets);
				return 64;
			}
			break;
		case 'h': jp_cmd_print_help(c, stdout); jp_sets_free(&sets); return 0;
		default:
			jp_sets_free(&sets);
			return jp_cmd_getopt_error(c, ch, argv);
		}
	}
	if (optind + 1 != argc) {
		jp_sets_free(&sets);
		return jp_cmd_usage_error(c, optind == argc ? "FILE is required"
		                                            : "unexpected argument '%s'",
		                          optind == argc ? "" : argv[optind + 1]);
	}
	file = argv[optind];
	if (job != NULL && !jp_cmd_job_ok(job)) {
		jp_sets_free(&sets);
		return jp_cmd_usage_error(c, "--job '%s': 1-128 printable characters, no '/' or space",
		                          job);
	}
	if (dest == NULL && (env = getenv("JOBPUB_DEST")) != NULL && env[0] != '\0')
		dest = env;
	jp_log_setup(JP_LOG_TEXT, 0, NULL);
	rc = check(file, workdir, job, db, dest, &sets);
	jp_sets_free(&sets);
	return rc;
}
