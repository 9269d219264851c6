#!/bin/sh
# The fixed, small set of seeded faults that `make check` runs (the full run is `make
# check-faults`, see doc/reliability.md): tests/faults/run.py with the seeds below, for each
# backend (file://, sftp:// through the test sshd, s3:// through the test RGW).  Each seed is
# one run: a fault at a random moment, tests/invariants, gc --apply, republish, identical
# hashes, tests/invariants --strict.  The seeds cover every fault kind of each backend, and the
# regressions found by the full run.
#
# Before them, regressions the harness found, made deterministic (or nearly):
#   - gc and verify on a destination whose directory does not exist (a publisher SIGKILLed
#     before it made it): gc exits 0 and reports the recorded files missing, verify exits 1
#     (they exited 74 on file:// and 69 on sftp://; found by sigkill and auth-revoke runs);
#   - SIGTERM during an SFTP login exits 75, not 77 "refused the login" (found by sigterm runs).
. "$(dirname "$0")/lib.sh"
need python3 ssh-keygen ssh-keyscan curl
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
RUN=$TESTS_DIR/faults/run.py

# ---- gc / verify on a destination that was never made ----
make_mini
expect_rc 0 publish_mini
rm -rf -- "$MARCHIVE"
expect_rc 0 "$JOBPUB" gc --db "$MDB" --older-than 0s
assert_grep '^  missing +file://.*/results/run-a/data.bin' "$OUT"
expect_rc 1 "$JOBPUB" verify --db "$MDB"
assert_grep 'data.bin: missing' "$OUT"

export HOME=$T/home
mkdir -p "$HOME"
unset SSH_AUTH_SOCK
trap 'sh "$TESTS_DIR/sshd-stop.sh" "$T/sshd" KILL >/dev/null 2>&1 || true; cleanup' EXIT
chmod 0711 "$T"
start_sshd "$T/sshd"
make_mini
SD=$SSHD_ROOT/never
expect_rc 0 publish_mini --dest "sftp://$SSH_USER@127.0.0.1:$SSHD_PORT$SD" --identity "$SSH_KEY" \
	--known-hosts "$SSHD_KNOWN_HOSTS"
rm -rf -- "$SD"
expect_rc 0 "$JOBPUB" gc --db "$MDB" --older-than 0s --identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS"
assert_grep '^  missing +sftp://.*/results/run-a/data.bin' "$OUT"
echo "ok: gc and verify on a destination never made"

# SIGTERM while an SFTP lane logs in: the interrupted login is a temporary failure (75), not
# "refused the login" (77, which is never retried).  40 publishes with 1-3 lanes, each
# SIGTERMed at a moment drawn from a fixed seed in 0.08-0.5 s (about one in seven met a login
# before the fix).
make_mini
mkdir -p "$MJOB/many"
for i in 1 2 3 4 5; do head -c 5000 /dev/urandom >"$MJOB/many/f$i"; done
printf '  - name: many\n    glob: many/f*\n    to: results/many/${basename}\n' >>"$MMAN"
for i in $(seq 40); do
	d=$(awk -v s="$i" 'BEGIN { srand(s); printf "%.3f", 0.08 + rand() * 0.42 }')
	rm -rf -- "$SSHD_ROOT/login"
	"$JOBPUB" publish --job 1 --manifest "$MMAN" --workdir "$MJOB" --db "$MDB" \
		--dest "sftp://$SSH_USER@127.0.0.1:$SSHD_PORT$SSHD_ROOT/login" --identity "$SSH_KEY" \
		--known-hosts "$SSHD_KNOWN_HOSTS" --parallel $((i % 3 + 1)) >"$OUT" 2>"$ERR" &
	p=$!
	bg_started "$p"
	sleep "$d"
	kill -TERM "$p" 2>/dev/null || true
	rc=0
	wait "$p" || rc=$?
	case $rc in
	0 | 75) ;;
	# 143: SIGTERM while jobpub was still being loaded, before any handler could exist.
	143) ;;
	*) show "$ERR"; fail "SIGTERM after $d s during an SFTP publish: exit $rc, expected 75" ;;
	esac
done
sh "$TESTS_DIR/sshd-stop.sh" "$T/sshd" KILL >/dev/null 2>&1 || true
echo "ok: SIGTERM during the SFTP login"

# ---- the seeded runs ----
# quick BACKEND SEEDS [FAULTS]: run.py for these seeds; fails on any violation or crash.
quick() {
	local rc=0
	python3 "$RUN" --backend "$1" --seeds "$2" ${3:+--faults "$3"} --results "$T/results-$1.txt" \
		>"$T/run-$1.out" 2>"$T/run-$1.err" || rc=$?
	[ "$rc" -ne 99 ] || hard_error "faults/run.py --backend $1: a server program is missing"
	cat "$T/run-$1.out"
	if [ "$rc" -ne 0 ]; then
		show "$T/run-$1.err"
		fail "faults/run.py --backend $1 --seeds $2${3:+ --faults $3}: exit $rc"
	fi
}

# file://: every kind at least once.
quick file 1,3,5,7,9,10
# sftp://: every kind; 15 and 16 are SIGKILLs early in the publish, where the destination
# directory did not exist yet (gc failed on it), as did 103 with an auth-revoke.
quick sftp 2,4,5,9,13,14,15,16,17,22,30
quick sftp 103 auth-revoke
# s3://: every kind.
quick s3 1,3,5,9,11,12,14,16
exit 0
