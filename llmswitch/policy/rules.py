"""Routing policy: where a key's requests may be served (jurisdiction, open weights, own hardware, price).

Each policy is resolved once, at start-up, into its own view of the routes: every model's deployments
filtered by the policy's rules, and the reason each refused model is refused. On the request path a
policy costs one dict lookup, and a request no deployment may serve is refused before anything is sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmswitch.config import Config, PolicyConfig
from llmswitch.pricing.rates import Rates
from llmswitch.routing.deployment import Deployment
from llmswitch.routing.plan import ModelRoute

if TYPE_CHECKING:
    from llmswitch.routing.auto import RouterModel, Strategy
    from llmswitch.routing.auto.config import AutoRouteConfig

__all__ = [
    "Facts",
    "PolicyView",
    "build_views",
    "key_views",
    "refusal",
    "self_hosted_providers",
    "weights_open",
]

log = logging.getLogger("llmswitch")


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules look at, for one deployment."""

    region: str | None
    open_weights: bool | None  # None: unknown
    self_hosted: bool
    rates: Rates | None  # list price; None: unknown


@dataclass(slots=True)
class PolicyView:
    name: str
    routes: dict[str, ModelRoute] = field(default_factory=dict)  # models with at least one allowed deployment
    auto: dict[str, tuple[Strategy, AutoRouteConfig]] = field(default_factory=dict)
    refusals: dict[str, str] = field(default_factory=dict)  # model → why no deployment of it is allowed


def self_hosted_providers(config: Config) -> frozenset[str]:
    """Providers on the user's own hardware: an engine llmswitch runs, or rented GPUs priced by the hour."""
    own = {name for name, p in config.providers.items() if p.engine is not None}
    for model in config.models.values():
        own.update(d.provider for d in model.deployments if d.self_hosted is not None)
    return frozenset(own)


def weights_open(known: bool | None, self_hosted: bool) -> bool | None:
    """The catalog's answer (None: unknown); weights you serve yourself are weights you have."""
    return True if known is None and self_hosted else known


def refusal(policy: PolicyConfig, f: Facts) -> str | None:
    """Why `policy` does not allow a deployment with these facts, or None if it does."""
    if policy.regions is not None:
        allowed = {r.upper() for r in policy.regions}
        if f.region is None or f.region.upper() not in allowed:
            return f"its provider's region is {f.region or 'not set'}, not one of {', '.join(policy.regions)}"
    if policy.self_hosted and not f.self_hosted:
        return "it is not self-hosted"
    if policy.open_weights and f.open_weights is not True:
        return "its weights are not " + ("open" if f.open_weights is False else "known to be open")
    if policy.max_price is not None and not f.self_hosted:
        if f.rates is None:
            return "its price is unknown"
        limit = policy.max_price
        if f.rates.input > limit.input or f.rates.output > limit.output:
            return (
                f"its list price ${f.rates.input:g} / ${f.rates.output:g} per Mtok (input / output) is over"
                f" ${limit.input:g} / ${limit.output:g}"
            )
    return None


def key_views(
    config: Config,
    routes: dict[str, ModelRoute],
    auto_routes: dict[str, AutoRouteConfig],
    router_model: Callable[[AutoRouteConfig], RouterModel],
) -> dict[str, PolicyView]:
    """Key id → the view of its policy (keys without a policy are left out); logs every refusal."""
    from llmswitch.catalog import default_catalog

    views = build_views(config, routes, auto_routes, router_model, default_catalog().is_open_weights)
    for view in views.values():
        for why in view.refusals.values():
            log.info("%s", why)
    return {k.id: views[k.policy] for k in config.auth.keys if k.policy is not None}


def build_views(
    config: Config,
    routes: dict[str, ModelRoute],
    auto_routes: dict[str, AutoRouteConfig],
    router_model: Callable[[AutoRouteConfig], RouterModel],
    open_weights: Callable[[str], bool | None],
) -> dict[str, PolicyView]:
    """One view per configured policy. `open_weights(upstream_model)` asks the model catalog."""
    own_hardware = self_hosted_providers(config)
    now = time.time()
    facts: dict[int, Facts] = {}

    def facts_of(d: Deployment) -> Facts:
        if id(d) not in facts:
            mine = d.provider in own_hardware
            facts[id(d)] = Facts(
                region=d.region,
                open_weights=weights_open(open_weights(d.upstream_model), mine),
                self_hosted=mine,
                rates=d.pricer.rates(now),
            )
        return facts[id(d)]

    views: dict[str, PolicyView] = {}
    for name, policy in config.policies.items():
        view = views[name] = PolicyView(name)
        for model, route in routes.items():
            reasons = {d.label: refusal(policy, facts_of(d)) for d in route.deployments}
            allowed = [d for d in route.deployments if reasons[d.label] is None]
            if allowed:
                view.routes[model] = ModelRoute(model, allowed)
            else:
                why = "; ".join(f"{label}: {reason}" for label, reason in reasons.items())
                view.refusals[model] = f"policy {name!r} allows no deployment of model {model!r} ({why})"
        for model, route_cfg in auto_routes.items():
            _auto_view(view, model, route_cfg, router_model)
    return views


def _auto_view(
    view: PolicyView,
    model: str,
    cfg: AutoRouteConfig,
    router_model: Callable[[AutoRouteConfig], RouterModel],
) -> None:
    """An `auto` model under a policy chooses among the candidates the policy allows."""
    from llmswitch.routing.auto import build_strategy

    candidates = [c for c in cfg.candidates if (c if isinstance(c, str) else c.name) in view.routes]
    needed = [m for m in (cfg.cascade.strong, cfg.cascade.judge_model) if m is not None]
    refused = [m for m in needed if m not in view.routes]
    prefix = f"policy {view.name!r} leaves model {model!r}"
    if not candidates:
        view.refusals[model] = f"{prefix} no candidate it may route to"
        return
    if refused:
        view.refusals[model] = f"{prefix} without {', '.join(refused)}, which its route needs"
        return
    narrowed = cfg.model_copy(update={"candidates": candidates})
    try:
        view.auto[model] = (build_strategy(narrowed, router_model(cfg)), narrowed)
    except ValueError as e:
        view.refusals[model] = f"{prefix} unable to route: {e}"
