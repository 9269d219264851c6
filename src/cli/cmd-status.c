/*
 * cmd-status.c - `jobpub status`: a job's row, files and attempts, or counts per status.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cmd.h"
#include "json.h"
#include "log.h"

static int cmd_status(int argc, char **argv);

const struct jp_cmd jp_cmd_status = {
	.name = "status",
	.summary = "Show a job's status, published files and attempts; without ID, jobs per status.",
	.usage = "jobpub status [--db FILE] [--json] [ID]",
	.options =
		JP_CMD_HELP_DB
		JP_CMD_HELP_JSON
		JP_CMD_HELP_HELP,
	.exec = cmd_status,
};

/* Mapped columns are those the job's published files name. */
static void
print_columns_text(const struct jp_job_info *ji)
{
	size_t i;

	for (i = 0; i < ji->n_files; i++) {
		const char *v;
		int found;

		if (ji->files[i].column == NULL)
			continue;
		v = jp_row_get(ji->row, ji->files[i].column, &found);
		printf("  %-24s %s\n", ji->files[i].column, v ? v : "(null)");
	}
}

/* The latest attempt when it failed after an earlier one published the job's files: the job
 * stays published as recorded, and this says what went wrong since.  NULL otherwise. */
static const struct jp_attempt_info *
failed_since_published(const struct jp_job_info *ji)
{
	const struct jp_attempt_info *last;
	size_t i;

	/* A job whose failure changed its status is not published any more (--overwrite replaced
	 * some of its files): its attempts say the rest. */
	if (ji->n_files == 0 || ji->n_attempts == 0 || ji->status == NULL ||
	    strcmp(ji->status, JP_STATUS_FAILED) == 0 || strcmp(ji->status, JP_STATUS_PUBLISHING) == 0)
		return NULL;
	last = &ji->attempts[ji->n_attempts - 1];
	if (last->outcome == NULL || strcmp(last->outcome, "published") == 0 ||
	    strcmp(last->outcome, "running") == 0)
		return NULL;
	for (i = 0; i + 1 < ji->n_attempts; i++)
		if (ji->attempts[i].outcome != NULL && strcmp(ji->attempts[i].outcome, "published") == 0)
			return last;
	return NULL;
}

static void
print_text(const char *job, const struct jp_job_info *ji)
{
	const struct jp_attempt_info *lf = failed_since_published(ji);
	char sz[32];
	size_t i;

	printf("job %s: %s (table %s)\n", job, ji->status ? ji->status : ji->row ? "(null)" : "no row",
	       ji->table);
	if (ji->lease_host != NULL)
		printf("being published now by %s:%lld since %s\n", ji->lease_host,
		       (long long)ji->lease_pid, ji->lease_since ? ji->lease_since : "?");
	if (lf != NULL)
		printf("last attempt failed: #%lld %s [%s, exit %lld] %s; the files below are still "
		       "those published\n",
		       (long long)lf->id, lf->started_at, lf->error_class ? lf->error_class : lf->outcome,
		       (long long)lf->exit_code, lf->message ? lf->message : "");
	if (ji->row != NULL)
		print_columns_text(ji);
	printf("files: %zu\n", ji->n_files);
	for (i = 0; i < ji->n_files; i++) {
		const struct jp_file_info *f = &ji->files[i];
		printf("  %s  %s  sha256 %s  %s  (%s", f->remote,
		       jp_human_size((uint64_t)f->size, sz, sizeof(sz)), f->sha256, f->published_at,
		       f->local);
		if (f->entries >= 0)
			printf(", %lld entries", (long long)f->entries);
		if (f->etag != NULL)
			printf(", ETag %s", f->etag);
		printf(")\n");
	}
	printf("attempts: %zu\n", ji->n_attempts);
	for (i = 0; i < ji->n_attempts; i++) {
		const struct jp_attempt_info *a = &ji->attempts[i];
		printf("  #%lld %s  %s pid %lld  %s", (long long)a->id, a->started_at,
		       a->host ? a->host : "?", (long long)a->pid, a->outcome);
		if (a->duration_ms >= 0)
			printf("  %.1f s", (double)a->duration_ms / 1000.0);
		if (a->bytes >= 0)
			printf("  %s sent", jp_human_size((uint64_t)a->bytes, sz, sizeof(sz)));
		if (a->error_class != NULL)
			printf("  [%s, exit %lld] %s", a->error_class, (long long)a->exit_code,
			       a->message ? a->message : "");
		putchar('\n');
	}
}

static void
print_json(const char *job, const struct jp_job_info *ji)
{
	struct jp_json j;
	size_t i;

	jp_json_init(&j, stdout);
	jp_json_object(&j, NULL);
	jp_json_str(&j, "job", job);
	jp_json_str(&j, "table", ji->table);
	jp_json_str(&j, "status", ji->status);
	{
		const struct jp_attempt_info *lf = failed_since_published(ji);

		if (lf != NULL) {
			jp_json_object(&j, "last_failed_attempt");
			jp_json_int(&j, "id", lf->id);
			jp_json_str(&j, "started_at", lf->started_at);
			jp_json_str(&j, "outcome", lf->outcome);
			jp_json_int(&j, "exit_code", lf->exit_code);
			jp_json_str(&j, "error_class", lf->error_class);
			jp_json_str(&j, "message", lf->message);
			jp_json_end(&j, '}');
		} else {
			jp_json_null(&j, "last_failed_attempt");
		}
	}
	if (ji->lease_host != NULL) {
		jp_json_object(&j, "publishing_now");
		jp_json_str(&j, "host", ji->lease_host);
		jp_json_int(&j, "pid", ji->lease_pid);
		jp_json_str(&j, "since", ji->lease_since);
		jp_json_end(&j, '}');
	} else {
		jp_json_null(&j, "publishing_now");
	}
	jp_json_object(&j, "columns");
	for (i = 0; ji->row != NULL && i < ji->n_files; i++) {
		int found;
		if (ji->files[i].column != NULL)
			jp_json_str(&j, ji->files[i].column, jp_row_get(ji->row, ji->files[i].column, &found));
	}
	jp_json_end(&j, '}');
	jp_json_array(&j, "files");
	for (i = 0; i < ji->n_files; i++) {
		const struct jp_file_info *f = &ji->files[i];
		jp_json_object(&j, NULL);
		jp_json_str(&j, "output", f->output);
		jp_json_str(&j, "column", f->column);
		jp_json_str(&j, "local", f->local);
		jp_json_str(&j, "remote", f->remote);
		jp_json_int(&j, "size", f->size);
		if (f->entries >= 0)
			jp_json_int(&j, "entries", f->entries);
		jp_json_str(&j, "sha256", f->sha256);
		if (f->etag != NULL)
			jp_json_str(&j, "etag", f->etag);
		jp_json_str(&j, "published_at", f->published_at);
		jp_json_end(&j, '}');
	}
	jp_json_end(&j, ']');
	jp_json_array(&j, "attempts");
	for (i = 0; i < ji->n_attempts; i++) {
		const struct jp_attempt_info *a = &ji->attempts[i];
		jp_json_object(&j, NULL);
		jp_json_int(&j, "id", a->id);
		jp_json_str(&j, "started_at", a->started_at);
		jp_json_str(&j, "finished_at", a->finished_at);
		jp_json_str(&j, "host", a->host);
		jp_json_int(&j, "pid", a->pid);
		jp_json_str(&j, "outcome", a->outcome);
		if (a->exit_code >= 0) jp_json_int(&j, "exit_code", a->exit_code);
		else jp_json_null(&j, "exit_code");
		jp_json_str(&j, "error_class", a->error_class);
		jp_json_str(&j, "message", a->message);
		if (a->bytes >= 0) jp_json_int(&j, "bytes", a->bytes);
		else jp_json_null(&j, "bytes");
		if (a->duration_ms >= 0) jp_json_int(&j, "duration_ms", a->duration_ms);
		else jp_json_null(&j, "duration_ms");
		jp_json_str(&j, "manifest", a->manifest);
		jp_json_str(&j, "workdir", a->workdir);
		jp_json_str(&j, "destination", a->destination);
		jp_json_str(&j, "sets", a->sets);
		jp_json_end(&j, '}');
	}
	jp_json_end(&j, ']');
	jp_json_end(&j, '}');
	putchar('\n');
}

struct counts {
	struct jp_json *j; /* NULL: text */
	int any;
};

static void
count_one(void *arg, const char *table, const char *status, int64_t n)
{
	struct counts *c = arg;

	c->any = 1;
	if (c->j == NULL) {
		printf("%-24s %-16s %lld\n", table, status, (long long)n);
		return;
	}
	jp_json_object(c->j, NULL);
	jp_json_str(c->j, "table", table);
	jp_json_str(c->j, "status", status);
	jp_json_int(c->j, "count", n);
	jp_json_end(c->j, '}');
}

static int
cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		JP_CMD_OPT_DB,
		JP_CMD_OPT_JSON,
		JP_CMD_OPT_HELP,
		{NULL, 0, NULL, 0},
	};
	const struct jp_cmd *c = &jp_cmd_status;
	struct jp_catalog *cat = NULL;
	struct jp_job_info *ji = NULL;
	const char *db = NULL, *job = NULL;
	struct jp_error err;
	int ch, json = 0, rc = 0, r;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'D': db = optarg; break;
		case 'J': json = 1; break;
		case 'h': jp_cmd_print_help(c, stdout); return 0;
		default: return jp_cmd_getopt_error(c, ch, argv);
		}
	}
	if (optind < argc)
		job = argv[optind++];
	if (optind < argc)
		return jp_cmd_usage_error(c, "unexpected argument '%s'", argv[optind]);
	jp_error_clear(&err);
	if ((r = jp_catalog_open(jp_cmd_db(db), 30000, JP_CATALOG_READONLY, &cat, &err)) != JP_OK) {
		jp_log_error("%s", err.msg);
		return jp_exit_code(r, &err);
	}
	if (job == NULL) {
		struct jp_json j;
		struct counts cn = {json ? &j : NULL, 0};

		if (json) {
			jp_json_init(&j, stdout);
			jp_json_object(&j, NULL);
			jp_json_array(&j, "counts");
		}
		if ((r = jp_catalog_status_counts(cat, count_one, &cn, &err)) != JP_OK) {
			jp_log_error("%s", err.msg);
			rc = jp_exit_code(r, &err);
		}
		if (json) {
			jp_json_end(&j, ']');
			jp_json_end(&j, '}');
			putchar('\n');
		} else if (!cn.any && rc == 0) {
			printf(jp_catalog_empty(cat) ? "no jobs (jobpub has not written to %s yet)\n"
			                             : "no jobs\n",
			       jp_cmd_db(db));
		}
		goto out;
	}
	if (jp_catalog_empty(cat)) {
		/* A catalogue jobpub has not written yet (a fresh pdr_run database): nothing yet. */
		if (json)
			print_json(job, &(struct jp_job_info){0});
		else
			printf("job %s: nothing recorded yet (jobpub has not written to %s)\n", job,
			       jp_cmd_db(db));
		goto out;
	}
	if ((r = jp_catalog_job_info(cat, job, &ji, &err)) != JP_OK) {
		jp_log_error("%s", err.msg);
		rc = jp_exit_code(r, &err);
		goto out;
	}
	if (ji == NULL) {
		jp_log_error("job %s is not in the catalogue %s", job, jp_cmd_db(db));
		rc = 65;
		goto out;
	}
	if (json)
		print_json(job, ji);
	else
		print_text(job, ji);
out:
	jp_job_info_free(ji);
	jp_catalog_close(cat);
	return rc;
}
