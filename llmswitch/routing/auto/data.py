"""Load a folder of routing outcome data.

The format (see ``shared/data/routing/README.md``): ``prompts.jsonl.gz`` (``prompt_id``, ``prompt``,
optionally ``input_tokens``), one or more ``outcomes*.jsonl.gz`` (``prompt_id``, ``model``, ``quality`` in
[0, 1], ``output_tokens``), optionally ``outputs*.jsonl.gz`` (``prompt_id``, ``model``, ``text``),
``prices.csv`` (``model``, ``input_usd_per_mtok``, ``output_usd_per_mtok``) and ``split.json``
(``train`` / ``test`` lists of prompt ids). Any other column is ignored: nothing here depends on which
benchmarks the prompts come from.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

__all__ = ["RoutingData", "estimate_tokens", "load_routing_data"]


def estimate_tokens(text: str) -> float:
    """Rough token count of *text* (about 4 characters per token) when no count is recorded."""
    return max(1.0, len(text) / 4.0)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                yield json.loads(line)


def _float(v: Any, default: float = float("nan")) -> float:
    if v is None or v == "":
        return default
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return 1.0 if v.lower() == "true" else 0.0
    return float(v)


def _files(folder: Path, stem: str) -> list[Path]:
    """``stem.jsonl.gz``, ``stem_*.jsonl.gz`` (and uncompressed ``.jsonl``), sorted."""
    found = sorted(set(folder.glob(f"{stem}*.jsonl.gz")) | set(folder.glob(f"{stem}*.jsonl")))
    return [p for p in found if p.name.split(".")[0] == stem or p.name.startswith(stem + "_")]


@dataclass
class RoutingData:
    """Prompts × models outcome matrices. ``quality``/``output_tokens`` are NaN where nothing is recorded."""

    prompt_ids: list[str]
    prompts: list[str]
    input_tokens: FloatArray  # (n,)
    models: list[str]
    quality: FloatArray  # (n, m)
    output_tokens: FloatArray  # (n, m)
    prices: dict[str, tuple[float, float]]  # model -> USD per Mtok (input, output)
    texts: list[list[str | None]] | None = None  # [prompt][model] raw output, if outputs were loaded
    split: dict[str, list[str]] = field(default_factory=dict)

    @property
    def cost(self) -> FloatArray:
        """(n, m) USD cost of each recorded answer: input and output tokens at list price."""
        pin = np.array([self.prices[m][0] for m in self.models])
        pout = np.array([self.prices[m][1] for m in self.models])
        out = np.nan_to_num(self.output_tokens, nan=0.0)
        c: FloatArray = (self.input_tokens[:, None] * pin[None, :] + out * pout[None, :]) / 1e6
        c[np.isnan(self.quality)] = np.nan
        return c

    def index(self, ids: Sequence[str]) -> list[int]:
        pos = {p: i for i, p in enumerate(self.prompt_ids)}
        missing = [p for p in ids if p not in pos]
        if missing:
            log.warning("%d prompt ids of the split are not in prompts (first: %s)", len(missing), missing[0])
        return [pos[p] for p in ids if p in pos]

    def subset(self, rows: Sequence[int]) -> RoutingData:
        r = list(rows)
        return RoutingData(
            prompt_ids=[self.prompt_ids[i] for i in r],
            prompts=[self.prompts[i] for i in r],
            input_tokens=self.input_tokens[r],
            models=list(self.models),
            quality=self.quality[r],
            output_tokens=self.output_tokens[r],
            prices=dict(self.prices),
            texts=None if self.texts is None else [self.texts[i] for i in r],
            split={},
        )

    def part(self, name: str) -> RoutingData:
        """The rows of split ``name`` (e.g. ``train`` or ``test``)."""
        if name not in self.split:
            raise KeyError(f"split.json has no {name!r} list")
        return self.subset(self.index(self.split[name]))

    def complete_models(self) -> list[str]:
        """Models with a recorded outcome for every prompt of this data."""
        counts = np.isnan(self.quality).sum(axis=0).tolist()
        return [m for m, c in zip(self.models, counts, strict=True) if c == 0]

    def restrict_models(self, models: Sequence[str]) -> RoutingData:
        cols = [self.models.index(m) for m in models]
        return RoutingData(
            prompt_ids=list(self.prompt_ids),
            prompts=list(self.prompts),
            input_tokens=self.input_tokens,
            models=list(models),
            quality=self.quality[:, cols],
            output_tokens=self.output_tokens[:, cols],
            prices={m: self.prices[m] for m in models},
            texts=None if self.texts is None else [[row[c] for c in cols] for row in self.texts],
            split=dict(self.split),
        )


def load_routing_data(folder: str | Path, *, outputs: bool = True) -> RoutingData:
    """Read a routing-data folder (see module doc). ``outputs=False`` skips the raw output texts."""
    d = Path(folder)
    prompt_path = next(iter(_files(d, "prompts")), None)
    if prompt_path is None:
        raise FileNotFoundError(f"{d}: no prompts.jsonl(.gz)")
    ids: list[str] = []
    prompts: list[str] = []
    in_tok: list[float] = []
    for r in _rows(prompt_path):
        pid = str(r["prompt_id"])
        text = str(r.get("prompt") or r.get("question") or "")
        ids.append(pid)
        prompts.append(text)
        in_tok.append(_float(r.get("input_tokens"), estimate_tokens(text)))
    pos = {p: i for i, p in enumerate(ids)}

    prices: dict[str, tuple[float, float]] = {}
    price_path = d / "prices.csv"
    if price_path.exists():
        with price_path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                try:
                    prices[row["model"]] = (
                        float(row["input_usd_per_mtok"]),
                        float(row["output_usd_per_mtok"]),
                    )
                except (KeyError, ValueError):
                    log.warning("prices.csv: unusable row %r", row)

    outcome_files = _files(d, "outcomes")
    if not outcome_files:
        raise FileNotFoundError(f"{d}: no outcomes*.jsonl(.gz)")
    cells: dict[tuple[int, str], tuple[float, float]] = {}
    models: list[str] = []
    seen: set[str] = set()
    for path in outcome_files:
        for r in _rows(path):
            i = pos.get(str(r["prompt_id"]))
            if i is None:
                continue
            m = str(r["model"])
            if m not in seen:
                seen.add(m)
                models.append(m)
            q = min(1.0, max(0.0, _float(r.get("quality"), 0.0)))
            chars = _float(r.get("output_chars"), 0.0)
            cells[(i, m)] = (q, _float(r.get("output_tokens"), max(0.0, chars / 4.0)))
    unpriced = [m for m in models if m not in prices]
    if unpriced:
        log.warning("no price in prices.csv for %s: left out", ", ".join(unpriced))
        models = [m for m in models if m in prices]
    col = {m: j for j, m in enumerate(models)}
    n, k = len(ids), len(models)
    quality = np.full((n, k), np.nan)
    out_tok = np.full((n, k), np.nan)
    for (i, m), (q, t) in cells.items():
        j = col.get(m)
        if j is not None:
            quality[i, j] = q
            out_tok[i, j] = t

    texts: list[list[str | None]] | None = None
    if outputs:
        texts = [[None] * k for _ in range(n)]
        for path in _files(d, "outputs"):
            for r in _rows(path):
                i = pos.get(str(r["prompt_id"]))
                j = col.get(str(r["model"]))
                if i is not None and j is not None:
                    texts[i][j] = str(r.get("text") or "")

    split: dict[str, list[str]] = {}
    split_path = d / "split.json"
    if split_path.exists():
        raw = json.loads(split_path.read_text(encoding="utf-8"))
        split = {k2: [str(x) for x in v] for k2, v in raw.items() if isinstance(v, list)}
    return RoutingData(
        prompt_ids=ids,
        prompts=prompts,
        input_tokens=np.array(in_tok, dtype=np.float64),
        models=models,
        quality=quality,
        output_tokens=out_tok,
        prices={m: prices[m] for m in models},
        texts=texts,
        split=split,
    )
