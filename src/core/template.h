/*
 * template.h - ${...} variables in manifest strings (destination, path, glob, to).
 *
 *   ${job}          the job ID
 *   ${name}         the output's name
 *   ${basename}     the matched file's base name (only in `to:`)
 *   ${row.COLUMN}   a column of the job's catalogue row (NULL is an error, not "")
 *   ${NAME}         a value given with --set NAME=VALUE
 *   $$              a literal '$'
 *
 * An unknown variable is an error, never a literal in a remote name.
 */
#ifndef JP_TEMPLATE_H
#define JP_TEMPLATE_H

#include <stddef.h>

#include "row.h"
#include "util.h"

struct jp_vars {
	const char *job;         /* NULL: ${job} is an error */
	const char *name;        /* NULL: ${name} is an error */
	const char *basename;    /* NULL: ${basename} is an error ("only in to:") */
	const struct jp_kv *sets;
	size_t n_sets;
	const struct jp_row *row; /* NULL: see row_placeholder */
	/* When row is NULL and this is set, ${row.X} expands to "{row.X}" (manifest check without
	 * a catalogue); otherwise it is an error. */
	int row_placeholder;
};

/*
 * Expands tmpl.  On success returns a malloc'd string (caller frees).  On failure returns NULL
 * and writes a one-line reason without position into why ("unknown variable ${modle}"); *off
 * receives the byte offset of the offending '$' in tmpl, so the caller can point at the column.
 * errno is then ENOMEM when memory ran out (not the template's fault), else EINVAL.
 */
char *jp_template_expand(const char *tmpl, const struct jp_vars *v, char *why, size_t whylen,
                         size_t *off);

#endif
