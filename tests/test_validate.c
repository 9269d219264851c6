/*
 * test_validate.c - src/core/validate.c: HDF5/HDF4 checks on fixtures made with the HDF5 library.
 */
#include "config.h"

#include <hdf5.h>

#include "failalloc.h"
#include "testlib.h"
#include "validate.h"

static char *dir;

static void
setup(void)
{
	dir = t_tempdir();
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void
teardown(void)
{
	t_rmtree(dir);
	free(dir);
}

/*
 * Writes dir/rel: an HDF5 file with root attributes (double n_surface, int n_depth, string
 * model_name), a group and a 64 KiB dataset.  userblock: 0 or a power of two >= 512.  latest:
 * newest format (checksummed object headers).  Returns the address of the dataset's object
 * header.
 */
static haddr_t
make_h5(const char *rel, hsize_t userblock, int latest)
{
	char *path = t_path(dir, rel);
	hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
	hid_t f, g, sp, ds, a, st;
	hsize_t dims[1] = {8192};
	double *v = calloc(8192, sizeof(double)), dv = 3.5;
	long long iv = 42;
	H5O_info_t info;
	int i;

	for (i = 0; i < 8192; i++)
		v[i] = i * 0.5;
	if (userblock)
		H5Pset_userblock(fcpl, userblock);
	if (latest)
		H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
	f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
	ck_assert_int_ge(f, 0);
	g = H5Gcreate2(f, "/structure", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	sp = H5Screate_simple(1, dims, NULL);
	ds = H5Dcreate2(g, "temperature", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
	H5Oget_info2(ds, &info, H5O_INFO_BASIC);
	H5Sclose(sp);
	sp = H5Screate(H5S_SCALAR);
	a = H5Acreate2(f, "n_surface", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
	H5Awrite(a, H5T_NATIVE_DOUBLE, &dv);
	H5Aclose(a);
	a = H5Acreate2(f, "n_depth", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
	H5Awrite(a, H5T_NATIVE_LLONG, &iv);
	H5Aclose(a);
	st = H5Tcopy(H5T_C_S1);
	H5Tset_size(st, 16);
	a = H5Acreate2(f, "model_name", st, sp, H5P_DEFAULT, H5P_DEFAULT);
	H5Awrite(a, st, "kosma_tau_demo\0\0");
	H5Aclose(a);
	H5Tclose(st);
	H5Sclose(sp);
	H5Dclose(ds);
	H5Gclose(g);
	H5Fclose(f);
	H5Pclose(fcpl);
	H5Pclose(fapl);
	free(v);
	free(path);
	return info.addr;
}

/* jp_validate of dir/rel (opened here, as the plan does), with attributes. */
static int
run_attrs(const char *rel, enum jp_check c, const char *const *names, size_t n,
          struct jp_attr **attrs, enum jp_check *found, struct jp_error *err)
{
	char *path = t_path(dir, rel);
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	jp_error_clear(err);
	r = jp_validate(fd, rel, c, names, n, attrs, found, err);
	close(fd);
	free(path);
	return r;
}

static int
run(const char *rel, enum jp_check c, enum jp_check *found, struct jp_error *err)
{
	return run_attrs(rel, c, NULL, 0, NULL, found, err);
}

START_TEST(test_valid)
{
	struct jp_error err;
	enum jp_check found;

	make_h5("ok.h5", 0, 0);
	ck_assert_int_eq(run("ok.h5", JP_CHECK_AUTO, &found, &err), JP_OK);
	ck_assert_int_eq(found, JP_CHECK_HDF5);
	ck_assert_int_eq(run("ok.h5", JP_CHECK_HDF5, &found, &err), JP_OK);
	make_h5("latest.h5", 0, 1);
	ck_assert_int_eq(run("latest.h5", JP_CHECK_HDF5, &found, &err), JP_OK);
}
END_TEST

START_TEST(test_userblock)
{
	struct jp_error err;
	enum jp_check found;

	make_h5("ub.h5", 2048, 0);
	ck_assert_int_eq(run("ub.h5", JP_CHECK_AUTO, &found, &err), JP_OK);
	ck_assert_int_eq(found, JP_CHECK_HDF5);
}
END_TEST

START_TEST(test_truncated)
{
	/* Truncation at several offsets: inside the superblock's reach, the middle, the last byte. */
	char *path = t_path(dir, "t.h5");
	struct jp_error err;
	enum jp_check found;
	struct stat sb;
	off_t cuts[3];
	int i;

	make_h5("t.h5", 0, 0);
	stat(path, &sb);
	cuts[0] = 4096;
	cuts[1] = sb.st_size / 2;
	cuts[2] = sb.st_size - 1;
	for (i = 0; i < 3; i++) {
		char expect[128];

		make_h5("t.h5", 0, 0);
		ck_assert_int_eq(truncate(path, cuts[i]), 0);
		ck_assert_int_eq(run("t.h5", JP_CHECK_AUTO, &found, &err), JP_FAILED);
		ck_assert_int_eq(err.code, JP_E_DATA);
		snprintf(expect, sizeof(expect),
		         "validate: t.h5: truncated HDF5 file (EOF address %lld, file size %lld)",
		         (long long)sb.st_size, (long long)cuts[i]);
		ck_assert_str_eq(err.msg, expect);
	}
	free(path);
}
END_TEST

START_TEST(test_corrupt_header)
{
	char *path = t_path(dir, "c.h5");
	haddr_t addr = make_h5("c.h5", 0, 1);
	struct jp_error err;
	enum jp_check found;
	unsigned char junk[8] = {0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef};
	int fd = open(path, O_WRONLY);

	/* Overwrite bytes inside the dataset's (checksummed) object header. */
	ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), (off_t)addr + 12), (ssize_t)sizeof(junk));
	close(fd);
	ck_assert_int_eq(run("c.h5", JP_CHECK_AUTO, &found, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_msg(strstr(err.msg, "validate: c.h5: corrupt HDF5 file") != NULL, "got: %s", err.msg);
	free(path);
}
END_TEST

START_TEST(test_hdf4_and_other)
{
	static const unsigned char h4[16] = {0x0e, 0x03, 0x13, 0x01, 0, 0x10, 0, 0};
	struct jp_error err;
	enum jp_check found;

	t_write(dir, "f.hdf", h4, sizeof(h4));
	t_write_str(dir, "TEXTOUT", "plain text, not HDF at all\n");
	ck_assert_int_eq(run("f.hdf", JP_CHECK_AUTO, &found, &err), JP_OK);
	ck_assert_int_eq(found, JP_CHECK_HDF4);
	ck_assert_int_eq(run("f.hdf", JP_CHECK_HDF4, &found, &err), JP_OK);
	ck_assert_int_eq(run("TEXTOUT", JP_CHECK_AUTO, &found, &err), JP_OK);
	ck_assert_int_eq(found, JP_CHECK_NONE);
	ck_assert_int_eq(run("TEXTOUT", JP_CHECK_HDF5, &found, &err), JP_FAILED);
	ck_assert_str_eq(err.msg, "validate: TEXTOUT: not an HDF5 file (no superblock signature)");
	ck_assert_int_eq(run("TEXTOUT", JP_CHECK_HDF4, &found, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_int_eq(run("TEXTOUT", JP_CHECK_NONE, &found, &err), JP_OK);
}
END_TEST

/* Under auto, an HDF name without an HDF signature is invalid: the empty or text file a crashed
 * run leaves must not pass as a result.  Other names stay published as they are. */
START_TEST(test_auto_by_extension)
{
	static const char *const hdf[] = {"a.h5", "b.hdf5", "c.he5", "d.hdf", "e.h4", "f.hdf4",
	                                  "G.HDF5", "sub.dir/h.H5"};
	static const char *const other[] = {"a.txt", "h5", "b.hdf5.txt", "c.h5x", "hdf5.d/x"};
	static const unsigned char h4[8] = {0x0e, 0x03, 0x13, 0x01, 0, 0x10, 0, 0};
	struct jp_error err;
	enum jp_check found;
	char msg[256];
	size_t i;
	char *d1 = t_path(dir, "sub.dir"), *d2 = t_path(dir, "hdf5.d");

	ck_assert_int_eq(mkdir(d1, 0755), 0);
	ck_assert_int_eq(mkdir(d2, 0755), 0);
	free(d1);
	free(d2);
	for (i = 0; i < sizeof(hdf) / sizeof(hdf[0]); i++) {
		const char *ext = strrchr(hdf[i], '.');

		ck_assert_ptr_eq(jp_hdf_extension(hdf[i]), ext);
		t_write(dir, hdf[i], "", 0);
		ck_assert_int_eq(run(hdf[i], JP_CHECK_AUTO, &found, &err), JP_FAILED);
		ck_assert_int_eq(err.code, JP_E_DATA);
		snprintf(msg, sizeof(msg),
		         "validate: %s: not an HDF file (empty; a %s name must carry an HDF5 or HDF4 signature)",
		         hdf[i], ext);
		ck_assert_str_eq(err.msg, msg);
		t_write_str(dir, hdf[i], "plain text, not HDF\n");
		ck_assert_int_eq(run(hdf[i], JP_CHECK_AUTO, &found, &err), JP_FAILED);
		ck_assert_int_eq(err.code, JP_E_DATA);
		ck_assert_msg(strstr(err.msg, "no HDF5 or HDF4 signature") != NULL, "got: %s", err.msg);
		/* check: none still publishes anything; an HDF4 signature satisfies any HDF name. */
		ck_assert_int_eq(run(hdf[i], JP_CHECK_NONE, &found, &err), JP_OK);
		t_write(dir, hdf[i], h4, sizeof(h4));
		ck_assert_int_eq(run(hdf[i], JP_CHECK_AUTO, &found, &err), JP_OK);
		ck_assert_int_eq(found, JP_CHECK_HDF4);
	}
	make_h5("ok.hdf", 0, 0);
	ck_assert_int_eq(run("ok.hdf", JP_CHECK_AUTO, &found, &err), JP_OK);
	ck_assert_int_eq(found, JP_CHECK_HDF5);
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		ck_assert_ptr_null(jp_hdf_extension(other[i]));
		t_write(dir, other[i], "", 0);
		ck_assert_int_eq(run(other[i], JP_CHECK_AUTO, &found, &err), JP_OK);
		ck_assert_int_eq(found, JP_CHECK_NONE);
	}
}
END_TEST

START_TEST(test_attributes)
{
	static const char *const names[] = {"n_surface", "n_depth", "model_name"};
	static const char *const missing[] = {"nope"};
	struct jp_attr *attrs = NULL;
	struct jp_error err;
	enum jp_check found;

	make_h5("a.h5", 0, 0);
	ck_assert_int_eq(run_attrs("a.h5", JP_CHECK_AUTO, names, 3, &attrs, &found, &err), JP_OK);
	ck_assert_str_eq(attrs[0].name, "n_surface");
	ck_assert_str_eq(attrs[0].value, "3.5");
	ck_assert_str_eq(attrs[1].value, "42");
	ck_assert_str_eq(attrs[2].value, "kosma_tau_demo");
	jp_attrs_free(attrs, 3);
	attrs = NULL;
	ck_assert_int_eq(run_attrs("a.h5", JP_CHECK_AUTO, missing, 1, &attrs, &found, &err),
	                 JP_FAILED);
	ck_assert_str_eq(err.msg, "validate: a.h5: no root attribute 'nope'");
	ck_assert_ptr_null(attrs);
}
END_TEST

/* The file checked is the one open on the descriptor, never the name: a valid HDF5 file whose
 * path now leads (through a directory swapped for a symlink) to a truncated one passes; one
 * whose own name was replaced by a link to a truncated file is reported as changed, not judged
 * by the other file; a truncated one whose name now leads to a valid one fails. */
START_TEST(test_checks_the_descriptor_not_the_name)
{
	char *good = t_path(dir, "good.h5"), *bad = t_path(dir, "bad.h5");
	char *sub = t_path(dir, "sub"), *old = t_path(dir, "sub.old"), *evil = t_path(dir, "evil");
	char *in_sub = t_path(dir, "sub/out.h5"), *name = t_path(dir, "out.h5");
	char *in_evil = t_path(dir, "evil/out.h5");
	struct jp_error err;
	enum jp_check found;
	int fd;

	make_h5("good.h5", 0, 0);
	make_h5("bad.h5", 0, 0);
	ck_assert_int_eq(truncate(bad, 1000), 0);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	ck_assert_int_eq(mkdir(evil, 0755), 0);
	ck_assert_int_eq(link(good, in_sub), 0);
	ck_assert_int_eq(link(bad, in_evil), 0);
	ck_assert_int_ge(fd = open(in_sub, O_RDONLY | O_CLOEXEC), 0);
	ck_assert_int_eq(rename(sub, old), 0);
	ck_assert_int_eq(symlink(evil, sub), 0);
	jp_error_clear(&err);
	ck_assert_msg(jp_validate(fd, "sub/out.h5", JP_CHECK_HDF5, NULL, 0, NULL, &found, &err) ==
	                  JP_OK,
	              "%s", err.msg);
	close(fd);

	ck_assert_int_eq(link(good, name), 0);
	ck_assert_int_ge(fd = open(name, O_RDONLY | O_CLOEXEC), 0);
	ck_assert_int_eq(unlink(name), 0);
	ck_assert_int_eq(symlink(bad, name), 0);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_validate(fd, "out.h5", JP_CHECK_HDF5, NULL, 0, NULL, &found, &err),
	                 JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_str_eq(err.msg, "validate: out.h5: changed while being checked (removed or replaced)");
	close(fd);
	ck_assert_int_eq(unlink(name), 0);

	ck_assert_int_eq(link(bad, name), 0);
	ck_assert_int_ge(fd = open(name, O_RDONLY | O_CLOEXEC), 0);
	ck_assert_int_eq(unlink(name), 0);
	ck_assert_int_eq(symlink(good, name), 0);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_validate(fd, "out.h5", JP_CHECK_HDF5, NULL, 0, NULL, &found, &err),
	                 JP_FAILED);
	ck_assert_msg(strstr(err.msg, "validate: out.h5: truncated HDF5 file") != NULL, "%s", err.msg);
	close(fd);
	free(good);
	free(bad);
	free(sub);
	free(old);
	free(evil);
	free(in_sub);
	free(in_evil);
	free(name);
}
END_TEST

/* Creates dir/rel with root attributes of every kind read_attr meets: variable-length strings
 * (scalar and an array holding a NULL), arrays of fixed strings, integers and floats, and the
 * classes it refuses (compound, enum, array, opaque). */
static void
make_attr_kinds(const char *rel)
{
	char *path = t_path(dir, rel);
	hsize_t three[1] = {3}, two[1] = {2};
	hid_t f, sp, s3, s2, vs, fs, a, ct, et, at, ot;
	const char *one = "kosma-tau 3.1";
	const char *many[3] = {"alpha", NULL, "gamma"};
	long long iv[3] = {-7, 0, 9000000000LL};
	double dv[2] = {0.25, -1e300};
	struct { int a; double b; } cv = {1, 2.0};
	int ev = 1, av[2] = {1, 2};
	unsigned char ov[4] = {1, 2, 3, 4};

	f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	ck_assert_int_ge(f, 0);
	sp = H5Screate(H5S_SCALAR);
	s3 = H5Screate_simple(1, three, NULL);
	s2 = H5Screate_simple(1, two, NULL);
	vs = H5Tcopy(H5T_C_S1);
	H5Tset_size(vs, H5T_VARIABLE);
	a = H5Acreate2(f, "vlen", vs, sp, H5P_DEFAULT, H5P_DEFAULT);
	ck_assert_int_ge(H5Awrite(a, vs, &one), 0);
	H5Aclose(a);
	a = H5Acreate2(f, "vlen_list", vs, s3, H5P_DEFAULT, H5P_DEFAULT);
	ck_assert_int_ge(H5Awrite(a, vs, many), 0);
	H5Aclose(a);
	fs = H5Tcopy(H5T_C_S1);
	H5Tset_size(fs, 4);
	a = H5Acreate2(f, "fixed_list", fs, s2, H5P_DEFAULT, H5P_DEFAULT);
	ck_assert_int_ge(H5Awrite(a, fs, "ab\0\0wxyz"), 0);
	H5Aclose(a);
	a = H5Acreate2(f, "ints", H5T_STD_I64LE, s3, H5P_DEFAULT, H5P_DEFAULT);
	ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_LLONG, iv), 0);
	H5Aclose(a);
	a = H5Acreate2(f, "floats", H5T_IEEE_F64LE, s2, H5P_DEFAULT, H5P_DEFAULT);
	ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_DOUBLE, dv), 0);
	H5Aclose(a);
	ct = H5Tcreate(H5T_COMPOUND, sizeof(cv));
	H5Tinsert(ct, "a", HOFFSET(__typeof__(cv), a), H5T_NATIVE_INT);
	H5Tinsert(ct, "b", HOFFSET(__typeof__(cv), b), H5T_NATIVE_DOUBLE);
	a = H5Acreate2(f, "compound", ct, sp, H5P_DEFAULT, H5P_DEFAULT);
	ck_assert_int_ge(H5Awrite(a, ct, &cv), 0);
	H5Aclose(a);
	et = H5Tenum_create(H5T_NATIVE_INT);
	H5Tenum_insert(et, "converged", &ev);
	a = H5Acreate2(f, "enum", et, sp, H5P_DEFAULT, H5P_DEFAULT);
	ck_assert_int_ge(H5Awrite(a, et, &ev), 0);
	H5Aclose(a);
	at = H5Tarray_create2(H5T_NATIVE_INT, 1, two);
	a = H5Acreate2(f, "array", at, sp, H5P_DEFAULT, H5P_DEFAULT);
	ck_assert_int_ge(H5Awrite(a, at, av), 0);
	H5Aclose(a);
	ot = H5Tcreate(H5T_OPAQUE, 4);
	a = H5Acreate2(f, "opaque", ot, sp, H5P_DEFAULT, H5P_DEFAULT);
	ck_assert_int_ge(H5Awrite(a, ot, ov), 0);
	H5Aclose(a);
	H5Tclose(ot);
	H5Tclose(at);
	H5Tclose(et);
	H5Tclose(ct);
	H5Tclose(fs);
	H5Tclose(vs);
	H5Sclose(s2);
	H5Sclose(s3);
	H5Sclose(sp);
	ck_assert_int_ge(H5Fclose(f), 0);
	free(path);
}

START_TEST(test_attribute_kinds)
{
	static const char *const names[] = {"vlen", "vlen_list", "fixed_list", "ints", "floats"};
	static const char *const expect[] = {"kosma-tau 3.1", "alpha,,gamma", "ab,wxyz",
	                                     "-7,0,9000000000", "0.25,-1.0000000000000001e+300"};
	static const char *const refused[] = {"compound", "enum", "array", "opaque"};
	struct jp_attr *attrs = NULL;
	struct jp_error err;
	enum jp_check found;
	char msg[256];
	size_t i;

	make_attr_kinds("k.h5");
	ck_assert_msg(run_attrs("k.h5", JP_CHECK_AUTO, names, 5, &attrs, &found, &err) == JP_OK,
	              "%s", err.msg);
	for (i = 0; i < 5; i++) {
		ck_assert_str_eq(attrs[i].name, names[i]);
		ck_assert_str_eq(attrs[i].value, expect[i]);
	}
	jp_attrs_free(attrs, 5);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const char *one[2] = {"vlen", refused[i]};

		attrs = (struct jp_attr *)1;
		ck_assert_int_eq(run_attrs("k.h5", JP_CHECK_AUTO, one, 2, &attrs, &found, &err),
		                 JP_FAILED);
		ck_assert_int_eq(err.code, JP_E_DATA);
		snprintf(msg, sizeof(msg), "validate: k.h5: attribute '%s' is not a string, integer or float",
		         refused[i]);
		ck_assert_str_eq(err.msg, msg);
		ck_assert_ptr_null(attrs); /* the first one, read, is freed with the rest */
	}
}
END_TEST

/* Offset of the first occurrence of the 4 bytes sig in dir/rel, or -1. */
static off_t
find_bytes(const char *rel, const char *sig)
{
	size_t len = 0;
	char *data = t_read(dir, rel, &len), *p;
	off_t off = -1;

	for (p = data; p + 4 <= data + len; p++)
		if (memcmp(p, sig, 4) == 0) {
			off = p - data;
			break;
		}
	free(data);
	return off;
}

/* A variable-length string lives in the file's global heap, read only when the value is: a
 * damaged heap leaves the attribute found but unreadable. */
START_TEST(test_attribute_unreadable)
{
	static const char *const names[] = {"ints", "vlen"};
	char *path = t_path(dir, "u.h5");
	struct jp_attr *attrs = NULL;
	struct jp_error err;
	enum jp_check found;
	off_t heap;
	int fd;

	make_attr_kinds("u.h5");
	ck_assert_int_gt(heap = find_bytes("u.h5", "GCOL"), 0);
	ck_assert_int_ge(fd = open(path, O_WRONLY), 0);
	ck_assert_int_eq(pwrite(fd, "XXXX", 4, heap), 4);
	close(fd);
	ck_assert_int_eq(run_attrs("u.h5", JP_CHECK_AUTO, names, 2, &attrs, &found, &err),
	                 JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_str_eq(err.msg, "validate: u.h5: attribute 'vlen' cannot be read");
	ck_assert_ptr_null(attrs);
	free(path);
}
END_TEST

/* Superblocks the hand-written reader gives up on go to HDF5, which refuses them; one cut short
 * is reported as truncated before HDF5 sees it. */
START_TEST(test_odd_superblocks)
{
	static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
	unsigned char b[256];
	struct jp_error err;
	enum jp_check found;

	memset(b, 0, sizeof(b));
	memcpy(b, sig, 8);
	b[8] = 9; /* a superblock version from the future */
	t_write(dir, "v9.h5", b, sizeof(b));
	ck_assert_int_eq(run("v9.h5", JP_CHECK_AUTO, &found, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_msg(strncmp(err.msg, "validate: v9.h5: invalid HDF5 file: ", 36) == 0, "%s", err.msg);
	ck_assert_int_eq(found, JP_CHECK_HDF5);

	b[8] = 0;
	b[13] = 1; /* offsets of one byte: not a size the format allows */
	t_write(dir, "soa.h5", b, sizeof(b));
	ck_assert_int_eq(run("soa.h5", JP_CHECK_HDF5, &found, &err), JP_FAILED);
	ck_assert_msg(strncmp(err.msg, "validate: soa.h5: invalid HDF5 file: ", 37) == 0, "%s", err.msg);

	/* version 2 with 8-byte offsets: the EOF address ends at byte 36; the file at 30 */
	b[8] = 2;
	b[9] = 8;
	t_write(dir, "short.h5", b, 30);
	ck_assert_int_eq(run("short.h5", JP_CHECK_AUTO, &found, &err), JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_str_eq(err.msg,
	                 "validate: short.h5: truncated HDF5 file (superblock incomplete, file size 30)");
}
END_TEST

/* Superblock version 1 (written when the chunk B-tree's K is not the default) keeps the
 * addresses 4 bytes further on: its EOF address must still be read right. */
START_TEST(test_superblock_v1)
{
	char *path = t_path(dir, "v1.h5");
	hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), f;
	unsigned char ver;
	struct jp_error err;
	enum jp_check found;
	struct stat sb;
	int fd;

	H5Pset_istore_k(fcpl, 64);
	ck_assert_int_ge(f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT), 0);
	H5Fclose(f);
	H5Pclose(fcpl);
	ck_assert_int_ge(fd = open(path, O_RDONLY), 0);
	ck_assert_int_eq(pread(fd, &ver, 1, 8), 1);
	close(fd);
	ck_assert_int_eq(ver, 1);
	ck_assert_msg(run("v1.h5", JP_CHECK_HDF5, &found, &err) == JP_OK, "%s", err.msg);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(truncate(path, sb.st_size - 1), 0);
	ck_assert_int_eq(run("v1.h5", JP_CHECK_HDF5, &found, &err), JP_FAILED);
	ck_assert_msg(strstr(err.msg, "validate: v1.h5: truncated HDF5 file (EOF address") != NULL, "%s",
	              err.msg);
	free(path);
}
END_TEST

/* A descriptor that cannot be read (or is not open) is an I/O error, not a verdict on the
 * file. */
START_TEST(test_descriptor_errors)
{
	char *path;
	struct jp_error err;
	enum jp_check found;
	int fd;

	make_h5("w.h5", 0, 0);
	path = t_path(dir, "w.h5");
	ck_assert_int_ge(fd = open(path, O_WRONLY), 0);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_validate(fd, "w.h5", JP_CHECK_AUTO, NULL, 0, NULL, &found, &err),
	                 JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_str_eq(err.msg, "validate: w.h5: read: Bad file descriptor");
	close(fd);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_validate(fd, "w.h5", JP_CHECK_HDF5, NULL, 0, NULL, &found, &err),
	                 JP_FAILED);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_str_eq(err.msg, "validate: w.h5: Bad file descriptor");
	free(path);
}
END_TEST

/* Attributes are asked of HDF5 files only: of an HDF4 file or a file without a signature they
 * are an error, whatever the check says. */
START_TEST(test_attributes_need_hdf5)
{
	static const unsigned char h4[8] = {0x0e, 0x03, 0x13, 0x01, 0, 0x10, 0, 0};
	static const char *const names[] = {"n_surface"};
	struct jp_attr *attrs = NULL;
	struct jp_error err;
	enum jp_check found;

	t_write(dir, "f.hdf", h4, sizeof(h4));
	t_write_str(dir, "TEXTOUT", "plain text\n");
	ck_assert_int_eq(run_attrs("f.hdf", JP_CHECK_AUTO, names, 1, &attrs, &found, &err),
	                 JP_FAILED);
	ck_assert_str_eq(err.msg, "validate: f.hdf: attributes: only HDF5 files have them here");
	ck_assert_int_eq(found, JP_CHECK_NONE);
	ck_assert_int_eq(run_attrs("TEXTOUT", JP_CHECK_NONE, names, 1, &attrs, &found, &err),
	                 JP_FAILED);
	ck_assert_str_eq(err.msg, "validate: TEXTOUT: not an HDF5 file (no superblock signature)");
	ck_assert_ptr_null(attrs);
}
END_TEST

/* Every allocation of jobpub's own (tests/failalloc.h) while reading attributes of every kind
 * failed in turn: each is "out of memory" (70), never a verdict on the file (65), and nothing
 * is returned; then they are read. */
START_TEST(test_allocation_failures)
{
	static const char *const names[] = {"vlen", "vlen_list", "fixed_list", "ints", "floats"};
	struct jp_attr *attrs = NULL;
	struct jp_error err;
	enum jp_check found;
	unsigned long n;
	int r;
	char *path = t_path(dir, "k.h5");
	int fd;

	make_attr_kinds("k.h5");
	ck_assert_int_ge(fd = open(path, O_RDONLY | O_CLOEXEC), 0);
	for (n = 1;; n++) {
		attrs = (struct jp_attr *)1;
		jp_error_clear(&err);
		t_fail_alloc(n);
		r = jp_validate(fd, "k.h5", JP_CHECK_AUTO, names, 5, &attrs, &found, &err);
		t_fail_alloc(0);
		if (!t_fail_alloc_fired())
			break;
		ck_assert_msg(r == JP_FAILED, "allocation %lu failed, attributes read", n);
		ck_assert_msg(err.code == JP_E_SOFTWARE && strstr(err.msg, "out of memory") != NULL,
		              "allocation %lu: %d %s", n, err.code, err.msg);
		ck_assert_ptr_null(attrs);
	}
	ck_assert_msg(r == JP_OK, "%s", err.msg);
	ck_assert_uint_ge(n, 7);
	ck_assert_str_eq(attrs[4].value, "0.25,-1.0000000000000001e+300");
	jp_attrs_free(attrs, 5);
	close(fd);
	free(path);
}
END_TEST

START_TEST(test_parse)
{
	ck_assert_int_eq(jp_check_parse("auto"), JP_CHECK_AUTO);
	ck_assert_int_eq(jp_check_parse("hdf5"), JP_CHECK_HDF5);
	ck_assert_int_eq(jp_check_parse("hdf4"), JP_CHECK_HDF4);
	ck_assert_int_eq(jp_check_parse("none"), JP_CHECK_NONE);
	ck_assert_int_eq(jp_check_parse("HDF5"), -1);
	ck_assert_str_eq(jp_check_name(JP_CHECK_HDF4), "hdf4");
	ck_assert_str_eq(jp_check_name(JP_CHECK_AUTO), "auto");
	ck_assert_str_eq(jp_check_name((enum jp_check)(JP_CHECK_HDF4 + 1)), "?");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("validate");
	TCase *tc = tcase_create("hdf");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_valid);
	tcase_add_test(tc, test_userblock);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_corrupt_header);
	tcase_add_test(tc, test_hdf4_and_other);
	tcase_add_test(tc, test_auto_by_extension);
	tcase_add_test(tc, test_attributes);
	tcase_add_test(tc, test_checks_the_descriptor_not_the_name);
	tcase_add_test(tc, test_attribute_kinds);
	tcase_add_test(tc, test_attribute_unreadable);
	tcase_add_test(tc, test_odd_superblocks);
	tcase_add_test(tc, test_superblock_v1);
	tcase_add_test(tc, test_descriptor_errors);
	tcase_add_test(tc, test_attributes_need_hdf5);
	tcase_add_test(tc, test_allocation_failures);
	tcase_add_test(tc, test_parse);
	suite_add_tcase(s, tc);
	return t_run(s);
}
