"""`EngineThread`: a LocalEngine supervised from its own event-loop thread, for synchronous callers.

The gateway's multi-worker master has no event loop (it forks workers and waits on them), and tests
call the engine with the synchronous OpenAI SDK; both start the engine this way. The thread is a
daemon, so it never keeps a finished process alive; `stop()` ends the engine and the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from llmswitch.engines.supervisor import LocalEngine

T = TypeVar("T")


class EngineThread:
    def __init__(self, engine: LocalEngine) -> None:
        self.engine = engine
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float | None = None) -> LocalEngine:
        """Start the engine and block until it is healthy; raise EngineError (and clean up) if not."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="llmswitch-engine", daemon=True
            )
            self._thread.start()
        try:
            self._run(self.engine.start(), timeout)
        except BaseException:
            self.stop()
            raise
        return self.engine

    def stop(self, timeout: float | None = 60.0) -> None:
        """Stop the engine, then the loop thread. Safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._run(self.engine.stop(), timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()
            self._loop = self._thread = None

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> LocalEngine:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
