/*
 * manifest.h - the job manifest (YAML): where outputs go and which catalogue columns they fill.
 *
 *   destination: file:///archive/pdr/${model}
 *   catalog: {table: pdr_model_jobs, id-column: id, status-column: status,
 *             published-status: finished}
 *   outputs:
 *     - {name: textout, path: pdroutput/TEXTOUT, to: pdrgrid/TEXTOUT${row.model_job_name},
 *        column: output_textout_file, required: true}
 *     - {name: onion, glob: onionoutput/ONION3_CO.OUT, to: oniongrid/ONION${row.model_job_name}.${basename}}
 *     - {name: mcdrt, path: Out, archive: tar.gz, to: pdrgrid/MCDRT${row.model_job_name}.tar.gz}
 *     - {name: chem, path: pdrchem_c.hdf5, to: ..., check: hdf5, attributes: [n_surface, mass]}
 *
 * A top-level key named after a backend holds that backend's options (options.h; `jobpub help
 * options` lists them):
 *
 *   BACKEND: {KEY: VALUE, ...}
 *
 * Loading checks everything that can be checked without the job: YAML syntax, unknown keys
 * (typos are errors, in a backend's section too), types, identifiers, template syntax, unique
 * output names.  Every error is "FILE:LINE:COLUMN: message" with class JP_E_DATA.
 */
#ifndef JP_MANIFEST_H
#define JP_MANIFEST_H

#include <stddef.h>

#include "error.h"
#include "options.h"
#include "util.h"

/* A string from the manifest and where it stands (1-based).  s is NULL when the key is absent. */
struct jp_str {
	char *s;
	int line, col;
};

struct jp_output {
	struct jp_str name;
	struct jp_str path;   /* exactly one of path and glob is set */
	struct jp_str glob;
	struct jp_str to;
	struct jp_str column; /* optional */
	int required;         /* default 1 */
	struct jp_str archive;/* tar | tar.gz | tar.zst: path is a directory, published as one archive */
	int archive_fmt;      /* enum jp_archive_format parsed from archive (0: none) */
	struct jp_str check;  /* auto (default) | none | hdf5 | hdf4 */
	int check_kind;       /* enum jp_check parsed from check */
	char **attributes;    /* HDF5 root attributes copied to jobpub_attributes; may be NULL */
	size_t n_attributes;
	struct jp_str attributes_at; /* position of the attributes key (s is NULL) */
	int line, col;        /* of the output entry */
};

struct jp_manifest {
	char *file;                 /* the path it was loaded from */
	struct jp_str destination;  /* optional: --dest or $JOBPUB_DEST may give it */
	struct jp_str table;        /* default "jobs" */
	struct jp_str id_column;    /* default "id" */
	struct jp_str status_column;/* default "status" */
	struct jp_str published_status; /* default "published" */
	int external;               /* the table is not jobpub's own `jobs` */
	/* Backend options from the BACKEND: sections ("BACKEND: {KEY: VALUE}" is BACKEND.KEY),
	 * checked against the backends' tables (options.h), each with its FILE:LINE:COL; the
	 * command line's values beat them. */
	struct jp_options options;
	struct jp_output *outputs;
	size_t n_outputs;
};

/* The largest manifest read, in bytes: a manifest is a small text file. */
#define JP_MANIFEST_MAX (16 << 20)

/* Loads and checks file.  On success *out is set (free with jp_manifest_free).  Errors: 66 when
 * the file does not exist, 74 when it cannot be read, 65 for anything wrong inside it: larger
 * than JP_MANIFEST_MAX, not UTF-8 text or holding a NUL byte ("FILE:LINE:COL: invalid UTF-8
 * byte 0x89 at byte offset 2: ..."), then YAML and content errors. */
int jp_manifest_load(const char *file, struct jp_manifest **out, struct jp_error *err);
/* The same from the len bytes at text (need not be NUL-terminated), named file in messages:
 * what jp_manifest_load does once the file is read (the fuzz target's entry). */
int jp_manifest_load_mem(const char *file, const char *text, size_t len,
                         struct jp_manifest **out, struct jp_error *err);
void jp_manifest_free(struct jp_manifest *m);

/* Sets a JP_E_DATA error "FILE:LINE:COL: <fmt>" at the position of `at` (which may be NULL:
 * then "FILE: <fmt>"). */
int jp_manifest_error(const struct jp_manifest *m, const struct jp_str *at, struct jp_error *err,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Checks that every template of the manifest expands with these --set values and the given job
 * (row variables are only checked for syntax here).  Errors point at the template's position.
 * Same as jp_manifest_check_job(m, job, sets, n_sets, NULL, NULL, err). */
int jp_manifest_check_vars(const struct jp_manifest *m, const char *job, const struct jp_kv *sets,
                           size_t n_sets, struct jp_error *err);

/* The full check once the job's row is known: row may be NULL (row variables then only checked
 * for syntax); with row, ${row.X} must name a column holding a value.  When dest_override is
 * set (--dest), the manifest's destination is not used and not checked.  Remote names that
 * escape the destination whatever the job (`to: ../x`) are refused here too. */
struct jp_row;
int jp_manifest_check_job(const struct jp_manifest *m, const char *job, const struct jp_kv *sets,
                          size_t n_sets, const struct jp_row *row, const char *dest_override,
                          struct jp_error *err);

#endif
