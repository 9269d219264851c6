/*
 * template.c - expansion of ${...} variables in manifest strings.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

/* Growable output buffer; on allocation failure `s` becomes NULL and stays so. */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void
sbuf_add(struct sbuf *b, const char *p, size_t n)
{
	if (b->s == NULL)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *s = realloc(b->s, cap);
		if (s == NULL) {
			free(b->s);
			b->s = NULL;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* Value of variable `var`, or NULL with a reason in why.  *placeholder is set when the value
 * is a stand-in to be written as "{var}". */
static const char *
lookup(const char *var, const struct jp_vars *v, char *why, size_t whylen, int *placeholder)
{
	size_t i;

	*placeholder = 0;
	if (strcmp(var, "job") == 0) {
		if (v->job == NULL)
			snprintf(why, whylen, "${job} is not known here");
		return v->job;
	}
	if (strcmp(var, "name") == 0) {
		if (v->name == NULL)
			snprintf(why, whylen, "${name} is only available in an output");
		return v->name;
	}
	if (strcmp(var, "basename") == 0) {
		if (v->basename == NULL)
			snprintf(why, whylen, "${basename} is only available in `to:`");
		return v->basename;
	}
	if (strncmp(var, "row.", 4) == 0) {
		const char *col = var + 4, *val;
		int found;

		if (!jp_is_identifier(col)) {
			snprintf(why, whylen, "bad column name in ${%s}", var);
			return NULL;
		}
		if (v->row == NULL) {
			if (v->row_placeholder) {
				*placeholder = 1;
				return var;
			}
			snprintf(why, whylen, "${%s} needs the job's catalogue row", var);
			return NULL;
		}
		val = jp_row_get(v->row, col, &found);
		if (!found)
			snprintf(why, whylen, "unknown variable ${%s}: the job's row has no column %s", var,
			         col);
		else if (val == NULL)
			snprintf(why, whylen, "${%s} is NULL in the job's catalogue row", var);
		return val;
	}
	for (i = 0; i < v->n_sets; i++)
		if (strcmp(v->sets[i].name, var) == 0)
			return v->sets[i].value;
	if (jp_is_identifier(var))
		snprintf(why, whylen,
		         "unknown variable ${%s} (give it with --set %s=VALUE; built-in: job, name, "
		         "basename, row.COLUMN)",
		         var, var);
	else
		snprintf(why, whylen, "bad variable name ${%s}", var);
	return NULL;
}

char *
jp_template_expand(const char *tmpl, const struct jp_vars *v, char *why, size_t whylen,
                   size_t *off)
{
	struct sbuf b = {malloc(64), 0, 64};
	const char *p = tmpl;

	if (b.s == NULL)
		goto nomem;
	b.s[0] = '\0';
	while (*p != '\0') {
		const char *d = strchr(p, '$'), *end, *val;
		char var[128];
		int ph;

		if (d == NULL) {
			sbuf_add(&b, p, strlen(p));
			break;
		}
		sbuf_add(&b, p, (size_t)(d - p));
		if (d[1] == '$') {
			sbuf_add(&b, "$", 1);
			p = d + 2;
			continue;
		}
		if (d[1] != '{') {
			sbuf_add(&b, "$", 1);
			p = d + 1;
			continue;
		}
		end = strchr(d + 2, '}');
		*off = (size_t)(d - tmpl);
		if (end == NULL) {
			snprintf(why, whylen, "unterminated ${ (missing '}')");
			goto fail;
		}
		if ((size_t)(end - d - 2) >= sizeof(var) || end == d + 2) {
			snprintf(why, whylen, "bad variable name in ${...}");
			goto fail;
		}
		memcpy(var, d + 2, (size_t)(end - d - 2));
		var[end - d - 2] = '\0';
		val = lookup(var, v, why, whylen, &ph);
		if (val == NULL)
			goto fail;
		if (ph) {
			sbuf_add(&b, "{", 1);
			sbuf_add(&b, val, strlen(val));
			sbuf_add(&b, "}", 1);
		} else {
			sbuf_add(&b, val, strlen(val));
		}
		p = end + 1;
	}
	if (b.s == NULL)
		goto nomem;
	return b.s;
nomem:
	snprintf(why, whylen, "out of memory");
	*off = 0;
	free(b.s);
	errno = ENOMEM;
	return NULL;
fail:
	free(b.s);
	errno = EINVAL;
	return NULL;
}
