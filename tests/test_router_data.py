"""Routing-data loading on a tiny synthetic folder (nothing dataset-specific), answers, predictor."""

from __future__ import annotations

import csv
import gzip
import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest

from llmswitch.routing.auto.answers import canonical_answer, extract_answer, normalize_answer
from llmswitch.routing.auto.data import load_routing_data
from llmswitch.routing.auto.features import MAX_FEATURE_CHARS, LexicalFeaturizer, prompt_text, shape_features
from llmswitch.routing.auto.predictor import QualityPredictor

MODELS = {"tiny": (0.1, 0.2), "mid": (1.0, 2.0), "big": (10.0, 30.0)}


def _write_jsonl_gz(path: Path, rows: list[dict[str, object]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def write_synthetic(folder: Path, n: int = 80, seed: int = 0) -> Path:
    """A folder in the routing-data format with a planted signal.

    Prompts are "kind A" (mention apples, short) or "kind B" (long, with code). ``tiny`` is right on A
    and wrong on B, ``mid`` right on A and on 60 % of B, ``big`` always right. Wrong answers differ per
    model, so agreement between cheap models means correctness.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    prompts, outcomes, outputs, extra = [], [], [], []
    for i in range(n):
        kind_a = i % 2 == 0
        truth = rng.randint(10, 99)
        if kind_a:
            text = f"How many apples do I have if I add {truth - 5} and 5? Answer in JSON."
        else:
            body = "\n".join(f"    x = x * {k} + {k}" for k in range(1, 8))
            text = f"What does this return?\ndef f(x):\n{body}\n    return x % {truth}\nassert f(3) == ??"
        prompts.append({"prompt_id": f"p{i}", "prompt": text, "input_tokens": str(len(text) // 4)})
        for m in MODELS:
            right = m == "big" or kind_a or (m == "mid" and rng.random() < 0.6)
            ans = truth if right else truth + {"tiny": 1, "mid": 2, "big": 3}[m]
            body_text = json.dumps({"reasoning": "steps", "answer": str(ans)})
            outputs.append({"prompt_id": f"p{i}", "model": m, "text": body_text})
            outcomes.append(
                {
                    "prompt_id": f"p{i}",
                    "model": m,
                    "quality": "1.0" if right else 0.0,  # strings and numbers both occur
                    "output_tokens": 20 if kind_a else 60,
                    "output_chars": len(body_text),
                }
            )
        if i % 3 == 0:  # an extra model with partial coverage
            extra.append({"prompt_id": f"p{i}", "model": "partial", "quality": 1.0, "output_tokens": 5})
    _write_jsonl_gz(folder / "prompts.jsonl.gz", prompts)
    _write_jsonl_gz(folder / "outcomes.jsonl.gz", outcomes)
    _write_jsonl_gz(folder / "outcomes_extra.jsonl.gz", extra)
    _write_jsonl_gz(folder / "outputs.jsonl.gz", outputs)
    with (folder / "prices.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "input_usd_per_mtok", "output_usd_per_mtok", "origin"])
        for m, (pi, po) in {**MODELS, "partial": (0.5, 0.5)}.items():
            w.writerow([m, pi, po, "test"])
    ids = [p["prompt_id"] for p in prompts]
    split = {"seed": 0, "train": ids[: int(n * 0.7)], "test": ids[int(n * 0.7) :]}
    (folder / "split.json").write_text(json.dumps(split))
    return folder


def test_load_synthetic_folder(tmp_path: Path) -> None:
    d = load_routing_data(write_synthetic(tmp_path / "syn"))
    assert len(d.prompts) == 80
    assert d.models == ["tiny", "mid", "big", "partial"]
    assert d.complete_models() == ["tiny", "mid", "big"]
    assert np.isnan(d.quality[1, 3]) and d.quality[0, 3] == 1.0
    assert set(np.unique(d.quality[:, :3])) <= {0.0, 1.0}
    # cost = input tokens x input price + output tokens x output price, per million
    j = d.models.index("big")
    expected = (d.input_tokens[0] * 10.0 + 20 * 30.0) / 1e6
    assert math.isclose(d.cost[0, j], expected)
    assert d.texts is not None and json.loads(d.texts[0][0] or "{}")["answer"]
    train, test = d.part("train"), d.part("test")
    assert len(train.prompts) == 56 and len(test.prompts) == 24
    assert set(train.prompt_ids).isdisjoint(test.prompt_ids)
    no_text = load_routing_data(tmp_path / "syn", outputs=False)
    assert no_text.texts is None


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_routing_data(tmp_path)


@pytest.mark.parametrize(
    ("text", "canon"),
    [
        ('```json\n{"reasoning": "x", "answer": "42"}\n```', "n:42"),
        ('{"reasoning": "x", "answer": 42.0}', "n:42"),
        ('{"answer": "$1,250"}', "n:1250"),
        ('{"answer": "\\\\frac{8}{2}"}', "n:4"),
        ('{"answer": "x + y = 12"}', "n:12"),
        ('{"answer": "48 meters"}', "n:48"),
        (
            "{\"answer\": \"{'a': 1, 'b': [1, 2]}\"}",
            canonical_answer('{"answer": "{\\"b\\": [1, 2], \\"a\\": 1}"}'),
        ),
        ('{"answer": "\'abc\'"}', "s:abc"),
        ('{"answer": "abc"}', "s:abc"),
        ("Some reasoning.\nAnswer: 17", "n:17"),
        ("so the result is \\boxed{\\frac{3}{4}}", "n:0.75"),
        ("first 3 then 5 and finally 8.", "n:8"),
        ('"answer": "7 apples", broken json', "n:7"),
        ("", None),
    ],
)
def test_canonical_answers(text: str, canon: str | None) -> None:
    assert canonical_answer(text) == canon


def test_answer_types_stay_distinct() -> None:
    assert normalize_answer("'5'") != normalize_answer("5")  # a string is not a number
    assert normalize_answer("True") != normalize_answer("1")
    assert normalize_answer("[1, 2]") != normalize_answer("(1, 2)")
    assert normalize_answer("12 or 13") not in ("n:12", "n:13")
    assert extract_answer("no answer here") is None


def test_prompt_text_uses_user_turns() -> None:
    msgs = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "hello"}, {"type": "image_url", "image_url": {}}],
        },
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "what is 2+2?"},
    ]
    assert prompt_text(msgs) == "hello\nwhat is 2+2?"


def test_predictor_learns_planted_signal(tmp_path: Path) -> None:
    d = load_routing_data(write_synthetic(tmp_path / "syn", n=120), outputs=False)
    d = d.restrict_models(d.complete_models())
    train, test = d.part("train"), d.part("test")
    pred = QualityPredictor.fit(
        LexicalFeaturizer(hash_dim=0), train.prompts, train.models, train.quality, train.output_tokens
    )
    p = pred.predict(test.prompts)
    kind_a = np.array(["apples" in t for t in test.prompts])
    tiny = pred.index("tiny")
    assert p[kind_a, tiny].mean() > 0.8 > 0.2 > p[~kind_a, tiny].mean()
    assert p[:, pred.index("big")].min() > 0.8
    # mean output tokens are kept for cost estimates
    assert 20 <= pred.out_tokens[tiny] <= 60
    path = tmp_path / "pred.npz"
    pred.save(path)
    again = QualityPredictor.load(path)
    assert np.allclose(again.predict(test.prompts), p)
    # predict_one (the serving path, standardisation folded into the weights) agrees with predict
    assert np.allclose(again.predict_one(test.prompts[0]), p[0])


def test_model_file_with_old_features_is_refused(tmp_path: Path) -> None:
    d = load_routing_data(write_synthetic(tmp_path / "syn", n=40), outputs=False)
    pred = QualityPredictor.fit(
        LexicalFeaturizer(hash_dim=0), d.prompts, d.models, d.quality, d.output_tokens
    )
    pred.save(tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta["featurizer"] = {"kind": "lexical", "hash_dim": 0}  # how version-1 files described it
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(tmp_path / "old.npz", **arrays)
    QualityPredictor.load(tmp_path / "new.npz")  # the file as saved loads
    with pytest.raises(ValueError, match="retrain"):
        QualityPredictor.load(tmp_path / "old.npz")


def test_shape_features_of_huge_prompts_are_cheap_and_see_the_length() -> None:
    fz = LexicalFeaturizer(hash_dim=0)
    small = fz.one("def f(x):\n    return x + 1\n" * 100)
    huge = fz.one("def f(x):\n    return x + 1\n" * 100_000)  # 2.6 MB: featurised on head and tail
    assert huge[0] > small[0] + 6  # log length sees all of it
    assert np.allclose(huge[3:5], small[3:5], atol=0.01)  # the shares come from the sampled text
    unicode = fz.one("Wie viel ist die Hälfte von 84 €? Ответ: 42. half")
    assert unicode[3] > 0 and unicode[4] > 0 and unicode[-1] > 0


_CODE_WORDS = (b"def ", b"return", b"import ", b"lambda", b"print(", b"assert ", b"for ", b"while ", b"if ")
_FRACTION_WORDS = (b"half", b"third", b"quarter", b"twice", b"double", b"triple")


def _shape_by_definition(text: str) -> list[float]:
    """The 25 shape features computed the plain way, one class at a time: the specification that
    `shape_features` (one translate for all single-byte classes) must match exactly, since the shipped
    router model was trained on these values."""
    n_chars = len(text)
    if n_chars > MAX_FEATURE_CHARS:
        half = MAX_FEATURE_CHARS // 2
        text = text[:half] + "\n" + text[-half:]
    raw = text.encode("utf-8", "replace")
    lower = raw.lower()

    def n(chars: bytes) -> int:
        return sum(raw.count(bytes([c])) for c in chars)

    digit_runs = [r for r in re.split(rb"[^0-9]+", raw) if r]
    size = max(1, len(text))
    counts = [
        n_chars,
        n(b" \t\n\r") + 1,
        raw.count(b"\n") + 1,
        0,
        0,
        len(digit_runs),
        max(map(len, digit_runs), default=0),
        n(bytes(range(65, 91))),
        len(re.findall(r"\\[a-zA-Z]+", text)),
        raw.count(b"$"),
        raw.count(b"^"),
        n(b"{}"),
        n(b"[]"),
        n(b"()"),
        raw.count(b"=") - raw.count(b"=="),
        n(b"+-*/<>%"),
        sum(raw.count(w) for w in _CODE_WORDS),
        raw.count(b"\n    ") + raw.count(b"\n\t"),
        n(b"'\"`"),
        raw.count(b"_"),
        raw.count(b"?"),
        n(b".!?"),
        raw.count(b"\n\n"),
        raw.count(b"%") + lower.count(b"percent"),
        sum(lower.count(w) for w in _FRACTION_WORDS),
    ]
    out = [math.log1p(v) for v in counts]
    out[3] = n(b"0123456789") / size
    out[4] = n(bytes(range(65, 91)) + bytes(range(97, 123))) / size
    return out


def test_shape_features_match_their_definition() -> None:
    rng = random.Random(7)
    # Every counted byte, look-alikes, whitespace and multi-byte characters, in random mixes.
    alphabet = [
        *" \t\r\n\n    0123456789aZ$^{}[]()==+-*/<>%'\"`_?.!,;:~#@&|\\é€Ж中😀",
        *("def ", "return", "lambda", "print(", "half", "Third", "percent", "\\frac", "\n\t"),
    ]
    texts = [
        "",
        "Janet's ducks lay 16 eggs per day. She sells the remainder at $2 each: 16 - 3 - 4 = 9; 9 * 2 = 18?",
        "def f(x):\n    return x == 1 and x != 2  # 100% sure\n\nprint(f(3))",
        "Let $x^2 + y^2 = r^2$, find \\frac{dy}{dx} [twice], (half of it) — ¿qué?",
        "A" * (MAX_FEATURE_CHARS + 7) + "tail 123",
        *("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 400))) for _ in range(300)),
    ]
    for text in texts:
        assert shape_features(text) == _shape_by_definition(text), text[:80]
