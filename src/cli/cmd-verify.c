/*
 * cmd-verify.c - `jobpub verify`: is every published file still there, as recorded?
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "cmd.h"
#include "json.h"
#include "log.h"
#include "verify.h"

static int cmd_verify(int argc, char **argv);

const struct jp_cmd jp_cmd_verify = {
	.name = "verify",
	.summary = "Check that every published file exists with its recorded size (--deep: SHA-256).",
	.usage = "jobpub verify [--db FILE] [--deep] [--json] [--timeout SECONDS] [-o KEY=VALUE]...\n"
	         "                     [ID]...",
	.options =
		JP_CMD_HELP_DB
		"      --deep                read every file back and compare its SHA-256\n"
		JP_CMD_HELP_JSON
		JP_CMD_NET_HELP
		JP_CMD_HELP_HELP
		"Without ID, every job with published files.  Exit 0: all as recorded; 1: some file\n"
		"missing or different; other codes: a destination could not be checked.\n",
	.exec = cmd_verify,
	.backend_options = 1,
};

/* Prints the reports: lines (only problems, and a line per job), or the JSON "files" array. */
struct out {
	struct jp_json *j; /* NULL: text */
	const char *db;
};

static void
print_report(void *arg, const struct jp_verify_report *r)
{
	struct out *out = arg;

	switch (r->what) {
	case JP_VERIFY_FILE:
		if (out->j != NULL) {
			jp_json_object(out->j, NULL);
			jp_json_str(out->j, "job", r->job);
			jp_json_str(out->j, "remote", r->remote);
			jp_json_str(out->j, "result", r->problem ? r->problem : "ok");
			jp_json_end(out->j, '}');
		} else if (r->problem != NULL) {
			printf("job %s: %s: %s\n", r->job, r->remote, r->problem);
		}
		break;
	case JP_VERIFY_JOB:
		if (out->j == NULL)
			printf("job %s: %zu of %zu files as recorded%s\n", r->job, r->ok, r->ok + r->bad,
			       r->bad ? "" : " - ok");
		break;
	case JP_VERIFY_NO_FILES:
		if (out->j == NULL)
			printf("job %s: no published files\n", r->job);
		break;
	case JP_VERIFY_UNWRITTEN:
		if (out->j != NULL)
			break;
		if (r->job != NULL)
			printf("job %s: nothing published yet (jobpub has not written to %s)\n", r->job,
			       out->db);
		else
			printf("nothing published yet (jobpub has not written to %s)\n", out->db);
		break;
	}
}

static int
cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		JP_CMD_OPT_DB,
		{"deep", no_argument, NULL, 'd'},
		JP_CMD_OPT_JSON,
		JP_CMD_OPT_HELP,
		JP_CMD_NET_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	const struct jp_cmd *c = &jp_cmd_verify;
	struct jp_verify_opts o;
	struct jp_verify_result res;
	struct jp_catalog *cat = NULL;
	struct out out = {NULL, NULL};
	struct jp_json j;
	struct jp_error err;
	const char *db = NULL;
	int ch, json = 0, rc, n;

	memset(&o, 0, sizeof(o));
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":o:h", jp_cmd_longopts(longopts), NULL)) != -1) {
		if ((n = jp_cmd_net_option(c, ch, optarg, &o.dest)) != 0) {
			if (n < 0)
				return 64;
			continue;
		}
		switch (ch) {
		case 'D': db = optarg; break;
		case 'd': o.deep = 1; break;
		case 'J': json = 1; break;
		case 'h': jp_cmd_print_help(c, stdout); return 0;
		default: return jp_cmd_getopt_error(c, ch, argv);
		}
	}
	o.jobs = (const char *const *)argv + optind;
	o.n_jobs = (size_t)(argc - optind);
	out.db = jp_cmd_db(db);
	jp_log_setup(JP_LOG_TEXT, 0, NULL);
	jp_error_clear(&err);
	if ((rc = jp_catalog_open(out.db, 30000, JP_CATALOG_READONLY, &cat, &err)) != JP_OK) {
		jp_log_error("%s", err.msg);
		return jp_exit_code(rc, &err);
	}
	if (json) {
		jp_json_init(&j, stdout);
		jp_json_object(&j, NULL);
		jp_json_array(&j, "files");
		out.j = &j;
	}
	rc = jp_verify(cat, &o, print_report, &out, &res, &err);
	if (json) {
		jp_json_end(&j, ']');
		jp_json_int(&j, "ok", (int64_t)res.ok);
		jp_json_int(&j, "bad", (int64_t)res.bad);
		jp_json_end(&j, '}');
		putchar('\n');
	}
	jp_catalog_close(cat);
	/* A file that could not be checked is in its line; a catalogue error is said here. */
	if (err.code != 0) {
		jp_log_error("%s", err.msg);
		return jp_exit_code(JP_FAILED, &err);
	}
	if (res.unchecked != 0)
		return res.unchecked;
	return rc == JP_OK ? 0 : 1;
}
