"""The gateway `advise` replays through: `llmswitch serve` on a loopback port, from the user's config.

Replays go through the real gateway (routing, failover, translation, pricing) rather than a copy of
its logic, so what is measured is what production would do. The config is the user's, reduced to what
the run needs and made private to the run:

- only the baseline, candidates, judge and their fallbacks are kept, with their providers (unused
  providers' key variables need not be set, unused local engines are not started);
- the ledger is the run's own ``ledger.db`` (replay spend stays out of your usage reports, and costs
  of streamed replays are read back from it by request id), flushed every 50 ms;
- client auth is dropped (loopback, one process), and body logging is off (no replay is ever logged
  as traffic to replay).

`${VAR}` references are kept as they are: the gateway substitutes them, and no key is written to disk.
The child gets SIGTERM if this process dies (Linux `PR_SET_PDEATHSIG`), so a killed run leaves no
gateway behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import IO, Any

import yaml

from llmswitch.config import ConfigError, load_config, substitute_env

__all__ = ["EmbeddedGateway", "LedgerCosts", "embedded_config", "user_config_data"]

DEFAULT_CONFIG = "llmswitch.yaml"


def user_config_data(path: str | None) -> tuple[dict[str, Any], str]:
    """The user's config as raw YAML data (no `${VAR}` substituted) and a label for it; like `serve`:
    ./llmswitch.yaml if present, else the built-in default."""
    if path is None and Path(DEFAULT_CONFIG).exists():
        path = DEFAULT_CONFIG
    if path is None:
        from llmswitch.defaults import default_config_data

        return default_config_data(os.environ), "built-in default config"
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data, str(path)


def storage_url(data: Mapping[str, Any]) -> str:
    storage = data.get("storage")
    url = storage.get("url") if isinstance(storage, dict) else None
    return substitute_env(str(url)) if url else "sqlite:///llmswitch.db"


def _needed(models: Mapping[str, Any], wanted: Collection[str]) -> list[str]:
    out: list[str] = []
    todo = list(wanted)
    while todo:
        name = todo.pop(0)
        if name in out:
            continue
        if name not in models:
            known = ", ".join(sorted(models)) or "none"
            raise ConfigError(f"model {name!r} is not in the config (configured: {known})")
        out.append(name)
        spec = models[name] if isinstance(models[name], dict) else {}
        todo += [f for f in spec.get("fallbacks") or [] if isinstance(f, str)]
    return out


def embedded_config(data: Mapping[str, Any], models: Collection[str], ledger: Path) -> dict[str, Any]:
    """The run's gateway config: `data` reduced to `models` (and their fallbacks), private ledger."""
    all_models = data.get("models") if isinstance(data.get("models"), dict) else {}
    assert isinstance(all_models, dict)
    keep = _needed(all_models, models)
    kept_models = {name: all_models[name] for name in keep}
    used = {d.get("provider") for m in kept_models.values() for d in (m or {}).get("deployments") or []}
    providers = data.get("providers") if isinstance(data.get("providers"), dict) else {}
    assert isinstance(providers, dict)
    out: dict[str, Any] = {
        "storage": {"url": f"sqlite:///{ledger.resolve()}"},
        "providers": {name: p for name, p in providers.items() if name in used},
        "models": kept_models,
        "ledger": {**(data.get("ledger") or {}), "flush_interval": 0.05},
        "logging": {"level": "warning", "bodies": False},
    }
    if "routing" in data:
        out["routing"] = data["routing"]
    return out


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedGateway:
    def __init__(self, config: dict[str, Any], workdir: Path) -> None:
        self.workdir = workdir
        self.config_path = workdir / "gateway.yaml"
        self.log_path = workdir / "gateway.log"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.url = ""

    def validate(self) -> None:
        """Load the config as the gateway will (env variables, presets), for an early, clear error."""
        load_config(self.config_path)

    def start(self, timeout: float = 120.0) -> str:
        self._log = self.log_path.open("wb")
        cmd = [sys.executable, "-m", "llmswitch", "serve", "--config", str(self.config_path)]
        self.proc = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1", "--port", "0"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        end = time.monotonic() + timeout  # local engines (llama.cpp) may take a while to load
        while time.monotonic() < end:
            m = re.search(r"listening on (http://[\d.]+:\d+)", self.log_path.read_text(errors="replace"))
            if m:
                self.url = m.group(1)
                return self.url
            if self.proc.poll() is not None:
                raise RuntimeError(f"the embedded gateway exited at start-up:\n{self.tail()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the embedded gateway did not start in {timeout:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, which drains in-flight requests and flushes the ledger; SIGKILL if it hangs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


class LedgerCosts:
    """Costs of finished requests, read back from the embedded gateway's ledger by request id (the
    gateway prices streamed answers in its ledger, not in a header)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lookup(self, request_ids: Collection[str]) -> dict[str, float | None]:
        """Cost (summed over attempts; None = no known price) of each id whose final row is written."""
        if not request_ids or not self.path.exists():
            return {}
        out: dict[str, float | None] = {}
        ids = list(request_ids)
        try:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)
        except sqlite3.OperationalError:
            return {}
        try:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = con.execute(
                    f"SELECT request_id, SUM(cost_usd), COUNT(cost_usd),"
                    f" SUM(status IN ('ok', 'truncated')) FROM attempts WHERE request_id IN ({marks})"
                    " GROUP BY request_id",
                    chunk,
                ).fetchall()
                for rid, total, priced, finished in rows:
                    if finished:
                        out[rid] = float(total) if priced else None
        except sqlite3.OperationalError:  # no table yet: the writer has not flushed its first batch
            return out
        finally:
            con.close()
        return out
