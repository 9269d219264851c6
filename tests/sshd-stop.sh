#!/bin/sh
# sshd-stop.sh DIR [SIGNAL] - stops the sshd that tests/sshd-start.sh DIR started, and its
# sessions (OpenSSH's listener does not end them when it exits), and waits until they are gone.
#
# Only the PID in DIR/sshd.pid and that process's descendants are signalled, and only when its
# command line names DIR/sshd_config (a recycled PID is left alone).  SIGNAL defaults to TERM;
# KILL simulates a server that dies.  Whatever is still alive after 10 s gets SIGKILL.
# Exit 0 when nothing of it runs any more (also when it was not running), 1 otherwise.
set -eu

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: sshd-stop.sh DIR [SIGNAL]" >&2; exit 1; }
DIR=$(cd "$1" 2>/dev/null && pwd -P) || exit 0
SIG=${2:-TERM}
PIDFILE=$DIR/sshd.pid

[ -s "$PIDFILE" ] || exit 0
pid=$(cat "$PIDFILE")
case $pid in '' | *[!0-9]*) echo "sshd-stop: $PIDFILE holds '$pid', not a PID" >&2; exit 1 ;; esac

# Is $pid still our sshd?  (/proc/PID/cmdline separates arguments with NUL bytes.)
if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-f $DIR/sshd_config"; then
	rm -f "$PIDFILE"
	exit 0
fi

# descendants PID: every process below PID, from /proc/*/stat (field 4 is the parent; field 2,
# the command name, may hold spaces and parentheses, so cut after the last ')').
descendants() {
	local todo="$1" found='' p f line rest
	while [ -n "$todo" ]; do
		set -- $todo
		p=$1
		shift
		todo=$*
		for f in /proc/[0-9]*/stat; do
			read -r line 2>/dev/null <"$f" || continue
			rest=${line##*) }
			set -- $rest
			if [ "$2" = "$p" ]; then
				f=${f#/proc/}
				f=${f%/stat}
				found="$found $f"
				todo="$todo $f"
			fi
		done
	done
	echo "$found"
}

# Collected before the listener goes: afterwards its sessions belong to init.
all="$pid $(descendants "$pid")"
for p in $all; do
	kill "-$SIG" "$p" 2>/dev/null || true
done

# alive PID...: prints those still running (zombies count as gone).
alive() {
	local p state line
	for p in "$@"; do
		read -r line 2>/dev/null <"/proc/$p/stat" || continue
		state=${line##*) }
		state=${state%% *}
		[ "$state" = Z ] || printf '%s ' "$p"
	done
}

i=0
while [ -n "$(alive $all)" ]; do
	i=$((i + 1))
	if [ "$i" -eq 100 ]; then
		for p in $(alive $all); do kill -KILL "$p" 2>/dev/null || true; done
	fi
	if [ "$i" -gt 150 ]; then
		echo "sshd-stop: still running after SIGKILL: $(alive $all)" >&2
		exit 1
	fi
	sleep 0.1
done
rm -f "$PIDFILE"
exit 0
