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
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from configs import upstream_conf
from fixtures import ALL_TARGETS, BENCH, BODIES, CLIENT_KEY, ECHO_MODULE, EXIT_SKIP, MODES, WRK_LUA
from load import Ctx, routing_probe, wait_ready
from procs import (
    Proc,
    SetupError,
    ensure_litellm,
    ensure_tools,
    free_port,
    nginx,
    supports_workers,
    tree_rss_mb,
)
from report import add_derived, box_ceilings, fmt, goals, table, versions
from targets import Running, measure, start_target


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
    ctx.upstream_pid = upstream.pid
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
    notes += box_ceilings(cells, len(cores))
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
        print(f"{mark} {g['target']:13} {g['goal']:40} {fmt(g['value'])} (goal {g['limit']:g})")
    for n in notes:
        print(f"note: {n}")
    print(f"JSON: {out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
