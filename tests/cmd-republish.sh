#!/bin/sh
# `jobpub republish` of 50 failed jobs: 48 whose outputs are back get published (with the
# destination and --set values their attempt recorded, from any directory), 2 whose work
# directory is gone stay failed_storage with "outputs no longer on disk at DIR"; one line per
# job, a summary, a non-zero exit; every attempt stays in the history.  --dry-run, --job and
# --since select without publishing.
. "$(dirname "$0")/lib.sh"
need realpath seq

N=50
GONE="17 33" # the jobs whose work directory is deleted
DB=$T/catalog.db
ARCH=$T/archive
MAN=$T/manifest.yaml
W=$(realpath "$T")/w
# The manifest's own destination is not where the jobs went: they were published with --dest,
# which republish must take from the attempt, like each job's --set model=....
write_manifest "$MAN" <<EOF
destination: file://$T/wrong/\${model}
outputs:
  - name: result
    path: out/result.txt
    to: run-\${job}/result.txt
  - name: data
    path: out/data.bin
    to: run-\${job}/data.bin
EOF

model_of() {
	echo "grid$(($1 % 3))"
}

gone() {
	case " $GONE " in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

# republish [OPTION]...: from /, so that only what the catalogue recorded can find the files.
republish() {
	(cd / && "$JOBPUB" republish --db "$DB" "$@")
}

# listed: the job IDs the last dry run listed, sorted, on one line.
listed() {
	sed -n 's/^job \([0-9]*\): would republish .*/\1/p' "$OUT" | sort -n | tr '\n' ' ' | sed 's/ $//'
}

# ---- 50 jobs whose required output is missing: all failed_storage -------------------------------
for i in $(seq 1 $N); do
	mkdir -p "$W/$i/out"
	printf 'data of job %s\n' "$i" >"$W/$i/out/data.bin"
	expect_rc 66 "$JOBPUB" publish --job "$i" --manifest "$MAN" --workdir "$W/$i" --db "$DB" \
		--dest "file://$ARCH/\${model}" --set "model=$(model_of "$i")"
done
assert_eq "$(sql "$DB" "SELECT status || ' ' || count(*) FROM jobs GROUP BY status")" \
	"failed_storage $N" "statuses after the failed publishes"
assert_absent "$ARCH"
# The outputs come back, except for the two jobs whose work directory is deleted.
for i in $(seq 1 $N); do
	if gone "$i"; then
		rm -rf "$W/$i"
	else
		printf 'result of job %s\n' "$i" >"$W/$i/out/result.txt"
	fi
done

# ---- selection, without publishing ---------------------------------------------------------------
dry_run() {
	local i
	sql "$DB" "SELECT * FROM jobpub_attempts ORDER BY id" >"$T/attempts1"
	expect_rc 0 republish --dry-run
	for i in $(seq 1 $N); do
		assert_grep_fixed "job $i: would republish (status failed_storage) $MAN in $W/$i" "$OUT"
	done
	assert_eq "$(grep -c '^job ' "$OUT")" "$N" "lines of the dry run"
	assert_grep "^republish: $N jobs$" "$OUT"
	assert_absent "$ARCH"
	assert_absent "$T/wrong"
	sql "$DB" "SELECT * FROM jobpub_attempts ORDER BY id" >"$T/attempts2"
	cmp -s "$T/attempts1" "$T/attempts2" || fail "the dry run changed jobpub_attempts"
	assert_eq "$(sql "$DB" "SELECT count(*) FROM jobs WHERE status = 'failed_storage'")" "$N" \
		"failed jobs after the dry run"
}

select_job() {
	expect_rc 0 republish --dry-run --job 7 --job 33
	assert_eq "$(listed)" "7 33" "jobs --job 7 --job 33 selects"
	assert_grep '^republish: 2 jobs$' "$OUT"
	expect_rc 0 republish --dry-run --job 7 --status published
	assert_eq "$(listed)" "" "jobs --job 7 --status published selects"
	assert_grep '^republish: 0 jobs$' "$OUT"
	expect_rc 64 republish --dry-run --job a/b
}

select_since() {
	local recent
	# Jobs 1-10 last tried long ago.
	sql "$DB" "UPDATE jobpub_attempts SET started_at = '2020-01-01T00:00:00Z' WHERE CAST(job AS
		INTEGER) <= 10"
	recent=$(seq 11 $N | tr '\n' ' ' | sed 's/ $//')
	expect_rc 0 republish --dry-run --since 1d
	assert_eq "$(listed)" "$recent" "jobs --since 1d selects"
	expect_rc 0 republish --dry-run --since 2020-06-01
	assert_eq "$(listed)" "$recent" "jobs --since 2020-06-01 selects"
	expect_rc 0 republish --dry-run --since 2019-12-31T00:00:00Z
	assert_eq "$(grep -c '^job ' "$OUT")" "$N" "jobs --since 2019-12-31T00:00:00Z selects"
	expect_rc 0 republish --dry-run --since 1d --job 5 --job 12
	assert_eq "$(listed)" "12" "jobs --since 1d --job 5 --job 12 selects"
	expect_rc 64 republish --dry-run --since yesterday
}

run_case dry_run
run_case select_job
run_case select_since

# ---- republish --parallel 4 ----------------------------------------------------------------------
parallel_4() {
	local i m
	expect_rc 66 republish --parallel 4
	assert_eq "$(grep -c '^job [0-9]*: ' "$OUT")" "$N" "lines, one per job"
	for i in $(seq 1 $N); do
		assert_eq "$(grep -c "^job $i: " "$OUT")" 1 "lines for job $i"
		if gone "$i"; then
			assert_grep "^job $i: failed \(exit 66\): .*outputs no longer on disk at $W/$i" "$OUT"
		else
			assert_grep "^job $i: published$" "$OUT"
		fi
	done
	assert_grep "^republish: $((N - 2)) published, 2 still failing$" "$OUT"

	# The files, where the recorded --dest and --set put them.
	for i in $(seq 1 $N); do
		gone "$i" && continue
		m=$(model_of "$i")
		cmp -s "$W/$i/out/result.txt" "$ARCH/$m/run-$i/result.txt" || fail "job $i: result.txt"
		cmp -s "$W/$i/out/data.bin" "$ARCH/$m/run-$i/data.bin" || fail "job $i: data.bin"
	done
	assert_eq "$(count_files "$ARCH")" $((2 * (N - 2))) "files published"
	assert_absent "$T/wrong"
	assert_no_temps "$ARCH"
	assert_eq "$(sql "$DB" "SELECT count(*) FROM jobpub_leases")" 0 "leases left"

	assert_eq "$(sql "$DB" "SELECT status || ' ' || count(*) FROM jobs GROUP BY status ORDER BY 1")" \
		"failed_storage 2
published $((N - 2))" "statuses after republish"
	for i in $GONE; do
		assert_eq "$(row_status "$DB" jobs "'$i'")" failed_storage "status of job $i"
		sql "$DB" "SELECT message FROM jobpub_attempts WHERE job = '$i' ORDER BY id DESC LIMIT 1" \
			>"$T/reason"
		assert_grep_fixed "outputs no longer on disk at $W/$i" "$T/reason"
	done
	# The new attempts carry what the first ones recorded.
	assert_eq "$(sql "$DB" "SELECT count(*) FROM jobpub_attempts a WHERE id > (SELECT min(id) FROM
		jobpub_attempts b WHERE b.job = a.job) AND sets = '{\"model\":\"grid' || (CAST(job AS
		INTEGER) % 3) || '\"}'")" "$N" "second attempts with the job's own --set values"
}

history_kept() {
	local i
	assert_eq "$(sql "$DB" "SELECT count(*) FROM (SELECT job FROM jobpub_attempts GROUP BY job
		HAVING count(*) = 2)")" "$N" "jobs with two attempts"
	expect_rc 0 "$JOBPUB" status --db "$DB" 5
	assert_grep '^job 5: published' "$OUT"
	assert_grep '^attempts: 2$' "$OUT"
	assert_grep '^  #[0-9]+ .* failed_storage' "$OUT"
	assert_grep '^  #[0-9]+ .* published' "$OUT"
	expect_rc 0 "$JOBPUB" status --db "$DB" 17
	assert_grep '^job 17: failed_storage' "$OUT"
	assert_grep '^attempts: 2$' "$OUT"
	assert_eq "$(grep -c '^  #[0-9]* .* failed_storage' "$OUT")" 2 "failed attempts of job 17"
}

# A second run takes only the two that still fail; --job takes a published job again.
run_again() {
	snapshot "$ARCH" "$T/snap1"
	expect_rc 66 republish --parallel 4
	assert_eq "$(grep -c '^job ' "$OUT")" 2 "jobs the second run takes"
	assert_grep '^republish: 0 published, 2 still failing$' "$OUT"
	expect_rc 0 republish --job 5
	assert_grep '^job 5: published$' "$OUT"
	assert_grep '^republish: 1 published, 0 still failing$' "$OUT"
	snapshot "$ARCH" "$T/snap2"
	cmp -s "$T/snap1" "$T/snap2" || fail "republishing unchanged jobs changed the destination"
	assert_eq "$(sql "$DB" "SELECT count(*) FROM jobpub_attempts WHERE job IN ('5', '17', '33')")" \
		9 "attempts of jobs 5, 17 and 33"
}

run_case parallel_4
run_case history_kept
run_case run_again
finish
