/*
 * testpub.h - a published fixture for the unit tests of what works on published jobs
 * (verify, gc, republish): a temp dir holding a SQLite catalogue (cat.db), a manifest, a work
 * directory per job and a file:// archive, jobs published into it with jp_publish.
 *
 * Header-only, as testlib.h (include that first).
 */
#ifndef JP_TESTPUB_H
#define JP_TESTPUB_H

#include "log.h"
#include "publish.h"

struct t_pub {
	char *dir;      /* the temp dir */
	char *db;       /* dir/cat.db */
	char *manifest; /* dir/manifest.yaml */
	char *archive;  /* dir/archive (the destination's directory) */
	char *url;      /* file://dir/archive */
};

/* Two outputs per job: out/a (size_a bytes of a pattern) -> <job>/a, out/b.txt -> <job>/b.txt. */
static inline void
t_pub_setup(struct t_pub *p)
{
	umask(022);
	jp_publish_interrupt(0);
	jp_log_setup(JP_LOG_TEXT, -1, NULL);
	p->dir = t_tempdir();
	p->db = t_path(p->dir, "cat.db");
	p->manifest = t_path(p->dir, "manifest.yaml");
	p->archive = t_path(p->dir, "archive");
	if (asprintf(&p->url, "file://%s", p->archive) < 0)
		ck_abort_msg("out of memory");
	t_write_str(p->dir, "manifest.yaml",
	            "outputs:\n"
	            "  - name: a\n"
	            "    path: out/a\n"
	            "    to: ${job}/a\n"
	            "  - name: b\n"
	            "    path: out/b.txt\n"
	            "    to: ${job}/b.txt\n");
}

static inline void
t_pub_teardown(struct t_pub *p)
{
	jp_publish_interrupt(0);
	t_rmtree(p->dir);
	free(p->dir);
	free(p->db);
	free(p->manifest);
	free(p->archive);
	free(p->url);
	memset(p, 0, sizeof(*p));
}

/* The work directory of job (dir/work-<job>), malloc'd. */
static inline char *
t_pub_work(const struct t_pub *p, const char *job)
{
	char *rel = NULL, *w;

	if (asprintf(&rel, "work-%s", job) < 0)
		ck_abort_msg("out of memory");
	w = t_path(p->dir, rel);
	free(rel);
	return w;
}

/* Writes job's outputs (out/a: size_a bytes) and publishes them to p->url.  Returns
 * jp_publish's exit code, with its reason on err. */
static inline int
t_pub_job(const struct t_pub *p, const char *job, size_t size_a, struct jp_error *err)
{
	struct jp_publish_opts o;
	char *work = t_pub_work(p, job);
	int rc;

	t_write_pattern(work, "out/a", size_a, 3);
	t_write_str(work, "out/b.txt", "b\n");
	memset(&o, 0, sizeof(o));
	o.job = job;
	o.manifest = p->manifest;
	o.workdir = work;
	o.db = p->db;
	o.dest = p->url;
	o.db_timeout_ms = 2000;
	jp_error_clear(err);
	rc = jp_exit_code(jp_publish(&o, err), err); /* the exit code the command gives */
	free(work);
	return rc;
}

/* p->archive/rel, malloc'd. */
static inline char *
t_pub_remote(const struct t_pub *p, const char *rel)
{
	return t_path(p->archive, rel);
}

#endif
