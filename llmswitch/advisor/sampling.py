"""Stratified, seeded sampling of the traffic to replay.

Strata are (category, tags). The sample is allocated to strata in proportion to their size (largest
remainder; ties broken at random), so it stays representative of the traffic and every rate computed
on it needs no weights, while each stratum gets its fair share exactly rather than by luck. Small
strata may get nothing when N is small; that is the price of self-weighting.

The sample is returned in a random order (a shuffle of the whole sample): replay proceeds in that
order, so any prefix of it is itself a random subsample, which is what sequential early stopping needs.
Everything depends only on the seed and the *set* of exchanges (they are sorted by key first), not on
the order the log listed them in.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from llmswitch.advisor.traffic import Exchange

__all__ = ["allocate", "stratified_sample", "stratum"]


def stratum(x: Exchange) -> str:
    tags = ",".join(f"{k}={v}" for k, v in sorted(x.tags.items()))
    return f"{x.category}|{tags}"


def allocate(sizes: dict[str, int], n: int, rng: random.Random) -> dict[str, int]:
    """How many to draw from each stratum: proportional, largest remainder, random tie-break."""
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    quotas = {s: n * size / total for s, size in sizes.items()}
    out = {s: int(q) for s, q in quotas.items()}
    order = sorted(sizes, key=lambda s: (-(quotas[s] - out[s]), rng.random()))
    for s in order[: n - sum(out.values())]:
        out[s] += 1
    return out


def stratified_sample(exchanges: Sequence[Exchange], n: int, seed: int) -> list[Exchange]:
    """`n` exchanges (all of them if there are fewer), stratified by category and tags, shuffled."""
    rng = random.Random(seed)
    groups: dict[str, list[Exchange]] = defaultdict(list)
    for x in sorted(exchanges, key=lambda x: x.key):
        groups[stratum(x)].append(x)
    counts = allocate({s: len(g) for s, g in sorted(groups.items())}, n, rng)
    sample = [x for s, g in sorted(groups.items()) for x in rng.sample(g, counts[s])]
    rng.shuffle(sample)
    return sample
