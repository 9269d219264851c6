#!/bin/sh
# The read-only commands on a catalogue jobpub has not written yet (issue 13, defect 6): a fresh
# pdr_run database with only its own table, and an empty SQLite file.  `status` (with and
# without an ID), `republish` (also --dry-run), `gc` (also --dest) and `verify` (also with an
# ID) answer "nothing yet" with exit 0, their --json variants are valid JSON, and the database
# is byte-identical afterwards with no file added beside it.
. "$(dirname "$0")/lib.sh"
need python3

make_mini
DB=$MDB
DIR=$MINI
ls -a "$DIR" >"$T/ls-before"
cp "$DB" "$T/before.db"

unchanged() {
	cmp -s "$DB" "$T/before.db" || fail "$1 changed the database"
	ls -a "$DIR" >"$T/ls-after"
	cmp -s "$T/ls-before" "$T/ls-after" || {
		diff "$T/ls-before" "$T/ls-after" >&2 || true
		fail "$1 added a file beside the database"
	}
}

# run WHAT CMD...: CMD exits 0, mentions no SQLite error, changes nothing.
run() {
	local what=$1
	shift
	expect_rc 0 "$@"
	assert_no_grep 'no such table' "$ERR"
	unchanged "$what"
}

# json WHAT CMD...: the same, and stdout is one JSON document.
json() {
	run "$@"
	assert_json "$OUT"
}

commands() {
	run status "$JOBPUB" status --db "$DB"
	assert_grep '^no jobs' "$OUT"
	json "status --json" "$JOBPUB" status --db "$DB" --json
	assert_grep '"counts":\[\]' "$OUT"
	run "status 1" "$JOBPUB" status --db "$DB" 1
	assert_grep '^job 1: nothing recorded yet' "$OUT"
	json "status --json 1" "$JOBPUB" status --db "$DB" --json 1
	assert_grep '"attempts":\[\]' "$OUT"

	run republish "$JOBPUB" republish --db "$DB"
	assert_grep '^republish: 0 published, 0 still failing$' "$OUT"
	run "republish --dry-run" "$JOBPUB" republish --db "$DB" --dry-run
	assert_grep '^republish: 0 jobs$' "$OUT"
	json "republish --json" "$JOBPUB" republish --db "$DB" --json
	json "republish --dry-run --json" "$JOBPUB" republish --db "$DB" --dry-run --json
	run "republish --job 1" "$JOBPUB" republish --db "$DB" --job 1

	run gc "$JOBPUB" gc --db "$DB"
	assert_grep '^0 destinations: ' "$OUT"
	json "gc --json" "$JOBPUB" gc --db "$DB" --json
	mkdir -p "$T/dest"
	run "gc --dest" "$JOBPUB" gc --db "$DB" --dest "file://$T/dest" --apply
	json "gc --dest --json" "$JOBPUB" gc --db "$DB" --dest "file://$T/dest" --json

	run verify "$JOBPUB" verify --db "$DB"
	assert_grep '^nothing published yet' "$OUT"
	json "verify --json" "$JOBPUB" verify --db "$DB" --json
	run "verify 1" "$JOBPUB" verify --db "$DB" 1
	assert_grep '^job 1: nothing published yet' "$OUT"
	json "verify --json 1" "$JOBPUB" verify --db "$DB" --json 1
	run "verify --deep 1" "$JOBPUB" verify --db "$DB" --deep 1
}

pdr_database() {
	commands
}

empty_file() {
	DB=$T/empty/catalog.db
	DIR=$T/empty
	mkdir -p "$DIR"
	: >"$DB"
	ls -a "$DIR" >"$T/ls-before"
	cp "$DB" "$T/before.db"
	commands
}

run_case pdr_database
run_case empty_file
finish
