/*
 * test_validate.c - src/validate.c: HDF5/HDF4 checks on fixtures made with the HDF5 library.
 */
#include "config.h"

#include <hdf5.h>

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
		snprintf(expect, sizeof(expect), "t.h5: truncated HDF5 file (EOF address %lld, file size %lld)",
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
	ck_assert_msg(strstr(err.msg, "c.h5: corrupt HDF5 file") != NULL, "got: %s", err.msg);
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
	ck_assert_str_eq(err.msg, "TEXTOUT: not an HDF5 file (no superblock signature)");
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
		         "%s: not an HDF file (empty; a %s name must carry an HDF5 or HDF4 signature)",
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
	ck_assert_str_eq(err.msg, "a.h5: no root attribute 'nope'");
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
	ck_assert_str_eq(err.msg, "out.h5: changed while being checked (removed or replaced)");
	close(fd);
	ck_assert_int_eq(unlink(name), 0);

	ck_assert_int_eq(link(bad, name), 0);
	ck_assert_int_ge(fd = open(name, O_RDONLY | O_CLOEXEC), 0);
	ck_assert_int_eq(unlink(name), 0);
	ck_assert_int_eq(symlink(good, name), 0);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_validate(fd, "out.h5", JP_CHECK_HDF5, NULL, 0, NULL, &found, &err),
	                 JP_FAILED);
	ck_assert_msg(strstr(err.msg, "out.h5: truncated HDF5 file") != NULL, "%s", err.msg);
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

START_TEST(test_parse)
{
	ck_assert_int_eq(jp_check_parse("auto"), JP_CHECK_AUTO);
	ck_assert_int_eq(jp_check_parse("hdf5"), JP_CHECK_HDF5);
	ck_assert_int_eq(jp_check_parse("hdf4"), JP_CHECK_HDF4);
	ck_assert_int_eq(jp_check_parse("none"), JP_CHECK_NONE);
	ck_assert_int_eq(jp_check_parse("HDF5"), -1);
	ck_assert_str_eq(jp_check_name(JP_CHECK_HDF4), "hdf4");
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
	tcase_add_test(tc, test_parse);
	suite_add_tcase(s, tc);
	return t_run(s);
}
