/*
 * row.c - a job's catalogue row as text (see row.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "row.h"

const char *
jp_row_get(const struct jp_row *row, const char *name, int *found)
{
	size_t i;

	*found = 0;
	for (i = 0; row != NULL && i < row->n; i++)
		if (strcmp(row->names[i], name) == 0) {
			*found = 1;
			return row->values[i];
		}
	return NULL;
}

void
jp_row_free(struct jp_row *row)
{
	size_t i;

	if (row == NULL)
		return;
	/* Either array may be missing: a row whose allocation failed half way (n already set). */
	for (i = 0; i < row->n; i++) {
		if (row->names != NULL)
			free(row->names[i]);
		if (row->values != NULL)
			free(row->values[i]);
	}
	free(row->names);
	free(row->values);
	free(row);
}
