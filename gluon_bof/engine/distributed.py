"""Run MXNet ``dist_sync`` training on one machine: scheduler, servers and workers on 127.0.0.1.

MXNet's parameter server (ps-lite) is configured through ``DMLC_*`` environment variables. A process
started with ``DMLC_ROLE=scheduler`` or ``server`` runs the server loop as soon as it imports
``mxnet``; workers are the training script itself, which creates ``mx.kv.create('dist_sync')``
(``build_trainer(kvstore='dist_sync')``). On a cluster the same variables are set per machine by
your launcher (MXNet's ``tools/launch.py``); here everything is local::

    python -m gluon_bof.engine.distributed --workers 2 --servers 1 -- \\
        python train_yolo3.py --kvstore dist_sync --batch-size 64 ...

Each worker reads its share of every global batch (``rank``/``num_workers`` from the kvstore), the
kvstore sums the gradients of all workers, and every worker applies the same update; the LR schedule
counts global steps.
"""
import argparse
import os
import socket
import subprocess
import sys
import time
from typing import Dict, List, Mapping, Optional, Sequence

__all__ = ["free_port", "dmlc_env", "launch_local", "main"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dmlc_env(role: str, port: int, num_workers: int, num_servers: int = 1,
             base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """Environment of one ps-lite process (``role`` in scheduler/server/worker) on loopback."""
    if role not in ("scheduler", "server", "worker"):
        raise ValueError(f"dmlc_env: role must be scheduler, server or worker, got {role!r}")
    env = dict(os.environ if base is None else base)
    env.update({"DMLC_ROLE": role, "DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": str(port),
                "DMLC_NUM_WORKER": str(num_workers), "DMLC_NUM_SERVER": str(num_servers),
                "DMLC_NODE_HOST": "127.0.0.1", "PS_VERBOSE": env.get("PS_VERBOSE", "0")})
    return env


def launch_local(worker_cmd: Sequence[str], num_workers: int = 2, num_servers: int = 1,
                 timeout: float = 600.0, env: Optional[Mapping[str, str]] = None,
                 port: Optional[int] = None) -> List[int]:
    """Start a scheduler, ``num_servers`` servers and ``num_workers`` copies of ``worker_cmd``.

    Returns the workers' exit codes (in rank-launch order) after they finish; scheduler and servers
    exit on their own when the workers close the kvstore, and are killed if still alive after
    ``timeout`` seconds (as are workers).
    """
    if num_workers < 1 or num_servers < 1:
        raise ValueError(f"launch_local: need >= 1 worker and server, got {num_workers}, {num_servers}")
    port = port or free_port()
    service = [sys.executable, "-c", "import mxnet"]
    procs = [subprocess.Popen(service, env=dmlc_env("scheduler", port, num_workers, num_servers, env))]
    procs += [subprocess.Popen(service, env=dmlc_env("server", port, num_workers, num_servers, env))
              for _ in range(num_servers)]
    workers = [subprocess.Popen(list(worker_cmd), env=dmlc_env("worker", port, num_workers, num_servers, env))
               for _ in range(num_workers)]
    deadline = time.time() + timeout
    try:
        codes = []
        for w in workers:
            codes.append(w.wait(timeout=max(deadline - time.time(), 1.0)))
        for p in procs:
            p.wait(timeout=max(min(deadline - time.time(), 30.0), 1.0))
        return codes
    finally:
        for p in workers + procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Launch dist_sync training on this machine (loopback).")
    parser.add_argument("--workers", "-n", type=int, default=2, help="number of worker processes")
    parser.add_argument("--servers", "-s", type=int, default=1, help="number of parameter servers")
    parser.add_argument("--timeout", type=float, default=7 * 24 * 3600.0, help="seconds before killing all")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- worker command")
    args = parser.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        parser.error("give the worker command after --")
    codes = launch_local(cmd, args.workers, args.servers, args.timeout)
    return max(codes, key=abs) if any(codes) else 0


if __name__ == "__main__":
    sys.exit(main())
