"""A recorded provider: a real OpenAI-compatible HTTP server that answers a known prompt with what a given
model really answered, from a folder in the format of the published routing data
(``prompts.jsonl.gz``, ``outputs*.jsonl.gz``, ``outcomes*.jsonl.gz``).

- Model ids are the data's model names (``gpt-4o-2024-08-06``, ``deepseek-v2.5-0908`` ...); the prompt
  is looked up by the text of the request's last user message, exactly as the data has it. The usage
  is the data's token counts (prompt ``input_tokens``, answer ``output_tokens``), so the gateway prices
  the answer as the real model would have been priced (up to the tokenizer, see the data's README).
- The model id ``oracle-judge`` is a correctness-based judge stand-in: it reads a judge request in
  `llmswitch.advisor.judge`'s format, looks both answers up in the outcomes (their correctness labels)
  and answers ``VERDICT: A`` / ``B`` for the correct one, ``TIE`` when both are right or both wrong.
  It can garble a deterministic share of its first replies (``garble_first``: retried, then parsed) or
  all of them (``garble_always``: dropped), to exercise the advisor's retry path end to end.
- A suffix like ``@slow0.2`` or ``@500`` adds the simulator's behaviours (see `sim_behaviour`).
- Timing is simulated by `Latency` (time to first token, tokens per second per model); streams carry
  one word per event like the simulator's, or `words_per_chunk` words (fewer events: faster tests).

It reuses the upstream simulator's server (`simulator._Connection`: parsing, keep-alive, streaming,
the request log): only the answer is decided here. Unknown prompts get a 404 naming the problem.
Run standalone with ``python -m llmswitch.testing.recorded --data DIR [--port P]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import functools
import gzip
import hashlib
import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmswitch.advisor import judge
from llmswitch.testing import sim_behaviour as sb
from llmswitch.testing.sim_behaviour import Behaviour
from llmswitch.testing.simulator import SimState, Simulator, _Connection, _Request

__all__ = ["JUDGE_MODEL", "Latency", "RecordedProvider", "RoutingData"]

JUDGE_MODEL = "oracle-judge"
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "routing"


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)


@dataclass(slots=True)
class Prompt:
    id: str
    text: str
    dataset: str
    input_tokens: int
    reference: str


class RoutingData:
    """The routing data folder, indexed; `models` limits the (large) outputs loaded to those models."""

    def __init__(self, folder: str | Path = DEFAULT_DATA, models: Collection[str] | None = None) -> None:
        self.folder = Path(folder)
        wanted = set(models) if models is not None else None
        self.prompts: dict[str, Prompt] = {}
        for r in _rows(self.folder / "prompts.jsonl.gz"):
            self.prompts[r["prompt_id"]] = Prompt(
                r["prompt_id"], r["prompt"], r["dataset"], int(r["input_tokens"]), str(r["reference_answer"])
            )
        self.by_text = {p.text: p.id for p in self.prompts.values()}
        self.quality: dict[tuple[str, str], float] = {}  # (prompt id, model) -> 1.0 right / 0.0 wrong
        self.output_tokens: dict[tuple[str, str], int] = {}
        for name in ("outcomes.jsonl.gz", "outcomes_extra.jsonl.gz"):
            for r in _rows(self.folder / name):
                key = (r["prompt_id"], r["model"])
                self.quality[key] = float(r["quality"])
                self.output_tokens[key] = int(r["output_tokens"])
        self.outputs: dict[tuple[str, str], str] = {}
        self.answers: dict[str, dict[str, float]] = {}  # prompt id -> answer text -> quality
        for name in ("outputs.jsonl.gz", "outputs_extra.jsonl.gz"):
            for r in _rows(self.folder / name):
                if wanted is not None and r["model"] not in wanted:
                    continue
                key = (r["prompt_id"], r["model"])
                self.outputs[key] = r["text"]
                self.answers.setdefault(r["prompt_id"], {})[r["text"]] = self.quality.get(key, 0.0)

    def models(self) -> set[str]:
        return {m for _, m in self.quality}

    def answer_quality(self, prompt_id: str, text: str) -> float | None:
        """Correctness of an answer text to a prompt (None if no loaded model gave it). A text the judge
        prompt clipped in the middle is matched on its head and tail."""
        known = self.answers.get(prompt_id, {})
        if text in known:
            return known[text]
        if "characters omitted ...]" in text:
            head, _, rest = text.partition("\n[... ")
            tail = rest.split("characters omitted ...]\n", 1)[-1]
            for full, q in known.items():
                if full.startswith(head) and full.endswith(tail):
                    return q
        return None


@dataclass(frozen=True, slots=True)
class Latency:
    """Simulated timing: `ttft_s` before the first token, then `tokens_per_s` (per model, else default)."""

    ttft_s: float = 0.0
    tokens_per_s: float | None = None  # None: the answer streams at once
    per_model: dict[str, float] = field(default_factory=dict)

    def behaviour(self, model: str, output_tokens: int, events: int) -> Behaviour:
        out: Behaviour = {"delay": self.ttft_s} if self.ttft_s else {}
        tps = self.per_model.get(model, self.tokens_per_s)
        if tps and events > 1:
            gap = output_tokens / tps / (events - 1)
            if gap >= 0.001:  # below the event loop's timer resolution: stream at once
                out["chunk_delay"] = gap
        return out


def _unit(*parts: str) -> float:
    """A deterministic number in [0, 1) from text."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _last_user_text(messages: list[Any]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


_BEHAVIOUR: contextvars.ContextVar[Behaviour | None] = contextvars.ContextVar("recorded", default=None)


class RecordedState(SimState):
    """The simulator's state, whose behaviour for the request being answered was decided from its body
    (set per connection task in a context variable by `_RecordedConnection`)."""

    def take(self, model: str) -> Behaviour:
        decided = _BEHAVIOUR.get()
        return {**sb.static_behaviour(model), **decided} if decided is not None else super().take(model)


class _RecordedConnection(_Connection):
    def __init__(self, state: SimState, conns: set[_Connection], provider: RecordedProvider) -> None:
        super().__init__(state, conns)
        self.provider = provider

    async def _complete(self, req: _Request, body: Any, anthropic: bool) -> bool:
        if (
            isinstance(body, dict)
            and isinstance(body.get("messages"), list)
            and isinstance(body.get("model"), str)
        ):
            token = _BEHAVIOUR.set(self.provider.behaviour(body))
            try:
                return await super()._complete(req, body, anthropic)
            finally:
                _BEHAVIOUR.reset(token)
        return await super()._complete(req, body, anthropic)

    async def _stream(self, events: list[bytes], b: Behaviour, extra: list[tuple[str, str]]) -> bool:
        return await super()._stream(_coalesce(events, self.provider.words_per_chunk), b, extra)


def _coalesce(events: list[bytes], k: int) -> list[bytes]:
    """OpenAI stream events with up to `k` consecutive text deltas merged into one (fewer, bigger
    chunks: the same answer, cheaper to relay and parse in tests). Other events pass unchanged."""
    if k <= 1:
        return events
    out: list[bytes] = []
    group: list[dict[str, Any]] = []

    def flush() -> None:
        if group:
            first = group[0]
            first["choices"][0]["delta"]["content"] = "".join(
                g["choices"][0]["delta"]["content"] for g in group
            )
            out.append(b"data: " + json.dumps(first).encode() + b"\n\n")
            group.clear()

    for event in events:
        chunk: Any = None
        if event.startswith(b"data: {"):
            chunk = json.loads(event[6:])
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        delta = choices[0].get("delta") if isinstance(choices, list) and len(choices) == 1 else None
        if isinstance(delta, dict) and set(delta) == {"content"} and delta["content"]:
            group.append(chunk)
            if len(group) >= k:
                flush()
            continue
        flush()
        out.append(event)
    flush()
    return out


class RecordedProvider(Simulator):
    """The recorded provider on its own uvloop thread (like `Simulator`, whose API it keeps)."""

    def __init__(
        self,
        data: RoutingData,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: Latency | None = None,
        garble_first: float = 0.0,
        garble_always: float = 0.0,
        words_per_chunk: int = 1,
    ) -> None:
        super().__init__(host, port)
        self.state = RecordedState()
        self.data = data
        self.latency = latency or Latency()
        self.garble_first, self.garble_always = garble_first, garble_always
        self.words_per_chunk = words_per_chunk

    # answers -------------------------------------------------------------------------------------
    def behaviour(self, body: dict[str, Any]) -> Behaviour:
        model = str(body["model"]).split("@", 1)[0]
        messages: list[Any] = body["messages"]
        if model == JUDGE_MODEL:
            return self._judge(messages)
        prompt_id = self.data.by_text.get(_last_user_text(messages))
        text = self.data.outputs.get((prompt_id, model)) if prompt_id is not None else None
        if prompt_id is None or text is None:
            return {"status": 404}  # the simulator answers a provider-shaped 404
        tokens = self.data.output_tokens.get((prompt_id, model), max(1, len(text) // 4))
        usage = {"prompt_tokens": self.data.prompts[prompt_id].input_tokens, "completion_tokens": tokens}
        events = -(-len(text.split()) // self.words_per_chunk)
        return {"content": text, "usage": usage, **self.latency.behaviour(model, tokens, events)}

    def _judge(self, messages: list[Any]) -> Behaviour:
        parsed = judge.parse_judge_request(messages)
        if parsed is None:
            return {"content": "I cannot find the two answers to compare."}
        conversation, a, b = parsed
        prompt_id = self.data.by_text.get(conversation)
        qa = self.data.answer_quality(prompt_id, a) if prompt_id else None
        qb = self.data.answer_quality(prompt_id, b) if prompt_id else None
        retry = any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages)
        u = _unit(conversation, a, b)
        usage = {
            "prompt_tokens": sum(len(str(m.get("content", ""))) for m in messages) // 4,
            "completion_tokens": 24,
        }
        if (
            qa is None
            or qb is None
            or u < self.garble_always
            or (u < self.garble_always + self.garble_first and not retry)
        ):
            return {"content": "Both answers have their merits; it is hard to say.", "usage": usage}
        verdict = "A" if qa > qb else "B" if qb > qa else "TIE"
        reason = f"Answer A is {'right' if qa else 'wrong'}, answer B is {'right' if qb else 'wrong'}."
        return {"content": f"{reason}\nVERDICT: {verdict}", "usage": usage}

    # server --------------------------------------------------------------------------------------
    thread_name = "llmswitch-recorded"

    def _connection_factory(self) -> Callable[[], asyncio.Protocol]:
        """Connections that decide answers from the recorded data."""
        return functools.partial(_RecordedConnection, self.state, self._conns, self)

    def model_requests(self) -> list[tuple[str, str]]:
        """(model, last user message) of every completion request received, in order."""
        out = []
        for r in self.requests():
            body = r.get("body")
            if isinstance(body, dict) and isinstance(body.get("messages"), list):
                out.append((str(body.get("model")), _last_user_text(body["messages"])))
        return out


def write_log(data: RoutingData, path: str | Path, *, model: str, prompts: int, seed: int = 0) -> int:
    """A JSONL traffic log (`advise --log`): `prompts` random prompts with `model`'s recorded answers."""
    import random

    ids = sorted(pid for pid in data.prompts if (pid, model) in data.outputs)
    chosen = random.Random(seed).sample(ids, min(prompts, len(ids)))
    with open(path, "w", encoding="utf-8") as f:
        for pid in chosen:
            messages = [{"role": "user", "content": data.prompts[pid].text}]
            f.write(
                json.dumps({"messages": messages, "response": data.outputs[pid, model], "model": model})
                + "\n"
            )
    return len(chosen)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="llmswitch recorded provider (answers from recorded outputs)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="routing data folder")
    p.add_argument("--models", help="comma-separated models to load (default: all)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8902)
    p.add_argument("--ttft", type=float, default=0.05, help="simulated time to first token, seconds")
    p.add_argument("--tokens-per-s", type=float, default=200.0, help="simulated output speed")
    p.add_argument(
        "--write-log", metavar="FILE", help="write a JSONL traffic log for `advise --log` and exit"
    )
    p.add_argument("--log-model", default="gpt-4o-2024-08-06", help="whose recorded answers the log holds")
    p.add_argument("--log-prompts", type=int, default=300, help="how many prompts the log holds")
    args = p.parse_args(argv)
    models = args.models.split(",") if args.models else None
    if args.write_log:
        data = RoutingData(args.data, models or [args.log_model])
        n = write_log(data, args.write_log, model=args.log_model, prompts=args.log_prompts)
        print(f"wrote {n} {args.log_model} exchanges to {args.write_log}")
        return
    data = RoutingData(args.data, models)
    latency = Latency(ttft_s=args.ttft, tokens_per_s=args.tokens_per_s)
    provider = RecordedProvider(
        data, host=args.host, port=args.port, latency=latency, words_per_chunk=4
    ).start()
    print(f"llmswitch recorded provider listening on {provider.url} (OpenAI: {provider.url}/v1)", flush=True)
    provider.run_until_interrupted()


if __name__ == "__main__":
    main()
