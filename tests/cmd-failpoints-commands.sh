#!/bin/sh
# Failure of a single library call at sampled moments of the commands other than publish
# (tests/cmd-failpoints.sh sweeps publish): status, status --json ID, verify --deep, gc, spool
# --json, republish --dry-run, and the two that write, gc --apply and republish.  The shim
# (tests/failshim.so, LD_PRELOAD) makes the Nth call of one function fail (ENOMEM for the
# allocators, counted in jobpub's own calls; EIO for the rest, counting SQLite's too).
#
# The state: a catalogue with an external job table, job 1 published, job 2 failed_storage (its
# output was missing, now back), job 3 only spooled (pending), an invalid spool entry, and a
# temporary file left in the destination by a killed publish.  A first run of each command
# counts its calls; then FAILPOINTS_PER_FUNC (default 2) calls k spread over 1..count fail, one
# run each.  After each run:
#   - the exit code is 0 or a sysexits code (64-78), never a crash; a failure says why on a
#     line starting with "jobpub: " (verify, gc: or in the line of the file it could not check
#     or delete);
#   - a read-only command changed nothing (catalogue, destination, spool); one that exited 0
#     printed what it prints without the fault (numbers aside: ages, times), or named the
#     failure in its answer (spool lists an entry it could not read as invalid, with why);
#   - after gc --apply and republish: tests/invariants passes, then `gc --apply --older-than 0s`
#     and `republish --spool` recover: jobs 1-3 published with the expected bytes, nothing
#     left (tests/invariants --strict).
# FAILPOINTS_ONLY (functions) and FAILPOINTS_CMDS (command names below) narrow the sweep.
. "$(dirname "$0")/lib.sh"
need python3 awk
[ -n "${FAILSHIM:-}" ] && [ -f "$FAILSHIM" ] || hard_error "FAILSHIM (tests/failshim.so) is not built"
INV=$TOP_SRCDIR/tests/invariants
PER=${FAILPOINTS_PER_FUNC:-2}
FUNCS=${FAILPOINTS_ONLY:-malloc,calloc,realloc,strdup,strndup,open,openat,read,write,pwrite,fsync,close,renameat2,mkdirat,readdir}
CMDS=${FAILPOINTS_CMDS:-status status-job verify gc spool dry-republish gc-apply republish}
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export ASAN_OPTIONS

# ---- the template state ----
TPL=$T/tpl
MAN=$T/manifest.yaml
mkdir -p "$TPL"
for j in 1 2 3; do
	mkdir -p "$TPL/w/$j/out" "$TPL/w/$j/onion"
	printf 'PDR model m%s\nconverged\n' "$j" >"$TPL/w/$j/out/TEXTOUT"
	head -c 3000 /dev/urandom >"$TPL/w/$j/onion/jerg_CO.smli"
	head -c 2000 /dev/urandom >"$TPL/w/$j/onion/jerg_13CO.smli"
done
sql "$TPL/catalog.db" "CREATE TABLE pdr_model_jobs (id INTEGER PRIMARY KEY,
	model_job_name TEXT NOT NULL, status TEXT, output_textout_file TEXT);
	INSERT INTO pdr_model_jobs (id, model_job_name, status) VALUES (1, 'm1', 'running'),
	(2, 'm2', 'running'), (3, 'm3', 'pending');"
write_manifest "$MAN" <<'EOF'
catalog:
  table: pdr_model_jobs
  id-column: id
  status-column: status
  published-status: finished
outputs:
  - name: textout
    path: out/TEXTOUT
    to: pdrgrid/TEXTOUT${row.model_job_name}
    column: output_textout_file
  - name: onion
    glob: onion/jerg_*
    to: oniongrid/ONION${row.model_job_name}.${basename}
EOF
# The paths the state records are those of $S, where each run finds a fresh copy of it.
S=$T/s
cp -a "$TPL" "$S"
"$JOBPUB" publish --job 1 --manifest "$MAN" --workdir "$S/w/1" --db "$S/catalog.db" \
	--dest "file://$S/archive" >"$T/p1" 2>&1 || { show "$T/p1"; fail "publish of job 1"; }
mv "$S/w/2/out/TEXTOUT" "$S/TEXTOUT.2"
rc=0
"$JOBPUB" publish --job 2 --manifest "$MAN" --workdir "$S/w/2" --db "$S/catalog.db" \
	--dest "file://$S/archive" >"$T/p2" 2>&1 || rc=$?
[ "$rc" -eq 66 ] || { show "$T/p2"; fail "publish of job 2 without its output: exit $rc"; }
mv "$S/TEXTOUT.2" "$S/w/2/out/TEXTOUT"
"$JOBPUB" enqueue --job 3 --manifest "$MAN" --workdir "$S/w/3" --db "$S/catalog.db" \
	--dest "file://$S/archive" --spool "$S/spool" >"$T/e3" 2>&1 || { show "$T/e3"; fail "enqueue of job 3"; }
printf 'not json\n' >"$S/spool/9.json"
chmod 0600 "$S/spool/9.json"
# What a SIGKILLed publish leaves: a temporary name beside a final one.
printf 'partial' >"$S/archive/pdrgrid/.jobpub-0123456789abcdef.TEXTOUTm2"
touch -d '2 hours ago' "$S/archive/pdrgrid/.jobpub-0123456789abcdef.TEXTOUTm2"
python3 "$INV" --db "$S/catalog.db" --dest "file://$S/archive" --jobpub "$JOBPUB" >"$T/inv0" 2>&1 ||
	{ show "$T/inv0"; fail "invariants of the template state"; }
rm -rf "$TPL"
mv "$S" "$TPL"

# The expected end state, from a recovery without any fault.
restore() {
	rm -rf -- "$S"
	cp -a "$TPL" "$S"
}

# run NAME [ENV=VALUE]...: the command NAME on $S (stdout $S.out, stderr $S.err).
run() {
	local name=$1
	shift
	set -- env "$@" LD_PRELOAD="$FAILSHIM" "$JOBPUB"
	case $name in
	status) "$@" status --db "$S/catalog.db" ;;
	status-job) "$@" status --db "$S/catalog.db" --json 2 ;;
	verify) "$@" verify --db "$S/catalog.db" --deep ;;
	gc) "$@" gc --db "$S/catalog.db" --older-than 0s ;;
	spool) "$@" spool --spool "$S/spool" --json ;;
	dry-republish) "$@" republish --db "$S/catalog.db" --spool "$S/spool" --dry-run ;;
	gc-apply) "$@" gc --db "$S/catalog.db" --older-than 0s --apply ;;
	republish) "$@" republish --db "$S/catalog.db" --spool "$S/spool" --parallel 1 ;;
	esac >"$S.out" 2>"$S.err"
}

writes() {
	case $1 in gc-apply | republish) return 0 ;; esac
	return 1
}

# state: a fingerprint of the catalogue's rows, the destination and the spool.
state() {
	sqlite3 -batch "$S/catalog.db" .dump
	(cd "$S" && find archive spool -printf '%p %y %s %m\n' | LC_ALL=C sort)
}

# numbers aside: ages and times differ between runs.
denum() {
	sed 's/[0-9][0-9]*/N/g' "$1"
}

recover() {
	local what=$1 st
	"$JOBPUB" gc --db "$S/catalog.db" --apply --older-than 0s >"$S.gc" 2>&1 ||
		{ show "$S.gc"; fail "$what: gc --apply failed"; }
	"$JOBPUB" republish --db "$S/catalog.db" --spool "$S/spool" >"$S.rep" 2>&1 ||
		{ show "$S.rep"; fail "$what: republish failed"; }
	for j in 1 2 3; do
		st=$(sql "$S/catalog.db" "SELECT status FROM pdr_model_jobs WHERE id = $j")
		[ "$st" = finished ] || fail "$what: after recovery job $j is '$st'"
	done
	(cd "$S/archive" && find . -type f -exec sha256sum {} + | LC_ALL=C sort) >"$S.got"
	[ -e "$T/expected" ] || cp "$S.got" "$T/expected"
	cmp -s "$T/expected" "$S.got" || { diff "$T/expected" "$S.got" >&2 || true; fail "$what: other bytes after recovery"; }
	python3 "$INV" --db "$S/catalog.db" --dest "file://$S/archive" --jobpub "$JOBPUB" --strict \
		>"$S.inv" 2>&1 || { show "$S.inv"; fail "$what: invariants --strict after recovery"; }
}

restore
recover "without a fault"
[ "$(wc -l <"$T/expected")" -eq 9 ] || { cat "$T/expected" >&2; fail "the recovered state has not 9 files"; }

RUNS=0
FIRED=0
for cmd in $CMDS; do
	# The reference: the calls counted, what it prints, the state before and after.
	restore
	state >"$T/state0"
	run "$cmd" JP_FAIL_COUNT="$T/counts" || { show "$S.err"; fail "$cmd without a fault"; }
	denum "$S.out" >"$T/ref.out"
	restore
	run "$cmd" JP_FAIL_SCOPE=exe JP_FAIL_COUNT="$T/counts-exe" || { show "$S.err"; fail "$cmd without a fault"; }
	for f in $(echo "$FUNCS" | tr ',' ' '); do
		cf=$T/counts scope=all
		case $f in malloc | calloc | realloc | strdup | strndup) cf=$T/counts-exe scope=exe ;; esac
		n=$(awk -v f="$f" '$1 == f { print $2 }' "$cf")
		[ -n "$n" ] || continue
		for k in $(awk -v n="$n" -v p="$PER" 'BEGIN {
			if (n <= p) { for (i = 1; i <= n; i++) print i; exit }
			for (i = 0; i < p; i++) { k = 1 + int(i * (n - 1) / (p - 1) + 0.5); if (k != last) print k; last = k }
		}'); do
			what="$cmd with $f call $k failing"
			restore
			rm -f "$T/c"
			rc=0
			run "$cmd" JP_FAIL="$f:$k" JP_FAIL_SCOPE=$scope JP_FAIL_COUNT="$T/c" || rc=$?
			RUNS=$((RUNS + 1))
			! grep -q '^fired ' "$T/c" 2>/dev/null || FIRED=$((FIRED + 1))
			case $rc in
			0 | 6[4-9] | 7[0-8]) ;;
			*) show "$S.err"; fail "$what: exit code $rc" ;;
			esac
			if grep -Eq 'Sanitizer|runtime error|Segmentation|Aborted|core dumped' "$S.err"; then
				show "$S.err"
				fail "$what: a crash or sanitizer report"
			fi
			if [ "$rc" -ne 0 ]; then
				# verify and gc say why a file could not be checked or deleted in its line.
				grep -q '^jobpub: ' "$S.err" || grep -Eq ': cannot be |Input/output error|out of memory' "$S.out" || { show "$S.out"; show "$S.err"; fail "$what: exit $rc without a 'jobpub: ' line"; }
			fi
			if writes "$cmd"; then
				python3 "$INV" --db "$S/catalog.db" --dest "file://$S/archive" --jobpub "$JOBPUB" \
					>"$S.inv" 2>&1 || { show "$S.err"; show "$S.inv"; fail "$what (exit $rc): invariants"; }
				recover "$what"
			else
				state >"$T/state1"
				cmp -s "$T/state0" "$T/state1" ||
					{ diff "$T/state0" "$T/state1" >&2 || true; fail "$what (exit $rc): the state changed"; }
				if [ "$rc" -eq 0 ]; then
					denum "$S.out" >"$T/got.out"
					# Unless the answer says what failed (spool lists an entry it could not
					# read as invalid, with the reason).
					cmp -s "$T/ref.out" "$T/got.out" ||
						grep -Eq 'out of memory|Input/output error|not readable' "$S.out" "$S.err" ||
						{ diff "$T/ref.out" "$T/got.out" >&2 || true; show "$S.err"; fail "$what: exit 0 with another answer"; }
				fi
			fi
		done
	done
done
[ "$FIRED" -gt 0 ] || fail "no failure was injected (is the shim loaded?)"
echo "ok: $RUNS runs with one failing call ($FIRED injected), each checked"
