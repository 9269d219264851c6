#!/usr/bin/env bash
# publish-archive.sh [--jobpub PATH] [DATADIR]
#
# Times publishing a directory as one archive to a file:// destination (issue 3) against what
# users do today, on the same data and in one run.  For each archive format F (tar.gz, tar):
#
#   (a) jobpub publish            one `path: Out` output with `archive: F`: the archive is written
#                                 straight into the staged file while it is hashed, fsynced,
#                                 renamed, recorded in the catalogue
#   (b) tar + cp                  `tar -czf X.tar.gz Out` (or `tar -cf X.tar Out`) into a scratch
#                                 directory, then `cp` of the archive to the destination
#   (c) tar + cp + sync           the same, then `sync` of the copy and of the destination
#                                 directory (jobpub fsyncs the file and the directory it commits
#                                 into; cp does not: this row is the fair comparison for
#                                 durability)
#
# The data: one directory `Out/` holding 1000 small files (1-16 KiB of text-like random numbers,
# so gzip has something to compress) and 3 files of 200 MiB of random bytes (incompressible),
# generated once.  Each measurement is wall time and peak RSS from GNU time
# (`/usr/bin/time -f '%e %M'`; for (b) and (c) the peak of the largest process: tar, gzip or
# cp).  Nothing is dropped from the page cache (that needs root): one warm-up pass reads the
# source data, then every measurement runs 3 times, in rotation (a b c a b c ...), and the
# median is reported.  Before each measurement the previous destination and scratch archive are
# removed and `sync` runs (untimed), so no measurement pays for another's write-back.  The
# scratch archive of (b) and (c) stays in place until after the timing (users' scripts would
# remove it; that is not counted).  cp runs with --reflink=never so that it really copies
# bytes.  Round 1 checks, untimed, that jobpub's archive extracts to exactly the source tree
# (`tar -x` + `diff -r`) and that (b)'s archive lists as many entries.
#
# jobpub's gzip is libarchive's gzip filter at its default level (zlib's default, 6), GNU tar's
# is gzip(1) at its default (6): the archive sizes are printed so that the compression can be
# compared.  jobpub writes pax (ustar headers), GNU tar its own gnu format.
#
# DATADIR: where the source data, the scratch archives and the destinations go (all on one
# filesystem); the script works in a new directory below it and removes that at the end.
# Default: a new directory from `mktemp -d` under /var/tmp, removed at the end.  About 2 GiB
# must be free.
#
# The jobpub binary: --jobpub PATH, else $JOBPUB, else `jobpub` on PATH.
# BENCH_BIG_MIB and BENCH_SMALL_FILES (default 200 and 1000) shrink the data for a quick try;
# BENCH_FORMATS (default "tar.gz tar") picks the formats (tar.zst works too).
#
# Output: Markdown tables on stdout (progress on stderr).
set -euo pipefail

prog=${0##*/}
ROUNDS=3
BIG_MIB=${BENCH_BIG_MIB:-200}        # smaller values only for a quick try of the script
SMALL_FILES=${BENCH_SMALL_FILES:-1000}
BIG_FILES=3
read -r -a formats <<<"${BENCH_FORMATS:-tar.gz tar}"

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# ---- tools -----------------------------------------------------------------------------------
need_gnu_time
find_jobpub
for t in tar gzip cp sync head awk sort df du diff; do
	command -v "$t" >/dev/null || die "$t is missing"
done
for f in "${formats[@]}"; do
	case $f in
	tar | tar.gz) ;;
	tar.zst) command -v zstd >/dev/null || die "tar.zst needs zstd for the tar rows" ;;
	*) die "BENCH_FORMATS: unknown format '$f' (tar, tar.gz, tar.zst)" ;;
	esac
done

# ---- work directory --------------------------------------------------------------------------
if [[ -n $datadir ]]; then
	[[ -d $datadir ]] || die "DATADIR '$datadir' is not a directory"
	work=$(mktemp -d "$datadir/jobpub-bench.XXXXXX")
else
	work=$(mktemp -d /var/tmp/jobpub-bench.XXXXXX)
fi
work=$(cd "$work" && pwd)
cleanup() {
	rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Source, plus at most a scratch archive, its copy and an extracted check tree at a time.
need_kib=$(((4 * BIG_FILES * BIG_MIB + 4 * 20) * 1024 + 65536))
avail_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
((avail_kib > need_kib)) ||
	die "$work: $((avail_kib / 1024)) MiB free, about $((need_kib / 1024)) MiB needed"

src=$work/src
scratch=$work/scratch
mkdir -p "$src/Out" "$scratch"

say "jobpub: $jobpub ($("$jobpub" --version))"
say "working in $work ($(df -PT "$work" | awk 'NR == 2 { print $2 }'))"

# ---- data ------------------------------------------------------------------------------------
say "creating Out/: $SMALL_FILES small files (1-16 KiB) and $BIG_FILES x $BIG_MIB MiB"
# Small files: lines of pseudo-random numbers, like Monte Carlo output, 1-16 KiB each (sizes and
# contents from a fixed seed, the same on every run).  Compressible, but not trivially.
awk -v n="$SMALL_FILES" -v dir="$src/Out" 'BEGIN {
	srand(42)
	for (i = 1; i <= n; i++) {
		f = sprintf("%s/mcdrt_%04d.dat", dir, i)
		want = 1024 + int(rand() * 15 * 1024)
		got = 0
		while (got < want) {
			line = sprintf("%6d %14.7e %14.7e %14.7e %9.4f\n", int(rand() * 100000),
			               rand() * 1e-3, rand() * 1e5, -rand() * 1e2, rand() * 360)
			printf "%s", line > f
			got += length(line)
		}
		close(f)
	}
}'
for ((i = 1; i <= BIG_FILES; i++)); do
	if command -v openssl >/dev/null; then
		openssl rand -out "$src/Out/field_$i.bin" $((BIG_MIB * 1024 * 1024))
	else
		head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$src/Out/field_$i.bin"
	fi
done
src_bytes=$(du -sb --apparent-size "$src/Out" | awk '{ print $1 }')
small_bytes=$(cat "$src"/Out/mcdrt_*.dat | wc -c)
src_entries=$(find "$src/Out" | wc -l)
say "Out/: $src_entries entries, $((src_bytes / 1048576)) MiB ($((small_bytes / 1024)) KiB in small files)"

for f in "${formats[@]}"; do
	cat >"$work/$f.yaml" <<EOF
outputs:
  - name: out
    path: Out
    archive: $f
    to: Out.$f
EOF
done
db=$work/catalog.db

# ---- one measurement -------------------------------------------------------------------------
# measure FORMAT METHOD ROUND: one timed run into a fresh destination; prints
# "wall_s rss_kib wall_ms archive_bytes": GNU time's %e (10 ms resolution) and %M, the same
# wall time from bash's EPOCHREALTIME (microseconds, taken around /usr/bin/time), and the size
# of the archive that landed in the destination.
measure() {
	local fmt=$1 method=$2 round=$3 dst=$work/dst tf=$work/time.out
	local -a cmd targs
	local t0 t1 out size
	rm -rf -- "$dst" "${scratch:?}"/*
	mkdir -p "$dst"
	sync
	case $fmt in
	tar) targs=(-cf) ;;
	tar.gz) targs=(-czf) ;;
	tar.zst) targs=(--zstd -cf) ;;
	esac
	out=$dst/Out.$fmt
	# shellcheck disable=SC2016 # the sh -c scripts expand in sh, not here
	case $method in
	jobpub)
		cmd=("$jobpub" publish -q --job "$fmt-$round" --manifest "$work/$fmt.yaml"
			--workdir "$src" --db "$db" --dest "file://$dst") ;;
	tar+cp)
		# sh ARCHIVE SRC DST TAR-OPTIONS...: tar OPTIONS ARCHIVE -C SRC Out, then cp.
		cmd=(sh -c 'a=$1; s=$2; d=$3; shift 3; tar "$@" "$a" -C "$s" Out && cp --reflink=never "$a" "$d/"'
			sh "$scratch/Out.$fmt" "$src" "$dst" "${targs[@]}") ;;
	tar+cp+sync)
		cmd=(sh -c 'a=$1; s=$2; d=$3; shift 3; tar "$@" "$a" -C "$s" Out && cp --reflink=never "$a" "$d/" && sync "$d/${a##*/}" "$d"'
			sh "$scratch/Out.$fmt" "$src" "$dst" "${targs[@]}") ;;
	*) die "internal: unknown method $method" ;;
	esac
	t0=$EPOCHREALTIME
	if ! /usr/bin/time -f '%e %M' -o "$tf" "${cmd[@]}"; then
		die "$fmt/$method (round $round) failed: ${cmd[*]}"
	fi
	t1=$EPOCHREALTIME
	[[ -f $out ]] || die "$fmt/$method: no $out"
	size=$(stat -c %s "$out")
	# Checked once, outside the timing: jobpub's archive holds exactly the source tree; the
	# tar rows' archive lists as many entries.
	if [[ $round == 1 ]]; then
		if [[ $method == jobpub ]]; then
			rm -rf -- "$work/check"
			mkdir -p "$work/check"
			tar -xf "$out" -C "$work/check" || die "$fmt/$method: tar -x failed"
			diff -r -q "$src/Out" "$work/check/Out" >/dev/null || die "$fmt/$method: the archive differs from Out/"
			rm -rf -- "$work/check"
		fi
		[[ $(tar -tf "$out" | wc -l) == "$src_entries" ]] ||
			die "$fmt/$method: the archive does not list $src_entries entries"
	fi
	# "%e %M" from GNU time, the wall time in ms from bash's microsecond clock, the size.
	printf '%s %s %s\n' "$(tail -n 1 "$tf")" \
		"$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.1f", (b - a) * 1000 }')" "$size"
	rm -rf -- "$dst" "${scratch:?}"/*
	sync
}

# ---- warm-up ---------------------------------------------------------------------------------
say "warm-up: reading the source data once"
cat "$src"/Out/* >/dev/null
sync

# ---- the runs --------------------------------------------------------------------------------
methods=(jobpub tar+cp tar+cp+sync)
declare -A walls rsss msecs sizes
for fmt in "${formats[@]}"; do
	for ((r = 1; r <= ROUNDS; r++)); do
		for m in "${methods[@]}"; do
			res=$(measure "$fmt" "$m" "$r")
			read -r w k ms sz <<<"$res"
			walls[$fmt/$m]+="$w "
			rsss[$fmt/$m]+="$k "
			msecs[$fmt/$m]+="$ms "
			sizes[$fmt/$m]+="$sz "
			say "$fmt round $r: $m ${w} s (${ms} ms), $((k / 1024)) MiB RSS, archive $sz bytes"
		done
	done
done

# jobpub's archives of one format must be byte-identical from run to run (deterministic).
if command -v sqlite3 >/dev/null; then
	for fmt in "${formats[@]}"; do
		n=$(sqlite3 "$db" "SELECT count(DISTINCT sha256) FROM jobpub_files WHERE job LIKE '$fmt-%'")
		[[ $n == 1 ]] || die "$fmt: jobpub's archives differ between rounds ($n different SHA-256)"
	done
	say "jobpub's archives are byte-identical across rounds (one SHA-256 per format)"
fi

# ---- tables ----------------------------------------------------------------------------------
label() {
	local f=$1
	local opt=-cf
	[[ $f == tar.gz ]] && opt=-czf
	[[ $f == tar.zst ]] && opt='--zstd -cf'
	case $2 in
	jobpub) echo "(a) \`jobpub publish\`, \`archive: $f\`" ;;
	tar+cp) echo "(b) \`tar $opt\` + \`cp\`" ;;
	tar+cp+sync) echo "(c) \`tar $opt\` + \`cp\` + \`sync\`" ;;
	esac
}
echo "Data: \`Out/\`, $src_entries entries: $SMALL_FILES files of 1-16 KiB ($((small_bytes / 1024)) KiB) and $BIG_FILES x $BIG_MIB MiB; $src_bytes bytes in all."
echo
echo "| format | method | wall s, median (%e) | wall s, 3 runs (%e) | wall ms, median (µs clock) | MiB/s of source | peak RSS MiB (median) | vs (b) | vs (c) |"
echo "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
for fmt in "${formats[@]}"; do
	# shellcheck disable=SC2086
	{
		mb=$(median ${msecs[$fmt/tar+cp]})
		mc=$(median ${msecs[$fmt/tar+cp+sync]})
	}
	for m in "${methods[@]}"; do
		# shellcheck disable=SC2086
		{
			w=$(median ${walls[$fmt/$m]})
			k=$(median ${rsss[$fmt/$m]})
			ms=$(median ${msecs[$fmt/$m]})
		}
		awk -v fmt="$fmt" -v lab="$(label "$fmt" "$m")" -v w="$w" -v all="${walls[$fmt/$m]}" \
			-v ms="$ms" -v k="$k" -v bytes="$src_bytes" -v mb="$mb" -v mc="$mc" '
			function ratio(x, y) { return (y > 0) ? sprintf("%.2fx", x / y) : "-" }
			BEGIN {
				sub(/ +$/, "", all); gsub(/ /, ", ", all)
				rate = (ms > 0) ? sprintf("%.0f", bytes / 1048576 / (ms / 1000)) : "-"
				printf("| %s | %s | %.2f | %s | %.0f | %s | %.1f | %s | %s |\n", fmt, lab, w,
				       all, ms, rate, k / 1024, ratio(ms, mb), ratio(ms, mc))
			}'
	done
done
echo
echo "Archive sizes (bytes; the source is $src_bytes):"
echo
echo "| format | jobpub (pax, libarchive) | GNU tar (gnu format; gzip(1) for tar.gz) | jobpub / tar |"
echo "| --- | ---: | ---: | ---: |"
for fmt in "${formats[@]}"; do
	# shellcheck disable=SC2086
	{
		sj=$(median ${sizes[$fmt/jobpub]})
		st=$(median ${sizes[$fmt/tar+cp]})
	}
	awk -v f="$fmt" -v a="$sj" -v b="$st" 'BEGIN { printf("| %s | %d | %d | %.4f |\n", f, a, b, a / b) }'
done
