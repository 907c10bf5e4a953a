"""Provider presets: one line (`preset: moonshot`) instead of a URL, a protocol and a key variable.

A preset holds provider facts only: base URL, wire protocol, auth style, the environment variable its
key comes from by default, the operator's jurisdiction, and the genai-prices provider id that prices it.
Each entry names the official page the base URL and key convention were taken from.

Conventions:
- `base_url` is what the gateway appends `/chat/completions` to (openai) or `/messages` (anthropic),
  so it includes the API version segment (`/v1`, `/v4`, `/v1beta/openai`).
- `region` is the jurisdiction of the company running the endpoint (what a data-residency policy
  cares about), not the data-centre location: DashScope international runs in Singapore but is
  Alibaba Cloud's, so it is CN. `local` means a server on this machine or network.
- `pricing_provider` is the genai-prices provider id (checked against the pinned data by
  tests/test_presets.py); None where genai-prices has no such provider (DashScope) or the endpoint
  has no list price (local engines, which need a `price:` or the self-hosting cost model).

`expand_provider` merges a preset into a raw `providers:` entry from YAML (after `${VAR}`
substitution), the user's keys always winning. A preset's key is not copied into the mapping: the
variable's *name* is returned as `api_key_env`, so the config loader decides how a missing variable is
reported (`api_key_from_env` gives the default behaviour: an error naming the variable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ALIASES",
    "PRESETS",
    "Api",
    "Auth",
    "MissingAPIKey",
    "Preset",
    "UnknownPreset",
    "api_key_from_env",
    "expand_provider",
    "presets_with_keys",
    "resolve_preset",
]

Api = Literal["openai", "anthropic"]
Auth = Literal["bearer", "x-api-key", "none"]


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    title: str
    base_url: str
    api: Api
    auth: Auth
    api_key_env: str | None  # None: no key needed (local engines)
    region: str  # CN | US | EU | local
    pricing_provider: str | None  # genai-prices provider id
    docs: str  # official API docs page the URL and key convention come from

    @property
    def local(self) -> bool:
        return self.region == "local"


_PRESET_LIST: tuple[Preset, ...] = (
    # -- labs' own APIs (China) ----------------------------------------------------------------
    Preset(
        # Docs: "base_url https://api.deepseek.com ... you may also use https://api.deepseek.com/v1"
        # (the v1 is not a model version); examples read DEEPSEEK_API_KEY.
        name="deepseek",
        title="DeepSeek",
        base_url="https://api.deepseek.com/v1",
        api="openai",
        auth="bearer",
        api_key_env="DEEPSEEK_API_KEY",
        region="CN",
        pricing_provider="deepseek",
        docs="https://api-docs.deepseek.com/",
    ),
    Preset(
        # International platform (platform.moonshot.ai, docs now served from platform.kimi.ai);
        # mainland China uses https://api.moonshot.cn/v1 with a separate key: override base_url.
        name="moonshot",
        title="Moonshot AI (Kimi)",
        base_url="https://api.moonshot.ai/v1",
        api="openai",
        auth="bearer",
        api_key_env="MOONSHOT_API_KEY",
        region="CN",
        pricing_provider="moonshotai",
        docs="https://platform.moonshot.ai/docs/api/chat",
    ),
    Preset(
        # General (pay-as-you-go) endpoint; GLM Coding Plan keys need .../api/coding/paas/v4 instead,
        # and mainland accounts https://open.bigmodel.cn/api/paas/v4 (genai-prices id "zhipuai").
        name="zai",
        title="Z.ai (GLM)",
        base_url="https://api.z.ai/api/paas/v4",
        api="openai",
        auth="bearer",
        api_key_env="ZAI_API_KEY",
        region="CN",
        pricing_provider="zai",
        docs="https://docs.z.ai/guides/develop/openai/python",
    ),
    Preset(
        # Alibaba Cloud Model Studio, Singapore region ("DashScope domain" table); Beijing is
        # dashscope.aliyuncs.com, US (Virginia) dashscope-us.aliyuncs.com, each with its own keys.
        # genai-prices has no Alibaba provider: deployments here need `price:` to be billed.
        name="dashscope",
        title="Alibaba Cloud Model Studio / DashScope international (Qwen)",
        base_url="https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        api="openai",
        auth="bearer",
        api_key_env="DASHSCOPE_API_KEY",
        region="CN",
        pricing_provider=None,
        docs="https://www.alibabacloud.com/help/en/model-studio/base-url",
    ),
    Preset(
        # International platform (platform.minimax.io); the China platform is api.minimaxi.com.
        # MiniMax also serves an Anthropic-compatible API at https://api.minimax.io/anthropic.
        name="minimax",
        title="MiniMax",
        base_url="https://api.minimax.io/v1",
        api="openai",
        auth="bearer",
        api_key_env="MINIMAX_API_KEY",
        region="CN",
        pricing_provider="minimax",
        docs="https://platform.minimax.io/docs/api-reference/text-openai-api",
    ),
    # -- routers and inference clouds (US) ------------------------------------------------------
    Preset(
        name="openrouter",
        title="OpenRouter",
        base_url="https://openrouter.ai/api/v1",
        api="openai",
        auth="bearer",
        api_key_env="OPENROUTER_API_KEY",
        region="US",
        pricing_provider="openrouter",
        docs="https://openrouter.ai/docs/quickstart",
    ),
    Preset(
        # The docs now use api.together.ai (api.together.xyz still answers). genai-prices matches
        # only the .xyz host, hence the explicit pricing_provider.
        name="together",
        title="Together AI",
        base_url="https://api.together.ai/v1",
        api="openai",
        auth="bearer",
        api_key_env="TOGETHER_API_KEY",
        region="US",
        pricing_provider="together",
        docs="https://docs.together.ai/docs/inference/openai-compatibility",
    ),
    Preset(
        name="fireworks",
        title="Fireworks AI",
        base_url="https://api.fireworks.ai/inference/v1",
        api="openai",
        auth="bearer",
        api_key_env="FIREWORKS_API_KEY",
        region="US",
        pricing_provider="fireworks",
        docs="https://docs.fireworks.ai/tools-sdks/openai-compatibility",
    ),
    Preset(
        name="groq",
        title="Groq",
        base_url="https://api.groq.com/openai/v1",
        api="openai",
        auth="bearer",
        api_key_env="GROQ_API_KEY",
        region="US",
        pricing_provider="groq",
        docs="https://console.groq.com/docs/openai",
    ),
    # -- frontier labs (US) ---------------------------------------------------------------------
    Preset(
        name="openai",
        title="OpenAI",
        base_url="https://api.openai.com/v1",
        api="openai",
        auth="bearer",
        api_key_env="OPENAI_API_KEY",
        region="US",
        pricing_provider="openai",
        docs="https://platform.openai.com/docs/api-reference/chat",
    ),
    Preset(
        # Anthropic's SDK base is https://api.anthropic.com and it posts to /v1/messages; with our
        # convention (version in base_url, gateway appends /messages) that is .../v1.
        name="anthropic",
        title="Anthropic",
        base_url="https://api.anthropic.com/v1",
        api="anthropic",
        auth="x-api-key",
        api_key_env="ANTHROPIC_API_KEY",
        region="US",
        pricing_provider="anthropic",
        docs="https://docs.anthropic.com/en/api/messages",
    ),
    Preset(
        # Gemini API's OpenAI-compatible endpoint (AI Studio keys, Bearer auth).
        name="gemini",
        title="Google Gemini (OpenAI-compatible endpoint)",
        base_url="https://generativelanguage.googleapis.com/v1beta/openai",
        api="openai",
        auth="bearer",
        api_key_env="GEMINI_API_KEY",
        region="US",
        pricing_provider="google",
        docs="https://ai.google.dev/gemini-api/docs/openai",
    ),
    # -- local engines at their default ports -----------------------------------------------------
    Preset(
        # `vllm serve MODEL` listens on port 8000; `--api-key` makes it require a Bearer key.
        name="vllm",
        title="vLLM (local)",
        base_url="http://127.0.0.1:8000/v1",
        api="openai",
        auth="none",
        api_key_env=None,
        region="local",
        pricing_provider=None,
        docs="https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
    ),
    Preset(
        # `python -m sglang.launch_server` listens on port 30000.
        name="sglang",
        title="SGLang (local)",
        base_url="http://127.0.0.1:30000/v1",
        api="openai",
        auth="none",
        api_key_env=None,
        region="local",
        pricing_provider=None,
        docs="https://docs.sglang.io/docs/basic_usage/send_request",
    ),
    Preset(
        # `llama-server -m model.gguf` listens on 127.0.0.1:8080 (also the xllamacpp server's default).
        name="llamacpp",
        title="llama.cpp server (local)",
        base_url="http://127.0.0.1:8080/v1",
        api="openai",
        auth="none",
        api_key_env=None,
        region="local",
        pricing_provider=None,
        docs="https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md",
    ),
    Preset(
        # Ollama's OpenAI-compatible API on port 11434; local requests need no key.
        name="ollama",
        title="Ollama (local)",
        base_url="http://127.0.0.1:11434/v1",
        api="openai",
        auth="none",
        api_key_env=None,
        region="local",
        pricing_provider=None,
        docs="https://docs.ollama.com/api/openai-compatibility",
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESET_LIST}

# Other names people reach for; resolve_preset accepts them, PRESETS keys stay canonical.
ALIASES: dict[str, str] = {
    "kimi": "moonshot",
    "moonshotai": "moonshot",
    "z.ai": "zai",
    "glm": "zai",
    "zhipu": "zai",
    "alibaba": "dashscope",
    "qwen": "dashscope",
    "model-studio": "dashscope",
    "google": "gemini",
    "llama.cpp": "llamacpp",
    "llama-cpp": "llamacpp",
    "llama-server": "llamacpp",
}


class UnknownPreset(KeyError):
    """No preset by that name; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would repr() the message, quotes and all
        return str(self.args[0])


class MissingAPIKey(ValueError):
    """A preset provider's key variable is not set."""

    def __init__(self, variable: str, preset: str | None = None) -> None:
        self.variable = variable
        self.preset = preset
        who = f"preset {preset!r}" if preset else "provider"
        super().__init__(
            f"environment variable {variable} is not set ({who} takes its API key from it;"
            " set it, or give the provider an explicit `api_key`)"
        )


def resolve_preset(name: str) -> Preset:
    key = name.strip().lower()
    found = PRESETS.get(ALIASES.get(key, key))
    if found is None:
        raise UnknownPreset(f"unknown provider preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return found


def expand_provider(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Fill a raw `providers:` entry from its `preset:`, never overriding a key the user set.

    Returns a new dict; an entry without `preset` comes back unchanged. Keys added from the preset:
    `api`, `base_url`, `auth`, `region`, `pricing_provider` (when genai-prices has the provider) and
    `api_key_env`: the name of the variable holding the key, set only when the user gave no
    `api_key` (None for local engines). The loader resolves it with `api_key_from_env`. `preset` is
    kept, normalised to the canonical name.

    Derived defaults: overriding `api` without `auth` gives that protocol's usual auth (anthropic →
    x-api-key, openai → bearer); an `api_key` on a keyless local preset turns auth into bearer
    (vLLM, SGLang and llama.cpp started with `--api-key` expect `Authorization: Bearer`).
    """
    if "preset" not in raw:
        return dict(raw)
    name = raw["preset"]
    if not isinstance(name, str):
        raise UnknownPreset(f"`preset` must be a name, got {name!r}; valid presets: {', '.join(PRESETS)}")
    p = resolve_preset(name)
    out: dict[str, Any] = {
        "preset": p.name,
        "api": p.api,
        "base_url": p.base_url,
        "auth": p.auth,
        "region": p.region,
    }
    if p.pricing_provider is not None:
        out["pricing_provider"] = p.pricing_provider
    out["api_key_env"] = None if "api_key" in raw else p.api_key_env
    user = {k: v for k, v in raw.items() if k != "preset"}
    if "auth" not in user:
        if "api" in user and user["api"] != p.api:
            out["auth"] = "x-api-key" if user["api"] == "anthropic" else "bearer"
        if out["auth"] == "none" and user.get("api_key"):
            out["auth"] = "bearer"
    out.update(user)
    return out


def api_key_from_env(provider: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """The key an expanded provider uses: its `api_key`, else `env[api_key_env]`, else None.

    Raises MissingAPIKey when `api_key_env` names a variable that is unset or empty.
    """
    if provider.get("api_key") is not None:
        return str(provider["api_key"])
    var = provider.get("api_key_env")
    if not var:
        return None
    value = env.get(var)
    if not value:
        raise MissingAPIKey(var, provider.get("preset"))
    return value


def presets_with_keys(env: Mapping[str, str]) -> list[str]:
    """Names of the presets whose key variable is set (non-empty), in PRESETS order.

    For the no-config default: every provider the environment already holds a key for.
    """
    return [p.name for p in _PRESET_LIST if p.api_key_env and env.get(p.api_key_env)]
