/*
 * fuzz_spool.c - fuzz target: a spool entry (JSON) read by src/core/spool.c as `publish --spool` and
 * the Slurm epilog read it: the file is the caller's own, mode 0600, filed under key "42".
 *
 * Input: the entry file.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "spool.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jp_spool_entry *e = NULL;
	struct jp_error err;
	size_t i;

	fz_write("42.json", data, size);
	jp_error_clear(&err);
	if (jp_spool_read(fz_dir(), "42", &e, &err) == JP_OK) {
		if (e == NULL || e->job == NULL || e->manifest == NULL || e->workdir == NULL ||
		    e->created == NULL || e->manifest[0] != '/' || e->workdir[0] != '/')
			abort();
		for (i = 0; i < e->n_sets; i++)
			if (e->sets[i].name == NULL || e->sets[i].value == NULL)
				abort();
		jp_spool_entry_free(e);
	} else if (e != NULL || err.code == JP_E_NONE || err.msg[0] == '\0') {
		abort();
	}
	return 0;
}
