/*
 * validate.h - checking HDF5 and HDF4 outputs before they leave the job.
 *
 * A truncated HDF5 file (a job that ran out of time or disk) is worthless; publishing it as
 * "finished" is worse.  `check:` per output:
 *   auto  (default) look at the signature: HDF5 superblock at 0, 512, 1024, 2048, ...; HDF4
 *         magic 0e 03 13 01 at 0; check what is found.  A file named as HDF (jp_hdf_extension)
 *         without either signature (empty, text) is invalid; anything else is accepted as is
 *   hdf5  must be a valid HDF5 file: the superblock's end-of-file address within the real size
 *         (else "truncated HDF5 file (EOF address A, file size S)"), opens read-only, every
 *         object can be visited (H5Ovisit) without error
 *   hdf4  must carry the HDF4 signature (signature check only)
 *   none  no check
 * HDF5's own error stack is silenced and turned into one line.  Every failure is JP_E_DATA.
 */
#ifndef JP_VALIDATE_H
#define JP_VALIDATE_H

#include <stddef.h>

#include "error.h"

enum jp_check {
	JP_CHECK_AUTO = 0,
	JP_CHECK_NONE,
	JP_CHECK_HDF5,
	JP_CHECK_HDF4,
};

/* "auto", "none", "hdf5", "hdf4"; returns -1 for anything else. */
int jp_check_parse(const char *s);
const char *jp_check_name(enum jp_check c);

/* The extension (".hdf5", from the dot) when name's last component ends in one of the HDF
 * extensions .h5 .hdf5 .he5 .hdf .h4 .hdf4 (any case), else NULL. */
const char *jp_hdf_extension(const char *name);

/* A root attribute of an HDF5 file, as text. */
struct jp_attr {
	char *name;
	char *value; /* numbers in C locale ("%.17g" for floats), arrays comma-separated */
};

/*
 * Validates the regular file open (for reading) on fd, by that descriptor only: it is never
 * opened again by name (label names it in messages, e.g. "pdroutput/pdrchem_c.hdf5", and its
 * extension is what `auto` goes by).  fd is left open, its offset unused.  *found gets
 * the kind actually checked (JP_CHECK_NONE when auto found no HDF signature).  When n_attrs > 0
 * the file must be HDF5 and each named root attribute must exist: *attrs receives n_attrs
 * values (free with jp_attrs_free).  attrs may be NULL when n_attrs is 0.
 */
int jp_validate(int fd, const char *label, enum jp_check check,
                const char *const *names, size_t n_attrs, struct jp_attr **attrs,
                enum jp_check *found, struct jp_error *err);
void jp_attrs_free(struct jp_attr *a, size_t n);

#endif
