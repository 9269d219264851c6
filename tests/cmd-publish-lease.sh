#!/bin/sh
# One publisher per job.  A second publish of a job that is being published exits 75 naming the
# holder (host:pid since ...) and changes nothing, while the job's status reads 'publishing';
# the first one still completes.  A lease whose holder was killed, and an expired lease of
# another host, are taken over with a warning (the dead attempt becomes 'abandoned'); a live
# lease of another host is refused.  20 different jobs publish at once into one catalogue and
# one destination directory.
. "$(dirname "$0")/lib.sh"
need head stat uname cut

SIZE=$((1024 * 1024 * 1024)) # 1 GiB of real data: a publish of it lasts well over a second
HOST=$(uname -n)
NOPID=4194305 # above the largest pid Linux can give (2^22): no process has it

# A catalogue of jobpub's own (table jobs), one destination, a work directory with a big file.
# Every job publishes the same files under its own directory ${job}/.
DB=$T/catalog.db
ARCH=$T/archive
WORK=$T/job
MAN=$T/manifest.yaml
mkdir -p "$WORK/out"
printf 'result\n' >"$WORK/out/result.txt"
head -c "$SIZE" /dev/zero >"$WORK/out/big.dat" || hard_error "cannot write a 1 GiB file in $T"
[ "$(stat -c %b "$WORK/out/big.dat")" -ge $((SIZE / 512)) ] || hard_error "big.dat is sparse"
write_manifest "$MAN" <<EOF
destination: file://$ARCH
outputs:
  - name: result
    path: out/result.txt
    to: \${job}/result.txt
  - name: big
    path: out/big.dat
    to: \${job}/big.dat
EOF

# publish JOB [OPTION]...: publishes job JOB of $WORK.
publish() {
	local job=$1
	shift
	"$JOBPUB" publish --job "$job" --manifest "$MAN" --workdir "$WORK" --db "$DB" "$@"
}

# start_publish JOB: publish JOB in the background (jobpub itself, so signals reach it); its pid
# in PUB, its output in $T/pub-JOB.out and .err.
start_publish() {
	"$JOBPUB" publish --job "$1" --manifest "$MAN" --workdir "$WORK" --db "$DB" \
		>"$T/pub-$1.out" 2>"$T/pub-$1.err" &
	PUB=$!
	bg_started "$PUB"
}

# stop_mid_transfer JOB: waits until JOB's big.dat is staged in part, then stops the publisher.
stop_mid_transfer() {
	wait_until "$PUB" "a temporary big.dat with data for job $1" has_temp "$ARCH/$1" big.dat 0
	kill -STOP "$PUB"
	local tmp
	tmp=$(find "$ARCH/$1" -name '.jobpub-*big.dat' | head -n 1)
	[ "$(stat -c %s "$tmp")" -lt "$SIZE" ] ||
		hard_error "publish wrote all of 1 GiB before it could be stopped; make SIZE larger"
}

# published_ok JOB: the job is published, with its files complete and nothing of it pending.
published_ok() {
	assert_eq "$(row_status "$DB" jobs "'$1'")" published "status of job $1"
	cmp -s "$WORK/out/big.dat" "$ARCH/$1/big.dat" || fail "job $1: big.dat differs from its source"
	cmp -s "$WORK/out/result.txt" "$ARCH/$1/result.txt" || fail "job $1: result.txt differs"
	assert_eq "$(sql "$DB" "SELECT count(*) FROM jobpub_leases WHERE job = '$1'")" 0 \
		"leases left for job $1"
	assert_eq "$(sql "$DB" "SELECT count(*) FROM jobpub_files WHERE job = '$1'")" 2 \
		"jobpub_files rows of job $1"
}

# lease_row JOB: the job's lease as 'host|pid|token|since|expires', or nothing.
lease_row() {
	sql "$DB" "SELECT host, pid, token, since, expires FROM jobpub_leases WHERE job = '$1'"
}

# ---- two publishes of one job at once ----------------------------------------------------------
same_job_twice() {
	local before
	start_publish 1
	case_bg "$PUB"
	stop_mid_transfer 1
	# While the first runs: status 'publishing', a lease held by it.
	assert_eq "$(row_status "$DB" jobs "'1'")" publishing "status while the first publish runs"
	assert_eq "$(sql "$DB" "SELECT host || ':' || pid FROM jobpub_leases WHERE job = '1'")" \
		"$HOST:$PUB" "the lease's holder"
	expect_rc 0 "$JOBPUB" status --db "$DB" 1
	assert_grep "^being published now by $HOST:$PUB since [0-9]" "$OUT"
	before=$(lease_row 1)
	snapshot "$ARCH" "$T/snap1"
	sql "$DB" "SELECT * FROM jobpub_attempts ORDER BY id" >"$T/attempts1"

	expect_rc 75 publish 1
	assert_grep "^jobpub: .*job 1 is being published by $HOST:$PUB since [0-9]" "$ERR"
	# The refused publish changed nothing: no attempt of its own, the same lease, the same files.
	sql "$DB" "SELECT * FROM jobpub_attempts ORDER BY id" >"$T/attempts2"
	cmp -s "$T/attempts1" "$T/attempts2" || {
		diff "$T/attempts1" "$T/attempts2" >&2 || true
		fail "the refused publish changed jobpub_attempts"
	}
	assert_eq "$(sql "$DB" "SELECT count(*) FROM jobpub_attempts WHERE job = '1'")" 1 \
		"attempts of job 1"
	assert_eq "$(lease_row 1)" "$before" "the lease after the refused publish"
	assert_eq "$(row_status "$DB" jobs "'1'")" publishing "status after the refused publish"
	snapshot "$ARCH" "$T/snap2"
	cmp -s "$T/snap1" "$T/snap2" || {
		diff "$T/snap1" "$T/snap2" >&2 || true
		fail "the refused publish changed the destination"
	}

	# The first one goes on and completes.
	kill -CONT "$PUB"
	local rc=0
	wait "$PUB" || rc=$?
	[ "$rc" -eq 0 ] || { show "$T/pub-1.err"; fail "the first publish exited $rc"; }
	published_ok 1
	assert_eq "$(sql "$DB" "SELECT group_concat(outcome) FROM jobpub_attempts WHERE job = '1'")" \
		published "attempts of job 1"
	assert_no_temps "$ARCH/1"
}

# ---- the holder was killed: its lease is taken over --------------------------------------------
dead_holder() {
	local dead
	start_publish 2
	case_bg "$PUB"
	stop_mid_transfer 2
	dead=$PUB
	kill -KILL "$dead"
	wait "$dead" 2>/dev/null || true
	alive "$dead" && fail "publisher $dead survived SIGKILL"
	assert_eq "$(row_status "$DB" jobs "'2'")" publishing "status after SIGKILL"
	assert_eq "$(sql "$DB" "SELECT pid FROM jobpub_leases WHERE job = '2'")" "$dead" \
		"the dead publisher's lease"
	assert_absent "$ARCH/2/big.dat"

	expect_rc 0 publish 2
	assert_grep "took over the lease" "$ERR"
	assert_grep_fixed "$HOST:$dead" "$ERR"
	published_ok 2
	assert_eq "$(sql "$DB" "SELECT group_concat(outcome || ' ' || pid || ' ' ||
		(finished_at IS NOT NULL), ',') FROM (SELECT * FROM jobpub_attempts WHERE job = '2'
		ORDER BY id)")" "abandoned $dead 1,published $(sql "$DB" "SELECT pid FROM
		jobpub_attempts WHERE job = '2' ORDER BY id DESC LIMIT 1") 1" \
		"attempts of job 2 (outcome, pid, finished): the killed one abandoned"
}

# put_lease JOB EXPIRES: another host's publisher holds JOB's lease until EXPIRES (epoch s), with
# a 'running' attempt as that publisher would have recorded it.
put_lease() {
	sql "$DB" "INSERT INTO jobpub_leases (job, host, pid, token, since, expires)
		VALUES ('$1', 'node17', $NOPID, '0123456789abcdef', '2026-01-02T10:42:03Z', $2);
		INSERT INTO jobpub_attempts (job, token, started_at, host, pid, job_table, id_column,
		status_column) VALUES ('$1', '0123456789abcdef', '2026-01-02T10:42:03Z', 'node17',
		$NOPID, 'jobs', 'id', 'status')"
}

# tables_exist: the catalogue has jobpub's tables (a small job 90 of its own is published).
tables_exist() {
	write_manifest "$T/small.yaml" <<EOF
destination: file://$T/small
outputs:
  - name: result
    path: out/result.txt
    to: \${job}/result.txt
EOF
	expect_rc 0 "$JOBPUB" publish --job 90 --manifest "$T/small.yaml" --workdir "$WORK" --db "$DB"
}

# ---- an expired lease of another host is taken over --------------------------------------------
expired_other_host() {
	tables_exist
	put_lease 3 "$(($(date +%s) - 60))"
	expect_rc 0 publish 3
	assert_grep "took over the lease of node17:$NOPID since 2026-01-02T10:42:03Z" "$ERR"
	assert_grep "expired" "$ERR"
	published_ok 3
	assert_eq "$(sql "$DB" "SELECT group_concat(host || ' ' || outcome, ',') FROM
		(SELECT * FROM jobpub_attempts WHERE job = '3' ORDER BY id)")" \
		"node17 abandoned,$HOST published" "attempts of job 3"
}

# ---- a live lease of another host is refused ---------------------------------------------------
live_other_host() {
	local before
	tables_exist
	put_lease 4 "$(($(date +%s) + 3600))"
	before=$(lease_row 4)
	sql "$DB" "SELECT * FROM jobpub_attempts ORDER BY id" >"$T/attempts1"
	sql "$DB" "SELECT * FROM jobs ORDER BY id" >"$T/jobs1"
	snapshot "$ARCH" "$T/snap1"

	expect_rc 75 publish 4
	assert_grep "^jobpub: .*job 4 is being published by node17:$NOPID since 2026-01-02T10:42:03Z" \
		"$ERR"
	assert_eq "$(lease_row 4)" "$before" "node17's lease after the refused publish"
	sql "$DB" "SELECT * FROM jobpub_attempts ORDER BY id" >"$T/attempts2"
	cmp -s "$T/attempts1" "$T/attempts2" || fail "the refused publish changed jobpub_attempts"
	sql "$DB" "SELECT * FROM jobs ORDER BY id" >"$T/jobs2"
	cmp -s "$T/jobs1" "$T/jobs2" || fail "the refused publish changed the jobs table"
	snapshot "$ARCH" "$T/snap2"
	cmp -s "$T/snap1" "$T/snap2" || fail "the refused publish changed the destination"
	assert_absent "$ARCH/4"
}

# ---- 20 jobs at once, one catalogue, one destination directory ----------------------------------
twenty_jobs() {
	local db=$T/many.db arch=$T/many man=$T/many.yaml i pids= p rc bad=
	write_manifest "$man" <<EOF
destination: file://$arch
outputs:
  - name: data
    path: data.bin
    to: job-\${job}.bin
  - name: text
    path: result.txt
    to: job-\${job}.txt
EOF
	# Each job has its own content, so that a file published under another job's name shows.
	for i in $(seq 101 120); do
		mkdir -p "$T/w$i"
		head -c 1048576 /dev/urandom >"$T/w$i/data.bin"
		printf 'job %s\n' "$i" >"$T/w$i/result.txt"
	done
	# A fresh catalogue: the 20 publishers also race to create its tables.
	for i in $(seq 101 120); do
		"$JOBPUB" publish --job "$i" --manifest "$man" --workdir "$T/w$i" --db "$db" \
			>"$T/out$i" 2>"$T/err$i" &
		p=$!
		case_bg "$p"
		pids="$pids $i:$p"
	done
	for p in $pids; do
		rc=0
		wait "${p#*:}" || rc=$?
		if [ "$rc" -ne 0 ]; then
			printf 'job %s exited %s:\n' "${p%:*}" "$rc" >&2
			show "$T/err${p%:*}"
			bad="$bad ${p%:*}"
		fi
	done
	[ -z "$bad" ] || fail "concurrent publishes failed:$bad"
	assert_eq "$(sql "$db" "SELECT status || ' ' || count(*) FROM jobs GROUP BY status")" \
		"published 20" "statuses of the 20 jobs"
	assert_eq "$(sql "$db" "SELECT outcome || ' ' || count(*) FROM jobpub_attempts
		GROUP BY outcome")" \
		"published 20" "attempts of the 20 jobs"
	assert_eq "$(sql "$db" "SELECT count(*) FROM jobpub_files")" 40 "jobpub_files rows"
	assert_eq "$(sql "$db" "SELECT count(*) FROM jobpub_leases")" 0 "leases left"
	for i in $(seq 101 120); do
		cmp -s "$T/w$i/data.bin" "$arch/job-$i.bin" || fail "job-$i.bin differs from job $i's data"
		cmp -s "$T/w$i/result.txt" "$arch/job-$i.txt" || fail "job-$i.txt differs from job $i's"
	done
	assert_eq "$(count_files "$arch")" 40 "files in the destination directory"
	assert_no_temps "$arch"
}

run_case same_job_twice
run_case dead_holder
run_case expired_other_host
run_case live_other_host
run_case twenty_jobs
finish
