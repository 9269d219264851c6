#!/bin/sh
# `jobpub republish`'s command line and the paths of its selection the other tests do not take:
#   - every option error is a usage error (64, "jobpub: ..." then the usage line) that changes
#     nothing, and --help is the help (0);
#   - --json after real publishes: one object per job (outcome, exit code, the message of a
#     failure on one line), the counts, and the exit code of the first failure;
#   - spool entries: one of another catalogue, one without a catalogue, one that is not valid
#     are not taken; --job and --since select entries too; an entry of a job the catalogue
#     already lists is taken once, and removed once the job is published;
#   - a SIGTERM to republish alone during --parallel 2 with more jobs than lanes, while the two
#     running publishes wait for the catalogue: they stop (75) with nothing recorded, the three
#     others are not started (still failed, no attempt), the summary says "(interrupted)", exit
#     75.
. "$(dirname "$0")/lib.sh"
need python3 seq

DB=$T/catalog.db
ARCH=$T/archive
MAN=$T/manifest.yaml
SP=$T/spool
write_manifest "$MAN" <<EOF
destination: file://$ARCH
outputs:
  - name: result
    path: out/result.txt
    to: run-\${job}/result.txt
EOF

# failed N...: jobs N... failed_storage in a fresh catalogue (their output missing), then their
# output is back.
failed() {
	local i
	rm -rf "$T/w" "$ARCH" "$DB" "$SP"
	for i in "$@"; do
		mkdir -p "$T/w/$i/out"
		expect_rc 66 "$JOBPUB" publish --job "$i" --manifest "$MAN" --workdir "$T/w/$i" --db "$DB"
		printf 'result of job %s\n' "$i" >"$T/w/$i/out/result.txt"
	done
}

republish() {
	"$JOBPUB" republish --db "$DB" "$@"
}

# ---- option errors ---------------------------------------------------------------------------
usage_errors() {
	local before
	failed 1
	before=$(sha256sum <"$DB")
	while IFS='|' read -r args msg; do
		# shellcheck disable=SC2086 # the arguments are words
		expect_rc 64 republish $args
		assert_grep "^jobpub: $msg" "$ERR"
		assert_grep '^usage: jobpub republish ' "$ERR"
		[ ! -s "$OUT" ] || { show "$OUT"; fail "republish $args: printed on stdout"; }
	done <<'EOF'
--parallel 0|--parallel 0: expected 1 to 64
--parallel 65|--parallel 65: expected 1 to 64
--parallel two|--parallel two: expected 1 to 64
--db-timeout -1|--db-timeout -1: expected
--db-timeout soon|--db-timeout soon: expected
--retries 101|--retries 101: expected 0 to 100
--retries -1|--retries -1: expected 0 to 100
--timeout 0|--timeout 0: expected seconds
--stall never|--stall never: expected seconds
--part-size 1KiB|--part-size.* .?1KiB.? .*5MiB
--part-size 6GiB|--part-size.* .?6GiB.? .*5GiB
--since yesterday|--since yesterday: expected a date, a time or an age
--since 2026-1|--since 2026-1: expected a date, a time or an age
--job a/b|--job 'a/b': not a job ID
--bogus|unknown option --bogus
--status|--status needs a value
--dry-run extra|unexpected argument 'extra'
EOF
	assert_eq "$(sha256sum <"$DB")" "$before" "the catalogue after the usage errors"
	assert_absent "$ARCH"
	expect_rc 0 republish --help
	assert_grep '^usage: jobpub republish ' "$OUT"
	assert_grep '--parallel N' "$OUT"
	expect_rc 0 republish -h
	assert_grep '^usage: jobpub republish ' "$OUT"
	assert_eq "$(sha256sum <"$DB")" "$before" "the catalogue after --help"
	# The options that are good are taken: a dry run with every one of them.
	expect_rc 0 republish --dry-run --parallel 64 --db-timeout 0.5 --retries 0 --timeout 2.5 \
		--stall 1 --part-size 5MiB --since 1h --overwrite
	assert_grep '^job 1: would republish \(status failed_storage\)' "$OUT"
}

# ---- --json after real publishes ----------------------------------------------------------
json_results() {
	failed 1 2 3
	rm -rf "$T/w/2" # job 2's outputs are gone for good
	expect_rc 66 republish --json --parallel 2
	python3 - "$OUT" "$T/w/2" <<'EOF' || { show "$OUT"; fail "republish --json"; }
import json, sys
d = json.load(open(sys.argv[1]))
jobs = {j["job"]: j for j in d["jobs"]}
assert sorted(jobs) == ["1", "2", "3"], jobs
for k in ("1", "3"):
    assert jobs[k] == {"job": k, "outcome": "published", "exit_code": 0}, jobs[k]
f = jobs["2"]
assert f["outcome"] == "failed" and f["exit_code"] == 66, f
assert "outputs no longer on disk at " + sys.argv[2] in f["message"], f
assert "\n" not in f["message"] and "\t" not in f["message"], f
assert d["published"] == 2 and d["failed"] == 1, d
EOF
	assert_eq "$(sql "$DB" "SELECT id || ' ' || status FROM jobs ORDER BY id")" "1 published
2 failed_storage
3 published" "statuses after republish --json"
	cmp -s "$T/w/3/out/result.txt" "$ARCH/run-3/result.txt" || fail "job 3 not published"
	# Nothing left to do: an empty list and zero counts.
	rm -rf "$T/w"
	expect_rc 0 republish --json --status published --job 9
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
assert d == {"jobs": [], "published": 0, "failed": 0}, d' "$OUT" || { show "$OUT"; fail "empty --json"; }
}

# ---- spool entries the selection skips or merges ---------------------------------------------
# enqueue JOB DB [OPTION]...: a spool entry for JOB of catalogue DB in $SP.
enqueue() {
	local job=$1 db=$2
	shift 2
	mkdir -p "$T/w/$job/out"
	[ -e "$T/w/$job/out/result.txt" ] || printf 'result of job %s\n' "$job" >"$T/w/$job/out/result.txt"
	expect_rc 0 "$JOBPUB" enqueue --job "$job" --manifest "$MAN" --workdir "$T/w/$job" \
		--db "$db" --spool "$SP" "$@"
}

listed() {
	sed -n 's/^job \([0-9]*\): would republish .*/\1/p' "$OUT" | sort -n | tr '\n' ' ' | sed 's/ $//'
}

spool_selection() {
	failed 1
	enqueue 1 "$DB"                 # the catalogue's failed job 1 also has an entry
	enqueue 2 "$DB"                 # spooled only
	enqueue 3 "$DB"
	enqueue 4 "$T/other.db"         # another catalogue's
	# One without a catalogue (as written by hand or by an older enqueue): not this one's.
	python3 - "$SP/5.json" "$MAN" "$T/w/5" <<'EOF'
import json, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, json.dumps({"job": "5", "manifest": sys.argv[2], "workdir": sys.argv[3],
    "db": None, "dest": None, "sets": {}, "uid": os.geteuid(),
    "created": "2026-01-01T00:00:00Z"}).encode())
os.close(fd)
EOF
	printf 'not json\n' >"$SP/6.json"
	chmod 0600 "$SP/6.json"

	expect_rc 0 republish --spool "$SP" --dry-run
	assert_eq "$(listed)" "1 2 3" "jobs taken from the catalogue and the spool"
	assert_eq "$(grep -c '^job 1: ' "$OUT")" 1 "lines for job 1"
	assert_grep '^job 1: would republish \(status failed_storage\)' "$OUT"
	assert_grep '^job 2: would republish \(status spooled as 2\)' "$OUT"
	assert_grep_fixed "$SP/6.json" "$ERR"
	assert_grep 'entry skipped' "$ERR"
	expect_rc 0 republish --spool "$SP" --dry-run --job 3 --job 1
	assert_eq "$(listed)" "1 3" "--job 3 --job 1 selects"
	expect_rc 0 republish --spool "$SP" --dry-run --since 2099-01-01
	assert_eq "$(listed)" "" "--since 2099-01-01 selects"
	expect_rc 0 republish --spool "$SP" --dry-run --since 1h
	assert_eq "$(listed)" "1 2 3" "--since 1h selects"

	# Published: the entries of 1, 2 and 3 are done and removed; the others stay.
	expect_rc 0 republish --spool "$SP"
	assert_grep '^republish: 3 published, 0 still failing$' "$OUT"
	for i in 1 2 3; do
		assert_absent "$SP/$i.json"
		cmp -s "$T/w/$i/out/result.txt" "$ARCH/run-$i/result.txt" || fail "job $i not published"
	done
	for i in 4 5 6; do
		[ -e "$SP/$i.json" ] || fail "the entry of job $i was removed"
	done
	assert_absent "$ARCH/run-4"
	assert_absent "$ARCH/run-5"
}

# ---- SIGTERM to republish alone, more jobs than lanes ---------------------------------------
children() {
	cat "/proc/$1/task/$1/children" 2>/dev/null | wc -w
}
two_children() {
	[ "$(children "$RP")" -eq 2 ]
}

signal_parent() {
	local rc=0 n
	failed 1 2 3 4 5
	sql "$DB" "PRAGMA journal_mode = WAL" >/dev/null
	n=$(n_attempts "$DB")
	hold_lock "$DB" # the first two publishes wait for it
	case_bg "$LOCKER"
	"$JOBPUB" republish --db "$DB" --parallel 2 --db-timeout 30 >"$OUT" 2>"$ERR" &
	RP=$!
	case_bg "$RP"
	wait_until "$RP" "two republish children" two_children
	sleep 0.2
	kill -TERM "$RP"
	sleep 0.3
	release_lock
	wait "$RP" || rc=$?
	[ "$rc" -eq 75 ] || { show "$OUT"; show "$ERR"; fail "republish: exit $rc, expected 75"; }
	assert_eq "$(grep -c 'failed (exit 75)' "$OUT")" 2 "publishes interrupted"
	assert_grep '^republish: 0 published, 5 still failing \(interrupted\)$' "$OUT"
	assert_eq "$(sql "$DB" "SELECT count(*) FROM jobs WHERE status = 'failed_storage'")" 5 \
		"jobs still failed"
	# The two publishes were waiting for the catalogue to record their attempt: nothing recorded
	# (a signal before the attempt began), no lease left; the three others never started.
	assert_eq "$(n_attempts "$DB")" "$n" "attempts after the signal"
	assert_eq "$(sql "$DB" "SELECT count(*) FROM jobpub_leases")" 0 "leases left"
	assert_absent "$ARCH"
}

run_case usage_errors
run_case json_results
run_case spool_selection
run_case signal_parent
finish
