#!/usr/bin/env python3
"""relay.py LISTEN_PORT_FILE TARGET_PORT MODE [N] - a TCP relay on 127.0.0.1 for failure tests.

Listens on 127.0.0.1, port chosen by the kernel, written (atomically) to LISTEN_PORT_FILE once
it accepts connections, and forwards each connection to 127.0.0.1:TARGET_PORT.  MODE applies
to every connection on its own (a client that reconnects meets the same fault again):
  pass      forward both ways
  cut N     after N bytes client->server have been forwarded, close both sides
  stall N   after N bytes client->server, stop forwarding in both directions and keep both
            sockets open (no FIN, no RST: the peers see silence)
  mute RE   once the client has sent bytes matching the regular expression RE (a request line,
            e.g. 'POST [^ ]*[?]uploadId='), forward nothing more server->client, keeping both
            sockets open: the server does the request, the client never hears its answer
  first N   forward the first N connections (as pass); close every later one at once, before
            a byte: a server that died between one connect and the next
Runs until killed, and never longer than 120 s.  Python 3 standard library only.
"""
import os
import re
import socket
import sys
import threading
import time

LIFETIME = 120.0
BUF = 65536


def usage():
    sys.stderr.write("usage: relay.py LISTEN_PORT_FILE TARGET_PORT pass|cut N|stall N|mute RE|first N\n")
    sys.exit(2)


def close_both(a, b):
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass


class Conn:
    def __init__(self, client, server, mode, limit):
        self.client, self.server = client, server
        self.mode, self.limit = mode, limit
        self.sent = 0  # client->server bytes forwarded
        self.seen = b""  # mute: the last bytes client->server, for a match across reads
        self.stalled = threading.Event()
        self.closed = threading.Event()

    def up(self):
        """client -> server, counting."""
        try:
            while not self.closed.is_set():
                data = self.client.recv(BUF)
                if not data:
                    break
                if self.mode == "mute":
                    self.seen = (self.seen + data)[-4096:]
                    if self.limit.search(self.seen):
                        self.stalled.set()  # before the request goes: its answer is dropped
                    self.server.sendall(data)
                    continue
                if self.mode != "pass":
                    room = self.limit - self.sent
                    if len(data) >= room:
                        if room > 0:
                            self.server.sendall(data[:room])
                            self.sent += room
                        if self.mode == "cut":
                            break
                        self.stalled.set()
                        return  # stall: read no more, keep the sockets
                self.server.sendall(data)
                self.sent += len(data)
        except OSError:
            pass
        self.finish()

    def down(self):
        """server -> client; stops (without reading on) once stalled."""
        try:
            while not self.closed.is_set():
                if self.stalled.is_set():
                    return
                data = self.server.recv(BUF)
                if not data:
                    break
                if self.stalled.is_set():
                    return  # drop it: nothing crosses a stalled relay
                self.client.sendall(data)
        except OSError:
            pass
        self.finish()

    def finish(self):
        if self.stalled.is_set():
            return
        if not self.closed.is_set():
            self.closed.set()
            close_both(self.client, self.server)


def main():
    if len(sys.argv) < 4:
        usage()
    port_file, target, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "pass":
        limit = 0
        if len(sys.argv) != 4:
            usage()
    elif mode == "mute":
        if len(sys.argv) != 5:
            usage()
        limit = re.compile(sys.argv[4].encode())
    elif mode in ("cut", "stall", "first"):
        if len(sys.argv) != 5:
            usage()
        limit = int(sys.argv[4])
        if limit < 0:
            usage()
    else:
        usage()

    deadline = time.monotonic() + LIFETIME
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    lsock.settimeout(0.5)
    tmp = "%s.%d.tmp" % (port_file, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % lsock.getsockname()[1])
    os.replace(tmp, port_file)

    keep = []  # stalled connections stay referenced, hence open, until exit
    accepted = 0
    while time.monotonic() < deadline:
        try:
            client, _ = lsock.accept()
        except socket.timeout:
            continue
        accepted += 1
        if mode == "first" and accepted > limit:
            client.close()
            continue
        try:
            server = socket.create_connection(("127.0.0.1", target), timeout=10)
            server.settimeout(None)
        except OSError:
            client.close()
            continue
        client.settimeout(None)
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Conn(client, server, "pass" if mode == "first" else mode, limit)
        keep.append(c)
        threading.Thread(target=c.up, daemon=True).start()
        threading.Thread(target=c.down, daemon=True).start()
    sys.stderr.write("relay.py: lifetime of %d s over, exiting\n" % LIFETIME)
    os._exit(0)


if __name__ == "__main__":
    main()
