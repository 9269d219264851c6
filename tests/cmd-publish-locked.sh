#!/bin/sh
# A catalogue locked by another process past --db-timeout: exit 75 after about the timeout, a
# message that says it is locked, nothing staged at the destination, and once the lock is gone
# the job's row is unchanged and no half-recorded attempt or file rows exist.  As nothing in
# the catalogue then says the job wants publishing, publish queues it in the spool, where
# `republish` finds it (issue 13, defect 9).
. "$(dirname "$0")/lib.sh"
need mkfifo date awk
JOBPUB_SPOOL=$T/spool
export JOBPUB_SPOOL

# hold_lock DB: another sqlite3 process takes an exclusive lock on DB and keeps it until
# release_lock.  Returns once the lock is held.
hold_lock() {
	mkfifo "$T/lockfifo"
	sqlite3 -batch -bail "$1" <"$T/lockfifo" >"$T/lock.out" 2>&1 &
	LOCKER=$!
	bg_started "$LOCKER"
	exec 3>"$T/lockfifo"
	printf '.timeout 5000\nBEGIN EXCLUSIVE;\nSELECT count(*) FROM sqlite_master;\nSELECT %s;\n' \
		"'lock-held'" >&3
	i=0
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

now() {
	date +%s.%N
}

# locked_publish: publishes the example while its catalogue is locked; checks everything.
locked_publish() {
	row_before=$(sql "$EXDB" "SELECT * FROM pdr_model_jobs")
	attempts_before=$(n_attempts "$EXDB")
	hold_lock "$EXDB"
	t0=$(now)
	expect_rc 75 publish_example --db-timeout 1
	t1=$(now)
	elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	awk -v e="$elapsed" 'BEGIN { exit !(e >= 0.9 && e <= 3.5) }' ||
		fail "publish gave up after $elapsed s with --db-timeout 1 (expected about 1 s)"
	assert_grep '^jobpub: ' "$ERR"
	assert_grep 'locked|busy' "$ERR"
	assert_absent "$T/archive"
	assert_no_temps "$T"
	assert_grep "job 1: nothing recorded in the catalogue; queued in $JOBPUB_SPOOL/1.json" "$ERR"
	[ -f "$JOBPUB_SPOOL/1.json" ] || fail "no spool entry for the job whose attempt was not recorded"
	release_lock
	expect_rc 0 "$JOBPUB" republish --db "$EXDB" --dry-run
	assert_grep '^job 1: would republish \(status spooled as 1\) ' "$OUT"
	assert_eq "$(sql "$EXDB" "SELECT * FROM pdr_model_jobs")" "$row_before" "the job's row"
	assert_eq "$(n_attempts "$EXDB")" "$attempts_before" "attempt rows"
	if [ "$attempts_before" != 0 ]; then
		assert_eq "$(sql "$EXDB" "SELECT count(*) FROM jobpub_attempts WHERE outcome = 'running'
			OR finished_at IS NULL")" 0 "unfinished attempt rows"
		assert_eq "$(sql "$EXDB" "SELECT count(*) FROM jobpub_files")" 0 "jobpub_files rows"
	fi
	# Once the lock is gone the same command works.
	expect_rc 0 publish_example --db-timeout 1
	assert_eq "$(row_status "$EXDB")" finished "status after the lock is gone"
	expect_rc 0 "$JOBPUB" republish --db "$EXDB" --dry-run
	assert_grep '^republish: 0 jobs$' "$OUT"
	rm -rf "$JOBPUB_SPOOL"
}

# A catalogue jobpub has never opened (rollback journal: the lock also blocks readers).
fresh_catalogue() {
	make_example
	locked_publish
}

# A catalogue in WAL mode with jobpub's tables: reading works, writing waits for the lock.
wal_catalogue() {
	make_example
	expect_rc 0 "$JOBPUB" publish --job 1 --manifest "$EXMAN" --workdir "$EXJOB" --db "$EXDB" \
		--dest "file://$T/dry" --set "model=$EXMODEL" --dry-run
	assert_absent "$T/dry"
	sql "$EXDB" "PRAGMA journal_mode = WAL" >/dev/null
	assert_eq "$(sql "$EXDB" "PRAGMA journal_mode")" wal "journal mode"
	locked_publish
}

# The spool is shared with `enqueue`, which files entries under Slurm job IDs: Slurm job 5's
# request for catalogue job 1 is 5.json.  A locked publish of catalogue job 5 must not replace
# it; it queues under the next free name.
other_jobs_entry() {
	make_example
	mkdir -p "$T/elsewhere"
	SLURM_JOB_ID=5 expect_rc 0 "$JOBPUB" enqueue --job 1 --manifest "$EXMAN" --workdir "$EXJOB" \
		--db "$EXDB" --dest "file://$T/archive/\${model}" --set "model=$EXMODEL"
	assert_grep '"job":"1"' "$JOBPUB_SPOOL/5.json"
	before=$(cat "$JOBPUB_SPOOL/5.json")
	hold_lock "$EXDB"
	expect_rc 75 "$JOBPUB" publish --job 5 --manifest "$EXMAN" --workdir "$EXJOB" --db "$EXDB" \
		--dest "file://$T/archive/\${model}" --set "model=$EXMODEL" --db-timeout 1
	release_lock
	assert_eq "$(cat "$JOBPUB_SPOOL/5.json")" "$before" "Slurm job 5's entry for catalogue job 1"
	assert_grep "job 5: nothing recorded in the catalogue; queued in $JOBPUB_SPOOL/5~2.json" "$ERR"
	assert_grep '"job":"5"' "$JOBPUB_SPOOL/5~2.json"
	assert_grep '"key":"5~2"' "$JOBPUB_SPOOL/5~2.json"
	rm -rf "$JOBPUB_SPOOL"
}

run_case fresh_catalogue
run_case other_jobs_entry
run_case wal_catalogue
finish
