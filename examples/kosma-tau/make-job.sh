#!/usr/bin/env bash
# make-job.sh OUTDIR [JOBNAME]
#
# Fabricates a finished KOSMA-tau job for the jobpub example, as pdr_run leaves it just before it
# copies the outputs into the model grid:
#
#   OUTDIR/job/          the job work directory (pdroutput/, onionoutput/, Out/, PDRNEW.INP,
#                        pdr_config.json, plus a few files jobpub must not pick up)
#   OUTDIR/catalog.db    SQLite catalogue (schema.sql) with the job's row: id 1, status 'running'
#
# JOBNAME follows pdr_run: METAL_DENS_MASS_CHI_00, each a string of pdr_run's parameter grid
# (METAL is Z/Zsun*100, DENS/MASS/CHI are 10*log10 of n_surface [cm^-3], M [Msun], chi [Draine]).
# The default 100_40_10_20_00 is a solar-metallicity clump with n = 1e4 cm^-3, M = 10 Msun,
# chi = 100.  Other names are accepted; parameters then fall back to that default model.
#
# Everything is deterministic (fixed seeds and time stamps) and takes well under 3 s.  OUTDIR/job
# and OUTDIR/catalog.db are removed and recreated on every run; nothing else in OUTDIR is touched.
#
# Needs: mkhdf5 (built by `make`; override with MKHDF5=/path/to/mkhdf5), sqlite3, awk, gzip.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prog=${0##*/}

die() {
	printf '%s: %s\n' "$prog" "$*" >&2
	exit 1
}

if [[ $# -lt 1 || $# -gt 2 || -z ${1:-} || $1 == -* ]]; then
	printf 'usage: %s OUTDIR [JOBNAME]\n' "$prog" >&2
	exit 2
fi
outdir=$1
jobname=${2:-100_40_10_20_00}
[[ $jobname =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] ||
	die "JOBNAME '$jobname' must be letters, digits and . _ + - (it becomes part of file names)"

mkhdf5=${MKHDF5:-$here/mkhdf5}
[[ -x $mkhdf5 ]] ||
	die "$mkhdf5 not found or not executable: run 'make' in the top build directory first (or set MKHDF5)"
command -v sqlite3 >/dev/null || die "sqlite3 not found: apt-get install sqlite3"
[[ -r $here/schema.sql ]] || die "$here/schema.sql is missing"

# Parameters from the job name (pdr_run: from_string_to_par = 10**(0.1*x), zmetal = x*0.01).
if [[ $jobname =~ ^(-?[0-9]+)_(-?[0-9]+)_(-?[0-9]+)_(-?[0-9]+)_(-?[0-9]+)$ ]]; then
	p_metal=${BASH_REMATCH[1]} p_dens=${BASH_REMATCH[2]}
	p_mass=${BASH_REMATCH[3]} p_chi=${BASH_REMATCH[4]}
else
	p_metal=100 p_dens=40 p_mass=10 p_chi=20
fi
read -r zmetal xnsur mass sint rtot < <(awk -v m="$p_metal" -v d="$p_dens" -v c="$p_mass" -v x="$p_chi" 'BEGIN {
	n = 10 ^ (0.1 * d); M = 10 ^ (0.1 * c); a = 1.5; rc = 0.2; pi = 3.14159265358979
	# pdr_run compute_radius(cmass, density, alpha, rcore)
	r = 1.05916e19 * (M / ((12 * n * pi) / (9 - 3 * a) - (4 * n * pi * rc ^ (3 - a) * a) / (9 - 3 * a))) ^ (1 / 3)
	printf "%.6g %.6e %.6e %.6e %.6e\n", m * 0.01, n, M, 10 ^ (0.1 * x), r
}')

job=$outdir/job
db=$outdir/catalog.db
mkdir -p "$outdir"
rm -rf -- "$job" "$db" "$db-journal" "$db-wal" "$db-shm"
mkdir -p "$job/pdroutput" "$job/onionoutput" "$job/Out"

t_start='2024-05-14 09:12:03'
t_end='2024-05-14 11:47:29'
species='CO 13CO'

# ---------------------------------------------------------------------------------------------
# Inputs written by pdr_run before the run: PDRNEW.INP (legacy) and pdr_config.json
# ---------------------------------------------------------------------------------------------
awk -v job="$jobname" -v z="$zmetal" -v n="$xnsur" -v M="$mass" -v chi="$sint" -v r="$rtot" 'BEGIN {
	print "*** PDRNEW.INP  KOSMA-tau input parameters"
	print "*** model " job "  (written by pdr_run from PDRNEW.INP.template)"
	print "*"
	print "* ---- clump"
	printf "XNSUR     %12.4e    surface density (cm^-3)\n", n
	printf "MASS      %12.4e    clump mass (Msol)\n", M
	printf "RTOT      %12.4e    clump radius (cm)\n", r
	printf "RCORE     %12.4e    core radius fraction\n", 0.2
	printf "ALPHA     %12.4e    power law index of density law\n", 1.5
	printf "BETA      %12.4e    Doppler width (neg = Larson)\n", -1.0
	print "* ---- radiation, cosmic rays, metallicity"
	printf "SINT      %12.4e    FUV field strength (Draine)\n", chi
	printf "SIGD      %12.4e    dust UV cross section (cm^2)\n", 1.9e-21
	printf "COSRAY    %12.4e    cosmic ray ionization rate (s^-1)\n", 2.0e-16
	printf "ZMETAL    %12.4e    metallicity (solar)\n", z
	printf "PRESHH2   %12.4e\nPRESHCO   %12.4e\n", 0, 0
	printf "IFUVMETH  %6d\nIDUSTMET  %6d\nIFUVTYPE  %6d\n", 1, 1, 2
	printf "FUVTEMP   %12.4e\nFUVSTRING   Lyalpha.fuv\n", 2.0e4
	print "* ---- thermal balance"
	printf "IHTCLGAS  %6d\nTGASC     %12.4e\nIHTCLDUST %6d\nTDUSTC    %12.4e\n", 1, 50, 1, 20
	printf "IPEHMETH  %6d\nINDXPEH   %6d\nIHTCLPAH  %6d\n", 1, 4, 1
	print "* ---- dust"
	printf "INDSTR    %6d\nINDS      %6d\nINDX      %6d\n", 1, 4, 7
	split("8.27485e-3 2.27746e-3 3.75578e-4 3.75578e-4 0 0 0 0 0 0", g, " ")
	for (i = 1; i <= 10; i++) printf "D2GRATIO%-2d%12.4e\n", i, g[i]
	print "* ---- H2"
	printf "IH2METH   %6d\nIH2ONPAH  %6d\nH2FORMC   %12.4e\nIH2SHLD   %6d\n", 1, 0, 2.121e-17, 0
	print "* ---- numerics"
	printf "ITMETH    %6d\nICHEMETH  %6d\nNITER     %6d\nRTOL_ITER %12.4e\n", 2, 0, 60, 3.0e-2
	printf "RTOL_CHEM %12.4e\nATOL_CHEM %12.4e\nIHDFOUT   %6d\nDBGLVL    %6d\n", 1e-2, 1e-10, 4, 0
	print "* ---- elemental abundances (relative to H)"
	split("4 8.51e-2 12 2.34e-4 13 3.52e-6 14 8.32e-5 16 4.47e-4 18 8.93e-7 19 6.68e-9 23 2.0e-7 24 3.2e-6 28 3.17e-6 31 1.17e-7 32 7.41e-6 35 1.0e-7 56 1.0e-6", e, " ")
	for (i = 1; i < 28; i += 2) printf "ELFRAC%-4d%12.4e\n", e[i], e[i + 1] * (e[i] == 4 ? 1 : z)
	print "* ---- chemistry"
	ns = split("H+ H2+ H3+ HE+ HE C CH CO C+ CH+ CH2+ CO+ HCO+ 13C 13CH 13CO 13C+ 13CH+ 13CH2+ 13CO+ H13CO+ O OH H2O O2 O+ OH+ H2O+ H3O+ S S+ HS HS+ H2S+ CS HCS+ SO SO+ CH2 CH3+", s, " ")
	for (i = 1; i <= ns; i++) print "SPECIES  " s[i]
	print "*MODEL GRID"
	print "END"
}' >"$job/PDRNEW.INP"

cat >"$job/pdr_config.json" <<EOF
{
  "model_job_name": "$jobname",
  "code": "KOSMA-tau",
  "clump": {"xnsur": $xnsur, "mass": $mass, "rtot": $rtot, "rcore": 0.2, "alpha": 1.5, "beta": -1.0},
  "radiation": {"sint": $sint, "sigd": 1.9e-21, "ifuvmeth": 1, "ifuvtype": 2, "fuvtemp": 2.0e4, "fuvstring": "Lyalpha.fuv"},
  "cosmic_rays": {"cosray": 2.0e-16},
  "metallicity": {"zmetal": $zmetal},
  "thermal": {"ihtclgas": 1, "tgasc": 50.0, "ihtcldust": 1, "tdustc": 20.0, "ipehmeth": 1, "indxpeh": 4},
  "h2": {"ih2meth": 1, "ih2onpah": 0, "h2formc": 2.121e-17, "ih2shld": 0},
  "numerics": {"itmeth": 2, "ichemeth": 0, "niter": 60, "rtol_iter": 3.0e-2, "rtol_chem": 1.0e-2, "atol_chem": 1.0e-10},
  "output": {"ihdfout": 4, "dbglvl": 0, "grid": true},
  "species": ["H+", "H2+", "H3+", "HE+", "HE", "C", "CH", "CO", "C+", "CH+", "CH2+", "CO+", "HCO+",
              "13C", "13CH", "13CO", "13C+", "13CH+", "13CH2+", "13CO+", "H13CO+", "O", "OH", "H2O",
              "O2", "O+", "OH+", "H2O+", "H3O+", "S", "S+", "HS", "HS+", "H2S+", "CS", "HCS+", "SO",
              "SO+", "CH2", "CH3+"]
}
EOF

# ---------------------------------------------------------------------------------------------
# pdroutput/TEXTOUT (~3 MB): pdr_run's begin/end lines around the code's iteration log
# ---------------------------------------------------------------------------------------------
awk -v job="$jobname" -v n="$xnsur" -v chi="$sint" -v r="$rtot" -v z="$zmetal" \
	-v t0="$t_start" -v t1="$t_end" -v mpath="/archive/pdr/kosma_tau_demo" 'function rnd() { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
BEGIN {
	seed = 20240514; nd = 400; nit = 62
	print "Begin of PDR Job: " t0
	print " "
	print " ============================================================================"
	print "  KOSMA-tau  spherical PDR model            model " job
	print " ============================================================================"
	printf "  XNSUR = %10.3E cm-3   SINT = %10.3E   RTOT = %10.3E cm   ZMETAL = %5.2f\n", n, chi, r, z
	print "  reading pdrinpdata/chem_rates.dat (UMIST)"
	print "  reading pdrinpdata/FUV grid ... 1154 wavelengths"
	print ""
	for (it = 1; it <= nit; it++) {
		eps = 0.8 * exp(-it / 7.0) * (1 + 0.2 * rnd())
		printf " GLOBAL ITERATION %4d   EPS = %10.3E   NEWTON STEPS %3d\n", it, eps, 4 + int(8 * rnd())
		printf "%5s %11s %11s %11s %9s %9s %11s %11s %11s %11s %11s\n", "I", "R[cm]", "AV", "NTOT", "TGAS", "TDUST", "X(H)", "X(H2)", "X(C+)", "X(C)", "X(CO)"
		col = 0
		for (i = 0; i < nd; i++) {
			f = i / (nd - 1); rr = r * (1 - 0.999 * f * f); x = rr / r
			dens = n * (x > 0.2 ? x : 0.2) ^ -1.5
			if (i > 0) col += dens * (rprev - rr)
			rprev = rr; av = col * z / 1.87e21
			tg = (12 + 100 * chi ^ 0.3 * exp(-av / 0.7)) * (1 + 0.02 * (rnd() - 0.5))
			td = (10 + 18 * chi ^ 0.2 * exp(-av / 2.5)) * (1 + 0.01 * (rnd() - 0.5))
			xh = 0.98 * exp(-av / 0.4) + 1e-4; xh2 = 0.5 * (1 - exp(-av / 0.4))
			xcp = 1.4e-4 * z * exp(-av / 1.5) + 1e-8; xco = 1.2e-4 * z * (1 - exp(-av / 2)) + 1e-12
			xc = 1.4e-4 * z - xcp - xco; if (xc < 1e-12) xc = 1e-12
			printf "%5d %11.4E %11.4E %11.4E %9.2f %9.2f %11.4E %11.4E %11.4E %11.4E %11.4E\n", i + 1, rr, av, dens, tg, td, xh, xh2, xcp, xc * (1 + 0.05 * rnd()), xco
		}
		print ""
	}
	printf " CONVERGED AFTER %d GLOBAL ITERATIONS   EPS = %10.3E\n", nit, eps
	print "  HDF output: pdroutput/pdrout.hdf pdroutput/pdrstruct_s.hdf5 pdroutput/pdrchem_c.hdf5"
	print "  normal termination"
	print " "
	print "Output copied to directory " mpath "/pdrgrid"
	print "End of PDR Job: " t1
}' >"$job/pdroutput/TEXTOUT"

# ---------------------------------------------------------------------------------------------
# HDF5 outputs (real HDF5 from mkhdf5) and the HDF4 output (magic bytes + DD block + data)
# ---------------------------------------------------------------------------------------------
"$mkhdf5" "$job/pdroutput/pdrstruct_s.hdf5" struct 3 model_name="$jobname" \
	n_surface="$xnsur" mass="$mass" chi="$sint" metal="$zmetal"
"$mkhdf5" "$job/pdroutput/pdrchem_c.hdf5" chem 2.5 model_name="$jobname" \
	n_surface="$xnsur" mass="$mass" chi="$sint" metal="$zmetal"

# HDF4 cannot be written here; pdrout.hdf gets the HDF4 signature 0e 03 13 01, a plausible
# big-endian data-descriptor block, then 1 MiB of incompressible deterministic bytes (gzip of
# TEXTOUT, minus its gzip header).
{
	printf '\016\003\023\001'
	LC_ALL=C awk 'function be(v, k,   s, j) { s = ""; for (j = k - 1; j >= 0; j--) s = s sprintf("%c", int(v / 256 ^ j) % 256); return s }
	BEGIN {
		ntag = split("30 720 701 702 704 705 720 701 702 704 705 106 106 300 30 30", tag, " ")
		printf "%s%s", be(ntag, 2), be(0, 4)
		off = 4 + 6 + 12 * ntag
		for (i = 1; i <= ntag; i++) {
			len = (tag[i] == 702) ? 480000 : 92
			printf "%s%s%s%s", be(tag[i], 2), be(i, 2), be(off, 4), be(len, 4)
			off += len
		}
	}'
	gzip -1 -n -c "$job/pdroutput/TEXTOUT" | tail -c +11
} >"$job/pdroutput/pdrout.hdf"
truncate -s 1048576 "$job/pdroutput/pdrout.hdf"

# ---------------------------------------------------------------------------------------------
# Small text outputs: chemchk.out, CTRL_IND, onionoutput/ for CO and 13CO
# ---------------------------------------------------------------------------------------------
awk -v job="$jobname" -v dir="$job" -v specs="$species" 'function rnd() { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
BEGIN {
	seed = 4711
	ns = split("H H2 ELECTR H+ H2+ H3+ HE+ HE C CH CO C+ CH+ CH2+ CO+ HCO+ 13C 13CH 13CO 13C+ 13CH+ 13CH2+ 13CO+ H13CO+ O OH H2O O2 O+ OH+ H2O+ H3O+ S S+ HS HS+ H2S+ CS HCS+ SO SO+ CH2 CH3+", sp, " ")
	f = dir "/pdroutput/chemchk.out"
	print " CHEMISTRY CHECK  model " job > f
	print " elemental conservation: max rel. error  3.2E-09 (C)   1.1E-09 (O)" > f
	printf "%-8s %11s %11s %6s %6s  %s\n", "SPECIES", "X(surface)", "X(centre)", "NFORM", "NDEST", "main destruction at surface" > f
	for (i = 1; i <= ns; i++)
		printf "%-8s %11.4E %11.4E %6d %6d  R%04d (%4.1f%%)\n", sp[i], 10 ^ (-12 * rnd()), 10 ^ (-12 * rnd()), 2 + int(30 * rnd()), 2 + int(30 * rnd()), int(412 * rnd()) + 1, 30 + 70 * rnd() > f
	close(f)

	f = dir "/pdroutput/CTRL_IND"
	print "CTRL_IND  " job > f
	printf "NSPEC %4d  NDEPTH %4d  NHDF %2d\n", 40, 400, 4 > f
	nsp = split(specs, on, " ")
	for (i = 1; i <= nsp; i++) {
		for (k = 1; k <= ns; k++) if (sp[k] == on[i]) break
		printf "%-6s %4d %4d\n", on[i], k, 10 + 5 * i > f
	}
	close(f)

	# B, D (GHz) of the linear rotor; dipole moment (Debye)
	B["CO"] = 57.635968; D["CO"] = 1.8350e-4; B["13CO"] = 55.101011; D["13CO"] = 1.6770e-4
	for (s = 1; s <= nsp; s++) {
		m = on[s]; o = dir "/onionoutput/"
		f = o "jerg_" m ".smli"
		printf "# line emissivities %s  model %s  [erg s-1 cm-3 sr-1]\n#   R/RTOT", m, job > f
		for (j = 1; j <= 10; j++) printf "   J=%2d-%-2d  ", j, j - 1 > f
		print "" > f
		for (i = 0; i < 50; i++) {
			printf "%9.4f", 1 - i / 50 > f
			for (j = 1; j <= 10; j++) printf " %11.4E", 10 ^ (-22 - j * 0.4 - 2 * rnd()) > f
			print "" > f
		}
		close(f)
		f = o "jerg_" m ".srli"
		printf "# line opacities %s  model %s\n", m, job > f
		for (i = 0; i < 50; i++) {
			printf "%9.4f", 1 - i / 50 > f
			for (j = 1; j <= 10; j++) printf " %11.4E", 10 ^ (1 - j * 0.3 - 2 * rnd()) > f
			print "" > f
		}
		close(f)
		split("smli smlc", kind, " ")
		for (q = 1; q <= 2; q++) {
			f = o "jtemp_" m "." kind[q]
			printf "# excitation temperatures %s (%s)  model %s  [K]\n", m, kind[q], job > f
			for (i = 0; i < 50; i++) {
				printf "%9.4f", 1 - i / 50 > f
				for (j = 1; j <= 10; j++) printf " %9.3f", (8 + 60 * rnd()) / (1 + 0.1 * j) > f
				print "" > f
			}
			close(f)
		}
		f = o "linebt_" m ".out"
		printf "# %s line brightness temperatures  model %s\n", m, job > f
		printf "#%4s %4s %14s %10s %12s\n", "Ju", "Jl", "FREQ[GHz]", "TMB[K]", "INT[K km/s]" > f
		for (j = 1; j <= 10; j++) {
			nu = 2 * B[m] * j - 4 * D[m] * j ^ 3
			t = (35 - 3 * j) * (1 + 0.1 * rnd()) * (m == "CO" ? 1 : 0.3); if (t < 0.01) t = 0.01
			printf " %4d %4d %14.6f %10.4f %12.5E\n", j, j - 1, nu, t, t * 2.1 > f
		}
		close(f)
		f = o "ONION3_" m ".OUT"
		printf " ONION3  escape-probability line transfer  species %s\n model %s\n", m, job > f
		printf " %d levels, %d shells, %d impact parameters\n", 41, 50, 64 > f
		for (j = 1; j <= 10; j++)
			printf " transition %2d-%-2d  tau_centre %11.4E  Tex_centre %8.3f K  I_clump %11.4E\n", j, j - 1, 10 ^ (2 - 0.3 * j) * rnd(), 10 + 30 * rnd(), 10 ^ (-6 - 0.3 * j) > f
		print " ONION3 finished" > f
		close(f)
	}
	# pdr_run rewrites onionoutput/TEXTOUT for every species: the last one is left
	f = dir "/onionoutput/TEXTOUT"
	print "Running onion for " on[nsp] > f
	print " ONION3: reading pdroutput/pdrstruct_s.hdf5" > f
	print " ONION3: " nsp " species requested, doing " on[nsp] > f
	print " ONION3 finished" > f
	print " " > f
	close(f)
}'

# ---------------------------------------------------------------------------------------------
# Out/: 1000 small Monte Carlo (MCDRT) output files, one awk process
# ---------------------------------------------------------------------------------------------
awk -v dir="$job/Out" -v job="$jobname" 'function rnd() { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
BEGIN {
	seed = 1001
	for (b = 1; b <= 1000; b++) {
		f = sprintf("%s/mcdrt_%04d.dat", dir, b)
		rows = 4 + int(76 * rnd())
		printf "# MCDRT Monte Carlo dust continuum transfer  model %s\n", job > f
		printf "# batch %04d/1000  photon packages %d  seed %d\n", b, 100000, seed > f
		printf "#%11s %13s %13s %9s\n", "lambda[um]", "I_nu[cgs]", "tau_dust", "n_scat" > f
		for (i = 0; i < rows; i++)
			printf "%12.5E %13.6E %13.6E %9d\n", 0.0912 * 10 ^ (i * 4.0 / rows), 10 ^ (-18 + 3 * rnd()), 10 ^ (2 - 4 * i / rows) * rnd(), int(20 * rnd()) > f
		close(f)
	}
}'

# Work-directory clutter pdr_run leaves behind (not outputs: the manifest must not match them).
printf 'Running instance for job ID: 1\n' >"$job/out.log"
cp "$job/pdroutput/CTRL_IND" "$job/CTRL_IND"
printf '* ONION3.INP for %s\n' "${species##* }" >"$job/ONION3.INP"

# The job's files carry the time it finished, as a real run's would, and the same time on every
# run of this script: the job is the same job, so publishing it again finds it unchanged (its
# Out/ archive, which stores modification times, included).
find "$job" -exec touch -h -d '2024-05-14 11:42:07 UTC' {} +

# ---------------------------------------------------------------------------------------------
# Catalogue: one row, the job has run and its outputs still sit in the work directory
# ---------------------------------------------------------------------------------------------
sqlite3 -bail "$db" <<EOF
$(cat "$here/schema.sql")
INSERT INTO pdr_model_jobs (id, model_name_id, model_job_name, user_id, kosmatau_parameters_id,
    kosmatau_executable_id, chemical_database_id, pending, active, status, time_of_start,
    output_hdf4_file, onion_species, time_created)
VALUES (1, 1, '$jobname', 1, 1, 1, 1, 0, 1, 'running', '$t_start',
    'pdr$jobname.hdf', '$species', '2024-05-14 09:11:58');
EOF

printf '%s: job %s in %s, catalogue %s\n' "$prog" "$jobname" "$job" "$db"
