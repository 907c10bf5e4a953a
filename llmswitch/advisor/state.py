"""Resumable run state: `.llmswitch-advise/<key>/`.

The key hashes what decides the sample and the meaning of a cached result: the traffic source, the
sample size and seed, the baseline and judge models, the judge prompt version and the config file's
text. Candidates, budget, concurrency and threshold are not in it, so adding a candidate reuses the
baseline's answers, and re-running with a bigger budget continues where the last run stopped.

Files:
- ``params.json``   what the key was made of (for humans);
- ``sample.jsonl``  the sampled exchanges, in replay order (written once: a re-run replays the same
                    sample even if more traffic has been logged since);
- ``events.jsonl``  append-only: one line per completed call, resolved cost or judge verdict, written
                    and flushed as each completes, so a crash loses at most the calls in flight;
- ``ledger.db``     the embedded gateway's ledger (replay spend never lands in your own ledger);
- ``gateway.yaml``, ``gateway.log``  the embedded gateway's config and output.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from llmswitch.advisor.traffic import Exchange

__all__ = ["CallRecord", "JudgeRecord", "RunState", "state_key"]

DEFAULT_ROOT = ".llmswitch-advise"


def state_key(params: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(slots=True)
class CallRecord:
    """One replay of one request on one model, as the client saw it."""

    rid: str  # Exchange.key
    model: str
    ok: bool
    text: str
    error: str | None
    latency_s: float | None  # request sent -> last byte
    ttft_s: float | None  # request sent -> first content token
    prompt_tokens: int | None
    completion_tokens: int | None
    gateway_id: str | None  # x-llmswitch-request-id: the ledger row that has the cost
    ts: float


@dataclass(slots=True)
class JudgeRecord:
    rid: str
    candidate: str
    order: str  # "CB": candidate shown as A; "BC": baseline shown as A
    verdict: str | None  # "A" | "B" | "TIE" | None (dropped after retries)
    attempts: int
    cost_usd: float | None
    reply: str
    error: str | None


class RunState:
    def __init__(self, root: Path, params: Mapping[str, Any], *, fresh: bool = False) -> None:
        self.key = state_key(params)
        self.dir = root / self.key
        if fresh and self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "params.json").write_text(json.dumps(dict(params), indent=2, sort_keys=True))
        self.calls: dict[tuple[str, str], CallRecord] = {}
        self.costs: dict[str, float | None] = {}  # gateway request id -> USD (None: no known price)
        self.judgements: dict[tuple[str, str, str], JudgeRecord] = {}
        self.resumed = False
        self._events: IO[str] | None = None
        self._load()

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def sample_path(self) -> Path:
        return self.dir / "sample.jsonl"

    def _lines(self, path: Path) -> Iterator[dict[str, Any]]:
        if not path.exists():
            return
        with path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:  # the line a kill cut short: that call is simply redone
                    continue

    def _load(self) -> None:
        for e in self._lines(self.events_path):
            kind = e.pop("type", None)
            if kind == "call":
                c = CallRecord(**e)
                self.calls[c.rid, c.model] = c
            elif kind == "cost":
                self.costs[e["gateway_id"]] = e["cost_usd"]
            elif kind == "judge":
                j = JudgeRecord(**e)
                self.judgements[j.rid, j.candidate, j.order] = j
        self.resumed = bool(self.calls)

    def load_sample(self) -> list[Exchange] | None:
        if not self.sample_path.exists():
            return None
        return [Exchange.from_json(d) for d in self._lines(self.sample_path)]

    def save_sample(self, sample: list[Exchange]) -> None:
        tmp = self.sample_path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for x in sample:
                f.write(json.dumps(x.to_json(), ensure_ascii=False) + "\n")
        tmp.replace(self.sample_path)  # atomic: a kill never leaves half a sample

    def _append(self, event: dict[str, Any]) -> None:
        if self._events is None:
            self._events = self.events_path.open("a", encoding="utf-8")
        self._events.write(json.dumps(event, ensure_ascii=False) + "\n")
        self._events.flush()  # in the kernel now: a killed process loses nothing already written

    def add_call(self, c: CallRecord) -> None:
        self.calls[c.rid, c.model] = c
        self._append({"type": "call", **asdict(c)})

    def add_cost(self, gateway_id: str, cost: float | None) -> None:
        self.costs[gateway_id] = cost
        self._append({"type": "cost", "gateway_id": gateway_id, "cost_usd": cost})

    def add_judgement(self, j: JudgeRecord) -> None:
        self.judgements[j.rid, j.candidate, j.order] = j
        self._append({"type": "judge", **asdict(j)})

    def call_cost(self, c: CallRecord) -> float | None:
        return self.costs.get(c.gateway_id) if c.gateway_id else None

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None
