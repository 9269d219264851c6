/*
 * row.h - a job's catalogue row as text: what the catalogue loads (catalog.c) and what
 * ${row.COLUMN} reads (template.c), so that neither module depends on the other.
 */
#ifndef JP_ROW_H
#define JP_ROW_H

#include <stddef.h>

/* A catalogue row as text.  values[i] is NULL for SQL NULL.  Built by catalog.c. */
struct jp_row {
	size_t n;
	char **names;
	char **values;
};

/* Value of column `name` in row (row may be NULL): sets *found; returns NULL for absent or SQL
 * NULL. */
const char *jp_row_get(const struct jp_row *row, const char *name, int *found);

/* Frees row and its strings; row may be NULL, and either array may be missing (a row whose
 * allocation failed half way). */
void jp_row_free(struct jp_row *row);

#endif
