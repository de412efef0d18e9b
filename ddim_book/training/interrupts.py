"""Ctrl-C that stops a training loop between steps instead of in the middle of one."""

from __future__ import annotations

import signal
import threading

__all__ = ["GracefulInterrupt"]


class GracefulInterrupt:
    """Context manager: inside it, the first SIGINT (Ctrl-C, or a notebook's interrupt button) only sets
    ``requested``, so the loop can finish its step and save; a second SIGINT raises KeyboardInterrupt at once.

    Outside the main thread (where Python delivers no signals) it does nothing.
    """

    def __init__(self):
        self.requested = False
        self._previous = None
        self._installed = False

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except ValueError:  # an embedded interpreter that forbids signal handlers
                pass
        return self

    def __exit__(self, *exc_info) -> bool:
        if self._installed:
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)
            self._installed = False
        return False
