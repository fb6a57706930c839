#!/usr/bin/env python3
"""Chaos trials: the real agent on a real (private) dockerd, faults at random moments, and
the promises checked from the outside afterwards (engine events, labels, the API).

  chaos.py --bin build/agent/daemonlet --trials 500 --seed 1 [--lanes 3]
  chaos.py --bin build/agent/daemonlet --replay 1234567     # one trial, by its seed

Each trial: a fresh instance id, definitions directory (or control endpoint) and stateDir
on a small tmpfs; 3 daemons (mon: critical, health-checked; prep: critical, an init
container that must succeed first; opt: not critical) and 10 tasks. One phase (boot,
steady, rollout, drain, shutdown) and one to three faults at random moments in it:
agent kill -9 / SIGTERM and restart, engine SIGKILL and restart, a daemon or task container
killed behind the agent's back, a rollout to a revision that never becomes healthy, the
definitions directory swapped mid-change, the control endpoint down/500/slow/garbage, the
wall clock stepped (our shim, WallClockShift.cpp), the disk under stateDir full. Then it checks:
  P1  never two running copies of a daemon family, except old and new in a rollout
  P2  no task container starts while a critical daemon is not ready
  P4  after a drain or a draining shutdown began, no daemon stops while a task runs
  P5  an agent restart stops, restarts or duplicates no container
  no orphaned (unaccounted for by the API) or duplicated container
  convergence to the desired state within --bound seconds of the last fault
  the agent alive (/healthz 200), or, after a draining shutdown, exited 0
Each lane has its own private dockerd (tests/contract/private-dockerd.sh), so that
engine faults never touch the machine's engine or another lane. A failing trial prints its
seed and the command that replays it. The summary line gives trials, faults by kind and
violations by promise; --json writes them for docs/reliability.md.
Only the Python 3 standard library.
"""
import argparse
import collections
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
PRIVATE_DOCKERD = os.path.join(TESTS, "contract", "private-dockerd.sh")
CONTROL_SERVER = os.path.join(TESTS, "control", "control_server.py")
IMAGE = "daemonlet/busybox:local"
LOOP = "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"

PHASES = ["boot", "steady", "rollout", "drain", "shutdown"]
FAULTS = ["agent_kill9", "agent_term", "engine_kill", "container_kill", "bad_rollout",
          "defs_swap", "control", "clock_step", "disk_full"]
CRITICAL = ("mon", "prep")
NTASKS = 10


# ---- the engine ------------------------------------------------------------------------

class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("docker", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Engine:
    """A private dockerd for one lane."""

    def __init__(self, directory, log):
        self.dir = directory
        self.sock = os.path.join(directory, "docker.sock")
        self.log = log

    def call(self, method, path, body=None, timeout=30):
        conn = UnixConnection(self.sock, timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            r = conn.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw and raw[:1] in (b"{", b"[") else raw)
        finally:
            conn.close()

    def up(self):
        try:
            return self.call("GET", "/_ping", timeout=3)[0] == 200
        except OSError:
            return False

    def start(self):
        with open(os.path.join(self.dir + ".out"), "a") as out:
            subprocess.run([PRIVATE_DOCKERD, "start", self.dir], stdout=out, stderr=out, check=True)

    def kill9(self):
        subprocess.run([PRIVATE_DOCKERD, "kill9", self.dir], check=False)

    def stop(self):
        subprocess.run([PRIVATE_DOCKERD, "stop", self.dir], check=False)

    def load_image(self):
        save = subprocess.Popen(["docker", "save", IMAGE], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", "unix://" + self.sock, "load"], stdin=save.stdout,
                       stdout=subprocess.DEVNULL, check=True)
        save.wait()

    def containers(self, instance):
        flt = urllib.parse.quote(json.dumps({"label": ["io.daemonlet.instance=" + instance]}))
        status, body = self.call("GET", "/containers/json?all=1&filters=" + flt)
        if status != 200:
            raise OSError("list: HTTP %d" % status)
        return body

    def remove_instance(self, instance):
        for _ in range(20):
            try:
                for c in self.containers(instance):
                    self.call("DELETE", "/containers/%s?force=1&v=1" % c["Id"])
                return
            except OSError:
                time.sleep(1)


class EventRecorder(threading.Thread):
    """Every event of managed containers on one engine, across engine restarts."""

    def __init__(self, engine):
        super().__init__(daemon=True)
        self.engine = engine
        self.lock = threading.Lock()
        self.events = []
        self.seen = set()
        self.last_ns = time.time_ns()
        self.stopping = False

    def run(self):
        flt = urllib.parse.quote(json.dumps({"label": ["io.daemonlet.managed=true"], "type": ["container"]}))
        while not self.stopping:
            try:
                since = self.last_ns // 10**9 - 1
                conn = UnixConnection(self.engine.sock, timeout=None)
                conn.request("GET", "/events?since=%d&filters=%s" % (since, flt))
                r = conn.getresponse()
                buffer = b""
                while not self.stopping:
                    chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
                    if not chunk:
                        break
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        self.add(line)
                conn.close()
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.3)

    def add(self, line):
        try:
            e = json.loads(line)
        except ValueError:
            return
        attrs = e.get("Actor", {}).get("Attributes", {})
        key = (e.get("id"), e.get("Action"), e.get("timeNano"))
        with self.lock:
            if key in self.seen:
                return
            self.seen.add(key)
            self.last_ns = max(self.last_ns, e.get("timeNano", 0))
            self.events.append({"t": e.get("timeNano", 0), "action": e.get("Action", ""), "id": e.get("id", ""),
                                "attrs": attrs})

    def of(self, instance):
        with self.lock:
            return sorted((e for e in self.events if e["attrs"].get("io.daemonlet.instance") == instance),
                          key=lambda e: e["t"])

    def forget(self, instance):
        with self.lock:
            self.events = [e for e in self.events if e["attrs"].get("io.daemonlet.instance") != instance]


# ---- definitions -----------------------------------------------------------------------

def daemon_def(family, revision, broken=False):
    main = {"name": "main", "image": IMAGE, "memory": 16, "stopTimeout": 2,
            "environment": [{"name": "REV", "value": str(revision)}],
            "command": ["sh", "-c", LOOP]}
    d = {"family": family, "revision": revision, "containerDefinitions": [main]}
    if family == "mon":
        main["command"] = ["sh", "-c", "touch /tmp/up; " + LOOP]
        probe = "test -f /tmp/never" if broken else "test -f /tmp/up"
        # Three failed probes of 10 s each before it counts as unhealthy: a loaded machine
        # makes single probes time out, and a daemon that flaps is not what is tested here.
        main["healthCheck"] = {"command": ["CMD-SHELL", probe], "interval": 5, "timeout": 10, "retries": 3}
        if broken:
            main["startTimeout"] = 8
    elif family == "prep":
        init = {"name": "init", "image": IMAGE, "memory": 8, "essential": False, "command": ["sh", "-c", "sleep 0.3"]}
        main["dependsOn"] = [{"containerName": "init", "condition": "SUCCESS"}]
        d["containerDefinitions"] = [init, main]
    elif family == "opt":
        d["critical"] = False
    return d


def task_def(revision):
    return {"family": "app", "revision": revision, "containerDefinitions": [
        {"name": "main", "image": IMAGE, "memory": 8, "stopTimeout": 2,
         "environment": [{"name": "REV", "value": str(revision)}], "command": ["sh", "-c", LOOP]}]}


class Desired:
    """What should run: daemon family -> revision, task id -> revision."""

    def __init__(self):
        self.daemons = {"mon": 1, "prep": 1, "opt": 1}
        self.tasks = {"t%d" % i: 1 for i in range(NTASKS)}
        self.broken_mon = None  # a revision of mon that never becomes healthy
        self.drained = False

    def copy(self):
        d = Desired()
        d.daemons, d.tasks, d.broken_mon, d.drained = dict(self.daemons), dict(self.tasks), self.broken_mon, self.drained
        return d

    def definitions(self):
        daemons = {f: daemon_def(f, r, broken=(f == "mon" and r == self.broken_mon)) for f, r in self.daemons.items()}
        tasks = {t: task_def(r) for t, r in self.tasks.items()}
        return daemons, tasks

    def write_dir(self, root):
        daemons, tasks = self.definitions()
        for sub in ("daemons", "tasks"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        for f, d in daemons.items():
            write_atomic(os.path.join(root, "daemons", f + ".json"), json.dumps(d))
        for t, d in tasks.items():
            write_atomic(os.path.join(root, "tasks", t + ".json"), json.dumps(d))
        for sub, keep in (("daemons", daemons), ("tasks", tasks)):
            for name in os.listdir(os.path.join(root, sub)):
                if name.endswith(".json") and name[:-5] not in keep:
                    os.unlink(os.path.join(root, sub, name))

    def document(self, generation):
        daemons, tasks = self.definitions()
        return {"generation": generation, "instanceStatus": "ACTIVE",
                "daemons": list(daemons.values()),
                "tasks": [{"id": t, "definition": d} for t, d in tasks.items()]}


def write_atomic(path, text):
    tmp = path + ".tmp~"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


# ---- one trial -------------------------------------------------------------------------

class Violation(Exception):
    pass


class Trial:
    def __init__(self, args, lane, seed):
        self.args, self.lane, self.seed = args, lane, seed
        self.rng = random.Random(seed)
        self.engine, self.recorder = lane.engine, lane.recorder
        self.instance = "ch%x" % seed
        self.work = tempfile.mkdtemp(prefix="dl-chaos-%s-" % self.instance)
        self.defs = os.path.join(self.work, "defs")
        self.state = os.path.join(self.work, "state")
        self.log_path = os.path.join(self.work, "agent.log")
        self.port = lane.port
        self.agent = None
        self.control = None
        self.control_admin = None
        self.generation = 1
        self.desired = Desired()
        self.violations = []
        self.notes = []
        self.faults = []           # (kind, detail)
        self.injected_kills = {}   # container id -> ns when we killed it
        self.engine_windows = []   # (ns from, ns to): the engine was down or restarting
        self.engine_restarts = []  # synthetic events: what ran right after an engine restart
        self.bad_rollouts = []     # (ns from, ns to, ids of mon running before)
        self.shutdown_pid = None   # the agent that got the shutdown SIGTERM
        self.agent_restarts = []   # (ns, snapshot of running containers) before each restart fault
        self.touched = set()       # owners (family or task id) that faults or phase actions changed
        self.everything_touched = False
        self.drain_ns = None
        self.shutdown_expected = False
        self.clock_file = None
        self.filler = None
        self.t0 = time.time_ns()

    # -- plumbing --
    def note(self, text):
        self.notes.append("+%.1fs %s" % ((time.time_ns() - self.t0) / 1e9, text))

    def plan(self):
        phase = self.rng.choice(PHASES)
        n = self.rng.choice([1, 1, 2, 2, 3])
        kinds = []
        for _ in range(n):
            k = self.rng.choice(FAULTS)
            if phase == "shutdown" and k == "agent_term":
                k = "agent_kill9"
            kinds.append(k)
        source = "http" if "control" in kinds or self.rng.random() < 0.2 else "directory"
        if source == "http":
            kinds = [k for k in kinds if k != "defs_swap"] or ["control"]
        delays = sorted(self.rng.uniform(0, 4) for _ in kinds)
        if self.args.phase:
            phase = self.args.phase
        if self.args.faults:
            kinds = self.args.faults.split(",")
            delays = sorted(self.rng.uniform(0, 4) for _ in kinds)
            source = "http" if "control" in kinds else "directory"
        return phase, source, list(zip(kinds, delays))

    def config(self, source):
        lines = ["instance: {id: %s, capacity: {cpu: 8192, memory: 8192}, reserved: {cpu: 0, memory: 0}}" % self.instance,
                 "listen: 127.0.0.1:%d" % self.port,
                 "apiSocket: %s/api.sock" % self.work,
                 "stateDir: %s" % self.state,
                 "runtime: {endpoint: 'unix://%s'}" % self.engine.sock,
                 "shutdown: {drainTimeoutSeconds: 200}"]
        if source == "directory":
            lines.append("source: {type: directory, path: %s, pollSeconds: 1}" % self.defs)
        else:
            lines.append("source: {type: http, url: 'http://127.0.0.1:%d', longPollSeconds: 5}" % self.control_port)
        path = os.path.join(self.work, "config.yaml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start_agent(self):
        env = dict(os.environ)
        if self.clock_file:
            env.update(LD_PRELOAD=self.args.clock_shim, DAEMONLET_CLOCK_SHIFT_FILE=self.clock_file)
        cmd = [self.args.bin, "run", "--config", self.config_path]
        if self.drain_on_exit:
            cmd.append("--drain-on-exit")
        with open(self.log_path, "a") as log:
            log.write("=== %s %s\n" % (time.strftime("%T"), " ".join(cmd)))
            log.flush()
            offset = log.tell()
            self.agent = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        # A signal sent before the process reaches main meets the kernel's default action
        # (exit -15), whatever the agent does: the dynamic loader and the static constructors
        # of the libraries it links take 10-20 ms. The agent's "starting" line comes after
        # its handlers exist, so faults wait for it and hit the agent, not the loader.
        end = time.monotonic() + 60
        while self.agent.poll() is None and time.monotonic() < end:
            with open(self.log_path, errors="replace") as log:
                log.seek(offset)
                if " starting: instance " in log.read():
                    break
            time.sleep(0.01)
        self.note("agent started (pid %d)" % self.agent.pid)

    def agent_alive(self):
        return self.agent is not None and self.agent.poll() is None

    def api(self, path, method="GET", sock=False, timeout=5):
        if sock:
            conn = UnixConnection(os.path.join(self.work, "api.sock"), timeout)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path)
            r = conn.getresponse()
            raw = r.read()
            return r.status, raw
        finally:
            conn.close()

    def phase_now(self):
        try:
            status, body = self.api("/v1/metadata")
            return json.loads(body).get("phase") if status == 200 else None
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def running_snapshot(self):
        out = {}
        for c in self.engine.containers(self.instance):
            if c["State"] == "running":
                out[c["Id"]] = c
        return out

    def publish(self):
        """Hands the desired state to the agent through the trial's source."""
        if self.source == "directory":
            self.desired.write_dir(self.defs)
        else:
            self.generation += 1
            body = json.dumps(self.desired.document(self.generation)).encode()
            conn = http.client.HTTPConnection("127.0.0.1", self.control_admin, timeout=5)
            conn.request("PUT", "/admin/desired", body=body)
            conn.getresponse().read()
            conn.close()

    def control_fault(self, mode, delay=0):
        conn = http.client.HTTPConnection("127.0.0.1", self.control_admin, timeout=5)
        conn.request("PUT", "/admin/fault", body=json.dumps({"mode": mode, "delaySeconds": delay}).encode())
        conn.getresponse().read()
        conn.close()

    # -- the trial --
    def run(self):
        phase, self.source, faults = self.plan()
        self.phase = phase
        self.drain_on_exit = phase == "shutdown"
        self.faults_planned = faults
        self.note("phase %s, source %s, faults %s" % (phase, self.source,
                                                      ", ".join("%s@%.1fs" % f for f in faults)))
        os.makedirs(self.state)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", self.state], check=True)
        if any(k == "clock_step" for k, _ in faults):
            self.clock_file = os.path.join(self.work, "clock-shift")
            write_atomic(self.clock_file, "+0\n")
        if self.source == "http":
            self.start_control()
        else:
            self.desired.write_dir(self.defs)
        if self.source == "http":
            self.publish()
        self.config_path = self.config(self.source)
        try:
            self.start_agent()
            if phase != "boot":
                self.wait_converged("before the %s phase" % phase)
            self.begin_phase(phase)
            for kind, delay in faults:
                self.sleep_until(delay)
                self.inject(kind)
            self.recover()
            self.final_checks()
        finally:
            self.cleanup()
        return self.violations

    def sleep_until(self, offset):
        end = self.phase_start + offset
        while time.monotonic() < end:
            time.sleep(0.05)

    def begin_phase(self, phase):
        self.phase_start = time.monotonic()
        if phase == "rollout":
            family = self.rng.choice(sorted(self.desired.daemons))
            task = self.rng.choice(sorted(self.desired.tasks))
            self.desired.daemons[family] += 1
            self.desired.tasks[task] += 1
            self.touched.update({family, task})
            self.publish()
            self.note("rollout: %s r%d, task %s r%d" % (family, self.desired.daemons[family], task, self.desired.tasks[task]))
        elif phase == "drain":
            self.drain_ns = time.time_ns()
            status, body = self.api("/v1/drain", "POST", sock=True)
            if status != 202:
                self.violate("drain", "POST /v1/drain answered %d %s" % (status, body[:200]))
            self.desired.drained = True
            self.touched.update(self.desired.tasks)
            self.note("drain requested")
        elif phase == "shutdown":
            self.drain_ns = time.time_ns()
            self.shutdown_expected = True
            self.everything_touched = True
            self.shutdown_pid = self.agent.pid
            self.agent.send_signal(signal.SIGTERM)
            self.note("SIGTERM with --drain-on-exit")

    def inject(self, kind):
        detail = ""
        if kind in ("agent_kill9", "agent_term"):
            if not self.agent_alive():
                kind, detail = "agent_kill9", "agent already gone; restarted"
            snapshot = {}
            try:
                snapshot = self.running_snapshot()
            except OSError:
                pass
            at = time.time_ns()
            if self.agent_alive():
                self.agent.send_signal(signal.SIGKILL if kind == "agent_kill9" else signal.SIGTERM)
                try:
                    self.agent.wait(60)
                except subprocess.TimeoutExpired:
                    self.violate("alive", "the agent did not exit within 60 s of SIGTERM")
                    self.agent.kill()
                    self.agent.wait()
                if kind == "agent_term" and self.agent.returncode != 0:
                    self.violate("alive", "SIGTERM: the agent exited %d" % self.agent.returncode)
            if self.shutdown_expected and kind == "agent_kill9":
                # The draining shutdown was cut short: the restarted agent brings the fleet
                # back, and the shutdown is asked for again at the end.
                self.note("shutdown interrupted by kill -9")
            self.agent_restarts.append((at, snapshot, self.phase_actions_done()))
            time.sleep(self.rng.uniform(0, 1.5))
            self.start_agent()
        elif kind == "engine_kill":
            start = time.time_ns()
            self.engine.kill9()
            time.sleep(self.rng.uniform(0, 2))
            self.engine.start()
            survivors = set()
            try:
                survivors = set(self.running_snapshot())
            except OSError:
                pass
            self.engine_windows.append((start, time.time_ns() + 2 * 10**9))
            self.engine_restarts.append({"t": time.time_ns(), "action": "engine-restarted", "id": "", "attrs": {},
                                         "survivors": survivors})
            self.everything_touched = True
        elif kind == "container_kill":
            try:
                running = sorted(self.running_snapshot().values(), key=lambda c: c["Id"])
            except OSError:
                running = []
            if running:
                c = self.rng.choice(running)
                owner = c["Labels"].get("io.daemonlet.task-id") or c["Labels"].get("io.daemonlet.family")
                self.injected_kills[c["Id"]] = time.time_ns()
                self.engine.call("POST", "/containers/%s/kill" % c["Id"])
                self.touched.add(owner)
                detail = "%s/%s" % (owner, c["Labels"].get("io.daemonlet.container"))
            else:
                detail = "nothing running"
        elif kind == "bad_rollout":
            good = self.desired.copy()
            self.desired.daemons["mon"] += 1
            self.desired.broken_mon = self.desired.daemons["mon"]
            try:
                # Only a copy that serves (healthy) must be kept; one still starting may be replaced.
                before = [i for i, c in self.running_snapshot().items()
                          if c["Labels"].get("io.daemonlet.family") == "mon" and "(healthy)" in c.get("Status", "")]
            except OSError:
                before = []
            start = time.time_ns()
            self.publish()
            self.touched.add("mon")
            time.sleep(self.rng.uniform(1, 6))
            self.bad_rollouts.append((start, time.time_ns(), before))
            # The operator reverts: the old content (and revision) again.
            good.drained = self.desired.drained
            self.desired = good
            self.publish()
            detail = "mon r%d never healthy, reverted" % (good.daemons["mon"] + 1)
        elif kind == "defs_swap":
            new = self.desired.copy()
            gone = self.rng.choice(sorted(new.tasks))
            del new.tasks[gone]
            new.tasks["t%d" % (NTASKS + len(self.faults))] = 1
            changed = self.rng.choice(sorted(new.tasks))
            new.tasks[changed] += 1
            family = self.rng.choice(sorted(new.daemons))
            new.daemons[family] += 1
            staging = self.defs + ".new"
            new.write_dir(staging)
            old = self.defs + ".old"
            os.rename(self.defs, old)
            time.sleep(self.rng.uniform(0, 1))  # the directory is gone for a moment
            os.rename(staging, self.defs)
            shutil.rmtree(old)
            self.touched.update({gone, changed, family, "t%d" % (NTASKS + len(self.faults))})
            self.desired = new
            detail = "-%s +t%d ~%s ~%s" % (gone, NTASKS + len(self.faults), changed, family)
        elif kind == "control":
            mode = self.rng.choice(["down", "500", "slow", "garbage"])
            self.control_fault(mode, delay=30 if mode == "slow" else 0)
            time.sleep(self.rng.uniform(1, 5))
            self.control_fault("none")
            detail = mode
        elif kind == "clock_step":
            step = self.rng.choice([-1, 1]) * self.rng.choice([600, 3600, 86400])
            write_atomic(self.clock_file, "%+d\n" % step)
            detail = "%+d s" % step
        elif kind == "disk_full":
            self.filler = os.path.join(self.state, "filler")
            subprocess.run(["dd", "if=/dev/zero", "of=" + self.filler, "bs=64k"], stderr=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL)
            time.sleep(self.rng.uniform(1, 4))
            os.unlink(self.filler)
            self.filler = None
            detail = "2 MiB tmpfs filled for a while"
        self.faults.append((kind, detail))
        self.note("fault %s %s" % (kind, detail))

    def phase_actions_done(self):
        return set(self.touched), self.everything_touched

    def start_control(self):
        ready = os.path.join(self.work, "control.ready")
        self.control = subprocess.Popen([sys.executable, CONTROL_SERVER, "--ready-file", ready],
                                        stdout=open(os.path.join(self.work, "control.log"), "w"),
                                        stderr=subprocess.STDOUT)
        for _ in range(100):
            if os.path.exists(ready):
                try:
                    info = json.load(open(ready))
                    self.control_port, self.control_admin = info["port"], info["adminPort"]
                    return
                except ValueError:
                    pass
            time.sleep(0.1)
        raise RuntimeError("control server did not start")

    def recover(self):
        if not self.engine.up():
            self.engine.start()
        if self.filler and os.path.exists(self.filler):
            os.unlink(self.filler)
        if self.source == "http":
            self.control_fault("none")
        if self.shutdown_expected:
            if self.agent.pid != self.shutdown_pid:
                # The agent that got the shutdown SIGTERM was killed and started again. It
                # resumes the shutdown when the first one had begun it (stateDir/drain) and
                # exits when done; otherwise it brings the fleet back, and is asked to stop
                # once more. Either way it must exit 0 with nothing running.
                end = time.monotonic() + self.args.bound
                phase = None
                while self.agent_alive():
                    phase = self.phase_now()
                    if phase == "ACTIVE" and not self.differences()[0]:
                        self.note("the restarted agent brought the fleet back; SIGTERM again")
                        self.shutdown_pid = self.agent.pid
                        self.agent.send_signal(signal.SIGTERM)
                        break
                    if time.monotonic() > end:
                        self.violate("converge", "after the interrupted shutdown: phase %s, neither resumed nor converged "
                                     "within %d s" % (phase, self.args.bound))
                        return
                    time.sleep(0.5)
            try:
                self.agent.wait(self.args.bound)
            except subprocess.TimeoutExpired:
                self.violate("converge", "the draining shutdown did not end within %d s" % self.args.bound)
                return
            if self.agent.returncode != 0:
                self.violate("alive", "the draining shutdown exited %d" % self.agent.returncode)
            running = [c for c in self.engine.containers(self.instance) if c["State"] == "running"]
            if running:
                self.violate("converge", "after the draining shutdown, still running: %s" % names(running))
            return
        if not self.agent_alive():
            self.violate("alive", "the agent died (exit %s)" % self.agent.returncode)
            self.start_agent()
        self.wait_converged("after the faults")

    # -- convergence --
    def differences(self):
        problems = []
        listed = self.engine.containers(self.instance)
        running = [c for c in listed if c["State"] == "running"]
        by_owner = collections.defaultdict(list)
        for c in running:
            l = c["Labels"]
            by_owner[(l.get("io.daemonlet.kind"), l.get("io.daemonlet.task-id") or l.get("io.daemonlet.family"),
                      l.get("io.daemonlet.container"))].append(c)
        want = {}
        for f, r in self.desired.daemons.items():
            want[("daemon", f, "main")] = r
        if not self.desired.drained:
            for t, r in self.desired.tasks.items():
                want[("task", t, "main")] = r
        for key, rev in want.items():
            got = by_owner.pop(key, [])
            if len(got) != 1:
                problems.append("%s/%s/%s: %d running" % (key + (len(got),)))
                continue
            c = got[0]
            if c["Labels"].get("io.daemonlet.revision") != str(rev):
                problems.append("%s/%s: revision %s, want %d" % (key[1], key[2], c["Labels"].get("io.daemonlet.revision"), rev))
            if key[1] == "mon" and "(healthy)" not in c.get("Status", ""):
                problems.append("mon: %s" % c.get("Status"))
        for key, got in by_owner.items():
            problems.append("unexpected running %s/%s/%s x%d" % (key + (len(got),)))
        if problems:
            return problems, listed
        # The API accounts for every container of the instance the engine has.
        try:
            status, body = self.api("/healthz")
            if status != 200:
                return ["/healthz %d" % status], listed
            known = set()
            for doc in ("/v1/daemons", "/v1/tasks"):
                status, body = self.api(doc)
                for entry in json.loads(body):
                    for c in entry.get("containers", []):
                        if c.get("id"):
                            known.add(c["id"])
            status, body = self.api("/v1/daemons")
            for d in json.loads(body):
                if d.get("status") != "RUNNING":
                    problems.append("API: daemon %s %s" % (d.get("family"), d.get("status")))
        except (OSError, ValueError, http.client.HTTPException) as e:
            return ["API: %s" % e], listed
        unknown = [c for c in listed if not any(k and c["Id"].startswith(k) for k in known)]
        # The init container of prep has exited by design; the API lists it as prep's.
        for c in unknown:
            problems.append("not accounted for by the API: %s (%s)" % (c["Names"][0], c["State"]))
        return problems, listed

    def wait_converged(self, when):
        end = time.monotonic() + self.args.bound
        problems = ["never checked"]
        while time.monotonic() < end:
            try:
                problems, _ = self.differences()
            except OSError as e:
                problems = ["engine: %s" % e]
            if not problems:
                self.note("converged %s" % when)
                return True
            if not self.agent_alive() and not self.shutdown_expected:
                break
            time.sleep(0.5)
        self.violate("converge", "%s: not converged within %d s: %s" % (when, self.args.bound, "; ".join(problems[:6])))
        raise Violation()

    # -- the promises, from the engine's events --
    def final_checks(self):
        time.sleep(0.5)  # the last events reach the recorder
        events = self.recorder.of(self.instance)
        if self.args.keep:
            with open(os.path.join(self.work, "events.txt"), "w") as f:
                for e in events:
                    l = e["attrs"]
                    f.write("+%.3fs %s %s/%s r%s %s\n" % ((e["t"] - self.t0) / 1e9, e["action"], l.get("io.daemonlet.task-id") or
                                                        l.get("io.daemonlet.family"), l.get("io.daemonlet.container"),
                                                        l.get("io.daemonlet.revision"), e["id"][:12]))
        self.check_timeline(sorted(events + self.engine_restarts, key=lambda e: e["t"]))
        self.check_bad_rollouts(events)
        self.check_restarts(events)
        if not self.shutdown_expected and not self.agent_alive():
            self.violate("alive", "the agent is not running at the end")

    def check_timeline(self, events):
        info = {}         # id -> labels
        running = {}      # id -> start ns
        health = {}       # id -> last health
        down_since = {f: self.t0 for f in CRITICAL}  # critical family -> since when it has no ready copy
        ready_ids = set()

        def owner(l):
            return l.get("io.daemonlet.task-id") or l.get("io.daemonlet.family")

        def family_ready(f):
            return any(info[i].get("io.daemonlet.family") == f and info[i].get("io.daemonlet.kind") == "daemon"
                       for i in ready_ids)

        def update_ready(t):
            for f in CRITICAL:
                if family_ready(f):
                    down_since[f] = None
                elif down_since[f] is None:
                    down_since[f] = t

        def in_engine_window(t):
            return any(a <= t <= b for a, b in self.engine_windows)

        for e in events:
            if e["action"] == "engine-restarted":
                # Whatever the engine did not bring back died with it, events or not.
                for cid in [i for i in running if i not in e["survivors"]]:
                    del running[cid]
                    ready_ids.discard(cid)
                update_ready(e["t"])
                continue
            cid, a, t, l = e["id"], e["action"], e["t"], e["attrs"]
            info[cid] = l
            kind, cname = l.get("io.daemonlet.kind"), l.get("io.daemonlet.container")
            if a == "start":
                same = [i for i in running if i != cid and owner(info[i]) == owner(l)
                        and info[i].get("io.daemonlet.kind") == kind and info[i].get("io.daemonlet.container") == cname]
                if kind == "daemon":
                    if any(info[i].get("io.daemonlet.hash") == l.get("io.daemonlet.hash") for i in same):
                        self.violate("P1", "two running copies of %s/%s r%s" % (owner(l), cname, l.get("io.daemonlet.revision")))
                    elif len(same) >= 2:
                        self.violate("P1", "%d running copies of %s/%s" % (len(same) + 1, owner(l), cname))
                elif same:
                    self.violate("dup", "task %s/%s started while another copy runs" % (owner(l), cname))
                if kind == "task":
                    for f in CRITICAL:
                        since = down_since[f]
                        if since is not None and not family_ready(f):
                            # The agent decides on what it has seen: a start it asked for
                            # before it could know (the death reaches it through the event
                            # stream; a loaded engine takes seconds to carry out a start) is
                            # not its fault. --latency bounds both.
                            tolerance = self.args.latency * 1e9
                            if t - since > tolerance:
                                self.violate("P2", "task %s started at +%.1fs while %s had no ready copy (since +%.1fs)"
                                             % (owner(l), (t - self.t0) / 1e9, f, (since - self.t0) / 1e9))
                running[cid] = t
                health[cid] = None
                if kind == "daemon" and cname == "main" and owner(l) != "mon":
                    ready_ids.add(cid)
                update_ready(t)
            elif a.startswith("health_status"):
                health[cid] = a.split(": ", 1)[-1]
                if kind == "daemon" and owner(l) == "mon" and cid in running:
                    (ready_ids.add if health[cid] == "healthy" else ready_ids.discard)(cid)
                update_ready(t)
            elif a in ("die", "destroy", "kill", "stop"):
                if a == "die" and cid in running:
                    if (kind == "daemon" and self.drain_ns is not None and t > self.drain_ns
                            and cid not in self.injected_kills and not in_engine_window(t)):
                        replaced = any(i != cid and owner(info[i]) == owner(l) and info[i].get("io.daemonlet.container") == cname
                                       for i in running)
                        tasks = [i for i in running if info[i].get("io.daemonlet.kind") == "task"]
                        if tasks and not replaced and cname != "init":
                            self.violate("P4", "daemon %s/%s stopped at +%.1fs while %d task container(s) ran"
                                         % (owner(l), cname, (t - self.t0) / 1e9, len(tasks)))
                    del running[cid]
                    ready_ids.discard(cid)
                    update_ready(t)

    def check_bad_rollouts(self, events):
        """DESIGN 4: a revision that never becomes healthy leaves the old copy running, unless
        a draining shutdown stops it (after the applications: P4 judges that stop)."""
        stopping_from = self.drain_ns if self.phase == "shutdown" else None
        for start, end, ids in self.bad_rollouts:
            for cid in ids:
                for e in events:
                    if (e["id"] == cid and e["action"] == "die" and start < e["t"] < end
                            and (stopping_from is None or e["t"] < stopping_from)
                            and cid not in self.injected_kills and not any(a <= e["t"] <= b for a, b in self.engine_windows)):
                        self.violate("rollout", "the old mon copy died at +%.1fs during a rollout to a revision "
                                     "that never became healthy" % ((e["t"] - self.t0) / 1e9))

    def check_restarts(self, events):
        """P5: what ran, settled, when the agent was killed or stopped is untouched after."""
        for at, snapshot, (touched, everything) in self.agent_restarts:
            if everything or self.everything_touched:
                continue
            later_touched = self.touched
            for cid, c in snapshot.items():
                l = c["Labels"]
                own = l.get("io.daemonlet.task-id") or l.get("io.daemonlet.family")
                if own in later_touched or own in touched or l.get("io.daemonlet.container") == "init":
                    continue  # the init container exits by itself
                if l.get("io.daemonlet.kind") == "task" and self.desired.drained:
                    continue
                died = [e for e in events if e["id"] == cid and e["action"] == "die" and e["t"] > at]
                if died:
                    self.violate("P5", "%s/%s (running when the agent was stopped at +%.1fs) died at +%.1fs"
                                 % (own, l.get("io.daemonlet.container"), (at - self.t0) / 1e9, (died[0]["t"] - self.t0) / 1e9))

    def violate(self, promise, text):
        self.violations.append((promise, text))
        self.note("VIOLATION %s: %s" % (promise, text))

    def cleanup(self):
        if self.agent_alive():
            self.agent.kill()
            self.agent.wait()
        if self.control and self.control.poll() is None:
            self.control.kill()
            self.control.wait()
        if not self.engine.up():
            self.engine.start()
        subprocess.run(["umount", "-l", self.state], check=False)

        def remove():  # in the background: the lane's next trial has its own instance id
            self.engine.remove_instance(self.instance)
            time.sleep(2)
            self.recorder.forget(self.instance)
        threading.Thread(target=remove, daemon=True).start()


def names(containers):
    return ", ".join(c["Names"][0].lstrip("/") for c in containers)


# ---- lanes and the campaign ------------------------------------------------------------

class Lane:
    def __init__(self, index, base):
        self.index = index
        # The directory's name is the engine's containerd namespace: unique per run.
        self.engine = Engine(os.path.join(base, "ch%de%d" % (os.getpid(), index)), None)
        self.port = 52100 + index + 10 * (os.getpid() % 50)
        self.recorder = None

    def start(self):
        self.engine.start()
        self.engine.load_image()
        self.recorder = EventRecorder(self.engine)
        self.recorder.start()

    def stop(self):
        if self.recorder:
            self.recorder.stopping = True
        self.engine.stop()


def replay_command(args, seed):
    return "sudo %s --bin %s --replay %d --bound %d --latency %g" % (os.path.relpath(__file__), args.bin, seed, args.bound,
                                                                     args.latency)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="the daemonlet binary")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--replay", type=int, help="run the one trial with this seed")
    p.add_argument("--lanes", type=int, default=1, help="trials run side by side, each on its own private dockerd")
    p.add_argument("--bound", type=int, default=240, help="seconds to converge after the last fault")
    p.add_argument("--latency", type=float, default=3.0,
                   help="P2: seconds between a daemon's death and the engine's start event of a task the agent asked for before it knew")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--phase", choices=PHASES, help="only this phase (to chase one defect)")
    p.add_argument("--faults", help="only these faults, comma-separated, in this order (to chase one defect)")
    p.add_argument("--keep", action="store_true", help="keep the work directories of failing trials")
    p.add_argument("--clock-shim", help="the LD_PRELOAD shim that steps the agent's wall clock (target "
                   "chaos_wallclock; default: tests/chaos/libchaos_wallclock.so of the build the binary is in)")
    args = p.parse_args()
    args.bin = os.path.abspath(args.bin)
    if args.clock_shim is None:
        args.clock_shim = os.path.join(os.path.dirname(os.path.dirname(args.bin)), "tests", "chaos",
                                       "libchaos_wallclock.so")
    args.clock_shim = os.path.abspath(args.clock_shim)
    if not os.path.isfile(args.clock_shim):
        p.error("no clock shim at %s: build the target chaos_wallclock, or pass --clock-shim" % args.clock_shim)

    master = random.Random(args.seed)
    seeds = [args.replay] if args.replay is not None else [master.getrandbits(40) for _ in range(args.trials)]
    base = tempfile.mkdtemp(prefix="dlchaos", dir="/tmp")
    lanes = [Lane(i, base) for i in range(min(args.lanes, len(seeds)))]
    started = time.monotonic()
    results = []
    queue = collections.deque(enumerate(seeds))
    lock = threading.Lock()
    stop = threading.Event()

    def work(lane):
        while not stop.is_set():
            with lock:
                if not queue:
                    return
                n, seed = queue.popleft()
            trial = Trial(args, lane, seed)
            t = time.monotonic()
            try:
                trial.run()
            except Violation:
                pass
            except Exception:
                trial.violate("driver", traceback.format_exc().strip().splitlines()[-1])
                trial.note(traceback.format_exc())
            secs = time.monotonic() - t
            with lock:
                results.append((n, seed, trial, secs))
                line = "trial %d seed %d: %s %s (%.0f s) %s" % (
                    n, seed, trial.phase if hasattr(trial, "phase") else "?",
                    "ok" if not trial.violations else "FAILED", secs,
                    " ".join(k for k, _ in trial.faults))
                print(line, flush=True)
                if trial.violations:
                    for note in trial.notes:
                        print("    " + note, flush=True)
                    try:
                        with open(trial.log_path, errors="replace") as f:
                            tail = f.readlines()[-12:]
                        print("    agent log, last %d lines:" % len(tail), flush=True)
                        for l in tail:
                            print("      " + l.rstrip()[:300], flush=True)
                    except OSError:
                        pass
                    print("    replay: " + replay_command(args, seed), flush=True)
            if not trial.violations or not args.keep:
                shutil.rmtree(trial.work, ignore_errors=True)

    def interrupted(*_):
        stop.set()
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    try:
        for lane in lanes:
            lane.start()
        threads = [threading.Thread(target=work, args=(lane,)) for lane in lanes]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    finally:
        for lane in lanes:
            lane.stop()
        shutil.rmtree(base, ignore_errors=True)

    faults = collections.Counter(k for _, _, tr, _ in results for k, _ in tr.faults)
    phases = collections.Counter(getattr(tr, "phase", "?") for _, _, tr, _ in results)
    violations = collections.Counter(pr for _, _, tr, _ in results for pr, _ in tr.violations)
    failed = sorted((n, seed) for n, seed, tr, _ in results if tr.violations)
    elapsed = time.monotonic() - started
    summary = {"trials": len(results), "seed": args.seed, "lanes": len(lanes), "seconds": round(elapsed),
               "trialsPerMinute": round(60 * len(results) / elapsed, 2) if elapsed else 0,
               "phases": dict(phases), "faults": dict(faults), "violations": dict(violations),
               "failedSeeds": [s for _, s in failed]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    print("chaos: %d trials in %.0f s (%.1f/min), faults %s, phases %s, violations %s"
          % (len(results), elapsed, summary["trialsPerMinute"], dict(faults), dict(phases), dict(violations) or 0))
    if failed:
        print("chaos: failing seeds: %s" % " ".join(str(s) for _, s in failed))
    sys.exit(1 if failed or len(results) < len(seeds) else 0)


if __name__ == "__main__":
    main()
