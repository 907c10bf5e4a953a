"""The gateway at run time: config turned into routes, pools and pricers, and the request dispatcher."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import orjson

from llmswitch.api.chat import chat_call, new_request_id
from llmswitch.api.errors import GatewayError
from llmswitch.api.messages import messages_call
from llmswitch.api.server import DEFERRED, ClientConnection, Outcome, Request, surface_of
from llmswitch.config import Config
from llmswitch.ledger.bodies import BodyLog
from llmswitch.ledger.feedback import record_feedback
from llmswitch.ledger.sqlite import Ledger
from llmswitch.metrics import Metrics
from llmswitch.policy.auth import KeyStore, bearer_token
from llmswitch.pricing.book import PriceBook, price_override
from llmswitch.pricing.selfhost import SelfHostedMeter
from llmswitch.providers.anthropic import messages_head
from llmswitch.providers.exchange import Exchange
from llmswitch.providers.http_client import ConnectionPool
from llmswitch.providers.openai import OpenAIPassthrough, chat_head
from llmswitch.routing.auto.config import AutoRouteConfig
from llmswitch.routing.call import Call
from llmswitch.routing.deployment import Deployment
from llmswitch.routing.executor import Executor
from llmswitch.routing.plan import ModelRoute, expand
from llmswitch.translate import count_tokens_estimate, exchange_for

if TYPE_CHECKING:
    from llmswitch.policy.limits import KeyLimits
    from llmswitch.policy.rules import PolicyView
    from llmswitch.policy.shared import SharedLimits
    from llmswitch.routing.auto import RouterModel, Strategy

log = logging.getLogger("llmswitch")

# A valid token is a configured key's exact bytes, so the cache cannot outgrow the key list; bounded anyway.
_MAX_KNOWN_TOKENS = 4096


class Gateway:
    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        *,
        prices: PriceBook | None = None,
        bodies: BodyLog | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self._limits: KeyLimits | None = None
        self._shared_limits: SharedLimits | None = None
        if any(k.budget is not None or k.rpm is not None for k in config.auth.keys):
            from llmswitch.policy.limits import SpendTap, key_limits

            self._limits = key_limits(config)
            if self._limits.budgets:
                ledger = SpendTap(ledger, self._limits)  # every recorded cost counts towards its key's budget
            if config.storage.redis_url:
                from llmswitch.policy.shared import SharedLimits

                self._shared_limits = SharedLimits(self._limits, config.storage.redis_url)
        self.metrics = Metrics()
        self.export_metrics: Callable[[], bytes] = self.metrics.exposition  # all workers' sum with --workers
        self.keys = KeyStore(config.auth.keys)
        self.admin_keys = frozenset(k.id for k in config.auth.keys if k.admin)
        # Valid credentials only → key id: tokens (as x-api-key or parsed from Authorization), and whole
        # Authorization header values.
        self._known_tokens: dict[bytes, str] = {}
        self._known_authorizations: dict[bytes, str] = {}
        self._model_names: frozenset[str] = frozenset()  # metrics label other names as "?"
        self.prices = prices or PriceBook()
        self.pools: dict[str, ConnectionPool] = {}
        self.routes: dict[str, ModelRoute] = {}
        self.auto: dict[str, tuple[Strategy, AutoRouteConfig]] = {}  # `auto` models (their imports are lazy)
        self._key_policy: dict[str, PolicyView] = {}  # key id → its policy's routes (policy/rules.py)
        self.executor = Executor(
            config.routing,
            ledger,
            self.metrics,
            [p.api_key for p in config.providers.values() if p.api_key],
            _exchanges(),
            bodies,
        )
        self._models_bodies = (b"", b"")  # OpenAI's shape, Anthropic's
        self.started = time.time()
        self.inflight = 0  # requests being served, so shutdown can wait for them
        self.drained = asyncio.Event()
        self.drained.set()

    def build(self, loop: asyncio.AbstractEventLoop, engine_urls: dict[str, str] | None = None) -> None:
        """Create pools and deployments; needs the running loop, so it is separate from __init__.

        `engine_urls`: the address of each provider whose `engine` the runner started."""
        cfg = self.config
        self.executor.loop = loop
        if self._shared_limits is not None:
            self._shared_limits.start()
        engine_urls = engine_urls or {}
        for name, p in cfg.providers.items():
            self.pools[name] = ConnectionPool(loop, engine_urls.get(name, p.base_url))
        own: dict[str, list[Deployment]] = {}
        for model_name, m in cfg.models.items():
            own[model_name] = []
            for d in m.deployments:
                p = cfg.providers[d.provider]
                pool = self.pools[d.provider]
                override = price_override(d.price.model_dump(exclude_none=True)) if d.price else None
                own[model_name].append(
                    Deployment(
                        model_name=model_name,
                        provider=d.provider,
                        upstream_model=d.model,
                        api=p.api,
                        region=p.region,
                        pool=pool,
                        head=(messages_head if p.api == "anthropic" else chat_head)(
                            pool, p.api_key, p.headers, p.auth
                        ),
                        pricer=self.prices.for_deployment(
                            provider=d.provider,
                            base_url=p.base_url,
                            upstream_model=d.model,
                            pricing_provider=p.pricing_provider,
                            override=override,
                        ),
                        timeout=d.timeout,
                        secret=p.api_key,
                        max_output_tokens=d.max_output_tokens,
                        meter=(
                            SelfHostedMeter(d.self_hosted.gpu_hour_usd, d.self_hosted.gpus)
                            if d.self_hosted
                            else None
                        ),
                    )
                )
        fallbacks = {name: list(m.fallbacks) for name, m in cfg.models.items()}
        for name, m in cfg.models.items():
            if m.route is not None:  # an `auto` model: a strategy over other models, loaded once here
                from llmswitch.routing.auto import build_strategy

                self.auto[name] = (build_strategy(m.route, _router_model(m.route)), m.route)
            else:
                self.routes[name] = ModelRoute(name, expand(name, own, fallbacks))
        self._model_names = frozenset(self.routes) | frozenset(self.auto)
        if cfg.policies:
            from llmswitch.policy.rules import key_views

            autos = {name: route_cfg for name, (_, route_cfg) in self.auto.items()}
            self._key_policy = key_views(cfg, self.routes, autos, _router_model)
        self._models_bodies = self._model_lists(list(cfg.models))
        # A key under a policy is shown the models it may use.
        self._key_models: dict[str, tuple[bytes, bytes]] = {
            key_id: self._model_lists([n for n in cfg.models if n in view.routes or n in view.auto])
            for key_id, view in self._key_policy.items()
        }

    def _model_lists(self, names: list[str]) -> tuple[bytes, bytes]:
        """`GET /v1/models` bodies: OpenAI's list shape, and Anthropic's."""
        created = int(self.started)
        created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started))
        openai_list = {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "created": created, "owned_by": "llmswitch"} for n in names
            ],
        }
        anthropic_list = {
            "data": [{"type": "model", "id": n, "display_name": n, "created_at": created_at} for n in names],
            "has_more": False,
            "first_id": names[0] if names else None,
            "last_id": names[-1] if names else None,
        }
        return orjson.dumps(openai_list), orjson.dumps(anthropic_list)

    def close(self) -> None:
        if self._shared_limits is not None:
            self._shared_limits.stop()
        for pool in self.pools.values():
            pool.close()

    # dispatch
    def handle(self, req: Request, conn: ClientConnection) -> Outcome:
        path = req.path
        if path in (b"/v1/chat/completions", b"/chat/completions"):
            _require_post(req)
            return self.serve(req, conn, "openai")
        elif path == b"/v1/messages":
            _require_post(req)
            return self.serve(req, conn, "anthropic")
        elif path == b"/v1/messages/count_tokens":
            _require_post(req)
            self.count_tokens(req, conn)
        elif path == b"/v1/feedback":
            _require_post(req)
            return self.feedback(req, conn)
        elif path == b"/health":
            conn.respond(200, [], b'{"status":"ok"}')
        elif path in (b"/v1/models", b"/models"):
            key_id = self.authenticate(req)
            # Anthropic's SDK (and the coding tools on it) send anthropic-version and expect its list shape.
            anthropic = b"anthropic-version" in req.headers
            bodies = self._key_models.get(key_id, self._models_bodies) if key_id else self._models_bodies
            conn.respond(200, [], bodies[1] if anthropic else bodies[0])
        elif path == b"/metrics":
            conn.respond(200, [], self.export_metrics(), b"text/plain; version=0.0.4; charset=utf-8")
        elif path in (b"/dashboard", b"/dashboard.json"):
            from llmswitch.dashboard.serve import serve_dashboard

            return serve_dashboard(self, req, conn, path == b"/dashboard.json")
        else:
            err = GatewayError(
                404, f"no route for {req.method.decode()} {req.path.decode('latin-1')}", "not_found"
            )
            err.surface = surface_of(path)
            raise err
        return None

    def _begin(self) -> None:
        self.inflight += 1  # shutdown waits for requests in flight (and their ledger rows)
        self.drained.clear()

    def _end(self) -> None:
        self.inflight -= 1
        if not self.inflight:
            self.drained.set()

    def authenticate(self, req: Request) -> str | None:
        """The client key id, from `Authorization: Bearer` or (as Anthropic's SDK sends it) `x-api-key`."""
        if not self.keys.enabled:
            return None
        headers = req.headers
        authorization = headers.get(b"authorization")
        if authorization is not None:  # the header exactly as a valid request sent it before: no parsing
            key_id = self._known_authorizations.get(authorization)
            if key_id is not None:
                return key_id
        token = bearer_token(authorization)
        from_authorization = token is not None
        if token is None:
            token = headers.get(b"x-api-key")
        key_id = None
        if token:
            key_id = self._known_tokens.get(token)
            if key_id is None:
                key_id = self.keys.identify(token)
                # Only valid credentials are kept (a client cannot grow the caches); saves a sha256.
                if key_id is not None and len(self._known_tokens) < _MAX_KNOWN_TOKENS:
                    self._known_tokens[token] = key_id
            if (
                key_id is not None
                and from_authorization
                and len(self._known_authorizations) < _MAX_KNOWN_TOKENS
            ):
                self._known_authorizations[cast(bytes, authorization)] = key_id
        if key_id is None:
            raise GatewayError(
                401,
                "missing or invalid API key (send Authorization: Bearer <key> or x-api-key)",
                "invalid_api_key",
            )
        return key_id

    async def feedback(self, req: Request, conn: ClientConnection) -> None:
        """`POST /v1/feedback {"request_id", "score": 0..1, "comment"?}`: how good an answer was, for
        `llmswitch router train --from-ledger`."""
        key_id = self.authenticate(req)
        self._begin()
        try:
            await self._feedback(req, conn, key_id)
        finally:
            self._end()

    async def _feedback(self, req: Request, conn: ClientConnection, key_id: str | None) -> None:
        try:
            body = orjson.loads(req.body)
        except orjson.JSONDecodeError:
            raise GatewayError(400, "request body is not valid JSON", "invalid_json") from None
        request_id = body.get("request_id") if isinstance(body, dict) else None
        score: Any = body.get("score") if isinstance(body, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise GatewayError(
                400,
                "`request_id` is required (the x-llmswitch-request-id of the answer)",
                "invalid_request",
                param="request_id",
            )
        if type(score) not in (int, float) or not 0 <= score <= 1:
            raise GatewayError(400, "`score` must be a number in [0, 1]", "invalid_request", param="score")
        comment = body.get("comment")
        await self.executor.loop.run_in_executor(
            None,
            record_feedback,
            self.config.storage.url,
            request_id,
            float(score),
            key_id,
            comment if isinstance(comment, str) else None,
        )
        conn.respond(200, [], orjson.dumps({"ok": True, "request_id": request_id}))

    def count_tokens(self, req: Request, conn: ClientConnection) -> None:
        try:
            self.authenticate(req)
            try:
                body = orjson.loads(req.body)
            except orjson.JSONDecodeError:
                raise GatewayError(400, "request body is not valid JSON", "invalid_json") from None
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise GatewayError(400, "messages: Field required", "invalid_request", param="messages")
            if body.get("tools") is not None and not isinstance(body["tools"], list):
                raise GatewayError(
                    400, "tools: Input should be a valid list", "invalid_request", param="tools"
                )
            try:
                tokens = count_tokens_estimate(body)
            except orjson.JSONEncodeError as deep:  # nested deeper than JSON encoders write
                msg = f"the request cannot be measured: {deep}"
                raise GatewayError(400, msg, "invalid_request") from None
        except GatewayError as e:
            e.surface = "anthropic"
            raise
        conn.respond(200, [], orjson.dumps({"input_tokens": tokens}))

    def serve(self, req: Request, conn: ClientConnection, surface: str) -> Outcome:
        """One model request on either surface: decode and route now, then hand it to the executor, which
        answers from callbacks (or a task) and reports back to `_served`. Errors in the surface's shape."""
        self._begin()
        call: Call | None = None
        try:
            key_id = self.authenticate(req)
            if self._limits is not None and key_id is not None:
                self._limits.admit(key_id)  # 429 over a budget or a rate
            call = chat_call(req, key_id) if surface == "openai" else messages_call(req, key_id)
            loop = self.executor.loop
            routes, autos = self.routes, self.auto
            if self._key_policy and key_id is not None:
                view = self._key_policy.get(key_id)
                if view is not None:
                    routes, autos = view.routes, view.auto
                    refused = view.refusals.get(call.model)
                    if refused is not None:  # never sent: no deployment of this model is allowed
                        raise GatewayError(403, refused, "policy_violation", param="model")
            auto = autos.get(call.model)
            done = partial(self._served, req, conn, surface, call)
            if auto is not None:
                from llmswitch.routing.auto_serve import decide_now, min_quality, serve_auto

                strategy, route_cfg = auto
                asked = min_quality(req.headers.get(b"x-llmswitch-min-quality"))
                target = route_cfg.target if asked is None else asked
                chosen = decide_now(call, strategy, target)
                if chosen is not None:  # predictive: on to the chosen model like a plain request
                    self.executor.start(call, routes[chosen].plan(loop.time()), conn, done)
                    return DEFERRED
                work = serve_auto(call, strategy, routes, self.executor, conn, loop.time(), target)
                self.executor.spawn(work, conn, done)
                return DEFERRED
            route = routes.get(call.model)
            if route is None:
                raise GatewayError(
                    404,
                    f"model {call.model!r} does not exist; see GET /v1/models",
                    "model_not_found",
                    param="model",
                )
            self.executor.start(call, route.plan(loop.time()), conn, done)
            return DEFERRED
        except Exception as e:
            answer = self._settle(req, surface, call, e)
            assert answer is not None
            raise answer from None

    def _served(
        self, req: Request, conn: ClientConnection, surface: str, call: Call, err: BaseException | None
    ) -> None:
        answer = self._settle(req, surface, call, err)
        if answer is not None:
            conn.answer_error(answer)
        conn.finished()

    def _settle(
        self, req: Request, surface: str, call: Call | None, err: BaseException | None
    ) -> GatewayError | None:
        """Book a finished model request in the metrics; the error its client gets, if any."""
        self._end()
        status = 200
        answer: GatewayError | None = None
        if isinstance(err, asyncio.CancelledError):
            status = 499  # the client left (nginx's code for it); nobody to answer
        elif err is not None:
            if isinstance(err, GatewayError):
                answer = err
            else:  # a bug of ours: logged, answered as a 500 in the surface's shape
                log.error("internal error serving %s", call.request_id if call else "a request", exc_info=err)
                # worded as api.server words it
                answer = GatewayError(500, "internal gateway error", "internal_error")
            status = answer.status
            answer.surface = surface
            answer.headers.append(("x-llmswitch-request-id", call.request_id if call else new_request_id()))
        elapsed = time.perf_counter() - req.started
        if call is None:
            self.metrics.request_done("?", surface, status, elapsed, None)
            return answer
        # Unknown names are one label, so a client cannot grow the metrics without bound.
        label = call.model if call.model in self._model_names else "?"
        overhead = max(elapsed - call.upstream_wait, 0.0) if status == 200 else None
        self.metrics.request_done(label, surface, status, elapsed, overhead)
        return answer


def _require_post(req: Request) -> None:
    if req.method != b"POST":
        err = GatewayError(405, f"use POST for {req.path.decode('latin-1')}", "method_not_allowed")
        err.surface = surface_of(req.path)
        raise err


def _exchanges() -> dict[tuple[str, str], Callable[[], Exchange]]:
    """A factory per (client surface, upstream api) pair the gateway can serve.

    Translating exchanges keep per-request state, so each attempt gets its own; the pass-through is
    stateless and shared."""
    passthrough = OpenAIPassthrough()
    out: dict[tuple[str, str], Callable[[], Exchange]] = {("openai", "openai"): lambda: passthrough}
    for surface in ("openai", "anthropic"):
        for api in ("openai", "anthropic"):
            if exchange_for(surface, api) is not None:
                out[surface, api] = partial(_fresh, surface, api)
    return out


def _fresh(surface: str, api: str) -> Exchange:
    exchange = exchange_for(surface, api)
    assert exchange is not None
    return exchange


def _router_model(route: AutoRouteConfig) -> RouterModel:
    """Loaded once per file, however many `auto` models and policies use it."""
    model = _router_models.get(route.model_file)
    if model is None:
        from llmswitch.routing.auto import load_router_model

        model = _router_models[route.model_file] = load_router_model(route.model_file)
    return model


_router_models: dict[str | None, RouterModel] = {}
