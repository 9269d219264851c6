/*
 * test_plan.c - src/core/plan.c: a manifest resolved against a job directory made in a temp dir.
 * Paths and globs (sorted, directories passed over), optional and required outputs, everything
 * that escapes the workdir or the destination, duplicate remote names, a column on a glob with
 * several matches, a workdir whose name holds glob metacharacters, --dest and no destination.
 */
#include "config.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "failalloc.h"
#include "plan.h"
#include "testlib.h"

static char *root, *job, *mfile;
static struct jp_manifest *m;
static struct jp_plan *p;
static struct jp_error err;
static struct jp_plan_input in;
/* --set values; "updir" and "outside" lead out of the workdir through a template, which the
 * manifest's own check of `path:` cannot see. */
static struct jp_kv sets[4];

static void
setup(void)
{
	char *t = t_tempdir();

	root = realpath(t, NULL); /* messages name resolved paths */
	free(t);
	ck_assert_ptr_nonnull(root);
	job = t_path(root, "job");
	ck_assert_int_eq(mkdir(job, 0755), 0);
	mfile = t_path(root, "manifest.yaml");
	m = NULL;
	p = NULL;
	jp_error_clear(&err);
	memset(&in, 0, sizeof(in));
	in.workdir = job;
	in.job = "42";
	sets[0] = (struct jp_kv){"model", "kosma"};
	sets[1] = (struct jp_kv){"up", "../../etc"};
	sets[2] = (struct jp_kv){"updir", ".."};
	sets[3] = (struct jp_kv){"outside", root};
	in.sets = sets;
	in.n_sets = 4;
}

static void
teardown(void)
{
	jp_plan_free(p);
	jp_manifest_free(m);
	p = NULL;
	m = NULL;
	t_rmtree(root);
	free(root);
	free(job);
	free(mfile);
}

/* A file below the job directory. */
static void
job_file(const char *rel, const char *content)
{
	t_write_str(job, rel, content);
}

/* Loads yaml as the manifest (it must load) and builds the plan from `in`. */
static int
build(const char *yaml)
{
	t_write_str(root, "manifest.yaml", yaml);
	jp_manifest_free(m);
	m = NULL;
	ck_assert_msg(jp_manifest_load(mfile, &m, &err) == JP_OK, "manifest: %s", err.msg);
	in.m = m;
	jp_plan_free(p);
	p = NULL;
	return jp_plan_build(&in, &p, &err);
}

static void
build_ok(const char *yaml)
{
	int r = build(yaml);

	ck_assert_msg(r == JP_OK, "plan failed: %s", err.msg);
	ck_assert_ptr_nonnull(p);
}

/* The plan fails with class `code` and exactly the message want. */
static void
expect_fail(const char *yaml, int code, const char *want)
{
	int r = build(yaml);

	ck_assert_int_eq(r, JP_FAILED);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(err.code, code);
	ck_assert_str_eq(err.msg, want);
}

/* snprintf into a static buffer, for expected messages. */
static const char *
fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *
fmt(const char *f, ...)
{
	static char buf[2][JP_ERRMSG_MAX];
	static int n;
	va_list ap;

	n = !n;
	va_start(ap, f);
	vsnprintf(buf[n], sizeof(buf[n]), f, ap);
	va_end(ap);
	return buf[n];
}

/* ---- files found ---- */

START_TEST(test_path_output)
{
	build_ok("destination: file:///archive/pdr/${model}\n"
	         "outputs:\n"
	         "  - name: textout\n"
	         "    path: pdroutput/TEXTOUT\n"
	         "    to: pdrgrid/TEXTOUT${job}\n"
	         "    column: output_textout_file\n");
	ck_assert_str_eq(p->workdir, job);
	ck_assert_str_eq(p->destination, "file:///archive/pdr/kosma");
	ck_assert_uint_eq(p->n_items, 1);
	ck_assert_ptr_eq(p->items[0].out, &m->outputs[0]);
	ck_assert_str_eq(p->items[0].local, "pdroutput/TEXTOUT");
	ck_assert_str_eq(p->items[0].abs, fmt("%s/pdroutput/TEXTOUT", job));
	ck_assert_str_eq(p->items[0].key, "pdrgrid/TEXTOUT42");
	ck_assert_uint_eq(p->items[0].size, 5);
	ck_assert_uint_eq(p->total, 5);
	ck_assert_uint_eq(p->n_skipped, 0);
}
END_TEST

/* setup() plus the job's pdroutput/TEXTOUT (5 bytes), for the tests that need one file. */
static void
setup_textout(void)
{
	setup();
	job_file("pdroutput/TEXTOUT", "hello");
}

START_TEST(test_workdir_default_cwd)
{
	char cwd[PATH_MAX];

	job_file("a.txt", "abc");
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(job), 0);
	in.workdir = NULL;
	build("destination: /archive\n"
	      "outputs: [{name: a, path: a.txt, to: a}]\n");
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_msg(p != NULL, "%s", err.msg);
	ck_assert_str_eq(p->workdir, job);
	ck_assert_str_eq(p->items[0].local, "a.txt");
	ck_assert_uint_eq(p->items[0].size, 3);
}
END_TEST

START_TEST(test_glob_output)
{
	job_file("onion/c.OUT", "ccc");
	job_file("onion/a.OUT", "a");
	job_file("onion/b.OUT", "bb");
	job_file("onion/notes.txt", "not matched");
	job_file("onion/dir.OUT/inner", "a directory is not published");
	job_file("onion/e.OUT", "");
	build_ok("destination: /archive\n"
	         "outputs:\n"
	         "  - name: onion\n"
	         "    glob: onion/*.OUT\n"
	         "    to: oniongrid/ONION${job}.${basename}\n");
	ck_assert_uint_eq(p->n_items, 4);
	ck_assert_str_eq(p->items[0].local, "onion/a.OUT");
	ck_assert_str_eq(p->items[1].local, "onion/b.OUT");
	ck_assert_str_eq(p->items[2].local, "onion/c.OUT");
	ck_assert_str_eq(p->items[3].local, "onion/e.OUT");
	ck_assert_str_eq(p->items[0].key, "oniongrid/ONION42.a.OUT");
	ck_assert_str_eq(p->items[2].key, "oniongrid/ONION42.c.OUT");
	ck_assert_str_eq(p->items[3].key, "oniongrid/ONION42.e.OUT");
	ck_assert_uint_eq(p->items[1].size, 2);
	ck_assert_uint_eq(p->items[3].size, 0);
	ck_assert_uint_eq(p->total, 6);
	ck_assert_ptr_eq(p->items[3].out, &m->outputs[0]);
}
END_TEST

/* Items follow the manifest's order; a glob may sit beside a path output. */
START_TEST(test_outputs_in_order)
{
	job_file("z.txt", "z");
	job_file("g/1", "1");
	job_file("g/2", "22");
	build_ok("destination: /archive\n"
	         "outputs:\n"
	         "  - {name: z, path: z.txt, to: z}\n"
	         "  - {name: g, glob: g/*, to: 'g/${name}-${basename}'}\n");
	ck_assert_uint_eq(p->n_items, 3);
	ck_assert_str_eq(p->items[0].key, "z");
	ck_assert_str_eq(p->items[1].key, "g/g-1");
	ck_assert_str_eq(p->items[2].key, "g/g-2");
	ck_assert_uint_eq(p->total, 4);
}
END_TEST

START_TEST(test_row_values)
{
	static char *names[] = {"model_job_name", "nothing"};
	static char *values[] = {"100_40", NULL};
	const struct jp_row row = {2, names, values};

	job_file("pdroutput/TEXTOUT", "x");
	in.row = &row;
	build_ok("destination: /archive\n"
	         "outputs:\n"
	         "  - name: textout\n"
	         "    path: pdroutput/TEXTOUT\n"
	         "    to: pdrgrid/TEXTOUT${row.model_job_name}\n");
	ck_assert_str_eq(p->items[0].key, "pdrgrid/TEXTOUT100_40");
	/* A NULL column is an error pointing at its '$'. */
	expect_fail("destination: /archive\n"
	            "outputs:\n"
	            "  - name: textout\n"
	            "    path: pdroutput/TEXTOUT\n"
	            "    to: pdrgrid/TEXTOUT${row.nothing}\n",
	            JP_E_DATA,
	            fmt("%s:5:24: ${row.nothing} is NULL in the job's catalogue row", mfile));
}
END_TEST

/* Without a row (manifest check), ${row.X} is a placeholder in the remote name. */
START_TEST(test_row_placeholder)
{
	job_file("a", "x");
	build_ok("destination: /archive\n"
	         "outputs: [{name: a, path: a, to: 'x/${row.model_job_name}'}]\n");
	ck_assert_str_eq(p->items[0].key, "x/{row.model_job_name}");
}
END_TEST

/* ---- optional and required ---- */

START_TEST(test_optional_absent)
{
	job_file("present", "p");
	job_file("onion/only-a-dir/x", "");
	build_ok("destination: /archive\n"
	         "outputs:\n"
	         "  - {name: chemchk, path: pdroutput/chemchk.out, to: a, required: false}\n"
	         "  - {name: onion, glob: onion/*.OUT, to: 'b/${basename}', required: false}\n"
	         "  - {name: dirs, glob: onion/*, to: 'c/${basename}', required: false}\n"
	         "  - {name: present, path: present, to: d}\n");
	ck_assert_uint_eq(p->n_items, 1);
	ck_assert_str_eq(p->items[0].key, "d");
	ck_assert_uint_eq(p->n_skipped, 3);
	ck_assert_ptr_eq(p->skipped[0], &m->outputs[0]);
	ck_assert_ptr_eq(p->skipped[1], &m->outputs[1]);
	ck_assert_ptr_eq(p->skipped[2], &m->outputs[2]);
}
END_TEST

START_TEST(test_required_path_absent)
{
	expect_fail("destination: /archive\n"
	            "outputs:\n"
	            "  - name: textout\n"
	            "    path: pdroutput/TEXTOUT\n"
	            "    to: pdrgrid/TEXTOUT\n",
	            JP_E_NOINPUT, "plan: required output textout is missing: pdroutput/TEXTOUT does not exist");
}
END_TEST

START_TEST(test_required_glob_absent)
{
	job_file("onion/sub.OUT/x", "directories do not count");
	expect_fail("destination: /archive\n"
	            "outputs:\n"
	            "  - {name: onion, glob: onion/*.OUT, to: 'b/${basename}'}\n",
	            JP_E_NOINPUT, "plan: required output onion is missing: onion/*.OUT matches no file");
}
END_TEST

/* A path through a regular file (ENOTDIR) is missing too. */
START_TEST(test_required_under_a_file)
{
	job_file("pdroutput", "a file, not a directory");
	expect_fail("destination: /archive\n"
	            "outputs: [{name: t, path: pdroutput/TEXTOUT, to: x}]\n",
	            JP_E_NOINPUT, "plan: required output t is missing: pdroutput/TEXTOUT does not exist");
}
END_TEST

START_TEST(test_not_a_regular_file)
{
	job_file("pdroutput/x", "");
	expect_fail("destination: /archive\n"
	            "outputs: [{name: t, path: pdroutput, to: x}]\n",
	            JP_E_DATA,
	            fmt("%s:2:27: output t: pdroutput is a directory; add 'archive: tar.gz' (or tar, "
	                "tar.zst) to publish it as one archive",
	                mfile));
	ck_assert_int_eq(mkfifo(fmt("%s/fifo", job), 0600), 0);
	jp_error_clear(&err);
	expect_fail("destination: /archive\n"
	            "outputs: [{name: t, path: fifo, to: x}]\n",
	            JP_E_DATA, fmt("%s:2:27: output t: fifo is a special file, not a regular file",
	                           mfile));
}
END_TEST

/* ---- escaping the workdir ---- */

START_TEST(test_symlink_escape)
{
	t_write_str(root, "outside.txt", "secret");
	ck_assert_int_eq(symlink("../outside.txt", fmt("%s/link", job)), 0);
	expect_fail("destination: /archive\n"
	            "outputs:\n"
	            "  - name: a\n"
	            "    path: link\n"
	            "    to: x\n",
	            JP_E_DATA,
	            fmt("%s:4:11: output a: link resolves to %s/outside.txt, outside the work "
	                "directory %s",
	                mfile, root, job));
}
END_TEST

/* A glob that matches a symlink leading out is refused too, not skipped. */
START_TEST(test_symlink_escape_glob)
{
	t_write_str(root, "outside.txt", "secret");
	job_file("out/a.dat", "a");
	ck_assert_int_eq(symlink(fmt("%s/outside.txt", root), fmt("%s/out/b.dat", job)), 0);
	expect_fail("destination: /archive\n"
	            "outputs:\n"
	            "  - name: g\n"
	            "    glob: out/*.dat\n"
	            "    to: x/${basename}\n",
	            JP_E_DATA,
	            fmt("%s:4:11: output g: out/b.dat resolves to %s/outside.txt, outside the "
	                "work directory %s",
	                mfile, root, job));
}
END_TEST

/* "job2" starts with "job" but is not below it. */
START_TEST(test_symlink_to_sibling_prefix)
{
	t_write_str(root, "job2/x", "next door");
	ck_assert_int_eq(symlink("../job2/x", fmt("%s/link", job)), 0);
	expect_fail("destination: /archive\n"
	            "outputs: [{name: a, path: link, to: x}]\n",
	            JP_E_DATA,
	            fmt("%s:2:27: output a: link resolves to %s/job2/x, outside the work directory %s",
	                mfile, root, job));
}
END_TEST

/* `path: ../x` is refused when the manifest loads (test_manifest.c); through a variable it
 * reaches the plan, whose own check after resolving refuses it. */
START_TEST(test_dotdot_path)
{
	t_write_str(root, "x", "outside");
	expect_fail("destination: /archive\n"
	            "outputs:\n"
	            "  - name: a\n"
	            "    path: ${updir}/x\n"
	            "    to: x\n",
	            JP_E_DATA,
	            fmt("%s:4:11: output a: ../x is outside the work directory %s",
	                mfile, job));
}
END_TEST

START_TEST(test_absolute_path_outside)
{
	t_write_str(root, "x", "outside");
	expect_fail("destination: /archive\n"
	            "outputs:\n"
	            "  - name: a\n"
	            "    path: ${outside}/x\n"
	            "    to: x\n",
	            JP_E_DATA,
	            fmt("%s:4:11: output a: %s/x is outside the work directory %s",
	                mfile, root, job));
}
END_TEST

/* A path that leaves the workdir is a bad manifest whether or not something is there: an
 * optional `../x` must not be skipped silently as "absent". */
START_TEST(test_dotdot_path_absent)
{
	int r = build("destination: /archive\n"
	              "outputs:\n"
	              "  - name: a\n"
	              "    path: ${updir}/x\n"
	              "    to: x\n"
	              "    required: false\n");

	ck_assert_msg(r == JP_FAILED && err.code == JP_E_DATA,
	              "../x (absent) accepted: r=%d class=%d skipped=%zu msg='%s'", r, err.code,
	              p ? p->n_skipped : (size_t)0, err.msg);
}
END_TEST

/* ---- remote names ---- */

START_TEST(test_to_dotdot)
{
	expect_fail("destination: /archive\n"
	            "outputs:\n"
	            "  - name: textout\n"
	            "    path: pdroutput/TEXTOUT\n"
	            "    to: ../x\n",
	            JP_E_DATA,
	            fmt("%s:5:9: output textout: remote name '../x' escapes the destination ('.' or "
	                "'..' component)",
	                mfile));
}
END_TEST

START_TEST(test_to_absolute)
{
	expect_fail("destination: /archive\n"
	            "outputs:\n"
	            "  - name: textout\n"
	            "    path: pdroutput/TEXTOUT\n"
	            "    to: /etc/x\n",
	            JP_E_DATA,
	            fmt("%s:5:9: output textout: remote name '/etc/x' is absolute; it must be relative "
	                "to the destination",
	                mfile));
}
END_TEST

/* The check applies to the expanded name: a --set value cannot smuggle '..' in. */
START_TEST(test_to_escape_through_variable)
{
	expect_fail("destination: /archive\n"
	            "outputs:\n"
	            "  - name: textout\n"
	            "    path: pdroutput/TEXTOUT\n"
	            "    to: a/${up}/b\n",
	            JP_E_DATA,
	            fmt("%s:5:9: output textout: remote name 'a/../../etc/b' escapes the destination "
	                "('.' or '..' component)",
	                mfile));
}
END_TEST

START_TEST(test_to_template_error)
{
	expect_fail("destination: /archive\n"
	            "outputs:\n"
	            "  - name: textout\n"
	            "    path: pdroutput/TEXTOUT\n"
	            "    to: pdrgrid/${nope}\n",
	            JP_E_DATA,
	            fmt("%s:5:17: unknown variable ${nope} (give it with --set nope=VALUE; built-in: "
	                "job, name, basename, row.COLUMN)",
	                mfile));
}
END_TEST

START_TEST(test_duplicate_remote_names)
{
	const char *pre;

	job_file("fa", "a");
	job_file("fb", "b");
	build("destination: /archive\n"
	      "outputs:\n"
	      "  - {name: a, path: fa, to: same}\n"
	      "  - {name: b, path: fb, to: same}\n");
	ck_assert_ptr_null(p);
	ck_assert_int_eq(err.code, JP_E_DATA);
	/* Either output's `to:` may be pointed at; both outputs and files are named. */
	pre = fmt("%s:", mfile);
	ck_assert_msg(strncmp(err.msg, pre, strlen(pre)) == 0, "%s", err.msg);
	ck_assert_msg(strstr(err.msg, ": remote name same is produced twice: by ") != NULL, "%s",
	              err.msg);
	ck_assert_msg(strstr(err.msg, "a (fa)") != NULL && strstr(err.msg, "b (fb)") != NULL, "%s",
	              err.msg);
}
END_TEST

/* A glob whose `to:` ignores ${basename} maps every match to one name. */
START_TEST(test_duplicate_from_one_glob)
{
	const char *a, *b;

	job_file("g/1", "1");
	job_file("g/2", "2");
	ck_assert_int_eq(build("destination: /archive\n"
	                       "outputs:\n"
	                       "  - name: g\n"
	                       "    glob: g/*\n"
	                       "    to: fixed\n"),
	                 JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_DATA);
	/* qsort is not stable: the two files may be named in either order. */
	a = fmt("%s:5:9: remote name fixed is produced twice: by g (g/1) and g (g/2)", mfile);
	b = fmt("%s:5:9: remote name fixed is produced twice: by g (g/2) and g (g/1)", mfile);
	ck_assert_msg(strcmp(err.msg, a) == 0 || strcmp(err.msg, b) == 0, "%s", err.msg);
}
END_TEST

START_TEST(test_column_on_multi_glob)
{
	job_file("onion/a.OUT", "a");
	job_file("onion/b.OUT", "b");
	expect_fail("destination: /archive\n"
	            "outputs:\n"
	            "  - name: onion\n"
	            "    glob: onion/*.OUT\n"
	            "    to: o/${basename}\n"
	            "    column: onion_file\n",
	            JP_E_DATA,
	            fmt("%s:6:13: output onion: 2 files match but column onion_file can hold one URL",
	                mfile));
}
END_TEST

START_TEST(test_column_on_single_glob)
{
	job_file("onion/a.OUT", "a");
	build_ok("destination: /archive\n"
	         "outputs:\n"
	         "  - {name: onion, glob: onion/*.OUT, to: 'o/${basename}', column: onion_file}\n");
	ck_assert_uint_eq(p->n_items, 1);
	ck_assert_str_eq(p->items[0].key, "o/a.OUT");
}
END_TEST

/* ---- the workdir ---- */

/* A workdir named with glob metacharacters matches only itself, not "run1x" beside it. */
START_TEST(test_workdir_with_metacharacters)
{
	char *wd = t_path(root, "run[1]*");
	char *wd2 = t_path(root, "we\\ird?");

	t_write_str(wd, "data/a.txt", "aa");
	t_write_str(wd, "TEXTOUT", "t");
	t_write_str(root, "run1x/data/b.txt", "not this job");
	t_write_str(root, "run1/data/c.txt", "nor this one");
	in.workdir = wd;
	build_ok("destination: /archive\n"
	         "outputs:\n"
	         "  - {name: data, glob: data/*.txt, to: 'd/${basename}'}\n"
	         "  - {name: t, path: TEXTOUT, to: t}\n");
	ck_assert_str_eq(p->workdir, wd);
	ck_assert_uint_eq(p->n_items, 2);
	ck_assert_str_eq(p->items[0].local, "data/a.txt");
	ck_assert_str_eq(p->items[0].key, "d/a.txt");
	ck_assert_str_eq(p->items[0].abs, fmt("%s/data/a.txt", wd));
	ck_assert_str_eq(p->items[1].local, "TEXTOUT");
	/* And a backslash and '?' in the name. */
	t_write_str(wd2, "data/z.txt", "z");
	t_write_str(root, "we\\irdX/data/y.txt", "no");
	in.workdir = wd2;
	build_ok("destination: /archive\n"
	         "outputs: [{name: data, glob: data/*.txt, to: 'd/${basename}'}]\n");
	ck_assert_uint_eq(p->n_items, 1);
	ck_assert_str_eq(p->items[0].key, "d/z.txt");
	free(wd);
	free(wd2);
}
END_TEST

START_TEST(test_workdir_missing)
{
	char *nope = t_path(root, "nope");

	in.workdir = nope;
	expect_fail("destination: /archive\n"
	            "outputs: [{name: a, path: a, to: a}]\n",
	            JP_E_NOINPUT, fmt("plan: outputs no longer on disk at %s: no such work directory", nope));
	free(nope);
}
END_TEST

START_TEST(test_workdir_not_a_directory)
{
	char *f = t_path(root, "afile");

	t_write_str(root, "afile", "x");
	in.workdir = f;
	expect_fail("destination: /archive\n"
	            "outputs: [{name: a, path: a, to: a}]\n",
	            JP_E_NOINPUT, fmt("plan: work directory %s is not a directory", f));
	free(f);
}
END_TEST

/* A symlink inside the workdir to a file inside it is fine, and the item is named as matched
 * (plan.h: "path as matched"), so ${basename} is the name the manifest asked for. */
START_TEST(test_symlink_inside_named_as_matched)
{
	job_file("data/run-0042.dat", "payload");
	ck_assert_int_eq(symlink("data/run-0042.dat", fmt("%s/latest", job)), 0);
	build_ok("destination: /archive\n"
	         "outputs: [{name: a, path: latest, to: 'out/${basename}'}]\n");
	ck_assert_uint_eq(p->n_items, 1);
	ck_assert_uint_eq(p->items[0].size, 7);
	ck_assert_str_eq(p->items[0].abs, fmt("%s/data/run-0042.dat", job));
	ck_assert_str_eq(p->items[0].local, "latest");
	ck_assert_str_eq(p->items[0].key, "out/latest");
}
END_TEST

/* ---- reading what was planned (jp_plan_open) ---- */

/* jp_plan_open of item i: JP_OK and the content read from the descriptor, or the error. */
static int
open_item(size_t i, char *buf, size_t len)
{
	int fd, r;
	ssize_t n;

	jp_error_clear(&err);
	r = jp_plan_open(p, &p->items[i], &fd, &err);
	if (r != JP_OK) {
		ck_assert_int_eq(fd, -1);
		return r;
	}
	n = read(fd, buf, len - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(fd);
	return JP_OK;
}

static const char *const one_file = "destination: /archive\n"
                                    "outputs: [{name: a, path: out/f.txt, to: f.txt}]\n";

/* What the plan checked is what is read, through the workdir's descriptor, even when the
 * workdir's own name is gone; and through a symlink inside the workdir. */
START_TEST(test_open_planned)
{
	char buf[64], *moved = t_path(root, "moved");

	job_file("out/f.txt", "inside!");
	job_file("data/g", "target");
	ck_assert_int_eq(symlink("../data/g", fmt("%s/out/link", job)), 0);
	build_ok("destination: /archive\n"
	         "outputs: [{name: a, path: out/f.txt, to: f.txt}, {name: b, path: out/link, to: g}]\n");
	ck_assert_str_eq(p->items[0].rel, "out/f.txt");
	ck_assert_str_eq(p->items[1].rel, "data/g");
	ck_assert_int_eq(rename(job, moved), 0);
	ck_assert_int_eq(open_item(0, buf, sizeof(buf)), JP_OK);
	ck_assert_str_eq(buf, "inside!");
	ck_assert_int_eq(open_item(1, buf, sizeof(buf)), JP_OK);
	ck_assert_str_eq(buf, "target");
	ck_assert_int_eq(rename(moved, job), 0);
	free(moved);
}
END_TEST

/* The file swapped for a symlink to a same-size file outside after the plan (issue 13,
 * defect 8): refused, nothing of the outside file is read. */
START_TEST(test_open_swapped_for_symlink)
{
	char buf[64];
	const char *f = fmt("%s/out/f.txt", job), *outside = fmt("%s/secret", root);

	job_file("out/f.txt", "inside!");
	t_write_str(root, "secret", "SECRET!");
	build_ok(one_file);
	ck_assert_int_eq(unlink(f), 0);
	ck_assert_int_eq(symlink(outside, f), 0);
	ck_assert_int_eq(open_item(0, buf, sizeof(buf)), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_str_eq(err.msg, "plan: out/f.txt changed since it was checked (removed, replaced, or a "
	                          "symbolic link swapped in); it is not published");
}
END_TEST

/* A directory on the way swapped for a symlink to a directory outside holding the same name. */
START_TEST(test_open_parent_swapped_for_symlink)
{
	char buf[64];

	job_file("out/f.txt", "inside!");
	t_write_str(root, "elsewhere/f.txt", "SECRET!");
	build_ok(one_file);
	ck_assert_int_eq(rename(fmt("%s/out", job), fmt("%s/out.old", job)), 0);
	ck_assert_int_eq(symlink(fmt("%s/elsewhere", root), fmt("%s/out", job)), 0);
	ck_assert_int_eq(open_item(0, buf, sizeof(buf)), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_msg(strstr(err.msg, "plan: out/f.txt changed since it was checked") == err.msg, "%s",
	              err.msg);
}
END_TEST

/* Another regular file of the same size under the name, or the same file modified in place
 * after its check: refused too (what was validated is what is published). */
START_TEST(test_open_replaced_or_modified)
{
	char buf[64];
	const char *f = fmt("%s/out/f.txt", job);
	struct timespec ts[2] = {{0, UTIME_OMIT}, {12345, 0}};

	job_file("out/f.txt", "inside!");
	build_ok(one_file);
	ck_assert_int_eq(unlink(f), 0);
	job_file("out/f.txt", "other!!");
	ck_assert_int_eq(open_item(0, buf, sizeof(buf)), JP_FAILED);
	ck_assert_msg(strstr(err.msg, "plan: out/f.txt changed since it was checked") == err.msg, "%s",
	              err.msg);

	build_ok(one_file);
	ck_assert_int_eq(open_item(0, buf, sizeof(buf)), JP_OK);
	ck_assert_int_eq(utimensat(AT_FDCWD, f, ts, 0), 0);
	ck_assert_int_eq(open_item(0, buf, sizeof(buf)), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_msg(strstr(err.msg, "is the job still writing it?") != NULL, "%s", err.msg);
}
END_TEST

/* A directory output (archive) swapped for a symlink to a directory outside. */
START_TEST(test_open_archive_dir_swapped)
{
	char *out = t_path(job, "Out"), *old = t_path(job, "Out.old"), *ext = t_path(root, "ext");
	int fd;

	job_file("Out/a", "a");
	t_write_str(root, "ext/a", "SECRET");
	build_ok("destination: /archive\n"
	         "outputs: [{name: d, path: Out, to: d.tar, archive: tar}]\n");
	ck_assert_int_eq(p->items[0].is_archive, 1);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_plan_open(p, &p->items[0], &fd, &err), JP_OK);
	close(fd);
	ck_assert_int_eq(rename(out, old), 0);
	ck_assert_int_eq(symlink(ext, out), 0);
	ck_assert_int_eq(jp_plan_open(p, &p->items[0], &fd, &err), JP_FAILED);
	ck_assert_int_eq(fd, -1);
	ck_assert_msg(strstr(err.msg, "plan: Out changed since it was checked") == err.msg, "%s", err.msg);
	free(out);
	free(old);
	free(ext);
}
END_TEST

/* ---- races and errors at the exact moment ----
 *
 * This program's own openat and fstatat take precedence over libc's for the calls libjobpub
 * makes.  Armed with at_call(), the next call on the name `name` (a last path component) first
 * runs `action` (the file replaced or removed, a symlink swapped in: what another process could
 * do at that moment), or fails with `fail_errno`; then, unless failed, makes the real call. */
enum { AT_OPENAT = 1, AT_FSTATAT };
static struct {
	int at, fail_errno, fired;
	const char *name;
	void (*action)(void);
} race;

static void
at_call(int at, const char *name, void (*action)(void), int fail_errno)
{
	race.at = at;
	race.name = name;
	race.action = action;
	race.fail_errno = fail_errno;
	race.fired = 0;
}

/* 1 when this call must fail (errno set). */
static int
race_point(int at, const char *name)
{
	if (race.at != at || race.fired || strcmp(name, race.name) != 0)
		return 0;
	race.fired = 1;
	if (race.action != NULL)
		race.action();
	if (race.fail_errno == 0)
		return 0;
	errno = race.fail_errno;
	return 1;
}

int
openat(int d, const char *path, int flags, ...)
{
	static int (*real)(int, const char *, int, ...);
	mode_t mode = 0;
	va_list ap;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "openat");
	if (flags & O_CREAT) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return race_point(AT_OPENAT, path) ? -1 : real(d, path, flags, mode);
}

int
fstatat(int d, const char *path, struct stat *sb, int flags)
{
	static int (*real)(int, const char *, struct stat *, int);

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "fstatat");
	return race_point(AT_FSTATAT, path) ? -1 : real(d, path, sb, flags);
}

/* out/f.txt replaced by another file of the same size (a new inode). */
static void
replace_file(void)
{
	char *from = t_path(job, "out/f.txt.new"), *to = t_path(job, "out/f.txt");

	job_file("out/f.txt.new", "other!!");
	ck_assert_int_eq(rename(from, to), 0);
	free(from);
	free(to);
}

static void
remove_file(void)
{
	char *f = t_path(job, "out/f.txt");

	ck_assert_int_eq(unlink(f), 0);
	free(f);
}

/* out/f.txt becomes a symlink to a file inside the job directory. */
static void
swap_in_symlink(void)
{
	char *f = t_path(job, "out/f.txt");

	job_file("out/g.txt", "inside!");
	ck_assert_int_eq(unlink(f), 0);
	ck_assert_int_eq(symlink("g.txt", f), 0);
	free(f);
}

/* Between realpath() and the plan's own look (fstatat) or open (openat), the file is removed,
 * replaced, or swapped for a symlink: the plan fails saying so, nothing is planned. */
START_TEST(test_plan_races)
{
	static const struct {
		int at;
		void (*action)(void);
		const char *why;
	} cases[] = {
		{AT_FSTATAT, remove_file, "removed, replaced, or a symbolic link swapped in"},
		{AT_OPENAT, replace_file, "removed, replaced, or a symbolic link swapped in"},
		{AT_FSTATAT, swap_in_symlink, "a symbolic link swapped in"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		job_file("out/f.txt", "inside!");
		at_call(cases[i].at, "f.txt", cases[i].action, 0);
		expect_fail(one_file, JP_E_IOERR,
		            fmt("plan: output a: out/f.txt changed while being checked (%s)",
		                cases[i].why));
		ck_assert_int_eq(race.fired, 1);
		jp_error_clear(&err);
	}
}
END_TEST

/* The file cannot be opened for a reason of its own: that reason is the error. */
START_TEST(test_plan_open_refused)
{
	job_file("out/f.txt", "inside!");
	at_call(AT_OPENAT, "f.txt", NULL, EACCES);
	expect_fail(one_file, JP_E_IOERR, "plan: output a: out/f.txt: Permission denied");
	ck_assert_int_eq(race.fired, 1);
}
END_TEST

/* After the plan: replaced between the look and the open (a new inode), removed, or the open
 * refused; only running out of memory is not an I/O error. */
START_TEST(test_open_races)
{
	char buf[64];

	job_file("out/f.txt", "inside!");
	build_ok(one_file);
	at_call(AT_OPENAT, "f.txt", replace_file, 0);
	ck_assert_int_eq(open_item(0, buf, sizeof(buf)), JP_FAILED);
	ck_assert_int_eq(race.fired, 1);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_str_eq(err.msg, "plan: out/f.txt changed since it was checked (removed, replaced, or a "
	                          "symbolic link swapped in); it is not published");

	build_ok(one_file);
	at_call(AT_OPENAT, "f.txt", NULL, EACCES);
	ck_assert_int_eq(open_item(0, buf, sizeof(buf)), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_str_eq(err.msg, "plan: out/f.txt: Permission denied");
	at_call(AT_OPENAT, "f.txt", NULL, ENOMEM);
	ck_assert_int_eq(open_item(0, buf, sizeof(buf)), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_SOFTWARE);
	at_call(AT_FSTATAT, "f.txt", remove_file, 0);
	ck_assert_int_eq(open_item(0, buf, sizeof(buf)), JP_FAILED);
	ck_assert_msg(strstr(err.msg, "plan: out/f.txt changed since it was checked") == err.msg, "%s",
	              err.msg);
	/* and when nothing happens, it opens */
	job_file("out/f.txt", "again!!");
	build_ok(one_file);
	ck_assert_int_eq(open_item(0, buf, sizeof(buf)), JP_OK);
	ck_assert_str_eq(buf, "again!!");
}
END_TEST

/* jp_plan_unchanged: what the descriptor holds now against the plan: the same file, the same
 * file written since, a descriptor that is not open. */
START_TEST(test_unchanged)
{
	const char *f = fmt("%s/out/f.txt", job);
	int fd;

	job_file("out/f.txt", "inside!");
	build_ok(one_file);
	ck_assert_int_ge(fd = open(f, O_RDWR), 0);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_plan_unchanged(&p->items[0], fd, &err), JP_OK);
	ck_assert_int_eq(pwrite(fd, "more", 4, 7), 4);
	ck_assert_int_eq(jp_plan_unchanged(&p->items[0], fd, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_str_eq(err.msg, "plan: out/f.txt changed since it was checked (7 bytes then, 11 now, "
	                          "modified since); is the job still writing it?");
	close(fd);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_plan_unchanged(&p->items[0], fd, &err), JP_FAILED);
	ck_assert_str_eq(err.msg, "plan: out/f.txt: Bad file descriptor");
}
END_TEST

/* Symbolic link loops: under a path (realpath fails), under a glob's directory (glob gives
 * up), as the work directory itself. */
START_TEST(test_link_loops)
{
	char *loop = t_path(root, "loop");

	ck_assert_int_eq(symlink("loop", fmt("%s/loop", job)), 0);
	expect_fail("destination: /archive\n"
	            "outputs: [{name: a, path: loop/f, to: f}]\n",
	            JP_E_IOERR, "plan: output a: loop/f: Too many levels of symbolic links");
	jp_error_clear(&err);
	expect_fail("destination: /archive\n"
	            "outputs: [{name: g, glob: 'loop/*.OUT', to: 'x/${basename}'}]\n",
	            JP_E_IOERR, "plan: output g: cannot read the directories of loop/*.OUT");
	ck_assert_int_eq(symlink("loop", loop), 0);
	in.workdir = loop;
	jp_error_clear(&err);
	expect_fail("destination: /archive\n"
	            "outputs: [{name: a, path: f, to: f}]\n",
	            JP_E_IOERR,
	            fmt("plan: work directory %s: Too many levels of symbolic links", loop));
	free(loop);
}
END_TEST

/* The root directory as the work directory: names are relative to it like to any other. */
START_TEST(test_workdir_root)
{
	in.workdir = "/";
	build_ok("destination: /archive\n"
	         "outputs: [{name: a, path: etc/passwd, to: passwd, check: none}]\n");
	ck_assert_str_eq(p->workdir, "/");
	ck_assert_uint_eq(p->n_items, 1);
	ck_assert_str_eq(p->items[0].rel, "etc/passwd");
	ck_assert_str_eq(p->items[0].abs, "/etc/passwd");
	ck_assert_str_eq(p->items[0].key, "passwd");
}
END_TEST

/* ---- allocation failures (tests/failalloc.h) ---- */

/* 1 when err says the memory ran out, as every allocation failure must (70, never an I/O
 * error or a wrong verdict on the job's files). */
static int
is_oom(const struct jp_error *e)
{
	return e->code == JP_E_SOFTWARE &&
	       (strstr(e->msg, "out of memory") != NULL ||
	        strstr(e->msg, "Cannot allocate memory") != NULL);
}

/* Every allocation of a plan (paths, a glob, an archive directory, an absent optional output,
 * templates) failed in turn: each gives "out of memory" (70) and no plan, nothing else; the
 * plan then builds, and its files open. */
START_TEST(test_allocation_failures)
{
	unsigned long n;
	char buf[64];
	int r;

	job_file("out/f.txt", "inside!");
	job_file("g/1.OUT", "1");
	job_file("g/2.OUT", "22");
	job_file("g/sub.OUT/x", "a directory is passed over");
	job_file("Out/a", "a");
	t_write_str(root, "manifest.yaml",
	            "destination: /archive/${model}/${job}\n"
	            "outputs:\n"
	            "  - {name: a, path: out/f.txt, to: 'f/${basename}', column: c}\n"
	            "  - {name: g, glob: 'g/*.OUT', to: 'g/${name}-${basename}'}\n"
	            "  - {name: d, path: Out, to: d.tar, archive: tar}\n"
	            "  - {name: o, path: absent, to: o, required: false}\n");
	ck_assert_msg(jp_manifest_load(mfile, &m, &err) == JP_OK, "manifest: %s", err.msg);
	in.m = m;
	for (n = 1;; n++) {
		jp_error_clear(&err);
		t_fail_alloc(n);
		r = jp_plan_build(&in, &p, &err);
		t_fail_alloc(0);
		if (!t_fail_alloc_fired())
			break;
		ck_assert_msg(r == JP_FAILED && p == NULL, "allocation %lu failed, plan built", n);
		ck_assert_msg(is_oom(&err), "allocation %lu: %d %s", n, err.code, err.msg);
	}
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_uint_ge(n, 20);
	ck_assert_uint_eq(p->n_items, 4);
	ck_assert_uint_eq(p->n_skipped, 1);
	for (n = 1;; n++) {
		int fd;

		jp_error_clear(&err);
		t_fail_alloc(n);
		r = jp_plan_open(p, &p->items[0], &fd, &err);
		t_fail_alloc(0);
		if (!t_fail_alloc_fired())
			break;
		ck_assert_int_eq(r, JP_FAILED);
		ck_assert_int_eq(fd, -1);
		ck_assert_msg(is_oom(&err), "allocation %lu: %d %s", n, err.code, err.msg);
	}
	ck_assert_int_eq(open_item(0, buf, sizeof(buf)), JP_OK);
	ck_assert_str_eq(buf, "inside!");
}
END_TEST

/* ---- destination ---- */

START_TEST(test_dest_override)
{
	job_file("pdroutput/TEXTOUT", "hello");
	in.dest_override = "file:///override/${model}/${job}";
	build_ok("destination: file:///archive/${nope}\n"
	         "outputs: [{name: a, path: pdroutput/TEXTOUT, to: x}]\n");
	ck_assert_str_eq(p->destination, "file:///override/kosma/42");
}
END_TEST

START_TEST(test_dest_override_error)
{
	job_file("pdroutput/TEXTOUT", "hello");
	in.dest_override = "file:///x/${nope}";
	expect_fail("destination: file:///archive\n"
	            "outputs: [{name: a, path: pdroutput/TEXTOUT, to: x}]\n",
	            JP_E_USAGE,
	            "plan: --dest file:///x/${nope}: unknown variable ${nope} (give it with --set "
	            "nope=VALUE; built-in: job, name, basename, row.COLUMN)");
	/* ${name} belongs to outputs, not to the destination. */
	in.dest_override = "/archive/${name}";
	jp_error_clear(&err);
	expect_fail("outputs: [{name: a, path: pdroutput/TEXTOUT, to: x}]\n", JP_E_USAGE,
	            "plan: --dest /archive/${name}: ${name} is only available in an output");
}
END_TEST

START_TEST(test_manifest_destination_error)
{
	job_file("pdroutput/TEXTOUT", "hello");
	expect_fail("destination: file:///archive/${modle}\n"
	            "outputs: [{name: a, path: pdroutput/TEXTOUT, to: x}]\n",
	            JP_E_DATA,
	            fmt("%s:1:30: unknown variable ${modle} (give it with --set modle=VALUE; "
	                "built-in: job, name, basename, row.COLUMN)",
	                mfile));
}
END_TEST

START_TEST(test_no_destination)
{
	job_file("pdroutput/TEXTOUT", "hello");
	expect_fail("outputs: [{name: a, path: pdroutput/TEXTOUT, to: x}]\n", JP_E_CONFIG,
	            fmt("plan: no destination: give --dest URL, $JOBPUB_DEST or 'destination:' in %s",
	                mfile));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("plan");
	TCase *tc;

	tc = tcase_create("found");
	tcase_add_checked_fixture(tc, setup_textout, teardown);
	tcase_add_test(tc, test_path_output);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_workdir_default_cwd);
	tcase_add_test(tc, test_glob_output);
	tcase_add_test(tc, test_outputs_in_order);
	tcase_add_test(tc, test_row_values);
	tcase_add_test(tc, test_row_placeholder);
	tcase_add_test(tc, test_symlink_inside_named_as_matched);
	tcase_add_test(tc, test_open_planned);
	tcase_add_test(tc, test_open_swapped_for_symlink);
	tcase_add_test(tc, test_open_parent_swapped_for_symlink);
	tcase_add_test(tc, test_open_replaced_or_modified);
	tcase_add_test(tc, test_open_archive_dir_swapped);
	suite_add_tcase(s, tc);

	tc = tcase_create("required");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_optional_absent);
	tcase_add_test(tc, test_required_path_absent);
	tcase_add_test(tc, test_required_glob_absent);
	tcase_add_test(tc, test_required_under_a_file);
	tcase_add_test(tc, test_not_a_regular_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("escape");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_symlink_escape);
	tcase_add_test(tc, test_symlink_escape_glob);
	tcase_add_test(tc, test_symlink_to_sibling_prefix);
	tcase_add_test(tc, test_dotdot_path);
	tcase_add_test(tc, test_absolute_path_outside);
	tcase_add_test(tc, test_dotdot_path_absent);
	suite_add_tcase(s, tc);

	tc = tcase_create("remote");
	tcase_add_checked_fixture(tc, setup_textout, teardown);
	tcase_add_test(tc, test_to_dotdot);
	tcase_add_test(tc, test_to_absolute);
	tcase_add_test(tc, test_to_escape_through_variable);
	tcase_add_test(tc, test_to_template_error);
	tcase_add_test(tc, test_duplicate_remote_names);
	tcase_add_test(tc, test_duplicate_from_one_glob);
	tcase_add_test(tc, test_column_on_multi_glob);
	tcase_add_test(tc, test_column_on_single_glob);
	suite_add_tcase(s, tc);

	tc = tcase_create("workdir");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_workdir_with_metacharacters);
	tcase_add_test(tc, test_workdir_missing);
	tcase_add_test(tc, test_workdir_not_a_directory);
	tcase_add_test(tc, test_workdir_root);
	tcase_add_test(tc, test_link_loops);
	suite_add_tcase(s, tc);

	tc = tcase_create("races");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_plan_races);
	tcase_add_test(tc, test_plan_open_refused);
	tcase_add_test(tc, test_open_races);
	tcase_add_test(tc, test_unchanged);
	tcase_add_test(tc, test_allocation_failures);
	suite_add_tcase(s, tc);

	tc = tcase_create("destination");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_dest_override);
	tcase_add_test(tc, test_dest_override_error);
	tcase_add_test(tc, test_manifest_destination_error);
	tcase_add_test(tc, test_no_destination);
	suite_add_tcase(s, tc);

	return t_run(s);
}
