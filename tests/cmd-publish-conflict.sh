#!/bin/sh
# A final name that holds different content is a conflict: exit 69, the message names the
# remote URL and --overwrite, nothing is changed at the destination; a published job stays
# published (its attempt records the conflict), a first publish leaves the job failed_storage.
# With --overwrite the file is replaced and the job is published.
. "$(dirname "$0")/lib.sh"

make_example
expect_rc 0 publish_example
urls_before=$(example_columns)

# Change one published file, keeping its size, so that only the checksum tells.
victim=$EXARCHIVE/pdrgrid/CTRL_IND$EXNAME
size=$(stat -c %s "$victim")
head -c "$size" /dev/zero | tr '\0' 'x' >"$victim"
cp "$victim" "$T/changed"
snapshot "$T/archive" "$T/snap1"

expect_rc 69 publish_example
assert_grep_fixed "$EXURL/pdrgrid/CTRL_IND$EXNAME" "$ERR"
assert_grep '--overwrite' "$ERR"
cmp -s "$victim" "$T/changed" || fail "the conflicting file was changed without --overwrite"
snapshot "$T/archive" "$T/snap2"
cmp -s "$T/snap1" "$T/snap2" || {
	diff "$T/snap1" "$T/snap2" >&2 || true
	fail "the destination changed after a conflict"
}
assert_no_temps "$T"
assert_eq "$(row_status "$EXDB")" finished "status after a conflict (the job stays published)"
assert_eq "$(example_columns)" "$urls_before" "mapped columns after a conflict"
assert_eq "$(sql "$EXDB" "SELECT outcome || ' ' || exit_code FROM jobpub_attempts
	ORDER BY id DESC LIMIT 1")" "failed_storage 69" "the conflict's attempt row"
assert_grep_fixed "CTRL_IND$EXNAME" /dev/stdin <<EOF
$(sql "$EXDB" "SELECT message FROM jobpub_attempts ORDER BY id DESC LIMIT 1")
EOF

expect_rc 0 publish_example --overwrite
cmp -s "$victim" "$EXJOB/pdroutput/CTRL_IND" || fail "--overwrite did not replace the file"
assert_no_temps "$T"
assert_eq "$(row_status "$EXDB")" finished "status after --overwrite"
assert_eq "$(sql "$EXDB" "SELECT sha256 FROM jobpub_files WHERE remote_url = '$EXURL/pdrgrid/CTRL_IND$EXNAME'")" \
	"$(sha256sum "$EXJOB/pdroutput/CTRL_IND" | cut -d' ' -f1)" "recorded sha256 after --overwrite"

# A conflict on a first publish: the other 21 files must not stay at the destination, and the
# mapped columns keep their old (empty) values.
make_example
cols=$(example_columns)
rm -rf "$T/archive"
mkdir -p "$EXARCHIVE/pdrgrid"
printf 'someone else\n' >"$EXARCHIVE/pdrgrid/pdr_config$EXNAME.json"
expect_rc 69 publish_example
assert_grep_fixed "$EXURL/pdrgrid/pdr_config$EXNAME.json" "$ERR"
left=$(cd "$T/archive" && find . ! -type d)
assert_eq "$left" "./$EXMODEL/pdrgrid/pdr_config$EXNAME.json" "files at the destination after a conflict"
assert_grep '^someone else$' "$EXARCHIVE/pdrgrid/pdr_config$EXNAME.json"
assert_eq "$(row_status "$EXDB")" failed_storage "status after a first-publish conflict"
assert_eq "$(example_columns)" "$cols" "mapped columns after a first-publish conflict"
assert_eq "$(sql "$EXDB" "SELECT count(*) FROM jobpub_files")" 0 "jobpub_files after a conflict"
exit 0
