"""`llmswitch keys new`: a fresh client key, and the config entry that holds only its sha256.

The key is printed once, for the team that will use it; the config (and so the repository it lives in)
keeps its digest, which the gateway matches without ever storing the key.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import secrets

__all__ = ["new_key", "register"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def new_key() -> str:
    return "sk-llms-" + secrets.token_urlsafe(32)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "keys", help="client keys: `keys new --id ID` prints a key and its config entry"
    )
    sub = p.add_subparsers(dest="keys_command", required=True)
    n = sub.add_parser("new", help="a new client key (printed once) and its auth.keys entry (sha256 only)")
    n.add_argument("--id", required=True, help="the key's id: what the ledger and the dashboard show")
    n.add_argument("--admin", action="store_true", help="may see every key's figures (/dashboard)")
    n.add_argument("--policy", help="a name under `policies:`")
    n.add_argument("--budget", type=float, metavar="USD", help="spend limit per --period")
    n.add_argument("--period", choices=["day", "week", "month", "total"], default="month")
    n.add_argument("--rpm", type=int, help="requests per minute")
    n.add_argument("--json", action="store_true", help="machine-readable output")
    n.set_defaults(func=run_new)
    return p


def run_new(args: argparse.Namespace) -> int:
    if not _ID.fullmatch(args.id):
        raise SystemExit("llmswitch: --id: letters, digits, '_', '.', '-' (at most 64)")
    key = new_key()
    entry: dict[str, object] = {"id": args.id, "sha256": hashlib.sha256(key.encode()).hexdigest()}
    if args.admin:
        entry["admin"] = True
    if args.policy:
        entry["policy"] = args.policy
    if args.budget is not None:
        entry["budget"] = {"usd": args.budget, "period": args.period}
    if args.rpm is not None:
        entry["rpm"] = args.rpm
    if args.json:
        print(json.dumps({"key": key, "entry": entry}))
        return 0
    print(f"key (shown once; give it to the team): {key}")
    print("add under auth.keys in the config:")
    print(f"  - {json.dumps(entry)}")  # JSON is YAML: one flow mapping per key
    return 0
