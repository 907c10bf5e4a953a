"""One request, one candidate: win, tie or loss against the baseline, and what decided it.

In order: the baseline failed → excluded (nothing to compare with); the candidate failed (an HTTP
error after the gateway's own retries and fallbacks) → loss; a check one side passes and the other
fails (JSON validity, then the reference answer when the log has one) → decided by the check, no judge;
otherwise the judge's two orders (`judge.combine`), or "dropped" if either order has no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmswitch.advisor.checks import answers_equal, extract_final_answer, json_check
from llmswitch.advisor.judge import Outcome, Verdict, combine
from llmswitch.advisor.state import CallRecord, JudgeRecord
from llmswitch.advisor.traffic import Exchange

__all__ = ["Comparison", "compare"]

ORDERS = ("CB", "BC")  # candidate shown as A, then baseline shown as A


@dataclass(slots=True)
class Comparison:
    rid: str
    candidate: str
    outcome: Outcome | None  # None: pending, excluded or dropped
    decided_by: str  # judge | json | reference | candidate error | baseline error | dropped | pending
    json_ok: tuple[bool | None, bool | None] = (None, None)  # (baseline, candidate)
    reference_ok: tuple[bool | None, bool | None] = (None, None)
    agree: bool | None = None  # same final answer as the baseline (None: not both extractable)

    @property
    def needs_judge(self) -> bool:
        return self.decided_by == "pending-judge"

    @property
    def counted(self) -> bool:
        return self.outcome is not None


def _reference_ok(text: str, reference: str) -> bool:
    answer = extract_final_answer(text)
    return answer is not None and answers_equal(answer, reference)


def _verdict(j: JudgeRecord | None) -> Verdict | None:
    v = j.verdict if j is not None else None
    return "A" if v == "A" else "B" if v == "B" else "TIE" if v == "TIE" else None


def compare(
    x: Exchange,
    base: CallRecord | None,
    cand: CallRecord | None,
    judged: dict[str, JudgeRecord | None],
) -> Comparison:
    """`judged`: the judge's record per order ("CB", "BC"), None where not asked yet."""
    name = cand.model if cand is not None else "?"
    if base is None or cand is None:
        return Comparison(x.key, name, None, "pending")
    if not base.ok:
        return Comparison(x.key, name, None, "baseline error")
    if not cand.ok:
        return Comparison(x.key, name, "loss", "candidate error")
    c = Comparison(x.key, name, None, "pending-judge")
    c.json_ok = (json_check(x.request, base.text), json_check(x.request, cand.text))
    if x.reference is not None:
        c.reference_ok = (_reference_ok(base.text, x.reference), _reference_ok(cand.text, x.reference))
    fb, fc = extract_final_answer(base.text), extract_final_answer(cand.text)
    c.agree = answers_equal(fb, fc) if fb is not None and fc is not None else None
    for kind, (b_ok, c_ok) in (("json", c.json_ok), ("reference", c.reference_ok)):
        if b_ok is not None and b_ok != c_ok:
            c.outcome, c.decided_by = ("win" if c_ok else "loss"), kind
            return c
    first, second = judged.get("CB"), judged.get("BC")
    if first is None or second is None:
        return c
    v1, v2 = _verdict(first), _verdict(second)
    if v1 is None or v2 is None:
        c.decided_by = "dropped"
        return c
    c.outcome, c.decided_by = combine(v1, v2), "judge"
    return c


def comparison_json(c: Comparison) -> dict[str, Any]:
    return {
        "outcome": c.outcome,
        "decided_by": c.decided_by,
        "json_ok": list(c.json_ok),
        "reference_ok": list(c.reference_ok),
        "agrees_with_baseline": c.agree,
    }
