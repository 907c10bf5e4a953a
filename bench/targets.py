"""Start a target, measure its cells, RSS and CPU, and the long run."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from configs import floor_conf, litellm_conf, llmswitch_conf
from fixtures import MODES
from load import Ctx, probe, run_cell, run_wrk, wait_ready
from procs import (
    Proc,
    RssSampler,
    children_cpu_s,
    ensure_litellm,
    free_port,
    llmswitch_exe,
    nginx,
    tree_cpu_s,
    tree_rss_mb,
)


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
                cpu, main = tree_cpu_s(run.proc.pid), tree_cpu_s(run.proc.pid, main_threads=True)
                load = load_cpu_s(run, ctx)
                cell = run_cell(ctx, url + run.paths[mode], mode, c, ctx.duration, slices)
                settle(run.proc.pid)  # requests wrk gave up on are still being served: count them here
                cpu = tree_cpu_s(run.proc.pid) - cpu
                main = tree_cpu_s(run.proc.pid, main_threads=True) - main
                load = load_cpu_s(run, ctx) - load
                n = cell["requests"]
                cell["cpu_us_per_req"] = round(cpu / n * 1e6, 1) if n else None
                cell["main_thread_cpu_us_per_req"] = round(main / n * 1e6, 1) if n else None
                # wrk and the upstream: what the target's requests cost the rest of the box
                cell["load_cpu_us_per_req"] = round(load / n * 1e6, 1) if n else None
                cell["rss_mb_after"] = tree_rss_mb(run.proc.pid)
                served += cell["requests"]
                cells.append({"target": run.name, "mode": mode, "c": c, **cell})
                print(
                    f"  {run.name:13} {mode:6} c={c:<3} {cell['rps']:>10.1f} req/s  "
                    f"p50 {cell['p50_ms']:.3f} ms  p99 {cell['p99_ms']:.3f} ms  "
                    f"CPU {cell['cpu_us_per_req']} µs/req "
                    f"(main threads {cell['main_thread_cpu_us_per_req']}; wrk + upstream "
                    f"{cell['load_cpu_us_per_req']})  errors {cell['errors']}",
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


def load_cpu_s(run: Running, ctx: Ctx) -> float:
    """CPU seconds so far of the load side: finished wrk runs, and the upstream unless it is the target."""
    upstream = 0.0 if run.proc.pid == ctx.upstream_pid else tree_cpu_s(ctx.upstream_pid)
    return children_cpu_s() + upstream


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
