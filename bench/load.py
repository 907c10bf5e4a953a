"""Load and probes: wrk cells, the raw-socket TTFB probe, the `auto` routing probe, readiness."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median_low
from typing import Any

import httptools
from fixtures import BODIES, CLIENT_KEY, ROUTED_BODIES
from procs import Proc, SetupError


@dataclass
class Ctx:
    work: Path
    duration: float
    warmup: int
    probe_seconds: float
    concurrency: tuple[int, ...]
    gw_cores: str | None  # the target's core(s)
    load_cores: str | None  # wrk, probe, upstream
    w2_cores: str | None
    upstream_port: int = 0
    upstream_pid: int = 0  # the fixed-answer nginx, whose CPU counts as load
    lua: dict[str, Path] = field(default_factory=dict)


def run_wrk(ctx: Ctx, url: str, mode: str, c: int, seconds: int) -> dict[str, Any]:
    """One wrk run: 1 thread, c connections, the mode's Lua script."""
    argv = [
        "wrk",
        "-t1",
        f"-c{c}",
        f"-d{max(seconds, 1)}s",
        "--timeout",
        "10s",
        "-s",
        str(ctx.lua[mode]),
        url,
    ]
    if ctx.load_cores:
        argv = ["taskset", "-c", ctx.load_cores, *argv]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    r: dict[str, Any] = json.loads(line[6:])
    r["errors"] = {k: int(r[k]) for k in ("connect", "read", "write", "status", "timeout")}
    return r


def run_cell(ctx: Ctx, url: str, mode: str, c: int, seconds: float, slices: int = 5) -> dict[str, Any]:
    """`seconds` of load as up to 5 wrk runs: req/s over them all, latency percentiles from the median run.

    wrk corrects its latency histogram for coordinated omission (a response slower than the mean interval
    adds synthetic samples), so one stall of a shared machine can swamp a run's p99; the median of five
    slices shrugs it off. Each slice's p99 stays in the JSON. Targets with latencies of seconds (LiteLLM)
    get one slice: short slices would end before their responses do.
    """
    n = max(1, min(slices, int(seconds)))
    runs = [run_wrk(ctx, url, mode, c, int(seconds) // n) for _ in range(n)]
    requests = sum(int(r["requests"]) for r in runs)
    errors = {k: sum(r["errors"][k] for r in runs) for k in runs[0]["errors"]}
    return {
        "requests": requests,
        "rps": round(requests / (sum(r["duration_us"] for r in runs) / 1e6), 1),
        "p50_ms": round(median_low([r["p50_us"] for r in runs]) / 1000, 3),
        "p99_ms": round(median_low([r["p99_us"] for r in runs]) / 1000, 3),
        "max_ms": round(max(r["max_us"] for r in runs) / 1000, 3),
        "p99_ms_slices": [round(r["p99_us"] / 1000, 3) for r in runs],
        "errors": sum(errors.values()),
        "error_detail": errors,
    }


class _Timing:
    def __init__(self) -> None:
        self.now = self.first = 0
        self.done = False

    def on_body(self, body: bytes) -> None:
        if not self.first:
            self.first = self.now

    def on_message_complete(self) -> None:
        self.done = True


def raw_request(port: int, path: str, mode: str, body: bytes | None = None) -> bytes:
    body = BODIES[mode] if body is None else body
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {CLIENT_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def exchange(sock: socket.socket, request: bytes) -> tuple[int, bool, int, int]:
    """One request on a keep-alive socket: status, keep-alive, ns to first body byte, ns to the end."""
    t = _Timing()
    parser = httptools.HttpResponseParser(t)
    t0 = time.perf_counter_ns()
    sock.sendall(request)
    while not t.done:
        data = sock.recv(262144)
        if not data:
            raise ConnectionError("connection closed mid-response")
        t.now = time.perf_counter_ns()
        parser.feed_data(data)
    return parser.get_status_code(), parser.should_keep_alive(), t.first - t0, t.now - t0


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def probe(port: int, path: str, mode: str, seconds: float, max_n: int = 20000) -> dict[str, Any]:
    """c=1 sequential requests from a raw socket: time to first body byte and total, in ms."""
    request = raw_request(port, path, mode)
    ttfb: list[float] = []
    total: list[float] = []
    errors = 0
    sock = connect(port)
    end = time.monotonic() + seconds
    while time.monotonic() < end and len(ttfb) < max_n:
        try:
            status, keep, first, last = exchange(sock, request)
        except OSError:
            errors += 1
            sock.close()
            sock = connect(port)
            continue
        if status != 200:
            errors += 1
        else:
            ttfb.append(first / 1e6)
            total.append(last / 1e6)
        if not keep:
            sock.close()
            sock = connect(port)
    sock.close()
    return {
        "samples": len(ttfb),
        "ttfb_p50_ms": round(pct(ttfb, 50), 3),
        "ttfb_p99_ms": round(pct(ttfb, 99), 3),
        "total_p50_ms": round(pct(total, 50), 3),
        "total_p99_ms": round(pct(total, 99), 3),
        "errors": errors,
    }


def routing_probe(port: int, seconds: float) -> dict[str, Any]:
    """c=1, interleaved on one keep-alive socket: the same request to a plain model and to `auto`
    (predictive). The difference of the p50 latencies is what the routing decision adds."""
    requests = {
        name: raw_request(port, "/v1/chat/completions", "json", body) for name, body in ROUTED_BODIES.items()
    }
    times: dict[str, list[float]] = {name: [] for name in requests}
    errors = 0
    sock = connect(port)
    end = time.monotonic() + seconds
    while time.monotonic() < end and len(times["auto"]) < 20000:
        for name, request in requests.items():
            status, keep, _first, last = exchange(sock, request)
            if status == 200:
                times[name].append(last / 1e6)
            else:
                errors += 1
            if not keep:
                sock.close()
                sock = connect(port)
    sock.close()
    plain, auto = pct(times["bench"], 50), pct(times["auto"], 50)
    return {
        "samples": len(times["auto"]),
        "plain_p50_ms": round(plain, 3),
        "auto_p50_ms": round(auto, 3),
        "added_p50_ms": round(auto - plain, 3),
        "errors": errors,
    }


def wait_ready(port: int, path: str, mode: str, proc: Proc | None, timeout: float) -> None:
    end = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < end:
        if proc is not None and not proc.alive():
            raise SetupError(f"{proc.log.name} exited:\n{proc.tail()}")
        try:
            with connect(port) as sock:
                status = exchange(sock, raw_request(port, path, mode))[0]
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    raise SetupError(f"not ready after {timeout:.0f}s ({last})" + (f":\n{proc.tail()}" if proc else ""))
