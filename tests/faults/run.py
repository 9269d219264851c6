#!/usr/bin/env python3
"""tests/faults/run.py - seeded, reproducible fault injection for jobpub (issue 13).

usage: run.py --backend file|sftp|s3 --runs N --seed S [--faults KIND,...] [--results FILE]
              [--seeds S1,S2,...] [--keep DIR] [--t-cal SECONDS]

Run i uses the seed S+i (or the i-th of --seeds): its job (file sizes, contents), its fault,
the moment of the fault and the publish options all come from random.Random(seed), so
`--seeds X --backend B` repeats the run with seed X of an earlier run (its fault is drawn from a
generator of its own: `--seeds X --faults K` repeats the job, moment and options with fault K).
The moment is a fraction (0-1.2, from the seed) of t_cal, the duration of an unfaulted publish:
measured before the first run, then the median of the last publishes that ended before their
fault (the machine's load changes); each results line gives the t_cal it used, and
`--t-cal T` repeats that moment exactly.  Timing on a busy machine may still move the
moment to another phase; each results line says which phase the fault met.  For every run:

  1. a fresh job (work directory, catalogue with one row `running`, manifest) publishing 8 files
     (a few bytes up to ~8 MiB; up to 48 MiB for file://) to its own prefix of the
     destination, with --parallel 1-3, --retries 0-2, --timeout 5, --stall 3;
  2. `jobpub publish` is started, and at a random moment (uniform over 1.2 times the duration of
     an unfaulted publish, measured first) one fault is injected:
       sigkill      jobpub gets SIGKILL
       sigterm      jobpub gets SIGTERM (must exit 75, or 0 when it had finished; 143 only
                    while it had no handler yet, phase `exec`: see sigterm_caught)
       server-kill  the server (sshd and its sessions / radosgw) is SIGKILLed, and started again
                    0-2 s later (sftp, s3)
       conn-cut     the connection that carries the next 0-4 MiB (random) is closed (sftp, s3)
       conn-stall   ... stops forwarding, both ways, sockets kept open (sftp, s3)
       auth-revoke  the key is removed from authorized_keys / the S3 user is suspended
                    (radosgw-admin user suspend) (sftp, s3)
       disk-full    the destination is a tmpfs of a random size below the job's size (file,
                    sftp: mounted at the job's prefix on the server); an RGW bucket quota of a
                    random size below it (s3: a bucket of its own)
       db-lock      a process holds BEGIN EXCLUSIVE on the catalogue for 0.2-6 s, with
                    --db-timeout 2-10 s
     Every connection to the server goes through a relay (this script, modelled on
     tests/relay.py, whose mode is fixed per process: here it is switched at the fault's
     moment), so that cuts and stalls hit a random byte of a live transfer.
  3. jobpub's exit code: a death by a signal we did not send (SIGSEGV, SIGABRT...) or no exit
     within 120 s is a crash.
  4. the fault is undone (server running, relay passing, key back, space back, lock released)
     and tests/invariants checks the catalogue and the destination (a SIGKILLed publisher's
     PID is passed with --killed; after faults that cut jobpub off from the server,
     --leftovers-ok: temporaries and unreferenced final names may remain, but gc must report
     each of them);
  5. `jobpub gc --apply --older-than 0s`, then `jobpub republish`; a job that had recorded no
     attempt (killed before its lease) is published again with `jobpub publish`.  The job must
     then be published with exactly the local files' SHA-256, and tests/invariants --strict
     must find nothing (no temporary, no upload, no stray final name).

One line per run goes to the results file (default tests/faults/results-BACKEND.txt):
  seed=S backend=B fault=K moment=T.TTTs phase=P exit=RC outcome=OUTCOME [detail]
with OUTCOME ok, violation (the checker or the recovery failed), crash, skipped (the fault
cannot be made here, e.g. no tmpfs mount), or error (the harness itself
failed in that run, e.g. a server did not start again).  A summary (runs, counts per fault and outcome)
ends the file and stdout.  Exit 0 when there was no violation and no crash, 1 otherwise, 2 when
the harness itself could not run (missing server programs: 99 for automake).

Environment: JOBPUB (the jobpub binary; default: ../../src/jobpub from the build directory
given by JOBPUB_BUILD, else `jobpub` on PATH).  Servers are started by tests/sshd-start.sh /
tests/rgw-start.sh in a temporary directory, on 127.0.0.1, and stopped by PID at exit.
Python 3 standard library only.
"""
import argparse
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
INVARIANTS = os.path.join(TESTS, "invariants")

ALL_FAULTS = {
    "file": ["sigkill", "sigterm", "disk-full", "db-lock"],
    "sftp": ["sigkill", "sigterm", "server-kill", "conn-cut", "conn-stall", "auth-revoke",
             "disk-full", "db-lock"],
    "s3": ["sigkill", "sigterm", "server-kill", "conn-cut", "conn-stall", "auth-revoke",
           "disk-full", "db-lock"],
}
# Faults after which jobpub may be unable to reach the server to clean up.
CUT_OFF = {"sigkill", "server-kill", "conn-cut", "conn-stall", "auth-revoke"}
SYSEXITS = {0, 64, 65, 66, 69, 70, 74, 75, 77, 78}


def load_invariants():
    loader = importlib.machinery.SourceFileLoader("jp_invariants", INVARIANTS)
    spec = importlib.util.spec_from_loader("jp_invariants", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def sigterm_caught(pid):
    """Has the process installed its SIGTERM handler yet?  Before that (the dynamic loader,
    about 50 libraries, then the first lines of main) a SIGTERM ends it by the default action,
    which no program can prevent: such a run is the phase `exec`."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    except OSError:
        pass
    return True  # gone already: not a start-up


def log(msg):
    sys.stderr.write("faults: %s\n" % msg)
    sys.stderr.flush()


def sh(cmd, timeout=120, env=None, check=False):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       env=env)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode,
                                               p.stdout.decode(errors="replace")[-2000:]))
    return p


# ---- the relay -----------------------------------------------------------------------------------
class Relay:
    """127.0.0.1:port -> 127.0.0.1:target.  Passes everything, until armed: then the connection
    that carries the armed byte (counted client->server over all connections) is cut (closed)
    or stalled (nothing more forwarded either way, sockets kept open), and the relay passes
    again for everything else."""

    def __init__(self, target):
        self.target = target
        self.lock = threading.Lock()
        self.mode = "pass"
        self.left = 0
        self.stalled = []
        self.conns = []
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(128)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def arm(self, mode, nbytes):
        with self.lock:
            self.mode, self.left = mode, nbytes

    def disarm(self):
        with self.lock:
            self.mode = "pass"
            for c in self.stalled:
                c.close()
            self.stalled = []

    def accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.target), timeout=10)
                s.settimeout(None)
            except OSError:
                c.close()
                continue
            conn = _Conn(self, c, s)
            threading.Thread(target=conn.up, daemon=True).start()
            threading.Thread(target=conn.down, daemon=True).start()


class _Conn:
    def __init__(self, relay, c, s):
        self.r, self.c, self.s = relay, c, s
        self.dead = threading.Event()
        self.stall = threading.Event()
        for x in (c, s):
            x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        self.dead.set()
        for x in (self.c, self.s):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                x.close()
            except OSError:
                pass

    def up(self):
        try:
            while not self.dead.is_set():
                data = self.c.recv(65536)
                if not data:
                    break
                if self.stall.is_set():
                    continue
                act = None
                with self.r.lock:
                    if self.r.mode in ("cut", "stall"):
                        if len(data) >= self.r.left:
                            act, keep = self.r.mode, self.r.left
                            self.r.mode = "pass"
                        else:
                            self.r.left -= len(data)
                if act is None:
                    self.s.sendall(data)
                    continue
                if keep > 0:
                    self.s.sendall(data[:keep])
                if act == "cut":
                    break
                self.stall.set()
                with self.r.lock:
                    self.r.stalled.append(self)
        except OSError:
            pass
        if not self.stall.is_set():
            self.close()

    def down(self):
        try:
            while not self.dead.is_set():
                data = self.s.recv(65536)
                if not data:
                    break
                if self.stall.is_set():
                    continue  # silence, both ways
                self.c.sendall(data)
        except OSError:
            pass
        if not self.stall.is_set():
            self.close()


# ---- backends ------------------------------------------------------------------------------------
class Backend:
    name = None

    def __init__(self, base, inv):
        self.base = base
        self.inv = inv
        self.env = dict(os.environ)
        self.env["LC_ALL"] = "C"
        for v in ("JOBPUB_DB", "JOBPUB_DEST", "SSH_AUTH_SOCK"):
            self.env.pop(v, None)
        self.env["HOME"] = os.path.join(base, "home")
        os.makedirs(self.env["HOME"], exist_ok=True)

    def start(self):
        pass

    def stop(self):
        pass

    def net_opts(self):
        return []

    def healthy(self):
        """Does the server answer?  (Checked before each run: a server that died of the
        machine's load, not of a fault, is started again and said so in the results.)"""
        return True

    def revive(self):
        pass

    def manifest_extra(self):
        return ""

    def prepare_run(self, run):
        """Sets run.dest (URL) and run.dest_root (local path, or None)."""
        raise NotImplementedError

    def end_run(self, run):
        pass

    def fault_on(self, run, kind):
        raise NotImplementedError

    def fault_off(self, run, kind):
        pass

    def phase_counts(self, run):
        """(temporaries or uploads, final names) at the destination right now."""
        if run.dest_root is None or not os.path.isdir(run.dest_root):
            return 0, 0
        t = f = 0
        for _, _, files in os.walk(run.dest_root):
            for n in files:
                if n.startswith(".jobpub-"):
                    t += 1
                else:
                    f += 1
        return t, f

    # disk-full by a tmpfs at the run's destination (file, sftp)
    def mount_small(self, run, size):
        os.makedirs(run.dest_root, exist_ok=True)
        size = max(4096, size // 4096 * 4096)
        p = sh(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0755" % size, "jobpub-faults",
                run.dest_root])
        if p.returncode != 0:
            return "mount -t tmpfs failed: %s" % p.stdout.decode(errors="replace").strip()
        run.mounted = True
        return None

    def grow(self, run):
        if getattr(run, "mounted", False):
            sh(["mount", "-o", "remount,size=512m", run.dest_root], check=True)

    def unmount(self, run):
        if getattr(run, "mounted", False):
            sh(["umount", "-l", run.dest_root])
            run.mounted = False


class FileBackend(Backend):
    name = "file"

    def prepare_run(self, run):
        run.dest_root = os.path.join(self.base, "dest", "run-%d" % run.seed)
        run.dest = "file://" + run.dest_root

    def fault_on(self, run, kind):
        raise RuntimeError("no %s for file://" % kind)

    def end_run(self, run):
        self.unmount(run)


class SftpBackend(Backend):
    name = "sftp"

    def start(self):
        self.dir = os.path.join(self.base, "sshd")
        os.chmod(self.base, 0o711)
        self.start_sshd()
        self.read_env()
        self.relay = Relay(self.port)
        with open(os.path.join(self.dir, "ssh_host_ed25519_key.pub")) as f:
            hk = " ".join(f.read().split()[:2])
        self.known_hosts = os.path.join(self.base, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write("[127.0.0.1]:%d %s\n" % (self.relay.port, hk))
        with open(os.path.join(self.dir, "authorized_keys")) as f:
            self.auth_keys = f.read()

    def start_sshd(self):
        """sshd-start.sh, tried three times: on a loaded machine sshd may write its pid file
        later than sshd-start.sh waits for it."""
        for attempt in range(3):
            p = sh(["sh", os.path.join(TESTS, "sshd-start.sh"), self.dir])
            if p.returncode == 99:
                raise SystemExit(99)
            if p.returncode == 0:
                return
            sh(["sh", os.path.join(TESTS, "sshd-stop.sh"), self.dir, "KILL"])
            time.sleep(1)
        raise RuntimeError("sshd-start.sh: %s" % p.stdout.decode(errors="replace"))

    def healthy(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as c:
                c.settimeout(10)
                return c.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    def revive(self):
        sh(["sh", os.path.join(TESTS, "sshd-stop.sh"), self.dir, "KILL"])
        self.start_sshd()
        self.read_env()
        self.relay.target = self.port

    def read_env(self):
        e = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                e[k] = v.strip("'")
        self.port = int(e["SSHD_PORT"])
        self.root = e["SSHD_ROOT"]
        self.user = e["SSH_USER"]
        self.key = e["SSH_KEY"]

    def stop(self):
        sh(["sh", os.path.join(TESTS, "sshd-stop.sh"), self.dir, "KILL"])

    def net_opts(self):
        return ["--identity", self.key, "--known-hosts", self.known_hosts]

    def manifest_extra(self):
        return "sftp:\n  identity: %s\n  known-hosts: %s\n" % (self.key, self.known_hosts)

    def prepare_run(self, run):
        run.dest_root = os.path.join(self.root, "run-%d" % run.seed)
        run.dest = "sftp://%s@127.0.0.1:%d%s" % (self.user, self.relay.port, run.dest_root)

    def fault_on(self, run, kind):
        if kind == "server-kill":
            sh(["sh", os.path.join(TESTS, "sshd-stop.sh"), self.dir, "KILL"], check=True)
            run.restart_after = run.rng.uniform(0, 2)
            run.restart_at = time.monotonic() + run.restart_after
        elif kind in ("conn-cut", "conn-stall"):
            self.relay.arm(kind[5:], run.rng.randrange(0, 4 << 20))
        elif kind == "auth-revoke":
            with open(os.path.join(self.dir, "authorized_keys"), "w") as f:
                f.write("".join(line for line in self.auth_keys.splitlines(True)
                                if "id_ed25519" not in line))

    def server_up(self, run):
        if getattr(run, "restart_at", None) is None:
            return
        time.sleep(max(0.0, run.restart_at - time.monotonic()))
        run.restart_at = None
        self.start_sshd()
        self.read_env()
        self.relay.target = self.port

    def fault_off(self, run, kind):
        self.server_up(run)
        self.relay.disarm()
        with open(os.path.join(self.dir, "authorized_keys"), "w") as f:
            f.write(self.auth_keys)

    def end_run(self, run):
        self.unmount(run)


class S3Backend(Backend):
    name = "s3"

    def start(self):
        self.dir = os.path.join(self.base, "rgw")
        p = sh(["sh", os.path.join(TESTS, "rgw-start.sh"), self.dir], timeout=300)
        if p.returncode == 99:
            raise SystemExit(99)
        if p.returncode != 0:
            raise RuntimeError("rgw-start.sh: %s" % p.stdout.decode(errors="replace"))
        e = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                if line.startswith("export"):
                    continue
                k, _, v = line.strip().partition("=")
                e[k] = v.strip("'")
        self.e = e
        self.endpoint = e["RGW_ENDPOINT"]
        self.port = int(e["RGW_PORT"])
        self.bucket = e["RGW_BUCKET"]
        self.admin = e["RGW_ADMIN"]
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
                  "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                  "AWS_CA_BUNDLE", "AWS_DEFAULT_REGION"):
            self.env.pop(k, None)
        self.env["AWS_ACCESS_KEY_ID"] = e["RGW_ACCESS_KEY"]
        self.env["AWS_SECRET_ACCESS_KEY"] = e["RGW_SECRET_KEY"]
        self.env["AWS_REGION"] = "us-east-1"
        os.environ["AWS_ACCESS_KEY_ID"] = e["RGW_ACCESS_KEY"]
        os.environ["AWS_SECRET_ACCESS_KEY"] = e["RGW_SECRET_KEY"]
        os.environ.pop("AWS_SESSION_TOKEN", None)
        self.s3 = self.inv.S3(self.endpoint, "us-east-1")
        if getattr(self, "relay", None) is None:
            self.relay = Relay(self.port)
            self.relay_url = "http://127.0.0.1:%d" % self.relay.port
        self.relay.target = self.port

    def stop(self):
        sh(["sh", os.path.join(TESTS, "rgw-stop.sh"), self.dir])

    def healthy(self):
        try:
            code, _, _ = self.s3.request("GET", self.bucket, query={"list-type": "2",
                                                                    "max-keys": "1"})
            return code == 200
        except self.inv.CheckError:
            return False

    def revive(self):
        """radosgw again; if the cluster itself is stuck, a new one (same keys and port)."""
        def alive(name):
            try:
                with open(os.path.join(self.dir, "run", name + ".pid")) as f:
                    return os.path.exists("/proc/%d" % int(f.read().strip()))
            except (OSError, ValueError):
                return False
        if alive("mon.a") and alive("osd.0"):
            try:
                os.kill(self.rgw_pid(), signal.SIGKILL)
            except (OSError, ValueError):
                pass
            try:
                p = sh(["radosgw", "-c", self.e["CEPH_CONF"], "-n", "client.rgw.jobpub"],
                       timeout=30)
                for _ in range(200):
                    if p.returncode == 0 and self.healthy():
                        return
                    time.sleep(0.1)
            except subprocess.TimeoutExpired:
                pass
        self.stop()
        self.start()
    def net_opts(self):
        return ["--s3-endpoint", self.relay_url]

    def check_opts(self):
        return ["--s3-endpoint", self.endpoint]

    def manifest_extra(self):
        return "s3:\n  endpoint: %s\n" % self.relay_url

    def prepare_run(self, run):
        run.dest_root = None
        run.bucket = self.bucket
        run.prefix = "run-%d" % run.seed
        if run.fault == "disk-full":
            run.bucket = "jf-full-%d" % run.seed
            code, _, body = self.s3.request("PUT", run.bucket)
            if code != 200:
                raise RuntimeError("creating bucket %s: HTTP %d %s" % (run.bucket, code, body))
        run.dest = "s3://%s/%s" % (run.bucket, run.prefix)

    def quota(self, run, size):
        for args in (["quota", "set", "--quota-scope=bucket", "--bucket=" + run.bucket,
                      "--max-size=%d" % size],
                     ["quota", "enable", "--quota-scope=bucket", "--bucket=" + run.bucket]):
            sh([self.admin] + args, check=True)

    def rgw_pid(self):
        with open(os.path.join(self.dir, "run", "client.rgw.jobpub.pid")) as f:
            return int(f.read().strip())

    def fault_on(self, run, kind):
        if kind == "server-kill":
            os.kill(self.rgw_pid(), signal.SIGKILL)
            run.restart_after = run.rng.uniform(0, 2)
            run.restart_at = time.monotonic() + run.restart_after
        elif kind in ("conn-cut", "conn-stall"):
            self.relay.arm(kind[5:], run.rng.randrange(0, 4 << 20))
        elif kind == "auth-revoke":
            sh([self.admin, "user", "suspend", "--uid=" + self.e["RGW_USER"]], check=True)

    def server_up(self, run):
        if getattr(run, "restart_at", None) is None:
            return
        time.sleep(max(0.0, run.restart_at - time.monotonic()))
        run.restart_at = None
        pid = self.rgw_pid()
        for _ in range(200):
            if not os.path.exists("/proc/%d" % pid):
                break
            time.sleep(0.05)
        sh(["radosgw", "-c", self.e["CEPH_CONF"], "-n", "client.rgw.jobpub"], check=True)
        for _ in range(600):
            try:
                code, _, _ = self.s3.request("GET", self.bucket, query={"list-type": "2",
                                                                        "max-keys": "1"})
                if code == 200:
                    return
            except self.inv.CheckError:
                pass
            time.sleep(0.05)
        raise RuntimeError("radosgw did not answer after its restart")

    def fault_off(self, run, kind):
        self.server_up(run)
        self.relay.disarm()
        if kind == "auth-revoke":
            sh([self.admin, "user", "enable", "--uid=" + self.e["RGW_USER"]], check=True)
        if kind == "disk-full":
            sh([self.admin, "quota", "disable", "--quota-scope=bucket", "--bucket=" + run.bucket],
               check=True)

    def phase_counts(self, run):
        try:
            pfx = run.prefix + "/"
            objs = self.s3.list(run.bucket, pfx)
            ups = self.s3.uploads(run.bucket, pfx)
        except Exception:  # the server may be down: the phase is then unknown
            return -1, -1
        return len(ups), len(objs)


BACKENDS = {"file": FileBackend, "sftp": SftpBackend, "s3": S3Backend}


# ---- one run --------------------------------------------------------------------------------------
class Run:
    pass


def make_job(run, backend, base):
    rng = run.rng
    run.dir = os.path.join(base, "jobs", "run-%d" % run.seed)
    shutil.rmtree(run.dir, ignore_errors=True)
    work = os.path.join(run.dir, "work")
    os.makedirs(os.path.join(work, "out"))
    os.makedirs(os.path.join(work, "many"))
    # file:// copies fast: a bigger file there, so that most moments fall inside the publish
    # rather than in its start-up.
    big = (16 << 20, 48 << 20) if backend.name == "file" else (2 << 20, 8 << 20)
    sizes = {"out/small.txt": rng.randrange(0, 200),
             "out/data.bin": rng.randrange(1 << 16, 1 << 20),
             "out/big.bin": rng.randrange(*big)}
    for i in range(5):
        sizes["many/f%02d" % i] = rng.randrange(1, 20000)
    run.expect = {}  # remote name below the destination -> sha256
    run.total = 0
    for rel, n in sorted(sizes.items()):
        data = rng.randbytes(n)
        with open(os.path.join(work, rel), "wb") as f:
            f.write(data)
        remote = "r/" + rel.split("/", 1)[1]
        run.expect[remote] = hashlib.sha256(data).hexdigest()
        run.total += n
    run.work = work
    run.db = os.path.join(run.dir, "catalog.db")
    db = sqlite3.connect(run.db)
    db.executescript("CREATE TABLE runs (id INTEGER PRIMARY KEY, status TEXT, small_url TEXT,"
                     " data_url TEXT); INSERT INTO runs (id, status) VALUES (1, 'running');")
    db.close()
    backend.prepare_run(run)
    run.manifest = os.path.join(run.dir, "manifest.yaml")
    with open(run.manifest, "w") as f:
        f.write("destination: %s\n%s" % (run.dest, backend.manifest_extra()))
        f.write("""catalog:
  table: runs
  id-column: id
  status-column: status
  published-status: finished
outputs:
  - name: small
    path: out/small.txt
    to: r/small.txt
    column: small_url
  - name: data
    path: out/data.bin
    to: r/data.bin
    column: data_url
  - name: big
    path: out/big.bin
    to: r/big.bin
  - name: many
    glob: many/f*
    to: r/${basename}
""")


def publish_cmd(jobpub, run, extra):
    return [jobpub, "publish", "--job", "1", "--manifest", run.manifest, "--workdir", run.work,
            "--db", run.db] + extra


class Harness:
    def __init__(self, args):
        self.args = args
        self.jobpub = os.environ.get("JOBPUB") or shutil.which("jobpub")
        if not self.jobpub:
            raise SystemExit("faults: JOBPUB is not set and no jobpub on PATH")
        self.inv = load_invariants()
        self.base = tempfile.mkdtemp(prefix="jobpub-faults-%s." % args.backend,
                                     dir=args.keep or None)
        self.backend = BACKENDS[args.backend](self.base, self.inv)
        self.faults = args.faults.split(",") if args.faults else ALL_FAULTS[args.backend]
        for k in self.faults:
            if k not in ALL_FAULTS[args.backend]:
                raise SystemExit("faults: %s is not a fault of the %s backend (%s)" %
                                 (k, args.backend, ", ".join(ALL_FAULTS[args.backend])))
        self.lines = []
        self.stats = {}
        self.revived = []  # seeds before which the server had to be started again

    def check(self, run, extra):
        cmd = [sys.executable, INVARIANTS, "--db", run.db, "--dest", run.dest,
               "--jobpub", self.jobpub] + extra
        if isinstance(self.backend, S3Backend):
            cmd += self.backend.check_opts()
        else:
            cmd += self.backend.net_opts()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self.backend.env, timeout=600)
        out = p.stdout.decode(errors="replace").strip()
        if p.returncode == 0:
            return None
        err = p.stderr.decode(errors="replace").strip()
        return (out + " " + err).strip().replace("\n", " | ") or "exit %d" % p.returncode

    def calibrate(self):
        """Duration of an unfaulted publish (median of 3), for the moments of faults."""
        ts = []
        for k in range(3):
            run = Run()
            run.seed = -1 - k
            run.rng = random.Random(run.seed)
            run.fault = None
            make_job(run, self.backend, self.base)
            t0 = time.monotonic()
            p = subprocess.run(publish_cmd(self.jobpub, run, ["--parallel", "2"]),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=self.backend.env, timeout=300)
            ts.append(time.monotonic() - t0)
            if p.returncode != 0:
                raise RuntimeError("calibration publish failed (exit %d): %s" %
                                   (p.returncode, p.stderr.decode(errors="replace")))
            bad = self.check(run, ["--strict"])
            if bad:
                raise RuntimeError("calibration publish: invariants: %s" % bad)
        self.t_cal = sorted(ts)[1]
        log("%s: an unfaulted publish takes %.3f s" % (self.backend.name, self.t_cal))

    def phase(self, run, proc):
        """Where the publish stands: exec (no SIGTERM handler yet: still loading), start (no
        attempt recorded), stage0 (attempt, nothing
        at the destination), stage (temporaries or uploads), commit (final names, not
        recorded), recorded (the row is published), or exited."""
        if proc.poll() is not None:
            return "exited"
        if not sigterm_caught(proc.pid):
            return "exec"
        st, na = None, None
        try:
            db = sqlite3.connect("file:%s?mode=ro" % run.db, uri=True, timeout=0.2)
            try:
                st = db.execute("SELECT status FROM runs WHERE id = 1").fetchone()[0]
                na = 0
                if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobpub_attempts'"
                              ).fetchone():
                    na = db.execute("SELECT count(*) FROM jobpub_attempts").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            pass
        if st == "finished":
            return "recorded"
        t, f = self.backend.phase_counts(run)
        if f > 0:
            return "commit"
        if t > 0:
            return "stage"
        if na == 0:
            return "start"
        if na is None:
            return "locked"
        return "stage0"

    def one(self, seed):
        run = Run()
        run.seed = seed
        # The fault from its own generator: `--seeds X --faults K` repeats run X's job, moment
        # and options with the fault K.
        run.fault = kind = random.Random("fault:%s:%d" % (self.args.backend, seed)).choice(
            self.faults)
        run.rng = rng = random.Random("run:%s:%d" % (self.args.backend, seed))
        make_job(run, self.backend, self.base)
        frac = rng.uniform(0, 1.2)
        run.t_cal = self.t_cal
        moment = frac * self.t_cal
        opts = ["--parallel", str(rng.randint(1, 3)), "--timeout", "5", "--stall", "3",
                "--retries", str(rng.randint(0, 2))]
        lock_s = db_timeout = None
        if kind == "db-lock":
            db_timeout = rng.randint(2, 10)
            lock_s = rng.uniform(0.2, 6)
            opts += ["--db-timeout", str(db_timeout)]
        detail = ""
        if kind == "disk-full":
            size = int(run.total * rng.uniform(0.05, 0.9))
            if isinstance(self.backend, S3Backend):
                self.backend.quota(run, size)
            else:
                why = self.backend.mount_small(run, size)
                if why:
                    return self.record(run, kind, moment, "-", "-", "skipped", why)
            detail = "space=%d of %d" % (size, run.total)
            moment = 0.0
        out = open(os.path.join(run.dir, "publish.out"), "wb")
        err = open(os.path.join(run.dir, "publish.err"), "wb")
        t0 = time.monotonic()
        proc = subprocess.Popen(publish_cmd(self.jobpub, run, opts), stdout=out, stderr=err,
                                env=self.backend.env)
        lock_thread = None
        phase = "-"
        sent = None
        if kind != "disk-full":
            time.sleep(max(0.0, t0 + moment - time.monotonic()))
            phase = self.phase(run, proc)
            if kind == "sigkill":
                sent = signal.SIGKILL
                proc.send_signal(signal.SIGKILL)
            elif kind == "sigterm":
                sent = signal.SIGTERM
                proc.send_signal(signal.SIGTERM)
            elif kind == "db-lock":
                ready = threading.Event()

                def hold():
                    c = sqlite3.connect(run.db, timeout=30, isolation_level=None)
                    c.execute("BEGIN EXCLUSIVE")
                    ready.set()
                    time.sleep(lock_s)
                    c.execute("COMMIT")
                    c.close()
                lock_thread = threading.Thread(target=hold)
                lock_thread.start()
                ready.wait(30)
                detail = "lock=%.2fs db-timeout=%ds" % (lock_s, db_timeout)
            else:
                self.backend.fault_on(run, kind)
                if kind in ("conn-cut", "conn-stall"):
                    detail = "after=%d" % self.backend.relay.left
                if getattr(run, "restart_after", None) is not None:
                    detail = "restart=%.2fs" % run.restart_after
        if kind == "server-kill":
            # Start it again on time, whether or not jobpub has ended by then.
            self.backend.server_up(run)
        try:
            rc = proc.wait(timeout=120)
            elapsed = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = "hang"
        out.close()
        err.close()
        if rc == 0 and phase == "exited" and not self.args.t_cal:
            # A publish the fault came too late for: how long one takes on the machine as it
            # is now (other jobs come and go), so that the next moments fall inside it.
            self.durations = (getattr(self, "durations", []) + [elapsed])[-9:]
            if len(self.durations) >= 3:
                self.t_cal = sorted(self.durations)[len(self.durations) // 2]
        if lock_thread is not None:
            lock_thread.join()
        if kind not in ("sigkill", "sigterm", "db-lock"):
            self.backend.fault_off(run, kind)
        if kind == "disk-full":
            if isinstance(self.backend, S3Backend):
                pass
            else:
                self.backend.grow(run)
        problems = []
        outcome = "ok"
        if rc == "hang":
            outcome = "crash"
            problems.append("jobpub did not end within 120 s")
        elif rc < 0 and -rc != (sent or 0):
            outcome = "crash"
            problems.append("jobpub died of signal %d" % -rc)
        elif rc >= 0 and rc not in SYSEXITS:
            outcome = "crash"
            problems.append("exit code %d is not a documented one" % rc)
        elif kind == "sigterm" and rc == -signal.SIGTERM and phase == "exec":
            pass  # before the handler existed: the default action, see sigterm_caught
        elif kind == "sigterm" and rc not in (0, 75):
            outcome = "violation"
            problems.append("exit %s after SIGTERM, not 75" % rc)
        # The state jobpub left.
        flags = []
        if rc == -signal.SIGKILL or rc == "hang" or (rc is not None and rc != "hang" and rc < 0):
            flags += ["--killed", str(proc.pid)]
        if kind == "db-lock" and lock_s > db_timeout:
            # The catalogue stayed locked longer than jobpub was told to wait: it could record
            # nothing, not even its failure; republish takes such a job over.
            flags += ["--killed", str(proc.pid)]
        if kind in CUT_OFF:
            flags += ["--leftovers-ok"]
        bad = self.check(run, flags)
        if bad:
            outcome = "violation"
            problems.append("after the fault: " + bad)
        # Recovery: gc --apply, republish (or publish again), then everything as expected.
        rec = self.recover(run)
        if rec:
            outcome = "violation" if outcome == "ok" else outcome
            problems.append(rec)
        self.backend.end_run(run)
        d = " ".join((detail + " " + " ; ".join(problems)).split())
        r = self.record(run, kind, moment, phase, rc, outcome, d)
        if outcome == "ok" and not self.args.keep:
            shutil.rmtree(run.dir, ignore_errors=True)
            if run.dest_root and os.path.isdir(run.dest_root):
                shutil.rmtree(run.dest_root, ignore_errors=True)
        return r

    def recover(self, run):
        env = self.backend.env
        net = self.backend.net_opts()
        p = subprocess.run([self.jobpub, "gc", "--db", run.db, "--apply", "--older-than", "0s"]
                           + net, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                           timeout=300)
        if p.returncode != 0:
            return "gc --apply exit %d: %s" % (p.returncode,
                                               p.stdout.decode(errors="replace")[-300:])
        p = subprocess.run([self.jobpub, "republish", "--db", run.db], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env, timeout=300)
        how = "republish"
        if p.returncode != 0:
            return "republish exit %d: %s" % (p.returncode,
                                              p.stdout.decode(errors="replace")[-300:])
        db = sqlite3.connect(run.db, timeout=30)
        try:
            st = db.execute("SELECT status FROM runs WHERE id = 1").fetchone()[0]
            try:
                na = db.execute("SELECT count(*) FROM jobpub_attempts").fetchone()[0]
            except sqlite3.Error:
                na = 0
        finally:
            db.close()
        if st != "finished" and na == 0:
            # Nothing was recorded: republish cannot know the job; its script publishes again.
            how = "publish"
            p = subprocess.run(publish_cmd(self.jobpub, run, []), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, timeout=300)
            if p.returncode != 0:
                return "publish again: exit %d: %s" % (p.returncode,
                                                       p.stdout.decode(errors="replace")[-300:])
        db = sqlite3.connect(run.db, timeout=30)
        try:
            st = db.execute("SELECT status FROM runs WHERE id = 1").fetchone()[0]
            files = dict(db.execute("SELECT key, sha256 FROM jobpub_files WHERE job = '1'"))
        finally:
            db.close()
        if st != "finished":
            return "after %s the row is %s, not finished" % (how, st)
        if files != run.expect:
            return "after %s jobpub_files differ from the job's files: %s" % (
                how, sorted(set(files.items()) ^ set(run.expect.items()))[:4])
        bad = self.check(run, ["--strict"])
        if bad:
            return "after gc --apply and %s: %s" % (how, bad)
        return None

    def record(self, run, kind, moment, phase, rc, outcome, detail):
        line = ("seed=%d backend=%s fault=%s moment=%.3fs t_cal=%.3fs phase=%s exit=%s "
                "outcome=%s%s") % (
            run.seed, self.args.backend, kind, moment, getattr(run, "t_cal", self.t_cal), phase,
            rc, outcome,
            (" " + " ".join(detail.split())) if detail else "")
        self.lines.append(line)
        s = self.stats.setdefault(kind, {})
        s[outcome] = s.get(outcome, 0) + 1
        ph = self.stats.setdefault("phase:" + kind, {})
        ph[phase] = ph.get(phase, 0) + 1
        print(line, flush=True)
        if self.results:
            self.results.write(line + "\n")
            self.results.flush()
        return outcome

    def main(self):
        a = self.args
        seeds = [int(x) for x in a.seeds.split(",")] if a.seeds else \
            [a.seed + i for i in range(a.runs)]
        path = a.results or os.path.join(HERE, "results-%s.txt" % a.backend)
        self.results = open(path, "w") if path != "-" else None
        if self.results:
            self.results.write("# tests/faults/run.py --backend %s %s (jobpub %s)\n" % (
                a.backend, ("--seeds " + a.seeds) if a.seeds else
                "--runs %d --seed %d" % (a.runs, a.seed), self.jobpub))
        t0 = time.time()
        try:
            self.backend.start()
            if a.t_cal:
                self.t_cal = a.t_cal
            else:
                self.calibrate()
            for s in seeds:
                try:
                    if not self.backend.healthy():
                        log("the server does not answer before seed %d: started again" % s)
                        self.revived.append(s)
                        self.backend.revive()
                    self.one(s)
                except Exception as e:  # the harness's own failure: said, and the next run
                    run = Run()
                    run.seed = s
                    self.record(run, "-", 0.0, "-", "-", "error",
                                "%s: %s" % (type(e).__name__, e))
        finally:
            try:
                self.backend.stop()
            finally:
                if not a.keep:
                    self.cleanup()
        n = len(self.lines)
        tot = {}
        summary = ["# %d runs in %.0f s, t_cal %.3f s" % (n, time.time() - t0, self.t_cal)]
        for k in self.faults:
            s = self.stats.get(k, {})
            for o, c in s.items():
                tot[o] = tot.get(o, 0) + c
            summary.append("# %-12s %s   phases: %s" % (
                k, " ".join("%s=%d" % x for x in sorted(s.items())) or "-",
                " ".join("%s=%d" % x for x in sorted(self.stats.get("phase:" + k,
                                                                    {}).items())) or "-"))
        summary.append("# total %s" % " ".join("%s=%d" % x for x in sorted(tot.items())))
        met = sum(c for k in self.faults for ph, c in self.stats.get("phase:" + k, {}).items()
                  if ph != "exited")
        summary.append("# faults that met a running publish (phase not exited): %d" % met)
        summary.append("# server found dead (load, not a fault) and started again before seeds:"
                       " %s" % (",".join(map(str, self.revived)) or "none"))
        for line in summary:
            print(line)
            if self.results:
                self.results.write(line + "\n")
        if self.results:
            self.results.close()
        return 1 if tot.get("violation") or tot.get("crash") or tot.get("error") else 0

    def cleanup(self):
        # Anything still mounted below the base first (a tmpfs of a disk-full run).
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f]
        for m in sorted(mounts, reverse=True):
            if m.startswith(self.base + "/"):
                sh(["umount", "-l", m])
        shutil.rmtree(self.base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description="seeded fault injection for jobpub")
    ap.add_argument("--backend", required=True, choices=sorted(BACKENDS))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", help="comma-separated seeds instead of --runs/--seed")
    ap.add_argument("--faults", help="comma-separated fault kinds (default: all of the backend)")
    ap.add_argument("--results", help="results file ('-': none)")
    ap.add_argument("--keep", help="work below this directory and keep it")
    ap.add_argument("--t-cal", type=float, help="the duration of an unfaulted publish, in "
                    "seconds, instead of measuring it (to repeat a run's moment exactly)")
    args = ap.parse_args()

    def stop(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)
    # Stopped by SIGTERM or SIGINT (also when started in the background, where SIGINT is
    # ignored), the servers are still stopped and the work directory removed.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    h = Harness(args)
    try:
        return h.main()
    except RuntimeError as e:
        log("cannot run: %s" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
