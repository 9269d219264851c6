#!/bin/sh
# scripts/slurm-epilog in a fake Slurm environment: only what slurmd gives an epilog
# (SLURM_JOB_ID, SLURM_JOB_USER, SLURM_JOB_UID), no PATH of the job, no job environment.
#
# As root (the way slurmd runs it) with a normal user created for the test: the job's entry in
# that user's default spool (~/.local/state/jobpub/spool) is published AS THE USER (the
# published files and the catalogue stay the user's), and the epilog always exits 0: no entry,
# a failing publish (the job ends failed_storage), a corrupt entry, an entry owned by another
# user (refused), a publish over its time limit, syslog unreachable (stderr instead), an
# unknown user, no jobpub.  Not root: the same as the job's own user, with $JOBPUB_SPOOL.
#
# syslog is a fake `logger` first on PATH that appends its arguments to $T/syslog.
. "$(dirname "$0")/lib.sh"

need bash timeout getent env setpriv sqlite3
EPILOG=$TOP_SRCDIR/scripts/slurm-epilog
[ -f "$EPILOG" ] || hard_error "no $EPILOG"

# Everything the user runs must be reachable by the user: $T is traversable, the program is a
# copy in $T/bin.
chmod 711 "$T"
mkdir -p "$T/bin"
cp "$JOBPUB" "$T/bin/jobpub"
chmod 755 "$T/bin" "$T/bin/jobpub"
cat >"$T/bin/logger" <<EOF
#!/bin/sh
# fake logger: \$FAKE_LOGGER_FAIL makes it fail as when /dev/log is missing
[ -z "\${FAKE_LOGGER_FAIL:-}" ] || { echo 'logger: socket /dev/log: No such file or directory' >&2; exit 1; }
# \$FAKE_LOGGER_SLOW: seconds each line takes, as with a syslog that does not answer
[ -z "\${FAKE_LOGGER_SLOW:-}" ] || sleep "\$FAKE_LOGGER_SLOW"
printf '%s\n' "\$*" >>"$T/syslog"
EOF
chmod 755 "$T/bin/logger"

if [ "$(id -u)" = 0 ]; then
	need useradd userdel
	ROOT=1
	TUSER=jp-test-$$
	TUID=61000
	while getent passwd "$TUID" >/dev/null || getent group "$TUID" >/dev/null; do
		TUID=$((TUID + 1))
	done
	# A publish the epilog handed off may still run as the user (userdel refuses then): its
	# processes, found by uid in /proc (only this test's user), are killed first.
	kill_user() {
		local f u p i=0 left
		while :; do
			left=
			for f in /proc/[0-9]*/status; do
				u=$(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "$f" 2>/dev/null) || continue
				[ "$u" = "$TUID" ] || continue
				grep -q '^State:[[:space:]]*Z' "$f" 2>/dev/null && continue
				p=${f#/proc/}
				kill -KILL "${p%/status}" 2>/dev/null || true
				left=1
			done
			[ -n "$left" ] && [ "$i" -lt 50 ] || break
			i=$((i + 1))
			sleep 0.1
		done
	}
	trap 'kill_user; userdel -r "$TUSER" >/dev/null 2>&1 || true; cleanup' EXIT
	useradd -m -u "$TUID" -s /bin/sh "$TUSER" >"$T/useradd.log" 2>&1 ||
		{ show "$T/useradd.log"; hard_error "useradd $TUSER failed"; }
	THOME=$(getent passwd "$TUSER" | cut -d: -f6)
	[ -d "$THOME" ] || hard_error "useradd -m made no home for $TUSER"
	TGID=$(id -g "$TUSER")
	# The user's default spool, as the epilog finds it without JOBPUB_SPOOL.
	USPOOL=$THOME/.local/state/jobpub/spool
	EPILOG_SPOOL=
	WORK=$THOME/work
else
	ROOT=
	TUSER=$(id -un)
	TUID=$(id -u)
	TGID=$(id -g)
	THOME=$T/home # never the real home of whoever runs the tests
	mkdir -p "$THOME"
	USPOOL=$T/spool/$TUSER
	EPILOG_SPOOL=$T/spool/%u
	WORK=$T/work
fi

# as_user CMD...: CMD as the test's job user, in a job-like environment.
as_user() {
	if [ -n "$ROOT" ]; then
		setpriv --reuid="$TUID" --regid="$TGID" --init-groups -- \
			env -i HOME="$THOME" USER="$TUSER" PATH=/usr/bin:/bin JOBPUB_SPOOL="$USPOOL" "$@"
	else
		env HOME="$THOME" JOBPUB_SPOOL="$USPOOL" "$@"
	fi
}

# epilog [VAR=VALUE]...: the epilog for job $JOBID as slurmd runs it: a bare environment.
# Its stdout/stderr are in $OUT/$ERR, the exit code in $RC; the syslog lines of this run are
# in $T/log.
epilog() {
	: >"$T/syslog"
	RC=0
	env -i SLURM_JOB_ID="$JOBID" SLURM_JOB_USER="$TUSER" SLURM_JOB_UID="$TUID" \
		PATH="$T/bin:/usr/sbin:/usr/bin:/sbin:/bin" JOBPUB_EPILOG_LOGDIR="$T/eplog" \
		${EPILOG_SPOOL:+JOBPUB_SPOOL="$EPILOG_SPOOL"} "$@" \
		bash "$EPILOG" >"$OUT" 2>"$ERR" || RC=$?
	cp "$T/syslog" "$T/log"
	[ "$RC" = 0 ] || { show "$ERR"; show "$T/log"; fail "the epilog exited $RC"; }
}

# make_job ID: a small job of the user: $WORK/ID/{out/result.txt,out/data.bin}, its catalogue
# $WORK/cat.db (table runs, row ID 'running'), manifest $WORK/manifest.yaml publishing to
# $WORK/archive/<run name>/, all owned by the user.  Enqueued as the user.
make_job() {
	JOBID=$1
	mkdir -p "$WORK/$JOBID/out"
	printf 'result of run %s\n' "$JOBID" >"$WORK/$JOBID/out/result.txt"
	head -c 32768 /dev/urandom >"$WORK/$JOBID/out/data.bin"
	cat >"$WORK/manifest.yaml" <<EOF
destination: file://$WORK/archive
catalog:
  table: runs
outputs:
  - name: result
    path: out/result.txt
    to: \${row.name}/result.txt
    column: result_url
  - name: data
    path: out/data.bin
    to: \${row.name}/data.bin
EOF
	[ -z "$ROOT" ] || chown -R "$TUID:$TGID" "$WORK"
	# The catalogue is only ever touched as the user: a root-owned -wal or -shm beside it
	# would break the user's next publish.
	usql "CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, name TEXT, status TEXT,
		result_url TEXT); INSERT INTO runs VALUES ('$JOBID', 'run-$JOBID', 'running', NULL)"
	as_user "$T/bin/jobpub" enqueue --job "$JOBID" --manifest "$WORK/manifest.yaml" \
		--workdir "$WORK/$JOBID" --db "$WORK/cat.db" >"$T/enqueue.log" 2>&1 ||
		{ show "$T/enqueue.log"; fail "enqueue of job $JOBID failed"; }
	[ -f "$USPOOL/$JOBID.json" ] || fail "no entry $USPOOL/$JOBID.json after enqueue"
}

# usql QUERY: QUERY on the catalogue, as the user.
usql() {
	as_user sqlite3 -batch -bail "$WORK/cat.db" "$1" || fail "sqlite3 $WORK/cat.db '$1' failed"
}

status_of() {
	usql "SELECT status FROM runs WHERE id = '$1'"
}

# ---- the cases ----

published() {
	make_job 4242
	epilog JOBPUB="$T/bin/jobpub"
	for f in result.txt data.bin; do
		cmp -s "$WORK/4242/out/$f" "$WORK/archive/run-4242/$f" || fail "$f not published"
		assert_eq "$(stat -c %u "$WORK/archive/run-4242/$f")" "$TUID" "owner of the published $f"
	done
	assert_eq "$(stat -c %u "$WORK/archive/run-4242")" "$TUID" "owner of the created directory"
	assert_eq "$(stat -c %u "$WORK/cat.db")" "$TUID" "owner of the catalogue"
	assert_eq "$(status_of 4242)" published "status"
	assert_absent "$USPOOL/4242.json"
	assert_no_temps "$WORK"
	assert_grep " -t jobpub-epilog -p daemon\.notice -- job 4242: publishing $USPOOL/4242\.json as $TUSER" "$T/log"
	assert_grep ' -t jobpub-epilog .* job 4242: jobpub: ' "$T/log"
	assert_grep " -t jobpub-epilog -p daemon\.notice -- job 4242: user $TUSER, catalogue job 4242 in $WORK/cat\.db: published \(exit 0" "$T/log"
	assert_grep "notice: job 4242: user $TUSER, catalogue job 4242 in $WORK/cat\.db: published \(exit 0" "$T/eplog/epilog.log"
	assert_eq "$(wc -c <"$ERR" | tr -d ' ')" 0 "stderr with syslog working"
}

# Found by the jobpub on PATH when JOBPUB is not set.
jobpub_on_path() {
	make_job 4250
	epilog
	assert_eq "$(status_of 4250)" published "status"
}

no_entry() {
	JOBID=9999
	epilog JOBPUB="$T/bin/jobpub"
	assert_grep "job 9999: no spool entry $USPOOL/9999\.json" "$T/log"
	assert_no_grep 'publishing' "$T/log"
}

failing_publish() {
	make_job 4243
	rm "$WORK/4243/out/data.bin"
	epilog JOBPUB="$T/bin/jobpub"
	assert_eq "$(status_of 4243)" failed_storage "status"
	assert_grep "daemon\.err -- job 4243: user $TUSER, catalogue job 4243 in $WORK/cat\.db: publish failed \(exit 66, missing input, [0-9]+ s\); recover: runuser -u $TUSER -- jobpub republish --db $WORK/cat\.db --job 4243\$" "$T/log"
	assert_grep 'job 4243: jobpub: .*data' "$T/log"
	[ -f "$USPOOL/4243.json" ] || fail "the entry of a failed publish was removed"
	assert_absent "$WORK/archive/run-4243/result.txt"
}

corrupt_entry() {
	make_job 4244
	as_user sh -c "printf '{\"job\": \"4244\", \"manif' >'$USPOOL/4244.json'"
	epilog JOBPUB="$T/bin/jobpub"
	assert_grep "job 4244: jobpub: $USPOOL/4244\.json:1:" "$T/log"
	assert_grep 'job 4244: user .*: publish failed \(exit 65' "$T/log"
	assert_eq "$(status_of 4244)" running "status (the catalogue is not known)"
	assert_absent "$WORK/archive/run-4244"
}

# An entry the user does not own: refused by jobpub (77), never published.
foreign_entry() {
	if [ -n "$ROOT" ]; then
		make_job 4245
		cp "$USPOOL/4245.json" "$T/entry"
		rm "$USPOOL/4245.json"
		sed "s/\"uid\":$TUID/\"uid\":0/" "$T/entry" >"$USPOOL/4245.json" # root's, as root wrote it
		chmod 644 "$USPOOL/4245.json"
		assert_eq "$(stat -c %u "$USPOOL/4245.json")" 0 "owner of the planted entry"
		epilog JOBPUB="$T/bin/jobpub"
		assert_grep "job 4245: jobpub: $USPOOL/4245\.json: owned by root \(uid 0\), not by $TUSER \(uid $TUID\): refused" "$T/log"
		assert_grep 'job 4245: user .*: publish failed \(exit 77, permission denied' "$T/log"
		assert_eq "$(status_of 4245)" running "status"
		assert_absent "$WORK/archive/run-4245"
		[ -f "$USPOOL/4245.json" ] || fail "the epilog removed a foreign entry"
	else
		# Not root: any root-owned *.json is an entry of another user.
		f=$(find /usr/share -maxdepth 4 -name '*.json' -user 0 -type f 2>/dev/null |
			grep -E '/[0-9A-Za-z_.+-]+\.json$' | head -n 1)
		[ -n "$f" ] || hard_error "not root and no root-owned *.json to play a foreign entry"
		JOBID=$(basename "$f" .json)
		epilog JOBPUB="$T/bin/jobpub" JOBPUB_SPOOL="$(dirname "$f")"
		assert_grep "owned by root \(uid 0\), not by .*: refused" "$T/log"
		assert_grep 'publish failed \(exit 77' "$T/log"
	fi
}

# A group-writable entry is refused too.
writable_entry() {
	make_job 4246
	chmod 620 "$USPOOL/4246.json"
	epilog JOBPUB="$T/bin/jobpub"
	assert_grep 'job 4246: jobpub: .*writable by group' "$T/log"
	assert_grep 'job 4246: user .*: publish failed \(exit 77' "$T/log"
	assert_eq "$(status_of 4246)" running "status"
}

# syslog unreachable: the log file has every line; without a log file either, stderr.
no_syslog() {
	make_job 4247
	: >"$T/eplog/epilog.log"
	epilog JOBPUB="$T/bin/jobpub" FAKE_LOGGER_FAIL=1
	assert_grep ' jobpub-epilog\[[0-9]+\]: notice: job 4247: publishing ' "$T/eplog/epilog.log"
	assert_grep ' jobpub-epilog\[[0-9]+\]: notice: job 4247: user .*: published \(exit 0' "$T/eplog/epilog.log"
	assert_eq "$(wc -c <"$ERR" | tr -d ' ')" 0 "stderr with the log file working"
	assert_eq "$(status_of 4247)" published "status"
	make_job 4251
	epilog JOBPUB="$T/bin/jobpub" FAKE_LOGGER_FAIL=1 JOBPUB_EPILOG_LOGDIR=
	assert_grep '^jobpub-epilog: notice: job 4251: publishing ' "$ERR"
	assert_grep '^jobpub-epilog: notice: job 4251: user .*: published \(exit 0' "$ERR"
	assert_eq "$(status_of 4251)" published "status"
}

# A publish over its time limit is stopped; the epilog still exits 0, and quickly.
time_limit() {
	make_job 4248
	cat >"$T/bin/slow-jobpub" <<'EOF'
#!/bin/sh
echo "jobpub: pretending to publish slowly" >&2
exec sleep 60
EOF
	chmod 755 "$T/bin/slow-jobpub"
	mkdir -p "$T/eptmp"
	start=$(date +%s)
	epilog JOBPUB="$T/bin/slow-jobpub" JOBPUB_EPILOG_TIMEOUT=1 JOBPUB_PUBLISH_TIMEOUT=3 TMPDIR="$T/eptmp"
	took=$(($(date +%s) - start))
	[ "$took" -lt 5 ] || fail "the epilog took $took s with a 1 s limit"
	assert_grep 'job 4248: publishing .*epilog waits [01] s, publish limit 3 s' "$T/log"
	assert_grep 'job 4248: user .*: publish still running after [0-9]+ s: handed off \(pid [0-9]+\)' "$T/log"
	# The handed-off publish goes on, and logs its own end: here the publish limit.
	i=0
	until grep -q 'job 4248: user .*: not published: stopped at the publish limit of 3 s (exit 124' "$T/syslog"; do
		i=$((i + 1))
		[ "$i" -lt 200 ] || { show "$T/syslog"; fail "no outcome of the handed-off publish"; }
		sleep 0.1
	done
	assert_grep 'job 4248: jobpub: pretending to publish slowly' "$T/syslog"
	assert_eq "$(find "$T/eptmp" -mindepth 1 | wc -l)" 0 "files left in the epilog's TMPDIR"
	epilog JOBPUB=/bin/true JOBPUB_EPILOG_TIMEOUT=soon
	assert_grep "JOBPUB_EPILOG_TIMEOUT='soon' is not a number" "$T/log"
	# Slurm's limit (here given, else from scontrol show config) bounds the wait: 5 s minus a
	# margin of 3 s.
	start=$(date +%s)
	# The publish limit (4 s) is longer than the wait (2 s): with equal limits the publish could
	# end at its limit before the epilog stops waiting (a race seen in CI).
	epilog JOBPUB="$T/bin/slow-jobpub" JOBPUB_EPILOG_SLURM_TIMEOUT=5 JOBPUB_PUBLISH_TIMEOUT=4
	took=$(($(date +%s) - start))
	[ "$took" -lt 5 ] || fail "the epilog took $took s under a Slurm limit of 5 s"
	assert_grep "job 4248: publishing .*epilog waits [12] s \(Slurm's epilog limit: 5 s\)" "$T/log"
	assert_grep 'job 4248: user .*: publish still running after [0-9]+ s: handed off' "$T/log"
	i=0
	until grep -q 'job 4248: user .*: not published: stopped at the publish limit of 4 s (exit 124' "$T/syslog"; do
		i=$((i + 1))
		[ "$i" -lt 200 ] || { show "$T/syslog"; fail "no outcome of the second handed-off publish"; }
		sleep 0.1
	done
}

# At the publish limit jobpub gets SIGTERM and time to roll back and record it (its clean-up
# is bounded to 65 s): no SIGKILL in the middle of it (was: SIGKILL 10 s after the SIGTERM).
term_rollback() {
	make_job 4252
	cat >"$T/bin/rollback-jobpub" <<'EOF'
#!/bin/sh
trap 'sleep 12; echo "jobpub: job 4252: interrupted: rolled back" >&2; exit 75' TERM
sleep 60 &
wait
EOF
	chmod 755 "$T/bin/rollback-jobpub"
	epilog JOBPUB="$T/bin/rollback-jobpub" JOBPUB_EPILOG_TIMEOUT=30 JOBPUB_PUBLISH_TIMEOUT=1
	assert_grep 'job 4252: jobpub: job 4252: interrupted: rolled back' "$T/log"
	assert_grep 'job 4252: user .*: not published: stopped at the publish limit of 1 s \(exit 124, timed out, 1[0-9] s\)' "$T/log"
}

# A small Slurm limit and a syslog that takes 3 s a line: the epilog still returns within the
# limit (was: the hand-off line's `timeout 5 logger` ran after the deadline, past the limit,
# and slurmd would drain the node); the log file has the line.
small_limit_slow_syslog() {
	make_job 4253
	cat >"$T/bin/slow-jobpub2" <<'EOF'
#!/bin/sh
exec sleep 30
EOF
	chmod 755 "$T/bin/slow-jobpub2"
	start=$(date +%s%3N)
	epilog JOBPUB="$T/bin/slow-jobpub2" JOBPUB_EPILOG_SLURM_TIMEOUT=5 JOBPUB_PUBLISH_TIMEOUT=3 \
		FAKE_LOGGER_SLOW=3
	took=$(($(date +%s%3N) - start))
	[ "$took" -lt 5000 ] || fail "the epilog took $took ms under a Slurm limit of 5 s"
	assert_grep 'job 4253: user .*: publish still running after [0-9]+ s: handed off' \
		"$T/eplog/epilog.log"
}

# The job's user runs the publish: `id -u` inside is the user's, never root's.
runs_as_user() {
	make_job 4249
	cat >"$T/bin/whoami-jobpub" <<EOF
#!/bin/sh
echo "jobpub: uid \$(id -u) gid \$(id -g) groups \$(id -G) home \$HOME spool \$JOBPUB_SPOOL" >&2
EOF
	chmod 755 "$T/bin/whoami-jobpub"
	epilog JOBPUB="$T/bin/whoami-jobpub"
	home=$(getent passwd "$TUID" | cut -d: -f6)
	assert_grep "job 4249: jobpub: uid $TUID gid $TGID groups [0-9 ]* home $home spool $USPOOL\$" "$T/log"
	assert_grep 'job 4249: user .*: published \(exit 0' "$T/log"
}

bad_environment() {
	JOBID=4300
	epilog JOBPUB="$T/bin/jobpub" SLURM_JOB_USER=no-such-user-$$ SLURM_JOB_UID=
	assert_grep "user 'no-such-user-$$' of the job is unknown" "$T/log"
	epilog JOBPUB="$T/bin/jobpub" SLURM_JOB_UID=$((TUID + 1))
	assert_grep "SLURM_JOB_UID=$((TUID + 1)) but $TUSER has uid $TUID" "$T/log"
	JOBID='42;rm -rf /'
	epilog JOBPUB="$T/bin/jobpub"
	assert_grep 'is missing or not a job ID' "$T/log"
	make_job 4301
	epilog JOBPUB="$T/nonexistent/jobpub"
	assert_grep "daemon\.err -- job 4301: user $TUSER, catalogue job 4301 in $WORK/cat\.db: not published: the jobpub program $T/nonexistent/jobpub is missing .*\(exit 127, could not run jobpub, 0 s\); recover: runuser -u $TUSER -- jobpub republish --db $WORK/cat\.db --job 4301" "$T/log"
	[ -f "$USPOOL/4301.json" ] || fail "the entry went away without a publish"
}

# Not root and not the job's user: nothing can be done, still 0.
not_root_other_user() {
	[ -n "$ROOT" ] || { JOBID=4302; epilog SLURM_JOB_USER=root SLURM_JOB_UID=0
		assert_grep 'not root: it cannot publish as root' "$T/log"; return 0; }
	# As root: the epilog run by the test user for a job of root.
	: >"$T/syslog"
	chmod 666 "$T/syslog"
	RC=0
	setpriv --reuid="$TUID" --regid="$TGID" --init-groups -- env -i SLURM_JOB_ID=4302 \
		SLURM_JOB_USER=root SLURM_JOB_UID=0 PATH="$T/bin:/usr/bin:/bin" \
		bash "$EPILOG" >"$OUT" 2>"$ERR" || RC=$?
	assert_eq "$RC" 0 "exit code"
	assert_grep "job 4302: the epilog runs as uid $TUID, not root: it cannot publish as root" "$T/syslog"
}

# $JOBPUB_SPOOL with %u: a per-user spool elsewhere (e.g. /var/spool/jobpub/%u).
spool_pattern() {
	[ -n "$ROOT" ] || return 0 # the non-root run uses this layout for every case already
	mkdir -p "$T/spool/$TUSER"
	chown "$TUID:$TGID" "$T/spool/$TUSER"
	chmod 700 "$T/spool/$TUSER"
	chmod 755 "$T/spool"
	USPOOL=$T/spool/$TUSER
	make_job 4303
	epilog JOBPUB="$T/bin/jobpub" JOBPUB_SPOOL="$T/spool/%u"
	assert_grep "job 4303: publishing $T/spool/$TUSER/4303\.json as $TUSER" "$T/log"
	assert_eq "$(status_of 4303)" published "status"
	assert_absent "$T/spool/$TUSER/4303.json"
}

# The wrapper leaves JOBPUB_SPOOL unset, the job exported the node-local spool of doc/slurm.md:
# the epilog finds the entry there (was: "did not ask to be published", at info), publishes
# it, and warns that the wrapper should set JOBPUB_SPOOL.
node_spool_unset() {
	[ -n "$ROOT" ] || return 0 # the non-root run sets JOBPUB_SPOOL for every case
	mkdir -p "$T/node"
	chmod 755 "$T/node"
	install -d -m 0700 -o "$TUID" -g "$TGID" "$T/node/$TUSER"
	USPOOL=$T/node/$TUSER
	make_job 4254
	epilog JOBPUB="$T/bin/jobpub" JOBPUB_EPILOG_NODE_SPOOL="$T/node"
	assert_grep "daemon\.warning -- job 4254: user $TUSER: the entry is in the node-local spool $T/node/$TUSER, but the epilog's JOBPUB_SPOOL is not set \(set JOBPUB_SPOOL=$T/node/%u" "$T/log"
	assert_eq "$(status_of 4254)" published "status"
	assert_absent "$T/node/$TUSER/4254.json"
}

"$JOBPUB" publish --help | grep -q -- '--spool' || fail "jobpub publish has no --spool option"
run_case published
run_case jobpub_on_path
run_case no_entry
run_case failing_publish
run_case corrupt_entry
run_case foreign_entry
run_case writable_entry
run_case no_syslog
run_case time_limit
run_case term_rollback
run_case small_limit_slow_syslog
run_case runs_as_user
run_case bad_environment
run_case not_root_other_user
run_case spool_pattern
run_case node_spool_unset
finish
