#!/bin/sh
# rgw-stop.sh DIR [SIGNAL] - stops the Ceph cluster that tests/rgw-start.sh DIR started (radosgw,
# then ceph-osd, then ceph-mon) and waits until each is gone.
#
# Only the PIDs in DIR/run/NAME.pid are signalled, and only when the process's command line names
# DIR/ceph.conf (a recycled PID is left alone).  SIGNAL defaults to TERM; KILL simulates a server
# that dies (and is quickest: the data is in RAM and thrown away anyway).  Whatever is still
# alive 10 s after its signal gets SIGKILL.  Safe to call twice, or after a start that failed
# half-way.  Exit 0 when none of them runs any more (also when none was running), 1 otherwise.
set -eu

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: rgw-stop.sh DIR [SIGNAL]" >&2; exit 1; }
DIR=$(cd "$1" 2>/dev/null && pwd -P) || exit 0
SIG=${2:-TERM}
CONF=$DIR/ceph.conf

# alive PID: true while a thread of PID runs.  A zombie counts as gone (it holds no port nor
# memory any more, and init may be slow to reap it: ps then still lists it), but the leader of a
# multi-threaded process may be a zombie while its other threads run: each thread is looked at.
alive() {
	local f line state
	for f in "/proc/$1/task/"*/stat; do
		read -r line 2>/dev/null <"$f" || continue
		state=${line##*) }
		state=${state%% *}
		[ "$state" = Z ] || return 0
	done
	return 1
}

rc=0
for name in client.rgw.jobpub osd.0 mon.a; do
	pidfile=$DIR/run/$name.pid
	[ -s "$pidfile" ] || continue
	pid=$(cat "$pidfile")
	case $pid in '' | *[!0-9]*) echo "rgw-stop: $pidfile holds '$pid', not a PID" >&2; rc=1; continue ;; esac
	# Is $pid still ours?  (/proc/PID/cmdline separates arguments with NUL bytes.)
	if ! tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "-c $CONF "; then
		rm -f "$pidfile"
		continue
	fi
	sig=$SIG
	# Its data is in RAM and thrown away anyway: ceph-osd gets no time (~2 s) to shut down.
	[ "$name" != osd.0 ] || sig=KILL
	kill "-$sig" "$pid" 2>/dev/null || true
	i=0
	while alive "$pid"; do
		i=$((i + 1))
		[ "$i" -ne 200 ] || kill -KILL "$pid" 2>/dev/null || true
		if [ "$i" -gt 300 ]; then
			echo "rgw-stop: $name (pid $pid) still running after SIGKILL" >&2
			rc=1
			break
		fi
		sleep 0.05
	done
	alive "$pid" || rm -f "$pidfile"
done
exit "$rc"
