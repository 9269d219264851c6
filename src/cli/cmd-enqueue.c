/*
 * cmd-enqueue.c - `jobpub enqueue`: a job script registers its publish in the spool (spool.h),
 * for `jobpub publish --spool` at the end of the job or from the Slurm epilogue.
 *
 * Everything the publish needs is resolved now, in the job's environment: paths made absolute
 * (the epilogue runs elsewhere, with another working directory), $JOBPUB_DB and $JOBPUB_DEST
 * captured, and the manifest checked, so a typo fails the job script and not the epilogue.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "cmd.h"
#include "log.h"
#include "manifest.h"
#include "publish.h"
#include "spool.h"

static int cmd_enqueue(int argc, char **argv);

const struct jp_cmd jp_cmd_enqueue = {
	.name = "enqueue",
	.summary = "Register a job's publish in the spool, for `publish --spool` or the Slurm "
	           "epilogue.",
	.usage = "jobpub enqueue --job ID --manifest FILE --workdir DIR [--db FILE] [--dest URL]\n"
	         "                      [--set NAME=VALUE]... [--spool DIR] [--key KEY]",
	.options =
		"  -j, --job ID              the job's ID in the catalogue\n"
		"  -m, --manifest FILE       the job's manifest (YAML), checked now\n"
		"  -w, --workdir DIR         the job's work directory (may not exist yet: it must\n"
		"                            when the job ends)\n"
		JP_CMD_HELP_DB
		"                            (must exist when the manifest names catalog.table)\n"
		JP_CMD_HELP_DEST
		JP_CMD_HELP_SET
		JP_CMD_HELP_SPOOL_DIR
		"      --key KEY             file the entry under KEY (default: $SLURM_JOB_ID when set,\n"
		"                            else the job's ID): what `publish --spool --job KEY` and\n"
		"                            the Slurm epilog ask for\n"
		JP_CMD_HELP_HELP,
	.exec = cmd_enqueue,
};

/* realpath of an existing file or directory; 66 when missing, 74 otherwise. */
static char *
absolute_existing(const char *what, const char *path, int want_dir, struct jp_error *err)
{
	struct stat sb;
	char *p;

	if ((p = realpath(path, NULL)) == NULL) {
		jp_error_set(err, errno == ENOENT || errno == ENOTDIR ? JP_E_NOINPUT : JP_E_IOERR,
		             "%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (stat(p, &sb) != 0 || (want_dir ? !S_ISDIR(sb.st_mode) : S_ISDIR(sb.st_mode))) {
		jp_error_set(err, JP_E_NOINPUT, "%s %s: %s", what, path,
		             want_dir ? "not a directory" : "is a directory");
		free(p);
		return NULL;
	}
	return p;
}

/* The work directory may not exist yet: job scripts enqueue first, before the run makes it.
 * realpath of the deepest existing ancestor (which must be a directory), then the rest as
 * given; "." and ".." in that rest are refused (they cannot be resolved before it exists). */
static char *
absolute_workdir(const char *path, struct jp_error *err)
{
	char *full = NULL, *abs = NULL, *real = NULL, *out = NULL, *slash, *c;
	struct stat sb;

	if ((real = realpath(path, NULL)) != NULL || errno != ENOENT) {
		free(real);
		return absolute_existing("--workdir", path, 1, err);
	}
	if (path[0] == '/')
		full = strdup(path);
	else if ((real = realpath(".", NULL)) != NULL)
		full = jp_asprintf("%s/%s", real, path);
	free(real);
	real = NULL;
	if (full == NULL || (abs = strdup(full)) == NULL) {
		jp_error_set(err, JP_E_IOERR, "--workdir %s: %s", path, strerror(errno));
		goto out;
	}
	/* Cut components off the end until what is left exists. */
	while (real == NULL && (slash = strrchr(abs, '/')) != NULL) {
		*slash = '\0';
		if ((real = realpath(abs[0] != '\0' ? abs : "/", NULL)) == NULL && errno != ENOENT) {
			jp_error_set(err, JP_E_IOERR, "--workdir %s: %s: %s", path, abs, strerror(errno));
			goto out;
		}
	}
	if (real == NULL || stat(real, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		jp_error_set(err, JP_E_NOINPUT, "--workdir %s: %s is not a directory", path,
		             real != NULL ? real : "/");
		goto out;
	}
	/* The part that does not exist yet: full + strlen(abs), starting with '/'. */
	for (c = full + strlen(abs); *c != '\0'; c += strcspn(c, "/")) {
		c += strspn(c, "/");
		if ((c[0] == '.' && (c[1] == '/' || c[1] == '\0')) ||
		    (c[0] == '.' && c[1] == '.' && (c[2] == '/' || c[2] == '\0'))) {
			jp_error_set(err, JP_E_NOINPUT, "--workdir %s: '.' or '..' below %s, which does "
			             "not exist yet", path, abs[0] != '\0' ? abs : "/");
			goto out;
		}
	}
	out = jp_asprintf("%s%s", strcmp(real, "/") == 0 ? "" : real, full + strlen(abs));
	if (out == NULL)
		jp_error_set(err, JP_E_SOFTWARE, "out of memory");
out:
	free(full);
	free(abs);
	free(real);
	return out;
}

/* The catalogue may not exist before the first publish: for a file, realpath of its
 * directory, then its name (jp_catalog_locator_canonical). */
static char *
absolute_db(const char *db, struct jp_error *err)
{
	char *out = jp_catalog_locator_canonical(db);

	if (out != NULL)
		return out;
	if (errno == EPROTONOSUPPORT)
		jp_catalog_location_check(db, err);
	else if (errno == ENOENT || errno == EINVAL)
		jp_error_set(err, JP_E_NOINPUT, "--db %s: %s", db,
		             errno == ENOENT ? "its directory does not exist" : "not a file name");
	else if (errno == ENOMEM)
		jp_error_set(err, JP_E_SOFTWARE, "out of memory");
	else
		jp_error_set(err, JP_E_IOERR, "--db %s: %s", db, strerror(errno));
	return NULL;
}

static int
enqueue(const char *job, const char *key, const char *manifest, const char *workdir,
        const char *db, const char *dest, const struct jp_sets *sets, const char *spool)
{
	struct jp_spool_entry e;
	struct jp_manifest *m = NULL;
	struct jp_error err;
	char *spooldir = NULL, *path = NULL;
	int r;

	memset(&e, 0, sizeof(e));
	jp_error_clear(&err);
	e.job = (char *)job;
	/* Filed under the Slurm job ID when it is not the catalogue's: that is all the epilog
	 * knows of the job. */
	e.key = key != NULL && strcmp(key, job) != 0 ? (char *)key : NULL;
	e.dest = (char *)dest;
	e.sets = sets->v;
	e.n_sets = sets->n;
	e.uid = geteuid();
	if ((e.manifest = absolute_existing("--manifest", manifest, 0, &err)) == NULL ||
	    (e.workdir = absolute_workdir(workdir, &err)) == NULL ||
	    (e.db = absolute_db(db, &err)) == NULL) {
		r = JP_FAILED;
		goto out;
	}
	/* The checks publish would make first, now, while the job script can still say so
	 * (messages name the manifest as the user wrote it). */
	if ((r = jp_manifest_load(manifest, &m, &err)) != JP_OK ||
	    (r = jp_manifest_check_job(m, job, sets->v, sets->n, NULL, dest, &err)) != JP_OK ||
	    (r = jp_check_destination(m, job, sets->v, sets->n, dest, NULL, NULL, &err)) != JP_OK)
		goto out;
	/* With another project's table the catalogue must exist (publish would say 66 in the
	 * epilog, where nobody reads it): a typo in --db is found while the job script runs. */
	if (m->external && access(e.db, F_OK) != 0) {
		r = jp_error_set(&err, JP_E_NOINPUT,
		                 "catalog: %s: %s (the manifest's catalog.table is an existing table, "
		                 "so the catalogue must exist; check --db)", db, strerror(errno));
		goto out;
	}
	if ((spooldir = spool != NULL ? strdup(spool) : jp_spool_dir()) == NULL) {
		r = jp_error_set(&err, JP_E_SOFTWARE, "out of memory");
		goto out;
	}
	if ((r = jp_spool_write(spooldir, &e, &err)) != JP_OK)
		goto out;
	path = jp_asprintf("%s%s%s.json", spooldir,
	                   spooldir[strlen(spooldir) - 1] == '/' ? "" : "/", e.key ? e.key : job);
	jp_log_info("job %s: queued in %s", job, path != NULL ? path : spooldir);
out:
	if (r != JP_OK)
		jp_log_error("%s", err.msg);
	jp_manifest_free(m);
	free(e.manifest);
	free(e.workdir);
	free(e.db);
	free(spooldir);
	free(path);
	return jp_exit_code(r, &err);
}

static int
cmd_enqueue(int argc, char **argv)
{
	static const struct option longopts[] = {
		JP_CMD_OPT_JOB,
		JP_CMD_OPT_MANIFEST,
		JP_CMD_OPT_WORKDIR,
		JP_CMD_OPT_DB,
		JP_CMD_OPT_DEST,
		JP_CMD_OPT_SET,
		{"spool", required_argument, NULL, 'S'},
		{"key", required_argument, NULL, 'k'},
		JP_CMD_OPT_HELP,
		{NULL, 0, NULL, 0},
	};
	const struct jp_cmd *c = &jp_cmd_enqueue;
	const char *job = NULL, *manifest = NULL, *workdir = NULL, *db = NULL, *dest = NULL;
	const char *spool = NULL, *env, *key = NULL;
	struct jp_sets sets = {NULL, 0};
	int ch, rc;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":j:m:w:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j': job = optarg; break;
		case 'm': manifest = optarg; break;
		case 'w': workdir = optarg; break;
		case 'D': db = optarg; break;
		case 'd': dest = optarg; break;
		case 'S': spool = optarg; break;
		case 'k': key = optarg; break;
		case 's':
			if (jp_sets_add(c, &sets, optarg) != 0) {
				jp_sets_free(&sets);
				return 64;
			}
			break;
		case 'h':
			jp_cmd_print_help(c, stdout);
			jp_sets_free(&sets);
			return 0;
		default:
			jp_sets_free(&sets);
			return jp_cmd_getopt_error(c, ch, argv);
		}
	}
	if (optind < argc) {
		jp_sets_free(&sets);
		return jp_cmd_usage_error(c, "unexpected argument '%s'", argv[optind]);
	}
	if (job == NULL || manifest == NULL || workdir == NULL) {
		jp_sets_free(&sets);
		return jp_cmd_usage_error(c, "%s is required",
		                          job == NULL ? "--job" : manifest == NULL ? "--manifest"
		                                                                  : "--workdir");
	}
	if (!jp_cmd_job_ok(job)) {
		jp_sets_free(&sets);
		return jp_cmd_usage_error(c, "--job '%s': 1-128 printable characters, no '/' or space",
		                          job);
	}
	if (spool != NULL && spool[0] == '\0') {
		jp_sets_free(&sets);
		return jp_cmd_usage_error(c, "--spool: empty directory name");
	}
	/* The epilogue does not have the job's environment: what it would have read from there is
	 * written into the entry now. */
	if (dest == NULL && (env = getenv("JOBPUB_DEST")) != NULL && env[0] != '\0')
		dest = env;
	jp_log_setup(JP_LOG_TEXT, 0, NULL);
	if (key == NULL && (env = getenv("SLURM_JOB_ID")) != NULL && env[0] != '\0')
		key = env;
	if (key != NULL && !jp_cmd_job_ok(key)) {
		jp_sets_free(&sets);
		return jp_cmd_usage_error(c, "--key '%s': 1-128 printable characters, no '/' or space",
		                          key);
	}
	rc = enqueue(job, key, manifest, workdir, jp_cmd_db(db), dest, &sets, spool);
	jp_sets_free(&sets);
	return rc;
}
