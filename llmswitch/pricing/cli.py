"""`llmswitch prices`: $/Mtok, cost per 1,000 requests, "x cheaper than baseline", origin and open
weights for the configured deployments and notable models; `--from-ledger` reprices real traffic.

Wire it into the main CLI with `register(subparsers)`; `main(argv)` runs it standalone.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmswitch.pricing.compare import (
    Candidate,
    Comparison,
    Row,
    Traffic,
    Workload,
    catalog_candidates,
    compare,
    config_candidates,
    pick_baseline,
    read_traffic,
)

if TYPE_CHECKING:
    from llmswitch.config import Config

__all__ = ["ExtraCandidates", "add_arguments", "main", "register", "run"]

DEFAULT_CONFIG = "llmswitch.yaml"
DEFAULT_LEDGER = "sqlite:///llmswitch.db"

# Hook for rows from elsewhere (self-hosted deployments' effective $/Mtok): called with the loaded
# config (or None) and the pricing time.
ExtraCandidates = Callable[["Config | None", float], Iterable[Candidate]]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    extra_candidates: ExtraCandidates | None = None,
) -> argparse.ArgumentParser:
    """Add the `prices` subcommand; its `func` default runs it (returns the exit code)."""
    p = subparsers.add_parser(
        "prices",
        help="compare model prices: $/Mtok, cost per 1k requests, x cheaper than a baseline",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    add_arguments(p)
    p.set_defaults(func=lambda args: run(args, extra_candidates=extra_candidates))
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help=f"YAML config whose deployments to include (default: ./{DEFAULT_CONFIG})")
    p.add_argument("--baseline", default="gpt-4.1", help="model to compare against (default: gpt-4.1)")
    p.add_argument(
        "--workload",
        type=_workload,
        default=Workload(),
        metavar="IN:OUT[:CACHED]",
        help="tokens per request (default 2000:500)",
    )
    p.add_argument("--origin", help="only models from these countries, comma-separated (CN, US, FR, EU...)")
    p.add_argument("--open-weights", action="store_true", help="only open-weight models")
    p.add_argument("--models", help="comma-separated catalog models instead of the notable ones")
    p.add_argument(
        "--all-providers",
        action="store_true",
        help="every provider genai-prices lists, not only those with a provider preset",
    )
    p.add_argument("--from-ledger", action="store_true", help="reprice the ledger's real traffic on each row")
    p.add_argument("--since", type=_duration, default=_duration("7d"), help="ledger window (default 7d)")
    p.add_argument("--ledger", help="ledger URL (default: the config's storage.url)")
    p.add_argument(
        "--at", type=_instant, help="prices as of this time (ISO 8601 or unix seconds; default now)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="llmswitch prices", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    add_arguments(p)
    return run(p.parse_args(argv))


def run(args: argparse.Namespace, *, extra_candidates: ExtraCandidates | None = None) -> int:
    from llmswitch.catalog import default_catalog
    from llmswitch.config import ConfigError, load_config
    from llmswitch.ledger import LedgerNotFound
    from llmswitch.providers.presets import PRESETS

    at = time.time() if args.at is None else float(args.at)
    try:
        path = args.config or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).exists() else None)
        config = load_config(path) if path else None
    except ConfigError as e:
        print(f"llmswitch: config error: {e}", file=sys.stderr)
        return 2

    catalog = default_catalog()
    preset_ids = {p.pricing_provider for p in PRESETS.values() if p.pricing_provider}
    providers = None if args.all_providers else preset_ids
    regions: dict[str, str] = {}
    for preset in PRESETS.values():
        if preset.pricing_provider:
            regions.setdefault(preset.pricing_provider, preset.region)

    all_configured = config_candidates(config, catalog, at=at) if config else []
    configured = all_configured
    wanted = _split(args.models)
    if wanted:
        keys = {catalog.resolve(m) or m for m in wanted}
        configured = [
            c for c in all_configured if c.model in wanted or catalog.resolve(c.upstream_model) in keys
        ]
        model_ids = [m for m in wanted if not (config and m in config.models)]
    else:
        model_ids = list(catalog.notable())
    try:
        listed = catalog_candidates(catalog, model_ids, at=at, providers=providers, regions=regions)
    except KeyError as e:
        print(f"llmswitch: {e.args[0]}", file=sys.stderr)
        return 2

    traffic: Traffic | None = None
    if args.from_ledger:
        url = args.ledger or (config.storage.url if config else DEFAULT_LEDGER)
        try:
            traffic = read_traffic(url, since_seconds=args.since, now=at)
        except LedgerNotFound as e:
            print(f"llmswitch: {e}", file=sys.stderr)
            return 1

    baseline = pick_baseline(args.baseline, catalog, at=at, configured=all_configured, providers=providers)
    if baseline is None:
        print(f"llmswitch: no price for baseline {args.baseline!r}; x cheaper left out", file=sys.stderr)
    result = compare(
        [*configured, *listed],
        workload=args.workload,
        baseline=baseline,
        traffic=traffic,
        origins=_split(args.origin),
        open_weights_only=args.open_weights,
        extra=extra_candidates(config, at) if extra_candidates else (),
        at=at,
    )
    if args.json:
        print(json.dumps(to_json(result, args.since if args.from_ledger else None), indent=2))
    else:
        print(format_comparison(result))
    return 0


# -- output ----------------------------------------------------------------------------------------


def to_json(result: Comparison, since_seconds: float | None = None) -> dict[str, Any]:
    w = result.workload
    t = result.traffic
    return {
        "at": result.at,
        "prices_from": f"genai-prices {_genai_version()}",
        "workload": {
            "input_tokens": w.input_tokens,
            "cached_input_tokens": w.cached_input_tokens,
            "output_tokens": w.output_tokens,
        },
        "ledger": None
        if t is None
        else {
            "since_seconds": since_seconds,
            "requests": t.requests,
            "input_tokens": t.input_tokens,
            "cached_input_tokens": t.cached_input_tokens,
            "output_tokens": t.output_tokens,
            "actual_cost_usd": t.actual_cost_usd,
        },
        "baseline": None if result.baseline is None else _row_json(result.baseline),
        "rows": [_row_json(r) for r in result.rows],
    }


def _row_json(r: Row) -> dict[str, Any]:
    c = r.candidate
    rates = c.rates
    return {
        "model": c.model,
        "provider": c.provider,
        "upstream_model": c.upstream_model,
        "kind": c.kind,
        "source": c.source,
        "input_per_mtok": None if rates is None else rates.input,
        "output_per_mtok": None if rates is None else rates.output,
        "cached_input_per_mtok": None if rates is None else rates.cached_input,
        "cost_per_1k_requests": r.cost_per_1k,
        "ledger_cost_usd": r.traffic_cost,
        "times_cheaper": r.times_cheaper,
        "origin": c.origin,
        "lab": c.lab,
        "open_weights": c.open_weights,
        "licence": c.licence,
        "region": c.region,
    }


def format_comparison(result: Comparison) -> str:
    w, t, b = result.workload, result.traffic, result.baseline
    when = datetime.fromtimestamp(result.at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = []
    if t is None:
        cached = f" ({w.cached_input_tokens:,} cached)" if w.cached_input_tokens else ""
        lines.append(
            f"Workload: {w.input_tokens:,} input{cached} + {w.output_tokens:,} output tokens per request."
        )
        cost_header = "$/1k req"
    else:
        lines.append(
            f"Repricing {t.requests:,} served requests from the ledger: {_tokens(t.input_tokens)} input"
            f" ({_tokens(t.cached_input_tokens)} cached), {_tokens(t.output_tokens)} output tokens;"
            f" recorded spend {_usd(t.actual_cost_usd)}."
        )
        cost_header = "cost " + _window(t.since_seconds)
    if b is not None:
        lines.append(f"Baseline: {b.candidate.model} on {b.candidate.provider} ({_usd(b.cost)}).")
    lines.append(f"Prices: genai-prices {_genai_version()} at {when}; * = configured deployment.")
    lines.append("")
    header = [
        "model",
        "provider",
        "$/Mtok in",
        "$/Mtok out",
        cost_header,
        "x cheaper",
        "origin",
        "open weights",
    ]
    table = [header]
    for r in result.rows:
        c = r.candidate
        table.append(
            [
                ("*" if c.kind == "config" else "") + c.model,
                c.provider,
                _rate(None if c.rates is None else c.rates.input),
                _rate(None if c.rates is None else c.rates.output),
                _usd(r.cost),
                "-" if r.times_cheaper is None else f"{r.times_cheaper:.1f}x",
                c.origin or "?",
                _weights(c.open_weights, c.licence),
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    right = {2, 3, 4, 5}
    for n, row in enumerate(table):
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * wd for wd in widths))
    if len(table) == 1:
        lines.append("(no model matches)")
    return "\n".join(lines)


def _weights(open_weights: bool | None, licence: str | None) -> str:
    if open_weights is None:
        return "?"
    if not open_weights:
        return "no"
    return f"yes ({licence})" if licence else "yes"


def _rate(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def _usd(v: float | None) -> str:
    if v is None:
        return "-"
    return f"${v:,.2f}" if v >= 1 else f"${v:.4g}"


def _tokens(n: int) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def _window(seconds: float | None) -> str:
    if seconds is None:
        return "all time"
    for unit, div in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= div and seconds % div == 0:
            return f"{int(seconds // div)}{unit}"
    return f"{seconds:g}s"


def _genai_version() -> str:
    try:
        return metadata.version("genai-prices")
    except metadata.PackageNotFoundError:
        return "?"


# -- argument types -----------------------------------------------------------------------------------


def _split(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def _workload(text: str) -> Workload:
    try:
        return Workload.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _duration(text: str) -> float:
    # Own copy of the CLI's parser: importing llmswitch.cli here would be circular once it registers us.
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use e.g. 30m, 12h, 7d)")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def _instant(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid time {text!r} (ISO 8601 or unix seconds)") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


if __name__ == "__main__":
    sys.exit(main())
