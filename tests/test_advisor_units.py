"""`llmswitch advise` pieces without a gateway: categories, sampling, intervals, stopping, judge, checks."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from llmswitch.advisor import judge
from llmswitch.advisor.checks import answers_equal, extract_final_answer, json_check, schema_errors
from llmswitch.advisor.cli import register
from llmswitch.advisor.outcomes import compare
from llmswitch.advisor.progress import Progress
from llmswitch.advisor.sampling import allocate, stratified_sample
from llmswitch.advisor.state import CallRecord, JudgeRecord, RunState
from llmswitch.advisor.stats import bootstrap_outcomes, bootstrap_ratio, wilson
from llmswitch.advisor.stopping import StopRule
from llmswitch.advisor.traffic import Exchange, from_jsonl, normalise
from llmswitch.categories import category_of_messages, classify
from tests.harness import routing_data_dir

DATA = routing_data_dir()


# categories ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Write a Python function that reverses a linked list.", "programming"),
        (
            "Why does this fail?\n```python\ndef f(x):\n    return x[0]\n```\nIndexError: list index",
            "programming",
        ),
        ("Solve for x: 3x + 7 = 22", "math"),
        (
            "A shop sells 12 apples at $0.50 each and 8 pears at $0.75 each. How much is that in total?",
            "math",
        ),
        ("Translate 'where is the station?' into German.", "translation"),
        ("Write a short poem about autumn leaves.", "writing"),
        ("Rewrite this paragraph to sound more formal: hey guys, meeting moved to 3.", "writing"),
        ("Summarize the following article in 3 sentences: ...", "summarization"),
        ("What is the difference between TCP and UDP?", "analysis"),
        ("Hi! How are you today?", "chat"),
        ("", "chat"),
    ],
)
def test_classify_examples(text: str, category: str) -> None:
    assert classify(text) == category


def test_category_of_a_follow_up_uses_earlier_turns() -> None:
    messages = [
        {"role": "system", "content": "You are a translator."},
        {"role": "user", "content": "Translate 'good night' into Spanish"},
        {"role": "assistant", "content": "Buenas noches"},
        {"role": "user", "content": "and 'good morning'?"},
    ]
    assert category_of_messages(messages) == "translation"


@pytest.mark.skipif(not DATA.exists(), reason=f"routing data not found at {DATA}")
def test_classify_the_routing_prompts() -> None:
    with gzip.open(DATA / "prompts.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    got = Counter((r["dataset"], classify(r["prompt"])) for r in rows)
    crux = sum(v for (d, _), v in got.items() if d == "cruxeval-o")
    maths = sum(v for (d, _), v in got.items() if d != "cruxeval-o")
    assert got["cruxeval-o", "programming"] == crux
    assert (got["gsm8k", "math"] + got["math-l5", "math"]) / maths > 0.98


# sampling -----------------------------------------------------------------------------------------


def _exchange(i: int, category: str, tags: dict[str, str] | None = None) -> Exchange:
    x = normalise({"messages": [{"role": "user", "content": f"request {i}"}]}, category=category, tags=tags)
    assert isinstance(x, Exchange)
    return x


def test_allocation_is_proportional_with_largest_remainder() -> None:
    counts = allocate({"a": 50, "b": 30, "c": 20}, 10, random.Random(0))
    assert counts == {"a": 5, "b": 3, "c": 2}
    counts = allocate({"a": 5, "b": 3, "c": 3}, 5, random.Random(0))
    assert sum(counts.values()) == 5 and counts["a"] >= 2
    assert allocate({"a": 2, "b": 1}, 10, random.Random(0)) == {"a": 2, "b": 1}


def test_stratified_sample_is_seeded_order_free_and_stratified() -> None:
    pool = [
        _exchange(i, "math" if i % 4 else "programming", {"team": "a" if i % 3 else "b"}) for i in range(400)
    ]
    s1 = stratified_sample(pool, 100, seed=7)
    s2 = stratified_sample(list(reversed(pool)), 100, seed=7)
    assert [x.key for x in s1] == [x.key for x in s2]  # the log's order does not matter
    assert [x.key for x in stratified_sample(pool, 100, seed=8)] != [x.key for x in s1]
    assert len({x.key for x in s1}) == 100
    strata = Counter((x.category, x.tags["team"]) for x in s1)
    population = Counter((x.category, x.tags["team"]) for x in pool)
    for key, n in population.items():
        assert abs(strata[key] - n / 4) <= 1  # each stratum gets its proportional share
    # the replay order is shuffled: the first half is not one stratum
    assert len({x.category for x in s1[:20]}) == 2


# intervals ----------------------------------------------------------------------------------------


def test_bootstrap_rates_and_interval_coverage() -> None:
    outcomes = ["win"] * 10 + ["tie"] * 70 + ["loss"] * 20
    r = bootstrap_outcomes(outcomes, seed=1)
    assert r is not None
    assert r["win"].value == pytest.approx(0.10) and r["loss"].value == pytest.approx(0.20)
    assert r["not_worse"].value == pytest.approx(0.80)
    nw = r["not_worse"]
    assert nw.low < 0.80 < nw.high and 0.05 < nw.high - nw.low < 0.25  # ~ ±1.96·sqrt(.8·.2/100)
    assert bootstrap_outcomes([]) is None
    degenerate = bootstrap_outcomes(["tie"] * 30)
    assert degenerate is not None and degenerate["not_worse"].low == degenerate["not_worse"].high == 1.0

    # coverage: the 95 % interval holds the true rate in ~95 % of repeated samples
    rng = np.random.default_rng(3)
    hits = 0
    for i in range(200):
        draw = rng.choice(["win", "tie", "loss"], size=80, p=[0.15, 0.6, 0.25]).tolist()
        est = bootstrap_outcomes(draw, b=400, seed=i)
        assert est is not None
        hits += est["not_worse"].low <= 0.75 <= est["not_worse"].high
    assert 0.88 <= hits / 200 <= 0.99


def test_bootstrap_ratio_is_paired() -> None:
    base = [1.0, 2.0, 3.0, 4.0]
    cand = [0.1, 0.2, 0.3, 0.4]
    est = bootstrap_ratio(base, cand)
    assert est is not None and est.value == pytest.approx(10.0) and est.low == pytest.approx(10.0)
    assert bootstrap_ratio([1.0], [0.0]) is None


def test_wilson_interval() -> None:
    low, high = wilson(80, 100, 0.05)
    assert low == pytest.approx(0.7112, abs=1e-3) and high == pytest.approx(0.8666, abs=1e-3)
    assert wilson(0, 0, 0.05) == (0.0, 1.0)


# sequential stopping ------------------------------------------------------------------------------


def test_stop_rule_looks_and_decisions() -> None:
    rule = StopRule(threshold=0.9, sample=200, candidates=2)
    assert rule.every == 20 and rule.look_sizes() == list(range(20, 200, 20))
    assert rule.alpha_per_test == pytest.approx(0.05 / (10 * 2))
    assert rule.decide(10, 19) is None  # too few
    assert rule.decide(10, 20) == "below"  # 50 % not worse: clearly under 90 %
    assert rule.decide(20, 20) is None  # 100 % of 20 is not yet evidence of > 90 % at this alpha
    assert rule.decide(200, 200) == "above"
    assert rule.decide(180, 200) is None


def test_stop_rule_errs_at_most_alpha_at_the_boundary() -> None:
    """A candidate exactly at the threshold must (almost) never be declared decided."""
    rule = StopRule(threshold=0.9, sample=200, candidates=1)
    rng = np.random.default_rng(0)
    wrong = 0
    for _ in range(400):
        draws = rng.random(200) < 0.9
        for size in rule.look_sizes():
            if rule.decide(int(draws[:size].sum()), size) is not None:
                wrong += 1
                break
    assert wrong / 400 <= rule.alpha


# judge --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("A is right.\nVERDICT: A", "A"),
        ("Reasoning...\n**VERDICT: B**", "B"),
        ("verdict: tie.", "TIE"),
        ("Final VERDICT: [A]\n", "A"),
        ("Considering VERDICT: A at first...\nVERDICT: B", "B"),
        ("VERDICT: A\nThat is all, thanks.", "A"),
        ("I prefer answer A.", None),
        ("VERDICT: A or B", None),
        ("End with VERDICT: A, VERDICT: B or VERDICT: TIE", None),
        ("VERDICT: ABSOLUTELY", None),
        ("", None),
    ],
)
def test_parse_verdict(reply: str, verdict: str | None) -> None:
    assert judge.parse_verdict(reply) == verdict


def test_combining_both_orders() -> None:
    # (candidate shown as A, baseline shown as A) -> outcome for the candidate
    assert judge.combine("A", "B") == "win"  # candidate preferred both times
    assert judge.combine("B", "A") == "loss"
    assert judge.combine("A", "A") == "tie"  # position bias: the orders disagree
    assert judge.combine("B", "B") == "tie"
    assert judge.combine("TIE", "TIE") == "tie"
    assert judge.combine("A", "TIE") == "win"
    assert judge.combine("TIE", "A") == "loss"


def test_judge_request_round_trip_and_clipping() -> None:
    conversation = judge.render_conversation([{"role": "user", "content": "What is 2+2?"}])
    assert conversation == "What is 2+2?"
    long = "x" * (judge.MAX_ANSWER_CHARS + 500)
    messages = judge.judge_messages(conversation, "It is 4.", long)
    assert messages[0]["role"] == "system" and "VERDICT: A" in messages[0]["content"]
    parsed = judge.parse_judge_request(messages)
    assert parsed is not None
    assert parsed[0] == "What is 2+2?" and parsed[1] == "It is 4."
    assert "characters omitted" in parsed[2] and len(parsed[2]) < len(long)
    multi = judge.render_conversation(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    assert "[SYSTEM]\nBe brief." in multi and "[USER]\nHi" in multi


class _FakeJudge:
    def __init__(self, replies: list[str | Exception]) -> None:
        self.replies = replies
        self.seen: list[list[dict[str, str]]] = []

    async def __call__(self, messages: list[dict[str, str]]) -> tuple[str, float | None]:
        self.seen.append(messages)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply, 0.001


def test_unparseable_verdict_is_retried_with_a_follow_up() -> None:
    fake = _FakeJudge(["Both are fine I guess", "VERDICT: B"])
    messages = judge.judge_messages("q", "a", "b")
    j = asyncio.run(judge.ask(fake, messages))
    assert j.verdict == "B" and j.attempts == 2 and j.cost_usd == pytest.approx(0.002)
    retry = fake.seen[1]
    assert retry[:2] == messages and retry[2] == {"role": "assistant", "content": "Both are fine I guess"}
    assert retry[3]["content"] == judge.RETRY_PROMPT


def test_unparseable_three_times_is_dropped_and_counted() -> None:
    fake = _FakeJudge(["hmm", "hmm", "still hmm", "VERDICT: A"])
    j = asyncio.run(judge.ask(fake, judge.judge_messages("q", "a", "b")))
    assert j.verdict is None and j.attempts == judge.MAX_ATTEMPTS and len(fake.replies) == 1


def test_transport_errors_are_retried_other_errors_propagate() -> None:
    fake = _FakeJudge([TimeoutError("slow"), "VERDICT: TIE"])
    j = asyncio.run(judge.ask(fake, judge.judge_messages("q", "a", "b"), retry_on=(TimeoutError,)))
    assert j.verdict == "TIE" and j.attempts == 2
    assert fake.seen[1] == fake.seen[0]  # nothing to show back: the same question again
    with pytest.raises(KeyError):
        asyncio.run(judge.ask(_FakeJudge([KeyError("bug")]), [], retry_on=(TimeoutError,)))


# checks and outcomes ------------------------------------------------------------------------------


def test_json_checks() -> None:
    mode = {"response_format": {"type": "json_object"}}
    assert json_check({}, "not json") is None
    assert json_check(mode, '{"a": 1}') is True
    assert json_check(mode, '```json\n{"a": 1}\n```') is False
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name"],
        "additionalProperties": False,
    }
    req = {"response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}}
    assert json_check(req, '{"name": "Ada", "age": 36}') is True
    assert json_check(req, '{"age": 36}') is False
    assert schema_errors({"name": "A", "age": -1, "x": 1}, schema) == [
        "$.age: out of range",
        "$.x: not allowed",
    ]


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ('```json\n{"reasoning": "2+2", "answer": "4"}\n```', "4"),
        ('{"reasoning": "...", "answer": 18}', "18"),
        ('blah "answer": "[1, 2]" blah', "[1, 2]"),
        ("So the result follows.\nAnswer: 42", "42"),
        ("Thus $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("no idea", None),
    ],
)
def test_final_answer_extraction(text: str, answer: str | None) -> None:
    assert extract_final_answer(text) == answer


def test_answers_equal() -> None:
    assert (
        answers_equal("18", "18.0")
        and answers_equal("$1,000", "1000")
        and answers_equal("\\frac{1}{2}", "0.5")
    )
    assert answers_equal("{'a': 1, 'b': 2}", '{"b": 2, "a": 1}')
    assert answers_equal("'abc'", "abc") and not answers_equal("[1, 2]", "(1, 2)")
    assert not answers_equal("17", "18")


def _call(model: str, text: str, ok: bool = True) -> CallRecord:
    return CallRecord("k", model, ok, text, None if ok else "HTTP 500", 0.1, 0.05, 10, 5, "gw", 0.0)


def _judged(cb: str | None, bc: str | None) -> dict[str, JudgeRecord | None]:
    return {
        "CB": JudgeRecord("k", "c", "CB", cb, 1, None, "", None),
        "BC": JudgeRecord("k", "c", "BC", bc, 1, None, "", None),
    }


def test_outcome_precedence() -> None:
    x = normalise(
        {"messages": [{"role": "user", "content": "q"}], "response_format": {"type": "json_object"}}
    )
    assert isinstance(x, Exchange)
    base, cand = _call("b", '{"answer": "4"}'), _call("c", '{"answer": "5"}')
    assert compare(x, base, None, {}).decided_by == "pending"
    assert compare(x, _call("b", "", ok=False), cand, {}).decided_by == "baseline error"
    assert compare(x, base, _call("c", "", ok=False), {}).outcome == "loss"
    broken = compare(x, base, _call("c", "sure! {"), _judged("A", "B"))
    assert (broken.outcome, broken.decided_by) == ("loss", "json")  # the check overrides the judge
    pending = compare(x, base, cand, {})
    assert pending.needs_judge and pending.agree is False
    assert compare(x, base, cand, _judged("A", "B")).outcome == "win"
    assert compare(x, base, cand, _judged("A", None)).decided_by == "dropped"
    with_ref = normalise({"messages": [{"role": "user", "content": "q"}]}, reference="5")
    assert isinstance(with_ref, Exchange)
    r = compare(with_ref, _call("b", "Answer: 4"), _call("c", "Answer: 5"), {})
    assert (r.outcome, r.decided_by, r.reference_ok) == ("win", "reference", (False, True))


# traffic and state --------------------------------------------------------------------------------


def test_traffic_normalisation(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    records = [
        {
            "messages": [{"role": "user", "content": "hi"}],
            "response": "hello",
            "model": "m",
            "temperature": 0.2,
        },
        {
            "messages": [{"role": "user", "content": "hi"}],
            "response": "again",
            "model": "m",
            "temperature": 0.2,
        },
        {
            "messages": [{"role": "user", "content": "2+2?"}],
            "response": {"choices": [{"message": {"role": "assistant", "content": "4"}}]},
            "tags": {"team": "x"},
        },
        {"messages": [{"role": "user", "content": "go"}], "tools": [{"type": "function"}]},
        {"request": {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}},
        {"nothing": True},
    ]
    log.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    t = from_jsonl(log)
    assert len(t.exchanges) == 2 and t.total == 7
    assert t.skipped == {
        "duplicate": 1,
        "tools": 1,
        "non-text content": 1,
        "no messages": 1,
        "unreadable line": 1,
    }
    assert t.exchanges[0].request == {"messages": [{"role": "user", "content": "hi"}], "temperature": 0.2}
    assert t.exchanges[1].response == "4" and t.exchanges[1].tags == {"team": "x"}
    anthropic = normalise(
        {
            "system": "Be brief.",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        },
        surface="anthropic",
    )
    assert isinstance(anthropic, Exchange)
    assert anthropic.request == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 50,
    }


def test_state_survives_a_torn_last_line(tmp_path: Path) -> None:
    params = {"sample": 3}
    st = RunState(tmp_path, params)
    st.add_call(_call("m", "answer"))
    st.add_cost("gw", 0.25)
    st.add_judgement(JudgeRecord("k", "c", "CB", "A", 1, 0.01, "VERDICT: A", None))
    st.close()
    with st.events_path.open("a") as f:
        f.write('{"type": "call", "rid": "k2", "mod')  # what a SIGKILL mid-write leaves
    again = RunState(tmp_path, params)
    assert again.resumed and again.key == st.key
    assert again.calls["k", "m"].text == "answer" and again.costs == {"gw": 0.25}
    assert again.judgements["k", "c", "CB"].verdict == "A"
    assert RunState(tmp_path, params, fresh=True).calls == {}


def test_register_adds_the_advise_command() -> None:
    parser = argparse.ArgumentParser(prog="llmswitch")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(
        [
            "advise",
            "--baseline",
            "gpt-4o",
            "--candidates",
            "a, b",
            "--judge",
            "j",
            "--since",
            "24h",
            "--threshold",
            "95%",
        ]
    )
    assert args.command == "advise" and args.candidates == ["a", "b"] and args.since.seconds == 86400
    assert args.threshold == pytest.approx(0.95) and callable(args.func)
    with pytest.raises(SystemExit):
        parser.parse_args(
            ["advise", "--baseline", "x", "--candidates", "y", "--judge", "z", "--since", "1d", "--log", "f"]
        )


def test_progress_lines_off_a_terminal() -> None:
    stream = io.StringIO()  # not a tty: one line per tenth of the way, none repeated
    p = Progress(20, stream=stream)
    for done in range(21):
        p.update(done, done * 0.01, done * 3, 0)
    p.update(20, 0.2, 60, 0, force=True)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11 and lines[0].startswith("advise [------------------------]  0/20 requests")
    assert "20/20 requests  $0.2000 spent  60 calls  0 dropped" in lines[-1]
