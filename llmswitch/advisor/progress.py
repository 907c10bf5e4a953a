"""A plain-terminal progress bar on stderr: requests done, spend so far, calls, dropped verdicts, ETA.

On a terminal it redraws one line (at most 10 times a second); otherwise (a log file, CI) it prints a
line at every tenth of the way, so logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

WIDTH = 24


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    def __init__(self, total: int, *, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self._last_logged: tuple[int, float] | None = None
        self._start_done: int | None = None  # requests already done when this run started (resumed)
        self._width = 0

    def line(self, done: int, spend: float, calls: int, dropped: int) -> str:
        filled = round(WIDTH * done / self.total)
        elapsed = time.monotonic() - self.started
        if self._start_done is None:
            self._start_done = done
        fresh = done - self._start_done
        eta = (
            f"  ~{_clock(elapsed / fresh * (self.total - done))} left" if fresh and done < self.total else ""
        )
        return (
            f"advise [{'#' * filled}{'-' * (WIDTH - filled)}] {done:>{len(str(self.total))}}/{self.total}"
            f" requests  ${spend:,.4f} spent  {calls} calls  {dropped} dropped"
            f"  {_clock(elapsed)}{eta}"
        )

    def due(self, done: int, *, force: bool = False) -> bool:
        """Whether `update` would draw now (so callers can skip computing its figures)."""
        if not self.enabled:
            return False
        if force:
            return True
        if self.tty:
            return time.monotonic() - self._last_draw >= 0.1
        return 10 * done // self.total > self._last_decile

    def update(self, done: int, spend: float, calls: int, dropped: int, *, force: bool = False) -> None:
        if not self.due(done, force=force):
            return
        text = self.line(done, spend, calls, dropped)
        if self.tty:
            self._last_draw = time.monotonic()
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
            self.stream.flush()
        elif (done, spend) != self._last_logged:
            self._last_decile, self._last_logged = 10 * done // self.total, (done, spend)
            self.stream.write(text + "\n")
            self.stream.flush()

    def finish(self, message: str = "") -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\n")
        if message:
            self.stream.write(message + "\n")
        self.stream.flush()
