"""The curated overlay (`overlay.yaml`): labs, origin countries, open-weights licences, aliases."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["OVERLAY_PATH", "ExtraModel", "Lab", "LicenceRule", "Overlay", "load_overlay"]

OVERLAY_PATH = Path(__file__).with_name("overlay.yaml")


@dataclass(frozen=True, slots=True)
class LicenceRule:
    pattern: re.Pattern[str]
    licence: str


@dataclass(frozen=True, slots=True)
class Lab:
    id: str
    name: str
    country: str
    models: re.Pattern[str]
    orgs: frozenset[str]
    providers: frozenset[str]  # genai-prices / models.dev provider ids of the lab's own API
    open: tuple[LicenceRule, ...]
    closed: tuple[re.Pattern[str], ...]
    default_open: bool | None

    def licence(self, key: str) -> str | None:
        return next((r.licence for r in self.open if r.pattern.search(key)), None)

    def is_closed(self, key: str) -> bool:
        return any(p.search(key) for p in self.closed)


@dataclass(frozen=True, slots=True)
class ExtraModel:
    """A model no package lists (overlay `models:`): metadata only, never a price."""

    id: str
    name: str | None
    lab: str | None
    context_window: int | None
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Overlay:
    labs: tuple[Lab, ...]
    notable: tuple[str, ...]
    aliases: dict[str, str]  # catalog key → catalog key
    models: dict[str, ExtraModel]  # catalog key → model

    def lab_by_org(self, org: str) -> Lab | None:
        return next((lab for lab in self.labs if org in lab.orgs), None)

    def lab_by_name(self, key: str) -> Lab | None:
        return next((lab for lab in self.labs if lab.models.search(key)), None)

    def lab_by_provider(self, provider: str) -> Lab | None:
        return next((lab for lab in self.labs if provider in lab.providers), None)


def load_overlay(path: Path = OVERLAY_PATH) -> Overlay:
    from llmswitch.catalog.keys import catalog_key  # keys are normalised like the catalog's

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster
    data: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    labs = tuple(_lab(lab_id, d) for lab_id, d in data["labs"].items())
    return Overlay(
        labs=labs,
        notable=tuple(data.get("notable", ())),
        aliases={catalog_key(k): catalog_key(v) for k, v in data.get("aliases", {}).items()},
        models={catalog_key(k): _extra(k, d) for k, d in data.get("models", {}).items()},
    )


def _extra(model_id: str, d: dict[str, Any]) -> ExtraModel:
    return ExtraModel(
        id=model_id,
        name=d.get("name"),
        lab=d.get("lab"),
        context_window=d.get("context_window"),
        input_modalities=tuple(d.get("input", ())),
        output_modalities=tuple(d.get("output", ())),
    )


def _lab(lab_id: str, d: dict[str, Any]) -> Lab:
    default = d.get("default")
    return Lab(
        id=lab_id,
        name=d["name"],
        country=d["country"],
        models=re.compile(d["models"]),
        orgs=frozenset(d.get("orgs", ())),
        providers=frozenset(d.get("providers", ())),
        open=tuple(LicenceRule(re.compile(r["match"]), r["licence"]) for r in d.get("open", ())),
        closed=tuple(re.compile(p) for p in d.get("closed", ())),
        default_open=None if default is None else bool(default),
    )
