/*
 * cmd-verify.c - `jobpub verify`: is every published file still there, as recorded?
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cmd.h"
#include "dest.h"
#include "json.h"
#include "log.h"
#include "util.h"

static int cmd_verify(int argc, char **argv);

const struct jp_cmd jp_cmd_verify = {
	.name = "verify",
	.summary = "Check that every published file exists with its recorded size (--deep: SHA-256).",
	.usage = "jobpub verify [--db FILE] [--deep] [--json] [--identity FILE] [--known-hosts FILE]\n"
	         "                     [--timeout SECONDS] [--s3-endpoint URL] [ID]...",
	.options =
		JP_CMD_HELP_DB
		"      --deep                read every file back and compare its SHA-256\n"
		JP_CMD_HELP_JSON
		JP_CMD_NET_HELP
		JP_CMD_HELP_HELP
		"Without ID, every job with published files.  Exit 0: all as recorded; 1: some file\n"
		"missing or different; other codes: a destination could not be checked.\n",
	.exec = cmd_verify,
};

struct verify {
	struct jp_dest_cache cache;
	struct jp_dest_opts opts;
	int deep;
	struct jp_json *j;      /* NULL: text */
	char *cur;              /* the job being reported (malloc'd) */
	size_t ok, bad;         /* files of the current job */
	size_t total_ok, total_bad, jobs_bad;
	int worst;              /* exit code of a check that could not be made */
};

static void
report(struct verify *v, const char *job, const struct jp_file_info *f, const char *problem)
{
	if (v->j != NULL) {
		jp_json_object(v->j, NULL);
		jp_json_str(v->j, "job", job);
		jp_json_str(v->j, "remote", f->remote);
		jp_json_str(v->j, "result", problem ? problem : "ok");
		jp_json_end(v->j, '}');
	} else if (problem != NULL) {
		printf("job %s: %s: %s\n", job, f->remote, problem);
	}
}

static void
end_job(struct verify *v)
{
	if (v->cur == NULL)
		return;
	if (v->j == NULL)
		printf("job %s: %zu of %zu files as recorded%s\n", v->cur, v->ok, v->ok + v->bad,
		       v->bad ? "" : " - ok");
	v->jobs_bad += v->bad > 0;
	free(v->cur);
	v->cur = NULL;
}

/* Sums what will be checked, for the progress line. */
static int
count_bytes(void *arg, const char *job, const struct jp_file_info *f)
{
	(void)job;
	*(uint64_t *)arg += f->size > 0 ? (uint64_t)f->size : 0;
	return 0;
}

static int
check_file(void *arg, const char *job, const struct jp_file_info *f)
{
	struct verify *v = arg;
	struct jp_error e;
	struct jp_stat st;
	struct jp_dest *d;
	char problem[JP_ERRMSG_MAX + 64] = "";

	if (v->cur == NULL || strcmp(v->cur, job) != 0) {
		end_job(v);
		v->cur = strdup(job);
		v->ok = v->bad = 0;
	}
	jp_error_clear(&e);
	if (f->destination == NULL || f->key == NULL) {
		snprintf(problem, sizeof(problem),
		         "cannot be checked: published before the catalogue recorded its key");
	} else if ((d = jp_cmd_dest(&v->cache, f->destination, &v->opts, &e)) == NULL ||
	           jp_dest_stat(d, f->key, &st, &e) != JP_OK) {
		snprintf(problem, sizeof(problem), "cannot be checked: %s", e.msg);
		if (v->worst == 0 || e.code < v->worst)
			v->worst = e.code;
	} else if (!st.exists) {
		snprintf(problem, sizeof(problem), "missing");
	} else if ((int64_t)st.size != f->size) {
		snprintf(problem, sizeof(problem), "size %llu, recorded %lld",
		         (unsigned long long)st.size, (long long)f->size);
	} else if (v->deep) {
		unsigned char sha[32];
		char hex[65];

		if (jp_dest_hash(d, f->key, sha, &e) != JP_OK) {
			snprintf(problem, sizeof(problem), "cannot be read back: %s", e.msg);
			if (v->worst == 0 || e.code < v->worst)
				v->worst = e.code;
		} else {
			jp_hex(sha, 32, hex);
			if (strcmp(hex, f->sha256) != 0)
				snprintf(problem, sizeof(problem), "content differs: sha256 %.16s..., recorded %.16s...",
				         hex, f->sha256);
		}
	}
	jp_progress_add(f->size > 0 ? (uint64_t)f->size : 0);
	report(v, job, f, problem[0] ? problem : NULL);
	if (problem[0]) {
		v->bad++;
		v->total_bad++;
	} else {
		v->ok++;
		v->total_ok++;
	}
	return 0;
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
	struct verify v;
	struct jp_catalog *cat = NULL;
	struct jp_json j;
	struct jp_error err;
	const char *db = NULL;
	int ch, json = 0, rc = 0, n;

	memset(&v, 0, sizeof(v));
	v.opts.readonly = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if ((n = jp_cmd_net_option(c, ch, optarg, &v.opts)) != 0) {
			if (n < 0)
				return 64;
			continue;
		}
		switch (ch) {
		case 'D': db = optarg; break;
		case 'd': v.deep = 1; break;
		case 'J': json = 1; break;
		case 'h': jp_cmd_print_help(c, stdout); return 0;
		default: return jp_cmd_getopt_error(c, ch, argv);
		}
	}
	jp_log_setup(JP_LOG_TEXT, 0, NULL);
	jp_error_clear(&err);
	if (jp_catalog_open(jp_cmd_db(db), 30000, JP_CATALOG_READONLY, &cat, &err) != JP_OK) {
		jp_log_error("%s", err.msg);
		return err.code;
	}
	if (json) {
		jp_json_init(&j, stdout);
		jp_json_object(&j, NULL);
		jp_json_array(&j, "files");
		v.j = &j;
	}
	{
		/* A progress line on a terminal (bytes checked, rate, ETA); nothing elsewhere. */
		uint64_t total = 0;
		int k;

		if (optind == argc)
			jp_catalog_files(cat, NULL, count_bytes, &total, &err);
		for (k = optind; k < argc; k++)
			jp_catalog_files(cat, argv[k], count_bytes, &total, &err);
		jp_error_clear(&err);
		jp_progress_begin(total);
	}
	if (optind == argc) {
		rc = jp_catalog_files(cat, NULL, check_file, &v, &err);
		if (rc == JP_OK && !json && jp_catalog_empty(cat))
			printf("nothing published yet (jobpub has not written to %s)\n", jp_cmd_db(db));
	} else {
		for (; optind < argc && rc == JP_OK; optind++) {
			size_t before = v.total_ok + v.total_bad;
			rc = jp_catalog_files(cat, argv[optind], check_file, &v, &err);
			/* Nothing to check in a catalogue jobpub has not written yet: nothing is wrong. */
			if (rc == JP_OK && v.total_ok + v.total_bad == before && jp_catalog_empty(cat)) {
				if (!json)
					printf("job %s: nothing published yet (jobpub has not written to %s)\n",
					       argv[optind], jp_cmd_db(db));
			} else if (rc == JP_OK && v.total_ok + v.total_bad == before) {
				if (!json)
					printf("job %s: no published files\n", argv[optind]);
				v.total_bad++;
				v.jobs_bad++;
			}
		}
	}
	jp_progress_end();
	end_job(&v);
	if (json) {
		jp_json_end(&j, ']');
		jp_json_int(&j, "ok", (int64_t)v.total_ok);
		jp_json_int(&j, "bad", (int64_t)v.total_bad);
		jp_json_end(&j, '}');
		putchar('\n');
	}
	if (rc != JP_OK) {
		jp_log_error("%s", err.msg);
		rc = err.code;
	} else if (v.worst != 0) {
		rc = v.worst;
	} else {
		rc = v.total_bad > 0 ? 1 : 0;
	}
	jp_cmd_dest_cache_free(&v.cache);
	jp_catalog_close(cat);
	return rc;
}
