# lib.sh - sourced by every command-line test (tests/cmd-*.sh).
#
# One behaviour per script, in its own temporary directory $T, removed on exit.  A script exits
# 0 when every check passed, 1 at the first failed check (`fail`), and 99 (automake's hard
# error) when the environment lacks something it needs: nothing is ever skipped.
#
# The environment (set by `make check`, or by hand):
#   JOBPUB      absolute path of the built src/jobpub
#   MKHDF5      absolute path of the built examples/kosma-tau/mkhdf5
#   TOP_SRCDIR  absolute path of the source tree
#
# After a command run through expect_rc, its stdout and stderr are in $OUT and $ERR.

set -eu

TEST_NAME=${0##*/}
TEST_NAME=${TEST_NAME%.sh}

# hard_error MSG: the test cannot run here (exit 99, reported as ERROR by automake).
hard_error() {
	printf 'ERROR: %s: %s\n' "$TEST_NAME" "$*" >&2
	exit 99
}

# fail MSG: a check failed.
fail() {
	printf 'FAIL: %s: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}

# need TOOL...: every TOOL must be on PATH.
need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || hard_error "'$t' is needed by this test and is not installed"
	done
}

[ -n "${JOBPUB:-}" ] || hard_error "JOBPUB is not set (the path of the built src/jobpub)"
[ -x "$JOBPUB" ] || hard_error "JOBPUB=$JOBPUB is not an executable"
[ -n "${TOP_SRCDIR:-}" ] || hard_error "TOP_SRCDIR is not set (the source directory)"
[ -d "$TOP_SRCDIR/examples/kosma-tau" ] || hard_error "TOP_SRCDIR=$TOP_SRCDIR has no examples/kosma-tau"
need sqlite3 cmp find stat sha256sum mktemp

# Messages must not depend on the user's environment.
unset JOBPUB_DB JOBPUB_DEST
export LC_ALL=C

T=$(mktemp -d "${TMPDIR:-/tmp}/jobpub-$TEST_NAME.XXXXXX") || hard_error "mktemp -d failed"
OUT=$T/stdout
ERR=$T/stderr
BG_PIDS=

# Under `./configure --enable-sanitizers` (make check sets ASAN_OPTIONS and UBSAN_OPTIONS), each
# report also goes to a file $T/sanitizer.PID, and the script fails when one was written: a
# report counts even from a command whose exit code the test does not check (a publish killed
# on purpose, a `|| true`).  The report is printed then.
SAN_LOG=
if [ -n "${ASAN_OPTIONS:-}" ] || [ -n "${UBSAN_OPTIONS:-}" ]; then
	SAN_LOG=$T/sanitizer
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SAN_LOG"
	UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$SAN_LOG"
	export ASAN_OPTIONS UBSAN_OPTIONS
fi

# JOBPUB_WRAPPER (make check-valgrind sets it): a command line every jobpub of the test runs
# under, e.g. "valgrind --tool=memcheck ...".  $JOBPUB becomes a script that runs the real
# program so.  Under valgrind each process writes its report to $T/valgrind.PID, and the script
# fails when one counts an error (leaks of the kinds given to --errors-for-leak-kinds
# included).
#
# SLOW: how many times slower than natively jobpub runs here: 1, or under valgrind
# $JOBPUB_SLOW (default 10).  Tests multiply their time limits by it, and may divide the size
# of files that are big only to make an upload last (valgrind runs jobpub at a few MB/s).
VG_LOG=
SLOW=1
if [ -n "${JOBPUB_WRAPPER:-}" ]; then
	mkdir "$T/wrapper"
	case $JOBPUB_WRAPPER in
	valgrind*) VG_LOG=$T/valgrind SLOW=${JOBPUB_SLOW:-10} ;;
	esac
	{
		echo '#!/bin/sh'
		printf 'exec %s %s %s "$@"\n' "$JOBPUB_WRAPPER" "${VG_LOG:+--log-file=$VG_LOG.%p}" "'$JOBPUB'"
	} >"$T/wrapper/jobpub"
	chmod 0755 "$T/wrapper/jobpub"
	JOBPUB=$T/wrapper/jobpub
fi

cleanup() {
	local p f san=0
	for p in $BG_PIDS; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "$SAN_LOG" ]; then
		for f in "$SAN_LOG".*; do
			[ -e "$f" ] || continue
			printf 'FAIL: %s: a sanitizer report (%s):\n' "$TEST_NAME" "${f##*/}" >&2
			cat -- "$f" >&2
			san=1
		done
	fi
	if [ -n "$VG_LOG" ]; then
		for f in "$VG_LOG".*; do
			[ -e "$f" ] || continue
			grep -q 'ERROR SUMMARY: [1-9]' "$f" || continue
			printf 'FAIL: %s: valgrind found errors (%s):\n' "$TEST_NAME" "${f##*/}" >&2
			cat -- "$f" >&2
			san=1
		done
	fi
	chmod -R u+rwx "$T" 2>/dev/null || true
	rm -rf -- "$T"
	# Only then: otherwise the script's own exit status stands (a trap may call other
	# functions before this one, so $? here is not always the script's).
	[ "$san" -eq 0 ] || exit 1
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# bg_started PID: a background process the test started; killed on exit if still running.
bg_started() {
	BG_PIDS="$BG_PIDS $1"
}

# show FILE: a file's content, indented, for failure messages.
show() {
	sed 's/^/    | /' "$1" >&2 || true
}

# expect_rc N CMD...: runs CMD (stdout in $OUT, stderr in $ERR); fails unless it exits with N.
expect_rc() {
	local want=$1 rc=0
	shift
	"$@" >"$OUT" 2>"$ERR" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		printf 'command: %s\nexit code %s, expected %s\nstderr:\n' "$*" "$rc" "$want" >&2
		show "$ERR"
		printf 'stdout:\n' >&2
		show "$OUT"
		fail "exit code $rc instead of $want"
	fi
}

# assert_grep PATTERN FILE: an extended regular expression matches a line of FILE.
assert_grep() {
	if ! grep -Eq -e "$1" -- "$2"; then
		printf '%s does not match /%s/; it holds:\n' "$2" "$1" >&2
		show "$2"
		fail "expected /$1/ in ${2##*/}"
	fi
}

# assert_grep_fixed STRING FILE: STRING occurs literally in FILE.
assert_grep_fixed() {
	if ! grep -Fq -e "$1" -- "$2"; then
		printf '%s does not contain "%s"; it holds:\n' "$2" "$1" >&2
		show "$2"
		fail "expected \"$1\" in ${2##*/}"
	fi
}

# assert_no_grep PATTERN FILE: no line of FILE matches.
assert_no_grep() {
	if grep -Eq -e "$1" -- "$2"; then
		printf '%s matches /%s/:\n' "$2" "$1" >&2
		show "$2"
		fail "unexpected /$1/ in ${2##*/}"
	fi
}

# assert_eq ACTUAL EXPECTED WHAT
assert_eq() {
	[ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}

# assert_no_temps DIR: no jobpub temporary name (.jobpub-*) anywhere below DIR.
assert_no_temps() {
	local left
	[ -e "$1" ] || return 0
	left=$(find "$1" -name '.jobpub-*' -print)
	[ -z "$left" ] || fail "temporary files left below $1: $left"
}

# assert_absent PATH: nothing exists at PATH.
assert_absent() {
	[ ! -e "$1" ] && [ ! -L "$1" ] || fail "$1 exists and should not"
}

# sql DB QUERY: runs QUERY against DB, prints the result (one row a line, '|' between columns).
sql() {
	sqlite3 -batch -bail "$1" "$2" || fail "sqlite3 $1 '$2' failed"
}

# count_files DIR: number of files (any type but directories) below DIR; 0 if DIR is absent.
count_files() {
	if [ -e "$1" ]; then
		find "$1" ! -type d | wc -l | tr -d ' '
	else
		echo 0
	fi
}

# snapshot DIR FILE: one line per entry below DIR (path, type, size, mtime, inode) into FILE,
# to compare before and after with cmp.
snapshot() {
	if [ -e "$1" ]; then
		(cd "$1" && find . -printf '%p %y %s %T@ %i\n' | LC_ALL=C sort) >"$2"
	else
		: >"$2"
	fi
}

# ---- the KOSMA-tau example ---------------------------------------------------------------------
# make_example: $T/job and $T/catalog.db (row id 1, status 'running') from make-job.sh, no
# $T/archive (removed if an earlier step made it), and
#   EXJOB, EXDB, EXMAN     the work directory, catalogue and manifest
#   EXARCHIVE              where `publish_example` puts the files ($T/archive/kosma_tau_demo)
#   EXURL                  its file:// URL
EXMODEL=kosma_tau_demo
make_example() {
	[ -n "${MKHDF5:-}" ] || hard_error "MKHDF5 is not set (the path of the built mkhdf5)"
	[ -x "$MKHDF5" ] || hard_error "MKHDF5=$MKHDF5 is not an executable"
	need awk gzip
	MKHDF5=$MKHDF5 "$TOP_SRCDIR/examples/kosma-tau/make-job.sh" "$T" >"$T/make-job.log" 2>&1 ||
		{ show "$T/make-job.log"; hard_error "examples/kosma-tau/make-job.sh failed"; }
	rm -rf -- "$T/archive"
	EXJOB=$T/job
	EXDB=$T/catalog.db
	EXMAN=$TOP_SRCDIR/examples/kosma-tau/manifest.yaml
	EXARCHIVE=$T/archive/$EXMODEL
	EXURL=file://$EXARCHIVE
	EXNAME=100_40_10_20_00
}

# publish_example [OPTION]...: publishes job 1 of the example to $EXARCHIVE.  The destination is
# given as a template, so that --set model=... is what names the directory.
publish_example() {
	"$JOBPUB" publish --job 1 --manifest "$EXMAN" --workdir "$EXJOB" --db "$EXDB" \
		--dest "file://$T/archive/\${model}" --set "model=$EXMODEL" "$@"
}

# example_files: "LOCAL REMOTE" per file the example manifest publishes (paths relative to the
# work directory and to $EXARCHIVE), in the pdr_run naming.
example_files() {
	local n=$EXNAME s f
	printf '%s %s\n' \
		pdroutput/TEXTOUT "pdrgrid/TEXTOUT$n" \
		pdroutput/pdrout.hdf "pdrgrid/pdr$n.hdf" \
		pdroutput/pdrstruct_s.hdf5 "pdrgrid/pdrstruct$n.hdf5" \
		pdroutput/pdrchem_c.hdf5 "pdrgrid/pdrchem$n.hdf5" \
		pdroutput/chemchk.out "pdrgrid/chemchk$n.out" \
		pdroutput/CTRL_IND "pdrgrid/CTRL_IND$n" \
		PDRNEW.INP "pdrgrid/PDRNEW$n.INP" \
		pdr_config.json "pdrgrid/pdr_config$n.json" \
		onionoutput/TEXTOUT "oniongrid/TEXTOUT${n}_onion"
	for s in CO 13CO; do
		for f in "jerg_$s.smli" "jerg_$s.srli" "jtemp_$s.smli" "jtemp_$s.smlc" \
			"linebt_$s.out" "ONION3_$s.OUT"; do
			printf '%s %s\n' "onionoutput/$f" "oniongrid/ONION$n.$f"
		done
	done
}

# row_status DB [TABLE] [ID]: the status column of a row.
row_status() {
	sql "$1" "SELECT status FROM ${2:-pdr_model_jobs} WHERE id = ${3:-1}"
}

# n_attempts DB: rows in jobpub_attempts (0 when the table does not exist yet).
n_attempts() {
	if [ -n "$(sql "$1" "SELECT name FROM sqlite_master WHERE name = 'jobpub_attempts'")" ]; then
		sql "$1" "SELECT count(*) FROM jobpub_attempts"
	else
		echo 0
	fi
}

# ---- a minimal job for focused tests -----------------------------------------------------------
# make_mini: a small job with its own catalogue, in $T/mini:
#   MJOB    work directory: out/result.txt, out/data.bin (64 KiB), log/run.log (not published)
#   MDB     catalogue with table runs(id, name, status, result_url, data_url), row 1 'running'
#   MMAN    manifest: result -> results/run-a/result.txt (column result_url),
#           data -> results/run-a/data.bin (column data_url), into $MARCHIVE
#   MARCHIVE, MURL  the destination directory and its URL
# Tests that need another manifest write their own with write_manifest.
make_mini() {
	MINI=$T/mini
	MJOB=$MINI/job
	MDB=$MINI/catalog.db
	MMAN=$MINI/manifest.yaml
	MARCHIVE=$MINI/archive
	MURL=file://$MARCHIVE
	rm -rf -- "$MINI"
	mkdir -p "$MJOB/out" "$MJOB/log"
	printf 'result of run-a\nconverged after 12 iterations\n' >"$MJOB/out/result.txt"
	head -c 65536 /dev/urandom >"$MJOB/out/data.bin"
	printf 'log line\n' >"$MJOB/log/run.log"
	sql "$MDB" "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
		status TEXT DEFAULT 'pending', result_url TEXT, data_url TEXT);
		INSERT INTO runs (id, name, status) VALUES (1, 'run-a', 'running');"
	write_manifest "$MMAN" <<EOF
destination: $MURL
catalog:
  table: runs
  id-column: id
  status-column: status
outputs:
  - name: result
    path: out/result.txt
    to: results/\${row.name}/result.txt
    column: result_url
  - name: data
    path: out/data.bin
    to: results/\${row.name}/data.bin
    column: data_url
EOF
}

# write_manifest FILE: FILE gets stdin (a here-document).
write_manifest() {
	cat >"$1"
}

# publish_mini [OPTION]...: publishes job 1 of the minimal job (options may override --manifest).
publish_mini() {
	"$JOBPUB" publish --job 1 --manifest "$MMAN" --workdir "$MJOB" --db "$MDB" "$@"
}

# ---- several independent cases in one script ----------------------------------------------------
# run_case FUNCTION: runs FUNCTION in a subshell, so that a failed check ends only that case;
# the script then goes on with the next case.  `finish` exits 1 if any case failed.
CASES_FAILED=
run_case() {
	local rc
	# Not `(...) || rc=$?`: that would switch set -e off inside the case.
	set +e
	("$1")
	rc=$?
	set -e
	case $rc in
	0) printf 'ok: %s\n' "$1" ;;
	99) exit 99 ;;
	*) CASES_FAILED="$CASES_FAILED $1" ;;
	esac
}
finish() {
	[ -z "$CASES_FAILED" ] || fail "failed cases:$CASES_FAILED"
	exit 0
}

# example_columns: the example row's seven mapped columns, '|'-separated (to compare).
example_columns() {
	sql "$EXDB" "SELECT output_textout_file, output_hdf4_file, output_hdf5_file,
		output_chemchk_file, output_ctrl_ind_file, input_pdrnew_inp_file, input_json_file
		FROM pdr_model_jobs WHERE id = 1"
}

# ---- a catalogue locked by another process ----------------------------------------------------
# hold_lock DB: another sqlite3 process takes an exclusive lock on DB and keeps it until
# release_lock.  Returns once the lock is held.
hold_lock() {
	rm -f "$T/lockfifo"
	mkfifo "$T/lockfifo"
	sqlite3 -batch -bail "$1" <"$T/lockfifo" >"$T/lock.out" 2>&1 &
	LOCKER=$!
	bg_started "$LOCKER"
	exec 3>"$T/lockfifo"
	printf '.timeout 5000\nBEGIN EXCLUSIVE;\nSELECT count(*) FROM sqlite_master;\nSELECT %s;\n' \
		"'lock-held'" >&3
	local i=0
	until grep -q '^lock-held$' "$T/lock.out"; do
		i=$((i + 1))
		if [ "$i" -ge 500 ] || ! kill -0 "$LOCKER" 2>/dev/null; then
			show "$T/lock.out"
			hard_error "could not lock $1 from another process"
		fi
		sleep 0.01
	done
	# Check from a third process that the lock is really there.
	if sqlite3 -batch -cmd '.timeout 0' "$1" 'BEGIN IMMEDIATE; ROLLBACK;' >/dev/null 2>&1; then
		hard_error "$1 is not locked although the other process holds BEGIN EXCLUSIVE"
	fi
}

release_lock() {
	printf 'COMMIT;\n.quit\n' >&3
	exec 3>&-
	wait "$LOCKER" || fail "the locking sqlite3 failed: $(cat "$T/lock.out")"
	rm -f "$T/lockfifo"
}

# ---- test servers ------------------------------------------------------------------------------
# start_server SCRIPT DIR: runs tests/SCRIPT DIR (a server start script: exit 99 when a program
# is missing) and sources DIR/env, the server's settings.
start_server() {
	local rc=0
	sh "$TESTS_DIR/$1" "$2" >"$T/$1.log" 2>&1 || rc=$?
	[ "$rc" -ne 99 ] || { show "$T/$1.log"; hard_error "$1: a program is missing"; }
	[ "$rc" -eq 0 ] || { show "$T/$1.log"; hard_error "$1 $2 failed"; }
	. "$2/env"
}

# start_sshd DIR: starts (or restarts) the test sshd of DIR and sources DIR/env.
start_sshd() {
	start_server sshd-start.sh "$1"
}

# ---- background publishes ----------------------------------------------------------------------
# alive PID: PID is a running process (not ended, not a zombie waiting to be reaped).
alive() {
	local st
	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]
}

# case_bg PID: a background process started inside a run_case function: killed when the case
# ends, however it ends (the exit of a case's subshell does not run the script's cleanup).  Only
# for use inside a case: it sets the subshell's EXIT trap.  A PID is killed only while it is
# still a child of the case's shell: one the case has already waited for may have been reused
# by an unrelated process (pid_max is 32768 on some machines), a test server's among them.
case_bg() {
	CASE_PIDS="${CASE_PIDS:-} $1"
	CASE_SELF=$(exec sh -c 'echo $PPID')
	trap 'for p in $CASE_PIDS; do
		[ "$(ppid_of "$p")" = "$CASE_SELF" ] && kill -KILL "$p" 2>/dev/null
	done; true' EXIT
}

# ppid_of PID: the parent PID of PID (empty when PID does not exist).  The fields are read after
# the command name, which may hold spaces and parentheses.
ppid_of() {
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2
}

# wait_until PID WHAT CMD...: polls CMD every 10 ms until it succeeds; fails when PID (a
# background publish) ends first, or after 30 s.  WHAT names the awaited state in the message.
wait_until() {
	local pid=$1 what=$2 i=0
	shift 2
	until "$@"; do
		alive "$pid" || fail "process $pid ended before $what"
		i=$((i + 1))
		[ "$i" -lt 3000 ] || fail "no $what after 30 s"
		sleep 0.01
	done
}

# has_temp DIR [SUFFIX [MINSIZE]]: a .jobpub-*SUFFIX file exists below DIR (of more than MINSIZE
# bytes when given).
has_temp() {
	local found
	if [ -n "${3:-}" ]; then
		found=$(find "$1" -name ".jobpub-*${2:-}" -size "+${3}c" -print 2>/dev/null | head -n 1)
	else
		found=$(find "$1" -name ".jobpub-*${2:-}" -print 2>/dev/null | head -n 1)
	fi
	[ -n "$found" ]
}

# assert_json FILE: FILE holds one well-formed JSON document (needs python3).
assert_json() {
	python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$1" 2>"$T/json.err" || {
		show "$1"
		show "$T/json.err"
		fail "${1##*/} is not valid JSON"
	}
}
