#!/bin/sh
# SIGTERM in the middle of a large file: exit 75, nothing under a final name, no temporary file
# left, the job failed_storage, the attempt recorded as interrupted.  SIGKILL at the same point:
# still nothing under a final name, only jobpub's temporary names remain, and a new publish
# succeeds.
#
# To hit "the middle of the file" on any machine, the publish is stopped (SIGSTOP) as soon as
# its temporary file holds data, checked to be partial, then sent the signal and continued.
#
# Then SIGTERM in the other phases, each ending with 75 within 5 s (JP_STOP_BOUND_S) and the
# invariants (tests/invariants): already pending when jobpub starts (nothing recorded, the
# catalogue byte for byte unchanged); while a glob of 100,000 files is planned (the job
# failed_storage, interrupted, the destination never opened); over sftp:// in the middle of a
# big file (as over file://, nothing left); over sftp:// on a connection gone silent (the lanes
# are cut 1 s after the signal: failed_storage, interrupted, temporaries left only where
# `jobpub gc` reports them); and a second SIGTERM, which ends jobpub at once.
#
# Needs openssh-server (/usr/sbin/sshd) and python3 for the sftp cases.
. "$(dirname "$0")/lib.sh"
need head stat python3 seq xargs
[ -x /usr/sbin/sshd ] || hard_error "/usr/sbin/sshd is missing (apt-get install openssh-server)"
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
unset SSH_AUTH_SOCK SSH_AGENT_PID JOBPUB_SSH_PASSPHRASE_FILE
export HOME="$T/home"
mkdir -p "$HOME"

SIZE=$((1024 * 1024 * 1024)) # 1 GiB: > 1 s to publish here, and real data (not a sparse hole)

make_mini
head -c "$SIZE" /dev/zero >"$MJOB/out/big.dat" || hard_error "cannot write a 1 GiB file in $T"
[ "$(stat -c %b "$MJOB/out/big.dat")" -ge $((SIZE / 512)) ] || hard_error "big.dat is sparse"
# big_manifest FILE DEST: the manifest of the big job (a small file and big.dat) to DEST.
big_manifest() {
	write_manifest "$1" <<EOF
destination: $2
catalog:
  table: runs
  id-column: id
  status-column: status
outputs:
  - name: result
    path: out/result.txt
    to: results/result.txt
    column: result_url
  - name: big
    path: out/big.dat
    to: big/big.dat
    column: data_url
EOF
}
big_manifest "$MMAN" "$MURL"

# start_publish: runs the publish in the background, its pid in PUB.
start_publish() {
	# jobpub itself, not a function in a subshell, so that the signals reach it.
	"$JOBPUB" publish --job 1 --manifest "$MMAN" --workdir "$MJOB" --db "$MDB" \
		>"$T/pub.out" 2>"$T/pub.err" &
	PUB=$!
	bg_started "$PUB"
}

# stop_mid_file: waits until the big file's temporary name holds data, stops the publish there
# and checks that the temporary file is partial.  Its path is in TMPFILE.
stop_mid_file() {
	local i=0
	while :; do
		TMPFILE=$(find "$MARCHIVE" -name '.jobpub-*big.dat' -size +0c -print 2>/dev/null | head -n 1)
		[ -z "$TMPFILE" ] || break
		if ! kill -0 "$PUB" 2>/dev/null; then
			show "$T/pub.err"
			fail "publish ended before a temporary big.dat with data appeared"
		fi
		i=$((i + 1))
		[ "$i" -lt 3000 ] || fail "no temporary big.dat after 30 s"
		sleep 0.01
	done
	kill -STOP "$PUB"
	case ${TMPFILE##*/} in
	.jobpub-*.big.dat) ;;
	*) fail "temporary name ${TMPFILE##*/} is not .jobpub-<token>.big.dat" ;;
	esac
	[ "$(stat -c %s "$TMPFILE")" -lt "$SIZE" ] ||
		hard_error "publish wrote all of 1 GiB before it could be stopped; make SIZE larger"
}

# ---- SIGTERM ----
start_publish
stop_mid_file
t0=$(date +%s)
kill -TERM "$PUB"
kill -CONT "$PUB"
rc=0
wait "$PUB" || rc=$?
t1=$(date +%s)
[ "$rc" -eq 75 ] || { show "$T/pub.err"; fail "exit code $rc after SIGTERM, expected 75"; }
[ $((t1 - t0)) -le 5 ] || fail "publish took $((t1 - t0)) s to stop after SIGTERM"
assert_grep '^jobpub: ' "$T/pub.err"
assert_absent "$MARCHIVE/big/big.dat"
assert_absent "$MARCHIVE/results/result.txt"
assert_no_temps "$T"
assert_eq "$(count_files "$MARCHIVE")" 0 "files at the destination after SIGTERM"
assert_eq "$(row_status "$MDB" runs)" failed_storage "status after SIGTERM"
assert_eq "$(sql "$MDB" "SELECT quote(result_url) || ' ' || quote(data_url) FROM runs")" \
	"NULL NULL" "mapped columns after SIGTERM"
assert_eq "$(sql "$MDB" "SELECT outcome || ' ' || exit_code FROM jobpub_attempts")" \
	"interrupted 75" "the attempt row after SIGTERM"
assert_eq "$(sql "$MDB" "SELECT count(*) FROM jobpub_files")" 0 "jobpub_files rows after SIGTERM"

# ---- SIGKILL at the same point ----
start_publish
stop_mid_file
kill -KILL "$PUB"
wait "$PUB" 2>/dev/null || true
assert_absent "$MARCHIVE/big/big.dat"
assert_absent "$MARCHIVE/results/result.txt"
left=$(find "$MARCHIVE" ! -type d)
[ -n "$left" ] || fail "SIGKILL: the temporary file vanished (expected it to remain)"
for f in $left; do
	case ${f##*/} in
	.jobpub-*) ;;
	*) fail "SIGKILL left $f, which is not a .jobpub-* temporary name" ;;
	esac
done
assert_grep_fixed "$TMPFILE" /dev/stdin <<EOF
$left
EOF
assert_eq "$(sql "$MDB" "SELECT count(*) FROM jobpub_files")" 0 "jobpub_files rows after SIGKILL"

# ---- a new publish after the SIGKILL succeeds ----
expect_rc 0 publish_mini
cmp -s "$MJOB/out/big.dat" "$MARCHIVE/big/big.dat" || fail "big.dat differs after re-publishing"
assert_eq "$(row_status "$MDB" runs)" published "status after re-publishing"

BOUND=5 # JP_STOP_BOUND_S in src/cli/cmd.h
mv "$MJOB/out/big.dat" "$T/big.dat" # for the sftp cases below (make_mini starts afresh)

# invariants [OPTION]...: tests/invariants on the current catalogue; fails on any violation.
invariants() {
	python3 "$TESTS_DIR/invariants" --db "$MDB" --jobpub "$JOBPUB" "$@" >"$T/inv.out" 2>&1 || {
		show "$T/inv.out"
		fail "tests/invariants found violations"
	}
}

# term_and_wait [2]: sends SIGTERM (twice with 2) to $PUB and waits for it; its exit code in RC,
# the whole seconds it took in SECS (fails beyond the bound plus 2 s of slack).
term_and_wait() {
	local t0 i=0
	t0=$(date +%s%N)
	kill -TERM "$PUB"
	[ "${1:-1}" -eq 1 ] || { sleep 0.05; kill -TERM "$PUB" 2>/dev/null || true; }
	while alive "$PUB"; do
		i=$((i + 1))
		[ "$i" -lt $(((BOUND + 2) * 100)) ] || { show "$T/pub.err"; fail "still running $((BOUND + 2)) s after SIGTERM"; }
		sleep 0.01
	done
	RC=0
	wait "$PUB" || RC=$?
	SECS=$((($(date +%s%N) - t0) / 1000000000))
}

# interrupted_invariant WHAT: the job failed_storage with its last attempt interrupted (75),
# mapped columns untouched, no jobpub_files row.
interrupted_invariant() {
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status after SIGTERM ($1)"
	assert_eq "$(sql "$MDB" "SELECT outcome || ' ' || exit_code FROM jobpub_attempts
		ORDER BY id DESC LIMIT 1")" "interrupted 75" "the attempt row after SIGTERM ($1)"
	assert_eq "$(sql "$MDB" "SELECT quote(result_url) || ' ' || quote(data_url) FROM runs")" \
		"NULL NULL" "mapped columns after SIGTERM ($1)"
	assert_eq "$(sql "$MDB" "SELECT count(*) FROM jobpub_files")" 0 "jobpub_files rows ($1)"
}

# ---- SIGTERM already pending when jobpub starts (blocked and sent before exec) ----
# The signal must act from the first instruction of main: exit 75, nothing recorded.
make_mini
cp "$MDB" "$T/before.db"
expect_rc 75 python3 -c 'import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
os.kill(os.getpid(), signal.SIGTERM)
os.execv(sys.argv[1], sys.argv[1:])' "$JOBPUB" publish --job 1 --manifest "$MMAN" \
	--workdir "$MJOB" --db "$MDB"
assert_grep '^jobpub: publish: interrupted by SIGTERM$' "$ERR"
cmp -s "$T/before.db" "$MDB" || fail "pending SIGTERM: the catalogue changed"
assert_absent "$MARCHIVE"

# ---- SIGTERM while a glob of 100,000 files is planned ----
make_mini
mkdir -p "$MJOB/many"
(cd "$MJOB/many" && seq -f 'f%06g' 1 100000 | xargs touch) || hard_error "cannot create 100,000 files"
cat >>"$MMAN" <<EOF
  - name: many
    glob: many/*
    to: many/\${basename}
EOF
# attempt_running: the attempt is recorded, just before planning starts.
attempt_running() {
	[ "$(sqlite3 -batch "$MDB" "SELECT count(*) FROM jobpub_attempts WHERE outcome = 'running'" \
		2>/dev/null)" = 1 ]
}
start_publish
wait_until "$PUB" "the attempt row" attempt_running
term_and_wait
[ "$RC" -eq 75 ] || { show "$T/pub.err"; fail "planning: exit $RC after SIGTERM, expected 75"; }
[ "$SECS" -le "$BOUND" ] || fail "planning: $SECS s to stop after SIGTERM"
assert_grep '^jobpub: publish: interrupted by SIGTERM$' "$T/pub.err"
assert_no_grep 'not stopped|second signal' "$T/pub.err"
interrupted_invariant planning
assert_absent "$MARCHIVE" # stopped before the destination was opened
invariants --dest "$MURL"

# ---- over sftp:// ----
trap '[ ! -f "$T/sshd/sshd.pid" ] || sh "$TESTS_DIR/sshd-stop.sh" "$T/sshd" KILL >/dev/null 2>&1 || true; cleanup' EXIT
start_sshd "$T/sshd"

# A manifest for the big file.
big_manifest "$T/big.yaml" x

# sftp_job DIR PORT KNOWN_HOSTS: the big job again, to sftp://127.0.0.1:PORT/DIR.
sftp_job() {
	make_mini
	ln "$T/big.dat" "$MJOB/out/big.dat"
	MARCHIVE=$1
	MURL=sftp://$SSH_USER@127.0.0.1:$2$1
	KH=$3
	sed -e "s|^destination:.*|destination: $MURL|" "$T/big.yaml" >"$MMAN"
}
start_sftp_publish() {
	"$JOBPUB" publish --job 1 --manifest "$MMAN" --workdir "$MJOB" --db "$MDB" \
		--identity "$SSH_KEY" --known-hosts "$KH" >"$T/pub.out" 2>"$T/pub.err" &
	PUB=$!
	bg_started "$PUB"
}

# In the middle of the big file, the connection healthy: as over file://, nothing left.
sftp_job "$SSHD_ROOT/mid" "$SSHD_PORT" "$SSHD_KNOWN_HOSTS"
start_sftp_publish
stop_mid_file
kill -CONT "$PUB"
term_and_wait
[ "$RC" -eq 75 ] || { show "$T/pub.err"; fail "sftp: exit $RC after SIGTERM, expected 75"; }
[ "$SECS" -le "$BOUND" ] || fail "sftp: $SECS s to stop after SIGTERM"
assert_grep '^jobpub: publish: interrupted by SIGTERM$' "$T/pub.err"
interrupted_invariant sftp
assert_absent "$MARCHIVE/big/big.dat"
assert_absent "$MARCHIVE/results/result.txt"
left=$(find "$MARCHIVE" -name '.jobpub-*' -print)
[ -z "$left" ] || { show "$T/pub.err"; fail "sftp: temporary files left: $left"; }
invariants --dest "$MURL" --identity "$SSH_KEY" --known-hosts "$KH"

# A connection gone silent (tests/relay.py stalls after 8 MiB: no FIN, no RST) under the
# default --stall of 60 s: the lanes are cut 1 s after the signal, the rollback runs.
rm -f "$T/relay.port"
python3 "$TESTS_DIR/relay.py" "$T/relay.port" "$SSHD_PORT" stall 8388608 2>"$T/relay.err" &
bg_started $!
i=0
while [ ! -s "$T/relay.port" ]; do
	i=$((i + 1))
	[ "$i" -lt 200 ] || { show "$T/relay.err"; hard_error "relay.py did not start"; }
	sleep 0.05
done
RPORT=$(cat "$T/relay.port")
printf '[127.0.0.1]:%s %s\n' "$RPORT" "$(cut -d' ' -f1,2 "$SSHD_HOSTKEY_PUB")" >"$HOME/relay_known_hosts"

# stalled_publish NAME: the sftp job through the relay, into NAME, once its transfer stalled.
stalled_publish() {
	sftp_job "$SSHD_ROOT/$1" "$RPORT" "$HOME/relay_known_hosts"
	start_sftp_publish
	wait_until "$PUB" "a temporary big.dat of 4 MB" has_temp "$MARCHIVE" big.dat 4000000
	sleep 1 # the relay has stopped forwarding by now
}

stalled_publish stall
term_and_wait
[ "$RC" -eq 75 ] || { show "$T/pub.err"; fail "stalled: exit $RC after SIGTERM, expected 75"; }
[ "$SECS" -le "$BOUND" ] || fail "stalled: $SECS s to stop after SIGTERM"
assert_grep '^jobpub: publish: interrupted by SIGTERM$' "$T/pub.err"
assert_no_grep 'not stopped|second signal' "$T/pub.err"
interrupted_invariant stalled
assert_absent "$MARCHIVE/big/big.dat"
assert_absent "$MARCHIVE/results/result.txt"
# Temporaries on the cut connections stay, where gc finds them.
invariants --dest "$MURL" --identity "$SSH_KEY" --known-hosts "$KH" --leftovers-ok

# A second SIGTERM ends jobpub at once (documented): 75, saying so.
stalled_publish second
term_and_wait 2
[ "$RC" -eq 75 ] || { show "$T/pub.err"; fail "second SIGTERM: exit $RC, expected 75"; }
[ "$SECS" -le 1 ] || fail "second SIGTERM: $SECS s to exit"
assert_grep '^jobpub: a second signal: exiting now' "$T/pub.err"
assert_absent "$MARCHIVE/big/big.dat"
exit 0
