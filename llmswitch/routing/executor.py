"""Serve one request: try deployments in order, fail over, respect deadlines, and record every attempt.

Retryable: connection errors, timeouts, resets, 408/429/5xx and unreadable bodies, and only while nothing
has been sent to the client. Never retried: 400/401/403/404/422 (the request or our credentials are wrong
everywhere). A deployment that keeps failing is cooled down; a `Retry-After` is honoured per deployment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import orjson

from llmswitch.api.errors import GatewayError
from llmswitch.api.server import Responder
from llmswitch.config import RoutingConfig
from llmswitch.ledger.bodies import BodyLog
from llmswitch.ledger.record import STATUS_ERROR, STATUS_OK, STATUS_TRUNCATED, AttemptRecord
from llmswitch.ledger.sqlite import Ledger
from llmswitch.metrics import Metrics
from llmswitch.pricing.selfhost import Occupancy
from llmswitch.pricing.usage import Usage
from llmswitch.providers.exchange import BadUpstreamBody, Exchange, StreamTranslator
from llmswitch.providers.http_client import UpstreamConnection, UpstreamError, UpstreamResponse
from llmswitch.providers.stream_relay import StreamRelay
from llmswitch.routing.call import Call, clamp_max_tokens, pending_body
from llmswitch.routing.deployment import Deployment
from llmswitch.routing.failure import AttemptFailure
from llmswitch.routing.fast_path import FastAttempt
from llmswitch.routing.upstream_errors import NEVER_RETRY, error_message, retry_after, scrub
from llmswitch.translate import BadClientBody

if TYPE_CHECKING:
    from llmswitch.api.server import ClientConnection

log = logging.getLogger("llmswitch.routing")


class Executor:
    # Set by Gateway.build to the running loop: a stored reference, because on 3.11
    # asyncio.get_running_loop() makes a getpid() syscall on every call.
    loop: asyncio.AbstractEventLoop

    def __init__(
        self,
        routing: RoutingConfig,
        ledger: Ledger,
        metrics: Metrics,
        secrets: list[str],
        exchanges: dict[tuple[str, str], Callable[[], Exchange]],
        bodies: BodyLog | None = None,
    ) -> None:
        self.cfg = routing
        self.bodies = bodies  # prompt/answer logging, when `logging.bodies` is on
        self.exchanges = exchanges  # (client surface, upstream api) → how to talk

        self.ledger = ledger
        self.metrics = metrics
        self._secrets = [s for s in secrets if s]

    def start(
        self,
        call: Call,
        plan: list[Deployment],
        conn: ClientConnection,
        done: Callable[[BaseException | None], None],
    ) -> None:
        """Serve a client request, then report: `done(None)` once it is answered, else `done(error)` (a
        GatewayError for the client, CancelledError if the client left, anything else is a bug of ours).

        The common request goes on callbacks alone (`fast_path`); the rest runs `run` as a task."""
        loop = self.loop
        deadline = loop.time() + self.cfg.timeout
        dep = plan[0] if plan else None
        # The same first choice `run` would make; self-hosted deployments (metered) take the async path.
        if dep is not None and not call.stream and dep.meter is None and not _waits(dep, plan, loop.time()):
            upstream = dep.pool.idle()
            if upstream is not None:
                try:
                    exchange, request = self._prepare(call, dep)
                except AttemptFailure:  # the async path makes the attempt and books the failure
                    dep.pool.release(upstream)
                else:
                    FastAttempt(self, call, plan, conn, done, deadline, exchange, upstream).send(request)
                    return
        self.spawn(self.run(call, plan, conn, deadline=deadline), conn, done)

    def spawn(
        self,
        work: Coroutine[Any, Any, None],
        conn: ClientConnection,
        done: Callable[[BaseException | None], None],
    ) -> None:
        """Run `work` as a task for the client on `conn`: cancelled if the client leaves, then `done`."""
        task = self.loop.create_task(work)
        conn.cancel_with(task.cancel)
        task.add_done_callback(lambda t: done(asyncio.CancelledError() if t.cancelled() else t.exception()))

    async def run(
        self,
        call: Call,
        plan: list[Deployment],
        conn: Responder,
        *,
        deadline: float | None = None,
        first: int = 0,
        last: AttemptFailure | None = None,
    ) -> None:
        """Try the plan's deployments until one answers. `first`/`last`: where the fast path left off."""
        loop = self.loop
        if deadline is None:
            deadline = loop.time() + self.cfg.timeout
        tries = self._tries(plan)
        for n in range(first, len(tries)):
            dep = tries[n]
            now = loop.time()
            if n >= len(plan):  # a second pass over the same deployments: back off a little first
                wait = max(dep.health.not_before - now, 0.05 * 2 ** (n // len(plan) - 1))
                if wait > self.cfg.max_retry_after or now + wait >= deadline:
                    continue
                await asyncio.sleep(wait)
            elif _waits(dep, plan, now):
                continue  # asked to wait: the other deployments go first, this one gets its turn later
            if loop.time() >= deadline:
                break
            self._count_attempt(call)
            try:
                await self._attempt(call, dep, conn, deadline)
                dep.health.succeeded()
                return
            except AttemptFailure as f:
                self._failed(call, dep, f)
                last = f
        raise self._give_up(call, last, deadline)

    def _tries(self, plan: list[Deployment]) -> list[Deployment]:
        n_tries = max(self.cfg.max_attempts, 1)
        return (plan * -(-n_tries // len(plan)))[:n_tries] if plan else []  # the plan, cycled

    @staticmethod
    def _count_attempt(call: Call) -> None:
        call.attempts += 1
        if call.parent is not None:  # a cascade's candidate call: one numbering per client request
            call.parent.attempts += 1

    def _failed(self, call: Call, dep: Deployment, f: AttemptFailure) -> None:
        """Book a failed attempt; raise the client's error when nothing else may be tried."""
        call.failures.append(f"{dep.label}: {f.error_class}")
        self.metrics.upstream_error(dep.provider, f.error_class)
        if f.final is not None:
            raise f.final from None
        now = self.loop.time()
        dep.health.failed(now, self.cfg.cooldown.failures, self.cfg.cooldown.seconds)
        if f.retry_after is not None:
            dep.health.not_before = now + min(f.retry_after, self.cfg.max_retry_after)

    def _give_up(self, call: Call, last: AttemptFailure | None, deadline: float) -> GatewayError:
        """The client's error once every try has failed or none could be made."""
        if self.loop.time() >= deadline or (last is not None and last.error_class == "deadline"):
            return GatewayError(
                504, f"deadline of {self.cfg.timeout:g}s exceeded; " + self._summary(call), "timeout"
            )
        if not call.failures:
            return GatewayError(503, f"model {call.model!r} has no deployment available", "no_deployment")
        if (
            last is not None
            and last.http_status == 429
            and all(f.endswith("http_429") for f in call.failures)
        ):
            headers = [("retry-after", f"{last.retry_after:g}")] if last.retry_after else []
            return GatewayError(
                429,
                "every deployment is rate-limited; " + self._summary(call),
                "rate_limited",
                headers=headers,
            )
        return GatewayError(502, self._summary(call), "upstream_failed")

    def _summary(self, call: Call) -> str:
        return f"all {call.attempts} attempt(s) failed: " + "; ".join(call.failures)

    # one attempt
    def _record(self, call: Call, dep: Deployment) -> AttemptRecord:
        return AttemptRecord(
            request_id=call.request_id,
            attempt=call.parent.attempts if call.parent is not None else call.attempts,
            ts=time.time(),
            key_id=call.key_id,
            requested_model=call.model,
            provider=dep.provider,
            upstream_model=dep.upstream_model,
            status=STATUS_ERROR,
            streamed=call.stream,
            tags=call.tags,
            surface=call.surface,
            route=call.route,
        )

    def _prepare(self, call: Call, dep: Deployment) -> tuple[Exchange, bytes]:
        """How to talk to `dep`, and the complete HTTP request for it. Raises AttemptFailure."""
        make_exchange = self.exchanges.get((call.surface, dep.api))
        if make_exchange is None:
            raise AttemptFailure("unsupported_api", f"no {call.surface} → {dep.api} translation")
        exchange = make_exchange()
        try:
            raw, decoded = call.raw, call.body
            if dep.max_output_tokens is not None:
                raw, decoded = clamp_max_tokens(raw, decoded, dep.max_output_tokens)
            body = exchange.upstream_body(raw, decoded, dep.upstream_model, call.stream, call.want_usage)
        except BadClientBody as e:  # found only while translating: the request is wrong everywhere
            final = GatewayError(400, str(e), "invalid_request")
            raise AttemptFailure("bad_request", str(e), final=final) from None
        except orjson.JSONEncodeError as deep:  # e.g. nested deeper than JSON encoders write (254 levels)
            msg = f"the request body cannot be forwarded: {deep}"
            raise AttemptFailure(
                "bad_request", msg, final=GatewayError(400, msg, "invalid_request")
            ) from None
        extra = call.upstream_headers.get(dep.api, b"")
        request = b"%s%scontent-length: %d\r\nx-request-id: %s\r\n\r\n%s" % (
            dep.head,
            extra,
            len(body),
            call.request_id.encode(),
            body,
        )
        return exchange, request

    def _attempt_deadline(self, dep: Deployment, deadline: float) -> float:
        return min(deadline, self.loop.time() + (dep.timeout or self.cfg.attempt_timeout))

    def _transport_failure(self, e: UpstreamError, deadline: float) -> AttemptFailure:
        kind = "deadline" if e.kind == "timeout" and self.loop.time() >= deadline else e.kind
        return AttemptFailure(kind, str(e))

    async def _attempt(self, call: Call, dep: Deployment, conn: Responder, deadline: float) -> None:
        rec = self._record(call, dep)
        t0 = time.perf_counter()
        occ = dep.meter.begin() if dep.meter is not None else None
        try:
            exchange, request = self._prepare(call, dep)
            try:
                resp, upstream = await dep.pool.send(
                    request,
                    connect_timeout=self.cfg.connect_timeout,
                    deadline=self._attempt_deadline(dep, deadline),
                    whole=not call.stream,
                )
                rec.http_status = resp.status
                if resp.status != 200:
                    try:
                        raw = await resp.read()
                    except UpstreamError:
                        raw = b""
                    raise self._rejected(dep, resp, raw)
                if call.stream:
                    await self._relay(call, dep, exchange, conn, resp, upstream, rec, deadline, t0, occ)
                else:
                    self._answer(call, dep, exchange, resp.body(), conn, rec, occ, t0)
            except UpstreamError as e:
                raise self._transport_failure(e, deadline) from None
        # Not `e` again: each name has one type in a function, and compiled code checks it when it binds.
        except (Exception, asyncio.CancelledError) as exc:
            self._book_error(rec, exc)
            raise
        finally:
            self._close(call, rec, occ, t0)

    @staticmethod
    def _book_error(rec: AttemptRecord, e: BaseException) -> None:
        """What the ledger says of an attempt that raised `e`."""
        if isinstance(e, AttemptFailure):
            rec.error_class = e.error_class
        elif isinstance(e, asyncio.CancelledError):
            rec.error_class = "client_closed"
        else:  # a bug of ours: the ledger still says what happened
            rec.error_class = "internal_error"
            rec.http_status = 500

    def _answer(
        self,
        call: Call,
        dep: Deployment,
        exchange: Exchange,
        raw: bytes,
        conn: Responder,
        rec: AttemptRecord,
        occ: Occupancy | None,
        t0: float,
    ) -> None:
        """A complete 200 answer: price it and send it to the client. Raises AttemptFailure if unreadable."""
        try:
            out, usage, served = exchange.complete(raw, dep.upstream_model)
        except BadUpstreamBody as e:
            raise AttemptFailure("bad_body", str(e)) from None
        cost = self._account(call, dep, rec, usage, served, occ, t0)
        rec.status = STATUS_OK
        conn.respond(200, self._headers(call, dep, served, cost), out)
        if self.bodies is not None:
            self.bodies.append(pending_body(call, False, [out]))

    def _close(self, call: Call, rec: AttemptRecord, occ: Occupancy | None, t0: float) -> None:
        """The attempt is over, however it ended: time it and write its ledger row."""
        elapsed = time.perf_counter() - t0
        if occ is not None:  # a failed attempt still held the hardware
            spent = occ.finish(elapsed, 0)
            if rec.cost_usd is None:
                rec.cost_usd = spent
        call.upstream_wait += elapsed
        rec.latency_ms = elapsed * 1000.0
        self.ledger.append(rec)

    def _rejected(self, dep: Deployment, resp: UpstreamResponse, raw: bytes) -> AttemptFailure:
        """The failure for a non-200 answer (`raw`: its body, or b"" if it could not be read)."""
        status = resp.status
        wait = retry_after(resp.header(b"retry-after"))
        if status in NEVER_RETRY:
            if status in (401, 403):
                final = GatewayError(
                    502,
                    f"provider {dep.provider!r} rejected the gateway's credentials "
                    f"(HTTP {status}); check its api_key",
                    "upstream_auth_failed",
                )
            else:
                final = GatewayError(
                    status,
                    f"upstream {dep.label} rejected the request: {self._scrub(error_message(raw))}",
                    "upstream_rejected",
                )
            return AttemptFailure(f"http_{status}", "rejected", status, final=final)
        return AttemptFailure(f"http_{status}", f"HTTP {status}", status, wait)

    async def _relay(
        self,
        call: Call,
        dep: Deployment,
        exchange: Exchange,
        conn: Responder,
        resp: UpstreamResponse,
        upstream: UpstreamConnection,
        rec: AttemptRecord,
        deadline: float,
        t0: float,
        occ: Occupancy | None,
    ) -> None:
        translator = exchange.stream(call.want_usage, call.body)
        captured: list[bytes] | None = [] if self.bodies is not None else None
        forward = conn.send_chunk
        if captured is not None:

            def forward(data: bytes) -> None:
                captured.append(data)
                conn.send_chunk(data)

        def commit(first: bytes) -> None:
            if captured is not None:
                captured.append(first)
            rec.ttft_ms = (time.perf_counter() - t0) * 1000.0
            self.metrics.observe_ttft(call.model, time.perf_counter() - call.started)
            served = translator.served_model or dep.upstream_model
            conn.start_stream(200, self._headers(call, dep, served, None), first)
            upstream.extend(deadline, self.cfg.stream_idle_timeout)
            conn.on_pause, conn.on_resume = upstream.pause_reading, upstream.resume_reading

        relay = StreamRelay(translator, commit, forward)

        def sink(data: bytes) -> None:
            relay.feed(data)
            if relay.error is not None:
                upstream.abort(UpstreamError("protocol", relay.error))

        resp.stream_to(sink, relay.flush)
        failure: UpstreamError | None = None
        try:
            await resp.done
        except UpstreamError as e:
            failure = e
        except asyncio.CancelledError:
            upstream.abort(UpstreamError("reset", "client went away"))
            self._account_stream(call, dep, rec, translator, occ, t0)
            raise
        finally:
            relay.close()
        if not relay.committed:
            if relay.error is not None:
                raise AttemptFailure("bad_body", relay.error)
            if failure is not None:
                raise failure
            raise AttemptFailure("bad_body", "upstream stream ended before any event")
        self._account_stream(call, dep, rec, translator, occ, t0)
        if failure is None and translator.done:
            rec.status = STATUS_OK
            forward(translator.finish())
            conn.end_stream()
            if self.bodies is not None and captured is not None:
                self.bodies.append(pending_body(call, True, captured))
            return
        # Mid-stream failure: the client already has part of the answer, so no retry; tell it in-band.
        rec.status = STATUS_TRUNCATED
        rec.error_class = "deadline" if failure is not None and failure.kind == "timeout" else "stream_cut"
        self.metrics.upstream_error(dep.provider, rec.error_class)
        conn.send_chunk(
            translator.error_event(
                f"upstream {dep.label} stream ended early ({rec.error_class})", "stream_truncated"
            )
        )
        conn.end_stream()

    def _account_stream(
        self,
        call: Call,
        dep: Deployment,
        rec: AttemptRecord,
        translator: StreamTranslator,
        occ: Occupancy | None,
        t0: float,
    ) -> None:
        usage = translator.usage or Usage(output_tokens=translator.output_events)
        self._account(call, dep, rec, usage, translator.served_model or dep.upstream_model, occ, t0)

    def _account(
        self,
        call: Call,
        dep: Deployment,
        rec: AttemptRecord,
        usage: Usage | None,
        served: str,
        occ: Occupancy | None,
        t0: float,
    ) -> float | None:
        rec.upstream_model = served
        if usage is None:
            return None
        rec.input_tokens = usage.input_tokens
        rec.cached_input_tokens = usage.cached_input_tokens
        rec.cache_write_tokens = usage.cache_write_tokens
        rec.output_tokens = usage.output_tokens
        rec.reasoning_tokens = usage.reasoning_tokens
        if occ is not None:  # self-hosted: the GPU time this request occupied, not a token price
            cost: float | None = occ.finish(
                time.perf_counter() - t0, usage.input_tokens + usage.output_tokens
            )
        else:
            cost = dep.pricer.cost(usage, rec.ts)
        rec.cost_usd = cost
        self.metrics.add_usage(
            call.model,
            dep.provider,
            usage.input_tokens,
            usage.cached_input_tokens,
            usage.output_tokens,
            usage.reasoning_tokens,
            cost,
        )
        return cost

    @staticmethod
    def _headers(call: Call, dep: Deployment, served: str, cost: float | None) -> list[tuple[str, str]]:
        headers = [
            ("x-llmswitch-request-id", call.request_id),
            ("x-llmswitch-provider", dep.provider),
            (
                "x-llmswitch-model",
                served if served.isascii() and served.isprintable() else _printable(served),
            ),
            ("x-llmswitch-attempts", str(call.attempts)),
        ]
        if not call.stream:
            total = cost + call.prior_cost if cost is not None else None
            headers.append(("x-llmswitch-cost-usd", f"{total:.10f}" if total is not None else "unknown"))
        if call.extra_headers:
            headers.extend(call.extra_headers)
        return headers

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)


def _printable(text: str) -> str:
    """A header value from an upstream's words: no CR/LF (no header of its own), nothing but ASCII."""
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in text)


def _waits(dep: Deployment, plan: list[Deployment], now: float) -> bool:
    """On the first pass, a deployment that asked us to wait (Retry-After) lets the others go first."""
    return dep.health.not_before > now and len(plan) > 1
