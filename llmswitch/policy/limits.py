"""Per-key budgets (USD per day, week, month or in total) and request rates (requests per minute).

Spend starts from the ledger (the key's cost so far in the current period, read once at start-up) and
grows with every attempt the ledger records for the key, whatever path served it: `SpendTap` sits in
front of the ledger and counts each record's cost as it is appended. A key over its budget or its rate
gets 429 before anything is sent.

Counts are kept in this process, so admission never waits on the network. With `storage.redis_url`,
`shared.py` adds up every process's counts in Redis twice a second and hands the totals back here
(`shared` fields): workers and replicas then enforce one budget and one rate between them, give or
take half a second of traffic. Without Redis each process counts alone.
"""

from __future__ import annotations

import calendar
import sqlite3
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmswitch.api.errors import GatewayError
from llmswitch.config import ClientKey, Config

if TYPE_CHECKING:
    from llmswitch.ledger.record import AttemptRecord
    from llmswitch.ledger.sqlite import Ledger

__all__ = ["KeyLimits", "SpendTap", "key_limits", "period_start"]

_WINDOW = 60.0  # seconds: `rpm` is a sliding minute


def period_start(period: str, now: float) -> float:
    """Unix time at which the budget period containing `now` began (UTC calendar)."""
    if period == "total":
        return 0.0
    t = time.gmtime(now)
    midnight = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
    if period == "day":
        return float(midnight)
    if period == "week":  # ISO weeks start on Monday
        return float(midnight - t.tm_wday * 86_400)
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


_STALE = 5.0  # seconds after which a shared rate estimate is not trusted (Redis unreachable)


@dataclass(slots=True)
class _Budget:
    usd: float
    period: str
    start: float = 0.0  # the current period's start
    spent: float = 0.0  # by this process in the current period (plus the ledger's figure at start-up)
    seed: float = 0.0  # the ledger's figure at start-up
    # From the last Redis sync: (period start, every process's total, this process's `spent` then).
    shared: tuple[float, float, float] | None = None

    def total(self) -> float:
        s = self.shared
        if s is not None and s[0] == self.start:
            return s[1] + (self.spent - s[2])
        return self.spent


@dataclass(slots=True)
class _Rate:
    rpm: int
    admitted: deque[float] = field(default_factory=deque)  # times of the last `rpm` admitted requests
    count: int = 0  # admitted by this process, ever
    # From the last Redis sync: (time, every process's requests in the last minute, `count` then).
    shared: tuple[float, float, int] | None = None

    def total(self, now: float) -> float:
        s = self.shared
        if s is not None and now - s[0] < _STALE:
            return s[1] + (self.count - s[2])
        return 0.0


class KeyLimits:
    """Budgets and rates of the keys that have them; `admit()` raises the 429 a request gets."""

    def __init__(self, keys: list[ClientKey], ledger_path: str | None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._budgets = {k.id: _Budget(k.budget.usd, k.budget.period) for k in keys if k.budget is not None}
        self._rates = {k.id: _Rate(k.rpm) for k in keys if k.rpm is not None}
        for budget in self._budgets.values():
            budget.start = period_start(budget.period, now)
        starts = {key_id: budget.start for key_id, budget in self._budgets.items()}
        seeds = _spent_in_ledger(ledger_path, starts) if ledger_path and starts else {}
        for key_id, budget in self._budgets.items():
            budget.seed = budget.spent = seeds.get(key_id, 0.0)

    @property
    def budgets(self) -> bool:
        return bool(self._budgets)

    def admit(self, key_id: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        budget = self._budgets.get(key_id)
        if budget is not None:
            self._roll(budget, now)
            total = budget.total()
            if total >= budget.usd:
                spent = f"${total:.4f} of its ${budget.usd:g} {budget.period} budget"
                raise GatewayError(429, f"key {key_id!r} has spent {spent}", "budget_exceeded")
        rate = self._rates.get(key_id)
        if rate is not None:
            admitted = rate.admitted
            while admitted and admitted[0] <= now - _WINDOW:
                admitted.popleft()
            if len(admitted) >= rate.rpm or rate.total(now) >= rate.rpm:
                wait = max(1, round(admitted[0] + _WINDOW - now + 0.5)) if admitted else 1
                raise GatewayError(
                    429,
                    f"key {key_id!r} is limited to {rate.rpm} requests per minute",
                    "rate_limit_exceeded",
                    headers=[("retry-after", str(wait))],
                )
            admitted.append(now)
            rate.count += 1

    def spend(self, key_id: str | None, usd: float | None, ts: float) -> None:
        if key_id is None or not usd:
            return
        budget = self._budgets.get(key_id)
        if budget is not None:
            self._roll(budget, ts)
            if ts >= budget.start:
                budget.spent += usd

    def spent(self, key_id: str) -> float | None:
        budget = self._budgets.get(key_id)
        return None if budget is None else budget.total()

    @property
    def budget_states(self) -> dict[str, _Budget]:
        return self._budgets

    @property
    def rate_states(self) -> dict[str, _Rate]:
        return self._rates

    @staticmethod
    def _roll(budget: _Budget, now: float) -> None:
        start = period_start(budget.period, now)
        if start > budget.start:
            budget.start, budget.spent, budget.seed = start, 0.0, 0.0


class SpendTap:
    """A ledger in front of the ledger: counts each record's cost for its key, then passes it on."""

    def __init__(self, inner: Ledger, limits: KeyLimits) -> None:
        self.inner = inner
        self.limits = limits

    def append(self, record: AttemptRecord) -> None:
        self.limits.spend(record.key_id, record.cost_usd, record.ts)
        self.inner.append(record)

    def start(self) -> None:
        self.inner.start()

    def flush(self, timeout: float | None = None) -> None:
        self.inner.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.inner.close(timeout)

    @property
    def pending(self) -> int:
        return self.inner.pending


def key_limits(config: Config) -> KeyLimits:
    """The limits of the configured keys, spend so far read from the config's ledger."""
    return KeyLimits(config.auth.keys, config.storage.url)


def _spent_in_ledger(path: str, starts: dict[str, float]) -> dict[str, float]:
    """Each key's cost since its period's start, on one connection; {} if there is no ledger yet."""
    from llmswitch.ledger.reader import LedgerNotFound, read_ledger

    sql = "SELECT COALESCE(SUM(cost_usd), 0) FROM attempts WHERE key_id = ? AND ts >= ?"
    try:
        with read_ledger(path) as reader:
            return {
                key_id: float(reader.rows(sql, (key_id, start))[0][0]) for key_id, start in starts.items()
            }
    except (LedgerNotFound, sqlite3.Error):
        return {}
