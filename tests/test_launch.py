"""``python -m gluon_bof.launch``: bad input, ssh through a fake ``ssh``, Ctrl-C, and the real scripts.

Every process started here carries an environment marker; after each test no process with it may be
alive (leftovers are killed and the test fails). No network: the fake ``ssh`` runs the command here.
"""
import os
import signal
import stat
import subprocess
import sys
import time
import uuid

import pytest
from process_marks import marked_pids, reap_marked

from gluon_bof.engine.distributed import HostfileError, main, parse_hostfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = [sys.executable, "-m", "gluon_bof.launch"]
YOLO_TINY = ["--kvstore", "dist_sync", "--dataset", "shapes", "--shapes-train-size", "16", "--shapes-val-size", "8",
             "--data-shape", "128", "--random-shapes", "128:160", "--batch-size", "4", "-j", "0", "--epochs", "1",
             "--lr-mode", "cosine", "--no-progress", "--picture", "0"]
# The fake ssh: drops ssh options, logs "HOST PORT" to $FAKE_SSH_LOG, runs the remote command here;
# a host named *.unreachable fails as ssh does (exit 255).
FAKE_SSH = """#!/bin/sh
port=22
while [ $# -gt 0 ]; do
  case "$1" in
    -o) shift 2 ;;
    -p) port="$2"; shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
host="$1"; shift
echo "$host $port" >> "$FAKE_SSH_LOG"
case "$host" in
  *.unreachable) echo "ssh: Could not resolve hostname $host: Name or service not known" >&2; exit 255 ;;
esac
exec sh -c "$*"
"""


@pytest.fixture
def env(tmp_path):
    """Environment with a fake ``ssh`` first on PATH and a marker that finds processes left behind."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    ssh = bindir / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(ssh.stat().st_mode | stat.S_IXUSR)
    value = uuid.uuid4().hex
    # MXNET_/OMP_ variables are sent to remote hosts, so the marker reaches processes started "over ssh"
    e = dict(os.environ, OMP_NUM_THREADS="1", PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
             FAKE_SSH_LOG=str(tmp_path / "ssh.log"), MXNET_TEST_MARK=value, PYTHONPATH=ROOT)
    yield e
    mark = f"MXNET_TEST_MARK={value}"
    left = reap_marked(mark)  # a launcher killed by a test's timeout: its guards stop their processes
    assert not left, f"processes left behind: {left}"


def _launch(args: list, env: dict, timeout: float = 600.0) -> subprocess.CompletedProcess:
    return subprocess.run(LAUNCH + args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("content, message", [
    ("", "no hosts in it"),
    ("# only a comment\n\n", "no hosts in it"),
    ("node1\nnode 2\n", "line 2: 'node 2' is not one"),
    ("node1:99999\n", "line 1"),
])
def test_bad_hostfile_is_named_with_its_line(tmp_path, content, message):
    path = tmp_path / "hosts"
    path.write_text(content)
    with pytest.raises(HostfileError, match=message) as err:
        parse_hostfile(str(path))
    assert str(path) in str(err.value)


def test_hostfile_forms_and_missing_file(tmp_path, capsys):
    path = tmp_path / "hosts"
    path.write_text("a  # first\nuser@b:2222\n\nc.example.org\n")
    assert parse_hostfile(str(path)) == [("a", None), ("user@b", 2222), ("c.example.org", None)]
    with pytest.raises(SystemExit) as exit_:
        main(["-n", "1", "--hostfile", str(tmp_path / "nope"), "--", "true"])
    assert exit_.value.code == 2 and "nope: cannot read it" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["-n", "2"], "give the worker command after --"),
    (["-n", "0", "--", "true"], "at least 1 worker"),
    (["--stop-timeout", "0", "--", "true"], "--stop-timeout"),
    (["--ssh-port", "22", "--", "true"], "--ssh-port needs --hostfile"),
])
def test_bad_flags_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_ssh_hosts_run_the_job_with_dmlc_variables(tmp_path, env):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\n127.0.0.2:2200\n")
    probe = ("import os, mxnet as mx; kv = mx.kv.create('dist_sync'); "
             "print('probe', kv.rank, kv.num_workers, os.environ['DMLC_NODE_HOST'], os.environ['DMLC_PS_ROOT_URI'])")
    r = _launch(["-n", "2", "-s", "2", "--hostfile", str(hosts), "--ssh-port", "2022", "--",
                 sys.executable, "-c", probe], env)
    assert r.returncode == 0, r.stderr + r.stdout
    lines = sorted(line for line in r.stdout.splitlines() if " probe " in line)
    assert lines == ["[worker-slot0@127.0.0.1] probe 0 2 127.0.0.1 127.0.0.1",
                     "[worker-slot1@127.0.0.2] probe 1 2 127.0.0.2 127.0.0.1"] or \
        lines == ["[worker-slot0@127.0.0.1] probe 1 2 127.0.0.1 127.0.0.1",
                  "[worker-slot1@127.0.0.2] probe 0 2 127.0.0.2 127.0.0.1"], r.stdout
    # scheduler + server 0 + worker 0 on the first host (ssh port from --ssh-port), the rest on the second
    log = sorted((tmp_path / "ssh.log").read_text().splitlines())
    assert log == ["127.0.0.1 2022"] * 3 + ["127.0.0.2 2200"] * 2


def test_unreachable_host_stops_the_job_naming_it(tmp_path, env):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\nnode7.unreachable\n")
    tic = time.time()
    r = _launch(["-n", "2", "-s", "1", "--hostfile", str(hosts), "--stop-timeout", "3", "--",
                 sys.executable, "-c", "import mxnet as mx; mx.kv.create('dist_sync')"], env, timeout=120)
    assert r.returncode == 255 and time.time() - tic < 60
    assert "on node7.unreachable exited with exit code 255 (ssh failed" in r.stderr, r.stderr
    assert "Could not resolve hostname node7.unreachable" in r.stdout


@pytest.mark.parametrize("remote", [False, True])
def test_ctrl_c_stops_every_process(tmp_path, env, remote):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\n")
    pids = tmp_path / "pids"
    pids.mkdir()
    # the workers ignore SIGTERM: the launcher must still end them (SIGKILL after --stop-timeout)
    sleeper = (f"import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
               f"open(os.path.join({str(pids)!r}, str(os.getpid())), 'w').close(); print('up', flush=True); "
               f"time.sleep(600)")
    args = ["-n", "2", "-s", "1", "--stop-timeout", "2"] + (["--hostfile", str(hosts)] if remote else [])
    proc = subprocess.Popen(LAUNCH + args + ["--", sys.executable, "-c", sleeper], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while len(os.listdir(pids)) < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert len(os.listdir(pids)) == 2
        tic = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and time.time() - tic < 15
        assert "received SIGINT; stopping all 4 processes" in err
        assert out.count("] up") == 2
        for pid in os.listdir(pids):
            assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_launcher_killed_with_sigkill_leaves_no_process(tmp_path, env):
    pids = tmp_path / "pids"
    pids.mkdir()
    sleeper = (f"import os, time; open(os.path.join({str(pids)!r}, str(os.getpid())), 'w').close(); "
               f"time.sleep(600)")
    proc = subprocess.Popen(LAUNCH + ["-n", "2", "-s", "1", "--stop-timeout", "2", "--", sys.executable, "-c",
                                      sleeper], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(os.listdir(pids)) < 2 and time.time() < deadline:
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    # each guard sees its stdin close and stops its process; the env fixture checks nothing is left
    deadline = time.time() + 15
    while marked_pids(f"MXNET_TEST_MARK={env['MXNET_TEST_MARK']}") and time.time() < deadline:
        time.sleep(0.2)


@pytest.mark.parametrize("network", ["tiny", "mobilenet1.0"])
def test_train_yolo3_dist_sync_two_workers(tmp_path, env, network):
    save = tmp_path / "run"
    r = _launch(["-n", "2", "-s", "1", "--", sys.executable, "train_yolo3.py", "--network", network] + YOLO_TINY
                + ["--save-dir", str(save)], env)
    assert r.returncode == 0, r.stderr + r.stdout[-4000:]
    assert "[worker0@127.0.0.1] gluon_bof: dist_sync worker rank 0 of 2" in r.stdout
    assert "[worker1@127.0.0.1] gluon_bof: dist_sync worker rank 1 of 2" in r.stdout
    # 16 images / global batch 4 = 4 global steps, counted the same on both workers
    assert "global_step=4" in r.stdout
    assert (save / "epoch0000.manifest.json").exists() and (save / "results_final.json").exists()
    for rank in (0, 1):  # freed when training ended, before the interpreter's shutdown
        assert f"dist kvstore of worker {rank} released" in r.stdout


def test_train_faster_rcnn_dist_sync_two_workers(tmp_path, env):
    save = tmp_path / "run"
    r = _launch(["-n", "2", "-s", "1", "--", sys.executable, "train_faster_rcnn.py", "--kvstore", "dist_sync",
                 "--network", "mobilenet0.25", "--dataset", "shapes", "--shapes-train-size", "4",
                 "--shapes-val-size", "2", "--short", "96", "--max-size", "128", "--batch-size", "2", "-j", "0",
                 "--epochs", "1", "--no-progress", "--picture", "0", "--save-dir", str(save)], env)
    assert r.returncode == 0, r.stderr + r.stdout[-4000:]
    assert "global_step=2" in r.stdout and (save / "epoch0000.manifest.json").exists()
    assert "global batch 2: 2 worker(s) x 1 device(s) x 1 images per device" in r.stdout
    assert "dist kvstore of worker 0 released" in r.stdout and "dist kvstore of worker 1 released" in r.stdout
