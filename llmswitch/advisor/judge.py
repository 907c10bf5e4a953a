"""The judge, in one place: its prompt (versioned), how it is asked, how its verdict is parsed, and how
the two orders combine. Change the prompt => bump `JUDGE_PROMPT_VERSION` (it is part of the state key,
so cached verdicts of an older prompt are never mixed with new ones, and it is printed in reports).

Protocol, per (request, candidate):

1. The judge sees the conversation and two answers, "A" and "B", and must end its reply with one line
   ``VERDICT: A``, ``VERDICT: B`` or ``VERDICT: TIE`` (a format that survives markdown, chatter and
   reasoning before it: only the last line mentioning "verdict" counts, and it must name one option).
2. It is asked twice: candidate as A (order ``CB``), then baseline as A (order ``BC``), which cancels
   position bias. Each order is scored from the candidate's side (+1 better, 0 tie, -1 worse) and the
   two scores are added: > 0 win, < 0 loss, 0 tie. So orders that disagree are a tie, two ties are a
   tie, and a preference in one order with a tie in the other counts as that preference.
3. An unparseable reply is retried (at most `MAX_ATTEMPTS` asks in all) with a follow-up turn that asks
   for the verdict line only; a transport error is retried likewise. If either order still has no
   verdict, the comparison is dropped (a one-sided verdict would bring position bias back) and counted.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "JUDGE_PROMPT_VERSION",
    "MAX_ATTEMPTS",
    "Judgement",
    "Outcome",
    "Verdict",
    "ask",
    "combine",
    "judge_messages",
    "parse_judge_request",
    "parse_verdict",
    "render_conversation",
]

JUDGE_PROMPT_VERSION = "pairwise-v1"
MAX_ATTEMPTS = 3  # the first ask and two retries
MAX_ANSWER_CHARS = 20_000  # longer answers are cut in the middle (the judge's context is finite)
MAX_CONVERSATION_CHARS = 30_000

Verdict = Literal["A", "B", "TIE"]
Outcome = Literal["win", "tie", "loss"]

CONVERSATION_START, CONVERSATION_END = "<<<CONVERSATION>>>", "<<<END CONVERSATION>>>"
ANSWER_A_START, ANSWER_A_END = "<<<ANSWER A>>>", "<<<END ANSWER A>>>"
ANSWER_B_START, ANSWER_B_END = "<<<ANSWER B>>>", "<<<END ANSWER B>>>"

SYSTEM_PROMPT = """\
You are an impartial judge. Two AI assistants answered the same conversation; you decide which \
answer, A or B, better serves the user.

Judge in this order of importance:
1. Correctness: accurate facts, sound reasoning, the right final result, code that works. An answer \
whose final result is wrong loses to one whose final result is right, however well it is written.
2. Instruction following: it does what was asked, in the requested format (a JSON object, a language, \
a length limit, ...).
3. Helpfulness: complete, clear and relevant. Length is not a merit in itself.

Rules:
- The order in which the answers are shown says nothing about their quality.
- Do not prefer an answer for being longer, more confident or more polished.
- If both answers are equally good, or equally wrong, or differ only in ways the user would not care \
about, the verdict is TIE.
- Think briefly (a few sentences at most), then end your reply with exactly one final line: \
"VERDICT: A", "VERDICT: B" or "VERDICT: TIE"."""

_QUESTION = "Which answer is better? End with one line: VERDICT: A, VERDICT: B or VERDICT: TIE."
RETRY_PROMPT = (
    "Your reply did not end with a verdict line. Reply with exactly one line: "
    "VERDICT: A, VERDICT: B or VERDICT: TIE."
)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters omitted ...]\n{text[-half:]}"


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
            elif isinstance(p, dict):
                parts.append(f"[{p.get('type', 'part')}]")  # images and other parts: named, not shown
        return "\n".join(parts)
    return ""


def render_conversation(messages: Sequence[Mapping[str, Any]]) -> str:
    """The conversation as the judge reads it: a lone user message as is, else one block per turn."""
    if len(messages) == 1 and messages[0].get("role", "user") == "user":
        return _clip(_content_text(messages[0].get("content")), MAX_CONVERSATION_CHARS)
    turns = [f"[{str(m.get('role', 'user')).upper()}]\n{_content_text(m.get('content'))}" for m in messages]
    return _clip("\n\n".join(turns), MAX_CONVERSATION_CHARS)


def judge_messages(conversation: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
    """The chat messages of one judge call (answer A shown first)."""
    user = (
        f"{CONVERSATION_START}\n{conversation}\n{CONVERSATION_END}\n\n"
        f"{ANSWER_A_START}\n{_clip(answer_a, MAX_ANSWER_CHARS)}\n{ANSWER_A_END}\n\n"
        f"{ANSWER_B_START}\n{_clip(answer_b, MAX_ANSWER_CHARS)}\n{ANSWER_B_END}\n\n{_QUESTION}"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def retry_messages(messages: list[dict[str, str]], bad_reply: str) -> list[dict[str, str]]:
    """The follow-up after an unparseable reply: show it back and ask for the verdict line only."""
    if not bad_reply.strip():
        return messages  # nothing to show back (e.g. the call failed): ask again
    return [*messages, {"role": "assistant", "content": bad_reply}, {"role": "user", "content": RETRY_PROMPT}]


def parse_judge_request(messages: Sequence[Mapping[str, Any]]) -> tuple[str, str, str] | None:
    """(conversation, answer A, answer B) from a judge call's messages; for judge stand-ins in tests."""
    for m in messages:
        text = _content_text(m.get("content"))
        if m.get("role") == "user" and CONVERSATION_START in text:
            try:
                c0 = text.index(CONVERSATION_START) + len(CONVERSATION_START) + 1
                b1 = text.rindex("\n" + ANSWER_B_END)
                b0 = text.rindex(ANSWER_B_START + "\n", 0, b1) + len(ANSWER_B_START) + 1
                a1 = text.rindex("\n" + ANSWER_A_END, 0, b0)
                a0 = text.rindex(ANSWER_A_START + "\n", 0, a1) + len(ANSWER_A_START) + 1
                c1 = text.rindex("\n" + CONVERSATION_END, 0, a0)
            except ValueError:
                return None
            return text[c0:c1], text[a0:a1], text[b0:b1]
    return None


_VERDICT = re.compile(r"verdict\W{0,8}(tie|a|b)(?![a-z0-9])", re.IGNORECASE)
_OPTION = re.compile(r"\b(A|B|TIE)\b")  # capitals only: the article "a" is not an option


def parse_verdict(reply: str) -> Verdict | None:
    """The verdict on the reply's last line that mentions "verdict", if it names exactly one option."""
    for line in reversed(reply.strip().splitlines()):
        if "verdict" not in line.lower():
            continue
        matches = list(_VERDICT.finditer(line))
        found = {m.group(1).upper() for m in matches}
        if matches:  # "VERDICT: A or B" names two options: as unparseable as none
            found |= set(_OPTION.findall(line, matches[0].end()))
        if len(found) == 1:
            value = found.pop()
            return "TIE" if value == "TIE" else "A" if value == "A" else "B"
        return None  # "VERDICT: A or B", or a line that names none: unparseable
    return None


def _score(verdict: Verdict, candidate_is_a: bool) -> int:
    if verdict == "TIE":
        return 0
    return 1 if (verdict == "A") == candidate_is_a else -1


def combine(candidate_first: Verdict, baseline_first: Verdict) -> Outcome:
    """Candidate's outcome from the two orders: CB (candidate shown as A) and BC (baseline as A)."""
    total = _score(candidate_first, True) + _score(baseline_first, False)
    return "win" if total > 0 else "loss" if total < 0 else "tie"


@dataclass(slots=True)
class Judgement:
    """One order's result: the verdict (None = dropped), how many asks it took, what they cost."""

    verdict: Verdict | None
    attempts: int
    cost_usd: float | None
    reply: str  # the last reply (kept short in reports)
    error: str | None = None  # the last transport error, if the last attempt failed that way


JudgeCall = Callable[[list[dict[str, str]]], Awaitable[tuple[str, float | None]]]


async def ask(
    call: JudgeCall,
    messages: list[dict[str, str]],
    *,
    max_attempts: int = MAX_ATTEMPTS,
    retry_on: tuple[type[Exception], ...] = (Exception,),
) -> Judgement:
    """Ask until a verdict parses, at most `max_attempts` times. `call` returns (reply text, cost USD);
    an error of a `retry_on` type counts as an attempt without a verdict, any other propagates."""
    cost: float | None = None
    reply, error = "", None
    current = messages
    for attempt in range(1, max_attempts + 1):
        try:
            reply, spent = await call(current)
            error = None
        except retry_on as e:  # an HTTP error from the gateway, a timeout: retried like garbage
            reply, spent, error = "", None, f"{type(e).__name__}: {e}"[:300]
        if spent is not None:
            cost = (cost or 0.0) + spent
        verdict = parse_verdict(reply)
        if verdict is not None:
            return Judgement(verdict, attempt, cost, reply[-2000:])
        current = retry_messages(messages, reply)
    return Judgement(None, max_attempts, cost, reply[-2000:], error)
