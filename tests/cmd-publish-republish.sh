#!/bin/sh
# Re-running a published job is safe and cheap: exit 0, nothing rewritten (same inodes and
# modification times), the second attempt sends 0 bytes, and status shows both attempts.
# A re-publish after a local file changed is a conflict (69) that leaves the job published as it
# was (status, mapped columns, jobpub_files, the files themselves); only its attempt says it
# failed, and `status` shows it.  `republish --job 1` fails the same way; with --overwrite the
# new content is published (issue 13, defect 3).
. "$(dirname "$0")/lib.sh"

make_example
expect_rc 0 publish_example
snapshot "$T/archive" "$T/snap1"
[ "$(count_files "$EXARCHIVE")" -eq 22 ] || fail "first publish: $(count_files "$EXARCHIVE") files, expected 22"
sql "$EXDB" "SELECT * FROM jobpub_files ORDER BY remote_url" >"$T/files1"
sleep 1.1 # so that a rewrite would show in the modification times

expect_rc 0 publish_example
assert_grep 'already' "$ERR"
snapshot "$T/archive" "$T/snap2"
cmp -s "$T/snap1" "$T/snap2" || {
	diff "$T/snap1" "$T/snap2" >&2 || true
	fail "the second publish changed the destination (paths, sizes, mtimes or inodes)"
}
assert_no_temps "$T"

assert_eq "$(sql "$EXDB" "SELECT count(*) FROM jobpub_attempts WHERE job = '1'")" 2 "attempt rows"
assert_eq "$(sql "$EXDB" "SELECT outcome || ' ' || exit_code || ' ' || bytes || ' ' || files
	FROM jobpub_attempts WHERE job = '1' ORDER BY id DESC LIMIT 1")" "published 0 0 22" \
	"second attempt (outcome, exit code, bytes sent, files)"
assert_eq "$(row_status "$EXDB")" finished "status after the second publish"
assert_eq "$(sql "$EXDB" "SELECT count(*) FROM jobpub_files WHERE job = '1'")" 22 "jobpub_files rows"
# Same files, sizes and checksums as after the first publish (only times/attempt may differ).
sql "$EXDB" "SELECT * FROM jobpub_files ORDER BY remote_url" >"$T/files2"
cut -d'|' -f1-7 "$T/files1" >"$T/f1"
cut -d'|' -f1-7 "$T/files2" >"$T/f2"
cmp -s "$T/f1" "$T/f2" || { diff "$T/f1" "$T/f2" >&2 || true; fail "jobpub_files changed"; }

expect_rc 0 "$JOBPUB" status --db "$EXDB" 1
assert_grep '^job 1: finished' "$OUT"
assert_grep '^attempts: 2$' "$OUT"
[ "$(grep -c '^  #[0-9]* .* published' "$OUT")" -eq 2 ] || {
	show "$OUT"
	fail "status should list two published attempts"
}

# ---- the local file changed: a conflict that keeps the job published -----------------------------
printf 'CTRL_IND of a rerun\n' >"$EXJOB/pdroutput/CTRL_IND"
cols=$(example_columns)
sql "$EXDB" "SELECT * FROM jobpub_files ORDER BY remote_url" >"$T/files3"
snapshot "$T/archive" "$T/snap3"
check_still_published() {
	assert_eq "$(row_status "$EXDB")" finished "status after a failed re-publish ($1)"
	assert_eq "$(example_columns)" "$cols" "mapped columns after a failed re-publish ($1)"
	sql "$EXDB" "SELECT * FROM jobpub_files ORDER BY remote_url" >"$T/files4"
	cmp -s "$T/files3" "$T/files4" || {
		diff "$T/files3" "$T/files4" >&2 || true
		fail "jobpub_files changed after a failed re-publish ($1)"
	}
	snapshot "$T/archive" "$T/snap4"
	cmp -s "$T/snap3" "$T/snap4" || fail "the destination changed after a failed re-publish ($1)"
	assert_eq "$(sql "$EXDB" "SELECT outcome || ' ' || exit_code FROM jobpub_attempts
		ORDER BY id DESC LIMIT 1")" "failed_storage 69" "the failed attempt ($1)"
	sql "$EXDB" "SELECT message FROM jobpub_attempts ORDER BY id DESC LIMIT 1" >"$T/reason"
	assert_grep "^publish: conflict: $EXURL/pdrgrid/CTRL_IND$EXNAME already holds different content" \
		"$T/reason"
}
expect_rc 69 publish_example
check_still_published publish
expect_rc 0 "$JOBPUB" status --db "$EXDB" 1
assert_grep '^job 1: finished' "$OUT"
assert_grep "^last attempt failed: #3 .* \[unavailable, exit 69\] publish: conflict: .*CTRL_IND$EXNAME" "$OUT"
expect_rc 0 "$JOBPUB" status --db "$EXDB" --json 1
assert_json "$OUT"
assert_grep '"last_failed_attempt":\{"id":3,.*"exit_code":69' "$OUT"
assert_grep '"publishing_now":null' "$OUT"

# republish takes it only when asked by --job, and without --overwrite it fails the same way.
expect_rc 0 "$JOBPUB" republish --db "$EXDB" --dry-run
assert_grep '^republish: 0 jobs$' "$OUT"
expect_rc 69 "$JOBPUB" republish --db "$EXDB" --job 1
assert_grep '^job 1: failed \(exit 69\): publish: conflict' "$OUT"
check_still_published republish

expect_rc 0 "$JOBPUB" republish --db "$EXDB" --job 1 --overwrite
assert_grep '^job 1: published$' "$OUT"
cmp -s "$EXJOB/pdroutput/CTRL_IND" "$EXARCHIVE/pdrgrid/CTRL_IND$EXNAME" ||
	fail "republish --overwrite did not publish the new content"
assert_eq "$(row_status "$EXDB")" finished "status after republish --overwrite"
assert_eq "$(sql "$EXDB" "SELECT sha256 FROM jobpub_files WHERE remote_url =
	'$EXURL/pdrgrid/CTRL_IND$EXNAME'")" "$(sha256sum "$EXJOB/pdroutput/CTRL_IND" | cut -d' ' -f1)" \
	"recorded sha256 after republish --overwrite"
expect_rc 0 "$JOBPUB" status --db "$EXDB" 1
assert_no_grep '^last attempt failed' "$OUT"
assert_no_temps "$T"
exit 0
