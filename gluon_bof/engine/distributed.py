"""Run MXNet ``dist_sync`` jobs: scheduler, servers and workers, on this machine or over ssh.

MXNet's parameter server (ps-lite) is configured through ``DMLC_*`` environment variables. A process
started with ``DMLC_ROLE=scheduler`` or ``server`` runs the server loop as soon as it imports
``mxnet``; workers are the training script itself, which creates ``mx.kv.create('dist_sync')``
(``build_trainer(kvstore='dist_sync')``). The command-line entry point is ``python -m gluon_bof.launch``
(``python -m gluon_bof.engine.distributed`` is the same)::

    python -m gluon_bof.launch -n 2 -s 1 -- python train_yolo3.py --kvstore dist_sync ...
    python -m gluon_bof.launch -n 4 -s 2 --hostfile hosts -- python train_yolo3.py --kvstore dist_sync ...

Without a host file everything runs on 127.0.0.1. With one, the scheduler runs on the first host and
servers and workers are spread round-robin over the hosts; each is started with ``ssh HOST`` in the
launcher's working directory (the same path must exist on every host). ps-lite gives workers their
kvstore rank in connection order; ``build_trainer`` announces it (:data:`RANK_ANNOUNCEMENT`) and the
launcher then names the worker by that rank.

Every process runs under a small guard (:data:`GUARD_SOURCE`) whose standard input is a pipe from
the launcher: when that pipe closes (the launcher stops the job, exits, is killed, or the ssh
connection drops), the guard sends SIGTERM to the process's group, then SIGKILL after
``stop_timeout`` seconds. The launcher watches all processes together: when one exits non-zero or
disappears, it names it (role, rank, host, exit code) and stops the others, so a job never hangs on
a dead worker. Ctrl-C (SIGINT), SIGTERM and SIGHUP stop every process the launcher started.

A worker that fails must exit for the launcher to see it, and a normal interpreter exit does not
get there: freeing the dist kvstore at exit waits at a barrier for the other workers, which are
blocked waiting for this one's gradients. :func:`exit_failed_worker` ends such a worker at once.
"""
import argparse
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = ["RANK_ANNOUNCEMENT", "is_dist_worker", "exit_failed_worker", "free_port", "dmlc_env", "parse_hostfile", "HostfileError", "ProcSpec", "plan_processes", "Job",
           "launch", "launch_local", "main", "GUARD_SOURCE"]

LOOPBACK = "127.0.0.1"
# Line a worker writes to stderr once its kvstore exists (``build_trainer`` does); the launcher uses it
# to name workers by kvstore rank, which ps-lite assigns in connection order, not launch order.
RANK_ANNOUNCEMENT = "gluon_bof: dist_sync worker rank {rank} of {num_workers}"
_RANK_RE = re.compile(r"gluon_bof: dist_sync worker rank (\d+) of (\d+)")
ENV_PREFIXES_FORWARDED = ("MXNET_", "OMP_", "PS_", "KMP_")  # sent to remote hosts when set here

# Run as ``python -c GUARD_SOURCE STOP_TIMEOUT -- CMD...``: runs CMD in its own session and stops
# that session when stdin reaches EOF or the guard gets SIGTERM/SIGINT/SIGHUP. Exit code: CMD's, or
# 128 + signal number when CMD was killed by a signal.
GUARD_SOURCE = r"""
import os, signal, subprocess, sys, threading, time
grace = float(sys.argv[1]); cmd = sys.argv[3:]
def _die_with_parent():
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))
    except Exception:
        pass
try:
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
except OSError as err:
    sys.stderr.write("cannot start %r: %s\n" % (cmd[0], err)); sys.exit(127)
lock = threading.Lock()
def stop(*_):
    if not lock.acquire(blocking=False):
        return
    try:
        os.killpg(child.pid, signal.SIGTERM)
    except OSError:
        return
    end = time.time() + grace
    while time.time() < end and child.poll() is None:
        time.sleep(0.05)
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except OSError:
        pass
def watch():
    while os.read(0, 4096):
        pass
    stop()
threading.Thread(target=watch, daemon=True).start()
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, lambda *a: threading.Thread(target=stop, daemon=True).start())
rc = child.wait()
try:
    os.killpg(child.pid, signal.SIGKILL)
except OSError:
    pass
sys.stdout.flush(); sys.stderr.flush()
os._exit(rc if rc >= 0 else 128 - rc)
"""


class HostfileError(ValueError):
    """The host file is missing, empty or has a line that is not ``host``, ``user@host`` or ``host:port``."""


def is_dist_worker() -> bool:
    """True in a worker process of a ``dist_*`` job (``DMLC_ROLE=worker``, set by the launcher)."""
    return os.environ.get("DMLC_ROLE") == "worker"


def exit_failed_worker(code: int) -> None:
    """In a dist worker, end the process now with exit code ``code`` when it is not 0; else return.

    The output streams and logging handlers are flushed, then ``os._exit`` skips the interpreter's
    shutdown: there, freeing the dist kvstore would wait at a barrier for the other workers, which
    wait for this one, and the job would hang instead of being stopped by the launcher. Whatever
    must be saved (checkpoints) is written before this is called.
    """
    if code == 0 or not is_dist_worker():
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def dmlc_env(role: str, port: int, num_workers: int, num_servers: int = 1,
             base: Optional[Mapping[str, str]] = None, root_uri: str = LOOPBACK,
             node_host: str = LOOPBACK) -> Dict[str, str]:
    """Environment of one ps-lite process (``role``: scheduler, server or worker): ``base`` (default
    ``os.environ``) plus the ``DMLC_*`` variables."""
    if role not in ("scheduler", "server", "worker"):
        raise ValueError(f"dmlc_env: role must be scheduler, server or worker, got {role!r}")
    env = dict(os.environ if base is None else base)
    env.update({"DMLC_ROLE": role, "DMLC_PS_ROOT_URI": root_uri, "DMLC_PS_ROOT_PORT": str(port),
                "DMLC_NUM_WORKER": str(num_workers), "DMLC_NUM_SERVER": str(num_servers),
                "DMLC_NODE_HOST": node_host, "PS_VERBOSE": env.get("PS_VERBOSE", "0")})
    return env


_HOST_RE = re.compile(r"^(?:[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9._-]+)(?::(?P<port>[0-9]{1,5}))?$")


def parse_hostfile(path: str) -> List[Tuple[str, Optional[int]]]:
    """``[(ssh destination, ssh port or None), ...]`` from a file with one ``[user@]host[:port]`` per line.

    Blank lines and ``#`` comments are skipped. Raises :class:`HostfileError` naming the file (and line).
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise HostfileError(f"hostfile {path}: cannot read it ({err.strerror or err})") from None
    hosts: List[Tuple[str, Optional[int]]] = []
    for n, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        m = _HOST_RE.match(text)
        if m is None or (m.group("port") and not 0 < int(m.group("port")) < 65536):
            raise HostfileError(f"hostfile {path} line {n}: {raw.strip()!r} is not one '[user@]host[:ssh_port]'")
        dest = text.rsplit(":", 1)[0] if m.group("port") else text
        hosts.append((dest, int(m.group("port")) if m.group("port") else None))
    if not hosts:
        raise HostfileError(f"hostfile {path}: no hosts in it (one '[user@]host[:ssh_port]' per line)")
    return hosts


@dataclass
class ProcSpec:
    """One process of the job: ``role`` (scheduler/server/worker), its launch ``slot`` and where it runs.

    ``kv_rank`` is the worker's kvstore rank once the worker announced it (:data:`RANK_ANNOUNCEMENT`).
    """

    role: str
    slot: int
    host: str  # ssh destination, or 127.0.0.1 when local
    ssh_port: Optional[int] = None
    kv_rank: Optional[int] = None

    @property
    def node_host(self) -> str:
        """The address ps-lite advertises (the host without ``user@``)."""
        return self.host.split("@", 1)[-1]

    @property
    def label(self) -> str:
        if self.role == "scheduler":
            return f"scheduler on {self.node_host}"
        if self.role == "server":
            return f"server {self.slot} on {self.node_host}"
        rank = "rank unknown" if self.kv_rank is None else f"rank {self.kv_rank}"
        return f"worker {rank} (launch slot {self.slot}) on {self.node_host}"

    @property
    def tag(self) -> str:
        if self.role == "scheduler":
            name = "scheduler"
        elif self.role == "server":
            name = f"server{self.slot}"
        else:
            name = f"worker-slot{self.slot}" if self.kv_rank is None else f"worker{self.kv_rank}"
        return f"[{name}@{self.node_host}]"


def plan_processes(num_workers: int, num_servers: int,
                   hosts: Optional[Sequence[Tuple[str, Optional[int]]]] = None) -> List[ProcSpec]:
    """Scheduler, servers, workers (in start order). Without ``hosts`` all run on 127.0.0.1; with
    hosts the scheduler runs on the first and server ``i`` / worker ``i`` on host ``i % len(hosts)``."""
    if num_workers < 1 or num_servers < 1:
        raise ValueError(f"need at least 1 worker and 1 server, got {num_workers} workers, {num_servers} servers")
    slots = list(hosts) if hosts else [(LOOPBACK, None)]
    specs = [ProcSpec("scheduler", 0, *slots[0])]
    specs += [ProcSpec("server", i, *slots[i % len(slots)]) for i in range(num_servers)]
    specs += [ProcSpec("worker", i, *slots[i % len(slots)]) for i in range(num_workers)]
    return specs


def _describe_exit(code: int) -> str:
    if code > 128 and code - 128 < signal.NSIG:
        try:
            return f"exit code {code} (killed by {signal.Signals(code - 128).name})"
        except ValueError:
            pass
    if code < 0:
        try:
            return f"exit code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"exit code {code}"


@dataclass
class _Running:
    spec: ProcSpec
    popen: subprocess.Popen
    reader: threading.Thread
    code: Optional[int] = None
    exited_at: Optional[float] = None


@dataclass
class Job:
    """Start, watch and stop the processes of one dist job (see the module docstring).

    ``worker_cmd`` runs for every worker; scheduler and servers run ``python -c 'import mxnet'``.
    ``remote`` selects ssh (``ssh_cmd`` replaces the ``ssh`` program, e.g. in tests). Output lines of
    every process are written to ``out`` prefixed with :attr:`ProcSpec.tag`.
    """

    worker_cmd: Sequence[str]
    specs: Sequence[ProcSpec]
    port: int
    remote: bool = False
    env: Optional[Mapping[str, str]] = None
    python: str = sys.executable
    stop_timeout: float = 10.0
    timeout: Optional[float] = None
    ssh_cmd: Sequence[str] = ("ssh",)
    forward_env: Sequence[str] = ()
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)

    def __post_init__(self) -> None:
        self.procs: List[_Running] = []
        self.failure: Optional[str] = None
        self._lock = threading.Lock()
        self._signal: Optional[int] = None
        self._num_workers = sum(s.role == "worker" for s in self.specs)
        self._num_servers = sum(s.role == "server" for s in self.specs)

    # -- building commands -------------------------------------------------------------------
    def _root_uri(self) -> str:
        return self.specs[0].node_host

    def _role_env(self, spec: ProcSpec, base: Mapping[str, str]) -> Dict[str, str]:
        return dmlc_env(spec.role, self.port, self._num_workers, self._num_servers, base, root_uri=self._root_uri(),
                        node_host=spec.node_host)

    def _command(self, spec: ProcSpec) -> Tuple[List[str], Optional[Dict[str, str]]]:
        """argv and environment of the local process (guard, or the ssh client) for ``spec``."""
        target = list(self.worker_cmd) if spec.role == "worker" else [self.python, "-c", "import mxnet"]
        guarded = [self.python, "-c", GUARD_SOURCE, str(float(self.stop_timeout)), "--"] + target
        base = dict(os.environ if self.env is None else self.env)
        if not self.remote:
            return guarded, self._role_env(spec, base)
        sent = {k: v for k, v in base.items() if k.startswith(ENV_PREFIXES_FORWARDED) or k in self.forward_env}
        remote_env = {k: v for k, v in self._role_env(spec, sent).items()}
        remote = "cd {} && exec env {} {}".format(
            shlex.quote(os.getcwd()), " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(remote_env.items())),
            " ".join(shlex.quote(a) for a in guarded))
        argv = list(self.ssh_cmd) + ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        if spec.ssh_port:
            argv += ["-p", str(spec.ssh_port)]
        return argv + [spec.host, remote], base

    # -- running -----------------------------------------------------------------------------
    def _pump(self, spec: ProcSpec, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            m = _RANK_RE.search(line) if spec.role == "worker" and spec.kv_rank is None else None
            if m:
                spec.kv_rank = int(m.group(1))
            with self._lock:
                self.out.write(f"{spec.tag} {line}\n")
                self.out.flush()
        stream.close()

    def _say(self, message: str) -> None:
        with self._lock:
            self.err.write(f"gluon_bof.launch: {message}\n")
            self.err.flush()

    def start(self) -> None:
        """Start every process (scheduler first, then servers, then workers)."""
        for spec in self.specs:
            argv, env = self._command(spec)
            try:
                popen = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as err:
                self.failure = f"cannot start {spec.label}: {argv[0]}: {err.strerror or err}"
                self._say(self.failure)
                self.stop()
                raise RuntimeError(self.failure) from None
            reader = threading.Thread(target=self._pump, args=(spec, popen.stdout), daemon=True)
            reader.start()
            self.procs.append(_Running(spec, popen, reader))

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._signal = signum

    def wait(self, poll: float = 0.1, service_grace: float = 30.0) -> int:
        """Watch until the job ends; return 0 when every worker exited 0, else non-zero."""
        started = time.time()
        while True:
            if self._signal is not None:
                name = signal.Signals(self._signal).name
                self._stop_with(f"received {name}; stopping all {len(self.procs)} processes")
                return 128 + self._signal
            now = time.time()
            for p in self.procs:
                if p.code is None and p.popen.poll() is not None:
                    p.code, p.exited_at = p.popen.returncode, now
                    if p.code != 0:
                        p.reader.join(timeout=2.0)
                        hint = " (ssh failed: host unreachable or connection dropped)" if (
                            self.remote and p.code == 255) else ""
                        self._stop_with(f"{p.spec.label} exited with {_describe_exit(p.code)}{hint}; stopping the "
                                        f"other processes")
                        return p.code if 0 < p.code < 256 else 1
            workers = [p for p in self.procs if p.spec.role == "worker"]
            services = [p for p in self.procs if p.spec.role != "worker"]
            if all(p.code is not None for p in workers):
                last = max(p.exited_at for p in workers)
                if all(p.code is not None for p in services):
                    self._join_readers()
                    return 0
                if now - last > service_grace:
                    left = ", ".join(p.spec.label for p in services if p.code is None)
                    self._say(f"all workers finished; {left} still running after {service_grace:.0f} s: stopped")
                    self.stop()
                    return 0
            else:
                gone = [p for p in services if p.code is not None]
                if gone and now - min(p.exited_at for p in gone) > service_grace:
                    self._stop_with(f"{gone[0].spec.label} exited while workers are still running; stopping the job")
                    return 1
            if self.timeout is not None and now - started > self.timeout:
                self._stop_with(f"timeout: the job ran longer than {self.timeout:.0f} s; stopping it")
                return 124
            time.sleep(poll)

    def _stop_with(self, message: str) -> None:
        self.failure = message
        self._say(message)
        tic = time.time()
        self.stop()
        self._say(f"job stopped ({time.time() - tic:.1f} s)")

    def stop(self) -> None:
        """Stop every running process: close its stdin (the guard stops its group), SIGTERM, then SIGKILL."""
        live = [p for p in self.procs if p.popen.poll() is None]
        for p in live:
            try:
                p.popen.stdin.close()
            except OSError:
                pass
            if not self.remote:
                _signal_group(p.popen.pid, signal.SIGTERM)
        deadline = time.time() + self.stop_timeout + 3.0
        for p in live:
            try:
                p.popen.wait(timeout=max(deadline - time.time(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(p.popen.pid, signal.SIGKILL)
                p.popen.wait()
        for p in self.procs:
            if p.code is None:
                p.code = p.popen.returncode
            if p.popen.stdin and not p.popen.stdin.closed:
                try:
                    p.popen.stdin.close()
                except OSError:
                    pass
        self._join_readers()

    def _join_readers(self) -> None:
        for p in self.procs:
            p.reader.join(timeout=2.0)

    def run(self) -> int:
        """:meth:`start` + :meth:`wait`, with SIGINT/SIGTERM/SIGHUP stopping the job; always stops all."""
        in_main = threading.current_thread() is threading.main_thread()
        previous = {}
        if in_main:
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                previous[s] = signal.signal(s, self._on_signal)
        try:
            self.start()
            return self.wait()
        finally:
            if any(p.popen.poll() is None for p in self.procs):
                self.stop()
            for s, h in previous.items():
                signal.signal(s, h)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:
        pass


def launch(worker_cmd: Sequence[str], num_workers: int = 2, num_servers: int = 1, hostfile: Optional[str] = None,
           ssh_port: Optional[int] = None, port: Optional[int] = None, **job_kwargs) -> Job:
    """A :class:`Job` for ``worker_cmd`` (not started): local, or over ssh on the hosts of ``hostfile``.

    ``ssh_port`` applies to hosts without their own ``:port``; ``job_kwargs`` go to :class:`Job`.
    """
    if not worker_cmd:
        raise ValueError("launch: the worker command is empty")
    hosts = None
    if hostfile is not None:
        hosts = [(h, p if p is not None else ssh_port) for h, p in parse_hostfile(hostfile)]
    specs = plan_processes(num_workers, num_servers, hosts)
    return Job(list(worker_cmd), specs, port or free_port(), remote=hosts is not None, **job_kwargs)


def launch_local(worker_cmd: Sequence[str], num_workers: int = 2, num_servers: int = 1,
                 timeout: Optional[float] = 600.0, env: Optional[Mapping[str, str]] = None,
                 port: Optional[int] = None, stop_timeout: float = 10.0) -> List[int]:
    """Run a job on 127.0.0.1 to its end; return the workers' exit codes in launch order.

    Output goes to this process's stdout with role/rank prefixes. When any process fails the others
    are stopped (their codes are then those of the stop).
    """
    job = launch(worker_cmd, num_workers, num_servers, port=port, timeout=timeout, env=env,
                 stop_timeout=stop_timeout)
    job.run()
    return [p.code for p in job.procs if p.spec.role == "worker"]


def build_parser(prog: str = "python -m gluon_bof.launch") -> argparse.ArgumentParser:
    """The launcher's command line (shared by ``gluon_bof.launch`` and ``gluon_bof.engine.distributed``)."""
    p = argparse.ArgumentParser(
        prog=prog, description="Launch an MXNet dist_sync job: scheduler, servers and workers, locally (127.0.0.1) "
        "or over ssh on the hosts of a host file. Stops the whole job when any process fails.")
    p.add_argument("-n", "--num-workers", "--workers", dest="workers", type=int, default=2,
                   help="number of worker processes (default 2)")
    p.add_argument("-s", "--num-servers", "--servers", dest="servers", type=int, default=1,
                   help="number of parameter servers (default 1)")
    p.add_argument("-H", "--hostfile", default=None,
                   help="file with one [user@]host[:ssh_port] per line; processes start there over ssh "
                        "(default: all on 127.0.0.1)")
    p.add_argument("--ssh-port", type=int, default=None, help="ssh port for hosts without their own :port")
    p.add_argument("--port", type=int, default=None, help="scheduler port (default: a free port here)")
    p.add_argument("--stop-timeout", type=float, default=10.0,
                   help="seconds a process gets to exit after SIGTERM before SIGKILL when the job is stopped "
                        "(default 10)")
    p.add_argument("--timeout", type=float, default=None, help="stop the job after this many seconds (default: none)")
    p.add_argument("--env", action="append", default=[], metavar="NAME",
                   help="also send this environment variable to remote hosts (MXNET_*, OMP_*, KMP_*, PS_* are sent)")
    p.add_argument("--python", default=sys.executable,
                   help="Python that runs the servers and the process guard (default: this one; same path on "
                        "every host)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- the worker command")
    return p


def main(argv: Optional[Sequence[str]] = None, prog: str = "python -m gluon_bof.launch") -> int:
    """Command-line entry point; returns the launcher's exit code (0 only when every worker exited 0)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        parser.error("give the worker command after --, e.g. -- python train_yolo3.py --kvstore dist_sync ...")
    if args.workers < 1 or args.servers < 1:
        parser.error(f"need at least 1 worker (-n) and 1 server (-s), got -n {args.workers} -s {args.servers}")
    if args.stop_timeout <= 0:
        parser.error(f"--stop-timeout must be > 0 seconds, got {args.stop_timeout}")
    if args.ssh_port is not None and not 0 < args.ssh_port < 65536:
        parser.error(f"--ssh-port must be in 1..65535, got {args.ssh_port}")
    if args.ssh_port is not None and args.hostfile is None:
        parser.error("--ssh-port needs --hostfile (without a host file everything runs locally)")
    try:
        job = launch(cmd, args.workers, args.servers, hostfile=args.hostfile, ssh_port=args.ssh_port, port=args.port,
                     stop_timeout=args.stop_timeout, timeout=args.timeout, forward_env=args.env, python=args.python)
    except HostfileError as err:
        parser.error(str(err))
    try:
        return job.run()
    except RuntimeError:
        return 1


if __name__ == "__main__":
    sys.exit(main(prog="python -m gluon_bof.engine.distributed"))
