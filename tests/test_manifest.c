/*
 * test_manifest.c - src/core/manifest.c: loading a manifest with every key, the defaults, each
 * refusal with its exact "FILE:LINE:COLUMN: message" (class 65), a missing file (class 66),
 * and jp_manifest_check_vars pointing at the column of an unknown ${variable}.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "failalloc.h"
#include "testlib.h"

static char *dir, *file;
static struct jp_manifest *m;
static struct jp_error err;

static void
setup(void)
{
	dir = t_tempdir();
	file = t_path(dir, "manifest.yaml");
	m = NULL;
	jp_error_clear(&err);
}

static void
teardown(void)
{
	jp_manifest_free(m);
	m = NULL;
	t_rmtree(dir);
	free(dir);
	free(file);
}

/* Writes yaml as the manifest and loads it. */
static int
load(const char *yaml)
{
	t_write_str(dir, "manifest.yaml", yaml);
	jp_manifest_free(m);
	m = NULL;
	jp_error_clear(&err);
	return jp_manifest_load(file, &m, &err);
}

static void
load_ok(const char *yaml)
{
	int r = load(yaml);

	ck_assert_msg(r == JP_OK, "load failed: %s", err.msg);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(err.code, JP_E_NONE);
}

/* The manifest fails to load with class 65 and exactly "FILE" + where (":L:C: msg"). */
static void
expect_error(const char *yaml, const char *where)
{
	char want[JP_ERRMSG_MAX];
	int r = load(yaml);

	ck_assert_int_eq(r, JP_FAILED);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(err.code, JP_E_DATA);
	snprintf(want, sizeof(want), "%s%s", file, where);
	ck_assert_str_eq(err.msg, want);
}

/* ---- valid manifests ---- */

static const char full[] =
	"destination: file:///archive/pdr/${model}\n"                    /* 1 */
	"catalog:\n"                                                      /* 2 */
	"  table: pdr_model_jobs\n"                                       /* 3 */
	"  id-column: job_id\n"                                           /* 4 */
	"  status-column: state\n"                                        /* 5 */
	"  published-status: finished\n"                                  /* 6 */
	"# outputs\n"                                                     /* 7 */
	"outputs:\n"                                                      /* 8 */
	"  - name: textout\n"                                             /* 9 */
	"    path: pdroutput/TEXTOUT\n"                                   /* 10 */
	"    to: pdrgrid/TEXTOUT${row.model_job_name}\n"                  /* 11 */
	"    column: output_textout_file\n"                               /* 12 */
	"    required: true\n"                                            /* 13 */
	"  - {name: onion, glob: \"onionoutput/*.OUT\", "
	"to: 'oniongrid/ONION${row.model_job_name}.${basename}', required: false}\n"; /* 14 */

START_TEST(test_full)
{
	const struct jp_output *o;

	load_ok(full);
	ck_assert_str_eq(m->file, file);
	ck_assert_str_eq(m->destination.s, "file:///archive/pdr/${model}");
	ck_assert_int_eq(m->destination.line, 1);
	ck_assert_int_eq(m->destination.col, 14);
	ck_assert_str_eq(m->table.s, "pdr_model_jobs");
	ck_assert_int_eq(m->table.line, 3);
	ck_assert_int_eq(m->table.col, 10);
	ck_assert_str_eq(m->id_column.s, "job_id");
	ck_assert_str_eq(m->status_column.s, "state");
	ck_assert_str_eq(m->published_status.s, "finished");
	ck_assert_int_eq(m->published_status.line, 6);
	ck_assert_int_eq(m->external, 1);
	ck_assert_uint_eq(m->n_outputs, 2);

	o = &m->outputs[0];
	ck_assert_str_eq(o->name.s, "textout");
	ck_assert_str_eq(o->path.s, "pdroutput/TEXTOUT");
	ck_assert_ptr_null(o->glob.s);
	ck_assert_str_eq(o->to.s, "pdrgrid/TEXTOUT${row.model_job_name}");
	ck_assert_str_eq(o->column.s, "output_textout_file");
	ck_assert_int_eq(o->required, 1);
	ck_assert_int_eq(o->line, 9);
	ck_assert_int_eq(o->col, 5);
	ck_assert_int_eq(o->name.line, 9);
	ck_assert_int_eq(o->name.col, 11);
	ck_assert_int_eq(o->path.line, 10);
	ck_assert_int_eq(o->path.col, 11);
	ck_assert_int_eq(o->to.line, 11);
	ck_assert_int_eq(o->to.col, 9);
	ck_assert_int_eq(o->column.line, 12);
	ck_assert_int_eq(o->column.col, 13);

	o = &m->outputs[1];
	ck_assert_str_eq(o->name.s, "onion");
	ck_assert_ptr_null(o->path.s);
	ck_assert_str_eq(o->glob.s, "onionoutput/*.OUT");
	ck_assert_str_eq(o->to.s, "oniongrid/ONION${row.model_job_name}.${basename}");
	ck_assert_ptr_null(o->column.s);
	ck_assert_int_eq(o->required, 0);
	ck_assert_int_eq(o->line, 14);
	ck_assert_int_eq(o->col, 6);
	ck_assert_int_eq(o->name.col, 12);
	/* Quoted scalars: the column of the first character inside the quotes (the opening quotes
	 * stand at columns 25 and 50). */
	ck_assert_int_eq(o->glob.line, 14);
	ck_assert_msg(o->glob.col == 26 && o->to.col == 51,
	              "quoted values: glob at column %d (want 26), to at column %d (want 51)",
	              o->glob.col, o->to.col);
}
END_TEST

START_TEST(test_defaults)
{
	load_ok("outputs:\n"
	        "  - name: a\n"
	        "    path: a.txt\n"
	        "    to: a.txt\n");
	ck_assert_ptr_null(m->destination.s);
	ck_assert_str_eq(m->table.s, "jobs");
	ck_assert_str_eq(m->id_column.s, "id");
	ck_assert_str_eq(m->status_column.s, "status");
	ck_assert_str_eq(m->published_status.s, "published");
	ck_assert_int_eq(m->external, 0);
	ck_assert_uint_eq(m->n_outputs, 1);
	ck_assert_int_eq(m->outputs[0].required, 1);
	ck_assert_ptr_null(m->outputs[0].column.s);
	ck_assert_ptr_null(m->outputs[0].glob.s);
}
END_TEST

/* Naming jobpub's own table explicitly is not an external catalogue; a partial catalog keeps
 * the other defaults. */
START_TEST(test_catalog_partial)
{
	load_ok("catalog: {table: jobs, status-column: st}\n"
	        "outputs: [{name: a, path: a, to: a}]\n");
	ck_assert_int_eq(m->external, 0);
	ck_assert_str_eq(m->table.s, "jobs");
	ck_assert_str_eq(m->status_column.s, "st");
	ck_assert_str_eq(m->id_column.s, "id");
	ck_assert_str_eq(m->published_status.s, "published");
}
END_TEST

/* The example shipped with jobpub loads. */
START_TEST(test_example_manifest)
{
	struct jp_manifest *ex = NULL;
	int r = jp_manifest_load(JP_TEST_SRCDIR "/examples/kosma-tau/manifest.yaml", &ex, &err);

	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_str_eq(ex->table.s, "pdr_model_jobs");
	ck_assert_int_eq(ex->external, 1);
	ck_assert_uint_ge(ex->n_outputs, 10);
	ck_assert_str_eq(ex->outputs[0].name.s, "textout");
	jp_manifest_free(ex);
}
END_TEST

/* ---- errors ---- */

START_TEST(test_missing_file)
{
	char want[JP_ERRMSG_MAX];
	char *nofile = t_path(dir, "nope.yaml");
	int r = jp_manifest_load(nofile, &m, &err);

	ck_assert_int_eq(r, JP_FAILED);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(err.code, JP_E_NOINPUT);
	snprintf(want, sizeof(want), "%s: No such file or directory", nofile);
	ck_assert_str_eq(err.msg, want);
	free(nofile);
}
END_TEST

/* libfyaml's syntax errors keep their own position. */
START_TEST(test_yaml_syntax)
{
	expect_error("outputs:\n"
	             "  - name: a\n"
	             "    path: p\n"
	             "   to: t\n",
	             ":4:4: did not find expected '-' indicator");
}
END_TEST

START_TEST(test_yaml_syntax_flow)
{
	expect_error("outputs: [\n"
	             "  {name: a, path: p, to: t},\n"
	             "  ]]\n",
	             ":3:4: flow sequence with invalid extra closing bracket");
}
END_TEST

START_TEST(test_yaml_duplicate_key)
{
	expect_error("destination: /a\n"
	             "destination: /b\n"
	             "outputs: [{name: a, path: a, to: a}]\n",
	             ":2:1: duplicate key");
}
END_TEST

START_TEST(test_not_a_mapping)
{
	expect_error("- a\n- b\n", ":1:3: the manifest must be a mapping (destination, catalog, "
	                           "outputs)");
}
END_TEST

START_TEST(test_empty_document)
{
	int r = load("# nothing but a comment\n");

	ck_assert_int_eq(r, JP_FAILED);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_msg(strncmp(err.msg, file, strlen(file)) == 0 && err.msg[strlen(file)] == ':',
	              "%s", err.msg);
}
END_TEST

START_TEST(test_unknown_top_key)
{
	expect_error("outputs: [{name: a, path: a, to: a}]\n"
	             "destinaton: file:///archive\n",
	             ":2:1: unknown key 'destinaton' (expected destination, catalog, outputs, sftp, s3)");
}
END_TEST

START_TEST(test_s3_settings)
{
	load_ok("destination: s3://bucket/prefix\n"
	        "s3:\n"
	        "  endpoint: http://127.0.0.1:7480\n"
	        "  region: eu-central-1\n"
	        "  path-style: false\n"
	        "  part-size: 64MiB\n"
	        "outputs: [{name: a, path: a, to: a}]\n");
	ck_assert_str_eq(jp_options_get(&m->options, "s3.endpoint"), "http://127.0.0.1:7480");
	ck_assert_str_eq(jp_options_get(&m->options, "s3.region"), "eu-central-1");
	ck_assert_int_eq(jp_options_bool(&m->options, "s3.path-style", -1), 0);
	ck_assert_uint_eq(jp_options_size(&m->options, "s3.part-size", 0), 64ULL << 20);
	/* each value keeps where it stands, for messages about it */
	ck_assert_msg(strstr(jp_options_where(&m->options, "s3.endpoint"), "manifest.yaml:3:13") != NULL,
	              "%s", jp_options_where(&m->options, "s3.endpoint"));
	ck_assert_int_eq(m->options.v[0].source, JP_OPTION_FROM_MANIFEST);
	expect_error("s3:\n"
	             "  part-size: 1MiB\n"
	             "outputs: [{name: a, path: a, to: a}]\n",
	             ":2:14: s3.part-size: '1MiB' is not a size from 5MiB to 5GiB (e.g. 64MiB)");
	expect_error("s3:\n"
	             "  endpoitn: x\n"
	             "outputs: [{name: a, path: a, to: a}]\n",
	             ":2:3: unknown key 'endpoitn' in s3 (expected endpoint, region, path-style, "
	             "part-size)");
}
END_TEST

START_TEST(test_unknown_catalog_key)
{
	expect_error("catalog:\n"
	             "  table: t\n"
	             "  id_column: id\n"
	             "outputs: [{name: a, path: a, to: a}]\n",
	             ":3:3: unknown key 'id_column' in catalog (expected table, id-column, "
	             "status-column, published-status)");
}
END_TEST

START_TEST(test_unknown_output_key)
{
	expect_error("outputs:\n"
	             "  - name: a\n"
	             "    path: a\n"
	             "    to: a\n"
	             "    requird: true\n",
	             ":5:5: unknown key 'requird' in output (expected name, path, glob, to, column, "
	             "required, archive, check, attributes)");
}
END_TEST

START_TEST(test_path_and_glob)
{
	expect_error("outputs:\n"
	             "  - name: ok\n"
	             "    path: a\n"
	             "    to: a\n"
	             "  - name: both\n"
	             "    path: a\n"
	             "    glob: '*'\n"
	             "    to: b\n",
	             ":5:5: output both: give exactly one of path and glob");
}
END_TEST

START_TEST(test_neither_path_nor_glob)
{
	expect_error("outputs:\n"
	             "  - {name: neither, to: b, column: c}\n",
	             ":2:6: output neither: give exactly one of path and glob");
}
END_TEST

START_TEST(test_missing_to)
{
	expect_error("outputs:\n"
	             "  - name: textout\n"
	             "    path: pdroutput/TEXTOUT\n",
	             ":2:5: output textout: missing 'to' (its remote name)");
}
END_TEST

START_TEST(test_missing_name)
{
	expect_error("outputs:\n"
	             "  - path: a\n"
	             "    to: a\n",
	             ":2:5: output without a name");
}
END_TEST

/* A local path that leaves the workdir whatever the job is refused at load. */
START_TEST(test_path_dotdot)
{
	expect_error("outputs:\n"
	             "  - name: a\n"
	             "    path: ../x\n"
	             "    to: a\n",
	             ":3:11: output a: '../x' leaves the work directory ('..')");
	expect_error("outputs:\n"
	             "  - name: g\n"
	             "    glob: out/../../*\n"
	             "    to: a\n",
	             ":3:11: output g: 'out/../../*' leaves the work directory ('..')");
}
END_TEST

START_TEST(test_path_absolute)
{
	expect_error("outputs:\n"
	             "  - name: a\n"
	             "    path: /etc/passwd\n"
	             "    to: a\n",
	             ":3:11: output a: '/etc/passwd' is absolute; paths are relative to the work "
	             "directory");
}
END_TEST

START_TEST(test_bad_output_name)
{
	expect_error("outputs:\n"
	             "  - name: a/b\n"
	             "    path: a\n"
	             "    to: a\n",
	             ":2:11: output name 'a/b': use letters, digits, '_', '.', '-'");
}
END_TEST

START_TEST(test_bad_column)
{
	expect_error("outputs:\n"
	             "  - name: a\n"
	             "    path: a\n"
	             "    to: a\n"
	             "    column: a;drop\n",
	             ":5:13: column: 'a;drop' is not a valid SQL name (letters, digits, _; at most "
	             "64)");
}
END_TEST

/* 64 characters is the limit for a column name: 65 is refused, at the quoted value. */
START_TEST(test_column_length)
{
	char yaml[512], name65[66];

	memset(name65, 'c', 65);
	name65[65] = '\0';
	snprintf(yaml, sizeof(yaml), "outputs:\n  - {name: a, path: a, to: a, column: %.64s}\n",
	         name65);
	load_ok(yaml);
	ck_assert_uint_eq(strlen(m->outputs[0].column.s), 64);
	snprintf(yaml, sizeof(yaml), "outputs:\n  - {name: a, path: a, to: a, column: %s}\n", name65);
	snprintf(yaml + 256, 256,
	         ":2:39: column: '%s' is not a valid SQL name (letters, digits, _; at most 64)",
	         name65);
	expect_error(yaml, yaml + 256);
}
END_TEST

START_TEST(test_bad_catalog_identifier)
{
	expect_error("catalog:\n"
	             "  table: jobs; drop table jobs\n"
	             "outputs: [{name: a, path: a, to: a}]\n",
	             ":2:10: catalog.table: 'jobs; drop table jobs' is not a valid SQL name "
	             "(letters, digits, _; at most 64)");
	expect_error("catalog: {id-column: 1id}\n"
	             "outputs: [{name: a, path: a, to: a}]\n",
	             ":1:22: catalog.id-column: '1id' is not a valid SQL name (letters, digits, _; at "
	             "most 64)");
}
END_TEST

START_TEST(test_duplicate_names)
{
	expect_error("outputs:\n"
	             "  - {name: a, path: a, to: a}\n"
	             "  - {name: b, path: b, to: b}\n"
	             "  - {name: a, path: c, to: c}\n",
	             ":4:12: output name 'a' is used twice (also line 2)");
}
END_TEST

START_TEST(test_duplicate_column)
{
	expect_error("outputs:\n"
	             "  - {name: a, path: a, to: a, column: c}\n"
	             "  - {name: b, path: b, to: b, column: c}\n",
	             ":3:39: column 'c' is filled by outputs a and b");
}
END_TEST

START_TEST(test_required_not_boolean)
{
	expect_error("outputs:\n"
	             "  - name: a\n"
	             "    path: a\n"
	             "    to: a\n"
	             "    required: yes\n",
	             ":5:15: required: expected true or false");
}
END_TEST

START_TEST(test_empty_outputs)
{
	expect_error("destination: /a\n"
	             "outputs: []\n",
	             ":2:1: outputs: the list is empty");
}
END_TEST

START_TEST(test_no_outputs)
{
	expect_error("destination: /a\n", ": no outputs: add an 'outputs:' list");
}
END_TEST

START_TEST(test_outputs_not_a_list)
{
	expect_error("outputs: {name: a}\n", ":1:11: outputs: expected a list of outputs");
}
END_TEST

START_TEST(test_empty_value)
{
	expect_error("outputs:\n"
	             "  - name: a\n"
	             "    path: ''\n"
	             "    to: a\n",
	             ":3:5: path: empty value");
}
END_TEST

/* ---- jp_manifest_check_vars ---- */

static const char vars_yaml[] =
	"destination: file:///archive/pdr/${model}\n"                /* '$' at column 34 */
	"outputs:\n"
	"  - name: textout\n"
	"    path: pdroutput/TEXTOUT\n"
	"    to: pdrgrid/TEXTOUT${row.model_job_name}\n"
	"  - name: onion\n"
	"    glob: onion/${name}*\n"
	"    to: \"oniongrid/${job}/${basename}\"\n";

START_TEST(test_check_vars_unknown)
{
	char want[JP_ERRMSG_MAX];

	load_ok(vars_yaml);
	ck_assert_int_eq(jp_manifest_check_vars(m, "42", NULL, 0, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_DATA);
	snprintf(want, sizeof(want),
	         "%s:1:34: unknown variable ${model} (give it with --set model=VALUE; built-in: job, "
	         "name, basename, row.COLUMN)",
	         file);
	ck_assert_str_eq(err.msg, want);
}
END_TEST

START_TEST(test_check_vars_with_set)
{
	const struct jp_kv sets[] = {{"model", "kosma"}};

	load_ok(vars_yaml);
	ck_assert_int_eq(jp_manifest_check_vars(m, "42", sets, 1, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_NONE);
	/* Without a job the check still passes: ${job} is only checked for syntax. */
	ck_assert_int_eq(jp_manifest_check_vars(m, NULL, sets, 1, &err), JP_OK);
}
END_TEST

/* In a quoted value the column counts from the first character inside the quotes: here the
 * '"' is at column 9 and the '$' at column 12. */
START_TEST(test_check_vars_quoted_to)
{
	const struct jp_kv sets[] = {{"model", "kosma"}};
	char want[JP_ERRMSG_MAX];

	load_ok("outputs:\n"
	        "  - name: a\n"
	        "    path: a\n"
	        "    to: \"x/${modle}/${basename}\"\n");
	ck_assert_int_eq(jp_manifest_check_vars(m, "42", sets, 1, &err), JP_FAILED);
	snprintf(want, sizeof(want),
	         "%s:4:12: unknown variable ${modle} (give it with --set modle=VALUE; built-in: job, "
	         "name, basename, row.COLUMN)",
	         file);
	ck_assert_str_eq(err.msg, want);
}
END_TEST

START_TEST(test_check_vars_basename_outside_to)
{
	char want[JP_ERRMSG_MAX];

	load_ok("outputs:\n"
	        "  - name: a\n"
	        "    glob: out/${basename}\n"
	        "    to: x/${basename}\n");
	ck_assert_int_eq(jp_manifest_check_vars(m, "42", NULL, 0, &err), JP_FAILED);
	snprintf(want, sizeof(want), "%s:3:15: ${basename} is only available in `to:`", file);
	ck_assert_str_eq(err.msg, want);
}
END_TEST

START_TEST(test_check_vars_unterminated)
{
	char want[JP_ERRMSG_MAX];

	load_ok("destination: /archive/${job\n"
	        "outputs: [{name: a, path: a, to: a}]\n");
	ck_assert_int_eq(jp_manifest_check_vars(m, "42", NULL, 0, &err), JP_FAILED);
	snprintf(want, sizeof(want), "%s:1:23: unterminated ${ (missing '}')", file);
	ck_assert_str_eq(err.msg, want);
}
END_TEST

/* A `to:` that escapes the destination whatever the job is refused by the check. */
START_TEST(test_check_vars_escaping_to)
{
	char want[JP_ERRMSG_MAX];

	load_ok("outputs:\n"
	        "  - name: a\n"
	        "    path: a\n"
	        "    to: ../${name}\n");
	ck_assert_int_eq(jp_manifest_check_vars(m, "42", NULL, 0, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_DATA);
	snprintf(want, sizeof(want), "%s:4:9: output a: ", file);
	ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
	ck_assert_msg(strstr(err.msg, "'../a'") != NULL, "%s", err.msg);
}
END_TEST

/* jp_manifest_error with and without a position. */
START_TEST(test_manifest_error)
{
	struct jp_str at = {NULL, 7, 3};
	char want[JP_ERRMSG_MAX];

	load_ok("outputs: [{name: a, path: a, to: a}]\n");
	ck_assert_int_eq(jp_manifest_error(m, &at, &err, "bad %s", "thing"), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_DATA);
	snprintf(want, sizeof(want), "%s:7:3: bad thing", file);
	ck_assert_str_eq(err.msg, want);
	jp_error_clear(&err);
	jp_manifest_error(m, NULL, &err, "whole %d", 1);
	snprintf(want, sizeof(want), "%s: whole 1", file);
	ck_assert_str_eq(err.msg, want);
}
END_TEST

/* Each refusal of a wrong type or value, at its position (the table is the contract). */
START_TEST(test_refusals)
{
	static const struct {
		const char *yaml, *where;
	} cases[] = {
		{"outputs: [{name: a, path: a, to: [x]}]\n", ":1:35: to: expected a string"},
		{"outputs: [{name: a, path: a, to: \"a\\0b\"}]\n", ":1:35: to: NUL byte in value"},
		{"catalog: [x]\noutputs: [{name: a, path: a, to: a}]\n",
		 ":1:11: catalog: expected a mapping (table, id-column, status-column, "
		 "published-status)"},
		{"outputs: [{name: a, path: a, to: a, attributes: x}]\n",
		 ":1:49: attributes: expected a list of names, e.g. [n_surface, mass]"},
		{"outputs: [{name: a, path: a, to: a, attributes: [m, m]}]\n",
		 ":1:53: attributes: 'm' is listed twice"},
		{"sftp: x\n", ":1:7: sftp: expected a mapping (identity, known-hosts)"},
		{"sftp: {identity: a, port: 2}\n",
		 ":1:21: unknown key 'port' in sftp (expected identity, known-hosts)"},
		{"s3: x\n", ":1:5: s3: expected a mapping (endpoint, region, path-style, part-size)"},
		{"s3: {part-size: 1KiB}\n",
		 ":1:17: s3.part-size: '1KiB' is not a size from 5MiB to 5GiB (e.g. 64MiB)"},
		{"s3: {path-style: maybe}\n", ":1:18: s3.path-style: expected true or false"},
		/* a secret or a command-line-only option in a backend's section, a value its backend
		 * refuses */
		{"s3: {secret-access-key: x}\n",
		 ":1:6: s3.secret-access-key: a secret is read from the environment only (a command "
		 "line or a manifest would show it); set AWS_SECRET_ACCESS_KEY"},
		{"sftp: {accept-new-host-key: true}\n",
		 ":1:8: sftp.accept-new-host-key: only on the command line (-o "
		 "sftp.accept-new-host-key=...)"},
		{"s3: {region: a/b}\n",
		 ":1:14: s3.region: 'a/b' is not a region name (letters, digits and '-', e.g. "
		 "eu-central-1)"},
		{"s3: {bogus: 1}\n",
		 ":1:6: unknown key 'bogus' in s3 (expected endpoint, region, path-style, part-size)"},
		{"outputs: [x]\n",
		 ":1:11: outputs: each entry must be a mapping (name, path or glob, to, column, "
		 "required)"},
		{"outputs: [{[a]: b}]\n", ":1:13: outputs: keys must be strings"},
		{"outputs: [{name: a, path: a, to: a, archive: tar, check: hdf5}]\n",
		 ":1:58: output a: check applies to files, not to an archive"},
		{"outputs: [{name: a, path: a, to: a, check: hdf7}]\n",
		 ":1:44: output a: check 'hdf7': expected auto, none, hdf5 or hdf4"},
		{"outputs: [{name: a, glob: \"*\", to: a, attributes: [m]}]\n",
		 ":1:39: output a: attributes need a single HDF5 file ('path:', no archive)"},
		{"outputs: [{name: a, path: a, to: a, check: none, attributes: [m]}]\n",
		 ":1:50: output a: attributes need check: hdf5 or auto"},
		/* a key longer than the loader's buffer is shown cut, not overflowed */
		{"outputs: [{name: a, path: a, to: a}]\n"
		 "verylongkeyverylongkeyverylongkeyverylongkeyverylongkeyverylongkey12345: 1\n",
		 ":2:1: unknown key 'verylongkeyverylongkeyverylongkeyverylongkeyverylongkeyverylong' "
		 "(expected destination, catalog, outputs, sftp, s3)"},
		/* an empty value has no position of its own: its key's is given */
		{"outputs:\n", ":1:1: outputs: expected a list of outputs"},
		{"outputs: [{name: a, path: a, to: a}]\nsftp:\n",
		 ":2:1: sftp: expected a mapping (identity, known-hosts)"},
		{"catalog:\n", ":1:1: catalog: expected a mapping (table, id-column, status-column, "
		                "published-status)"},
		{"s3:\n", ":1:1: s3: expected a mapping (endpoint, region, path-style, part-size)"},
		{"s3: {path-style: }\n", ":1:6: s3.path-style: expected true or false"},
		{"outputs: [{name: a, path: a, to: a, required: }]\n",
		 ":1:37: required: expected true or false"},
		{"outputs: [{name: a, path: a, to: a, attributes: }]\n",
		 ":1:37: attributes: expected a list of names, e.g. [n_surface, mass]"},
		{"destination: /a\noutputs:\n  -\n",
		 ":2:1: outputs: each entry must be a mapping (name, path or glob, to, column, "
		 "required)"},
		{"? destination\n", ":1:3: destination: empty value"},
		{"outputs: [{name: a, path: a, to: a, attributes: [[x]]}]\n",
		 ":1:51: attributes: expected a string"},
		{"sftp: {identity: [x]}\n", ":1:19: sftp.identity: expected a string"},
		{"s3: {part-size: [1]}\n", ":1:18: s3.part-size: expected a string"},
		{"''\n", ": empty manifest"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(cases[i].yaml, cases[i].where);
}
END_TEST

/* jp_manifest_load_mem (the fuzz target's entry) has its own size check, before the parser. */
START_TEST(test_too_large_in_memory)
{
	size_t len = JP_MANIFEST_MAX + 1;
	char *text = malloc(len), want[JP_ERRMSG_MAX];

	ck_assert_ptr_nonnull(text);
	memset(text, '#', len);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_manifest_load_mem("big.yaml", text, len, &m, &err), JP_FAILED);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(err.code, JP_E_DATA);
	snprintf(want, sizeof(want), "big.yaml: larger than %d MiB: a manifest is a small text file",
	         JP_MANIFEST_MAX >> 20);
	ck_assert_str_eq(err.msg, want);
	/* one byte less is read (and is nothing but a comment: empty) */
	jp_error_clear(&err);
	ck_assert_int_eq(jp_manifest_load_mem("big.yaml", text, len - 1, &m, &err), JP_FAILED);
	ck_assert_msg(strstr(err.msg, "larger than") == NULL, "%s", err.msg);
	free(text);
}
END_TEST

/* Every allocation of jobpub's own (tests/failalloc.h) while a manifest is loaded and checked
 * against a job failed in turn: each is "out of memory" (70), never a verdict on the manifest
 * (65); then it loads and passes. */
START_TEST(test_allocation_failures)
{
	static const struct jp_kv sets[] = {{"model", "kosma"}};
	unsigned long n;
	int r;

	t_write_str(dir, "manifest.yaml", full);
	for (n = 1;; n++) {
		jp_error_clear(&err);
		t_fail_alloc(n);
		r = jp_manifest_load(file, &m, &err);
		t_fail_alloc(0);
		if (!t_fail_alloc_fired())
			break;
		ck_assert_msg(r == JP_FAILED && m == NULL, "allocation %lu failed, loaded", n);
		ck_assert_msg(err.code == JP_E_SOFTWARE && (strstr(err.msg, "out of memory") != NULL ||
		                                            strstr(err.msg, "Cannot allocate") != NULL),
		              "allocation %lu: %d %s", n, err.code, err.msg);
	}
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_uint_ge(n, 10);
	for (n = 1;; n++) {
		jp_error_clear(&err);
		t_fail_alloc(n);
		r = jp_manifest_check_job(m, "42", sets, 1, NULL, NULL, &err);
		t_fail_alloc(0);
		if (!t_fail_alloc_fired())
			break;
		ck_assert_msg(r == JP_FAILED, "allocation %lu failed, checked", n);
		ck_assert_msg(err.code == JP_E_SOFTWARE && strstr(err.msg, "out of memory") != NULL,
		              "allocation %lu: %d %s", n, err.code, err.msg);
	}
	ck_assert_msg(r == JP_OK, "%s", err.msg);
}
END_TEST

/* ---- bytes that are not UTF-8 text: refused before the YAML parser sees them ---- */

/* Writes len raw bytes as the manifest and expects class 65 with exactly "FILE" + where. */
static void
expect_bytes_error(const char *bytes, size_t len, const char *where)
{
	char want[JP_ERRMSG_MAX];
	int r;

	t_write(dir, "manifest.yaml", bytes, len);
	jp_error_clear(&err);
	r = jp_manifest_load(file, &m, &err);
	ck_assert_int_eq(r, JP_FAILED);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(err.code, JP_E_DATA);
	snprintf(want, sizeof(want), "%s%s", file, where);
	ck_assert_str_eq(err.msg, want);
}

/* Issue 13, defect 7: these three bytes made libfyaml 0.7.12 loop forever in
 * fy_scan_directive.  The test case has a timeout (see main), so a hang fails. */
START_TEST(test_directive_invalid_utf8)
{
	expect_bytes_error("%a\x89", 3, ":1:3: invalid UTF-8 byte 0x89 at byte offset 2: a manifest "
	                                 "is UTF-8 text");
}
END_TEST

/* The line and column (in characters) of the bad byte, after valid multi-byte text. */
START_TEST(test_invalid_utf8_position)
{
	static const char b[] = "outputs:\n  - name: \xc3\xa9t\xc3\xa9\xff\n";

	expect_bytes_error(b, sizeof(b) - 1, ":2:14: invalid UTF-8 byte 0xff at byte offset 24: a "
	                                     "manifest is UTF-8 text");
}
END_TEST

/* Overlong forms, surrogates, code points above U+10FFFF and a sequence cut by the end of the
 * file are not UTF-8. */
START_TEST(test_invalid_utf8_forms)
{
	expect_bytes_error("a: \xc0\xaf\n", 6, ":1:4: invalid UTF-8 byte 0xc0 at byte offset 3: "
	                                          "a manifest is UTF-8 text");
	expect_bytes_error("a: \xe0\x80\xaf\n", 7, ":1:4: invalid UTF-8 byte 0x80 at byte offset 4: "
	                                               "a manifest is UTF-8 text");
	expect_bytes_error("a: \xed\xa0\x80\n", 7, ":1:4: invalid UTF-8 byte 0xa0 at byte offset 4: "
	                                               "a manifest is UTF-8 text");
	expect_bytes_error("a: \xf4\x90\x80\x80\n", 8, ":1:4: invalid UTF-8 byte 0x90 at byte "
	                                                    "offset 4: a manifest is UTF-8 text");
	expect_bytes_error("a: \xe2\x82", 5, ":1:4: invalid UTF-8 byte 0xe2 at byte offset 3: a "
	                                       "manifest is UTF-8 text");
}
END_TEST

START_TEST(test_nul_byte)
{
	expect_bytes_error("outputs:\n  \0", 12, ":2:3: NUL byte at byte offset 11: a manifest is "
	                                            "UTF-8 text");
}
END_TEST

/* Valid multi-byte UTF-8 (2, 3 and 4 bytes) and a byte-order mark load. */
START_TEST(test_utf8_ok)
{
	load_ok("\xef\xbb\xbf# \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n"
	        "outputs: [{name: a, path: \xc3\xa9t\xc3\xa9, to: \xe2\x82\xac}]\n");
	ck_assert_str_eq(m->outputs[0].path.s, "\xc3\xa9t\xc3\xa9");
	ck_assert_str_eq(m->outputs[0].to.s, "\xe2\x82\xac");
}
END_TEST

/* A file larger than JP_MANIFEST_MAX is refused without being parsed. */
START_TEST(test_too_large)
{
	size_t len = (size_t)JP_MANIFEST_MAX + 1;
	char *big = malloc(len), want[JP_ERRMSG_MAX];

	ck_assert_ptr_nonnull(big);
	memset(big, '#', len);
	t_write(dir, "manifest.yaml", big, len);
	free(big);
	ck_assert_int_eq(jp_manifest_load(file, &m, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_DATA);
	snprintf(want, sizeof(want), "%s: larger than 16 MiB: a manifest is a small text file", file);
	ck_assert_str_eq(err.msg, want);
}
END_TEST

/* A directory is not readable as a manifest: 74, naming it. */
START_TEST(test_directory)
{
	char want[JP_ERRMSG_MAX];

	ck_assert_int_eq(jp_manifest_load(dir, &m, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	snprintf(want, sizeof(want), "%s: Is a directory", dir);
	ck_assert_str_eq(err.msg, want);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("manifest");
	TCase *tc;

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_catalog_partial);
	tcase_add_test(tc, test_example_manifest);
	suite_add_tcase(s, tc);

	tc = tcase_create("syntax");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_yaml_syntax);
	tcase_add_test(tc, test_yaml_syntax_flow);
	tcase_add_test(tc, test_yaml_duplicate_key);
	tcase_add_test(tc, test_not_a_mapping);
	tcase_add_test(tc, test_empty_document);
	suite_add_tcase(s, tc);

	tc = tcase_create("refusals");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unknown_top_key);
	tcase_add_test(tc, test_unknown_catalog_key);
	tcase_add_test(tc, test_s3_settings);
	tcase_add_test(tc, test_unknown_output_key);
	tcase_add_test(tc, test_path_and_glob);
	tcase_add_test(tc, test_neither_path_nor_glob);
	tcase_add_test(tc, test_missing_to);
	tcase_add_test(tc, test_missing_name);
	tcase_add_test(tc, test_path_dotdot);
	tcase_add_test(tc, test_path_absolute);
	tcase_add_test(tc, test_bad_output_name);
	tcase_add_test(tc, test_bad_column);
	tcase_add_test(tc, test_column_length);
	tcase_add_test(tc, test_bad_catalog_identifier);
	tcase_add_test(tc, test_duplicate_names);
	tcase_add_test(tc, test_duplicate_column);
	tcase_add_test(tc, test_required_not_boolean);
	tcase_add_test(tc, test_empty_outputs);
	tcase_add_test(tc, test_no_outputs);
	tcase_add_test(tc, test_outputs_not_a_list);
	tcase_add_test(tc, test_empty_value);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_too_large_in_memory);
	tcase_add_test(tc, test_allocation_failures);
	suite_add_tcase(s, tc);

	tc = tcase_create("bytes");
	tcase_add_checked_fixture(tc, setup, teardown);
	/* A parser that loops must fail the test, not hang the suite. */
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_directive_invalid_utf8);
	tcase_add_test(tc, test_invalid_utf8_position);
	tcase_add_test(tc, test_invalid_utf8_forms);
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_utf8_ok);
	tcase_add_test(tc, test_too_large);
	tcase_add_test(tc, test_directory);
	suite_add_tcase(s, tc);

	tc = tcase_create("vars");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_check_vars_unknown);
	tcase_add_test(tc, test_check_vars_with_set);
	tcase_add_test(tc, test_check_vars_quoted_to);
	tcase_add_test(tc, test_check_vars_basename_outside_to);
	tcase_add_test(tc, test_check_vars_unterminated);
	tcase_add_test(tc, test_check_vars_escaping_to);
	tcase_add_test(tc, test_manifest_error);
	suite_add_tcase(s, tc);

	return t_run(s);
}
