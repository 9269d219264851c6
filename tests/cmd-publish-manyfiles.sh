#!/bin/sh
# A job with more files than the open-file limit is published (issue 13, defect 10): under
# `ulimit -n 64`, a glob of 400 small files, to file://, with one lane and with four.  Every
# file arrives whole with the published mode (0644 under umask 022), no temporary is left, and
# the job is recorded published with 400 files.  (Before, a descriptor was held per staged
# file until the commit: "Too many open files", 74.)
. "$(dirname "$0")/lib.sh"
need seq

N=400

# many_files: the minimal job with $N files out/many/fNNN (their own name as content) published
# by a glob, into $MARCHIVE/many/.
many_files() {
	make_mini
	mkdir "$MJOB/out/many"
	for i in $(seq -w 1 $N); do
		printf 'file %s of a big job\n' "$i" >"$MJOB/out/many/f$i"
	done
	write_manifest "$MMAN" <<EOF2
destination: $MURL
catalog:
  table: runs
  id-column: id
  status-column: status
outputs:
  - name: many
    glob: out/many/f*
    to: many/\${basename}
EOF2
}

# published_all: exit 0 and every file at the destination, as it is, mode 0644.
published_all() {
	assert_eq "$(count_files "$MARCHIVE/many")" "$N" "files at the destination"
	diff -r "$MJOB/out/many" "$MARCHIVE/many" >"$T/diff" 2>&1 || { show "$T/diff"; fail "content differs"; }
	assert_eq "$(find "$MARCHIVE/many" -type f ! -perm 0644 | wc -l | tr -d ' ')" 0 "files not 0644"
	assert_no_temps "$MARCHIVE"
	assert_eq "$(row_status "$MDB" runs)" published "status"
	assert_eq "$(sql "$MDB" "SELECT count(*) FROM jobpub_files")" "$N" "jobpub_files rows"
}

case_one_lane() {
	many_files
	umask 022
	expect_rc 0 sh -c 'ulimit -n 64 && exec "$@"' sh "$JOBPUB" publish --job 1 --manifest "$MMAN" \
		--workdir "$MJOB" --db "$MDB"
	published_all
}

case_four_lanes() {
	many_files
	umask 022
	expect_rc 0 sh -c 'ulimit -n 64 && exec "$@"' sh "$JOBPUB" publish --job 1 --manifest "$MMAN" \
		--workdir "$MJOB" --db "$MDB" --parallel 4
	published_all
}

run_case case_one_lane
run_case case_four_lanes
finish
