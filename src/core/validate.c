/*
 * validate.c - HDF5 (with the HDF5 library) and HDF4 (signature) checks.
 *
 * The superblock is read by hand first: a truncated file makes H5Fopen fail with a message
 * buried in the error stack, while the stored end-of-file address tells exactly what is missing.
 *
 * Everything is read from the caller's descriptor, never by the file's name: the name may have
 * been swapped for a link to another file since the caller opened it (plan.h).  HDF5 can only
 * open names, so it is given /proc/self/fd/N: the kernel resolves that magic link to the open
 * file itself (the inode the descriptor holds), not by looking its old path up again, so no link
 * swapped in under the job's name is followed.  The alternatives were worse: the core driver
 * with a file image reads the whole file into memory (outputs reach gigabytes), and a virtual
 * file driver of our own over the descriptor is a private ABI that changed between HDF5 1.10
 * and 1.14.  After the open, the descriptor HDF5's sec2 driver holds is compared (device and
 * inode) with ours, so what was validated is provably the caller's file.  (HDF5 also runs
 * realpath() on a name that is a link, to name the file for external links; that lookup reads
 * links but opens nothing, and fails when the file's own name is gone: a file replaced while
 * being checked is then reported as changed, never judged by another file's content.)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "util.h"
#include "validate.h"

#define NAME "validate"

static const unsigned char hdf5_sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
static const unsigned char hdf4_sig[4] = {0x0e, 0x03, 0x13, 0x01};

int
jp_check_parse(const char *s)
{
	if (strcmp(s, "auto") == 0)
		return JP_CHECK_AUTO;
	if (strcmp(s, "none") == 0)
		return JP_CHECK_NONE;
	if (strcmp(s, "hdf5") == 0)
		return JP_CHECK_HDF5;
	if (strcmp(s, "hdf4") == 0)
		return JP_CHECK_HDF4;
	return -1;
}

const char *
jp_check_name(enum jp_check c)
{
	static const char *const names[] = {"auto", "none", "hdf5", "hdf4"};

	return c <= JP_CHECK_HDF4 ? names[c] : "?";
}

const char *
jp_hdf_extension(const char *name)
{
	static const char *const exts[] = {"h5", "hdf5", "he5", "hdf", "h4", "hdf4"};
	const char *slash = strrchr(name, '/'), *dot;
	size_t i;

	dot = strrchr(slash ? slash + 1 : name, '.');
	for (i = 0; dot != NULL && i < sizeof(exts) / sizeof(exts[0]); i++)
		if (strcasecmp(dot + 1, exts[i]) == 0)
			return dot;
	return NULL;
}

void
jp_attrs_free(struct jp_attr *a, size_t n)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(a[i].name);
		free(a[i].value);
	}
	free(a);
}

static uint64_t
le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = (v << 8) | p[n];
	return v;
}

/*
 * Finds the HDF5 superblock (at 0 or a power of two from 512) and reads its
 * end-of-file addresses.  Returns 1 when found (*sb_off, *eof_abs set), 0 when not, -1 on a
 * read error.  *eof_abs is 0 when the superblock version is unknown to us, UINT64_MAX when the
 * file ends before the end-of-file address field.
 */
static int
find_superblock(int fd, uint64_t size, uint64_t *sb_off, uint64_t *eof_abs)
{
	unsigned char b[96];
	uint64_t off;

	for (off = 0; off + 8 <= size; off = off ? off * 2 : 512) {
		ssize_t n = pread(fd, b, sizeof(b), (off_t)off);
		int ver, soa, at;

		if (n < 0)
			return -1;
		if (n < 8 || memcmp(b, hdf5_sig, 8) != 0)
			continue;
		*sb_off = off;
		*eof_abs = 0;
		ver = b[8];
		/* Field layout from the HDF5 file format specification, superblock versions 0-3. */
		if (ver == 0 || ver == 1) {
			soa = b[13];
			at = ver == 0 ? 24 : 28;
		} else if (ver == 2 || ver == 3) {
			soa = b[9];
			at = 12;
		} else {
			return 1;
		}
		if (soa < 2 || soa > 8)
			return 1;
		if (at + 3 * soa > n) {
			*eof_abs = UINT64_MAX; /* the file ends inside its own superblock */
			return 1;
		}
		/* v0/1: base, free-space, EOF; v2/3: base, superblock extension, EOF.  The EOF
		 * address counts from the start of the file, user block included (as written by the
		 * library, whatever the base address). */
		*eof_abs = le(b + at + 2 * soa, soa);
		return 1;
	}
	return 0;
}

/* The most specific message on HDF5's error stack. */
struct h5msg {
	char text[256];
};

static herr_t
last_error(unsigned n, const H5E_error2_t *e, void *arg)
{
	struct h5msg *m = arg;

	if (e->desc != NULL && e->desc[0] != '\0')
		snprintf(m->text, sizeof(m->text), "%s", e->desc);
	return 0;
}

static void
h5_reason(char *buf, size_t len)
{
	struct h5msg m = {"unknown HDF5 error"};

	H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, last_error, &m);
	H5Eclear2(H5E_DEFAULT);
	snprintf(buf, len, "%s", m.text);
}

static herr_t
visit_one(hid_t obj, const char *name, const H5O_info_t *info, void *arg)
{
	(void)obj;
	(void)name;
	(void)info;
	(*(unsigned long *)arg)++;
	return 0;
}

/* Reads one root attribute as text into *out (malloc'd). */
static int
read_attr(hid_t file, const char *label, const char *name, char **out, struct jp_error *err)
{
	hid_t a = -1, t = -1, s = -1, mt = -1;
	hssize_t n;
	char *buf = NULL, *text = NULL;
	size_t cap = 0, len = 0, i;
	FILE *fp = NULL;
	int r = JP_OK;

	*out = NULL;
	if (H5Aexists_by_name(file, "/", name, H5P_DEFAULT) <= 0) {
		H5Eclear2(H5E_DEFAULT);
		return jp_error_set(err, JP_E_DATA, NAME ": %s: no root attribute '%s'", label, name);
	}
	if ((a = H5Aopen_by_name(file, "/", name, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
	    (t = H5Aget_type(a)) < 0 || (s = H5Aget_space(a)) < 0 ||
	    (n = H5Sget_simple_extent_npoints(s)) < 0) {
		char why[256];
		h5_reason(why, sizeof(why));
		r = jp_error_set(err, JP_E_DATA, NAME ": %s: attribute '%s': %s", label, name, why);
		goto out;
	}
	if ((fp = open_memstream(&text, &len)) == NULL) {
		r = jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
		goto out;
	}
	switch (H5Tget_class(t)) {
	case H5T_STRING:
		if (H5Tis_variable_str(t) > 0) {
			char **v = calloc((size_t)n + 1, sizeof(char *));
			if (v == NULL) {
				r = jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
				goto out;
			}
			mt = H5Tcopy(H5T_C_S1);
			H5Tset_size(mt, H5T_VARIABLE);
			if (H5Aread(a, mt, v) < 0) {
				free(v);
				r = jp_error_set(err, JP_E_DATA, NAME ": %s: attribute '%s' cannot be read", label,
				                 name);
				goto out;
			}
			for (i = 0; i < (size_t)n; i++)
				fprintf(fp, "%s%s", i ? "," : "", v[i] ? v[i] : "");
			H5Dvlen_reclaim(mt, s, H5P_DEFAULT, v);
			free(v);
		} else {
			size_t sz = H5Tget_size(t);
			mt = H5Tcopy(H5T_C_S1);
			H5Tset_size(mt, sz);
			cap = sz * (size_t)n + 1;
			if ((buf = calloc(1, cap)) == NULL) {
				r = jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
				goto out;
			}
			if (H5Aread(a, mt, buf) < 0) {
				r = jp_error_set(err, JP_E_DATA, NAME ": %s: attribute '%s' cannot be read", label,
				                 name);
				goto out;
			}
			for (i = 0; i < (size_t)n; i++)
				fprintf(fp, "%s%.*s", i ? "," : "", (int)strnlen(buf + i * sz, sz), buf + i * sz);
		}
		break;
	case H5T_INTEGER: {
		long long *v = calloc((size_t)n + 1, sizeof(*v));
		if (v == NULL) {
			r = jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
			goto out;
		}
		if (H5Aread(a, H5T_NATIVE_LLONG, v) < 0) {
			free(v);
			r = jp_error_set(err, JP_E_DATA, NAME ": %s: attribute '%s' cannot be read", label, name);
			goto out;
		}
		for (i = 0; i < (size_t)n; i++)
			fprintf(fp, "%s%lld", i ? "," : "", v[i]);
		free(v);
		break;
	}
	case H5T_FLOAT: {
		double *v = calloc((size_t)n + 1, sizeof(*v));
		if (v == NULL) {
			r = jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
			goto out;
		}
		if (H5Aread(a, H5T_NATIVE_DOUBLE, v) < 0) {
			free(v);
			r = jp_error_set(err, JP_E_DATA, NAME ": %s: attribute '%s' cannot be read", label, name);
			goto out;
		}
		for (i = 0; i < (size_t)n; i++)
			fprintf(fp, "%s%.17g", i ? "," : "", v[i]);
		free(v);
		break;
	}
	default:
		r = jp_error_set(err, JP_E_DATA,
		                 NAME ": %s: attribute '%s' is not a string, integer or float", label, name);
		goto out;
	}
	fclose(fp);
	fp = NULL;
	*out = text;
	text = NULL;
out:
	if (fp != NULL)
		fclose(fp);
	free(text);
	free(buf);
	if (mt >= 0) H5Tclose(mt);
	if (s >= 0) H5Sclose(s);
	if (t >= 0) H5Tclose(t);
	if (a >= 0) H5Aclose(a);
	H5Eclear2(H5E_DEFAULT);
	return r;
}

static int
check_hdf5(int fd, const struct stat *sb, const char *label, uint64_t eof_abs,
           const char *const *names, size_t n_attrs, struct jp_attr **attrs, struct jp_error *err)
{
	uint64_t size = (uint64_t)sb->st_size;
	unsigned long objects = 0;
	char why[256], path[64];
	struct stat ps;
	haddr_t eoa;
	hid_t f = -1, fapl = -1;
	void *handle = NULL;
	size_t i;
	int r = JP_OK;

	if (eof_abs == UINT64_MAX)
		return jp_error_set(err, JP_E_DATA,
		                    NAME ": %s: truncated HDF5 file (superblock incomplete, file size %llu)",
		                    label, (unsigned long long)size);
	if (eof_abs > size)
		return jp_error_set(err, JP_E_DATA,
		                    NAME ": %s: truncated HDF5 file (EOF address %llu, file size %llu)", label,
		                    (unsigned long long)eof_abs, (unsigned long long)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (stat(path, &ps) != 0 || ps.st_dev != sb->st_dev || ps.st_ino != sb->st_ino)
		return jp_error_set(err, JP_E_IOERR,
		                    NAME ": %s: cannot check the HDF5 file: %s does not lead to it (is /proc "
		                    "mounted?)",
		                    label, path);
	/* Before any other HDF5 call: no clean-up of HDF5 at exit.  HDF5 1.10's (H5_term_library)
	 * does not check a calloc (H5CX_push_special) and crashed a publish that had succeeded when
	 * that allocation failed (tests/cmd-failpoints.sh).  HDF5 only reads here and every file is
	 * closed, so leaving its memory to the exit loses nothing.  Later calls are no-ops. */
	H5dont_atexit();
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	/* sec2 explicitly (not whatever HDF5_DRIVER says): its handle is a POSIX descriptor. */
	if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 || H5Pset_fapl_sec2(fapl) < 0) {
		h5_reason(why, sizeof(why));
		r = jp_error_set(err, JP_E_SOFTWARE, NAME ": %s: HDF5: %s", label, why);
		goto out;
	}
	if ((f = H5Fopen(path, H5F_ACC_RDONLY, fapl)) < 0) {
		char target[4096];
		ssize_t n = readlink(path, target, sizeof(target) - 1);

		h5_reason(why, sizeof(why));
		/* The kernel marks an open file whose name was removed or replaced "(deleted)". */
		if (n > 10 && memcmp(target + n - 10, " (deleted)", 10) == 0)
			r = jp_error_set(err, JP_E_IOERR, NAME ": %s: changed while being checked (removed or "
			                                  "replaced)",
			                 label);
		else
			r = jp_error_set(err, JP_E_DATA, NAME ": %s: invalid HDF5 file: %s", label, why);
		goto out;
	}
	if (H5Fget_vfd_handle(f, fapl, &handle) < 0 || handle == NULL ||
	    fstat(*(int *)handle, &ps) != 0 || ps.st_dev != sb->st_dev || ps.st_ino != sb->st_ino) {
		r = jp_error_set(err, JP_E_IOERR, NAME ": %s: changed while being checked", label);
		goto out;
	}
	if (H5Fget_eoa(f, &eoa) >= 0 && eoa > size) {
		r = jp_error_set(err, JP_E_DATA,
		                 NAME ": %s: truncated HDF5 file (EOF address %llu, file size %llu)",
		                 label, (unsigned long long)eoa, (unsigned long long)size);
		goto out;
	}
	if (H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_NATIVE, visit_one, &objects, H5O_INFO_ALL) < 0) {
		h5_reason(why, sizeof(why));
		r = jp_error_set(err, JP_E_DATA, NAME ": %s: corrupt HDF5 file: object %lu cannot be read: %s",
		                 label, objects + 1, why);
		goto out;
	}
	if (n_attrs > 0) {
		if ((*attrs = calloc(n_attrs, sizeof(**attrs))) == NULL) {
			r = jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
			goto out;
		}
		for (i = 0; i < n_attrs && r == JP_OK; i++) {
			if (((*attrs)[i].name = strdup(names[i])) == NULL)
				r = jp_error_set(err, JP_E_SOFTWARE, NAME ": out of memory");
			else
				r = read_attr(f, label, names[i], &(*attrs)[i].value, err);
		}
		if (r != JP_OK) {
			jp_attrs_free(*attrs, n_attrs);
			*attrs = NULL;
		}
	}
out:
	if (f >= 0)
		H5Fclose(f);
	if (fapl >= 0)
		H5Pclose(fapl);
	H5Eclear2(H5E_DEFAULT);
	return r;
}

int
jp_validate(int fd, const char *label, enum jp_check check, const char *const *names,
            size_t n_attrs, struct jp_attr **attrs, enum jp_check *found, struct jp_error *err)
{
	unsigned char b[4];
	uint64_t sb_off = 0, eof_abs = 0;
	struct stat sb;
	const char *ext = check == JP_CHECK_AUTO ? jp_hdf_extension(label) : NULL;
	int is5 = 0, is4 = 0, r = JP_OK;

	if (attrs != NULL)
		*attrs = NULL;
	*found = JP_CHECK_NONE;
	if (check == JP_CHECK_NONE && n_attrs == 0)
		return JP_OK;
	if (fstat(fd, &sb) != 0) {
		r = jp_error_set(err, JP_E_IOERR, NAME ": %s: %s", label, strerror(errno));
		goto out;
	}
	is5 = find_superblock(fd, (uint64_t)sb.st_size, &sb_off, &eof_abs);
	if (is5 < 0) {
		r = jp_error_set(err, JP_E_IOERR, NAME ": %s: read: %s", label, strerror(errno));
		goto out;
	}
	is4 = pread(fd, b, 4, 0) == 4 && memcmp(b, hdf4_sig, 4) == 0;
	/* A crashed model run leaves empty or half-written .hdf5 files: under `auto` an HDF name
	 * is a promise of HDF content, and a file without either signature breaks it. */
	if (ext != NULL && !is5 && !is4) {
		r = jp_error_set(err, JP_E_DATA,
		                 NAME ": %s: not an HDF file (%s; a %s name must carry an HDF5 or HDF4 "
		                 "signature)",
		                 label, sb.st_size == 0 ? "empty" : "no HDF5 or HDF4 signature", ext);
		goto out;
	}
	if (check == JP_CHECK_HDF4 || (check == JP_CHECK_AUTO && is4 && !is5)) {
		if (!is4)
			r = jp_error_set(err, JP_E_DATA, NAME ": %s: not an HDF4 file (no 0e 03 13 01 signature)",
			                 label);
		else if (n_attrs > 0)
			r = jp_error_set(err, JP_E_DATA, NAME ": %s: attributes: only HDF5 files have them here",
			                 label);
		else
			*found = JP_CHECK_HDF4;
		goto out;
	}
	if (check == JP_CHECK_HDF5 || is5 || n_attrs > 0) {
		if (!is5) {
			r = jp_error_set(err, JP_E_DATA, NAME ": %s: not an HDF5 file (no superblock signature)",
			                 label);
			goto out;
		}
		*found = JP_CHECK_HDF5;
		r = check_hdf5(fd, &sb, label, eof_abs, names, n_attrs, attrs, err);
	}
out:
	return r;
}
