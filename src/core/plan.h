/*
 * plan.h - step 1 of a publish: the manifest resolved against a job's work directory.
 *
 * The plan lists every file to publish with its size and remote name, after checking every
 * input: each local path is a regular file inside the workdir (after resolving symlinks), each
 * remote name stays below the destination, no two files share a remote name, required outputs
 * exist.  Nothing is written; files are read only by their validation (validate.h).
 *
 * A path is checked once, but read later (validation, hashing, staging): in between, the job
 * (or anyone who can write to its directory) can swap a checked file for a symlink to a file
 * outside.  So the plan holds the workdir open, records where each item resolved to (`rel`, a
 * path below the workdir with no link in it) and what it was (device, inode, type, and for a
 * file its size and times), and every later read goes through jp_plan_open: one component at a
 * time from the workdir's descriptor without following links, then the identity compared.  A
 * link swapped in anywhere on the way, or another file, is refused; nothing reaches outside.
 * Each read opens the file again rather than keeping the plan's descriptor: a job of 10,000
 * files would otherwise hold 10,000 descriptors (EMFILE under `ulimit -n 1024`); device, inode
 * and unchanged times make the reopened file provably the one validated.
 */
#ifndef JP_PLAN_H
#define JP_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "error.h"
#include "manifest.h"
#include "template.h"
#include "validate.h"

/* One file to publish: a regular file, or a directory published as one archive. */
struct jp_item {
	const struct jp_output *out; /* the manifest entry it comes from */
	char *local;                 /* path as matched, relative to the workdir */
	char *abs;                   /* resolved absolute path (for messages) */
	char *rel;                   /* the same, relative to the workdir: no symlink in it */
	dev_t dev;                   /* what the plan checked at rel: jp_plan_open insists on it */
	ino_t ino;
	mode_t type;                 /* S_IFREG or S_IFDIR */
	struct timespec mtime, ctime; /* of a regular file: unchanged since it was validated */
	char *key;                   /* remote name below the destination */
	uint64_t size;               /* file size; for an archive 0 until it has been written */
	int is_archive;              /* a directory, streamed as out->archive_fmt */
	enum jp_check checked;       /* the validation applied (JP_CHECK_NONE: none) */
	struct jp_attr *attrs;       /* HDF5 root attributes read by the validation, or NULL */
	size_t n_attrs;
};

struct jp_plan {
	char *workdir;               /* resolved */
	int wdfd;                    /* the workdir, opened once (O_PATH); items are reached from it */
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

/*
 * Opens item it of plan p for reading, as the plan checked it: a regular file read-only, a
 * directory O_DIRECTORY.  The path is walked from the workdir's descriptor one component at a
 * time with O_NOFOLLOW, and the file found must be the one the plan recorded (device, inode,
 * type; a regular file also its size, mtime and ctime).  Otherwise 74 "changed since it was
 * checked", naming it->local, and nothing is opened.  *fd is the caller's to close.
 */
int jp_plan_open(const struct jp_plan *p, const struct jp_item *it, int *fd,
                 struct jp_error *err);

/* 74 unless the file open on fd still is it as planned (identity, size and times): after a
 * read, whether the file was modified meanwhile. */
int jp_plan_unchanged(const struct jp_item *it, int fd, struct jp_error *err);

#endif
