/*
 * cmd.c - the command table and what the commands share: usage errors, --set, defaults.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

const struct jp_cmd *const jp_cmds[] = {
	&jp_cmd_publish,
	&jp_cmd_status,
	&jp_cmd_manifest,
	&jp_cmd_help,
	NULL,
};

const struct jp_cmd *
jp_cmd_find(const char *name)
{
	size_t i;

	for (i = 0; jp_cmds[i] != NULL; i++)
		if (strcmp(jp_cmds[i]->name, name) == 0)
			return jp_cmds[i];
	return NULL;
}

void
jp_cmd_print_help(const struct jp_cmd *c, FILE *fp)
{
	fprintf(fp, "usage: %s\n\n%s\n", c->usage, c->summary);
	if (c->options != NULL && c->options[0] != '\0')
		fprintf(fp, "\n%s", c->options);
}

int
jp_cmd_usage_error(const struct jp_cmd *c, const char *fmt, ...)
{
	va_list ap;

	fputs("jobpub: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s\n", c->usage);
	return 64;
}

int
jp_sets_add(const struct jp_cmd *c, struct jp_sets *s, char *arg)
{
	char *eq = strchr(arg, '=');
	struct jp_kv *v;
	size_t i;

	if (eq == NULL) {
		jp_cmd_usage_error(c, "--set %s: expected NAME=VALUE", arg);
		return -1;
	}
	*eq = '\0';
	if (!jp_is_identifier(arg) || strcmp(arg, "job") == 0 || strcmp(arg, "name") == 0 ||
	    strcmp(arg, "basename") == 0 || strcmp(arg, "row") == 0) {
		jp_cmd_usage_error(c, "--set %s: NAME must be an identifier other than job, name, "
		                      "basename and row", arg);
		*eq = '=';
		return -1;
	}
	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, arg) == 0) {
			s->v[i].value = eq + 1;
			return 0;
		}
	if ((v = realloc(s->v, (s->n + 1) * sizeof(*v))) == NULL) {
		fputs("jobpub: out of memory\n", stderr);
		return -1;
	}
	s->v = v;
	v[s->n].name = arg;
	v[s->n].value = eq + 1;
	s->n++;
	return 0;
}

void
jp_sets_free(struct jp_sets *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

const char *
jp_cmd_db(const char *opt)
{
	const char *env = getenv("JOBPUB_DB");

	if (opt != NULL)
		return opt;
	return env != NULL && env[0] != '\0' ? env : "jobpub.db";
}

int
jp_cmd_timeout_ms(const char *arg)
{
	char *end;
	double v = strtod(arg, &end);

	if (end == arg || *end != '\0' || v < 0 || v > 86400)
		return -1;
	return (int)(v * 1000);
}

int
jp_cmd_count(const char *arg, int min, int max)
{
	char *end;
	long v = strtol(arg, &end, 10);

	return end == arg || *end != '\0' || v < min || v > max ? -1 : (int)v;
}

int
jp_cmd_job_ok(const char *id)
{
	size_t n = strlen(id), i;

	if (n == 0 || n > 128)
		return 0;
	for (i = 0; i < n; i++)
		if (id[i] <= ' ' || id[i] >= 0x7f || id[i] == '/')
			return 0;
	return 1;
}
