/*
 * cmd-publish.c - `jobpub publish`: publish one job's outputs (publish.h does the work).
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"
#include "publish.h"
#include "spool.h"
#include "spooled.h"

static int cmd_publish(int argc, char **argv);

/*
 * A publish that could not even record its attempt (the catalogue stayed locked past
 * --db-timeout) leaves nothing in the catalogue for `republish` to find.  It leaves a spool
 * entry instead, as `enqueue` would have (spooled.h).  Best effort: a failure is only a
 * warning.
 */
static void
queue_unrecorded(const struct jp_publish_opts *o)
{
	struct jp_error err;
	char *dir = jp_spool_dir(), *key = NULL;

	jp_error_clear(&err);
	if (dir == NULL)
		jp_log_warn("job %s: not queued for `jobpub republish` either: out of memory", o->job);
	else if (jp_spooled_queue(dir, o, &key, &err) != JP_OK)
		jp_log_warn("job %s: not queued for `jobpub republish` either: %s", o->job, err.msg);
	else
		jp_log_warn("job %s: nothing recorded in the catalogue; queued in %s/%s.json for "
		            "`jobpub republish`",
		            o->job, dir, key);
	free(key);
	free(dir);
}

const struct jp_cmd jp_cmd_publish = {
	.name = "publish",
	.summary = "Publish a job's outputs: stage every file, commit them all, update the catalogue.",
	.usage = "jobpub publish --job ID --manifest FILE [--workdir DIR] [--db FILE] [--dest URL]\n"
	         "                      [--set NAME=VALUE]... [--dry-run] [--overwrite]\n"
	         "                      [--db-timeout SECONDS] [--parallel N] [--retries N]\n"
	         "                      [--timeout SECONDS] [--stall SECONDS] [-o KEY=VALUE]...\n"
	         "                      [--lease DURATION] [--log-format text|json] [-q|-v]\n"
	         "       jobpub publish --spool [--job ID] [OPTION]...",
	.options =
		"  -j, --job ID              the job's ID in the catalogue (with --spool, or without\n"
		"                            --manifest: the key of its spool entry; default\n"
		"                            $SLURM_JOB_ID)\n"
		"      --spool               take manifest, workdir, db, dest and --set values from the\n"
		"                            job's spool entry ($JOBPUB_SPOOL); removed once published\n"
		"  -m, --manifest FILE       the job's manifest (YAML)\n"
		"  -w, --workdir DIR         the job's work directory (default: the current directory)\n"
		JP_CMD_HELP_DB
		JP_CMD_HELP_DEST
		JP_CMD_HELP_SET
		"  -n, --dry-run             check everything and print the plan; change nothing\n"
		"      --overwrite           replace remote files that hold different content\n"
		JP_CMD_HELP_DB_TIMEOUT
		"      --parallel N          transfer N files at once, over N connections (default 4)\n"
		JP_CMD_CONN_HELP
		"      --lease DURATION      how long the job's lease lasts unrenewed (default 1h)\n"
		"      --log-format text|json  json: one JSON object per event on stderr\n"
		"  -q, --quiet               errors only\n"
		"  -v, --verbose             one line per file\n"
		JP_CMD_HELP_HELP,
	.exec = cmd_publish,
	.stops = 1,
	.backend_options = 1,
};

/* The command line, parsed. */
struct args {
	struct jp_publish_opts o;
	struct jp_sets sets;
	enum jp_log_format fmt;
	int verbosity;
	int use_spool;
};

/* Parses argv into a.  -1: go on; else the exit code (usage error printed, or --help). */
static int
parse_args(const struct jp_cmd *c, int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		JP_CMD_OPT_JOB,
		JP_CMD_OPT_MANIFEST,
		JP_CMD_OPT_WORKDIR,
		JP_CMD_OPT_DB,
		JP_CMD_OPT_DEST,
		JP_CMD_OPT_SET,
		{"dry-run", no_argument, NULL, 'n'},
		{"overwrite", no_argument, NULL, 'O'},
		JP_CMD_OPT_DB_TIMEOUT,
		{"log-format", required_argument, NULL, 'L'},
		{"parallel", required_argument, NULL, 'P'},
		JP_CMD_CONN_LONGOPTS,
		{"spool", no_argument, NULL, 'Q'},
		{"lease", required_argument, NULL, 'E'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		JP_CMD_OPT_HELP,
		{NULL, 0, NULL, 0},
	};
	struct jp_publish_opts *o = &a->o;
	int ch, r;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":j:m:w:o:nqvh", jp_cmd_longopts(longopts), NULL)) != -1) {
		switch (ch) {
		case 'j': o->job = optarg; break;
		case 'm': o->manifest = optarg; break;
		case 'w': o->workdir = optarg; break;
		case 'D': o->db = optarg; break;
		case 'd': o->dest = optarg; break;
		case 'n': o->dry_run = 1; break;
		case 'O': o->overwrite = 1; break;
		case 'q': a->verbosity = -1; break;
		case 'v': a->verbosity = 1; break;
		case 's':
			if (jp_sets_add(c, &a->sets, optarg) != 0)
				return 64;
			break;
		case 'T':
			if (jp_cmd_db_timeout(c, optarg, &o->db_timeout_ms) != 0)
				return 64;
			break;
		case 'P':
			if ((o->parallel = jp_cmd_count(optarg, 1, 64)) < 0)
				return jp_cmd_usage_error(c, "--parallel %s: expected 1 to 64", optarg);
			break;
		case 'Q': a->use_spool = 1; break;
		case 'E':
			if ((o->lease_s = (int)jp_cmd_duration(optarg)) <= 0)
				return jp_cmd_usage_error(c, "--lease %s: expected a duration (600, 10m, 2h)", optarg);
			break;
		case 'L':
			if (strcmp(optarg, "text") == 0)
				a->fmt = JP_LOG_TEXT;
			else if (strcmp(optarg, "json") == 0)
				a->fmt = JP_LOG_JSON;
			else
				return jp_cmd_usage_error(c, "--log-format %s: expected text or json", optarg);
			break;
		case 'h':
			jp_cmd_print_help(c, stdout);
			return 0;
		default:
			if ((r = jp_cmd_conn_opt(c, ch, optarg, o)) > 0)
				break;
			return r < 0 ? 64 : jp_cmd_getopt_error(c, ch, argv);
		}
	}
	if (optind < argc)
		return jp_cmd_usage_error(c, "unexpected argument '%s'", argv[optind]);
	if (a->use_spool && o->job == NULL)
		o->job = getenv("SLURM_JOB_ID");
	if (o->job != NULL && !jp_cmd_job_ok(o->job))
		return jp_cmd_usage_error(c, "--job '%s': 1-128 printable characters, no '/' or space",
		                          o->job);
	if (o->job != NULL && o->manifest == NULL)
		a->use_spool = 1; /* --job alone: what the job script queued */
	o->sets = a->sets.v;
	o->n_sets = a->sets.n;
	return -1;
}

static int
cmd_publish(int argc, char **argv)
{
	const struct jp_cmd *c = &jp_cmd_publish;
	struct jp_publish_opts *o;
	struct args a;
	struct jp_error err;
	struct jp_spooled spooled;
	char *spooldir = NULL;
	const char *spoolkey = NULL, *env;
	int rc;

	memset(&a, 0, sizeof(a));
	memset(&spooled, 0, sizeof(spooled));
	o = &a.o;
	o->db_timeout_ms = 30000;
	o->parallel = 4;
	o->retries = 3;
	a.fmt = JP_LOG_TEXT;
	if ((rc = parse_args(c, argc, argv, &a)) >= 0)
		goto out;
	if (a.use_spool && o->job != NULL) {
		/* The entry may be filed under the Slurm job ID: the catalogue's ID is in it. */
		spoolkey = o->job;
		jp_error_clear(&err);
		spooldir = jp_spool_dir();
		if (spooldir == NULL ||
		    (rc = jp_spooled_take(spooldir, spoolkey, o, &spooled, &err)) != JP_OK) {
			rc = spooldir ? jp_exit_code(rc, &err) : JP_E_SOFTWARE;
			jp_log_setup(a.fmt, a.verbosity, NULL);
			jp_log_error("%s", spooldir ? err.msg : "out of memory");
			goto out;
		}
	}
	if (o->job == NULL || o->manifest == NULL) {
		rc = jp_cmd_usage_error(c, "%s is required", o->job == NULL ? "--job" : "--manifest");
		goto out;
	}
	if (!jp_cmd_job_ok(o->job)) {
		rc = jp_cmd_usage_error(c, "--job '%s': 1-128 printable characters, no '/' or space",
		                        o->job);
		goto out;
	}
	if (o->dest == NULL && (env = getenv("JOBPUB_DEST")) != NULL && env[0] != '\0')
		o->dest = env;
	o->db = jp_cmd_db(o->db);
	jp_log_setup(a.fmt, a.verbosity, NULL);

	/* SIGINT/SIGTERM (caught since the start of main, jp_cmd_signals_early): stop at the next
	 * check, clean up (within a bound of its own), record the attempt as interrupted. */
	jp_publish_set_cleanup_hook(jp_cmd_stop_cleanup);
	jp_error_clear(&err);
	rc = jp_exit_code(jp_publish(o, &err), &err);
	if (rc != 0)
		jp_log_error("%s", err.msg);
	if (rc != 0 && spooled.entry == NULL && !o->dry_run && jp_publish_unrecorded())
		queue_unrecorded(o);
	else if (rc == 0 && spooled.entry != NULL && !o->dry_run) {
		/* Published: the request is done.  A failed publish keeps it for the next try. */
		jp_error_clear(&err);
		if (jp_spool_remove(spooldir, spoolkey, &err) != JP_OK)
			jp_log_warn("%s", err.msg);
	}
out:
	jp_sets_free(&a.sets);
	jp_spooled_free(&spooled);
	free(spooldir);
	return rc;
}
