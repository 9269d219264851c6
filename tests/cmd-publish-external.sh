#!/bin/sh
# The example's external pdr_model_jobs table (created by pdr_run, not by jobpub): a job with no
# row is refused (65 "unknown job"), table and column names are checked against the real
# schema, and the status column goes from the row's value to the manifest's published-status.
. "$(dirname "$0")/lib.sh"

# refused_untouched: nothing uploaded, no attempt, row 1 as it was ($row_before).
refused_untouched() {
	assert_absent "$T/archive"
	assert_no_temps "$T"
	assert_eq "$(n_attempts "$EXDB")" 0 "attempt rows"
	assert_eq "$(sql "$EXDB" "SELECT * FROM pdr_model_jobs")" "$row_before" "the pdr_model_jobs rows"
}

no_such_job() {
	make_example
	row_before=$(sql "$EXDB" "SELECT * FROM pdr_model_jobs")
	expect_rc 65 "$JOBPUB" publish --job 2 --manifest "$EXMAN" --workdir "$EXJOB" --db "$EXDB" \
		--dest "$EXURL" --set "model=$EXMODEL"
	assert_grep 'unknown job' "$ERR"
	assert_grep '\b2\b' "$ERR"
	refused_untouched
}

# sed_manifest SED-SCRIPT: the example manifest edited, in $T/m.yaml.
sed_manifest() {
	sed "$1" "$EXMAN" >"$T/m.yaml"
	cmp -s "$EXMAN" "$T/m.yaml" && fail "test set-up: '$1' changed nothing"
	return 0
}

missing_column() {
	make_example
	row_before=$(sql "$EXDB" "SELECT * FROM pdr_model_jobs")
	sed_manifest 's/column: output_hdf4_file/column: output_hdf4_fiel/'
	expect_rc 65 "$JOBPUB" publish --job 1 --manifest "$T/m.yaml" --workdir "$EXJOB" --db "$EXDB" \
		--dest "$EXURL" --set "model=$EXMODEL"
	assert_grep 'output_hdf4_fiel' "$ERR"
	refused_untouched
}

missing_status_column() {
	make_example
	row_before=$(sql "$EXDB" "SELECT * FROM pdr_model_jobs")
	sed_manifest 's/status-column: status/status-column: state/'
	expect_rc 65 "$JOBPUB" publish --job 1 --manifest "$T/m.yaml" --workdir "$EXJOB" --db "$EXDB" \
		--dest "$EXURL" --set "model=$EXMODEL"
	assert_grep 'state' "$ERR"
	refused_untouched
}

missing_table() {
	make_example
	row_before=$(sql "$EXDB" "SELECT * FROM pdr_model_jobs")
	sed_manifest 's/table: pdr_model_jobs/table: pdr_model_job/'
	expect_rc 65 "$JOBPUB" publish --job 1 --manifest "$T/m.yaml" --workdir "$EXJOB" --db "$EXDB" \
		--dest "$EXURL" --set "model=$EXMODEL"
	assert_grep 'pdr_model_job\b' "$ERR"
	refused_untouched
	assert_eq "$(sql "$EXDB" "SELECT count(*) FROM sqlite_master WHERE name = 'pdr_model_job'")" 0 \
		"a table created for a misspelt name"
}

# A column name that is SQL: refused as unknown, the table survives.
column_injection() {
	make_example
	row_before=$(sql "$EXDB" "SELECT * FROM pdr_model_jobs")
	sed_manifest 's/column: output_hdf4_file/column: "status = 1; DROP TABLE pdr_model_jobs; --"/'
	expect_rc 65 "$JOBPUB" publish --job 1 --manifest "$T/m.yaml" --workdir "$EXJOB" --db "$EXDB" \
		--dest "$EXURL" --set "model=$EXMODEL"
	assert_grep "DROP TABLE" "$ERR"
	refused_untouched
}

pending_to_finished() {
	make_example
	sql "$EXDB" "UPDATE pdr_model_jobs SET status = 'pending' WHERE id = 1"
	# A second row that must not be touched.
	sql "$EXDB" "INSERT INTO pdr_model_jobs (id, model_job_name, status) VALUES (7, 'other', 'running')"
	other_before=$(sql "$EXDB" "SELECT * FROM pdr_model_jobs WHERE id = 7")
	expect_rc 0 publish_example
	assert_eq "$(row_status "$EXDB")" finished "status of job 1"
	assert_eq "$(sql "$EXDB" "SELECT output_textout_file FROM pdr_model_jobs WHERE id = 1")" \
		"$EXURL/pdrgrid/TEXTOUT$EXNAME" "output_textout_file"
	assert_eq "$(sql "$EXDB" "SELECT * FROM pdr_model_jobs WHERE id = 7")" "$other_before" "row 7"
	# jobpub does not put an external job into its own jobs table.
	if [ "$(sql "$EXDB" "SELECT count(*) FROM sqlite_master WHERE name = 'jobs'")" = 1 ]; then
		assert_eq "$(sql "$EXDB" "SELECT count(*) FROM jobs")" 0 "rows in jobpub's own jobs table"
	fi
	expect_rc 0 "$JOBPUB" status --db "$EXDB"
	assert_grep '^pdr_model_jobs +finished +1$' "$OUT"
	assert_grep '^pdr_model_jobs +running +1$' "$OUT"
}

run_case no_such_job
run_case missing_column
run_case missing_status_column
run_case missing_table
run_case column_injection
run_case pending_to_finished
finish
