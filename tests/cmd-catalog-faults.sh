#!/bin/sh
# Catalogues SQLite cannot serve as asked, and catalogues of older jobpub versions:
#   - a catalogue in a directory that does not exist: 78 naming it, nothing created;
#   - a damaged catalogue (a page of jobpub_attempts or jobpub_files overwritten, as a disk or
#     a careless copy does): every command that reads what is damaged exits 65 ("malformed",
#     naming the catalogue and what it was reading), never 0 with a partial answer; what is
#     still readable is still shown; `spool` says the catalogue is not readable; a publish
#     into it publishes nothing under a final name;
#   - a schema jobpub does not know: a table of jobpub's name that is not jobpub's (the
#     migration fails: 74 naming the table, the catalogue unchanged, nothing published), a
#     version newer than this jobpub (78);
#   - catalogues written by jobpub's schema versions 2 and 3: status, verify, gc and republish
#     --dry-run read them without migrating (the version stays), verify says what it cannot
#     check; the next publish migrates it and the old job stays readable.
. "$(dirname "$0")/lib.sh"
need python3 dd

MAN=$T/manifest.yaml
write_manifest "$MAN" <<EOF
destination: file://$T/archive
outputs:
  - name: result
    path: out/result.txt
    to: run-\${job}/result.txt
EOF

# job N: a work directory for job N.
job() {
	mkdir -p "$T/w/$1/out"
	printf 'result of job %s\n' "$1" >"$T/w/$1/out/result.txt"
}

publish() {
	"$JOBPUB" publish --job "$1" --manifest "$MAN" --workdir "$T/w/$1" --db "$2" \
		--dest "file://$3"
}

missing_directory() {
	job 1
	expect_rc 78 publish 1 "$T/nodir/catalog.db" "$T/archive"
	assert_grep_fixed "$T/nodir/catalog.db" "$ERR"
	assert_grep 'unable to open' "$ERR"
	assert_absent "$T/nodir"
	assert_absent "$T/archive"
}

# ---- damaged pages ----------------------------------------------------------------------------
# damage DB TABLE: overwrites the header of the last leaf page of TABLE.
damage() {
	local pg sz
	pg=$(sql "$1" "SELECT max(pageno) FROM dbstat WHERE name = '$2' AND pagetype = 'leaf'")
	sz=$(sql "$1" "PRAGMA page_size")
	[ -n "$pg" ] && [ "$pg" -gt 1 ] || hard_error "no leaf page of $2 (dbstat)"
	printf '\377\377\377\377\377\377\377\377' |
		dd of="$1" bs=1 seek=$(((pg - 1) * sz)) conv=notrunc 2>/dev/null
}

damaged() {
	local db=$T/d.db i
	job 1
	expect_rc 0 publish 1 "$db" "$T/archive"
	job 2
	expect_rc 0 publish 2 "$db" "$T/archive"
	# Job 2's history and files over several pages: failed attempts and recorded files.
	sql "$db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60)
		INSERT INTO jobpub_attempts (job, token, started_at, finished_at, host, pid, manifest,
		workdir, destination, job_table, id_column, status_column, outcome, exit_code,
		error_class, message) SELECT '2', 'tok' || i, '2026-01-01T00:00:00Z',
		'2026-01-01T00:00:01Z', 'node17', 100 + i, '$MAN', '$T/w/2', 'file://$T/archive', 'jobs',
		'id', 'status', 'failed_storage', 74, 'ioerr', printf('%.*c', 300, 'x') FROM n;
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60)
		INSERT INTO jobpub_files (job, output, local_path, remote_url, size, sha256,
		published_at, attempt, destination, key) SELECT '2', 'extra' || i, 'out/x' || i,
		'file://$T/archive/run-2/x' || i || printf('%.*c', 200, 'y'), 1, printf('%.*c', 64, '0'),
		'2026-01-01T00:00:01Z', 2, 'file://$T/archive', 'run-2/x' || i FROM n;
		PRAGMA journal_mode = DELETE;" >/dev/null
	cp "$db" "$T/good.db"

	damage "$db" jobpub_attempts
	expect_rc 65 "$JOBPUB" status --db "$db"
	assert_grep "^jobpub: catalog: $db: .*malformed" "$ERR"
	expect_rc 65 "$JOBPUB" status --db "$db" 2
	assert_grep "^jobpub: catalog: $db: read attempts: .*malformed" "$ERR"
	expect_rc 65 "$JOBPUB" status --db "$db" --json 2
	expect_rc 65 "$JOBPUB" republish --db "$db" --dry-run
	assert_grep "^jobpub: catalog: $db: .*malformed" "$ERR"
	# Job 1's rows are on a page that is intact: still shown.
	expect_rc 0 "$JOBPUB" status --db "$db" 1
	assert_grep '^job 1: published' "$OUT"
	# A publish into it: nothing under a final name.
	job 3
	"$JOBPUB" publish --job 3 --manifest "$MAN" --workdir "$T/w/3" --db "$db" >"$OUT" 2>"$ERR" &&
		fail "a publish into a damaged catalogue succeeded"
	assert_grep '^jobpub: ' "$ERR"
	assert_absent "$T/archive/run-3/result.txt"
	assert_no_temps "$T/archive"
	# The spool's view of an entry of it.
	expect_rc 0 "$JOBPUB" enqueue --job 2 --manifest "$MAN" --workdir "$T/w/2" --db "$db" \
		--spool "$T/spool"
	expect_rc 0 "$JOBPUB" spool --spool "$T/spool"
	assert_grep "^2: job 2 pending .*catalogue not readable: .*malformed" "$OUT"

	cp "$T/good.db" "$db"
	damage "$db" jobpub_files
	expect_rc 65 "$JOBPUB" status --db "$db" 2
	assert_grep "^jobpub: catalog: $db: read files: .*malformed" "$ERR"
	expect_rc 65 "$JOBPUB" verify --db "$db"
	assert_grep "^jobpub: catalog: $db: .*malformed" "$ERR"
	expect_rc 65 "$JOBPUB" gc --db "$db"
	assert_grep "^jobpub: catalog: $db: .*malformed" "$ERR"
	for i in 1 2; do
		cmp -s "$T/w/$i/out/result.txt" "$T/archive/run-$i/result.txt" || fail "job $i's file changed"
	done
}

# ---- a schema jobpub does not know ---------------------------------------------------------------
# old DB VERSION: the catalogue DB (schema 5) taken back to VERSION (2 or 3), as that version of
# jobpub wrote it.
old() {
	sql "$1" "ALTER TABLE jobpub_files DROP COLUMN etag;
		ALTER TABLE jobpub_leases DROP COLUMN boot_id;
		ALTER TABLE jobpub_leases DROP COLUMN start_time;
		PRAGMA user_version = 3;"
	[ "$2" -eq 3 ] || sql "$1" "ALTER TABLE jobpub_files DROP COLUMN destination;
		ALTER TABLE jobpub_files DROP COLUMN key;
		DROP TABLE jobpub_leases;
		PRAGMA user_version = 2;"
}

unknown_schema() {
	local db=$T/u.db before
	job 1
	expect_rc 0 publish 1 "$db" "$T/archive-u"
	sql "$db" "PRAGMA journal_mode = DELETE" >/dev/null
	old "$db" 2
	sql "$db" "CREATE TABLE jobpub_leases (name TEXT, owner TEXT)" # someone else's
	before=$(sqlite3 "$db" .dump | sha256sum)
	job 2
	expect_rc 74 publish 2 "$db" "$T/archive-u"
	assert_grep "^jobpub: catalog: $db: migrate: table jobpub_leases already exists" "$ERR"
	assert_eq "$(sqlite3 "$db" .dump | sha256sum)" "$before" "the catalogue after the failed migration"
	assert_absent "$T/archive-u/run-2"
	# A newer jobpub's catalogue.
	sql "$db" "DROP TABLE jobpub_leases; PRAGMA user_version = 99"
	expect_rc 78 publish 2 "$db" "$T/archive-u"
	assert_grep "^jobpub: catalog: $db: schema version 99 is newer than this jobpub knows \(5\); upgrade jobpub" "$ERR"
	assert_absent "$T/archive-u/run-2"
}

older_versions() {
	local v db
	job 1
	for v in 2 3; do
		db=$T/v$v.db
		rm -rf "$T/archive-o"
		expect_rc 0 publish 1 "$db" "$T/archive-o"
		sql "$db" "PRAGMA journal_mode = DELETE" >/dev/null
		old "$db" "$v"
		expect_rc 0 "$JOBPUB" status --db "$db" 1
		assert_grep '^job 1: published' "$OUT"
		assert_grep_fixed "file://$T/archive-o/run-1/result.txt" "$OUT"
		expect_rc 0 "$JOBPUB" status --db "$db" --json 1
		python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
assert d["status"] == "published" and len(d["files"]) == 1 and len(d["attempts"]) == 1, d' "$OUT" ||
			{ show "$OUT"; fail "status --json of a version $v catalogue"; }
		if [ "$v" -eq 2 ]; then
			# Files recorded before the catalogue kept their key cannot be checked.
			expect_rc 1 "$JOBPUB" verify --db "$db"
			assert_grep 'cannot be checked: published before the catalogue recorded its key' "$OUT"
		else
			expect_rc 0 "$JOBPUB" verify --db "$db" --deep
			assert_grep '^job 1: 1 of 1 files as recorded - ok' "$OUT"
		fi
		expect_rc 0 "$JOBPUB" gc --db "$db"
		expect_rc 0 "$JOBPUB" republish --db "$db" --dry-run --job 1
		assert_grep '^job 1: would republish \(status published\)' "$OUT"
		assert_eq "$(sql "$db" "PRAGMA user_version")" "$v" "the version after reading"
		# The next publish migrates it; job 1 is still what it was.
		job 2
		expect_rc 0 publish 2 "$db" "$T/archive-o"
		assert_eq "$(sql "$db" "PRAGMA user_version")" 5 "the version after a publish"
		expect_rc 0 "$JOBPUB" status --db "$db" 1
		assert_grep '^job 1: published' "$OUT"
		expect_rc 0 "$JOBPUB" verify --db "$db" 2
		assert_grep '^job 2: 1 of 1 files as recorded - ok' "$OUT"
	done
}

run_case missing_directory
run_case damaged
run_case unknown_schema
run_case older_versions
finish
