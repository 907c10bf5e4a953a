"""Metrics kept as plain numbers: bucketing, rendering and summing across workers."""

from __future__ import annotations

from llmswitch.metrics import Histogram, Metrics


def test_histogram_buckets_follow_prometheus_le() -> None:
    h = Histogram("h", "doc", [], (0.1, 1.0, 10.0))
    for v in (0.05, 0.1, 0.5, 1.0, 10.0, 11.0):
        h.observe((), v)
    counts_then_sum = h.series[()]
    assert counts_then_sum[:-1] == [2, 2, 1, 1]  # le=0.1, le=1, le=10, +Inf (each bound inclusive)
    assert counts_then_sum[-1] == sum((0.05, 0.1, 0.5, 1.0, 10.0, 11.0))


def test_exposition_and_the_sum_over_workers() -> None:
    one, two = Metrics(), Metrics()
    for m in (one, two):
        m.request_done("kimi-k2", "openai", 200, 0.2, 0.0001)
        m.add_usage("kimi-k2", "moonshot", 12, 2, 30, 0, 0.0005)
    one.request_done("kimi-k2", "anthropic", 429, 0.01, None)
    total = Metrics()
    total.add_state(one.state())
    total.add_state(two.state())
    text = total.exposition().decode()
    assert 'llmswitch_requests_total{model="kimi-k2",status="200",surface="openai"} 2.0' in text
    assert 'llmswitch_requests_total{model="kimi-k2",status="429",surface="anthropic"} 1.0' in text
    assert 'llmswitch_tokens_total{kind="input",model="kimi-k2",provider="moonshot"} 24.0' in text
    assert 'llmswitch_tokens_total{kind="output",model="kimi-k2",provider="moonshot"} 60.0' in text
    assert 'kind="reasoning"' not in text  # a kind never seen has no series
    assert 'llmswitch_cost_usd_total{model="kimi-k2",provider="moonshot"} 0.001' in text
    assert 'llmswitch_request_duration_seconds_count{model="kimi-k2"} 3.0' in text
