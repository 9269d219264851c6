/*
 * cmd-republish.c - `jobpub republish`: publish again the jobs that failed, with what their
 * last attempt recorded (republish.h chooses and publishes them; this prints).
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "json.h"
#include "log.h"
#include "republish.h"

static int cmd_republish(int argc, char **argv);

const struct jp_cmd jp_cmd_republish = {
	.name = "republish",
	.summary = "Publish again the jobs whose last attempt failed, as that attempt was recorded.",
	.usage = "jobpub republish [--db FILE] [--status STATUS] [--job ID]... [--since TIME]\n"
	         "                        [--parallel N] [--overwrite] [--dry-run] [--json]\n"
	         "                        [--db-timeout SECONDS] [--spool DIR] [--retries N]\n"
	         "                        [--timeout SECONDS] [--stall SECONDS] [-o KEY=VALUE]...",
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
		JP_CMD_HELP_JSON_LINES
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
	.backend_options = 1,
};

/* Prints the reports: a line per job and a summary, or one JSON document (its "jobs" array
 * begun with the first report). */
struct out {
	int json, dry, begun;
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
	jp_json_array(&out->j, "jobs");
}

static void
print_report(void *arg, const struct jp_republish_report *r)
{
	struct out *out = arg;
	struct jp_json *j = &out->j;

	begin(out);
	if (r->what == JP_REPUBLISH_PLANNED && out->json) {
		jp_json_object(j, NULL);
		jp_json_str(j, "job", r->job);
		jp_json_str(j, "status", r->status);
		jp_json_str(j, "manifest", r->manifest);
		jp_json_str(j, "workdir", r->workdir);
		jp_json_str(j, "destination", r->dest);
		jp_json_end(j, '}');
	} else if (r->what == JP_REPUBLISH_PLANNED) {
		printf("job %s: would republish (status %s) %s in %s\n", r->job,
		       r->status ? r->status : "none", r->manifest, r->workdir);
	} else if (out->json) {
		char *msg = strdup(r->message), *nl;

		/* One line per job, as it always was: tabs and newlines become spaces. */
		while (msg != NULL && (nl = strpbrk(msg, "\t\n")) != NULL)
			*nl = ' ';
		jp_json_object(j, NULL);
		jp_json_str(j, "job", r->job);
		jp_json_str(j, "outcome", r->code == 0 ? "published" : "failed");
		jp_json_int(j, "exit_code", r->code);
		if (r->code != 0 && msg != NULL && *msg)
			jp_json_str(j, "message", msg);
		jp_json_end(j, '}');
		free(msg);
	} else {
		if (r->code == 0)
			printf("job %s: published\n", r->job);
		else
			printf("job %s: failed (exit %d): %s\n", r->job, r->code, r->message);
		fflush(stdout); /* seen as each job ends */
	}
}

static void
print_summary(struct out *out, const struct jp_republish_result *res)
{
	if (out->json) {
		begin(out);
		jp_json_end(&out->j, ']');
		if (!out->dry) {
			jp_json_int(&out->j, "published", (int64_t)res->published);
			jp_json_int(&out->j, "failed", (int64_t)res->failed);
		}
		jp_json_end(&out->j, '}');
		putchar('\n');
	} else if (out->dry) {
		printf("republish: %zu job%s\n", res->jobs, res->jobs == 1 ? "" : "s");
	} else {
		printf("republish: %zu published, %zu still failing%s\n", res->published, res->failed,
		       res->interrupted ? " (interrupted)" : "");
	}
}

/* In each child: a publish of its own, with the stop and clean-up bounds; a second signal ends
 * it. */
static void
child_signals(void)
{
	jp_cmd_signals_child();
	jp_publish_set_cleanup_hook(jp_cmd_stop_cleanup);
}

/* Once the jobs are chosen: SIGINT/SIGTERM stop the batch and reach every running child. */
static void
catch_signals(void)
{
	jp_cmd_catch_signals(jp_republish_interrupt);
}

/* --since TIME (a date, a time, or an age) as an ISO time into since; -1 when invalid. */
static int
parse_since(const char *arg, char *since, size_t len)
{
	long age = jp_cmd_duration(arg);

	if (age >= 0 && strpbrk(arg, "-:T") == NULL) {
		time_t t = time(NULL) - age;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(since, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
		return 0;
	}
	if (strlen(arg) >= 10 && arg[4] == '-' && arg[7] == '-') {
		snprintf(since, len, "%s", arg);
		return 0;
	}
	return -1;
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
	struct jp_republish_opts ro;
	struct jp_republish_result res;
	struct jp_publish_opts o; /* what every job's publish gets from the command line */
	struct jp_error err;
	struct out out;
	const char *db = NULL, **jobs = NULL;
	char since[32] = "";
	size_t n_jobs = 0;
	int ch, r, rc = 64;

	memset(&ro, 0, sizeof(ro));
	memset(&o, 0, sizeof(o));
	memset(&out, 0, sizeof(out));
	o.db_timeout_ms = 30000;
	o.parallel = 4; /* transfer lanes of each publish, as publish's default */
	o.retries = 3;
	ro.parallel = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":j:o:nh", jp_cmd_longopts(longopts), NULL)) != -1) {
		switch (ch) {
		case 'D': db = optarg; break;
		case 'Q': ro.spool = optarg; break;
		case 's': ro.status = optarg; break;
		case 'j':
			if (!jp_cmd_job_ok(optarg)) {
				jp_cmd_usage_error(c, "--job '%s': not a job ID", optarg);
				goto out;
			}
			jobs = realloc(jobs, (n_jobs + 2) * sizeof(char *));
			jobs[n_jobs++] = optarg;
			jobs[n_jobs] = NULL;
			break;
		case 'S':
			if (parse_since(optarg, since, sizeof(since)) != 0) {
				jp_cmd_usage_error(c, "--since %s: expected a date, a time or an age", optarg);
				goto out;
			}
			break;
		case 'P':
			if ((ro.parallel = jp_cmd_count(optarg, 1, 64)) < 0) {
				jp_cmd_usage_error(c, "--parallel %s: expected 1 to 64", optarg);
				goto out;
			}
			break;
		case 'n': ro.dry_run = out.dry = 1; break;
		case 'O': o.overwrite = 1; break;
		case 'J': out.json = 1; break;
		case 'T':
			if (jp_cmd_db_timeout(c, optarg, &o.db_timeout_ms) != 0)
				goto out;
			break;
		case 'h': jp_cmd_print_help(c, stdout); rc = 0; goto out;
		default:
			if ((r = jp_cmd_conn_opt(c, ch, optarg, &o)) > 0)
				break;
			if (r == 0)
				jp_cmd_getopt_error(c, ch, argv);
			goto out;
		}
	}
	if (optind < argc) {
		jp_cmd_usage_error(c, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	o.db = jp_cmd_db(db);
	ro.jobs = jobs;
	ro.since = since;
	ro.publish = &o;
	ro.started = catch_signals;
	ro.child = child_signals;
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	jp_error_clear(&err);
	if ((rc = jp_republish(&ro, print_report, &out, &res, &err)) != JP_OK && err.code != 0) {
		jp_log_error("%s", err.msg);
		rc = jp_exit_code(rc, &err);
		goto out;
	}
	print_summary(&out, &res);
	rc = res.first_code != 0 ? res.first_code : res.interrupted ? 75 : 0;
out:
	free(jobs);
	return rc;
}
