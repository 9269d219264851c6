#!/bin/sh
# SIGTERM in the middle of a large file: exit 75, nothing under a final name, no temporary file
# left, the job failed_storage, the attempt recorded as interrupted.  SIGKILL at the same point:
# still nothing under a final name, only jobpub's temporary names remain, and a new publish
# succeeds.
#
# To hit "the middle of the file" on any machine, the publish is stopped (SIGSTOP) as soon as
# its temporary file holds data, checked to be partial, then sent the signal and continued.
. "$(dirname "$0")/lib.sh"
need head stat

SIZE=$((1024 * 1024 * 1024)) # 1 GiB: > 1 s to publish here, and real data (not a sparse hole)

make_mini
head -c "$SIZE" /dev/zero >"$MJOB/out/big.dat" || hard_error "cannot write a 1 GiB file in $T"
[ "$(stat -c %b "$MJOB/out/big.dat")" -ge $((SIZE / 512)) ] || hard_error "big.dat is sparse"
write_manifest "$MMAN" <<EOF
destination: $MURL
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
exit 0
