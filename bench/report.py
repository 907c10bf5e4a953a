"""Derived figures (added latency, ratios to floor and LiteLLM), the table and the goals check."""

from __future__ import annotations

import platform
import subprocess
from typing import Any

from fixtures import LITELLM_VERSION, ROOT
from procs import nginx


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


def box_ceilings(cells: list[dict[str, Any]], cores: int) -> list[str]:
    """What the box allows a target that shares every core with wrk and the upstream (llmswitch-w2).

    Such a target's req/s can be at most cores / (its CPU + the load's CPU per request): the bound on
    its share of the hop that no change to the target short of cheaper requests can pass. Also says how
    busy the load side was on the floor's cells (a hop that saturates wrk's core is load-bound).
    """
    by = {(x["target"], x["mode"], x["c"]): x for x in cells}
    lines = []
    for x in cells:
        if x["mode"] != "json" or x["c"] < 16 or not x.get("load_cpu_us_per_req"):
            continue
        if x["target"] == "floor":
            busy = x["rps"] * x["load_cpu_us_per_req"] / 1e6
            lines.append(f"floor json c={x['c']}: wrk + upstream used {busy:.2f} of their core")
        floor = by.get(("floor", "json", x["c"]))
        if x["target"] != "llmswitch-w2" or not floor or not x.get("cpu_us_per_req"):
            continue
        per_request = x["cpu_us_per_req"] + x["load_cpu_us_per_req"]
        ceiling = cores * 1e6 / per_request
        x["box_ceiling_share"] = round(ceiling / floor["rps"], 3)
        lines.append(
            f"llmswitch-w2 json c={x['c']}: {x['cpu_us_per_req']} µs gateway + {x['load_cpu_us_per_req']} µs "
            f"wrk and upstream per request → at most {ceiling:,.0f} req/s on {cores} cores, "
            f"{x['box_ceiling_share']:.3f} of the hop (measured {x['vs_floor']['rps']})"
        )
    return lines


def fmt(v: float | None, spec: str = ".3f") -> str:
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
            extra_t = f"{t['ttfb_p50_ms']:.3f} (+{fmt(t['added_ttfb_p50_ms'])}) / {t['total_p50_ms']:.3f}"
        if x["target"] not in first:
            first.add(x["target"])
            r = rss.get(x["target"], {})
            extra_r = f"{r.get('idle')}/{r.get('load')}/{r.get('after')}"
        lines.append(
            f"{x['target']:13} {x['mode']:6} {x['c']:>3} {x['rps']:>9.0f} {fmt(x['vs_floor']['rps']):>7} "
            f"{fmt(x['vs_litellm']['rps'], '.1f'):>9} {x['p50_ms']:>8.3f} {x['p99_ms']:>8.3f} "
            f"{fmt(x['added_p50_ms']):>8} {fmt(x['added_p99_ms']):>8} "
            f"{fmt(x['vs_floor']['added_p50_ms'], '.1f'):>8} {fmt(x['cpu_us_per_req'], '.1f'):>7} "
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
