#!/bin/sh
# run.sh SECONDS [TARGET...] - runs each libFuzzer target of tests/fuzz/ for SECONDS, one after
# the other, and prints per target: seconds, executions, corpus size and crashes.
#
# Uses the fuzzing build in $BUILDDIR (default: the current directory when it was configured
# with --enable-fuzzing); otherwise configures and builds one in $FUZZ_BUILDDIR (default
# ./build-fuzzing) with CC=${FUZZ_CC:-clang-14}.  Targets: manifest dest sshconfig known_hosts
# s3 s3_creds spool (default: all).
#
# Each target starts from its seed corpus (tests/fuzz/corpus/TARGET, never written) plus its
# regression inputs, and grows a working corpus in BUILDDIR/tests/fuzz/work/TARGET (kept between
# runs).  A crash, leak or hang (an input over 10 s) stops that target; the input is saved as
# BUILDDIR/tests/fuzz/artifacts/TARGET/crash-* (or leak-*, timeout-*, oom-*): minimise it
# (fuzz_TARGET -minimize_crash=1 FILE), fix the bug, and add the input to
# tests/fuzz/regressions/TARGET/ so `make check` replays it from then on.
#
# Exit 0 when no target crashed, 1 when one did, 2 on a usage or build error.
set -eu

ALL="manifest dest sshconfig known_hosts s3 s3_creds spool"
usage() { echo "usage: $0 SECONDS [TARGET...]  (targets: $ALL)" >&2; exit 2; }
[ $# -ge 1 ] || usage
SECONDS_EACH=$1
shift
case $SECONDS_EACH in '' | *[!0-9]*) usage ;; esac
TARGETS=${*:-$ALL}
for t in $TARGETS; do
	case " $ALL " in *" $t "*) ;; *) echo "run.sh: unknown target '$t'" >&2; usage ;; esac
done

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
is_fuzz_build() { [ -f "$1/config.status" ] && grep -q 'enable-fuzzing' "$1/config.status"; }
if [ -n "${BUILDDIR:-}" ]; then
	is_fuzz_build "$BUILDDIR" || { echo "run.sh: $BUILDDIR is not a --enable-fuzzing build" >&2; exit 2; }
elif is_fuzz_build .; then
	BUILDDIR=$(pwd)
else
	BUILDDIR=${FUZZ_BUILDDIR:-$(pwd)/build-fuzzing}
	if ! is_fuzz_build "$BUILDDIR"; then
		echo "run.sh: configuring a fuzzing build in $BUILDDIR" >&2
		[ -x "$SRCDIR/configure" ] || (cd "$SRCDIR" && autoreconf -fi) || exit 2
		mkdir -p "$BUILDDIR"
		(cd "$BUILDDIR" && "$SRCDIR/configure" -q CC="${FUZZ_CC:-clang-14}" --enable-fuzzing) || exit 2
	fi
fi
progs=
for t in $TARGETS; do progs="$progs tests/fuzz/fuzz_$t"; done
# shellcheck disable=SC2086
make -C "$BUILDDIR" -s -j"${FUZZ_MAKE_JOBS:-2}" $progs >&2 || { echo "run.sh: build failed" >&2; exit 2; }

# Leaks are reported by libFuzzer itself (-detect_leaks); the libraries' own are suppressed by
# tests/fuzz/lsan.supp.  Its entries match frames inside libssh2 and OpenSSL, which lack frame
# pointers: the known_hosts target gets the (slower) full unwinder.
ASAN_OPTIONS=${ASAN_OPTIONS-detect_leaks=1}
LSAN_OPTIONS=${LSAN_OPTIONS-suppressions=$SRCDIR/tests/fuzz/lsan.supp:print_suppressions=0}
UBSAN_OPTIONS=${UBSAN_OPTIONS-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS

failed=0
printf '%-12s %8s %12s %8s %8s\n' target seconds executions corpus crashes
for t in $TARGETS; do
	work=$BUILDDIR/tests/fuzz/work/$t
	art=$BUILDDIR/tests/fuzz/artifacts/$t
	log=$BUILDDIR/tests/fuzz/fuzz-$t.log
	mkdir -p "$work" "$art"
	touch "$art/.start"
	before=$(find "$art" -type f ! -name '.*' | wc -l)
	dict=
	[ -f "$SRCDIR/tests/fuzz/dict/$t.dict" ] && dict=-dict=$SRCDIR/tests/fuzz/dict/$t.dict
	regress=
	[ -d "$SRCDIR/tests/fuzz/regressions/$t" ] && regress=$SRCDIR/tests/fuzz/regressions/$t
	start=$(date +%s)
	# The target's files (fz_dir) go to a directory of its own: libFuzzer ends the process
	# without running atexit handlers, so they are removed here.
	tmp=$BUILDDIR/tests/fuzz/tmp/$t
	rm -rf "$tmp" && mkdir -p "$tmp"
	rc=0
	unwind=
	[ "$t" != known_hosts ] || unwind=:fast_unwind_on_malloc=0
	# shellcheck disable=SC2086
	TMPDIR=$tmp ASAN_OPTIONS=$ASAN_OPTIONS$unwind "$BUILDDIR/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 \
		-rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$art/" \
		$dict "$work" "$SRCDIR/tests/fuzz/corpus/$t" $regress >"$log" 2>&1 || rc=$?
	took=$(( $(date +%s) - start ))
	rm -rf "$tmp"
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	corpus=$(find "$work" -type f | wc -l)
	crashes=$(( $(find "$art" -type f ! -name '.*' | wc -l) - before ))
	[ "$rc" -eq 0 ] || [ "$crashes" -gt 0 ] || crashes="1 (exit $rc)"
	printf '%-12s %8s %12s %8s %8s\n' "$t" "$took" "${execs:-?}" "$corpus" "$crashes"
	if [ "$crashes" != 0 ]; then
		failed=1
		find "$art" -type f ! -name '.*' -newer "$art/.start" | sed 's/^/  artifact: /'
		grep -m 3 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | sed 's/^/  /' || true
		echo "  log: $log"
	fi
done
exit $failed
