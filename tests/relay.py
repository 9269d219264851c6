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
  http RULE...
            an HTTP/1.1 relay (keep-alive, one request at a time per connection, request and
            answer bodies by Content-Length or chunked, interim 1xx answers passed on) that
            changes the answers of chosen requests: server misbehaviour a real server does not
            produce on demand.  Each RULE is ACTION N RE [ARG...]: it applies to the first N
            requests (all of them when N is 0; N written K+M: the M after the first K, which
            pass), counted over every connection, whose request line ("PUT
            /bucket/key?partNumber=1&uploadId=... HTTP/1.1") matches the regular expression RE;
            the first rule that matches and has count left wins.  ACTIONs:
              refuse STATUS CODE  the request never reaches the server; the relay answers STATUS
                                  with an S3 error body <Error><Code>CODE</Code>... (a front end
                                  refusing: 503 SlowDown, 500 InternalError; 200 with an <Error>
                                  body, as S3 may answer CompleteMultipartUpload; 412 for a
                                  conditional request)
              replace STATUS CODE the request goes to the server, which does it; its answer is
                                  read and replaced by STATUS with the same error body (the
                                  work done, its answer garbled or lost on the way)
              sub PATTERN REPL    the server's answer, header block and body each, with every
                                  match of the regular expression PATTERN replaced by REPL
                                  (Python re.sub, bytes; \\1 refers to a group); a chunked body
                                  is sent back whole with a Content-Length.  E.g. an ETag
                                  changed, <IsTruncated> turned true, XML cut short
              close               the request (body too) is read, never sent on, and the
                                  connection closed without a byte of answer (a server that
                                  dropped a kept-alive connection: curl sends it again on a new
                                  one, rewinding the body)
              cutbody K           the answer's header block and the first K bytes of its body
                                  are passed on, then both connections are closed
              stallbody K         the same, but then nothing more crosses and both connections
                                  stay open (silence)
              mute                the request goes to the server, which does it; nothing of
                                  its answer comes back, and both connections stay open
            Every request line is written to stdout as "req LINE", every rule applied as
            "inject ACTION LINE" (flushed at once), so a test can check its fault happened.
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
    sys.stderr.write("usage: relay.py LISTEN_PORT_FILE TARGET_PORT pass|cut N|stall N|mute RE|first N|"
                     "http [ACTION N RE [ARG...]]...\n")
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



# ---- http mode ----

ARGC = {"refuse": 2, "replace": 2, "sub": 2, "close": 0, "cutbody": 1, "stallbody": 1, "mute": 0}
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
           412: "Precondition Failed", 500: "Internal Server Error", 503: "Service Unavailable"}
out_lock = threading.Lock()


def say(*words):
    line = " ".join(w.decode("latin-1") if isinstance(w, bytes) else str(w) for w in words)
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Rule:
    def __init__(self, action, skip, count, regex, args):
        self.action, self.skip, self.left, self.regex, self.args = action, skip, count, regex, args
        self.every = count == 0


def parse_rules(argv):
    rules, i = [], 0
    while i < len(argv):
        action = argv[i]
        if action not in ARGC or i + 3 + ARGC[action] > len(argv):
            usage()
        try:
            skip, _, count = argv[i + 1].rpartition("+")
            skip, count = int(skip or "0"), int(count)
        except ValueError:
            usage()
        if count < 0 or skip < 0:
            usage()
        args = [a.encode() for a in argv[i + 3:i + 3 + ARGC[action]]]
        if action in ("refuse", "replace"):
            args[0] = int(args[0])
        elif action in ("cutbody", "stallbody"):
            args[0] = int(args[0])
        elif action == "sub":
            args[0] = re.compile(args[0])
        rules.append(Rule(action, skip, count, re.compile(argv[i + 2].encode()), args))
        i += 3 + ARGC[action]
    return rules


rules_lock = threading.Lock()


def pick(rules, line):
    with rules_lock:
        for r in rules:
            if (r.every or r.left > 0) and r.regex.search(line):
                if r.skip > 0:
                    r.skip -= 1
                    return None
                if not r.every:
                    r.left -= 1
                return r
    return None


class Reader:
    """Buffered reads from a socket; EOFError when it ends where more was needed."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def fill(self):
        data = self.sock.recv(BUF)
        if not data:
            raise EOFError
        self.buf += data

    def head(self):
        """The header block up to and including the blank line; None at EOF before a byte."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 1 << 16:
                raise EOFError
            try:
                self.fill()
            except EOFError:
                if not self.buf:
                    return None
                raise
        i = self.buf.index(b"\r\n\r\n") + 4
        h, self.buf = self.buf[:i], self.buf[i:]
        return h

    def some(self, n):
        """Up to n bytes (at least one); b"" at EOF."""
        if not self.buf:
            try:
                self.fill()
            except EOFError:
                return b""
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\r\n") + 2
        d, self.buf = self.buf[:i], self.buf[i:]
        return d


def header(head, name):
    for l in head.split(b"\r\n")[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == name:
            return v.strip()
    return None


def body_pieces(rd, head, is_answer, method):
    """The raw bytes of the body that follows head (chunk framing included), piece by piece."""
    if is_answer:
        status = int(head.split(b" ", 2)[1])
        if method == b"HEAD" or status < 200 or status in (204, 304):
            return
    te = header(head, b"transfer-encoding")
    cl = header(head, b"content-length")
    if te is not None and b"chunked" in te.lower():
        while True:
            l = rd.line()
            yield l
            size = int(l.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the blank line
                    t = rd.line()
                    yield t
                    if t == b"\r\n":
                        return
            left = size + 2
            while left > 0:
                d = rd.some(left)
                if not d:
                    raise EOFError
                left -= len(d)
                yield d
    elif cl is not None:
        left = int(cl)
        while left > 0:
            d = rd.some(min(left, BUF))
            if not d:
                raise EOFError
            left -= len(d)
            yield d
    elif is_answer:
        while True:  # until the server closes
            d = rd.some(BUF)
            if not d:
                return
            yield d


def dechunk(raw):
    out, pos = b"", 0
    while True:
        e = raw.index(b"\r\n", pos)
        size = int(raw[pos:e].split(b";")[0].strip(), 16)
        if size == 0:
            return out
        out += raw[e + 2:e + 2 + size]
        pos = e + 2 + size + 2


def s3_error(status, code, method):
    body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>' + code +
            b"</Code><Message>injected by tests/relay.py</Message><RequestId>relay-injected"
            b"</RequestId></Error>")
    reason = REASONS.get(status, "Error").encode()
    head = (b"HTTP/1.1 %d " % status + reason + b"\r\nContent-Type: application/xml\r\n"
            b"x-amz-request-id: relay-injected\r\nContent-Length: %d\r\n\r\n"
            % (0 if method == b"HEAD" else len(body)))
    return head + (b"" if method == b"HEAD" else body)


def with_length(head, body, method):
    """head without its framing headers, then Content-Length for body (not for HEAD)."""
    lines = [l for l in head[:-4].split(b"\r\n")
             if l.split(b":")[0].strip().lower() not in (b"transfer-encoding", b"content-length")
             or method == b"HEAD" and l.split(b":")[0].strip().lower() == b"content-length"]
    if method != b"HEAD":
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (b"" if method == b"HEAD" else body)


def http_conn(client, server, rules, keep):
    """Serves one client connection: request, answer, request, answer..."""
    crd, srd = Reader(client), Reader(server)
    try:
        while True:
            head = crd.head()
            if head is None:
                break
            line = head.split(b"\r\n", 1)[0]
            method = line.split(b" ", 1)[0]
            say("req", line)
            rule = pick(rules, line)
            if rule is not None:
                say("inject", rule.action, line)
            action = rule.action if rule else "pass"
            if action in ("refuse", "close"):
                for _ in body_pieces(crd, head, False, method):
                    pass
                if action == "close":
                    break
                client.sendall(s3_error(rule.args[0], rule.args[1], method))
                continue
            server.sendall(head)
            for piece in body_pieces(crd, head, False, method):
                server.sendall(piece)
            while True:  # interim answers (100 Continue) pass
                ahead = srd.head()
                if ahead is None:
                    raise EOFError
                if int(ahead.split(b" ", 2)[1]) >= 200:
                    break
                client.sendall(ahead)
            status = int(ahead.split(b" ", 2)[1])
            until_eof = (method != b"HEAD" and status not in (204, 304) and
                         header(ahead, b"content-length") is None and
                         header(ahead, b"transfer-encoding") is None)
            if action == "pass":
                client.sendall(ahead)
                for piece in body_pieces(srd, ahead, True, method):
                    client.sendall(piece)
            elif action in ("replace", "sub"):
                raw = b"".join(body_pieces(srd, ahead, True, method))
                if action == "replace":
                    client.sendall(s3_error(rule.args[0], rule.args[1], method))
                else:
                    te = header(ahead, b"transfer-encoding")
                    body = dechunk(raw) if te is not None and b"chunked" in te.lower() else raw
                    pat, repl = rule.args
                    client.sendall(with_length(pat.sub(repl, ahead), pat.sub(repl, body), method))
            elif action == "mute":
                keep.append((client, server))
                return  # the answer stays in the server's socket; silence both ways
            else:  # cutbody, stallbody
                client.sendall(ahead)
                left = rule.args[0]
                for piece in body_pieces(srd, ahead, True, method):
                    if left <= 0:
                        break
                    client.sendall(piece[:left])
                    left -= len(piece)
                if action == "stallbody":
                    keep.append((client, server))
                    return  # both stay open, nothing more crosses
                break
            if until_eof:
                break
    except (OSError, EOFError, ValueError):
        pass
    close_both(client, server)


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
    elif mode == "http":
        limit = parse_rules(sys.argv[4:])
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
        if mode == "http":
            threading.Thread(target=http_conn, args=(client, server, limit, keep), daemon=True).start()
            continue
        c = Conn(client, server, "pass" if mode == "first" else mode, limit)
        keep.append(c)
        threading.Thread(target=c.up, daemon=True).start()
        threading.Thread(target=c.down, daemon=True).start()
    sys.stderr.write("relay.py: lifetime of %d s over, exiting\n" % LIFETIME)
    os._exit(0)


if __name__ == "__main__":
    main()
