"""The replay loop: baseline and candidates on each sampled request, then the judge, with at most K
calls in flight, early stopping, the budget, and every result written to the run state as it lands.

Requests are taken in sample order by K workers. A request's baseline and candidate calls run
together, then its judge calls (both orders of every candidate that needs one). Anything already in
the state (a previous, interrupted run) is reused, not called again; failed replays and judge calls
that failed on transport are retried once per run, since they were not paid for.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import openai

from llmswitch.advisor import judge
from llmswitch.advisor.embedded import LedgerCosts
from llmswitch.advisor.outcomes import ORDERS, Comparison, compare
from llmswitch.advisor.progress import Progress
from llmswitch.advisor.replay import Replayer
from llmswitch.advisor.state import CallRecord, JudgeRecord, RunState
from llmswitch.advisor.stopping import Decision, StopRule
from llmswitch.advisor.traffic import Exchange

__all__ = ["Plan", "RunResult", "Runner", "comparisons"]


@dataclass(slots=True)
class Plan:
    baseline: str
    candidates: list[str]
    judge: str
    sample: list[Exchange]
    concurrency: int
    budget_usd: float | None
    rule: StopRule


@dataclass(slots=True)
class RunResult:
    stop_reason: str  # complete | decided | budget
    completed: list[str]  # keys of the requests fully processed, in sample order
    decisions: dict[str, Decision] = field(default_factory=dict)  # at the last look
    looks: int = 0
    calls_made: int = 0  # paid for by this run (replays and judge asks)
    calls_reused: int = 0


def comparisons(plan: Plan, state: RunState, x: Exchange) -> dict[str, Comparison]:
    base = state.calls.get((x.key, plan.baseline))
    out = {}
    for c in plan.candidates:
        judged: dict[str, JudgeRecord | None] = {o: state.judgements.get((x.key, c, o)) for o in ORDERS}
        out[c] = compare(x, base, state.calls.get((x.key, c)), judged)
        out[c].candidate = c
    return out


class Runner:
    def __init__(
        self, plan: Plan, state: RunState, replayer: Replayer, costs: LedgerCosts, progress: Progress
    ) -> None:
        self.plan = plan
        self.state = state
        self.replayer = replayer
        self.costs = costs
        self.progress = progress
        self.sem = asyncio.Semaphore(plan.concurrency)
        self.done = [False] * len(plan.sample)
        self.prefix = 0
        self.next_index = 0
        self.inflight = 0
        self.stop_reason: str | None = None
        self.result = RunResult("complete", [])
        looks = plan.rule.look_sizes()
        self._looks = iter(looks)
        self._next_look = next(self._looks, None)

    # spend -------------------------------------------------------------------------------------
    def spend(self) -> float:
        """Known spend, plus an estimate for replays whose cost the ledger has not given back yet."""
        known, pending = 0.0, 0
        per_model: dict[str, list[float]] = {}
        for c in self.state.calls.values():
            if not c.ok:
                continue
            if c.gateway_id in self.state.costs:
                cost = self.state.costs[c.gateway_id]
                if cost is not None:
                    known += cost
                    per_model.setdefault(c.model, []).append(cost)
            elif c.gateway_id:
                pending += 1
        if pending:
            allc = [v for vs in per_model.values() for v in vs]
            known += pending * (sum(allc) / len(allc) if allc else 0.0)
        known += sum(j.cost_usd or 0.0 for j in self.state.judgements.values())
        return known

    def _dropped(self) -> int:
        return sum(1 for j in self.state.judgements.values() if j.verdict is None)

    def _tick(self, force: bool = False) -> None:
        done = sum(self.done)
        if not self.progress.due(done, force=force):  # the figures below cost O(calls): only when drawn
            return
        calls = len(self.state.calls) + sum(j.attempts for j in self.state.judgements.values())
        self.progress.update(done, self.spend(), calls, self._dropped(), force=force)

    # calls -------------------------------------------------------------------------------------
    async def _call(self, x: Exchange, model: str) -> CallRecord:
        cached = self.state.calls.get((x.key, model))
        if cached is not None and cached.ok:
            self.result.calls_reused += 1
            return cached
        async with self.sem:
            rec = await self.replayer.replay(x.key, model, x.request)
        self.result.calls_made += 1
        self.state.add_call(rec)
        self._tick()
        return rec

    async def _judge_call(self, messages: list[dict[str, str]]) -> tuple[str, float | None]:
        async with self.sem:
            self.result.calls_made += 1
            return await self.replayer.judge(self.plan.judge, messages)

    async def _judge(self, x: Exchange, candidate: str, order: str, base: str, cand: str) -> None:
        cached = self.state.judgements.get((x.key, candidate, order))
        if cached is not None and (cached.verdict is not None or cached.error is None):
            self.result.calls_reused += 1
            return
        a, b = (cand, base) if order == "CB" else (base, cand)
        messages = judge.judge_messages(judge.render_conversation(x.request["messages"]), a, b)
        j = await judge.ask(
            self._judge_call, messages, retry_on=(openai.APIStatusError, openai.APITimeoutError)
        )
        self.state.add_judgement(
            JudgeRecord(x.key, candidate, order, j.verdict, j.attempts, j.cost_usd, j.reply, j.error)
        )
        self._tick()

    async def _process(self, x: Exchange) -> None:
        models = [self.plan.baseline, *self.plan.candidates]
        records = await asyncio.gather(*(self._call(x, m) for m in models))
        base = records[0]
        todo = []
        for c, comparison in comparisons(self.plan, self.state, x).items():
            if comparison.needs_judge:
                cand = self.state.calls[x.key, c]
                todo += [self._judge(x, c, o, base.text, cand.text) for o in ORDERS]
        await asyncio.gather(*todo)

    # scheduling --------------------------------------------------------------------------------
    def _look(self, size: int) -> None:
        """Decide every candidate on the first `size` requests of the sample order."""
        counts = {c: [0, 0] for c in self.plan.candidates}
        for x in self.plan.sample[:size]:
            for c, comp in comparisons(self.plan, self.state, x).items():
                if comp.outcome is not None:
                    counts[c][1] += 1
                    counts[c][0] += comp.outcome != "loss"
        self.result.looks += 1
        self.result.decisions = {c: self.plan.rule.decide(k, n) for c, (k, n) in counts.items()}
        if all(d is not None for d in self.result.decisions.values()):
            self.stop_reason = self.stop_reason or "decided"

    def _advance(self) -> None:
        while self.prefix < len(self.done) and self.done[self.prefix]:
            self.prefix += 1
        while self._next_look is not None and self.prefix >= self._next_look:
            self._look(self._next_look)
            self._next_look = next(self._looks, None)

    def _over_budget(self) -> bool:
        budget = self.plan.budget_usd
        if budget is None:
            return False
        spent = self.spend()
        started = len({rid for rid, _ in self.state.calls})  # this run's and earlier runs' requests
        per_request = spent / started if started else 0.0
        return spent + (self.inflight + 1) * per_request > budget

    async def _worker(self) -> None:
        while self.stop_reason is None and self.next_index < len(self.plan.sample):
            if self._over_budget():
                self.stop_reason = "budget"
                break
            i = self.next_index
            self.next_index += 1
            self.inflight += 1
            try:
                await self._process(self.plan.sample[i])
            finally:
                self.inflight -= 1
            self.done[i] = True
            self._advance()
            self._tick()

    async def _resolve_costs(self, *, final: bool = False) -> None:
        """Read replay costs back from the gateway's ledger (it writes every 50 ms)."""
        while True:
            pending = {
                c.gateway_id
                for c in self.state.calls.values()
                if c.ok and c.gateway_id and c.gateway_id not in self.state.costs
            }
            if pending:
                found = await asyncio.get_running_loop().run_in_executor(None, self.costs.lookup, pending)
                for gid, cost in found.items():
                    self.state.add_cost(gid, cost)
                pending -= found.keys()
            if final and not pending:
                return
            await asyncio.sleep(0.2)

    async def run(self) -> RunResult:
        self._tick(force=True)
        resolver = asyncio.create_task(self._resolve_costs())
        try:
            workers = [asyncio.create_task(self._worker()) for _ in range(self.plan.concurrency)]
            await asyncio.gather(*workers)
        finally:
            resolver.cancel()
            # Not `await resolver` under suppress(CancelledError): that also swallows this task's own
            # cancellation (Ctrl-C arriving just then), and the run would end as if complete.
            await asyncio.wait([resolver])
        with contextlib.suppress(TimeoutError):  # the ledger's last batch; unknown costs stay unknown
            await asyncio.wait_for(self._resolve_costs(final=True), 5.0)
        self._tick(force=True)
        self.result.stop_reason = self.stop_reason or "complete"
        self.result.completed = [x.key for x, d in zip(self.plan.sample, self.done, strict=True) if d]
        return self.result
