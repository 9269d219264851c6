#!/usr/bin/env bash
# publish-posix.sh [--jobpub PATH] [DATADIR]
#
# Times `jobpub publish` to a file:// destination against what users do today, on the same data
# and in one run:
#
#   (a) jobpub publish            copy + SHA-256 in one read, fsync of every file, rename,
#                                 catalogue transaction
#   (b) cp + sha256sum            copy, then hash the copy (what job scripts do today)
#   (c) cp                        copy alone
#   (d) cp + sync                 copy, then fsync the copies (jobpub fsyncs every file and the
#                                 directories it commits into; cp does not: this row is the fair
#                                 comparison for durability)
#
# for two data sets: one 1 GiB file, and a tree of 1000 files of 4-64 KiB (jobpub publishes it
# with one `glob:` output).  Each measurement is wall time and peak RSS from GNU time
# (`/usr/bin/time -f '%e %M'`).  Nothing is dropped from the page cache (that needs root):
# instead one warm-up pass reads the source data, then every measurement runs 3 times, in
# rotation (a b c d a b c d ...), and the median is reported.  Before each measurement the
# previous destination is removed and `sync` runs (untimed), so no measurement pays for the
# write-back of another.  cp runs with --reflink=never so that it really copies bytes.
#
# DATADIR: where the source data and the destinations go (all on one filesystem); the script
# works in a new directory below it and removes that at the end.  Default: a new directory
# from `mktemp -d` under /var/tmp, removed at the end.  About 2.2 GiB must be free.
#
# The jobpub binary: --jobpub PATH, else $JOBPUB, else `jobpub` on PATH.
# BENCH_BIG_MIB and BENCH_TREE_FILES (default 1024 and 1000) shrink the data for a quick try.
#
# Output: a Markdown table on stdout (progress on stderr).
set -euo pipefail

prog=${0##*/}
ROUNDS=3
BIG_MIB=${BENCH_BIG_MIB:-1024}       # smaller values only for a quick try of the script
TREE_FILES=${BENCH_TREE_FILES:-1000}

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# ---- tools -----------------------------------------------------------------------------------
need_gnu_time
find_jobpub
for t in cp sha256sum sync head awk sort df; do
	command -v "$t" >/dev/null || die "$t is missing"
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

need_kib=$(((2 * BIG_MIB + 2 * 64) * 1024 + 65536))
avail_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
((avail_kib > need_kib)) ||
	die "$work: $((avail_kib / 1024)) MiB free, about $((need_kib / 1024)) MiB needed"

src=$work/src
mkdir -p "$src/tree"

say "jobpub: $jobpub ($("$jobpub" --version))"
say "working in $work ($(df -PT "$work" | awk 'NR == 2 { print $2 }'))"

# ---- data ------------------------------------------------------------------------------------
say "creating a ${BIG_MIB} MiB file and a tree of $TREE_FILES files (4-64 KiB)"
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$src/big.bin"
# Sizes: a fixed pseudo-random sequence of whole KiB in [4, 64], the same on every run.
head -c $((64 * 1024 * 1024)) /dev/urandom >"$work/pool"
awk -v n="$TREE_FILES" 'BEGIN { srand(42); for (i = 1; i <= n; i++) printf "%04d %d\n", i, 4 + int(rand() * 61) }' |
	while read -r i kib; do
		# A different slice of the random pool for each file.
		dd if="$work/pool" of="$src/tree/out_$i.dat" bs=1024 count="$kib" skip=$(((10#$i * 61) % 65000)) \
			status=none
	done
rm -f "$work/pool"
tree_bytes=$(du -sb "$src/tree" | awk '{ print $1 }')
say "tree: $TREE_FILES files, $((tree_bytes / 1024)) KiB"

cat >"$work/big.yaml" <<'EOF'
outputs:
  - name: big
    path: big.bin
    to: big.bin
EOF
cat >"$work/tree.yaml" <<'EOF'
outputs:
  - name: tree
    glob: tree/*
    to: tree/${basename}
EOF
db=$work/catalog.db

# ---- one measurement -------------------------------------------------------------------------
# measure SET METHOD ROUND: one timed run into a fresh destination; prints "wall_s rss_kib wall_ms":
# GNU time's %e (10 ms resolution) and %M, and the same wall time from bash's EPOCHREALTIME
# (microseconds, taken around /usr/bin/time, so it includes ~1 ms for starting time itself).
measure() {
	local set=$1 method=$2 round=$3 dst=$work/dst tf=$work/time.out
	local -a cmd
	local t0 t1
	rm -rf -- "$dst"
	mkdir -p "$dst"
	sync
	case $set/$method in
	big/jobpub)
		cmd=("$jobpub" publish -q --job "big-$round" --manifest "$work/big.yaml" --workdir "$src"
			--db "$db" --dest "file://$dst") ;;
	big/cp+sha256sum)
		cmd=(sh -c 'cp --reflink=never "$1" "$2/big.bin" && sha256sum "$2/big.bin" >/dev/null'
			sh "$src/big.bin" "$dst") ;;
	big/cp)
		cmd=(cp --reflink=never "$src/big.bin" "$dst/big.bin") ;;
	big/cp+sync)
		cmd=(sh -c 'cp --reflink=never "$1" "$2/big.bin" && sync "$2/big.bin" "$2"'
			sh "$src/big.bin" "$dst") ;;
	tree/jobpub)
		cmd=("$jobpub" publish -q --job "tree-$round" --manifest "$work/tree.yaml" --workdir "$src"
			--db "$db" --dest "file://$dst") ;;
	tree/cp+sha256sum)
		cmd=(sh -c 'cp -r --reflink=never "$1" "$2/tree" && sha256sum "$2"/tree/* >/dev/null'
			sh "$src/tree" "$dst") ;;
	tree/cp)
		cmd=(cp -r --reflink=never "$src/tree" "$dst/tree") ;;
	tree/cp+sync)
		cmd=(sh -c 'cp -r --reflink=never "$1" "$2/tree" && sync "$2"/tree/* "$2/tree" "$2"'
			sh "$src/tree" "$dst") ;;
	*) die "internal: unknown measurement $set/$method" ;;
	esac
	t0=$EPOCHREALTIME
	if ! /usr/bin/time -f '%e %M' -o "$tf" "${cmd[@]}"; then
		die "$set/$method (round $round) failed: ${cmd[*]}"
	fi
	t1=$EPOCHREALTIME
	# Every method must leave the same bytes behind: checked once, outside the timing.
	if [[ $round == 1 ]]; then
		if [[ $set == big ]]; then
			cmp -s "$src/big.bin" "$dst/big.bin" || die "$set/$method: the copy differs"
		else
			diff -r -q "$src/tree" "$dst/tree" >/dev/null || die "$set/$method: the copy differs"
		fi
	fi
	# "%e %M" from GNU time, then the wall time in ms from bash's microsecond clock.
	printf '%s %s\n' "$(tail -n 1 "$tf")" \
		"$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.1f", (b - a) * 1000 }')"
	rm -rf -- "$dst"
	sync
}

# ---- warm-up ---------------------------------------------------------------------------------
say "warm-up: reading the source data once"
cat "$src/big.bin" "$src"/tree/* >/dev/null
sync

# ---- the runs --------------------------------------------------------------------------------
methods=(jobpub cp+sha256sum cp cp+sync)
declare -A walls rsss msecs
for set in big tree; do
	for ((r = 1; r <= ROUNDS; r++)); do
		for m in "${methods[@]}"; do
			res=$(measure "$set" "$m" "$r")
			read -r w k ms <<<"$res"
			walls[$set/$m]+="$w "
			rsss[$set/$m]+="$k "
			msecs[$set/$m]+="$ms "
			say "$set round $r: $m ${w} s (${ms} ms), $((k / 1024)) MiB"
		done
	done
done

# ---- table -----------------------------------------------------------------------------------
label() {
	case $1 in
	jobpub) echo '(a) `jobpub publish`' ;;
	cp+sha256sum) echo '(b) `cp` + `sha256sum` of the copy' ;;
	cp) echo '(c) `cp`' ;;
	cp+sync) echo '(d) `cp` + `sync` of the copy' ;;
	esac
}
echo "| data | method | wall s, median (%e) | wall s, 3 runs (%e) | wall ms, median (µs clock) | MiB/s | peak RSS MiB (median) | vs (b) | vs (c) | vs (d) |"
echo "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for set in big tree; do
	if [[ $set == big ]]; then
		what="$(size_label "$BIG_MIB") file"
		bytes=$((BIG_MIB * 1024 * 1024))
	else
		what="$TREE_FILES files, $((tree_bytes / 1024)) KiB"
		bytes=$tree_bytes
	fi
	# Ratios use the microsecond clock: %e is too coarse for the tree.
	# shellcheck disable=SC2086
	{
		mb=$(median ${msecs[$set/cp+sha256sum]})
		mc=$(median ${msecs[$set/cp]})
		md=$(median ${msecs[$set/cp+sync]})
	}
	for m in "${methods[@]}"; do
		# shellcheck disable=SC2086
		{
			w=$(median ${walls[$set/$m]})
			k=$(median ${rsss[$set/$m]})
			ms=$(median ${msecs[$set/$m]})
		}
		awk -v what="$what" -v lab="$(label "$m")" -v w="$w" -v all="${walls[$set/$m]}" \
			-v ms="$ms" -v k="$k" -v bytes="$bytes" -v mb="$mb" -v mc="$mc" -v md="$md" '
			function ratio(x, y) { return (y > 0) ? sprintf("%.2fx", x / y) : "-" }
			BEGIN {
				sub(/ +$/, "", all); gsub(/ /, ", ", all)
				rate = (ms > 0) ? sprintf("%.0f", bytes / 1048576 / (ms / 1000)) : "-"
				printf("| %s | %s | %.2f | %s | %.0f | %s | %.1f | %s | %s | %s |\n", what, lab, w,
				       all, ms, rate, k / 1024, ratio(ms, mb), ratio(ms, mc), ratio(ms, md))
			}'
	done
done
