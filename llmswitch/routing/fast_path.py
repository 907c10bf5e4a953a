"""The common request on callbacks alone: no task, no awaited future.

A non-streaming request whose first deployment may be tried now and has a kept-alive connection free is
written to the upstream from the client's `data_received` and answered from the upstream's. Everything
else goes to the executor's async path (`Executor.run`): a new connection, a stream, a self-hosted
deployment, and any failure — after the first attempt is booked here, the async path takes over at the
second, with the same deadline. Both paths share the executor's attempt steps (`_record`, `_prepare`,
`_answer`, `_close`, `_failed`), so an attempt reads the same in the ledger whichever path made it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from llmswitch.api.errors import GatewayError
from llmswitch.providers.http_client import UpstreamConnection, UpstreamError, UpstreamResponse
from llmswitch.routing.failure import AttemptFailure

if TYPE_CHECKING:
    from llmswitch.api.server import ClientConnection
    from llmswitch.ledger.record import AttemptRecord
    from llmswitch.providers.exchange import Exchange
    from llmswitch.routing.call import Call
    from llmswitch.routing.deployment import Deployment
    from llmswitch.routing.executor import Executor

Done = Callable[[BaseException | None], None]


class FastAttempt:
    """The first attempt of a request, sent on a pooled connection and finished in `on_response`."""

    __slots__ = (
        "call",
        "cancelled",
        "conn",
        "deadline",
        "dep",
        "done",
        "exchange",
        "executor",
        "plan",
        "rec",
        "resp",
        "t0",
        "upstream",
    )

    def __init__(
        self,
        executor: Executor,
        call: Call,
        plan: list[Deployment],
        conn: ClientConnection,
        done: Done,
        deadline: float,
        exchange: Exchange,
        upstream: UpstreamConnection,
    ) -> None:
        self.executor = executor
        self.call = call
        self.plan = plan
        self.dep = plan[0]
        self.conn = conn
        self.done = done
        self.deadline = deadline
        self.exchange = exchange
        self.upstream = upstream
        self.cancelled = False
        executor._count_attempt(call)
        self.rec: AttemptRecord = executor._record(call, self.dep)
        self.t0 = time.perf_counter()
        self.resp = UpstreamResponse(executor.loop, self.on_response)

    def send(self, request: bytes) -> None:
        self.conn.cancel_with(self.cancel)
        self.upstream.begin(request, self.resp, self.executor._attempt_deadline(self.dep, self.deadline), 0.0)

    def cancel(self) -> None:
        """The client left: stop the upstream call (and its cost); `on_response` books it."""
        self.cancelled = True
        self.upstream.abort(UpstreamError("reset", "client went away"))

    def on_response(self, err: UpstreamError | None) -> None:
        ex, call, dep, rec = self.executor, self.call, self.dep, self.rec
        if (
            err is not None
            and err.kind == "reset"
            and self.upstream.reused
            and not self.resp.received
            and not self.cancelled
        ):
            # A kept-alive connection the server had closed: nothing was sent anywhere. The async path
            # makes this same attempt again on a new connection (and books it).
            call.attempts -= 1
            ex.spawn(ex.run(call, self.plan, self.conn, deadline=self.deadline), self.conn, self.done)
            return
        try:
            try:
                if self.cancelled:
                    raise asyncio.CancelledError
                if err is not None:
                    raise ex._transport_failure(err, self.deadline)
                resp = self.resp
                rec.http_status = resp.status
                if resp.status != 200:
                    raise ex._rejected(dep, resp, resp.body())
                ex._answer(call, dep, self.exchange, resp.body(), self.conn, rec, None, self.t0)
            # Each exception name has one type in a function: compiled code checks it when it binds.
            except (Exception, asyncio.CancelledError) as exc:
                ex._book_error(rec, exc)
                raise
            finally:
                ex._close(call, rec, None, self.t0)
        except AttemptFailure as f:
            try:
                ex._failed(call, dep, f)
            except GatewayError as final:  # nothing else may be tried
                self.done(final)
                return
            # The async path goes on from the second try.
            work = ex.run(call, self.plan, self.conn, deadline=self.deadline, first=1, last=f)
            ex.spawn(work, self.conn, self.done)
            return
        except (Exception, asyncio.CancelledError) as error:
            self.done(error)
            return
        dep.health.succeeded()
        self.done(None)
