"""Run a real gateway process on 127.0.0.1 for tests, and read what it wrote."""

from __future__ import annotations

import http.client
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

UPSTREAM_KEY = "sk-upstream-SECRET-4f1d2c9e8b7a"  # must never leave the gateway towards a client or a file


class GatewayProcess:
    """`llmswitch serve` in a subprocess, its stdout/stderr captured to a file for leak checks."""

    def __init__(
        self,
        config: dict[str, Any] | None,
        workdir: Path,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        """`config=None` runs `llmswitch serve` with no config file: the built-in default."""
        self.workdir = workdir
        self.config_path = workdir / "llmswitch.yaml"
        self.db_path = workdir / ("ledger.db" if config is not None else "llmswitch.db")
        self.config_args: list[str] = []
        if config is not None:
            config.setdefault("storage", {"url": f"sqlite:///{self.db_path}"})
            self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
            self.config_args = ["--config", str(self.config_path)]
        self.log_path = workdir / "gateway.log"
        self.env = {**os.environ, **(env or {})}
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 20.0) -> GatewayProcess:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llmswitch",
                "serve",
                *self.config_args,
                "--port",
                "0",
                *self.args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=self.env,
        )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(r"listening on (http://[\d.]+:\d+)", self.log_path.read_text(errors="replace"))
            if m:
                self.url = m.group(1)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited at start-up:\n{self.log()}")
            time.sleep(0.05)
        raise RuntimeError(f"gateway did not start:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self._log.close()
        return rc

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ledger(self, *, at_least: int = 0, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Rows of the attempts table, waiting (the writer batches every 0.2 s) until `at_least` are there."""
        end = time.monotonic() + timeout
        while True:
            rows: list[dict[str, Any]] = []
            if self.db_path.exists():
                con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
                con.row_factory = sqlite3.Row
                try:
                    rows = [dict(r) for r in con.execute("SELECT * FROM attempts ORDER BY id")]
                except sqlite3.OperationalError:
                    rows = []
                finally:
                    con.close()
            if len(rows) >= at_least or time.monotonic() > end:
                return rows
            time.sleep(0.05)

    def rows_for(self, request_id: str, *, at_least: int = 1) -> list[dict[str, Any]]:
        end = time.monotonic() + 5.0
        while True:
            rows = [r for r in self.ledger() if r["request_id"] == request_id]
            if len(rows) >= at_least or time.monotonic() > end:
                return sorted(rows, key=lambda r: r["attempt"])
            time.sleep(0.05)


def provider(sim_url: str, **extra: Any) -> dict[str, Any]:
    return {"api": "openai", "base_url": f"{sim_url}/v1", "api_key": UPSTREAM_KEY, **extra}


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP exchange (http.client), for what the SDKs will not send: bad bodies, odd methods."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request(
            method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers or {}
        )
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def routing_data_dir() -> Path:
    """The published routing outcome data: $LLMSWITCH_ROUTING_DATA, else ../shared next to the checkout,
    else the workplace's /work/shared (CI clones elsewhere). Tests that need it skip when none exists."""
    env = os.environ.get("LLMSWITCH_ROUTING_DATA")
    candidates = [Path(env)] if env else []
    candidates += [
        Path(__file__).resolve().parents[2] / "shared/data/routing",
        Path("/work/shared/data/routing"),
    ]
    return next((c for c in candidates if (c / "prompts.jsonl.gz").exists()), candidates[0])
