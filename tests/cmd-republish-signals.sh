#!/bin/sh
# The publishes `jobpub republish` runs are processes of their own: a SIGTERM sent to one of
# them stops that one only (its siblings go on and publish), it ends with 75 (interrupted), and
# the signal republish passes on to a child that also got it directly (Ctrl-C reaches the whole
# process group) counts once: the child rolls back rather than exiting at once.
#
# The children are held at a known point by a write lock on the catalogue (WAL mode: republish
# still reads it), released once the signals are sent.
. "$(dirname "$0")/lib.sh"
need mkfifo seq sort

DB=$T/catalog.db
ARCH=$T/archive
MAN=$T/manifest.yaml
write_manifest "$MAN" <<EOF
destination: file://$ARCH
outputs:
  - name: result
    path: out/result.txt
    to: run-\${job}/result.txt
EOF

# failed_jobs: jobs 1 and 2 failed_storage (their output missing), then the output is back.
failed_jobs() {
	rm -rf "$T/w" "$ARCH" "$DB"
	for i in 1 2; do
		mkdir -p "$T/w/$i/out"
		expect_rc 66 "$JOBPUB" publish --job "$i" --manifest "$MAN" --workdir "$T/w/$i" --db "$DB"
		printf 'result of job %s\n' "$i" >"$T/w/$i/out/result.txt"
	done
	sql "$DB" "PRAGMA journal_mode = WAL" >/dev/null
}

# children PID: the child processes of PID, in the order they were started.
children() {
	for c in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
		printf '%s %s\n' "$(cut -d' ' -f22 "/proc/$c/stat" 2>/dev/null)" "$c"
	done | sort -n | cut -d' ' -f2
}

two_children() {
	[ "$(children "$RP" | wc -l)" -eq 2 ]
}

start_republish() {
	failed_jobs
	hold_lock "$DB"
	case_bg "$LOCKER"
	"$JOBPUB" republish --db "$DB" --parallel 2 --db-timeout 30 >"$OUT" 2>"$ERR" &
	RP=$!
	case_bg "$RP"
	wait_until "$RP" "two republish children" two_children
	FIRST=$(children "$RP" | head -n 1)
	SECOND=$(children "$RP" | tail -n 1)
	sleep 0.2 # both wait for the catalogue's lock now
}

# SIGTERM to the second child: it stops; the first one publishes.
one_child() {
	start_republish
	kill -TERM "$SECOND"
	sleep 0.3
	alive "$FIRST" || fail "the first child ended when its sibling was signalled"
	release_lock
	RC=0
	wait "$RP" || RC=$?
	[ "$RC" -eq 75 ] || { show "$OUT"; show "$ERR"; fail "republish: exit $RC, expected 75"; }
	assert_eq "$(grep -c ': published$' "$OUT")" 1 "jobs published"
	assert_grep '^job [12]: failed \(exit 75\)' "$OUT"
	assert_eq "$(sql "$DB" "SELECT count(*) FROM jobs WHERE status = 'published'")" 1 "published jobs"
}

# The same SIGTERM to republish and to both children (as a process group gets it): every child
# counts it once: it rolls back and records the attempt as interrupted, no "second signal".
group_signal() {
	start_republish
	kill -TERM "$FIRST" "$SECOND" "$RP"
	sleep 0.3
	release_lock
	RC=0
	wait "$RP" || RC=$?
	[ "$RC" -eq 75 ] || { show "$OUT"; show "$ERR"; fail "republish: exit $RC, expected 75"; }
	assert_no_grep 'second signal' "$ERR"
	assert_eq "$(grep -c 'failed (exit 75)' "$OUT")" 2 "jobs interrupted"
}

run_case one_child
run_case group_signal
finish
