# slurm-lib.sh - sourced after lib.sh by the tests that run jobs through a real Slurm
# (tests/slurm-real-*.sh).
#
# As root, it starts a private one-node cluster (tests/slurm-start.sh in $T/slurm, stopped by PID
# on exit), creates a throw-away user (useradd -m, removed with userdel -r on exit) and gives:
#   SUSER SUID SGID SHOME   the job's user
#   WORK                    $SHOME/work, the user's: template/ (a finished KOSMA-tau job),
#                           kosma-tau.yaml (the example manifest), pdr_run.db (the catalogue)
#   ELOG                    the epilog's log file ($T/eplog/epilog.log)
#   SLURM_CONF SLURM_NODE   exported, for sbatch, scontrol, squeue
# and functions to install an epilog, submit a job as the user, wait for its end and check the
# node.  $T/bin holds the jobpub the user runs.
need useradd userdel setpriv sbatch scontrol squeue sinfo scancel sqlite3 python3
[ "$(id -u)" = 0 ] || hard_error "the real-Slurm tests run as root (slurmd runs epilogs as root)"

chmod 711 "$T"
mkdir -p "$T/bin" "$T/eplog"
cp "$JOBPUB" "$T/bin/jobpub"
chmod 755 "$T/bin" "$T/bin/jobpub"
ELOG=$T/eplog/epilog.log

SUSER=jp-slurm-$$
SUID=61100
while getent passwd "$SUID" >/dev/null || getent group "$SUID" >/dev/null; do
	SUID=$((SUID + 1))
done
slurm_cleanup() {
	local rc=$?
	if [ "$rc" -ne 0 ] && [ -d "$T/slurm/log" ]; then
		printf '%s\n' '--- slurmd.log (end) ---' >&2
		tail -n 40 "$T/slurm/log/slurmd.log" >&2 2>/dev/null || true
		printf '%s\n' '--- slurmctld.log and .out (end) ---' >&2
		tail -n 25 "$T/slurm/log/slurmctld.log" "$T/slurm/log/slurmctld.out" >&2 2>/dev/null || true
		ls -la "$T/slurm" "$T/slurm/log" >&2 2>/dev/null || true
		printf '%s\n' '--- epilog log ---' >&2
		cat "$ELOG" >&2 2>/dev/null || true
		for f in "$WORK"/slurm-*.out; do
			[ -f "$f" ] || continue
			printf -- '--- %s ---\n' "${f##*/}" >&2
			cat "$f" >&2
		done
	fi
	sh "$TOP_SRCDIR/tests/slurm-stop.sh" "$T/slurm" >/dev/null 2>&1 || true
	# A publish the epilog handed off may still run as the user: userdel refuses then.
	pkill_user_procs
	userdel -r "$SUSER" >/dev/null 2>&1 || true
	cleanup
}
# pkill_user_procs: SIGKILL to the processes of the test user (by uid, from /proc: only the
# user this test created), then waits (5 s at most) until they are gone: userdel refuses a
# user with processes.
pkill_user_procs() {
	local f p u i=0 left
	while :; do
		left=
		for f in /proc/[0-9]*/status; do
			u=$(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "$f" 2>/dev/null) || continue
			[ "$u" = "$SUID" ] || continue
			grep -q '^State:[[:space:]]*Z' "$f" 2>/dev/null && continue
			p=${f#/proc/}
			p=${p%/status}
			kill -KILL "$p" 2>/dev/null || true
			left=1
		done
		[ -n "$left" ] && [ "$i" -lt 50 ] || break
		i=$((i + 1))
		sleep 0.1
	done
}
trap slurm_cleanup EXIT
useradd -m -u "$SUID" -s /bin/sh "$SUSER" >"$T/useradd.log" 2>&1 ||
	{ show "$T/useradd.log"; hard_error "useradd $SUSER failed"; }
SHOME=$(getent passwd "$SUSER" | cut -d: -f6)
SGID=$(id -g "$SUSER")
[ -d "$SHOME" ] || hard_error "useradd -m made no home for $SUSER"
WORK=$SHOME/work

# Slurm's limit on epilogs: low, so that the tests see what happens at it quickly.
mkdir -p "$T/slurm"
printf 'PrologEpilogTimeout=%s\n' "${SLURM_EPILOG_LIMIT:-12}" >"$T/slurm/slurm.conf.extra"
rc=0
sh "$TOP_SRCDIR/tests/slurm-start.sh" "$T/slurm" >"$T/slurm-start.log" 2>&1 || rc=$?
[ "$rc" -ne 99 ] || { show "$T/slurm-start.log"; hard_error "slurm-start.sh: a program is missing"; }
[ "$rc" -eq 0 ] || { show "$T/slurm-start.log"; hard_error "slurm-start.sh $T/slurm failed"; }
. "$T/slurm/env"
export SLURM_CONF

# as_user CMD...: CMD as the job's user, in a login-like environment (what a user has on a
# login node: HOME, USER, PATH with jobpub, SLURM_CONF).
as_user() {
	(cd "$SHOME" && exec setpriv --reuid="$SUID" --regid="$SGID" --init-groups -- \
		env -i HOME="$SHOME" USER="$SUSER" LOGNAME="$SUSER" PATH="$T/bin:/usr/bin:/bin" \
		SLURM_CONF="$SLURM_CONF" LC_ALL=C "$@")
}

# usql QUERY: QUERY on the user's catalogue, as the user (a root-owned -wal or -shm file beside
# it would break the user's publishes).
usql() {
	as_user sqlite3 -batch -bail "$WORK/pdr_run.db" "$1" || fail "sqlite3 '$1' failed"
}

# setup_work: the user's template job, manifest and catalogue (rows are added by add_row).
setup_work() {
	make_example
	mkdir -p "$WORK"
	cp -a "$EXJOB" "$WORK/template"
	cp "$EXMAN" "$WORK/kosma-tau.yaml"
	cp "$EXDB" "$WORK/pdr_run.db"
	chown -R "$SUID:$SGID" "$WORK"
	usql "DELETE FROM pdr_model_jobs WHERE id <> 1"
}
# add_row ID: a row like the example's row 1 (status running) with id ID.
add_row() {
	usql "CREATE TEMP TABLE t AS SELECT * FROM pdr_model_jobs WHERE id = 1;
		UPDATE t SET id = $1, status = 'running'; INSERT INTO pdr_model_jobs SELECT * FROM t;"
}
row_of() {
	usql "SELECT status FROM pdr_model_jobs WHERE id = $1"
}

# install_epilog WRAPPER-BODY: $SLURM_DIR/epilog.d/50-jobpub becomes a shell script with that
# body (what an admin installs); "" removes it.
install_epilog() {
	rm -f "$SLURM_DIR/epilog.d/50-jobpub"
	[ -n "$1" ] || return 0
	printf '%s\n' "$1" >"$SLURM_DIR/epilog.d/50-jobpub"
	chmod 755 "$SLURM_DIR/epilog.d/50-jobpub"
}

# job_script CATID BODY: $WORK/job-CATID.sh, a batch script of the user (comment "jobpub": it
# uses jobpub) whose body is BODY, run in $WORK.
job_script() {
	cat >"$WORK/job-$1.sh" <<EOF
#!/bin/sh
#SBATCH --comment=jobpub
#SBATCH --output=$WORK/slurm-%j.out
#SBATCH --chdir=$WORK
set -eu
$2
EOF
	chown "$SUID:$SGID" "$WORK/job-$1.sh"
}

# enqueue_line CATID [OPTION]...: the job script's `jobpub enqueue` for row CATID, its work
# directory $WORK/run-CATID, model job-CATID.
enqueue_line() {
	local id=$1
	shift
	printf 'jobpub enqueue --job %s --manifest %s --workdir %s --db %s --dest %s --set model=job-%s %s' \
		"$id" "$WORK/kosma-tau.yaml" "$WORK/run-$id" "$WORK/pdr_run.db" \
		"'file://$WORK/archive/\${model}'" "$id" "$*"
}
# run_line CATID: the job's "model run": its outputs appear in $WORK/run-CATID.
run_line() {
	printf 'mkdir -p %s && cp -a %s/. %s/' "$WORK/run-$1" "$WORK/template" "$WORK/run-$1"
}

# submit CATID [SBATCH OPTION]...: sbatch of $WORK/job-CATID.sh as the user; SJOB is the Slurm
# job ID.
submit() {
	local id=$1
	shift
	SJOB=$(as_user sbatch --parsable "$@" "$WORK/job-$id.sh" 2>"$T/sbatch.err") ||
		{ show "$T/sbatch.err"; fail "sbatch of job-$id.sh failed"; }
	SJOB=${SJOB%%;*}
}

# wait_gone [SECONDS]: until job $SJOB has left the queue (its epilog has ended: a job stays
# COMPLETING while it runs), at most SECONDS (default 60).
wait_gone() {
	local i=0 max=$((${1:-60} * 5))
	while [ -n "$(squeue -h -j "$SJOB" -o %T 2>/dev/null)" ]; do
		i=$((i + 1))
		[ "$i" -lt "$max" ] || { squeue >&2 || true; fail "job $SJOB still queued after ${1:-60} s"; }
		sleep 0.2
	done
}
# wait_running: until job $SJOB runs.
wait_running() {
	local i=0
	until [ "$(squeue -h -j "$SJOB" -o %T 2>/dev/null)" = RUNNING ]; do
		i=$((i + 1))
		[ "$i" -lt 150 ] || fail "job $SJOB does not run after 30 s"
		sleep 0.2
	done
}

# assert_node_ok: the node takes jobs: IDLE (MIXED or ALLOCATED while another job of the test
# runs), neither drained nor down (scontrol show node).  assert_node_idle: IDLE.
assert_node_ok() {
	scontrol show node "$SLURM_NODE" >"$T/node" 2>&1 || { show "$T/node"; fail "scontrol show node failed"; }
	if ! grep -Eq "State=(${1:-IDLE|MIXED|ALLOCATED}) " "$T/node" ||
		grep -Eq 'State=[A-Z+_]*(DRAIN|DOWN|FAIL|NOT_RESPONDING)' "$T/node"; then
		show "$T/node"
		fail "node $SLURM_NODE is not ${1:-IDLE}"
	fi
}
assert_node_idle() {
	assert_node_ok IDLE
}
# recover_cmd: the command after "recover: " in the epilog log's last line about job $SJOB.
recover_cmd() {
	grep -E "job $SJOB: .*; recover: " "$ELOG" | tail -n 1 | sed 's/.*; recover: //; s/ (on [^)]*)$//'
}
# run_recovery: runs the logged recovery command as root (as an admin pastes it), with the
# test's jobpub on PATH.
run_recovery() {
	local cmd
	cmd=$(recover_cmd)
	[ -n "$cmd" ] || { touch "$ELOG"; show "$ELOG"; fail "no recovery command logged for job $SJOB"; }
	(cd / && PATH="$T/bin:$PATH" eval "$cmd") >"$OUT" 2>"$ERR" ||
		{ show "$OUT"; show "$ERR"; fail "the recovery command failed: $cmd"; }
}
# epilog_secs: how long slurmd says the epilog of job $SJOB ran (0 when it did not say: slurmd
# logs only epilogs of a second or more).
epilog_secs() {
	local n
	n=$(sed -n "s/.*epilog for job $SJOB ran for \([0-9]*\) seconds.*/\1/p" "$SLURMD_LOG" | tail -n 1)
	echo "${n:-0}"
}
# wait_log PATTERN [SECONDS]: until the epilog's log file has a line matching PATTERN.
wait_log() {
	local i=0 max=$((${2:-30} * 10))
	until grep -Eq -e "$1" "$ELOG" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -lt "$max" ] || { touch "$ELOG"; assert_grep "$1" "$ELOG"; }
		sleep 0.1
	done
}
