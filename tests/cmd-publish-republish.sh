#!/bin/sh
# Re-running a published job is safe and cheap: exit 0, nothing rewritten (same inodes and
# modification times), the second attempt sends 0 bytes, and status shows both attempts.
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
exit 0
