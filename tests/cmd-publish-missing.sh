#!/bin/sh
# A missing required output fails the job before any upload (exit 66): the message names the
# output and its path, nothing reaches the destination, the job is failed_storage with the
# reason in its attempt row.  A missing optional output is skipped and reported.
. "$(dirname "$0")/lib.sh"

# ---- a required file ----
make_example
cols=$(example_columns)
rm "$EXJOB/pdroutput/TEXTOUT"
expect_rc 66 publish_example
assert_grep '^jobpub: ' "$ERR"
assert_grep 'textout' "$ERR"
assert_grep 'pdroutput/TEXTOUT' "$ERR"
assert_eq "$(count_files "$T/archive")" 0 "files at the destination"
assert_no_temps "$T"
assert_eq "$(row_status "$EXDB")" failed_storage "status"
assert_eq "$(example_columns)" "$cols" "mapped columns"
assert_eq "$(sql "$EXDB" "SELECT count(*) || ' ' || outcome || ' ' || exit_code FROM jobpub_attempts")" \
	"1 failed_storage 66" "the attempt row"
sql "$EXDB" "SELECT message FROM jobpub_attempts" >"$T/reason"
assert_grep 'textout' "$T/reason"
assert_grep 'pdroutput/TEXTOUT' "$T/reason"
assert_eq "$(sql "$EXDB" "SELECT count(*) FROM jobpub_files")" 0 "jobpub_files rows"

# ---- a required glob that matches nothing ----
make_example
cols=$(example_columns)
rm "$EXJOB"/onionoutput/jtemp_*
expect_rc 66 publish_example
assert_grep 'onion-jtemp' "$ERR"
assert_grep 'onionoutput/jtemp_\*' "$ERR"
assert_eq "$(count_files "$T/archive")" 0 "files at the destination (glob)"
assert_eq "$(row_status "$EXDB")" failed_storage "status (glob)"
assert_eq "$(example_columns)" "$cols" "mapped columns (glob)"

# ---- only the optional chemchk.out ----
make_example
rm -rf "$T/archive"
chemchk_col=$(sql "$EXDB" "SELECT quote(output_chemchk_file) FROM pdr_model_jobs")
rm "$EXJOB/pdroutput/chemchk.out"
expect_rc 0 publish_example
assert_grep 'chemchk.*skipped|skipped.*chemchk' "$ERR"
assert_eq "$(count_files "$EXARCHIVE")" 21 "files at the destination"
assert_absent "$EXARCHIVE/pdrgrid/chemchk$EXNAME.out"
assert_eq "$(row_status "$EXDB")" finished "status"
assert_eq "$(sql "$EXDB" "SELECT quote(output_chemchk_file) FROM pdr_model_jobs")" "$chemchk_col" \
	"output_chemchk_file of a skipped output"
assert_eq "$(sql "$EXDB" "SELECT count(*) FROM jobpub_files")" 21 "jobpub_files rows"
exit 0
