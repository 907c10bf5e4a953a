"""``llmswitch router train|eval|bench``: wired into the main CLI with :func:`register`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["cmd_bench", "cmd_eval", "cmd_train", "register"]


def _featurizer(name: str) -> dict[str, Any]:
    if name == "lexical":
        return {"kind": "lexical", "hash_dim": 0}
    if name == "lexical-hash":
        return {"kind": "lexical", "hash_dim": 1024}
    if name == "minilm":
        return {"kind": "minilm", "max_tokens": 256}
    raise argparse.ArgumentTypeError(f"unknown featurizer {name!r}")


def cmd_train(args: argparse.Namespace) -> int:
    from llmswitch.routing.auto.train import train_from_dir, train_from_records

    if args.from_ledger:
        from llmswitch.cli import load_config_or_default, parse_duration
        from llmswitch.ledger.feedback import scored_examples

        url = load_config_or_default(args.config).storage.url
        records = scored_examples(url, since_seconds=parse_duration(args.since) if args.since else None)
        print(f"{len(records)} scored answers with logged prompts in the ledger", file=sys.stderr)
        try:
            trained = train_from_records(records, args.out)
        except ValueError as e:
            print(f"llmswitch: {e} (send POST /v1/feedback and turn on logging.bodies)", file=sys.stderr)
            return 1
        print(f"router model written to {args.out}: {len(trained.models)} models", file=sys.stderr)
        return 0
    if not args.data:
        print("llmswitch: router train needs --data DIR or --from-ledger", file=sys.stderr)
        return 2
    model = train_from_dir(
        args.data,
        args.out,
        featurizer=_featurizer(args.features),
        candidates=args.candidates.split(",") if args.candidates else None,
    )
    info = model.info
    print(
        f"router model written to {args.out}: {len(model.models)} models, strong {model.strong}, "
        f"cascade {' -> '.join(model.order)}, trained on {info.get('prompts')} prompts "
        f"in {info.get('train_seconds', '?')} s",
        file=sys.stderr,
    )
    return 0


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "never"
    return f"{100 * v:.1f} %" if pct else f"{v:.4f}"


def _interval(v: list[float] | None) -> str:
    return "–" if v is None else f"[{100 * v[0]:.1f} %, {100 * v[1]:.1f} %]"


def cmd_eval(args: argparse.Namespace) -> int:
    from llmswitch.routing.auto.evaluate import evaluate, plot

    report = evaluate(
        args.data,
        args.model if args.model else True,
        subsample=args.subsample,
        candidates=args.candidates.split(",") if args.candidates else None,
        primary=args.primary,
        train_kwargs={"featurizer": _featurizer(args.features)} if not args.model else None,
    )
    if args.plot:
        plot(report, args.plot)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    b = report["best_single"]
    print(f"test prompts: {report['test_prompts']} (trained on {report['train_prompts']})")
    print(f"best single: {b['model']}  quality {b['quality']:.4f}  cost/prompt ${b['cost_per_prompt']:.6f}")
    print(f"oracle quality: {report['oracle_quality']:.4f}")
    print(
        f"{'strategy':<11} {'match best at':>14} {'q@10% cost':>11} {'q@30% cost':>11} {'APGR':>7} {'AIQ':>7}"
    )
    for name, st in report["strategies"].items():
        print(
            f"{name:<11} {_fmt(st['cost_to_match_best'], True):>14} "
            f"{_fmt(st['quality_at_10pct_cost'], True):>11} "
            f"{_fmt(st['quality_at_30pct_cost'], True):>11} {_fmt(st['apgr']):>7} {_fmt(st['aiq']):>7}"
        )
    print("(match best at = router cost / best single's cost; q@x% = router quality / best single's quality)")
    print("95 % bootstrap intervals over the test prompts:")
    for name, st in report["strategies"].items():
        ci = st["intervals_95"]
        print(
            f"{name:<11} match best at {_interval(ci['cost_to_match_best'])} "
            f"(matched in {100 * ci['share_of_resamples_matching_best']:.0f} % of resamples), "
            f"q@10% {_interval(ci['quality_at_10pct_cost'])}, q@30% {_interval(ci['quality_at_30pct_cost'])}"
        )
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from llmswitch.routing.auto.config import AutoRouteConfig
    from llmswitch.routing.auto.data import load_routing_data
    from llmswitch.routing.auto.model import RouterModel
    from llmswitch.routing.auto.strategies import benchmark_predictive

    model = RouterModel.load(args.model)
    data = load_routing_data(args.data, outputs=False)
    prompts = data.prompts[: args.n]
    benchmark_predictive(AutoRouteConfig(strategy="predictive"), model, prompts, repeat=args.repeat)
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``router`` (train / eval / bench) to an ``argparse`` sub-parser collection."""
    r = subparsers.add_parser("router", help="train and evaluate the auto router")
    sub = r.add_subparsers(dest="router_command", required=True)

    t = sub.add_parser("train", help="fit a router model file from outcome data")
    t.add_argument("--data", help="folder in the routing-data format")
    t.add_argument(
        "--from-ledger", action="store_true", help="train on logged prompts scored by /v1/feedback"
    )
    t.add_argument("--config", help="gateway config whose ledger to read (with --from-ledger)")
    t.add_argument("--since", help="with --from-ledger: only this recent, e.g. 30d")
    t.add_argument("--out", required=True, help="model file to write (.npz)")
    t.add_argument("--features", default="lexical", choices=["lexical", "lexical-hash", "minilm"])
    t.add_argument("--candidates", help="comma-separated models (default: those with every outcome)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="train on split.json train ids, replay test ids, report the curve")
    e.add_argument("--data", required=True, help="folder in the routing-data format")
    e.add_argument("--model", help="evaluate this model file instead of training one on the train ids")
    e.add_argument("--json", action="store_true", help="print the full report as JSON")
    e.add_argument("--plot", help="write the cost-quality plot to this PNG")
    e.add_argument("--subsample", type=int, help="evaluate on this many random test prompts (CI)")
    e.add_argument("--features", default="lexical", choices=["lexical", "lexical-hash", "minilm"])
    e.add_argument("--candidates", help="comma-separated models (default: those with every outcome)")
    e.add_argument("--primary", default="hybrid", choices=["predictive", "cascade", "hybrid"])
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("bench", help="decision overhead of the predictive strategy (p50/p99 ms)")
    b.add_argument("--model", required=True)
    b.add_argument("--data", required=True, help="prompts to time (routing-data folder)")
    b.add_argument("-n", type=int, default=500)
    b.add_argument("--repeat", type=int, default=3)
    b.set_defaults(func=cmd_bench)
    parser: argparse.ArgumentParser = r
    return parser


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m llmswitch.routing.auto.cli router ...``)."""
    p = argparse.ArgumentParser(prog="llmswitch")
    register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
