"""The local engine process: one GGUF model behind llama.cpp's own OpenAI-compatible HTTP server.

    python -m llmswitch.engines.llamacpp --gguf PATH --port P [--host 127.0.0.1] [--threads N]
        [--ctx N] [--model-id NAME] [--parallel N] [--system-prompt TEXT] [--verbose]

`xllamacpp.Server(params)` (prebuilt llama.cpp wheel; see research/dependencies.md §3) loads the model and
starts llama.cpp's C++ server (cpp-httplib threads) on `params.hostnames`/`params.port`. That server
already speaks what we need — `POST /v1/chat/completions` plain and streamed (OpenAI chunks, a usage chunk
when `stream_options.include_usage` is set), `GET /v1/models`, `GET /health` — with continuous batching
and no Python on the request path, so this module only configures it, announces the address on stdout
and keeps the process alive until SIGTERM/SIGINT (or until its parent dies, with --exit-with-parent).

Behaviour differences from plain llama-server, and why:
- Default system prompt: when a request's first message is not a system (or developer) message, the
  chat template prepends `{"role": "system", "content": SYSTEM_PROMPT}` ("You are a helpful
  assistant." unless --system-prompt says otherwise; "" turns it off). SmolLM2-135M answers junk with
  its own built-in default ("You are a helpful AI assistant named SmolLM…") and correctly with this one.
  See `template.py`: a prelude to the GGUF's own Jinja template, so no Python rewrites bodies.
- Greedy sampling by default (temperature 0) for reproducible answers from small models; a request's
  own `temperature`, `top_p`, `max_tokens`, `stop`, `seed`… still win.
- Logging: errors only, unless --verbose (llama.cpp logs every request at info level).
- No web UI, no model downloads (`offline`), no GPU-fit pass, context shifting off (generation ends at
  the context limit instead of running forever when a request sets no `max_tokens`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from llmswitch.engines import gguf_meta
from llmswitch.engines.supervisor import READY_LINE
from llmswitch.engines.template import DEFAULT_SYSTEM_PROMPT, with_default_system_prompt

VERBOSITY_ERRORS, VERBOSITY_INFO = 1, 3  # llama.cpp log verbosity: 1 = errors only, 3 = info


def build_params(args: argparse.Namespace) -> Any:
    """xllamacpp CommonParams for the command line (typed Any: xllamacpp ships no type information)."""
    import xllamacpp as xlc

    p = xlc.CommonParams()
    p.model.path = args.gguf
    p.hostnames = [args.host]
    p.port = args.port
    p.n_ctx = args.ctx
    p.n_parallel = args.parallel
    if args.threads:
        p.cpuparams.n_threads = args.threads
        p.cpuparams_batch.n_threads = args.threads
    p.model_alias = {args.model_id}
    p.verbosity = VERBOSITY_INFO if args.verbose else VERBOSITY_ERRORS
    p.sampling.temp = 0.0
    p.ctx_shift = False
    p.fit_params = False  # a GPU-offload sizing pass that loads the model twice: on CPU it doubles start-up
    p.ui = False
    p.offline = True
    if args.system_prompt:
        template = gguf_meta.chat_template(args.gguf)
        if template:
            p.chat_template = with_default_system_prompt(template, args.system_prompt)
        elif args.verbose:  # llama.cpp then falls back to its built-in ChatML-ish template
            print("llmswitch-engine: GGUF has no chat template; no default system prompt", file=sys.stderr)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m llmswitch.engines.llamacpp", description="Serve a GGUF with llama.cpp (OpenAI API)."
    )
    ap.add_argument("--gguf", required=True, help="path of the GGUF model file")
    ap.add_argument("--port", type=int, required=True, help="TCP port (0 = any free port, printed on stdout)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default: llama.cpp's choice)")
    ap.add_argument("--ctx", type=int, default=2048, help="context size in tokens, shared by the slots")
    ap.add_argument("--parallel", type=int, default=1, help="concurrent request slots")
    ap.add_argument("--model-id", default=None, help="model id in /v1/models (default: file stem)")
    ap.add_argument("--system-prompt", default=DEFAULT_SYSTEM_PROMPT, help="added when a request has none")
    ap.add_argument("--verbose", action="store_true", help="llama.cpp info logs on stderr")
    ap.add_argument("--exit-with-parent", action="store_true", help="exit when the parent process dies")
    args = ap.parse_args(argv)
    if args.model_id is None:
        args.model_id = Path(args.gguf).stem
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.path.isfile(args.gguf):
        print(f"llmswitch-engine: GGUF file not found: {args.gguf}", file=sys.stderr)
        return 2
    # Passive OpenMP waits: spinning llama.cpp threads lost 2-3x throughput in our measurements when
    # other busy processes shared the cores. libgomp reads it when loaded, so set it before the import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import xllamacpp as xlc
    except ImportError as e:
        print(f"llmswitch-engine: the xllamacpp package is required ({e})", file=sys.stderr)
        return 2
    try:
        params = build_params(args)
    except (OSError, gguf_meta.GGUFFormatError) as e:
        print(f"llmswitch-engine: cannot read {args.gguf}: {e}", file=sys.stderr)
        return 1

    parent = os.getppid()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = xlc.Server(params)  # blocks while the model loads; the HTTP server is up when it returns
    except RuntimeError as e:  # llama.cpp has already logged the cause (bad file, port taken…) above
        print(f"llmswitch-engine: llama.cpp failed to start with {args.gguf}: {e}", file=sys.stderr)
        return 1
    print(f"{READY_LINE} {server.listening_address}", flush=True)
    # The HTTP server runs on llama.cpp's threads; this thread only waits for a reason to exit.
    while not stop.wait(1.0):
        if args.exit_with_parent and os.getppid() != parent:
            break
    del server  # stops the HTTP server and frees the model
    return 0


if __name__ == "__main__":
    sys.exit(main())
