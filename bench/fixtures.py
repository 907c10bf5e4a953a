"""What every target is asked and what the upstream answers: request bodies, the fixed completion and
stream, the wrk script, and the paths and pins the other modules share."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LITELLM_VERSION = "1.108.7"
LITELLM_VENV = BENCH / ".venv-litellm"
ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")
CLIENT_KEY = "sk-bench-5f0c2a9e71d84b36a1e9c0d27f4b8e63"  # llmswitch client key, LiteLLM master key
MODES = ("json", "stream")
ALL_TARGETS = ("direct", "floor", "litellm", "llmswitch", "llmswitch-w2")
EXIT_SKIP = 77  # tools missing and not installable: the smoke test skips on this

BODIES = {
    "json": b'{"model":"bench","messages":[{"role":"user","content":"Say hello."}],"max_tokens":64}',
    "stream": b'{"model":"bench-stream","messages":[{"role":"user","content":"Say hello."}],'
    b'"max_tokens":64,"stream":true}',
}
# The routing-overhead probe: the same realistic prompt (a ~600-character word problem, the median size of
# the router's training prompts) sent to a plain model and to a predictive `auto` model over two
# candidates that both lead to the same upstream.
_ROUTED_PROMPT = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for "
    "her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh "
    "duck egg. How much in dollars does she make every day at the farmers' market? Think step by step, "
    "show your reasoning, then give the final answer as a JSON object with the keys reasoning and answer. "
    "Check the arithmetic twice: 16 - 3 - 4 = 9 eggs, and 9 eggs at $2 each. Do not round; if the answer "
    "is not a whole number, give it as a decimal. Keep the reasoning short (three sentences at most)."
)
ROUTED_BODIES = {
    name: b'{"model":"%s","messages":[{"role":"user","content":"%s"}],"max_tokens":64}'
    % (name.encode(), _ROUTED_PROMPT.encode())
    for name in ("bench", "auto")
}
AUTO_CANDIDATES = ("deepseek-v2.5-0908", "gpt-4o-mini-2024-07-18")  # names the shipped router model knows
_CHUNK = '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini",'
COMPLETION = (
    '{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini",'
    '"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},'
    '"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}'
)


def sse_events() -> list[str]:
    """20 content chunks (role first, finish_reason last), a usage chunk and [DONE], as OpenAI sends them."""
    events = []
    for i in range(20):
        delta = '{"role":"assistant","content":""}' if i == 0 else f'{{"content":"tok{i} "}}'
        finish = '"stop"' if i == 19 else "null"
        events.append(f'{_CHUNK}"choices":[{{"index":0,"delta":{delta},"finish_reason":{finish}}}]}}')
    events.append(
        f'{_CHUNK}"choices":[],"usage":{{"prompt_tokens":12,"completion_tokens":19,"total_tokens":31}}}}'
    )
    events.append("[DONE]")
    return [f"data: {e}\\n\\n" for e in events]  # \n written as nginx escapes


WRK_LUA = """wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {{"requests":%.0f,"duration_us":%.0f,"connect":%.0f,"read":%.0f,' ..
    '"write":%.0f,"status":%.0f,"timeout":%.0f,"p50_us":%.1f,"p99_us":%.1f,"max_us":%.1f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""
