"""Budgets and rates shared by every process and replica, through Redis (`storage.redis_url`).

Admission stays in memory (policy/limits.py); this thread, twice a second, adds what its process spent
and admitted since the last sync to counters in Redis and reads back everyone's totals:
- spend: one float per key and budget period (`INCRBYFLOAT`), created with the ledger's figure for the
  period (`SET NX`) so a Redis that lost its data starts from what was billed, and expiring a day after
  the period ends;
- requests: one counter per key and minute (`INCRBY`); the last minute's requests are estimated from
  this minute's count and the previous one's, weighted by how much of it still lies in the window.
If Redis is unreachable the process goes on counting alone (rates after 5 s, budgets from the last
totals it saw) and says so in the log once a minute.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from llmswitch.policy.limits import KeyLimits

__all__ = ["SharedLimits"]

log = logging.getLogger("llmswitch")

_PERIOD_SECONDS = {"day": 86_400, "week": 7 * 86_400, "month": 31 * 86_400}
_PREFIX = "llmswitch:limits"


class SharedLimits:
    def __init__(self, limits: KeyLimits, redis_url: str, interval: float = 0.5) -> None:
        import redis  # only configs with a redis_url and limits need it

        self.limits = limits
        self.interval = interval
        self._redis: Any = redis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._errors = redis.RedisError
        self._pushed_spend: dict[str, tuple[float, float]] = {}  # key → (period start, `spent` pushed)
        self._pushed_count: dict[str, int] = {}  # key → `count` pushed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmswitch-limits", daemon=True)
        self._last_warning = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        with contextlib.suppress(self._errors):
            self.sync()  # what this process counted last
        self._redis.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except self._errors as e:
                now = time.monotonic()
                if now - self._last_warning > 60:
                    self._last_warning = now
                    log.warning("shared limits: Redis unreachable (%s); counting in this process alone", e)

    def sync(self) -> None:
        """Push this process's counts since the last sync; take everyone's totals back."""
        now = time.time()
        pipe = self._redis.pipeline(transaction=True)  # MULTI/EXEC: all of a sync applies, or none
        budgets = []
        for key_id, b in self.limits.budget_states.items():
            start, spent = b.start, b.spent  # read once: the event loop keeps counting meanwhile
            if b.start != start:  # the period rolled over between the two reads: next time
                continue
            pushed_start, pushed = self._pushed_spend.get(key_id, (start, b.seed))
            fresh = pushed_start != start  # a new period began: nothing of it pushed yet
            name = f"{_PREFIX}:spend:{key_id}:{b.period}:{int(start)}"
            pipe.set(name, 0.0 if fresh else b.seed, nx=True)  # the ledger's figure, if Redis has none
            pipe.incrbyfloat(name, spent - (0.0 if fresh else pushed))
            if b.period in _PERIOD_SECONDS:
                pipe.expireat(name, int(start + _PERIOD_SECONDS[b.period] + 86_400))
            budgets.append((key_id, b, start, spent))
        minute = int(now // 60)
        rates = []
        for key_id, r in self.limits.rate_states.items():
            count = r.count
            name = f"{_PREFIX}:rpm:{key_id}:"
            pipe.incrby(name + str(minute), count - self._pushed_count.get(key_id, 0))
            pipe.expire(name + str(minute), 180)
            pipe.get(name + str(minute - 1))
            rates.append((key_id, r, count))
        results = iter(pipe.execute())
        for key_id, b, start, spent in budgets:
            next(results)  # SET NX
            total = float(next(results))
            if b.period in _PERIOD_SECONDS:
                next(results)  # EXPIREAT
            self._pushed_spend[key_id] = (start, spent)
            b.shared = (start, total, spent)
        weight = 1.0 - (now % 60) / 60  # the share of the previous minute still inside the window
        for key_id, r, count in rates:
            current = int(next(results))
            next(results)  # EXPIRE
            previous = int(next(results) or 0)
            self._pushed_count[key_id] = count
            r.shared = (now, previous * weight + current, count)
