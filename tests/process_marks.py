"""Find the processes a test started, by a marker in their environment (to prove none is left behind)."""
import os
import signal
import time
from typing import List


def marked_pids(mark: str) -> List[int]:
    """Pids of the live processes whose environment contains ``mark`` (e.g. ``"TEST_MARK=<uuid>"``)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mark.encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def reap_marked(mark: str, wait: float = 30.0) -> List[int]:
    """Wait up to ``wait`` seconds for the marked processes to end, SIGKILL the ones still alive, and
    return their pids (a test then asserts the list is empty: nothing may be left behind)."""
    deadline = time.time() + wait
    while marked_pids(mark) and time.time() < deadline:
        time.sleep(0.2)
    left = marked_pids(mark)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left
