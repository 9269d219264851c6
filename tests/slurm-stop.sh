#!/bin/sh
# slurm-stop.sh DIR - stops the cluster that tests/slurm-start.sh DIR started: slurmd, then
# slurmctld, then munged, each by the PID recorded in DIR, and only when that process's command
# line still names DIR (a recycled PID is left alone).  SIGTERM, SIGKILL after 10 s.  Safe to
# call twice or after a start that failed half-way.  Exit 0 when none of them runs any more.
set -eu

[ $# -eq 1 ] || { echo "usage: slurm-stop.sh DIR" >&2; exit 1; }
DIR=$(cd "$1" 2>/dev/null && pwd -P) || exit 0

alive() {
	local line state
	read -r line 2>/dev/null <"/proc/$1/stat" || return 1
	state=${line##*) }
	state=${state%% *}
	[ "$state" != Z ]
}

rc=0
# stop PIDFILE: the process whose PID is in PIDFILE, if its command line names DIR.
stop() {
	local pid i
	[ -s "$1" ] || return 0
	pid=$(cat "$1")
	case $pid in '' | *[!0-9]*) rm -f "$1"; return 0 ;; esac
	if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/"; then
		rm -f "$1"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while alive "$pid"; do
		i=$((i + 1))
		[ "$i" -ne 100 ] || kill -KILL "$pid" 2>/dev/null || true
		if [ "$i" -gt 150 ]; then
			echo "slurm-stop: pid $pid ($1) still runs after SIGKILL" >&2
			rc=1
			return 0
		fi
		sleep 0.1
	done
	rm -f "$1"
}
stop "$DIR/slurmd.pid.start"
stop "$DIR/slurmctld.pid.start"
stop "$DIR/munged.pid"
exit $rc
