/*
 * mkhdf5 - write a synthetic, KOSMA-tau-like HDF5 output file.
 *
 * Part of the jobpub KOSMA-tau example (examples/kosma-tau/).  make-job.sh uses it to fabricate
 * pdroutput/pdrstruct_s.hdf5 (KIND "struct": depth grid, gas/dust temperature, density, FUV mean
 * intensity) and pdroutput/pdrchem_c.hdf5 (KIND "chem": species names, abundances, column
 * densities, reaction rate coefficients), so that jobpub can be exercised on a realistic job work
 * directory without running the real PDR code.  The layout only resembles KOSMA-tau output and
 * the numbers have physically plausible shapes, nothing more.
 *
 * usage: mkhdf5 OUT.hdf5 KIND SIZE_MB [KEY=VALUE...]
 *
 *   KIND      struct | chem
 *   SIZE_MB   approximate file size in MiB (0 < SIZE_MB <= 1024, fractions allowed); the largest
 *             2-D dataset is sized to fill it
 *   KEY=VALUE overrides of the root attributes: model_name=STR n_surface=CM-3 mass=MSUN
 *             chi=DRAINE metal=Z/ZSUN
 *
 * Output is deterministic: the pseudo-random noise comes from a fixed seed and object time stamps
 * are switched off, so the same arguments give the same bytes (with the same HDF5 library).
 * Only the H5F/H5G/H5D/H5A/H5S/H5T/H5P APIs are used (no high-level library).
 *
 * build: gcc -std=c11 -Wall -Wextra -o mkhdf5 mkhdf5.c $(pkg-config --cflags --libs hdf5) -lm
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#define N_DEPTH 400          /* depth points (shells) from the clump surface to the centre */
#define SPECIES_LEN 16       /* fixed string length of /species entries */
#define MAX_SIZE_MB 1024.0
#define MIB 1048576.0
#define PI 3.14159265358979323846 /* M_PI is not in strict C11 */

/* Default model: n = 1e4 cm^-3, M = 10 Msun, chi = 100 Draine, solar metallicity. */
struct model {
	const char *model_name;
	double n_surface; /* surface density, cm^-3 */
	double mass;      /* clump mass, Msun */
	double chi;       /* FUV field at the surface, Draine units */
	double metal;     /* metallicity, solar units */
	double alpha;     /* density power-law index */
	double rcore;     /* core radius as fraction of rtot */
	double cosray;    /* cosmic-ray ionisation rate, s^-1 */
	double rtot;      /* clump radius, cm (derived) */
};

/* The species list of pdr_run's default KOSMA-tau chemistry plus H, H2 and electrons. */
static const char *const species_names[] = {
	"H", "H2", "ELECTR", "H+", "H2+", "H3+", "HE+", "HE", "C", "CH", "CO", "C+", "CH+", "CH2+",
	"CO+", "HCO+", "13C", "13CH", "13CO", "13C+", "13CH+", "13CH2+", "13CO+", "H13CO+", "O",
	"OH", "H2O", "O2", "O+", "OH+", "H2O+", "H3O+", "S", "S+", "HS", "HS+", "H2S+", "CS",
	"HCS+", "SO", "SO+", "CH2", "CH3+",
};
#define N_SPECIES (sizeof species_names / sizeof species_names[0])

/* splitmix64: small, fast, and identical on every platform. */
static uint64_t rng_state;

static double rng_uniform(void)
{
	uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	z ^= z >> 31;
	return (double)(z >> 11) * 0x1.0p-53;
}

/* Multiplicative noise of +-amp around 1. */
static double noise(double amp)
{
	return 1.0 + amp * (2.0 * rng_uniform() - 1.0);
}

static int usage(void)
{
	fprintf(stderr, "usage: mkhdf5 OUT.hdf5 struct|chem SIZE_MB [KEY=VALUE...]\n"
	                "  keys: model_name n_surface mass chi metal\n");
	return 2;
}

static int parse_positive(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v > 0.0) || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

/* Scalar double attribute on loc. */
static int attr_double(hid_t loc, const char *name, double value)
{
	int rc = -1;
	hid_t space = H5I_INVALID_HID, attr = H5I_INVALID_HID;

	if ((space = H5Screate(H5S_SCALAR)) < 0)
		goto cleanup;
	if ((attr = H5Acreate2(loc, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT)) < 0)
		goto cleanup;
	if (H5Awrite(attr, H5T_NATIVE_DOUBLE, &value) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (attr >= 0)
		H5Aclose(attr);
	if (space >= 0)
		H5Sclose(space);
	if (rc != 0)
		fprintf(stderr, "mkhdf5: cannot write attribute %s\n", name);
	return rc;
}

/* Scalar int attribute on loc. */
static int attr_int(hid_t loc, const char *name, int value)
{
	int rc = -1;
	hid_t space = H5I_INVALID_HID, attr = H5I_INVALID_HID;

	if ((space = H5Screate(H5S_SCALAR)) < 0)
		goto cleanup;
	if ((attr = H5Acreate2(loc, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT)) < 0)
		goto cleanup;
	if (H5Awrite(attr, H5T_NATIVE_INT, &value) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (attr >= 0)
		H5Aclose(attr);
	if (space >= 0)
		H5Sclose(space);
	if (rc != 0)
		fprintf(stderr, "mkhdf5: cannot write attribute %s\n", name);
	return rc;
}

/* Scalar fixed-length, NUL-terminated string attribute on loc. */
static int attr_string(hid_t loc, const char *name, const char *value)
{
	int rc = -1;
	hid_t space = H5I_INVALID_HID, type = H5I_INVALID_HID, attr = H5I_INVALID_HID;

	if ((space = H5Screate(H5S_SCALAR)) < 0)
		goto cleanup;
	if ((type = H5Tcopy(H5T_C_S1)) < 0)
		goto cleanup;
	if (H5Tset_size(type, strlen(value) + 1) < 0 || H5Tset_strpad(type, H5T_STR_NULLTERM) < 0)
		goto cleanup;
	if ((attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0)
		goto cleanup;
	if (H5Awrite(attr, type, value) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (attr >= 0)
		H5Aclose(attr);
	if (type >= 0)
		H5Tclose(type);
	if (space >= 0)
		H5Sclose(space);
	if (rc != 0)
		fprintf(stderr, "mkhdf5: cannot write attribute %s\n", name);
	return rc;
}

/* Group without modification time stamps (keeps the output deterministic). */
static hid_t make_group(hid_t loc, const char *name)
{
	hid_t gcpl = H5I_INVALID_HID, group = H5I_INVALID_HID;

	if ((gcpl = H5Pcreate(H5P_GROUP_CREATE)) < 0)
		goto cleanup;
	if (H5Pset_obj_track_times(gcpl, 0) < 0)
		goto cleanup;
	group = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
cleanup:
	if (gcpl >= 0)
		H5Pclose(gcpl);
	if (group < 0)
		fprintf(stderr, "mkhdf5: cannot create group %s\n", name);
	return group;
}

/*
 * float64 dataset of rank 1 or 2 with a "units" attribute (and "description" if given).
 * 2-D datasets are chunked by blocks of whole rows of about 1 MiB; 1-D ones are contiguous.
 */
static int write_dataset(hid_t loc, const char *name, int rank, const hsize_t *dims,
                         const double *data, const char *units, const char *description)
{
	int rc = -1;
	hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, dset = H5I_INVALID_HID;

	if ((space = H5Screate_simple(rank, dims, NULL)) < 0)
		goto cleanup;
	if ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0)
		goto cleanup;
	if (H5Pset_obj_track_times(dcpl, 0) < 0)
		goto cleanup;
	if (rank == 2) {
		/* as few chunks of <= ~1 MiB as possible, all of (nearly) the same number of rows,
		 * so that the last chunk does not waste space */
		hsize_t total = dims[0] * dims[1] * sizeof(double);
		hsize_t nchunks = (total + (hsize_t)MIB - 1) / (hsize_t)MIB;
		hsize_t rows = (dims[0] + nchunks - 1) / nchunks;
		hsize_t chunk[2] = { rows, dims[1] };
		if (H5Pset_chunk(dcpl, 2, chunk) < 0)
			goto cleanup;
	}
	if ((dset = H5Dcreate2(loc, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl,
	                       H5P_DEFAULT)) < 0)
		goto cleanup;
	if (H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
		goto cleanup;
	if (attr_string(dset, "units", units) < 0)
		goto cleanup;
	if (description && attr_string(dset, "description", description) < 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (dset >= 0)
		H5Dclose(dset);
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (space >= 0)
		H5Sclose(space);
	if (rc != 0)
		fprintf(stderr, "mkhdf5: cannot write dataset %s\n", name);
	return rc;
}

/* /species: fixed-length string dataset. */
static int write_species(hid_t loc)
{
	int rc = -1;
	hid_t space = H5I_INVALID_HID, type = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
	hid_t dset = H5I_INVALID_HID;
	char names[N_SPECIES][SPECIES_LEN];
	hsize_t dims[1] = { N_SPECIES };

	memset(names, 0, sizeof names);
	for (size_t i = 0; i < N_SPECIES; i++)
		snprintf(names[i], SPECIES_LEN, "%s", species_names[i]);

	if ((space = H5Screate_simple(1, dims, NULL)) < 0)
		goto cleanup;
	if ((type = H5Tcopy(H5T_C_S1)) < 0)
		goto cleanup;
	if (H5Tset_size(type, SPECIES_LEN) < 0 || H5Tset_strpad(type, H5T_STR_NULLTERM) < 0)
		goto cleanup;
	if ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0)
		goto cleanup;
	if (H5Pset_obj_track_times(dcpl, 0) < 0)
		goto cleanup;
	if ((dset = H5Dcreate2(loc, "species", type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
		goto cleanup;
	if (H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) < 0)
		goto cleanup;
	if (attr_string(dset, "description", "species in the order of the abundance rows") < 0)
		goto cleanup;
	rc = 0;
cleanup:
	if (dset >= 0)
		H5Dclose(dset);
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (type >= 0)
		H5Tclose(type);
	if (space >= 0)
		H5Sclose(space);
	if (rc != 0)
		fprintf(stderr, "mkhdf5: cannot write dataset species\n");
	return rc;
}

/* Root attributes shared by both kinds. */
static int write_root_attrs(hid_t file, const struct model *m, const char *kind)
{
	if (attr_string(file, "code", "KOSMA-tau") < 0 ||
	    attr_string(file, "file_kind", kind) < 0 ||
	    attr_string(file, "model_name", m->model_name) < 0 ||
	    attr_double(file, "n_surface", m->n_surface) < 0 ||
	    attr_double(file, "mass", m->mass) < 0 ||
	    attr_double(file, "rad_surface", m->chi) < 0 ||
	    attr_double(file, "chi", m->chi) < 0 ||
	    attr_double(file, "metal", m->metal) < 0 ||
	    attr_double(file, "alpha", m->alpha) < 0 ||
	    attr_double(file, "rcore", m->rcore) < 0 ||
	    attr_double(file, "rtot", m->rtot) < 0 ||
	    attr_double(file, "cosray", m->cosray) < 0 ||
	    attr_int(file, "n_depth", N_DEPTH) < 0)
		return -1;
	return 0;
}

/*
 * Depth grid of a spherical clump with n(r) = n_surface (r/rtot)^-alpha outside the core and
 * constant inside, integrated from the surface inwards: radius, column density N_H, A_V, density,
 * gas and dust temperature.  Points are denser near the surface, where the PDR is.
 */
static void depth_grid(const struct model *m, double *radius, double *col, double *av,
                       double *dens, double *tgas, double *tdust)
{
	for (int i = 0; i < N_DEPTH; i++) {
		double f = (double)i / (N_DEPTH - 1);
		radius[i] = m->rtot * (1.0 - 0.999 * f * f);
		double x = radius[i] / m->rtot;
		dens[i] = m->n_surface * pow(x > m->rcore ? x : m->rcore, -m->alpha);
		if (i == 0)
			col[i] = 0.0;
		else
			col[i] = col[i - 1] + 0.5 * (dens[i] + dens[i - 1]) * (radius[i - 1] - radius[i]);
		av[i] = col[i] * m->metal / 1.87e21;
		tgas[i] = (12.0 + 100.0 * pow(m->chi, 0.3) * exp(-av[i] / 0.7)) * noise(0.02);
		tdust[i] = (10.0 + 18.0 * pow(m->chi, 0.2) * exp(-av[i] / 2.5)) * noise(0.01);
	}
}

static int write_struct(hid_t file, const struct model *m, double target_bytes)
{
	int rc = -1;
	hid_t g_grid = H5I_INVALID_HID, g_struct = H5I_INVALID_HID, g_rad = H5I_INVALID_HID;
	double *buf = NULL, *wave = NULL, *jmean = NULL;
	double *radius, *col, *av, *dens, *tgas, *tdust, *ne;

	/* 7 depth profiles + wavelength grid + N_DEPTH x n_wave mean intensity */
	double fixed = 7.0 * N_DEPTH * sizeof(double);
	double fit = (target_bytes - fixed) / ((N_DEPTH + 1) * sizeof(double));
	size_t n_wave = fit > 16.0 ? (size_t)fit : 16;

	if (!(buf = calloc(7 * N_DEPTH, sizeof *buf)) || !(wave = calloc(n_wave, sizeof *wave)) ||
	    !(jmean = calloc((size_t)N_DEPTH * n_wave, sizeof *jmean))) {
		fprintf(stderr, "mkhdf5: out of memory\n");
		goto cleanup;
	}
	radius = buf;
	col = buf + N_DEPTH;
	av = buf + 2 * N_DEPTH;
	dens = buf + 3 * N_DEPTH;
	tgas = buf + 4 * N_DEPTH;
	tdust = buf + 5 * N_DEPTH;
	ne = buf + 6 * N_DEPTH;

	depth_grid(m, radius, col, av, dens, tgas, tdust);
	for (int i = 0; i < N_DEPTH; i++)
		ne[i] = dens[i] * (1.4e-4 * m->metal + 1.0e-3 * exp(-av[i] / 0.3)) * noise(0.05);

	/* FUV 912-2066 Angstrom; extinction rises toward short wavelengths */
	for (size_t k = 0; k < n_wave; k++)
		wave[k] = 912.0 + (2066.0 - 912.0) * (double)k / (double)(n_wave - 1);
	for (int i = 0; i < N_DEPTH; i++) {
		for (size_t k = 0; k < n_wave; k++) {
			double tau = av[i] * (1.8 + 1.5 * (2066.0 - wave[k]) / 1154.0);
			jmean[(size_t)i * n_wave + k] = 2.7e-3 * m->chi * exp(-tau) * noise(0.03);
		}
	}

	if ((g_grid = make_group(file, "grid")) < 0 || (g_struct = make_group(file, "structure")) < 0 ||
	    (g_rad = make_group(file, "radiation")) < 0)
		goto cleanup;

	hsize_t d1[1] = { N_DEPTH };
	hsize_t dw[1] = { n_wave };
	hsize_t d2[2] = { N_DEPTH, n_wave };
	if (write_dataset(g_grid, "radius", 1, d1, radius, "cm", "distance from the clump centre") ||
	    write_dataset(g_grid, "N_H", 1, d1, col, "cm-2", "column density from the surface") ||
	    write_dataset(g_grid, "AV", 1, d1, av, "mag", "visual extinction from the surface") ||
	    write_dataset(g_struct, "density", 1, d1, dens, "cm-3", "total hydrogen density") ||
	    write_dataset(g_struct, "temperature", 1, d1, tgas, "K", "gas temperature") ||
	    write_dataset(g_struct, "dust_temperature", 1, d1, tdust, "K", "dust temperature") ||
	    write_dataset(g_struct, "electron_density", 1, d1, ne, "cm-3", NULL) ||
	    write_dataset(g_rad, "wavelength", 1, dw, wave, "Angstrom", NULL) ||
	    write_dataset(g_rad, "mean_intensity", 2, d2, jmean, "erg s-1 cm-2 sr-1 A-1",
	                  "FUV mean intensity [depth, wavelength]"))
		goto cleanup;
	rc = 0;
cleanup:
	if (g_rad >= 0)
		H5Gclose(g_rad);
	if (g_struct >= 0)
		H5Gclose(g_struct);
	if (g_grid >= 0)
		H5Gclose(g_grid);
	free(jmean);
	free(wave);
	free(buf);
	return rc;
}

static int write_chem(hid_t file, const struct model *m, double target_bytes)
{
	int rc = -1;
	hid_t g_grid = H5I_INVALID_HID, g_reac = H5I_INVALID_HID;
	double *buf = NULL, *abund = NULL, *coldens = NULL, *arrh = NULL, *rates = NULL;
	double *radius, *col, *av, *dens, *tgas, *tdust;

	/* grid + species + abundances + column densities, then reactions fill the rest */
	double fixed = N_DEPTH * sizeof(double) +
	               N_SPECIES * (SPECIES_LEN + sizeof(double) * (N_DEPTH + 1.0));
	double fit = (target_bytes - fixed) / ((N_DEPTH + 3) * sizeof(double));
	size_t n_reac = fit > 1.0 ? (size_t)fit : 1;

	if (!(buf = calloc(6 * N_DEPTH, sizeof *buf)) ||
	    !(abund = calloc(N_SPECIES * N_DEPTH, sizeof *abund)) ||
	    !(coldens = calloc(N_SPECIES, sizeof *coldens)) ||
	    !(arrh = calloc(3 * n_reac, sizeof *arrh)) ||
	    !(rates = calloc(n_reac * N_DEPTH, sizeof *rates))) {
		fprintf(stderr, "mkhdf5: out of memory\n");
		goto cleanup;
	}
	radius = buf;
	col = buf + N_DEPTH;
	av = buf + 2 * N_DEPTH;
	dens = buf + 3 * N_DEPTH;
	tgas = buf + 4 * N_DEPTH;
	tdust = buf + 5 * N_DEPTH;
	depth_grid(m, radius, col, av, dens, tgas, tdust);

	/* abundances relative to H: ions fall off with A_V, molecules rise, atoms peak in between */
	for (size_t s = 0; s < N_SPECIES; s++) {
		const char *name = species_names[s];
		double base = pow(10.0, -4.0 - 6.0 * rng_uniform()) * m->metal;
		int ion = strchr(name, '+') != NULL;
		for (int i = 0; i < N_DEPTH; i++) {
			double x;
			if (strcmp(name, "H") == 0)
				x = 0.98 * exp(-av[i] / 0.4) + 1e-4;
			else if (strcmp(name, "H2") == 0)
				x = 0.5 * (1.0 - exp(-av[i] / 0.4));
			else if (strcmp(name, "ELECTR") == 0 || strcmp(name, "C+") == 0)
				x = 1.4e-4 * m->metal * exp(-av[i] / 1.5) + 1e-8;
			else if (ion)
				x = base * exp(-av[i] / 1.0) + 1e-14;
			else if (strcmp(name, "HE") == 0)
				x = 0.085;
			else
				x = base * (av[i] / (av[i] + 1.0)) * exp(-av[i] / 20.0) + 1e-14;
			abund[s * N_DEPTH + (size_t)i] = x * noise(0.02);
			if (i > 0)
				coldens[s] += abund[s * N_DEPTH + (size_t)i] * 0.5 * (dens[i] + dens[i - 1]) *
				              (radius[i - 1] - radius[i]);
		}
	}

	/* UMIST-style modified Arrhenius k = alpha (T/300)^beta exp(-gamma/T) */
	for (size_t r = 0; r < n_reac; r++) {
		double a = pow(10.0, -12.0 + 4.0 * rng_uniform());
		double b = -1.0 + 2.0 * rng_uniform();
		double g = rng_uniform() < 0.6 ? 0.0 : 2000.0 * rng_uniform();
		arrh[r] = a;
		arrh[n_reac + r] = b;
		arrh[2 * n_reac + r] = g;
		for (size_t i = 0; i < N_DEPTH; i++)
			rates[r * N_DEPTH + i] = a * pow(tgas[i] / 300.0, b) * exp(-g / tgas[i]);
	}

	if ((g_grid = make_group(file, "grid")) < 0 || (g_reac = make_group(file, "reactions")) < 0)
		goto cleanup;

	hsize_t d1[1] = { N_DEPTH };
	hsize_t ds[1] = { N_SPECIES };
	hsize_t dsd[2] = { N_SPECIES, N_DEPTH };
	hsize_t dr[1] = { n_reac };
	hsize_t drd[2] = { n_reac, N_DEPTH };
	if (write_dataset(g_grid, "AV", 1, d1, av, "mag", "visual extinction from the surface") ||
	    write_species(file) ||
	    write_dataset(file, "abundances", 2, dsd, abund, "1",
	                  "abundance relative to total hydrogen [species, depth]") ||
	    write_dataset(file, "column_densities", 1, ds, coldens, "cm-2",
	                  "column density from the surface to the centre") ||
	    write_dataset(g_reac, "alpha", 1, dr, arrh, "cm3 s-1", NULL) ||
	    write_dataset(g_reac, "beta", 1, dr, arrh + n_reac, "1", NULL) ||
	    write_dataset(g_reac, "gamma", 1, dr, arrh + 2 * n_reac, "K", NULL) ||
	    write_dataset(g_reac, "rate_coefficients", 2, drd, rates, "cm3 s-1",
	                  "k = alpha (T/300)^beta exp(-gamma/T) [reaction, depth]"))
		goto cleanup;
	rc = 0;
cleanup:
	if (g_reac >= 0)
		H5Gclose(g_reac);
	if (g_grid >= 0)
		H5Gclose(g_grid);
	free(rates);
	free(arrh);
	free(coldens);
	free(abund);
	free(buf);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 1, created = 0;
	hid_t fcpl = H5I_INVALID_HID, file = H5I_INVALID_HID;
	double size_mb;
	struct model m = {
		.model_name = "100_40_10_20_00",
		.n_surface = 1.0e4,
		.mass = 10.0,
		.chi = 100.0,
		.metal = 1.0,
		.alpha = 1.5,
		.rcore = 0.2,
		.cosray = 2.0e-16,
	};

	if (argc < 4)
		return usage();
	const char *out = argv[1];
	const char *kind = argv[2];
	int is_struct = strcmp(kind, "struct") == 0;
	if (!is_struct && strcmp(kind, "chem") != 0) {
		fprintf(stderr, "mkhdf5: KIND must be struct or chem, not '%s'\n", kind);
		return usage();
	}
	if (parse_positive(argv[3], &size_mb) < 0 || size_mb > MAX_SIZE_MB) {
		fprintf(stderr, "mkhdf5: SIZE_MB must be a number in (0, %g], not '%s'\n", MAX_SIZE_MB,
		        argv[3]);
		return usage();
	}
	for (int i = 4; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		double *dst = NULL;
		if (!eq) {
			fprintf(stderr, "mkhdf5: expected KEY=VALUE, got '%s'\n", argv[i]);
			return usage();
		}
		size_t klen = (size_t)(eq - argv[i]);
		if (klen == 10 && strncmp(argv[i], "model_name", klen) == 0) {
			m.model_name = eq + 1;
			continue;
		}
		if (klen == 9 && strncmp(argv[i], "n_surface", klen) == 0)
			dst = &m.n_surface;
		else if (klen == 4 && strncmp(argv[i], "mass", klen) == 0)
			dst = &m.mass;
		else if (klen == 3 && strncmp(argv[i], "chi", klen) == 0)
			dst = &m.chi;
		else if (klen == 5 && strncmp(argv[i], "metal", klen) == 0)
			dst = &m.metal;
		if (!dst) {
			fprintf(stderr, "mkhdf5: unknown key in '%s'\n", argv[i]);
			return usage();
		}
		if (parse_positive(eq + 1, dst) < 0) {
			fprintf(stderr, "mkhdf5: value of '%s' must be a positive number\n", argv[i]);
			return usage();
		}
	}

	/* clump radius from mass and density (pdr_run's compute_radius) */
	m.rtot = 1.05916e19 * cbrt(m.mass / ((12.0 * m.n_surface * PI) / (9.0 - 3.0 * m.alpha) -
	                                     (4.0 * m.n_surface * PI * pow(m.rcore, 3.0 - m.alpha) *
	                                      m.alpha) / (9.0 - 3.0 * m.alpha)));
	rng_state = is_struct ? UINT64_C(0x4B4F534D41746175) : UINT64_C(0x4348454D4B4F534D);

	if ((fcpl = H5Pcreate(H5P_FILE_CREATE)) < 0 || H5Pset_obj_track_times(fcpl, 0) < 0) {
		fprintf(stderr, "mkhdf5: cannot set up file creation properties\n");
		goto cleanup;
	}
	if ((file = H5Fcreate(out, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT)) < 0) {
		fprintf(stderr, "mkhdf5: cannot create %s\n", out);
		goto cleanup;
	}
	created = 1;
	if (write_root_attrs(file, &m, is_struct ? "structure" : "chemistry") < 0)
		goto cleanup;
	if ((is_struct ? write_struct : write_chem)(file, &m, size_mb * MIB) < 0)
		goto cleanup;
	if (H5Fclose(file) < 0) {
		file = H5I_INVALID_HID;
		fprintf(stderr, "mkhdf5: cannot close %s\n", out);
		goto cleanup;
	}
	file = H5I_INVALID_HID;
	rc = 0;
cleanup:
	if (file >= 0)
		H5Fclose(file);
	if (fcpl >= 0)
		H5Pclose(fcpl);
	if (rc != 0 && created)
		remove(out); /* no half-written file */
	return rc;
}
