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
