#!/bin/sh
# A symlink swapped in and out under an output while jobpub publishes it never gets a byte from
# outside the work directory published (issue 13, defect 8).  out/f.txt flips, in a loop, between
# a copy of the job's own file and a symlink to a same-size file outside the job; 30 publishes
# run against it.  Each either publishes the job's own bytes (exit 0, recorded with their
# SHA-256) or refuses the file (65: it resolved outside at plan time; 74: it changed since it was
# checked) with the attempt rolled back.  The outside bytes appear nowhere at the destination or
# in the catalogue, and nothing crashes.  (Before, 3 of 30 such publishes copied the outside
# file and recorded the job published.)
. "$(dirname "$0")/lib.sh"
need ln mv cp grep

RUNS=30

make_mini
printf 'inside-data-0123\n' >"$MJOB/keep.txt"
printf 'OUTSIDE-DATA-xyz\n' >"$T/outside.txt"
[ "$(stat -c %s "$MJOB/keep.txt")" = "$(stat -c %s "$T/outside.txt")" ] || hard_error "sizes differ"
cp "$MJOB/keep.txt" "$MJOB/out/f.txt"
INSIDE_SHA=$(sha256sum <"$MJOB/keep.txt" | cut -d' ' -f1)
write_manifest "$MMAN" <<EOF
destination: $MURL
catalog:
  table: runs
  id-column: id
  status-column: status
outputs:
  - name: f
    path: out/f.txt
    to: f.txt
    column: result_url
    check: none
  - name: data
    path: out/data.bin
    to: data.bin
EOF
cp "$MDB" "$T/catalog.orig"

# The swapper: atomic renames, so out/f.txt always exists, as one or the other.
(
	while :; do
		ln -sfn "$T/outside.txt" "$MJOB/out/.swap" && mv -fT "$MJOB/out/.swap" "$MJOB/out/f.txt"
		cp "$MJOB/keep.txt" "$MJOB/out/.reg" && mv -fT "$MJOB/out/.reg" "$MJOB/out/f.txt"
	done
) >/dev/null 2>&1 &
SWAPPER=$!
bg_started "$SWAPPER"

ok=0 refused=0 changed=0 i=0
while [ "$i" -lt "$RUNS" ]; do
	i=$((i + 1))
	rm -rf -- "$MARCHIVE"
	cp "$T/catalog.orig" "$MDB"
	rc=0
	publish_mini >"$OUT" 2>"$ERR" || rc=$?
	case $rc in
	0)
		ok=$((ok + 1))
		cmp -s "$MARCHIVE/f.txt" "$MJOB/keep.txt" || fail "run $i: published f.txt is not the job's file"
		assert_eq "$(sql "$MDB" "SELECT sha256 FROM jobpub_files WHERE output = 'f'")" "$INSIDE_SHA" \
			"run $i: recorded sha256"
		assert_eq "$(row_status "$MDB" runs)" published "run $i: status"
		;;
	65)
		refused=$((refused + 1))
		assert_grep "^jobpub: .*out/f.txt.* outside the work directory" "$ERR"
		;;
	74)
		changed=$((changed + 1))
		assert_grep "^jobpub: .*out/f.txt.*changed" "$ERR"
		;;
	*)
		show "$ERR"
		fail "run $i: exit code $rc"
		;;
	esac
	if [ "$rc" -ne 0 ]; then
		assert_eq "$(row_status "$MDB" runs)" failed_storage "run $i: status"
		assert_eq "$(sql "$MDB" "SELECT count(*) FROM jobpub_files")" 0 "run $i: jobpub_files rows"
		[ ! -e "$MARCHIVE/f.txt" ] || fail "run $i: f.txt published by a failed attempt"
	fi
	! grep -rqF OUTSIDE "$MARCHIVE" 2>/dev/null || fail "run $i: outside bytes were published (exit $rc)"
	! grep -qF OUTSIDE "$MDB" || fail "run $i: outside bytes in the catalogue"
	assert_no_temps "$MARCHIVE"
done
kill "$SWAPPER" 2>/dev/null || true
wait "$SWAPPER" 2>/dev/null || true
printf 'runs %d: published %d, refused at plan %d, changed after plan %d\n' "$RUNS" "$ok" "$refused" "$changed"
assert_eq $((ok + refused + changed)) "$RUNS" "outcomes"
