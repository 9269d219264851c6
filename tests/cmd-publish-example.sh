#!/bin/sh
# The KOSMA-tau example end to end: every output lands under its pdr_run name with the same
# bytes, the catalogue row holds the URLs and status 'finished', jobpub_files holds the right
# sizes and SHA-256s, nothing temporary is left, `status` shows it, and --log-format json
# writes one valid JSON object per stderr line.  Out/ becomes one tar.gz that lists every file
# of Out/ with the same bytes, its entry count recorded; the HDF5 structure file's parameters
# land in jobpub_attributes.
. "$(dirname "$0")/lib.sh"
need python3

make_example
before=$(sql "$EXDB" "SELECT log_file, output_json_file, model_job_name
	FROM pdr_model_jobs WHERE id = 1")

expect_rc 0 publish_example
assert_grep '^jobpub: job 1: published 22 files' "$ERR"

# ---- the files ----
example_files >"$T/expected"
[ "$(wc -l <"$T/expected")" -eq 21 ] || fail "example_files should list 21 files"
while read -r local remote; do
	[ -f "$EXARCHIVE/$remote" ] || fail "$remote is not at the destination"
	cmp -s "$EXJOB/$local" "$EXARCHIVE/$remote" || fail "$remote differs from $local"
done <"$T/expected"
# ---- Out/ as one archive: every file of Out/, same bytes ----
mcdrt="pdrgrid/MCDRT$EXNAME.tar.gz"
[ -f "$EXARCHIVE/$mcdrt" ] || fail "$mcdrt is not at the destination"
mkdir "$T/untar"
tar -xzf "$EXARCHIVE/$mcdrt" -C "$T/untar" 2>"$T/tar.err" || fail "tar -xzf $mcdrt failed"
[ ! -s "$T/tar.err" ] || { show "$T/tar.err"; fail "tar complained about $mcdrt"; }
diff -r "$EXJOB/Out" "$T/untar/Out" >/dev/null || fail "Out/ in $mcdrt differs from the job's Out/"
entries=$(tar -tzf "$EXARCHIVE/$mcdrt" | wc -l)
assert_eq "$(sql "$EXDB" "SELECT entries FROM jobpub_files WHERE output = 'mcdrt'")" "$entries" \
	"entries recorded for $mcdrt"
assert_eq "$(sql "$EXDB" "SELECT size || ' ' || sha256 FROM jobpub_files WHERE output = 'mcdrt'")" \
	"$(stat -c %s "$EXARCHIVE/$mcdrt") $(sha256sum "$EXARCHIVE/$mcdrt" | cut -d' ' -f1)" \
	"size and sha256 recorded for $mcdrt"
assert_eq "$(sql "$EXDB" "SELECT group_concat(name || '=' || value, ' ') FROM (SELECT * FROM
	jobpub_attributes WHERE job = '1' AND output = 'hdf5-struct' ORDER BY name)")" \
	"mass=10 metal=1 n_surface=10000 rad_surface=100" "jobpub_attributes of hdf5-struct"

# Exactly those: not out.log, the top-level CTRL_IND or ONION3.INP.
(cd "$EXARCHIVE" && find . ! -type d | sed 's|^\./||' | LC_ALL=C sort) >"$T/actual"
{ awk '{print $2}' "$T/expected"; echo "$mcdrt"; } | LC_ALL=C sort >"$T/expected.remote"
cmp -s "$T/expected.remote" "$T/actual" || {
	diff "$T/expected.remote" "$T/actual" >&2 || true
	fail "the destination holds other files than the manifest's 22"
}
assert_no_temps "$T"

# ---- the catalogue row ----
assert_eq "$(row_status "$EXDB")" finished "status of job 1"
check_col() {
	assert_eq "$(sql "$EXDB" "SELECT $1 FROM pdr_model_jobs WHERE id = 1")" "$EXURL/$2" "column $1"
}
check_col output_textout_file "pdrgrid/TEXTOUT$EXNAME"
check_col output_hdf4_file "pdrgrid/pdr$EXNAME.hdf"
check_col output_hdf5_file "pdrgrid/pdrstruct$EXNAME.hdf5"
check_col output_chemchk_file "pdrgrid/chemchk$EXNAME.out"
check_col output_ctrl_ind_file "pdrgrid/CTRL_IND$EXNAME"
check_col input_pdrnew_inp_file "pdrgrid/PDRNEW$EXNAME.INP"
check_col input_json_file "pdrgrid/pdr_config$EXNAME.json"
check_col output_mcdrt_zip_file "pdrgrid/MCDRT$EXNAME.tar.gz"
# Columns the manifest does not map are left alone.
assert_eq "$(sql "$EXDB" "SELECT log_file, output_json_file, model_job_name
	FROM pdr_model_jobs WHERE id = 1")" "$before" "unmapped columns"

# ---- jobpub_files: one row per file, size and SHA-256 of the local file ----
assert_eq "$(sql "$EXDB" "SELECT count(*) FROM jobpub_files WHERE job = '1'")" 22 "jobpub_files rows"
while read -r local remote; do
	row=$(sql "$EXDB" "SELECT size || ' ' || sha256 FROM jobpub_files
		WHERE job = '1' AND remote_url = '$EXURL/$remote'")
	[ -n "$row" ] || fail "no jobpub_files row for $EXURL/$remote"
	want="$(stat -c %s "$EXJOB/$local") $(sha256sum "$EXJOB/$local" | cut -d' ' -f1)"
	assert_eq "$row" "$want" "size and sha256 recorded for $remote"
done <"$T/expected"

# ---- the attempt ----
assert_eq "$(sql "$EXDB" "SELECT count(*) || ' ' || outcome || ' ' || exit_code || ' ' || files
	FROM jobpub_attempts WHERE job = '1'")" "1 published 0 22" "the attempt row"
bytes=$(sql "$EXDB" "SELECT bytes FROM jobpub_attempts WHERE job = '1'")
total=$({ while read -r local remote; do stat -c %s "$EXJOB/$local"; done <"$T/expected"
	stat -c %s "$EXARCHIVE/$mcdrt"; } | awk '{ s += $1 } END { print s }')
assert_eq "$bytes" "$total" "bytes of the attempt"

# ---- jobpub status 1 ----
expect_rc 0 "$JOBPUB" status --db "$EXDB" 1
assert_grep '^job 1: finished' "$OUT"
assert_grep '^files: 22$' "$OUT"
assert_grep '^attempts: 1$' "$OUT"
assert_grep '^  #1 .* published' "$OUT"
assert_grep_fixed "$EXURL/pdrgrid/TEXTOUT$EXNAME" "$OUT"

# ---- --log-format json, on a fresh job ----
make_example
rm -rf "$T/archive"
expect_rc 0 publish_example --log-format json
python3 - "$ERR" "$EXJOB" "$T/expected" <<'EOF' || fail "the JSON log is not as expected (see above)"
import hashlib, json, sys
errors = []
lines = open(sys.argv[1]).read().splitlines()
files = dict(l.split() for l in open(sys.argv[3]))
events = []
for n, line in enumerate(lines, 1):
    try:
        ev = json.loads(line)
    except ValueError as e:
        errors.append("line %d is not JSON (%s): %r" % (n, e, line))
        continue
    if not isinstance(ev, dict):
        errors.append("line %d is not an object: %r" % (n, line))
        continue
    events.append(ev)
per_file = [e for e in events if e.get("output") is not None]
staged = [e for e in per_file if e.get("event") == "staged"]
if len(staged) != 22:
    errors.append("%d 'staged' events, expected 22" % len(staged))
seen = set()
for e in per_file:
    keys = ("event", "job", "output", "bytes", "sha256")
    if e.get("event") == "staged":
        keys += ("duration_ms",)
    for k in keys:
        if k not in e:
            errors.append("event without %r: %r" % (k, e))
    if e.get("job") != "1":
        errors.append("job is not \"1\": %r" % e)
    local = e.get("local")
    if local == "Out":
        # the archive: its bytes are the published tar.gz's
        if e.get("entries", None) is not None:
            errors.append("entries in a JSON event: %r" % e)
        if e.get("event") == "staged":
            seen.add(local)
    elif local in files:
        data = open(sys.argv[2] + "/" + local, "rb").read()
        if e.get("bytes") != len(data) or e.get("sha256") != hashlib.sha256(data).hexdigest():
            errors.append("bytes/sha256 wrong for %s: %r" % (local, e))
        if e.get("event") == "staged":
            seen.add(local)
    else:
        errors.append("event for an unknown local file: %r" % e)
if seen != set(files) | {"Out"}:
    errors.append("no staged event for %s" % sorted((set(files) | {"Out"}) - seen))
if not any(e.get("event") == "published" and e.get("job") == "1" and "duration_ms" in e
           for e in events):
    errors.append("no final 'published' event with duration_ms")
for m in errors:
    print("  " + m, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
assert_no_temps "$T"

# The attempt records where the files went: the resolved destination, not the template.
assert_eq "$(sql "$EXDB" "SELECT destination FROM jobpub_attempts WHERE job = '1'")" "$EXURL" \
	"destination recorded in the attempt"
exit 0
