"""Stopping training on SIGINT / SIGTERM without losing more than the current batch.

A scheduler or a spot-instance reclaim sends SIGTERM; a user presses Ctrl-C (SIGINT). The first
signal only sets a flag: :func:`gluon_bof.engine.fit` finishes the batch it is running, writes a
complete checkpoint at that batch position and raises :class:`TrainingInterrupted` (exit code
``128 + signal``: 130 for SIGINT, 143 for SIGTERM). A second signal exits at once: checkpoints are
written to temporary files and renamed, so the last complete checkpoint stays valid.
"""
import os
import signal
import threading
from typing import Any, Dict, Optional

__all__ = ["TrainingInterrupted", "StopRequest"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after writing a checkpoint; ``exit_code`` is ``128 + signal``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = int(exit_code)


class StopRequest:
    """Context manager that turns SIGINT/SIGTERM into a flag (:attr:`signum`) while it is active.

    Only the main thread can install handlers; elsewhere it does nothing (signals keep their
    handlers). The previous handlers are restored on exit.
    """

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            os.write(2, (f"\n{name} again: exiting now; the last complete checkpoint is kept\n").encode())
            os._exit(128 + signum)
        self.signum = signum
        os.write(2, (f"\n{name}: finishing the current batch, then writing a checkpoint "
                     f"(send it again to exit at once)\n").encode())

    @property
    def exit_code(self) -> int:
        """``128 + signal`` of the request (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + int(self.signum or 0)
