/*
 * plan.h - step 1 of a publish: the manifest resolved against a job's work directory.
 *
 * The plan lists every file to publish with its size and remote name, after checking every
 * input: each local path is a regular file inside the workdir (after resolving symlinks), each
 * remote name stays below the destination, no two files share a remote name, required outputs
 * exist.  Nothing is read or written beyond stat().
 */
#ifndef JP_PLAN_H
#define JP_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "manifest.h"
#include "template.h"
#include "validate.h"

/* One file to publish: a regular file, or a directory published as one archive. */
struct jp_item {
	const struct jp_output *out; /* the manifest entry it comes from */
	char *local;                 /* path as matched, relative to the workdir */
	char *abs;                   /* resolved absolute path */
	char *key;                   /* remote name below the destination */
	uint64_t size;               /* file size; for an archive 0 until it has been written */
	int is_archive;              /* a directory, streamed as out->archive_fmt */
	enum jp_check checked;       /* the validation applied (JP_CHECK_NONE: none) */
	struct jp_attr *attrs;       /* HDF5 root attributes read by the validation, or NULL */
	size_t n_attrs;
};

struct jp_plan {
	char *workdir;               /* resolved */
	char *destination;           /* expanded destination URL */
	struct jp_item *items;
	size_t n_items;
	const struct jp_output **skipped; /* optional outputs that were absent */
	size_t n_skipped;
	uint64_t total;              /* sum of sizes */
};

struct jp_plan_input {
	const struct jp_manifest *m;
	const char *workdir;         /* NULL: current directory */
	const char *job;
	const struct jp_kv *sets;
	size_t n_sets;
	const struct jp_row *row;    /* NULL: ${row.X} are placeholders (manifest check) */
	const char *dest_override;   /* --dest or $JOBPUB_DEST, a template too; may be NULL */
	int (*stop)(void);           /* asked between the matches of a glob: non-zero ends the
	                                plan with 75 (a signal); NULL: never */
};

/*
 * Builds the plan, validating every file (validate.h) on the way.  Errors: 66 a required output
 * is missing (naming it and the path), 65 a bad path/name (escaping the workdir or the
 * destination, not a regular file, a directory without `archive:`, duplicate remote name,
 * template error) or an invalid HDF file, 78 no destination at all, 74 the workdir or a file
 * cannot be read.
 */
int jp_plan_build(const struct jp_plan_input *in, struct jp_plan **out, struct jp_error *err);
void jp_plan_free(struct jp_plan *p); /* p may be NULL */

#endif
