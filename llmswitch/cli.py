"""The `llmswitch` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

from llmswitch.config import Config, ConfigError, load_config

DEFAULT_CONFIG = "llmswitch.yaml"


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def load_config_or_default(path: str | None) -> Config:
    if path is None and Path(DEFAULT_CONFIG).exists():
        path = DEFAULT_CONFIG
    if path is None:
        from llmswitch.defaults import default_config

        return default_config(os.environ)
    return load_config(path)


def parse_duration(text: str) -> float:
    """`7d`, `12h`, `30m`, `45s` → seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use e.g. 30m, 12h, 7d)")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def cmd_serve(args: argparse.Namespace) -> int:
    from llmswitch.runner import bind, main_serve

    config = load_config_or_default(args.config)
    _setup_logging(config.logging.level)
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    try:
        sock = bind(host, port)
    except OSError as e:
        print(f"llmswitch: cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
        return 1
    main_serve(config, sock, args.workers)
    return 0


def cmd_native(args: argparse.Namespace) -> int:
    from llmswitch import native

    if args.action == "build":
        try:
            print(f"llmswitch native: {native.build()}")
        except Exception as e:  # no compiler, no mypy: the gateway runs as pure Python
            print(f"llmswitch native: build failed ({e}); the gateway runs as pure Python", file=sys.stderr)
            return 1
    else:
        print(f"llmswitch native: {native.STATE}")
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    from llmswitch.ledger.usage import LedgerNotFound, format_table, usage_report, usage_total

    url = args.ledger or load_config_or_default(args.config).storage.url
    try:
        rows = usage_report(url, since_seconds=args.since, by=args.by)
        total = usage_total(url, since_seconds=args.since)
    except LedgerNotFound as e:
        print(f"llmswitch: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps({"by": args.by, "since_seconds": args.since, "rows": rows, "total": total}, indent=2)
        )
    else:
        print(format_table(rows, total=total))
    return 0


# Commands defined in this module. `serve` must not pay for the others' imports: the advisor's alone
# would add ~550 modules and ~13 MB to every gateway process.
_CORE_COMMANDS = ("serve", "usage", "native")


def build_parser(full: bool = True) -> argparse.ArgumentParser:
    """The command line; `full=False` leaves out the subcommands defined (and imported) elsewhere."""
    p = argparse.ArgumentParser(prog="llmswitch", description="The cheapest model that is good enough.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument(
        "--config",
        help=f"YAML config (default: ./{DEFAULT_CONFIG}, else the built-in default: a local open-weight model"
        " plus every provider preset whose API key is set)",
    )
    s.add_argument("--host", help="listen address (default: server.host, 127.0.0.1)")
    s.add_argument("--port", type=int, help="listen port (default: server.port, 4000)")
    s.add_argument("--workers", type=int, default=1, help="worker processes, one per core (default: 1)")
    s.set_defaults(func=cmd_serve)

    u = sub.add_parser("usage", help="requests, tokens, cost, error rate and latency from the ledger")
    u.add_argument("--config", help=f"YAML config (default: ./{DEFAULT_CONFIG})")
    u.add_argument("--ledger", help="ledger URL instead of the config's storage.url (e.g. sqlite:///x.db)")
    u.add_argument("--since", type=parse_duration, default=parse_duration("7d"), help="window, e.g. 24h, 7d")
    u.add_argument("--by", choices=["model", "provider", "tag", "key", "upstream_model"], default="model")
    u.add_argument("--json", action="store_true", help="machine-readable output")
    u.set_defaults(func=cmd_usage)

    n = sub.add_parser("native", help="the compiled request path: `status`, or `build` it with mypyc")
    n.add_argument("action", choices=["status", "build"])
    n.set_defaults(func=cmd_native)
    if not full:
        return p

    from llmswitch.pricing.cli import register as register_prices
    from llmswitch.pricing.selfhost import self_hosted_candidates

    register_prices(sub, extra_candidates=self_hosted_candidates)

    from llmswitch.routing.auto.cli import register as register_router

    register_router(sub)

    from llmswitch.advisor.cli import register as register_advise

    register_advise(sub)

    from llmswitch.dashboard.cli import register as register_rankings

    register_rankings(sub)

    from llmswitch.policy.keys_cli import register as register_keys

    register_keys(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    core = bool(argv) and argv[0] in _CORE_COMMANDS
    args = build_parser(full=not core).parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as e:
        print(f"llmswitch: config error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
