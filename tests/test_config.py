"""Config: `${VAR}` substitution and strict validation; a bad config stops start-up naming the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmswitch.config import ConfigError, parse_config

GOOD = """
storage:
  url: sqlite:///llmswitch.db
  redis_url: null
providers:
  deepseek:
    api: openai
    base_url: https://api.deepseek.com/v1
    api_key: ${DEEPSEEK_API_KEY}
    region: CN
  openrouter:
    api: openai
    base_url: https://openrouter.ai/api/v1
    api_key: ${OPENROUTER_API_KEY}
    region: US
models:
  deepseek-v3:
    deployments:
      - provider: deepseek
        model: deepseek-chat
      - provider: openrouter
        model: deepseek/deepseek-chat-v3.1
        price: {input: 0.27, output: 1.10}
"""
ENV = {"DEEPSEEK_API_KEY": "sk-ds", "OPENROUTER_API_KEY": "sk-or"}


def test_brief_example_parses_with_substitution() -> None:
    cfg = parse_config(GOOD, env=ENV)
    assert cfg.providers["deepseek"].api_key == "sk-ds"
    assert cfg.providers["openrouter"].region == "US"
    dep = cfg.models["deepseek-v3"].deployments[1]
    assert dep.price is not None and (dep.price.input, dep.price.output) == (0.27, 1.10)


def test_default_value_syntax_and_comments_do_not_need_variables() -> None:
    text = GOOD.replace("${OPENROUTER_API_KEY}", "${OPENROUTER_API_KEY:-sk-default}")
    text = "# uses ${SOMETHING_UNSET} in a comment\n" + text
    cfg = parse_config(text, env={"DEEPSEEK_API_KEY": "x"})
    assert cfg.providers["openrouter"].api_key == "sk-default"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda t: t.replace("region: CN", "region: CN\n    regoin: CN"),
            "unknown key 'providers.deepseek.regoin'",
        ),
        (lambda t: t + "\nstorge: {}\n", "unknown key 'storge'"),
        (lambda t: t.replace("provider: openrouter", "provider: together"), "unknown provider 'together'"),
        (lambda t: t.replace("api: openai", "api: grpc", 1), "providers.deepseek.api"),
        (lambda t: t.replace("https://api.deepseek.com/v1", "api.deepseek.com"), "base_url"),
        (lambda t: t.replace("{input: 0.27, output: 1.10}", "{input: -1, output: 1}"), "price.input"),
        (lambda t: t + "\n  other:\n    fallbacks: [missing]\n", "unknown model 'missing'"),
        (lambda t: t.replace("        model: deepseek-chat\n", ""), "models.deepseek-v3.deployments.0.model"),
        (lambda t: t + "invalid: [yaml\n", "invalid YAML"),
    ],
)
def test_invalid_configs_name_the_problem(mutate: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        parse_config(mutate(GOOD), env=ENV)  # type: ignore[operator]


def test_missing_env_var_is_named() -> None:
    with pytest.raises(ConfigError, match="OPENROUTER_API_KEY"):
        parse_config(GOOD, env={"DEEPSEEK_API_KEY": "x"})


def test_auth_keys_need_exactly_one_secret() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        parse_config("auth:\n  keys:\n    - id: a\n")
    with pytest.raises(ConfigError, match="64 hex"):
        parse_config("auth:\n  keys:\n    - id: a\n      sha256: abc\n")


def test_serve_refuses_a_bad_config_with_exit_code_and_message(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("provider: openrouter", "provider: nowhere"))
    result = subprocess.run(
        [sys.executable, "-m", "llmswitch", "serve", "--config", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"DEEPSEEK_API_KEY": "a", "OPENROUTER_API_KEY": "b", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "unknown provider 'nowhere'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_preset_fills_the_provider_and_reads_its_key_variable() -> None:
    text = """
providers:
  moonshot: {preset: moonshot}
  mine: {preset: deepseek, base_url: "http://127.0.0.1:9/v1", api_key: sk-explicit}
  local: {preset: vllm}
models:
  kimi-k2: {deployments: [{provider: moonshot, model: kimi-k2-0905-preview}]}
"""
    cfg = parse_config(text, env={"MOONSHOT_API_KEY": "sk-moon"})
    moon = cfg.providers["moonshot"]
    assert moon.api_key == "sk-moon" and moon.base_url.startswith("https://api.moonshot")
    assert moon.region == "CN" and moon.pricing_provider == "moonshotai" and moon.api == "openai"
    mine = cfg.providers["mine"]
    assert mine.base_url == "http://127.0.0.1:9/v1" and mine.api_key == "sk-explicit"
    assert cfg.providers["local"].api_key is None and cfg.providers["local"].region == "local"
    with pytest.raises(ConfigError, match="MOONSHOT_API_KEY"):
        parse_config(text, env={})
    with pytest.raises(ConfigError, match="unknown provider preset 'moonshoot'"):
        parse_config("providers:\n  x: {preset: moonshoot}\n", env={})
