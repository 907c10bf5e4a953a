"""`llmswitch prices`: the comparison table, its filters, and repricing a real ledger's traffic.

Expected figures are computed by hand from the rates genai-prices carries (read here straight from
the database, never from the code under test), at a fixed `--at` instant.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from genai_prices.data_snapshot import find_provider_by_id

from llmswitch.ledger import AttemptRecord, SQLiteLedger
from llmswitch.pricing import _genai
from llmswitch.pricing.cli import main, register
from llmswitch.pricing.rates import Rates

AT = "1764000000"  # 2025-11-24 16:00 UTC: DeepSeek peak hours


def db_rates(provider: str, model_id: str, at: float = float(AT)) -> Rates:
    gp = find_provider_by_id(_genai.current_snapshot().providers, provider)
    assert gp is not None
    model = next(m for m in gp.models if m.id == model_id)
    rates = _genai.rates_at(model, at)
    assert rates is not None
    return rates


def per_1k(r: Rates, inp: int = 2000, out: int = 500, cached: int = 0) -> float:
    cached_rate = r.input if r.cached_input is None else r.cached_input
    return 1000 * ((inp - cached) * r.input + cached * cached_rate + out * r.output) / 1e6


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["--json", "--at", AT, *argv]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def row(data: dict[str, Any], model: str, provider: str) -> dict[str, Any]:
    return next(r for r in data["rows"] if r["model"] == model and r["provider"] == provider)


@pytest.fixture(autouse=True)
def _no_stray_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./llmswitch.yaml picked up from the repo


def test_default_table_sorted_with_hand_checked_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys)
    costs = [r["cost_per_1k_requests"] for r in data["rows"]]
    priced = [c for c in costs if c is not None]
    assert priced == sorted(priced) and costs[: len(priced)] == priced  # cheapest first, unpriced last
    assert data["workload"] == {"input_tokens": 2000, "cached_input_tokens": 0, "output_tokens": 500}

    base = data["baseline"]
    assert (base["model"], base["provider"]) == ("gpt-4.1", "openai")
    assert base["cost_per_1k_requests"] == pytest.approx(1000 * (2000 * 2.00 + 500 * 8.00) / 1e6)  # $8.00
    assert base["cost_per_1k_requests"] == pytest.approx(per_1k(db_rates("openai", "gpt-4.1")))

    for model, provider, db_provider, db_model in [
        ("kimi-k2", "moonshotai", "moonshotai", "kimi-k2"),
        ("deepseek-chat", "deepseek", "deepseek", "deepseek-chat"),
        ("glm-4.6", "zai", "zai", "GLM-4.6"),
        ("claude-sonnet-4-5", "anthropic", "anthropic", "claude-sonnet-4-5"),
    ]:
        r = row(data, model, provider)
        expected = per_1k(db_rates(db_provider, db_model))
        assert r["cost_per_1k_requests"] == pytest.approx(expected)
        assert r["times_cheaper"] == pytest.approx(base["cost_per_1k_requests"] / expected)
        assert r["input_per_mtok"] == db_rates(db_provider, db_model).input

    # Notable models cover the open-weight Chinese flagships and the frontier they replace.
    models = {r["model"] for r in data["rows"]}
    assert {
        "deepseek-chat",
        "kimi-k2",
        "glm-4.6",
        "MiniMax-M2",
        "gpt-4.1",
        "gpt-5",
        "gemini-2.5-pro",
    } <= models
    # Only providers that have a preset, unless --all-providers.
    assert {r["provider"] for r in data["rows"]} <= {
        "deepseek", "moonshotai", "zai", "minimax", "openrouter", "together",
        "fireworks", "groq", "openai", "anthropic", "google",
    }  # fmt: skip


def test_origin_and_open_weights_filters(capsys: pytest.CaptureFixture[str]) -> None:
    cn = run_json(capsys, "--origin", "CN")
    assert cn["rows"] and all(r["origin"] == "CN" for r in cn["rows"])
    assert cn["baseline"]["model"] == "gpt-4.1"  # the baseline is kept for the ratio

    us = run_json(capsys, "--origin", "us")
    assert us["rows"] and all(r["origin"] == "US" for r in us["rows"])

    ow = run_json(capsys, "--open-weights")
    assert ow["rows"] and all(r["open_weights"] is True for r in ow["rows"])
    assert not any(r["model"].startswith(("gpt-4", "claude")) for r in ow["rows"])

    both = run_json(capsys, "--origin", "US", "--open-weights", "--models", "gpt-oss-120b,gpt-4.1")
    assert {r["model"] for r in both["rows"]} == {"gpt-oss-120b"}


def test_workload_with_cached_tokens_and_explicit_models(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "--workload", "10000:1000:8000", "--models", "kimi-k2-0905-preview,gpt-4.1")
    assert {r["model"] for r in data["rows"]} == {"kimi-k2-0905-preview", "gpt-4.1"}
    r = row(data, "kimi-k2-0905-preview", "moonshotai")
    rates = db_rates("moonshotai", "kimi-k2-0905-preview")
    assert rates.cached_input is not None  # 0.15 vs 0.60 input: the cache discount shows
    assert r["cost_per_1k_requests"] == pytest.approx(per_1k(rates, 10000, 1000, 8000))


def test_all_providers_and_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "--models", "kimi-k2", "--all-providers")
    assert "novita" in {r["provider"] for r in data["rows"]}
    assert main(["--models", "kimi-k2,no-such-model-xyz"]) == 2
    assert "no-such-model-xyz" in capsys.readouterr().err


def test_configured_deployments_and_config_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        """
providers:
  ds: {api: openai, base_url: "https://api.deepseek.com/v1", api_key: k, region: CN}
  box: {api: openai, base_url: "http://127.0.0.1:1/v1", region: local}
models:
  deepseek-v3:
    deployments:
      - {provider: ds, model: deepseek-chat}
      - {provider: box, model: deepseek-chat, price: {input: 0.1, output: 0.2}}
  frontier:
    deployments: [{provider: box, model: gpt-4.1, price: {input: 4, output: 16}}]
"""
    )
    data = run_json(capsys, "--config", str(cfg), "--baseline", "frontier")
    mine = [r for r in data["rows"] if r["kind"] == "config"]
    assert {(r["model"], r["provider"]) for r in mine} == {
        ("deepseek-v3", "ds"),
        ("deepseek-v3", "box"),
        ("frontier", "box"),
    }
    ds = row(data, "deepseek-v3", "ds")
    assert ds["source"] == "genai-prices:deepseek/deepseek-chat" and ds["region"] == "CN"
    assert (ds["origin"], ds["open_weights"]) == ("CN", True)
    # The catalog row for the very same price entry is not listed twice.
    assert not any(r["kind"] == "api" and r["source"] == ds["source"] for r in data["rows"])
    box = row(data, "deepseek-v3", "box")
    assert box["source"] == "override"
    assert box["cost_per_1k_requests"] == pytest.approx(1000 * (2000 * 0.1 + 500 * 0.2) / 1e6)
    assert data["baseline"]["model"] == "frontier"
    assert data["baseline"]["cost_per_1k_requests"] == pytest.approx(1000 * (2000 * 4 + 500 * 16) / 1e6)
    assert box["times_cheaper"] == pytest.approx((2000 * 4 + 500 * 16) / (2000 * 0.1 + 500 * 0.2))


def test_extra_candidates_hook(capsys: pytest.CaptureFixture[str]) -> None:
    from llmswitch.pricing.compare import Candidate

    def self_hosted(config: object, at: float) -> list[Candidate]:
        return [Candidate("glm-4.6", "gpu-box", "glm-4.6", Rates(0.05, 0.05), "self-hosted", "self-hosted")]

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"), extra_candidates=self_hosted)
    args = parser.parse_args(["prices", "--json", "--at", AT, "--models", "glm-4.6"])
    assert args.func(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rows"][0]["provider"] == "gpu-box"  # cheapest, ranked with the APIs
    assert data["rows"][0]["cost_per_1k_requests"] == pytest.approx(1000 * 2500 * 0.05 / 1e6)


# -- --from-ledger ------------------------------------------------------------------------------------


def write_ledger(path: Path, now: float) -> None:
    def rec(rid: str, attempt: int, status: str, ago: float = 3600, **kw: Any) -> AttemptRecord:
        return AttemptRecord(rid, attempt, now - ago, "k", "m", "p", "u", status, **kw)

    ledger = SQLiteLedger(str(path))
    ledger.start()
    for r in [
        rec("r1", 1, "ok", input_tokens=1000, cached_input_tokens=200, output_tokens=100, cost_usd=0.01),
        # failed over: only the serving attempt's tokens count, both attempts' costs were paid
        rec("r2", 1, "error", input_tokens=0, output_tokens=0, cost_usd=None),
        rec("r2", 2, "ok", input_tokens=3000, output_tokens=300, cost_usd=0.02),
        rec("r3", 1, "error"),  # never served: not repriced
        rec("r4", 1, "truncated", input_tokens=1000, output_tokens=50, cost_usd=0.005),
        rec("r5", 1, "ok", input_tokens=250_000, cached_input_tokens=0, output_tokens=1000, cost_usd=0.5),
        rec("old", 1, "ok", ago=8 * 86400, input_tokens=99_999, output_tokens=99_999, cost_usd=9.0),
    ]:
        ledger.append(r)
    ledger.close()


def test_from_ledger_reprices_last_week(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()
    db = tmp_path / "ledger.db"
    write_ledger(db, now)
    data = json.loads(
        _run(
            capsys,
            "--json",
            "--from-ledger",
            "--ledger",
            f"sqlite:///{db}",
            "--at",
            str(now),
            "--models",
            "kimi-k2-0905-preview,gemini-2.5-pro,gpt-4.1",
        )
    )
    led = data["ledger"]
    assert led["requests"] == 4  # r1, r2, r4, r5
    assert led["input_tokens"] == 1000 + 3000 + 1000 + 250_000
    assert led["cached_input_tokens"] == 200 and led["output_tokens"] == 100 + 300 + 50 + 1000
    assert led["actual_cost_usd"] == pytest.approx(0.01 + 0.02 + 0.005 + 0.5)
    assert led["since_seconds"] == 7 * 86400

    # Kimi K2 on Moonshot: cached tokens at the cache rate.
    k = db_rates("moonshotai", "kimi-k2-0905-preview", now)
    assert k.cached_input is not None
    kimi = ((1000 - 200) * k.input + 200 * k.cached_input + 100 * k.output) / 1e6
    kimi += (3000 * k.input + 300 * k.output) / 1e6
    kimi += (1000 * k.input + 50 * k.output) / 1e6
    kimi += (250_000 * k.input + 1000 * k.output) / 1e6
    assert row(data, "kimi-k2-0905-preview", "moonshotai")["ledger_cost_usd"] == pytest.approx(kimi)

    # Gemini 2.5 Pro: the 250k-token request crosses the 200k tier, the others do not.
    g = db_rates("google", "gemini-2.5-pro", now)
    (threshold, big), *_ = g.tiers
    assert threshold == 200_000 and big.input > g.input
    gem = ((800 * g.input + 200 * (g.cached_input or g.input) + 100 * g.output)
           + (3000 * g.input + 300 * g.output) + (1000 * g.input + 50 * g.output)
           + (250_000 * big.input + 1000 * big.output)) / 1e6  # fmt: skip
    gemini = row(data, "gemini-2.5-pro", "google")
    assert gemini["ledger_cost_usd"] == pytest.approx(gem)

    base = data["baseline"]
    assert base["model"] == "gpt-4.1"
    costs = [r["ledger_cost_usd"] for r in data["rows"]]
    assert costs == sorted(costs)
    assert gemini["times_cheaper"] == pytest.approx(base["ledger_cost_usd"] / gem)


def test_from_ledger_text_output_and_missing_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ledger.db"
    write_ledger(db, time.time())
    text = _run(capsys, "--from-ledger", "--ledger", str(db), "--models", "kimi-k2,gpt-4.1", "--since", "30d")
    assert "Repricing 5 served requests" in text  # the 8-day-old one is inside 30d
    assert "cost 30d" in text and "x cheaper" in text and "Modified MIT" in text
    assert main(["--from-ledger", "--ledger", str(tmp_path / "none.db")]) == 1
    assert "no ledger database" in capsys.readouterr().err


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_text_table(capsys: pytest.CaptureFixture[str]) -> None:
    text = _run(capsys, "--at", AT, "--models", "kimi-k2,gpt-4.1")
    header = next(line for line in text.splitlines() if line.startswith("model"))
    for col in ("provider", "$/Mtok in", "$/Mtok out", "$/1k req", "x cheaper", "origin", "open weights"):
        assert col in header
    assert "Baseline: gpt-4.1 on openai ($8.00)" in text
    assert "yes (Modified MIT)" in text


def test_runs_as_a_subprocess(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from llmswitch.pricing.cli import main; raise SystemExit(main())",
         "--json", "--at", AT, "--models", "glm-4.6,gpt-4.1", "--origin", "CN"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=True,
    )  # fmt: skip
    data = json.loads(out.stdout)
    assert {r["model"] for r in data["rows"]} == {"glm-4.6"}
    assert all(r["times_cheaper"] > 1 for r in data["rows"])
