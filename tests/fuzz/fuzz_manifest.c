/*
 * fuzz_manifest.c - fuzz target: a manifest loaded from memory (UTF-8 check, libfyaml, every
 * key), then every template expanded with --set values, a job ID and a catalogue row, the
 * remote names checked and joined to the destination, as `manifest check` and `publish` do.
 *
 * Input: the manifest, optionally followed by a line "#%%vars" and then lines of variables:
 * "job=ID", "row.COLUMN=VALUE", "row.COLUMN" (SQL NULL), "NAME=VALUE" (--set).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dest.h"
#include "fuzz.h"
#include "manifest.h"
#include "template.h"

#define MAX_VARS 32

/* Expands tmpl with v; a result that is a remote name is checked as one. */
static void
expand(const char *tmpl, const struct jp_vars *v, const char *dest)
{
	char why[512], *x, *url;
	size_t off = 0;

	if (tmpl == NULL)
		return;
	x = jp_template_expand(tmpl, v, why, sizeof(why), &off);
	if (x == NULL) {
		if (off > strlen(tmpl))
			abort(); /* the offset must point into the template */
		return;
	}
	if (dest != NULL && jp_key_check(x, why, sizeof(why)) == 0 &&
	    (url = jp_url_join(dest, x)) != NULL)
		free(url);
	free(x);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest = data;
	size_t left = size, i, n_sets = 0, text_len;
	struct jp_kv sets[MAX_VARS];
	char *names[MAX_VARS], *values[MAX_VARS];
	struct jp_row row = {0, names, values};
	struct jp_manifest *m = NULL;
	struct jp_error err;
	char *text, *vars, *line, *save = NULL, *job = NULL;

	text = fz_cut(&rest, &left, "\n#%%vars\n", &text_len);
	vars = fz_strndup(rest, left);
	for (line = strtok_r(vars, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (eq != NULL)
			*eq++ = '\0';
		if (strcmp(line, "job") == 0 && eq != NULL)
			job = eq;
		else if (strncmp(line, "row.", 4) == 0 && row.n < MAX_VARS)
			names[row.n] = line + 4, values[row.n++] = eq;
		else if (eq != NULL && n_sets < MAX_VARS)
			sets[n_sets].name = line, sets[n_sets++].value = eq;
	}
	jp_error_clear(&err);
	if (jp_manifest_load_mem("fuzz.yaml", text, text_len, &m, &err) == JP_OK) {
		struct jp_vars v = {job ? job : "1", NULL, NULL, sets, n_sets, &row, 0};
		char why[512], *dest = NULL;
		size_t off;

		if (m == NULL || err.code != JP_E_NONE)
			abort();
		jp_manifest_check_vars(m, job ? job : "1", sets, n_sets, &err);
		jp_error_clear(&err);
		jp_manifest_check_job(m, job ? job : "1", sets, n_sets, &row, NULL, &err);
		jp_error_clear(&err);
		jp_manifest_check_job(m, job, sets, n_sets, NULL, "file:///archive/${job}", &err);
		if (m->destination.s != NULL) {
			dest = jp_template_expand(m->destination.s, &v, why, sizeof(why), &off);
			if (dest != NULL) {
				jp_url_has_password(dest);
				jp_dest_check_url(dest, &err);
			}
		}
		for (i = 0; i < m->n_outputs; i++) {
			const struct jp_output *o = &m->outputs[i];

			v.name = o->name.s;
			v.basename = NULL;
			expand(o->path.s, &v, NULL);
			expand(o->glob.s, &v, NULL);
			v.basename = "f.txt";
			v.row_placeholder = (int)(i & 1);
			v.row = (i & 1) ? NULL : &row;
			expand(o->to.s, &v, dest ? dest : "file:///archive");
			v.row = &row;
		}
		free(dest);
	} else if (m != NULL || err.code == JP_E_NONE || err.msg[0] == '\0') {
		abort(); /* a failure always says why, and returns nothing */
	}
	jp_manifest_free(m);
	free(text);
	free(vars);
	return 0;
}
