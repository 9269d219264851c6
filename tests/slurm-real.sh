#!/bin/sh
# jobpub under a real Slurm (tests/slurm-start.sh: munged, slurmctld, slurmd on 127.0.0.1, as
# root; PrologEpilogTimeout=12), with jobs submitted by an ordinary user through sbatch and
# scripts/slurm-epilog as the Epilog, behind the wrapper doc/slurm.md shows.  Every case: the
# node ends IDLE (never drained), and the job ends published, or is published by the recovery
# command its outcome line in the epilog's log file names (issue 14's table):
#   happy             the job enqueues itself, writes KOSMA-tau outputs; the epilog publishes
#   manifest_broken   the manifest broken after enqueue: exit 65 logged, republish finds it
#   locked            the catalogue locked past jobpub's --db-timeout: 75 logged, node released
#                     at once, republish finds the job through its spool entry
#   no_binary         jobpub missing on the node: logged, republish finds it
#   epilog_limit      a publish longer than Slurm's epilog limit: handed off, the node released
#                     in time, the publish ends published; no /tmp/jobpub-epilog.* left
#   cancelled         cancelled before its `jobpub enqueue`: a warning naming the job
#   spool_unset       JOBPUB_SPOOL of the epilog node-local, not exported by the job: published
#                     from the user's default spool, with a warning
#   wrapper_wrong     the doc's wrapper pointing to a missing epilog: exit 0, logged, republish
#   node_local        the doc's Prolog and node-local spool; a failure's recovery command there
#   together          two jobs ending together
#   time_limit        a job killed at its time limit
# The wrapper and the Prolog are taken from doc/slurm.md, the Epilog from `make install`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slurm-lib.sh"

setup_work
DB=$WORK/pdr_run.db

# The Epilog as `make install` installs it (doc/slurm.md, "Install"), into a DESTDIR.
BUILDDIR=$(cd "$(dirname "$JOBPUB")/.." && pwd)
make -s -C "$BUILDDIR" install DESTDIR="$T/destdir" >"$T/install.log" 2>&1 ||
	{ show "$T/install.log"; fail "make install DESTDIR=$T/destdir failed"; }
EPILOG=$(find "$T/destdir" -path '*/libexec/jobpub/slurm-epilog' -type f | head -n 1)
[ -n "$EPILOG" ] && [ -x "$EPILOG" ] || fail "make install installed no libexec/jobpub/slurm-epilog"
chmod -R a+rX "$T/destdir"
USPOOL=$SHOME/.local/state/jobpub/spool

# doc_block NAME: the code block under "<!-- slurm-real: NAME -->" in doc/slurm.md, with the
# system paths of the doc turned into the test's.
doc_block() {
	awk -v m="<!-- slurm-real: $1 -->" '
		$0 == m { on = 1; next }
		on && /^```/ { if (in_block) exit; in_block = 1; next }
		in_block { print }' "$TOP_SRCDIR/doc/slurm.md" |
		sed -e "s#/var/log/jobpub#$T/eplog#g" -e "s#/var/spool/jobpub#$T/varspool#g"
}

# wrapper EPILOG [SETTING...]: the wrapper of doc/slurm.md calling EPILOG (the doc's path
# replaced), with the test's jobpub and log directory, and each SETTING (NAME=VALUE) exported;
# a setting the doc shows commented out is uncommented.
wrapper() {
	local e=$1 s
	shift
	doc_block wrapper >"$T/wrapper.doc"
	[ -s "$T/wrapper.doc" ] || fail "doc/slurm.md shows no wrapper"
	sed -n 1p "$T/wrapper.doc"
	for s in JOBPUB="$T/bin/jobpub" JOBPUB_EPILOG_LOGDIR="$T/eplog" "$@"; do
		printf '%s; export %s\n' "$s" "${s%%=*}"
	done
	sed -e 1d -e "s#^epilog=/usr/local/libexec/jobpub/slurm-epilog\$#epilog=$e#" "$T/wrapper.doc"
}
use_epilog() {
	install_epilog "$(wrapper "$EPILOG" "$@")"
}

# simple_job ID: enqueue, then the run.
simple_job() {
	add_row "$1"
	job_script "$1" "$(enqueue_line "$1")
$(run_line "$1")"
}

# published ID: row ID finished, its TEXTOUT published (as the user), the job's entry gone.
published() {
	assert_eq "$(row_of "$1")" finished "status of row $1"
	cmp -s "$WORK/run-$1/pdroutput/TEXTOUT" "$WORK/archive/job-$1/pdrgrid/TEXTOUT$EXNAME" ||
		fail "TEXTOUT of job $1 not published"
	assert_eq "$(stat -c %u "$WORK/archive/job-$1/pdrgrid/TEXTOUT$EXNAME")" "$SUID" "owner of TEXTOUT"
	assert_absent "$USPOOL/$SJOB.json"
}

# listed_by_republish ID: `jobpub republish --dry-run`, as the user, lists catalogue job ID.
listed_by_republish() {
	as_user jobpub republish --db "$DB" --dry-run >"$OUT" 2>"$ERR" ||
		{ show "$ERR"; fail "republish --dry-run failed"; }
	assert_grep "^job $1: would republish " "$OUT"
}

happy() {
	use_epilog
	simple_job 11
	submit 11
	wait_gone
	assert_node_ok
	published 11
	assert_grep "notice: job $SJOB: user $SUSER, catalogue job 11 in $DB: published \(exit 0, ok, [0-9]+ s\)\$" "$ELOG"
}

manifest_broken() {
	use_epilog
	add_row 12
	cp "$WORK/kosma-tau.yaml" "$WORK/m12.yaml"
	chown "$SUID:$SGID" "$WORK/m12.yaml"
	job_script 12 "$(enqueue_line 12 | sed "s#$WORK/kosma-tau.yaml#$WORK/m12.yaml#")
$(run_line 12)
printf 'outputs: [\n' >>$WORK/m12.yaml"
	submit 12
	wait_gone
	assert_node_ok
	assert_grep "err: job $SJOB: user $SUSER, catalogue job 12 in $DB: publish failed \(exit 65, .*; recover: runuser -u $SUSER -- jobpub republish --db $DB --job 12\$" "$ELOG"
	assert_grep "job $SJOB: jobpub: .*m12\.yaml:[0-9]+:[0-9]+: " "$ELOG"
	listed_by_republish 12
	cp "$WORK/kosma-tau.yaml" "$WORK/m12.yaml" # the user fixes the manifest
	run_recovery
	published 12
}

# lock_catalogue SECONDS: the catalogue locked by the user's sqlite3 for SECONDS.
lock_catalogue() {
	# One process (exec'd by setpriv and env), so that its PID is the lock's holder.
	as_user python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
time.sleep(float(sys.argv[2]))
c.execute("COMMIT")' "$DB" "$1" &
	LOCKPID=$!
	case_bg "$LOCKPID"
	sleep 0.3
}

locked() {
	use_epilog JOBPUB_EPILOG_DB_TIMEOUT=2
	simple_job 13
	lock_catalogue 10
	submit 13
	wait_gone 20
	assert_node_ok
	took=$(epilog_secs)
	[ "$took" -lt 6 ] || fail "the epilog held the node $took s for a locked catalogue"
	assert_grep "err: job $SJOB: user $SUSER, catalogue job 13 in $DB: publish failed \(exit 75, temporary failure, .*; recover: runuser -u $SUSER -- jobpub republish --db $DB --job 13\$" "$ELOG"
	assert_eq "$(row_of 13)" running "status while locked"
	wait "$LOCKPID" || true
	CASE_PIDS= # reaped: its PID may be another process's by now
	listed_by_republish 13
	run_recovery
	published 13
}

no_binary() {
	use_epilog JOBPUB="$T/nonexistent/jobpub"
	simple_job 14
	submit 14
	wait_gone
	assert_node_ok
	assert_grep "err: job $SJOB: user $SUSER, catalogue job 14 in $DB: not published: the jobpub program $T/nonexistent/jobpub is missing .*\(exit 127, .*; recover: runuser -u $SUSER -- jobpub republish --db $DB --job 14\$" "$ELOG"
	listed_by_republish 14
	run_recovery
	published 14
}

# Slurm's limit is 12 s; the catalogue is locked for 16 s and jobpub waits up to 30 s for it:
# the epilog hands the publish off at about 9 s and returns, the publish ends after the lock.
epilog_limit() {
	simple_job 15
	mkdir -p "$T/eptmp"
	use_epilog JOBPUB_EPILOG_DB_TIMEOUT=30 TMPDIR="$T/eptmp"
	lock_catalogue 16
	submit 15
	wait_gone 30
	assert_node_ok
	took=$(epilog_secs)
	[ "$took" -ge 5 ] && [ "$took" -lt 12 ] || fail "the epilog ran $took s (limit 12 s, hand-off at 9 s)"
	assert_grep "notice: job $SJOB: user $SUSER, catalogue job 15 in $DB: publish still running after [0-9]+ s: handed off \(pid [0-9]+\) .*Slurm's epilog limit: 12 s.*if it fails: runuser -u $SUSER -- jobpub republish --db $DB --job 15\$" "$ELOG"
	assert_no_grep "Epilog timeout|epilog.*(timed out|killed)" "$SLURMD_LOG"
	wait_log "job $SJOB: user $SUSER, catalogue job 15 in $DB: published \(exit 0" 30
	wait "$LOCKPID" || true
	CASE_PIDS=
	published 15
	assert_eq "$(find "$T/eptmp" -mindepth 1 | wc -l)" 0 "files left in the epilog's TMPDIR"
	assert_node_ok
}

cancelled() {
	use_epilog
	add_row 16
	job_script 16 "sleep 60
$(enqueue_line 16)
$(run_line 16)"
	submit 16
	wait_running
	scancel "$SJOB"
	wait_gone
	assert_node_ok
	assert_grep "warning: job $SJOB: user $SUSER: the job uses jobpub \(Slurm comment 'jobpub'\) but has no spool entry $USPOOL/$SJOB\.json( or /var/spool/jobpub/$SUSER/$SJOB\.json)?: it ended before its \`jobpub enqueue\` ran" "$ELOG"
	assert_eq "$(row_of 16)" running "status of a job that never enqueued"
	# A job without the comment is no one's concern: info.
	job_script 19 "true"
	sed -i '/--comment=jobpub/d' "$WORK/job-19.sh"
	submit 19
	wait_gone
	assert_grep "info: job $SJOB: no spool entry .*: the job did not ask to be published" "$ELOG"
}

spool_unset() {
	mkdir -p "$T/nodespool"
	chmod 755 "$T/nodespool"
	use_epilog "JOBPUB_SPOOL=$T/nodespool/%u"
	simple_job 17
	submit 17
	wait_gone
	assert_node_ok
	assert_grep "warning: job $SJOB: user $SUSER: the entry is in the user's default spool $USPOOL, not in JOBPUB_SPOOL $T/nodespool/$SUSER " "$ELOG"
	published 17
}

wrapper_wrong() {
	install_epilog "$(wrapper "$T/libexec/no-such-epilog")"
	grep -q "^epilog=$T/libexec/no-such-epilog\$" "$SLURM_DIR/epilog.d/50-jobpub" ||
		fail "the doc's wrapper has no epilog= line to point elsewhere"
	simple_job 18
	submit 18
	wait_gone
	assert_node_ok
	assert_grep "err: job $SJOB: $T/libexec/no-such-epilog is missing: nothing published; recover as $SUSER: " "$ELOG"
	# The recovery the line describes: the entry names the catalogue.
	as_user jobpub spool --json >"$OUT" 2>"$ERR" || { show "$ERR"; fail "jobpub spool failed"; }
	db=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([e["db"] for e in d["entries"] if e["key"]==sys.argv[2]][0])' "$OUT" "$SJOB") ||
		{ show "$OUT"; fail "jobpub spool does not list job $SJOB"; }
	assert_eq "$db" "$DB" "catalogue of the entry"
	listed_by_republish 18
	as_user jobpub republish --db "$db" >"$OUT" 2>"$ERR" || { show "$ERR"; fail "republish failed"; }
	published 18
	# The job still running (the time-limit job) is left to Slurm and its epilog.
	assert_grep "^jobpub: job 24: its Slurm job $J24 is RUNNING: left to it and its epilog" "$ERR"
	[ -f "$USPOOL/$J24.json" ] || fail "republish took the entry of a running job"
	as_user jobpub status --db "$db" 18 >"$OUT" 2>"$ERR" || { show "$ERR"; fail "status failed"; }
	assert_grep 'finished' "$OUT"
	# Nothing left in the spool but the running job's entry.
	as_user jobpub spool --clean >"$OUT" 2>"$ERR" || { show "$ERR"; fail "jobpub spool --clean failed"; }
	as_user jobpub spool >"$OUT" 2>"$ERR" || fail "jobpub spool failed"
	assert_grep ' 1 entry: 1 pending, 0 failed, 0 published, 0 invalid$' "$OUT"
}

# The node-local layout of doc/slurm.md: the doc's Prolog makes the user's directory, the job
# exports JOBPUB_SPOOL as the doc says; published from there.  Then the same with jobpub missing:
# the logged recovery command names the node-local spool.
node_local() {
	doc_block prolog >"$SLURM_DIR/prolog.d/50-jobpub-spool"
	[ -s "$SLURM_DIR/prolog.d/50-jobpub-spool" ] || fail "doc/slurm.md shows no prolog"
	chmod 755 "$SLURM_DIR/prolog.d/50-jobpub-spool"
	export_line=$(sed -n 's/^    \(export JOBPUB_SPOOL=.*\)$/\1/p' "$TOP_SRCDIR/doc/slurm.md" |
		sed "s#/var/spool/jobpub#$T/varspool#")
	[ -n "$export_line" ] || fail "doc/slurm.md shows no export JOBPUB_SPOOL line"
	use_epilog "JOBPUB_SPOOL=$T/varspool/%u"
	add_row 20
	job_script 20 "$export_line
$(enqueue_line 20)
$(run_line 20)"
	submit 20
	wait_gone
	assert_node_ok
	assert_eq "$(stat -c '%u %a' "$T/varspool/$SUSER")" "$SUID 700" "owner and mode of the node-local spool"
	assert_grep "job $SJOB: publishing $T/varspool/$SUSER/$SJOB\.json as $SUSER" "$ELOG"
	USPOOL=$T/varspool/$SUSER
	published 20
	grep "job $SJOB:" "$ELOG" >"$T/one-job" # the doc's way to see one job's lines
	assert_grep 'published \(exit 0' "$T/one-job"

	use_epilog "JOBPUB_SPOOL=$T/varspool/%u" JOBPUB="$T/nonexistent/jobpub"
	add_row 21
	job_script 21 "$export_line
$(enqueue_line 21)
$(run_line 21)"
	submit 21
	wait_gone
	assert_node_ok
	assert_grep "err: job $SJOB: .*catalogue job 21 in $DB: not published: .*; recover: runuser -u $SUSER -- env JOBPUB_SPOOL=$T/varspool/$SUSER jobpub republish --db $DB --job 21 \(on $SLURM_NODE: the spool is node-local\)\$" "$ELOG"
	run_recovery
	published 21
	rm -f "$SLURM_DIR/prolog.d/50-jobpub-spool"
}

# Two jobs ending together: the epilog runs for each, both are published.
together() {
	use_epilog
	simple_job 22
	simple_job 23
	submit 22
	j22=$SJOB
	submit 23
	j23=$SJOB
	wait_gone 30
	SJOB=$j22
	wait_gone 30
	assert_node_ok
	published 22
	SJOB=$j23
	published 23
}

# A job killed at its time limit (--time=1: a minute; submitted first, checked last, so that the
# minute passes while the other cases run): the epilog publishes what is there.
submit_time_limit() {
	add_row 24
	job_script 24 "$(enqueue_line 24)
$(run_line 24)
sleep 600"
	submit 24 --time=1
	J24=$SJOB
}
time_limit() {
	SJOB=$J24
	wait_gone 150
	assert_node_idle
	assert_eq "$(sacct_state)" TIMEOUT "state of job $J24"
	assert_grep "job $J24: user $SUSER, catalogue job 24 in $DB: published \(exit 0" "$ELOG"
	published 24
}
sacct_state() {
	scontrol show job "$SJOB" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'
}

use_epilog
submit_time_limit
run_case happy
run_case manifest_broken
run_case locked
run_case no_binary
run_case epilog_limit
run_case cancelled
run_case spool_unset
run_case wrapper_wrong
run_case node_local
run_case together
run_case time_limit
finish
