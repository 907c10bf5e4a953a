"""`llmswitch advise`: replay a sample of your traffic on candidate models through the gateway, have a
judge compare each answer with the baseline's, and report quality, cost and latency with intervals.

Wire it into the main CLI with `register(subparsers)`; `main(argv)` runs it standalone
(`python -m llmswitch.advisor ...`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

from llmswitch.advisor.embedded import (
    EmbeddedGateway,
    LedgerCosts,
    embedded_config,
    storage_url,
    user_config_data,
)
from llmswitch.advisor.judge import JUDGE_PROMPT_VERSION
from llmswitch.advisor.progress import Progress
from llmswitch.advisor.replay import GatewayDown, Replayer
from llmswitch.advisor.runner import Plan, Runner, RunResult
from llmswitch.advisor.sampling import stratified_sample
from llmswitch.advisor.state import DEFAULT_ROOT, RunState
from llmswitch.advisor.stopping import StopRule
from llmswitch.advisor.traffic import Traffic, for_baseline, from_jsonl, from_logged
from llmswitch.config import ConfigError

__all__ = ["add_arguments", "main", "register", "run"]


class Window(NamedTuple):
    text: str  # as given, e.g. "7d"
    seconds: float


def _window(text: str) -> Window:
    from llmswitch.cli import parse_duration  # the main CLI's own parser: same syntax everywhere

    return Window(text.strip(), parse_duration(text))


def _models(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one model")
    return names


def _fraction(text: str) -> float:
    v = float(text.rstrip("%")) / (100 if text.endswith("%") or float(text.rstrip("%")) > 1 else 1)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError("give a rate between 0 and 1 (or a percentage)")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config (default: ./llmswitch.yaml, else the built-in default)")
    p.add_argument("--baseline", required=True, help="the model you use now (a model name from the config)")
    p.add_argument("--candidates", required=True, type=_models, help="models to try, comma-separated")
    p.add_argument("--judge", required=True, help="the model that compares answers (from the config)")
    p.add_argument("--sample", type=int, default=200, help="requests to replay (default: 200)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--since", type=_window, help="logged traffic of this window (default: 7d)")
    src.add_argument(
        "--log", help="a JSONL file of {messages, response, model} records instead of the ledger"
    )
    p.add_argument("--budget-usd", type=float, help="stop before spending more than this (replays and judge)")
    p.add_argument("--concurrency", type=int, default=4, help="calls in flight at once (default: 4)")
    p.add_argument(
        "--threshold",
        type=_fraction,
        default=0.9,
        help="the not-worse rate a candidate must reach (default: 0.9); early stopping decides on it",
    )
    p.add_argument(
        "--out", help="write an HTML report here (and the raw verdicts as .verdicts.jsonl next to it)"
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the summary")
    p.add_argument("--seed", type=int, default=0, help="sampling and bootstrap seed (default: 0)")
    p.add_argument(
        "--state-dir", default=DEFAULT_ROOT, help=f"where runs are kept to resume (default: {DEFAULT_ROOT})"
    )
    p.add_argument("--fresh", action="store_true", help="discard this run's saved state and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the `advise` subcommand; its `func` default runs it (returns the exit code)."""
    p = subparsers.add_parser(
        "advise",
        help="should you switch? replay your traffic on cheaper models and measure quality, cost, latency",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def _load_traffic(args: argparse.Namespace, data: dict[str, Any]) -> tuple[Traffic, str]:
    """The traffic and the state-key part that identifies it."""
    if args.log:
        path = Path(args.log)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return from_jsonl(path), f"log:{path.resolve()}:{digest}"
    window: Window = args.since or _window("7d")
    url = storage_url(data)
    traffic = from_logged(url, window.seconds)
    traffic.source = f"{traffic.source}, last {window.text}"
    return traffic, f"ledger:{url}:{window.seconds}"


def _error(message: str) -> int:
    print(f"llmswitch advise: {message}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    from llmswitch.ledger.usage import LedgerNotFound

    if args.sample < 1 or args.concurrency < 1:
        return _error("--sample and --concurrency must be at least 1")
    if args.baseline in args.candidates or args.judge in args.candidates:
        return _error("a candidate cannot also be the baseline or the judge")
    data, config_label = user_config_data(args.config)
    try:
        traffic, source_key = _load_traffic(args, data)
    except (OSError, LedgerNotFound) as e:
        return _error(str(e))
    population, described = for_baseline(traffic, args.baseline)
    config_text = json.dumps(data, sort_keys=True, default=str)
    params = {
        "source": source_key,
        "sample": args.sample,
        "seed": args.seed,
        "baseline": args.baseline,
        "judge": args.judge,
        "judge_prompt_version": JUDGE_PROMPT_VERSION,
        "config": hashlib.sha256(config_text.encode()).hexdigest()[:16],
    }
    state = RunState(Path(args.state_dir), params, fresh=args.fresh)
    sample = state.load_sample()
    if sample is None:
        sample = stratified_sample(population, args.sample, args.seed)
        state.save_sample(sample)
    if not sample:
        skipped = ", ".join(f"{n} {why}" for why, n in traffic.skipped.items()) or "none read"
        return _error(f"no replayable requests in {traffic.source} ({skipped})")
    gateway = EmbeddedGateway(
        embedded_config(data, {args.baseline, *args.candidates, args.judge}, state.dir / "ledger.db"),
        state.dir,
    )
    gateway.validate()
    plan = Plan(
        baseline=args.baseline,
        candidates=list(args.candidates),
        judge=args.judge,
        sample=sample,
        concurrency=args.concurrency,
        budget_usd=args.budget_usd,
        rule=StopRule(threshold=args.threshold, sample=len(sample), candidates=len(args.candidates)),
    )
    info = {
        "config": config_label,
        "source": traffic.source,
        "traffic": described,
        "skipped": dict(traffic.skipped),
        "seed": args.seed,
        "budget_usd": args.budget_usd,
        "state_dir": str(state.dir.resolve()),
        "resumed": state.resumed,
    }
    progress = Progress(len(sample), enabled=not args.quiet)
    try:
        gateway.start()
        result = asyncio.run(_replay(plan, state, gateway, progress))
    except KeyboardInterrupt:
        progress.finish(f"interrupted; run the same command again to resume (state in {state.dir})")
        return 130
    except GatewayDown as e:
        progress.finish()
        return _error(f"the embedded gateway stopped answering ({e}); its log ends:\n{gateway.tail()}")
    except RuntimeError as e:
        return _error(str(e))
    finally:
        gateway.stop()
        state.close()
    progress.finish()
    _output(args, plan, state, result, info)
    return 0


async def _replay(plan: Plan, state: RunState, gateway: EmbeddedGateway, progress: Progress) -> RunResult:
    replayer = Replayer(gateway.url, state.key)
    try:
        return await Runner(plan, state, replayer, LedgerCosts(state.dir / "ledger.db"), progress).run()
    finally:
        await replayer.close()


def _output(
    args: argparse.Namespace, plan: Plan, state: RunState, result: RunResult, info: dict[str, Any]
) -> None:
    from llmswitch.advisor.html import render_html
    from llmswitch.advisor.report import format_summary
    from llmswitch.advisor.results import summarize, verdict_rows

    summary = summarize(plan, state, result, info)
    if args.out:
        out = Path(args.out)
        rows = verdict_rows(plan, state, result)
        verdicts = out.with_name(out.stem + ".verdicts.jsonl")
        with verdicts.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.write_text(render_html(summary, rows, verdicts.name), encoding="utf-8")
        summary["run"]["report"] = str(out)
        summary["run"]["verdicts"] = str(verdicts)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(format_summary(summary))
        if args.out:
            print(f"\nReport: {summary['run']['report']} (raw verdicts: {summary['run']['verdicts']})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="llmswitch advise", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except ConfigError as e:
        print(f"llmswitch: config error: {e}", file=sys.stderr)
        return 2
