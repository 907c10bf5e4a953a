"""`llmswitch rankings`: the dashboard's figures in the terminal (or as JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from llmswitch.config import Config
from llmswitch.dashboard.rankings import RankingOptions, rankings
from llmswitch.policy.rules import self_hosted_providers

__all__ = ["options_from", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the `rankings` subcommand; its `func` default runs it (returns the exit code)."""
    from llmswitch.cli import DEFAULT_CONFIG, parse_duration

    p = subparsers.add_parser(
        "rankings",
        help="top models by tokens, share by origin, open weights, lab and task category; spend and savings",
    )
    p.add_argument("--config", help=f"YAML config (default: ./{DEFAULT_CONFIG})")
    p.add_argument("--ledger", help="ledger URL instead of the config's storage.url (e.g. sqlite:///x.db)")
    p.add_argument("--since", type=parse_duration, default=parse_duration("7d"), help="window, e.g. 24h, 7d")
    p.add_argument("--baseline", default="gpt-4.1", help="savings against this model's list price")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
    return p


def options_from(config: Config, since_seconds: float, baseline: str | None) -> RankingOptions:
    bucket = 3_600.0 if since_seconds <= 2 * 86_400 else 86_400.0
    return RankingOptions(
        since_seconds=since_seconds,
        bucket_seconds=bucket,
        baseline=baseline or None,
        self_hosted=self_hosted_providers(config),
    )


def run(args: argparse.Namespace) -> int:
    from llmswitch.cli import load_config_or_default
    from llmswitch.ledger.usage import LedgerNotFound

    config = load_config_or_default(args.config)
    url = args.ledger or config.storage.url
    try:
        data = rankings(url, options_from(config, args.since, args.baseline))
    except LedgerNotFound as e:
        print(f"llmswitch: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_text(data))
    return 0


def format_text(data: dict[str, Any]) -> str:
    t = data["total"]
    lines = [f"{t['requests']:,} requests served, {t['tokens']:,} tokens, ${t['cost_usd']:.6f}"]
    s = data["savings"]
    if s and "error" not in s:
        lines.append(
            f"on {s['baseline']} the same tokens would have cost ${s['baseline_cost_usd']:.6f}: "
            f"saved ${s['saved_usd']:.6f} ({_pct(s['saved_share'])})"
        )
    elif s:
        lines.append(s["error"])
    head = f"{'#':>3} {'model':36} {'lab':14} {'origin':6} {'weights':7} {'tokens':>12} {'share':>7} "
    head += f"{'cost':>12}"
    lines += ["", head]
    for i, m in enumerate(data["models"], 1):
        weights = {True: "open", False: "closed", None: "?"}[m["open_weights"]]
        lines.append(
            f"{i:>3} {m['model'][:36]:36} {(m['lab'] or '?')[:14]:14} {(m['origin'] or '?'):6} {weights:7} "
            f"{m['tokens']:>12,} {_pct(m['token_share']):>7} {m['cost_usd']:>12.6f}"
        )
    for title, key in (
        ("origin", "origins"),
        ("weights", "weights"),
        ("hosting", "hosting"),
        ("key", "keys"),
    ):
        shares = ", ".join(f"{r['name']} {_pct(r['token_share'])}" for r in data[key])
        lines.append(f"by {title}: {shares or '-'}")
    c = data["categories"]
    if c["classified"]:
        cats = ", ".join(f"{r['category']} {_pct(r['share'])}" for r in c["rows"])
        lines.append(f"by task category ({c['classified']:,} logged prompts): {cats}")
    else:
        lines.append("by task category: no logged prompts (turn on logging.bodies)")
    return "\n".join(lines)


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"
