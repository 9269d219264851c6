#!/bin/sh
# A typo in --db must not create a database (issue 13, defect 5).  With a manifest that names an
# external table (catalog: table:), a catalogue that does not exist is exit 66 naming the path,
# and no file appears; only jobpub's own table mode creates one.  jobpub never makes its own
# `jobs` table in a database whose manifest maps to another table, and a manifest naming a table
# or column the database lacks changes nothing in it (same bytes).
. "$(dirname "$0")/lib.sh"

make_mini

external_missing() {
	expect_rc 66 publish_mini --db "$MINI/nonexist.db"
	assert_grep "^jobpub: catalog: $MINI/nonexist.db: No such file or directory" "$ERR"
	assert_absent "$MINI/nonexist.db"
	assert_absent "$MARCHIVE"
	# a dry run too: it needs the row
	expect_rc 66 publish_mini --db "$MINI/nonexist.db" --dry-run
	assert_grep_fixed "$MINI/nonexist.db" "$ERR"
	assert_absent "$MINI/nonexist.db"
	# the directory of the path does not exist either
	expect_rc 66 publish_mini --db "$MINI/no/such/dir/cat.db"
	assert_absent "$MINI/no"
}

own_table_creates() {
	write_manifest "$T/own.yaml" <<EOT
destination: $MURL
outputs:
  - name: result
    path: out/result.txt
    to: own/result.txt
EOT
	expect_rc 0 publish_mini --manifest "$T/own.yaml" --db "$T/new.db"
	assert_eq "$(sql "$T/new.db" "SELECT status FROM jobs WHERE id = '1'")" published "own table"
}

no_jobs_table_in_external() {
	expect_rc 0 publish_mini
	assert_eq "$(row_status "$MDB" runs)" published "status"
	assert_eq "$(sql "$MDB" "SELECT count(*) FROM sqlite_master WHERE name = 'jobs'")" 0 \
		"a jobs table in the database whose manifest names runs"
	assert_eq "$(sql "$MDB" "SELECT count(*) FROM jobpub_attempts")" 1 "attempts"
}

bad_mapping_changes_nothing() {
	make_mini
	cp "$MDB" "$T/before.db"
	sed 's/table: runs/table: run/' "$MMAN" >"$T/wrong-table.yaml"
	expect_rc 65 publish_mini --manifest "$T/wrong-table.yaml"
	assert_grep "no table 'run'" "$ERR"
	cmp -s "$MDB" "$T/before.db" || fail "a manifest naming a missing table changed the database"
	sed 's/column: data_url/column: data_uri/' "$MMAN" >"$T/wrong-column.yaml"
	expect_rc 65 publish_mini --manifest "$T/wrong-column.yaml"
	assert_grep "no column 'data_uri'" "$ERR"
	cmp -s "$MDB" "$T/before.db" || fail "a manifest naming a missing column changed the database"
	assert_absent "$MDB-wal"
	assert_absent "$MARCHIVE"
}

# Own table mode: a usage error found with the job's row (${row.*} in --dest) creates no
# catalogue either.
own_table_usage_error() {
	write_manifest "$T/own2.yaml" <<EOT
outputs:
  - name: result
    path: out/result.txt
    to: result.txt
EOT
	expect_rc 64 "$JOBPUB" publish --job 7 --manifest "$T/own2.yaml" --workdir "$MJOB" \
		--db "$T/new7.db" --dest 'ftp://x/${row.status}'
	assert_grep 'row.status' "$ERR"
	assert_absent "$T/new7.db"
	expect_rc 64 "$JOBPUB" publish --job 7 --manifest "$T/own2.yaml" --workdir "$MJOB" \
		--db "$T/new7.db" --dest "file://$T/\${row.nosuch}"
	assert_absent "$T/new7.db"
	# an existing database jobpub has not written yet keeps its bytes
	sql "$T/other.db" "CREATE TABLE other (x)"
	cp "$T/other.db" "$T/other.before"
	expect_rc 64 "$JOBPUB" publish --job 7 --manifest "$T/own2.yaml" --workdir "$MJOB" \
		--db "$T/other.db" --dest 'ftp://x/${row.status}'
	cmp -s "$T/other.db" "$T/other.before" || fail "a usage error changed $T/other.db"
	# and the same command with a good destination creates it
	expect_rc 0 "$JOBPUB" publish --job 7 --manifest "$T/own2.yaml" --workdir "$MJOB" \
		--db "$T/new7.db" --dest "file://$T/own2/\${job}"
	[ -f "$T/new7.db" ] || fail "no catalogue after a good publish"
}

run_case external_missing
run_case own_table_usage_error
run_case own_table_creates
run_case no_jobs_table_in_external
run_case bad_mapping_changes_nothing
finish
