#!/bin/sh
# A destination that cannot be created (a regular file where a directory must go) is refused
# permanently: exit 69, the job is failed_storage, nothing temporary is left.  An unknown URL
# scheme is a configuration error: exit 78.
. "$(dirname "$0")/lib.sh"

# A regular file where the directory results/ must be.
file_in_the_way() {
	make_mini
	mkdir -p "$MARCHIVE"
	printf 'a file, not a directory\n' >"$MARCHIVE/results"
	expect_rc 69 publish_mini
	assert_grep '^jobpub: ' "$ERR"
	assert_grep 'results' "$ERR"
	assert_grep '^a file, not a directory$' "$MARCHIVE/results"
	assert_eq "$(count_files "$MARCHIVE")" 1 "files at the destination"
	assert_no_temps "$T"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status"
	assert_eq "$(sql "$MDB" "SELECT quote(result_url) || ' ' || quote(data_url) FROM runs")" \
		"NULL NULL" "mapped columns"
	assert_eq "$(sql "$MDB" "SELECT outcome || ' ' || exit_code FROM jobpub_attempts")" \
		"failed_storage 69" "the attempt row"
}

# The destination itself is a regular file.
dest_is_a_file() {
	make_mini
	printf 'x\n' >"$T/plain"
	expect_rc 69 publish_mini --dest "file://$T/plain"
	assert_grep_fixed "$T/plain" "$ERR"
	assert_grep '^x$' "$T/plain"
	assert_no_temps "$T"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status"
}

# The second output's directory is blocked: the first output, already staged or committed,
# must not stay behind.
second_dir_blocked() {
	make_mini
	sed 's|to: results/\${row.name}/data.bin|to: data/run-a/data.bin|' "$MMAN" >"$T/m.yaml"
	mkdir -p "$MARCHIVE"
	printf 'blocker\n' >"$MARCHIVE/data"
	expect_rc 69 publish_mini --manifest "$T/m.yaml"
	assert_absent "$MARCHIVE/results/run-a/result.txt"
	assert_eq "$(count_files "$MARCHIVE")" 1 "files at the destination"
	assert_no_temps "$T"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status"
}

unknown_scheme() {
	make_mini
	expect_rc 78 publish_mini --dest 's4://x'
	assert_grep 's4' "$ERR"
	assert_absent "$MARCHIVE"
	assert_absent "$MJOB/s4:"
	assert_no_temps "$T"
}

run_case file_in_the_way
run_case dest_is_a_file
run_case second_dir_blocked
run_case unknown_scheme
finish
