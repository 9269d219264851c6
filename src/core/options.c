/*
 * options.c - backend options: the lookup of each backend's table, the generic check by type,
 * the store of values with their source, and the help listing.
 *
 * Nothing here knows a backend's keys: they come from the registry (dest.c: jp_backends[]).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "options.h"
#include "util.h"

static const struct jp_backend *
backend_named(const char *name, size_t len)
{
	size_t i;

	for (i = 0; jp_backends[i] != NULL; i++)
		if (strlen(jp_backends[i]->name) == len && strncmp(jp_backends[i]->name, name, len) == 0)
			return jp_backends[i];
	return NULL;
}

const struct jp_option_def *
jp_options_of(const char *backend)
{
	const struct jp_backend *be = backend_named(backend, strlen(backend));

	return be != NULL ? be->options : NULL;
}

/* Splits "BACKEND.NAME": the backend (only if it declares options) and the name's offset. */
static const struct jp_backend *
split_key(const char *key, const char **name)
{
	const char *dot = strchr(key, '.');
	const struct jp_backend *be;

	if (dot == NULL || (be = backend_named(key, (size_t)(dot - key))) == NULL ||
	    be->options == NULL)
		return NULL;
	*name = dot + 1;
	return be;
}

const struct jp_option_def *
jp_option_find(const char *key)
{
	const struct jp_option_def *d;
	const struct jp_backend *be;
	const char *name;

	if ((be = split_key(key, &name)) == NULL)
		return NULL;
	for (d = be->options; d->name != NULL; d++)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

/* Appends s to buf (", "-separated), cutting at len. */
static void
list_add(char *buf, size_t len, const char *s)
{
	size_t n = strlen(buf);

	if (n + 1 < len)
		snprintf(buf + n, len - n, "%s%s", n > 0 ? ", " : "", s);
}

/* The names of be's options: those a manifest may set (manifest), else all but secrets. */
static void
names_of(const struct jp_backend *be, int manifest, char *buf, size_t len)
{
	const struct jp_option_def *d;

	buf[0] = '\0';
	for (d = be->options; d != NULL && d->name != NULL; d++)
		if (d->type != JP_OPTION_SECRET_ENV && !(manifest && (d->flags & JP_OPTION_CLI_ONLY)))
			list_add(buf, len, d->name);
}

void
jp_options_manifest_names(const char *backend, char *buf, size_t len)
{
	const struct jp_backend *be = backend_named(backend, strlen(backend));

	buf[0] = '\0';
	if (be != NULL)
		names_of(be, 1, buf, len);
}

void
jp_options_backend_names(char *buf, size_t len)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; jp_backends[i] != NULL; i++)
		if (jp_backends[i]->options != NULL)
			list_add(buf, len, jp_backends[i]->name);
}

/* "5MiB" for exact multiples of a unit, else the bytes: bounds are round numbers. */
static const char *
size_text(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
	int i;

	for (i = 0; i < 4; i++) {
		unsigned shift = (unsigned)(40 - 10 * i);
		if (v != 0 && v % (1ULL << shift) == 0) {
			snprintf(buf, len, "%llu%s", (unsigned long long)(v >> shift), units[i]);
			return buf;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

int
jp_option_check(const char *key, const struct jp_option_def *def, const char *value,
                char *why, size_t len)
{
	const struct jp_backend *be;
	const char *name;

	if (def->type == JP_OPTION_SECRET_ENV) {
		snprintf(why, len, "a secret is read from the environment only (a command line or a "
		                   "manifest would show it); set %s", def->env);
		return -1;
	}
	if (value == NULL || value[0] == '\0') {
		snprintf(why, len, "empty value");
		return -1;
	}
	switch (def->type) {
	case JP_OPTION_BOOL:
		if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
			snprintf(why, len, "expected true or false");
			return -1;
		}
		break;
	case JP_OPTION_SIZE: {
		char lo[32], hi[32];
		uint64_t v;

		if (jp_parse_size(value, &v) != 0 || v < def->min || (def->max != 0 && v > def->max)) {
			if (def->max != 0)
				snprintf(why, len, "'%s' is not a size from %s to %s (e.g. %s)", value,
				         size_text(def->min, lo, sizeof(lo)), size_text(def->max, hi, sizeof(hi)),
				         def->example ? def->example : hi);
			else
				snprintf(why, len, "'%s' is not a size (e.g. %s)", value,
				         def->example ? def->example : "64MiB");
			return -1;
		}
		break;
	}
	case JP_OPTION_INT: {
		long long v;
		char *end;

		errno = 0;
		v = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || v < (long long)def->min ||
		    (def->max != 0 && v > (long long)def->max)) {
			if (def->max != 0)
				snprintf(why, len, "'%s' is not a whole number from %llu to %llu", value,
				         (unsigned long long)def->min, (unsigned long long)def->max);
			else
				snprintf(why, len, "'%s' is not a whole number from %llu", value,
				         (unsigned long long)def->min);
			return -1;
		}
		break;
	}
	default:
		break;
	}
	if ((be = split_key(key, &name)) != NULL && be->check_option != NULL)
		return be->check_option(def, value, why, len);
	return 0;
}

int
jp_options_put(struct jp_options *s, const char *key, const char *value,
               enum jp_option_source source, const char *where, struct jp_error *err)
{
	struct jp_option *o = NULL, *v;
	size_t i;

	for (i = 0; i < s->n && o == NULL; i++)
		if (strcmp(s->v[i].key, key) == 0)
			o = &s->v[i];
	if (o == NULL) {
		if ((v = realloc(s->v, (s->n + 1) * sizeof(*v))) == NULL)
			goto oom;
		s->v = v;
		o = &s->v[s->n];
		memset(o, 0, sizeof(*o));
		if ((o->key = strdup(key)) == NULL)
			goto oom;
		s->n++;
	}
	free(o->value);
	free(o->where);
	o->value = strdup(value);
	o->where = where != NULL ? strdup(where) : NULL;
	o->source = source;
	if (o->value == NULL || (where != NULL && o->where == NULL))
		goto oom;
	return JP_OK;
oom:
	return jp_error_set(err, JP_E_SOFTWARE, "options: out of memory");
}

/* Whether s is made of key characters only: a mistyped -o shows what was meant, but an
 * argument that might be a value (a pasted secret) is never echoed. */
static int
key_like(const char *s, size_t n)
{
	return n > 0 && n < 128 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.-_") >= n;
}

int
jp_options_set_arg(struct jp_options *s, const char *flag, const char *arg,
                   struct jp_error *err)
{
	const char *eq = strchr(arg, '='), *name;
	const struct jp_option_def *def;
	const struct jp_backend *be;
	char key[128], why[512], list[256];
	size_t n = eq ? (size_t)(eq - arg) : strlen(arg);

	if (eq == NULL || !key_like(arg, n))
		return jp_error_set(err, JP_E_USAGE, "%s%s%.*s: expected BACKEND.KEY=VALUE (jobpub "
		                    "help options lists them)",
		                    flag, key_like(arg, n) ? " " : "", key_like(arg, n) ? (int)n : 0, arg);
	memcpy(key, arg, n);
	key[n] = '\0';
	if ((be = split_key(key, &name)) == NULL) {
		jp_options_backend_names(list, sizeof(list));
		return jp_error_set(err, JP_E_USAGE, "%s %s: unknown option (options are BACKEND.KEY, "
		                    "for BACKEND one of: %s)", flag, key, list);
	}
	if ((def = jp_option_find(key)) == NULL) {
		names_of(be, 0, list, sizeof(list));
		return jp_error_set(err, JP_E_USAGE, "%s %s: unknown option (%s has %s)", flag, key,
		                    be->name, list);
	}
	if (jp_option_check(key, def, eq + 1, why, sizeof(why)) != 0)
		return jp_error_set(err, JP_E_USAGE, "%s %s: %s", flag, key, why);
	return jp_options_put(s, key, eq + 1, JP_OPTION_FROM_CLI, flag, err);
}

int
jp_options_set_alias(struct jp_options *s, const char *alias, const char *value,
                     struct jp_error *err)
{
	const struct jp_option_def *d;
	char key[128], why[512], flag[64];
	size_t i;

	snprintf(flag, sizeof(flag), "--%s", alias);
	for (i = 0; jp_backends[i] != NULL; i++)
		for (d = jp_backends[i]->options; d != NULL && d->name != NULL; d++) {
			if (d->alias == NULL || strcmp(d->alias, alias) != 0)
				continue;
			snprintf(key, sizeof(key), "%s.%s", jp_backends[i]->name, d->name);
			if (value == NULL)
				value = "true";
			if (jp_option_check(key, d, value, why, sizeof(why)) != 0) {
				char lo[32], hi[32];

				/* A bounded size keeps the message the flag always had. */
				if (d->type == JP_OPTION_SIZE && d->max != 0)
					return jp_error_set(err, JP_E_USAGE, "%s %s: expected %s to %s", flag,
					                    value, size_text(d->min, lo, sizeof(lo)),
					                    size_text(d->max, hi, sizeof(hi)));
				return jp_error_set(err, JP_E_USAGE, "%s: %s", flag, why);
			}
			return jp_options_put(s, key, value, JP_OPTION_FROM_CLI, flag, err);
		}
	return jp_error_set(err, JP_E_SOFTWARE, "options: no option is aliased by %s", flag);
}

int
jp_options_merge(struct jp_options *dst, const struct jp_options *src, struct jp_error *err)
{
	size_t i;
	int r;

	for (i = 0; src != NULL && i < src->n; i++)
		if ((r = jp_options_put(dst, src->v[i].key, src->v[i].value, src->v[i].source,
		                        src->v[i].where, err)) != JP_OK)
			return r;
	return JP_OK;
}

static const struct jp_option *
lookup(const struct jp_options *s, const char *key)
{
	size_t i;

	for (i = 0; s != NULL && i < s->n; i++)
		if (strcmp(s->v[i].key, key) == 0)
			return &s->v[i];
	return NULL;
}

const char *
jp_options_get(const struct jp_options *s, const char *key)
{
	const struct jp_option *o = lookup(s, key);

	return o != NULL ? o->value : NULL;
}

const char *
jp_options_where(const struct jp_options *s, const char *key)
{
	const struct jp_option *o = lookup(s, key);

	return o != NULL ? o->where : NULL;
}

/* The typed reads take values jp_option_check passed; anything else reads as not given. */
int
jp_options_bool(const struct jp_options *s, const char *key, int def)
{
	const char *v = jp_options_get(s, key);

	return v == NULL ? def : strcmp(v, "true") == 0 ? 1 : strcmp(v, "false") == 0 ? 0 : def;
}

uint64_t
jp_options_size(const struct jp_options *s, const char *key, uint64_t def)
{
	const char *v = jp_options_get(s, key);
	uint64_t n;

	return v != NULL && jp_parse_size(v, &n) == 0 ? n : def;
}

long long
jp_options_int(const struct jp_options *s, const char *key, long long def)
{
	const char *v = jp_options_get(s, key);
	char *end;
	long long n;

	if (v == NULL)
		return def;
	errno = 0;
	n = strtoll(v, &end, 10);
	return errno == 0 && end != v && *end == '\0' ? n : def;
}

void
jp_options_free(struct jp_options *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++) {
		free(s->v[i].key);
		free(s->v[i].value);
		free(s->v[i].where);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

const char *
jp_options_alias(size_t i, int *has_arg)
{
	const struct jp_option_def *d;
	size_t k;

	for (k = 0; jp_backends[k] != NULL; k++)
		for (d = jp_backends[k]->options; d != NULL && d->name != NULL; d++)
			if (d->alias != NULL && i-- == 0) {
				*has_arg = d->type != JP_OPTION_BOOL;
				return d->alias;
			}
	return NULL;
}

static const char *
arg_name(const struct jp_option_def *d)
{
	if (d->arg != NULL)
		return d->arg;
	switch (d->type) {
	case JP_OPTION_PATH: return "FILE";
	case JP_OPTION_SIZE: return "SIZE";
	case JP_OPTION_BOOL: return "true|false";
	case JP_OPTION_INT: return "N";
	default: return "VALUE";
	}
}

/* Prints text from column `at` (the cursor is there), words wrapped at WIDTH, continued at
 * column INDENT. */
#define HELP_INDENT 30
#define HELP_WIDTH 92
static void
wrap(FILE *fp, const char *text, size_t at)
{
	const char *p = text;

	while (*p != '\0') {
		size_t n = strcspn(p, " ");

		if (at > HELP_INDENT && at + n > HELP_WIDTH) {
			fprintf(fp, "\n%*s", HELP_INDENT, "");
			at = HELP_INDENT;
		}
		fprintf(fp, "%.*s", (int)n, p);
		at += n;
		p += n;
		if (*p == ' ') {
			p++;
			if (*p != '\0' && at + 1 + strcspn(p, " ") <= HELP_WIDTH) {
				fputc(' ', fp);
				at++;
			} else if (*p != '\0') {
				fprintf(fp, "\n%*s", HELP_INDENT, "");
				at = HELP_INDENT;
			}
		}
	}
	fputc('\n', fp);
}

void
jp_options_print_help(FILE *fp)
{
	const struct jp_option_def *d;
	size_t i;

	fputs("Backend options: -o BACKEND.KEY=VALUE (repeatable), or KEY: VALUE in the manifest's\n"
	      "BACKEND: section; the command line wins.  Secrets come from the environment only.\n",
	      fp);
	for (i = 0; jp_backends[i] != NULL; i++) {
		const struct jp_backend *be = jp_backends[i];

		if (be->options == NULL)
			continue;
		for (d = be->options; d->name != NULL; d++) {
			char head[96], text[512];
			size_t n;

			if (d->type == JP_OPTION_SECRET_ENV)
				snprintf(head, sizeof(head), "  %s.%s", be->name, d->name);
			else
				snprintf(head, sizeof(head), "  %s.%s=%s", be->name, d->name, arg_name(d));
			n = strlen(head);
			fputs(head, fp);
			if (n + 1 < HELP_INDENT)
				fprintf(fp, "%*s", (int)(HELP_INDENT - n), "");
			else
				fprintf(fp, "\n%*s", HELP_INDENT, "");
			n = (size_t)snprintf(text, sizeof(text), "%s", d->help);
			if (d->type == JP_OPTION_SECRET_ENV)
				n += (size_t)snprintf(text + n, sizeof(text) - n, "; secret: set $%s", d->env);
			if (d->def != NULL && n < sizeof(text))
				n += (size_t)snprintf(text + n, sizeof(text) - n, "; default %s", d->def);
			if ((d->flags & JP_OPTION_CLI_ONLY) && n < sizeof(text))
				snprintf(text + n, sizeof(text) - n, "; command line only");
			wrap(fp, text, HELP_INDENT);
		}
	}
	/* The older flags, in the form of the command's own options (a man page lists them). */
	fputs("Older flags, the same as -o:\n", fp);
	for (i = 0; jp_backends[i] != NULL; i++)
		for (d = jp_backends[i]->options; d != NULL && d->name != NULL; d++) {
			char flag[96];

			if (d->alias == NULL)
				continue;
			snprintf(flag, sizeof(flag), "--%s%s%s", d->alias,
			         d->type == JP_OPTION_BOOL ? "" : " ",
			         d->type == JP_OPTION_BOOL ? "" : arg_name(d));
			fprintf(fp, "      %-21s %s-o %s.%s=%s\n", flag, strlen(flag) < 22 ? "" : " ",
			        jp_backends[i]->name, d->name,
			        d->type == JP_OPTION_BOOL ? "true" : arg_name(d));
		}
}
