"""llmswitch benchmark: direct upstream, nginx hop (floor), LiteLLM and llmswitch, in one run on one machine.

Every target answers the same OpenAI chat request (model `bench`, or `bench-stream` with `stream: true`)
from the same upstream: an nginx that returns a fixed completion with usage, or ~20 SSE chunks + a usage
chunk + [DONE] in chunked encoding (echo module). wrk (1 thread, Lua script) drives c=1/16/64 per cell;
a raw-socket probe timestamps the first body byte of a stream at c=1. With 2+ cores the target runs on
core A and wrk, the probe and the upstream on core B (`taskset`), so the gateway has a core to itself.
Run through `bench/run`, which sets up the llmswitch venv first. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median_low
from typing import Any

import httptools

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LITELLM_VERSION = "1.108.7"
LITELLM_VENV = BENCH / ".venv-litellm"
ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")
CLIENT_KEY = "sk-bench-5f0c2a9e71d84b36a1e9c0d27f4b8e63"  # llmswitch client key, LiteLLM master key
MODES = ("json", "stream")
ALL_TARGETS = ("direct", "floor", "litellm", "llmswitch", "llmswitch-w2")
EXIT_SKIP = 77  # tools missing and not installable: the smoke test skips on this

BODIES = {
    "json": b'{"model":"bench","messages":[{"role":"user","content":"Say hello."}],"max_tokens":64}',
    "stream": b'{"model":"bench-stream","messages":[{"role":"user","content":"Say hello."}],'
    b'"max_tokens":64,"stream":true}',
}
# The routing-overhead probe: the same realistic prompt (a ~600-character word problem, the median size of
# the router's training prompts) sent to a plain model and to a predictive `auto` model over two
# candidates that both lead to the same upstream.
_ROUTED_PROMPT = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for "
    "her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh "
    "duck egg. How much in dollars does she make every day at the farmers' market? Think step by step, "
    "show your reasoning, then give the final answer as a JSON object with the keys reasoning and answer. "
    "Check the arithmetic twice: 16 - 3 - 4 = 9 eggs, and 9 eggs at $2 each. Do not round; if the answer "
    "is not a whole number, give it as a decimal. Keep the reasoning short (three sentences at most)."
)
ROUTED_BODIES = {
    name: b'{"model":"%s","messages":[{"role":"user","content":"%s"}],"max_tokens":64}'
    % (name.encode(), _ROUTED_PROMPT.encode())
    for name in ("bench", "auto")
}
AUTO_CANDIDATES = ("deepseek-v2.5-0908", "gpt-4o-mini-2024-07-18")  # names the shipped router model knows
_CHUNK = '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini",'
COMPLETION = (
    '{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini",'
    '"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},'
    '"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}'
)


def sse_events() -> list[str]:
    """20 content chunks (role first, finish_reason last), a usage chunk and [DONE], as OpenAI sends them."""
    events = []
    for i in range(20):
        delta = '{"role":"assistant","content":""}' if i == 0 else f'{{"content":"tok{i} "}}'
        finish = '"stop"' if i == 19 else "null"
        events.append(f'{_CHUNK}"choices":[{{"index":0,"delta":{delta},"finish_reason":{finish}}}]}}')
    events.append(
        f'{_CHUNK}"choices":[],"usage":{{"prompt_tokens":12,"completion_tokens":19,"total_tokens":31}}}}'
    )
    events.append("[DONE]")
    return [f"data: {e}\\n\\n" for e in events]  # \n written as nginx escapes


class SetupError(Exception):
    pass


# processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_pids(root: int) -> set[int]:
    """A process and all its descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    pids, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent and p not in pids]
        pids.update(kids)
        frontier.extend(kids)
    return pids


def tree_rss_mb(root: int, pss: bool = False) -> float:
    """VmRSS of a process tree in MB; with `pss`, the proportional set size instead, which counts pages
    that forked workers share (copy-on-write) once rather than once per process."""
    source, key = ("smaps_rollup", "Pss:") if pss else ("status", "VmRSS:")
    total_kb = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
                if line.startswith(key):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return round(total_kb / 1024, 1)


def tree_cpu_s(root: int) -> float:
    """User + system CPU seconds used so far by a process tree's live processes."""
    ticks = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class Proc:
    """A child process in its own session (stopped by pid), optionally pinned with taskset."""

    def __init__(self, argv: list[str], log: Path, cores: str | None, env: dict[str, str] | None = None):
        self.log = log
        cmd = ["taskset", "-c", cores, *argv] if cores else argv
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=log.parent
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


class RssSampler:
    """Peak RSS of a process tree while a `with` block runs."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every, self.peak, self.peak_pss = pid, every, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def _sample(self) -> None:
        self.peak = max(self.peak, tree_rss_mb(self.pid))
        self.peak_pss = max(self.peak_pss, tree_rss_mb(self.pid, pss=True))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# installation
def nginx() -> str:
    return shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin") or "nginx"


def ensure_tools() -> None:
    """wrk and nginx (with the echo module, as nginx-light brings it on Debian 12), installed if missing."""
    if shutil.which("wrk") and shutil.which(nginx()):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SetupError("wrk and nginx are missing and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk", "nginx-light"], check=True, env=env)


def ensure_litellm() -> Path:
    """LiteLLM proxy at the pinned version, in its own virtualenv: returns its `litellm` executable."""
    stamp = LITELLM_VENV / f".installed-{LITELLM_VERSION}"
    if not stamp.exists():
        print(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        pip = [str(LITELLM_VENV / "bin/pip"), "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], check=True)
        stamp.touch()
    return LITELLM_VENV / "bin/litellm"


def llmswitch_exe() -> list[str]:
    exe = Path(sys.executable).parent / "llmswitch"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "llmswitch"]


def supports_workers() -> bool:
    out = subprocess.run([*llmswitch_exe(), "serve", "--help"], capture_output=True, text=True, check=False)
    return "--workers" in out.stdout


# configs
NGINX_HEAD = """worker_processes 1;
daemon off;
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
{load}
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path {dir}/{name}-body;
  proxy_temp_path {dir}/{name}-proxy;
"""


def upstream_conf(work: Path, port: int, echo: bool) -> str:
    events = sse_events()
    stream = (
        "".join(f"\n      echo -n '{e}';" for e in events)
        if echo
        else f"\n      return 200 '{''.join(events)}';"
    )
    return NGINX_HEAD.format(
        dir=work, name="upstream", load=f"load_module {ECHO_MODULE};" if echo else ""
    ) + (
        f"  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n"
        f"    location = /v1/chat/completions {{\n      default_type application/json;\n"
        f"      return 200 '{COMPLETION}';\n    }}\n"
        "    location = /stream/v1/chat/completions {\n      default_type text/event-stream;"
        f"{stream}\n    }}\n"
        "  }\n}\n"
    )


def floor_conf(work: Path, port: int, upstream: int) -> str:
    proxy = 'proxy_pass http://up;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";'
    return NGINX_HEAD.format(dir=work, name="floor", load="") + (
        f"  upstream up {{\n    server 127.0.0.1:{upstream};\n    keepalive 256;\n"
        "    keepalive_requests 10000000;\n  }\n"
        f"  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n"
        f"    location / {{\n      {proxy}\n    }}\n"
        f"    location /stream/ {{\n      {proxy}\n      proxy_buffering off;\n    }}\n"
        "  }\n}\n"
    )


def llmswitch_conf(work: Path, port: int, upstream: int, auto: bool = False) -> str:
    """The gateway as users run it; `auto` adds a predictive `auto` model over two candidates (in its own
    process: the router's numpy and model file would otherwise count in the plain gateway's RSS)."""
    price = "price: {input: 0.15, output: 0.60, cached_input: 0.075}"
    extra = ""
    if auto:
        extra = "".join(
            f"  {name}:\n    deployments: [{{provider: up, model: gpt-4o-mini, {price}}}]\n"
            for name in AUTO_CANDIDATES
        )
        names = ", ".join(AUTO_CANDIDATES)
        extra += f"  auto:\n    route: {{strategy: predictive, candidates: [{names}], target: 0.8}}\n"
    return f"""server: {{host: 127.0.0.1, port: {port}}}
storage: {{url: "sqlite:///{work}/ledger.db"}}
auth:
  keys:
    - {{id: bench, key: {CLIENT_KEY}}}
providers:
  up: {{api: openai, base_url: "http://127.0.0.1:{upstream}/v1", api_key: sk-upstream-key}}
  up-stream: {{api: openai, base_url: "http://127.0.0.1:{upstream}/stream/v1", api_key: sk-upstream-key}}
models:
  bench:
    deployments: [{{provider: up, model: gpt-4o-mini, {price}}}]
  bench-stream:
    deployments: [{{provider: up-stream, model: gpt-4o-mini, {price}}}]
{extra}"""


def litellm_conf(upstream: int) -> str:
    models = ""
    for name, prefix in (("bench", "/v1"), ("bench-stream", "/stream/v1")):
        models += (
            f"  - model_name: {name}\n    litellm_params:\n      model: openai/gpt-4o-mini\n"
            f"      api_base: http://127.0.0.1:{upstream}{prefix}\n      api_key: sk-upstream-key\n"
        )
    return (
        "model_list:\n" + models + "litellm_settings:\n  callbacks: []\n  success_callback: []\n"
        "  failure_callback: []\n  set_verbose: false\n  telemetry: false\n"
        f"general_settings:\n  master_key: {CLIENT_KEY}\n"
    )


# load generation
WRK_LUA = """wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {{"requests":%.0f,"duration_us":%.0f,"connect":%.0f,"read":%.0f,' ..
    '"write":%.0f,"status":%.0f,"timeout":%.0f,"p50_us":%.1f,"p99_us":%.1f,"max_us":%.1f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


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


# targets
@dataclass
class Running:
    name: str
    port: int
    paths: dict[str, str]  # mode → request path
    proc: Proc


@contextmanager
def start_target(name: str, ctx: Ctx) -> Iterator[Running]:
    work, up = ctx.work, ctx.upstream_port
    port = free_port()
    paths = {"json": "/v1/chat/completions", "stream": "/v1/chat/completions"}
    if name == "floor":
        conf = work / "floor.conf"
        conf.write_text(floor_conf(work, port, up))
        proc = Proc(
            [nginx(), "-c", str(conf), "-e", str(work / "floor-error.log")], work / "floor.log", ctx.gw_cores
        )
        paths["stream"] = "/stream/v1/chat/completions"
    elif name == "litellm":
        conf = work / "litellm.yaml"
        conf.write_text(litellm_conf(up))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "LITELLM"))}
        env.update(LITELLM_LOG="ERROR", LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONUNBUFFERED="1")
        argv = [str(ensure_litellm()), "--config", str(conf), "--host", "127.0.0.1", "--port", str(port)]
        proc = Proc([*argv, "--num_workers", "1"], work / "litellm.log", ctx.gw_cores, env)
    else:
        conf = work / f"{name}.yaml"
        conf.write_text(llmswitch_conf(work / name, port, up, auto=name == "llmswitch-auto"))
        (work / name).mkdir(exist_ok=True)
        argv = [*llmswitch_exe(), "serve", "--config", str(conf), "--port", str(port)]
        cores = ctx.gw_cores
        if name == "llmswitch-w2":
            argv += ["--workers", "2"]
            cores = ctx.w2_cores
        proc = Proc(argv, work / f"{name}.log", cores)
    try:
        for mode in MODES:
            wait_ready(port, paths[mode], mode, proc, 180 if name == "litellm" else 30)
        yield Running(name, port, paths, proc)
    finally:
        proc.stop()


def measure(
    run: Running, ctx: Ctx, long_n: int
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Cells, the c=1 stream probe and RSS (idle, after warm-up, peak under load, after) of one target."""
    url = f"http://127.0.0.1:{run.port}"
    time.sleep(0.5)
    pid = run.proc.pid
    rss: dict[str, Any] = {"idle": tree_rss_mb(pid), "pss_idle": tree_rss_mb(pid, pss=True)}  # 1 request each
    for mode in MODES:  # warm-up: connection pools, lazy imports, caches
        run_wrk(ctx, url + run.paths[mode], mode, 16, ctx.warmup)
    time.sleep(1.0)
    rss["warm"] = tree_rss_mb(run.proc.pid)
    served = 0
    cells = []
    slices = 1 if run.name == "litellm" else 5
    with RssSampler(run.proc.pid) as sampler:
        ttfb = probe(run.port, run.paths["stream"], "stream", ctx.probe_seconds)
        ttfb.update(target=run.name)
        for mode in MODES:
            for c in ctx.concurrency:
                cpu = tree_cpu_s(run.proc.pid)
                cell = run_cell(ctx, url + run.paths[mode], mode, c, ctx.duration, slices)
                settle(run.proc.pid)  # requests wrk gave up on are still being served: count them here
                cpu = tree_cpu_s(run.proc.pid) - cpu
                cell["cpu_us_per_req"] = round(cpu / cell["requests"] * 1e6, 1) if cell["requests"] else None
                cell["rss_mb_after"] = tree_rss_mb(run.proc.pid)
                served += cell["requests"]
                cells.append({"target": run.name, "mode": mode, "c": c, **cell})
                print(
                    f"  {run.name:13} {mode:6} c={c:<3} {cell['rps']:>10.1f} req/s  "
                    f"p50 {cell['p50_ms']:.3f} ms  p99 {cell['p99_ms']:.3f} ms  "
                    f"CPU {cell['cpu_us_per_req']} µs/req  errors {cell['errors']}",
                    flush=True,
                )
    rss["load"], rss["pss_load"] = sampler.peak, sampler.peak_pss
    time.sleep(1.0)
    rss["after"], rss["pss_after"] = tree_rss_mb(run.proc.pid), tree_rss_mb(run.proc.pid, pss=True)
    rss["after_requests"] = served
    if long_n and run.name == "llmswitch":
        rss["long"] = long_run(run, ctx, long_n)
    if not run.proc.alive():
        raise RuntimeError(f"{run.name} died during the run:\n{run.proc.tail()}")
    return cells, ttfb, rss


def settle(pid: int, timeout: float = 30.0) -> None:
    """Wait until a process tree is (nearly) idle: under 10 % of a core over 0.3 s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        before = tree_cpu_s(pid)
        time.sleep(0.3)
        if tree_cpu_s(pid) - before < 0.03:
            return


def long_run(run: Running, ctx: Ctx, n: int) -> dict[str, Any]:
    """wrk at c=16 (non-streaming) in 5 s segments until n requests; RSS after each segment."""
    url = f"http://127.0.0.1:{run.port}{run.paths['json']}"
    done, errors, series = 0, 0, []
    while done < n:
        seg = run_wrk(ctx, url, "json", 16, 5)
        done += int(seg["requests"])
        errors += sum(seg["errors"].values())
        series.append([done, tree_rss_mb(run.proc.pid)])
        print(f"  long run: {done} requests, RSS {series[-1][1]} MB", flush=True)
    at_100k = next((mb for count, mb in series if count >= 100_000), None)
    end = series[-1][1]
    growth = round(end / at_100k - 1, 3) if at_100k else None
    return {
        "requests": done,
        "errors": errors,
        "rss_at_100k": at_100k,
        "rss_end": end,
        "growth_100k_to_end": growth,
        "series": series,
    }


# reporting
def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a is not None and b else None


def add_derived(cells: list[dict[str, Any]], ttfbs: list[dict[str, Any]]) -> None:
    """Added latency over direct, and every figure as a ratio to floor and to LiteLLM."""
    by = {(x["target"], x["mode"], x["c"]): x for x in cells}
    for x in cells:
        d = by.get(("direct", x["mode"], x["c"]))
        for p in ("p50", "p99"):
            x[f"added_{p}_ms"] = round(x[f"{p}_ms"] - d[f"{p}_ms"], 3) if d else None
    figures = ("rps", "p50_ms", "p99_ms", "added_p50_ms", "added_p99_ms", "cpu_us_per_req")
    for x in cells:
        for ref in ("floor", "litellm"):
            r = by.get((ref, x["mode"], x["c"]))
            x[f"vs_{ref}"] = {f: ratio(x[f], r[f]) if r else None for f in figures}
    tby = {t["target"]: t for t in ttfbs}
    d = tby.get("direct")
    for t in ttfbs:
        for f in ("ttfb_p50_ms", "total_p50_ms"):
            t[f"added_{f}"] = round(t[f] - d[f], 3) if d else None
    for t in ttfbs:
        for ref in ("floor", "litellm"):
            r = tby.get(ref)
            t[f"vs_{ref}"] = {
                f: ratio(t[f], r[f]) if r else None for f in ("ttfb_p50_ms", "added_ttfb_p50_ms")
            }


def _f(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def table(cells: list[dict[str, Any]], ttfbs: list[dict[str, Any]], rss: dict[str, Any]) -> str:
    head = (
        f"{'target':13} {'mode':6} {'c':>3} {'req/s':>9} {'/floor':>7} {'/LiteLLM':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} {'+p50/fl':>8} {'CPU µs':>7} {'err':>4}  "
        f"{'TTFB c=1 (+added) / total ms':30} {'RSS MB idle/load/after':22}"
    )
    lines = [head, "-" * len(head)]
    tby = {t["target"]: t for t in ttfbs}
    first = set()
    for x in cells:
        extra_t = extra_r = ""
        if x["mode"] == "stream" and x["c"] == min(c["c"] for c in cells) and x["target"] in tby:
            t = tby[x["target"]]
            extra_t = f"{t['ttfb_p50_ms']:.3f} (+{_f(t['added_ttfb_p50_ms'])}) / {t['total_p50_ms']:.3f}"
        if x["target"] not in first:
            first.add(x["target"])
            r = rss.get(x["target"], {})
            extra_r = f"{r.get('idle')}/{r.get('load')}/{r.get('after')}"
        lines.append(
            f"{x['target']:13} {x['mode']:6} {x['c']:>3} {x['rps']:>9.0f} {_f(x['vs_floor']['rps']):>7} "
            f"{_f(x['vs_litellm']['rps'], '.1f'):>9} {x['p50_ms']:>8.3f} {x['p99_ms']:>8.3f} "
            f"{_f(x['added_p50_ms']):>8} {_f(x['added_p99_ms']):>8} "
            f"{_f(x['vs_floor']['added_p50_ms'], '.1f'):>8} {_f(x['cpu_us_per_req'], '.1f'):>7} "
            f"{x['errors']:>4}  {extra_t:30} {extra_r:22}"
        )
    return "\n".join(lines)


def goals(
    cells: list[dict[str, Any]], ttfbs: list[dict[str, Any]], rss: dict[str, Any]
) -> list[dict[str, Any]]:
    """The issue's goals, checked on this run's figures (None when a figure was not measured)."""
    by = {(x["target"], x["mode"], x["c"]): x for x in cells}
    tby = {t["target"]: t for t in ttfbs}
    out: list[dict[str, Any]] = []

    def goal(name: str, target: str, value: float | None, limit: float, le: bool) -> None:
        # a negative added latency means the direct baseline was disturbed in this run: no verdict
        ok = None if value is None or value < 0 else (value <= limit if le else value >= limit)
        out.append({"goal": name, "target": target, "value": value, "limit": limit, "ok": ok})

    def cell(t: str, c: int, key: str, sub: str | None = None) -> float | None:
        x = by.get((t, "json", c))
        return None if x is None else (x[key][sub] if sub else x[key])

    for t, share, workers in (("llmswitch", 0.3, 1), ("llmswitch-w2", 0.5, 2)):
        if t not in rss:
            continue
        goal("added p50 at c=1 (ms)", t, cell(t, 1, "added_p50_ms"), 0.15, True)
        goal("added p99 at c=16 (ms)", t, cell(t, 16, "added_p99_ms"), 2.0, True)
        for c in (16, 64):
            goal(f"req/s share of the nginx hop at c={c}", t, cell(t, c, "vs_floor", "rps"), share, False)
            if workers == 1:  # the same share from CPU cost per request: robust to a busy machine
                cpu = cell(t, c, "vs_floor", "cpu_us_per_req")
                value = round(1 / cpu, 3) if cpu else None
                goal(f"  same from CPU µs/req (floor ÷ target) at c={c}", t, value, share, False)
        goal("stream TTFB added p50 at c=1 (ms)", t, tby.get(t, {}).get("added_ttfb_p50_ms"), 0.15, True)
        # with workers: the tree's PSS (shared pages counted once, the supervisor included) per worker
        m, pre = rss[t], ("" if workers == 1 else "pss_")
        label = "RSS" if workers == 1 else "PSS"
        goal(f"{label} idle per worker (MB)", t, round(m[pre + "idle"] / workers, 1), 50, True)
        goal(f"{label} under load per worker (MB)", t, round(m[pre + "load"] / workers, 1), 80, True)
        if "routing" in rss[t]:
            goal(
                "auto (predictive) routing added p50 at c=1 (ms)",
                t,
                rss[t]["routing"]["added_p50_ms"],
                0.1,
                True,
            )
        long = rss[t].get("long")
        if long and long.get("growth_100k_to_end") is not None:
            goal("RSS growth 100k → end (fraction)", t, abs(long["growth_100k_to_end"]), 0.10, True)
    return out


def versions(litellm: bool) -> dict[str, str]:
    def cmd(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    v = {
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": cmd(["wrk", "-v"]),
        "nginx": cmd([nginx(), "-v"]),
        "llmswitch_git": cmd(["git", "describe", "--always", "--dirty"]),
    }
    if litellm:
        v["litellm"] = LITELLM_VERSION
    return v


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, help="seconds per cell (default 10; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="CI smoke: short cells, c=1 and 16, no LiteLLM")
    p.add_argument("--litellm", action="store_true", help="with --quick: include LiteLLM anyway")
    p.add_argument("--targets", help=f"comma-separated subset of {','.join(ALL_TARGETS)} (direct is implied)")
    p.add_argument("--long", type=int, default=0, metavar="N", help="then N more requests to llmswitch (RSS)")
    p.add_argument("--out", type=Path, help="JSON path (default bench/results/<timestamp>.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.targets:
        targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    elif args.quick:
        targets = ["direct", "floor", "llmswitch"] + (["litellm"] if args.litellm else [])
    else:
        targets = list(ALL_TARGETS)
    unknown = set(targets) - set(ALL_TARGETS)
    if unknown:
        print(f"unknown targets: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    targets = [t for t in ALL_TARGETS if t in targets or t == "direct"]  # fixed order, direct first
    notes: list[str] = []
    if args.long and "llmswitch" not in targets:
        print("--long needs the llmswitch target", file=sys.stderr)
        return 2
    if "llmswitch-w2" in targets and not supports_workers():
        targets.remove("llmswitch-w2")
        notes.append("llmswitch-w2 skipped: `llmswitch serve` has no --workers option")
    try:
        ensure_tools()
    except (SetupError, subprocess.CalledProcessError) as e:
        print(f"SKIP: {e}", flush=True)
        return EXIT_SKIP
    if "litellm" in targets:
        ensure_litellm()

    cores = sorted(os.sched_getaffinity(0))
    gw = load = w2 = None
    if len(cores) >= 2:
        gw, load = str(cores[0]), str(cores[1])
        w2 = f"{cores[0]},{cores[2] if len(cores) > 2 else cores[1]}"
        os.sched_setaffinity(0, {cores[1]})  # this process (the TTFB probe) runs with the load generator
        notes.append(
            f"pinned: target on core {gw}; wrk, probe and upstream on core {load}; llmswitch-w2 on cores {w2}"
        )
    else:
        notes.append("single core: nothing pinned; figures include load-generator contention")
    echo = ECHO_MODULE.exists()
    notes.append(
        "stream upstream: "
        + (
            "22 SSE events, one HTTP chunk each (nginx echo module)"
            if echo
            else "22 SSE events in one Content-Length body (no echo module)"
        )
    )
    duration = args.duration or (1.0 if args.quick else 10.0)
    work = Path(tempfile.mkdtemp(prefix="llmswitch-bench-"))
    ctx = Ctx(
        work=work,
        duration=duration,
        warmup=1 if args.quick else 3,
        probe_seconds=min(duration, 5.0),
        concurrency=(1, 16) if args.quick else (1, 16, 64),
        gw_cores=gw,
        load_cores=load,
        w2_cores=w2,
    )
    for mode in MODES:
        ctx.lua[mode] = work / f"{mode}.lua"
        ctx.lua[mode].write_text(WRK_LUA.format(body=BODIES[mode].decode(), key=CLIENT_KEY))
    ctx.upstream_port = free_port()
    conf = work / "upstream.conf"
    conf.write_text(upstream_conf(work, ctx.upstream_port, echo))
    upstream = Proc(
        [nginx(), "-c", str(conf), "-e", str(work / "upstream-error.log")], work / "upstream.log", load
    )
    started = time.strftime("%Y-%m-%dT%H-%M-%S")
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    cells: list[dict[str, Any]] = []
    ttfbs: list[dict[str, Any]] = []
    rss: dict[str, Any] = {}
    try:
        wait_ready(ctx.upstream_port, "/v1/chat/completions", "json", upstream, 10)
        for name in targets:
            print(f"{name}:", flush=True)
            if name == "direct":
                run = Running(
                    "direct",
                    ctx.upstream_port,
                    {"json": "/v1/chat/completions", "stream": "/stream/v1/chat/completions"},
                    upstream,
                )
                c, t, r = measure(run, ctx, 0)
            else:
                with start_target(name, ctx) as run:
                    c, t, r = measure(run, ctx, args.long)
            cells += c
            ttfbs.append(t)
            rss[name] = r
        if "llmswitch" in targets:  # what a predictive `auto` decision adds, in its own gateway process
            print("llmswitch-auto:", flush=True)
            with start_target("llmswitch-auto", ctx) as run:
                routing = routing_probe(run.port, ctx.probe_seconds)
                routing["rss_idle_mb"] = tree_rss_mb(run.proc.pid)
            rss["llmswitch"]["routing"] = routing
            print(
                f"  auto (predictive) vs plain model at c=1: p50 {routing['auto_p50_ms']:.3f} vs "
                f"{routing['plain_p50_ms']:.3f} ms, +{routing['added_p50_ms']:.3f} ms  errors "
                f"{routing['errors']}  RSS {routing['rss_idle_mb']} MB",
                flush=True,
            )
    except BaseException:
        print(f"failed; logs and configs kept in {work}", file=sys.stderr)
        raise
    finally:
        upstream.stop()
    notes.append(
        f"load average before {' '.join(load_before)}, after "
        f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])} (other work on the box adds noise)"
    )
    add_derived(cells, ttfbs)
    checked = goals(cells, ttfbs, rss)
    result = {
        "started": started,
        "options": {
            "duration": duration,
            "concurrency": list(ctx.concurrency),
            "targets": targets,
            "long": args.long,
        },
        "versions": versions("litellm" in targets),
        "cores": len(cores),
        "notes": notes,
        "cells": cells,
        "ttfb": ttfbs,
        "rss_mb": rss,
        "goals": checked,
    }
    out = args.out or BENCH / "results" / f"{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(cells, ttfbs, rss))
    print()
    for g in checked:
        mark = {True: "ok  ", False: "MISS", None: "n/a "}[g["ok"]]
        print(f"{mark} {g['target']:13} {g['goal']:40} {_f(g['value'])} (goal {g['limit']:g})")
    for n in notes:
        print(f"note: {n}")
    print(f"JSON: {out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
