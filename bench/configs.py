"""Config files of the targets: nginx as upstream and as the floor hop, llmswitch, LiteLLM."""

from __future__ import annotations

from pathlib import Path

from fixtures import AUTO_CANDIDATES, CLIENT_KEY, COMPLETION, ECHO_MODULE, sse_events

NGINX_HEAD = """worker_processes 1;
daemon off;
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
{load}
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path {dir}/{name}-body;
  proxy_temp_path {dir}/{name}-proxy;
"""


def upstream_conf(work: Path, port: int, echo: bool) -> str:
    events = sse_events()
    stream = (
        "".join(f"\n      echo -n '{e}';" for e in events)
        if echo
        else f"\n      return 200 '{''.join(events)}';"
    )
    return NGINX_HEAD.format(
        dir=work, name="upstream", load=f"load_module {ECHO_MODULE};" if echo else ""
    ) + (
        f"  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n"
        f"    location = /v1/chat/completions {{\n      default_type application/json;\n"
        f"      return 200 '{COMPLETION}';\n    }}\n"
        "    location = /stream/v1/chat/completions {\n      default_type text/event-stream;"
        f"{stream}\n    }}\n"
        "  }\n}\n"
    )


def floor_conf(work: Path, port: int, upstream: int) -> str:
    proxy = 'proxy_pass http://up;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";'
    return NGINX_HEAD.format(dir=work, name="floor", load="") + (
        f"  upstream up {{\n    server 127.0.0.1:{upstream};\n    keepalive 256;\n"
        "    keepalive_requests 10000000;\n  }\n"
        f"  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n"
        f"    location / {{\n      {proxy}\n    }}\n"
        f"    location /stream/ {{\n      {proxy}\n      proxy_buffering off;\n    }}\n"
        "  }\n}\n"
    )


def llmswitch_conf(work: Path, port: int, upstream: int, auto: bool = False) -> str:
    """The gateway as users run it; `auto` adds a predictive `auto` model over two candidates (in its own
    process: the router's numpy and model file would otherwise count in the plain gateway's RSS)."""
    price = "price: {input: 0.15, output: 0.60, cached_input: 0.075}"
    extra = ""
    if auto:
        extra = "".join(
            f"  {name}:\n    deployments: [{{provider: up, model: gpt-4o-mini, {price}}}]\n"
            for name in AUTO_CANDIDATES
        )
        names = ", ".join(AUTO_CANDIDATES)
        extra += f"  auto:\n    route: {{strategy: predictive, candidates: [{names}], target: 0.8}}\n"
    return f"""server: {{host: 127.0.0.1, port: {port}}}
storage: {{url: "sqlite:///{work}/ledger.db"}}
auth:
  keys:
    - {{id: bench, key: {CLIENT_KEY}}}
providers:
  up: {{api: openai, base_url: "http://127.0.0.1:{upstream}/v1", api_key: sk-upstream-key}}
  up-stream: {{api: openai, base_url: "http://127.0.0.1:{upstream}/stream/v1", api_key: sk-upstream-key}}
models:
  bench:
    deployments: [{{provider: up, model: gpt-4o-mini, {price}}}]
  bench-stream:
    deployments: [{{provider: up-stream, model: gpt-4o-mini, {price}}}]
{extra}"""


def litellm_conf(upstream: int) -> str:
    models = ""
    for name, prefix in (("bench", "/v1"), ("bench-stream", "/stream/v1")):
        models += (
            f"  - model_name: {name}\n    litellm_params:\n      model: openai/gpt-4o-mini\n"
            f"      api_base: http://127.0.0.1:{upstream}{prefix}\n      api_key: sk-upstream-key\n"
        )
    return (
        "model_list:\n" + models + "litellm_settings:\n  callbacks: []\n  success_callback: []\n"
        "  failure_callback: []\n  set_verbose: false\n  telemetry: false\n"
        f"general_settings:\n  master_key: {CLIENT_KEY}\n"
    )
