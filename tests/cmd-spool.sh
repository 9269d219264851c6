#!/bin/sh
# jobpub spool (entries, their state and age; --clean) and republish through spool entries: a
# job whose catalogue row could not even be marked (the catalogue locked past the timeout, so
# no attempt was recorded) is found by `republish` through its entry, listed by its catalogue
# ID in --dry-run, published, and its entry removed.  Also: ages in s/m/h/d, an entry without
# a catalogue, --clean --json, a spool that is not a directory (74), option errors.
. "$(dirname "$0")/lib.sh"

SP=$T/spool
make_mini

enqueue() {
	"$JOBPUB" enqueue --job "$1" --manifest "$MMAN" --workdir "$MJOB" --db "$MDB" --spool "$SP" \
		--key "$2" >"$OUT" 2>"$ERR" || { show "$ERR"; fail "enqueue of job $1 failed"; }
}

listing() {
	expect_rc 0 "$JOBPUB" spool --spool "$SP"
	assert_grep "^slurm-77: job 1 pending \([0-9]+s old\) in $MDB\$" "$OUT"
	assert_grep "^spool $SP: 1 entry: 1 pending, 0 failed, 0 published, 0 invalid\$" "$OUT"
	expect_rc 0 "$JOBPUB" spool --spool "$SP" --json
	assert_json "$OUT"
	assert_grep '"key":"slurm-77","job":"1","db":"[^"]*","state":"pending","age_seconds":[0-9]+' "$OUT"
	# The default directory is $JOBPUB_SPOOL; a missing spool has no entries.
	JOBPUB_SPOOL=$SP "$JOBPUB" spool >"$OUT" 2>"$ERR" || fail "spool with JOBPUB_SPOOL"
	assert_grep '^slurm-77: job 1 pending' "$OUT"
	expect_rc 0 "$JOBPUB" spool --spool "$T/none"
	assert_grep ' 0 entries' "$OUT"
	expect_rc 64 "$JOBPUB" spool --bogus
	expect_rc 64 "$JOBPUB" spool extra
}

# The catalogue locked past the timeout: nothing recorded, the row stays running; republish
# finds the job through its entry.
locked_then_republish() {
	# A catalogue jobpub has written before (another job published).
	sql "$MDB" "INSERT INTO runs (id, name, status) VALUES (2, 'run-b', 'running')"
	expect_rc 0 publish_mini --job 2
	(echo 'BEGIN EXCLUSIVE;'; sleep 3; echo 'COMMIT;') | sqlite3 "$MDB" &
	lockpid=$!
	bg_started "$lockpid"
	sleep 0.5
	expect_rc 75 env JOBPUB_SPOOL="$SP" "$JOBPUB" publish --spool --job slurm-77 --db-timeout 0.5
	wait "$lockpid"
	assert_eq "$(sql "$MDB" "SELECT status FROM runs WHERE id = 1")" running "status after the locked publish"
	assert_eq "$(sql "$MDB" "SELECT count(*) FROM jobpub_attempts WHERE job = '1'")" 0 \
		"attempts of job 1 after the locked publish"
	expect_rc 0 "$JOBPUB" republish --db "$MDB" --spool "$SP" --dry-run
	assert_grep '^job 1: would republish \(status spooled as slurm-77\) ' "$OUT"
	assert_grep '^republish: 1 job$' "$OUT"
	expect_rc 0 "$JOBPUB" republish --db "$MDB" --spool "$SP" --dry-run --json
	assert_grep '"job":"1","status":"spooled as slurm-77"' "$OUT"
	# With --status, only the catalogue's jobs of that status.
	expect_rc 0 "$JOBPUB" republish --db "$MDB" --spool "$SP" --dry-run --status failed_storage
	assert_grep '^republish: 0 jobs$' "$OUT"
	expect_rc 0 "$JOBPUB" republish --db "$MDB" --spool "$SP"
	assert_grep '^job 1: published$' "$OUT"
	assert_eq "$(sql "$MDB" "SELECT status FROM runs WHERE id = 1")" published "status after republish"
	assert_absent "$SP/slurm-77.json"
	cmp -s "$MJOB/out/result.txt" "$MARCHIVE/results/run-a/result.txt" || fail "not published"
	# Nothing left to do.
	expect_rc 0 "$JOBPUB" republish --db "$MDB" --spool "$SP" --dry-run
	assert_grep '^republish: 0 jobs$' "$OUT"
}

# A published job's entry left behind (published by hand) is "published", and --clean
# removes it; a failed job's (one never published) is "failed" and stays; an unreadable entry
# is "invalid".
clean() {
	sleep 1 # times have a resolution of one second
	enqueue 1 slurm-78
	expect_rc 0 "$JOBPUB" spool --spool "$SP"
	assert_grep '^slurm-78: job 1 pending ' "$OUT" # published before it was enqueued
	expect_rc 0 publish_mini
	expect_rc 0 "$JOBPUB" spool --spool "$SP"
	assert_grep '^slurm-78: job 1 published ' "$OUT"
	printf 'not json' >"$SP/garbage.json"
	chmod 600 "$SP/garbage.json"
	expect_rc 0 "$JOBPUB" spool --spool "$SP" --clean
	assert_grep '^slurm-78: job 1 published .*; removed$' "$OUT"
	assert_grep '^garbage: invalid \([0-9]+s old\): ' "$OUT"
	assert_grep ' 1 published, 1 invalid; 1 removed$' "$OUT"
	assert_absent "$SP/slurm-78.json"
	[ -f "$SP/garbage.json" ] || fail "--clean removed an invalid entry"
	# republish warns about the invalid entry and goes on.
	expect_rc 0 "$JOBPUB" republish --db "$MDB" --spool "$SP" --dry-run
	assert_grep 'garbage\.json' "$ERR"
	rm "$SP/garbage.json"
	# A failed job (never published: a job published before keeps its status, and its entry is
	# done, see published_then_failed): its entry stays.
	make_mini
	rm "$MJOB/out/data.bin"
	enqueue 1 slurm-79
	expect_rc 66 env JOBPUB_SPOOL="$SP" "$JOBPUB" publish --spool --job slurm-79
	expect_rc 0 "$JOBPUB" spool --spool "$SP" --clean
	assert_grep '^slurm-79: job 1 failed ' "$OUT"
	[ -f "$SP/slurm-79.json" ] || fail "--clean removed a failed job's entry"
}

# A catalogue that does not exist yet (jobpub's own table: the first publish creates it): the
# job is pending, and republish publishes it from its entry.
no_catalogue_yet() {
	mkdir -p "$T/new"
	write_manifest "$T/new/m.yaml" <<EOF
destination: file://$T/new/archive
outputs:
  - name: result
    path: out/result.txt
    to: result.txt
EOF
	"$JOBPUB" enqueue --job 5 --manifest "$T/new/m.yaml" --workdir "$MJOB" --db "$T/new/cat.db" \
		--spool "$T/new/spool" >"$OUT" 2>"$ERR" || { show "$ERR"; fail "enqueue failed"; }
	expect_rc 0 "$JOBPUB" spool --spool "$T/new/spool"
	assert_grep '^5: job 5 pending ' "$OUT"
	(cd "$T/new" && "$JOBPUB" republish --db cat.db --spool spool --dry-run) >"$OUT" 2>"$ERR" ||
		{ show "$ERR"; fail "republish --dry-run with no catalogue"; }
	assert_grep '^job 5: would republish \(status spooled as 5\)' "$OUT"
	assert_grep '^jobpub: republish: catalogue cat.db does not exist: only spool entries considered$' \
		"$ERR"
	assert_absent "$T/new/cat.db"
	(cd "$T/new" && "$JOBPUB" republish --db ./cat.db --spool spool) >"$OUT" 2>"$ERR" ||
		{ show "$ERR"; fail "republish with no catalogue"; }
	assert_grep '^job 5: published$' "$OUT"
	assert_absent "$T/new/spool/5.json"
	cmp -s "$MJOB/out/result.txt" "$T/new/archive/result.txt" || fail "not published"
}

# A typo in --db: no such catalogue and no spool entry for it is an error naming the path (66),
# not "0 published" with status 0; nothing is created.
typo_db() {
	mkdir -p "$T/typo"
	expect_rc 66 sh -c 'cd "$1" && shift && exec "$@"' sh "$T/typo" \
		"$JOBPUB" republish --db typo.db --spool "$SP"
	assert_grep "^jobpub: republish: catalogue typo.db does not exist, and no entry of the spool $SP is for it\$" "$ERR"
	assert_eq "$(wc -l <"$ERR")" 1 "lines on stderr"
	expect_rc 66 "$JOBPUB" republish --db "$T/typo/typo.db" --spool "$SP" --dry-run
	expect_rc 66 "$JOBPUB" republish --db "$T/typo/typo.db" --status failed
	assert_grep "^jobpub: republish: catalogue $T/typo/typo.db does not exist\$" "$ERR"
	assert_eq "$(ls -A "$T/typo")" "" "files created"
}

enqueue 1 slurm-77
# A job published, then re-published with a changed local file (a conflict, 69): the job stays
# published, so its entry is done: "published", removed by --clean, not retried by republish
# (which would fail forever) unless --overwrite asks for the new content.
published_then_failed() {
	make_mini
	rm -rf "$SP"
	enqueue 1 slurm-80
	expect_rc 0 publish_mini
	printf 'changed\n' >"$MJOB/out/result.txt"
	expect_rc 69 publish_mini
	expect_rc 0 "$JOBPUB" spool --spool "$SP"
	assert_grep '^slurm-80: job 1 published \([0-9]+s old\) in .*: a later attempt failed' "$OUT"
	expect_rc 0 "$JOBPUB" republish --db "$MDB" --spool "$SP" --dry-run
	assert_grep '^republish: 0 jobs$' "$OUT"
	expect_rc 0 "$JOBPUB" republish --db "$MDB" --spool "$SP" --dry-run --overwrite
	assert_grep '^job 1: would republish \(status spooled as slurm-80\) ' "$OUT"
	expect_rc 0 "$JOBPUB" spool --spool "$SP" --clean
	assert_grep '^slurm-80: job 1 published .*; removed$' "$OUT"
	assert_absent "$SP/slurm-80.json"
}

# An attempt still "running" whose publisher is gone (no live lease: SIGKILL, a node crash) is
# not "publishing": it is failed, and says why.
dead_publisher() {
	make_mini
	rm -rf "$SP"
	enqueue 1 slurm-81
	expect_rc 66 publish_mini --manifest "$MMAN" --workdir "$T/nowhere"
	sql "$MDB" "INSERT INTO jobpub_attempts (job, token, started_at, job_table, id_column,
		status_column, outcome) VALUES ('1', 'deadbeef', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),
		'runs', 'id', 'status', 'running')"
	expect_rc 0 "$JOBPUB" spool --spool "$SP"
	assert_grep '^slurm-81: job 1 failed \([0-9]+s old\) in .*: its publisher is gone$' "$OUT"
}

# Ages in seconds, minutes, hours and days (an mtime in the future is 0 s old); an entry that
# records no catalogue; --clean --json; a spool that is not a directory (74); option errors.
ages_and_options() {
	make_mini
	rm -rf "$SP"
	enqueue 1 k-min
	enqueue 1 k-hours
	enqueue 1 k-days
	enqueue 1 k-future
	touch -d '5 minutes ago' "$SP/k-min.json"
	touch -d '3 hours ago' "$SP/k-hours.json"
	touch -d '3 days ago' "$SP/k-days.json"
	touch -d '1 hour' "$SP/k-future.json"
	python3 - "$SP/nodb.json" "$MMAN" "$MJOB" <<'PY'
import json, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, json.dumps({"job": "nodb", "manifest": sys.argv[2], "workdir": sys.argv[3],
    "db": None, "dest": None, "sets": {}, "uid": os.geteuid(),
    "created": "2026-01-01T00:00:00Z"}).encode())
os.close(fd)
PY
	expect_rc 0 "$JOBPUB" spool --spool "$SP"
	assert_grep '^k-min: job 1 pending \(5m old\)' "$OUT"
	assert_grep '^k-hours: job 1 pending \(3h old\)' "$OUT"
	assert_grep '^k-days: job 1 pending \(3d old\)' "$OUT"
	assert_grep '^k-future: job 1 pending \(0s old\)' "$OUT"
	assert_grep '^nodb: job nodb pending \([0-9]+s old\) in \(default catalogue\): no catalogue recorded$' "$OUT"
	# Job 1 published: its four entries are done; --clean --json removes them and says so.
	expect_rc 0 publish_mini
	expect_rc 0 "$JOBPUB" spool --spool "$SP" --clean --json
	python3 - "$OUT" <<'PY' || { show "$OUT"; fail "spool --clean --json"; }
import json, sys
d = json.load(open(sys.argv[1]))
e = {x["key"]: x for x in d["entries"]}
for k in ("k-min", "k-hours", "k-days", "k-future"):
    assert e[k]["state"] == "published" and e[k]["removed"] == 1, e[k]
assert e["nodb"]["state"] == "pending" and e["nodb"]["removed"] == 0, e["nodb"]
assert e["nodb"]["message"] == "no catalogue recorded", e["nodb"]
assert d["removed"] == 4 and d["published"] == 4 and d["pending"] == 1, d
PY
	for k in k-min k-hours k-days k-future; do
		assert_absent "$SP/$k.json"
	done
	[ -e "$SP/nodb.json" ] || fail "the entry without a catalogue was removed"
	# A spool that cannot be listed.
	printf 'x\n' >"$T/notadir"
	expect_rc 74 "$JOBPUB" spool --spool "$T/notadir"
	assert_grep "^jobpub: .*$T/notadir" "$ERR"
	expect_rc 74 "$JOBPUB" spool --spool "$T/notadir" --json
	assert_json "$OUT"
	expect_rc 64 "$JOBPUB" spool --spool ''
	assert_grep '^jobpub: --spool: empty directory name' "$ERR"
	expect_rc 0 "$JOBPUB" spool --help
	assert_grep '^usage: jobpub spool ' "$OUT"
}

run_case no_catalogue_yet
run_case typo_db
run_case listing
run_case locked_then_republish
run_case clean
run_case published_then_failed
run_case dead_publisher
run_case ages_and_options
finish
