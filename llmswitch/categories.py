"""Task category of a prompt: small, fast, offline and deterministic (word lists, regexes, counts).

Used by `llmswitch advise` to stratify its sample and break its results down, and meant for the
rankings dashboard. Categories (ties are broken in this order):

- ``programming``: code (fenced, or lines that look like Python/JS/C/SQL), tracebacks, or asking about
  code ("write a function", "fix this bug", "what does this code return").
- ``math``: LaTeX, equations and arithmetic, number-dense word problems ("how many", "how much",
  "find the value", "probability", quantities with units).
- ``translation``: an explicit request to translate, or "how do you say … / into Spanish".
- ``writing``: produce or rework prose (story, poem, essay, email, cover letter, rewrite, paraphrase).
- ``summarization``: summarise, TL;DR, key points, extract fields from a given text.
- ``analysis``: explanations, comparisons, recommendations and factual questions (analysis / QA).
- ``chat``: greetings, jokes, role-play, small talk, and anything with too little evidence.

How: each category adds up weighted evidence (keywords, each counted at most 3 times; phrases; code
and maths structure; how many numbers there are); the highest score wins if it reaches `_MIN_SCORE`,
else ``chat``. An answer-template fence (```json {"answer": "___"}```) is a format instruction, not
code, and is removed first, so a word problem that asks for a JSON answer stays ``math``. Only the
first and last 6,000 characters are read, so a long prompt costs the same as a short one.

On the 1,988 published prompts of the routing data (GSM8K, MATH level 5, CRUXEval) it puts every
CRUXEval prompt in ``programming`` and 99.4 % of the maths ones in ``math``, at ~160 µs per prompt
(tests/test_advisor_units.py checks the first two).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["CATEGORIES", "category_of_messages", "classify", "scores"]

CATEGORIES = ("programming", "math", "translation", "writing", "summarization", "analysis", "chat")
_MIN_SCORE = 1.5
_WINDOW = 6000
_CAP = 3  # a keyword or phrase counts at most this often: one repeated word cannot decide alone

# Single words, lower case: word -> (category, weight).
_KEYWORDS: dict[str, tuple[str, float]] = {}
for _cat, _weight, _words in (
    (
        "programming",
        0.75,
        "function method class variable compile compiler debug bug refactor regex "
        "python javascript typescript java golang rust sql bash dockerfile kubernetes api endpoint "
        "repository git stacktrace traceback exception runtime segfault html css async",
    ),
    ("programming", 1.5, "def elif lambda printf println nullptr"),
    (
        "math",
        0.75,
        "integer integers equation equations polynomial probability percentage remainder "
        "divisible prime derivative integral matrix triangle circle radius compute calculate solve "
        "evaluate simplify sum product total average ratio fraction digits divided multiplied",
    ),
    (
        "math",
        0.4,
        "twice thrice half quarter times each per cost costs price dollars cents percent "
        "inches feet meters miles kilometers pounds kilograms hours minutes seconds days weeks",
    ),
    ("translation", 3.0, "translate translation translating translated"),
    ("writing", 2.5, "rewrite rephrase paraphrase proofread"),
    (
        "writing",
        0.75,
        "story poem haiku essay email letter blog article speech tweet lyrics slogan "
        "tagline tone style narrative character plot rhyme stanza",
    ),
    ("summarization", 3.0, "summarize summarise summary summarization tldr"),
    (
        "analysis",
        1.5,
        "explain analyze analyse compare contrast pros cons advantages disadvantages implications recommend",
    ),
    ("chat", 2.0, "hello hi hey thanks roleplay"),
):
    for _word in _words.split():
        _KEYWORDS[_word] = (_cat, _weight)
_PUNCTUATION = str.maketrans(dict.fromkeys('!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~0123456789', " "))

# Phrases, matched on the lower-cased text: (category, weight, pattern). Each starts with a literal,
# which `re` locates with a fast substring search; a leading \b or alternation scans ~10x slower.
_PHRASES: list[tuple[str, float, str]] = [
    (
        "programming",
        2.0,
        r"write (?:a |an |the |this |my )?(?:code|function|script|program|class|query|test)",
    ),
    ("programming", 2.0, r"implement (?:a |an |the |this )?(?:function|class|method|algorithm)"),
    ("programming", 2.0, r"fix (?:this|the|my) (?:code|bug|function|error|test)"),
    ("programming", 2.0, r"what (?:does|will) (?:this|the following) (?:code|program|function)"),
    ("math", 1.5, r"how (?:many|much|long|far|old|often|tall|high)\b"),
    ("math", 1.5, r"find (?:the|all|x|y|n)\b"),
    (
        "math",
        1.5,
        r"what (?:is|was|will be) the (?:value|sum|product|remainder|probability|area|perimeter|"
        r"volume|number|smallest|largest|least|greatest|total|price|cost|distance)",
    ),
    ("math", 1.5, r"prove that"),
    ("translation", 2.0, r"how do (?:you|i) say"),
    (
        "translation",
        1.5,
        r"into (?:english|french|spanish|german|italian|portuguese|chinese|japanese|"
        r"korean|russian|arabic|hindi|dutch|turkish|vietnamese)\b",
    ),
    (
        "writing",
        3.0,
        r"write (?:me )?(?:a |an |the |some )?(?:short |funny |formal |persuasive )?(?:story|"
        r"poem|haiku|essay|e-?mail|letter|cover letter|blog|article|speech|tweet|post|song|"
        r"lyrics|slogan|tagline|description|bio|review|outline|paragraph|toast)",
    ),
    ("writing", 2.5, r"draft (?:a|an|the|my)\b"),
    ("writing", 2.5, r"make (?:it|this) (?:more|less|shorter|longer)"),
    ("writing", 2.5, r"improve (?:the|my|this) (?:writing|text|wording)"),
    ("summarization", 3.0, r"key (?:points|takeaways)"),
    ("summarization", 2.0, r"extract (?:the|all|every)\b"),
    ("summarization", 3.0, r"tl;dr"),
    ("analysis", 1.5, r"difference between"),
    ("analysis", 1.5, r"why (?:is|are|do|does|did)\b"),
    ("analysis", 1.5, r"what (?:is|are) the (?:reasons?|causes?|implications?|benefits?|capital|meaning)"),
    ("analysis", 1.5, r"should i\b"),
    ("analysis", 1.0, r"according to"),
    ("chat", 2.0, r"how are you"),
    ("chat", 2.0, r"who are you"),
    ("chat", 2.0, r"tell me a joke"),
    ("chat", 2.0, r"pretend (?:to be|you are)"),
]
_LOWER_RULES = [(c, re.compile(p), w) for c, w, p in _PHRASES]

# Structure, matched on the original text: (category, pattern, weight).
_RAW_RULES: list[tuple[str, re.Pattern[str], float]] = [
    (
        "programming",
        re.compile(
            r"```[ \t]*(?:python|py|js|javascript|ts|typescript|java|c\+\+|cpp|c|go|"
            r"rust|sql|bash|sh|ruby|php|kotlin|swift|scala|html|css)\b",
            re.I,
        ),
        3.0,
    ),
    ("programming", re.compile(r"\[PYTHON\]"), 3.0),
    ("programming", re.compile(r"^[ \t]*(?:async def|def|class)[ \t]+\w+[ \t]*[(:]", re.M), 2.0),
    ("programming", re.compile(r"^[ \t]*(?:import[ \t]+\w+|from[ \t]+[\w.]+[ \t]+import[ \t])", re.M), 1.5),
    (
        "programming",
        re.compile(r"^[ \t]*(?:public|private|static|function|const|let|var|fn|func)[ \t]+\w+", re.M),
        1.5,
    ),
    ("programming", re.compile(r"#include[ \t]*<|std::|System\.out|console\.log"), 2.0),
    ("programming", re.compile(r"SELECT [^\n]{1,200} FROM\b|INSERT INTO\b|CREATE TABLE\b"), 2.0),
    ("programming", re.compile(r"Traceback \(most recent call last\)"), 2.0),
    ("programming", re.compile(r"(?:Error|Exception): "), 1.0),
    ("programming", re.compile(r"assert \w+\([^\n]*\) *=="), 2.0),
    ("programming", re.compile(r"[;{}][ \t]*$", re.M), 0.3),
    (
        "math",
        re.compile(
            r"\\(?:frac|dfrac|sqrt|sum|int|cdot|times|pi|theta|alpha|beta|binom|log|sin|cos|"
            r"tan|le|ge|neq|lfloor|rfloor|angle|triangle|circ)\b"
        ),
        1.5,
    ),
    ("math", re.compile(r"\$[^$\n]{1,200}\$"), 1.5),
    ("math", re.compile(r"\d[ \t]*[-+*/^×÷=<>][ \t]*\d"), 1.0),
    (
        "analysis",
        re.compile(r"^[ \t]*(?:[Ww]hat|[Ww]ho|[Ww]hen|[Ww]here|[Ww]hich|[Ww]hy|[Hh]ow)\b[^?\n]*\?", re.M),
        1.5,
    ),
]
_NUMBER = re.compile(r"\d+")
# A fenced block that is an answer template is a format instruction, not code.
_TEMPLATE_FENCE = re.compile(r"```(?:json)?\s*\{[^`]*?(?:___|\"answer\"|\"reasoning\")[^`]*?\}\s*```", re.I)
_BARE_FENCE = re.compile(r"```[ \t]*\n(.*?)```", re.S)
_CODEISH = re.compile(r"[;{}=]|^ {2,}\S", re.M)


def scores(text: str) -> dict[str, float]:
    """Evidence for every category (0.0 when nothing matched) in one prompt's text."""
    if len(text) > 2 * _WINDOW:
        text = text[:_WINDOW] + "\n" + text[-_WINDOW:]
    if "```" in text:
        text = _TEMPLATE_FENCE.sub(" ", text)
    lower = text.lower()
    out = dict.fromkeys(CATEGORIES, 0.0)
    for word, count in Counter(lower.translate(_PUNCTUATION).split()).items():
        hit = _KEYWORDS.get(word)
        if hit is not None:
            out[hit[0]] += hit[1] * min(count, _CAP)
    for rules, haystack in ((_LOWER_RULES, lower), (_RAW_RULES, text)):
        for category, pattern, weight in rules:
            out[category] += weight * min(len(pattern.findall(haystack)), _CAP)
    for body in _BARE_FENCE.findall(text)[:3]:  # an untagged fence whose body looks like code
        if len(_CODEISH.findall(body)) >= 3:
            out["programming"] += 2.0
    # Word problems: numbers are evidence of maths in proportion to how many there are (capped).
    out["math"] += 0.3 * min(len(_NUMBER.findall(text)), 8)
    return out


def classify(text: str) -> str:
    """The category of one prompt's text (one of `CATEGORIES`)."""
    s = scores(text)
    best = max(CATEGORIES, key=lambda c: (s[c], -CATEGORIES.index(c)))
    return best if s[best] >= _MIN_SCORE else "chat"


def _texts(content: Any) -> Iterable[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def category_of_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    """Category of a chat request from its user turns: the last one decides; when it alone says
    nothing ("and now in French?"), the last three together do. System prompts are ignored, since an
    application shares one across very different requests."""
    users = [t for m in messages if m.get("role", "user") == "user" for t in _texts(m.get("content"))]
    if not users:
        users = [t for m in messages for t in _texts(m.get("content"))]
    if not users:
        return "chat"
    last = classify(users[-1])
    if last != "chat" or len(users) == 1:
        return last
    return classify("\n".join(users[-3:]))
