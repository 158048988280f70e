"""Find the processes a test started, by a marker in their environment (to prove none is left behind)."""
import os
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
