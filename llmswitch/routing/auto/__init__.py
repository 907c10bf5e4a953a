"""The ``auto`` router: predict, cascade or both, trained on outcome data and evaluated by replay.

Gateway-facing API (see ``docs/router/README.md``)::

    cfg = AutoRouteConfig.model_validate(route_yaml["auto"])
    model = load_router_model(cfg.model_file)           # once, at start-up (None = shipped default)
    strategy = build_strategy(cfg, model)
    decision = await strategy.route(messages, min_quality, call)   # call(model) -> Answer
"""

from llmswitch.routing.auto.config import AutoRouteConfig, CandidateConfig, CascadeConfig
from llmswitch.routing.auto.model import DEFAULT_MODEL_FILE, RouterModel, load_router_model
from llmswitch.routing.auto.strategies import (
    Answer,
    Caller,
    CascadeStrategy,
    HybridStrategy,
    PredictiveStrategy,
    RouteDecision,
    RouterContext,
    Strategy,
    benchmark_predictive,
    build_strategy,
    trace_header,
)

__all__ = [
    "DEFAULT_MODEL_FILE",
    "Answer",
    "AutoRouteConfig",
    "Caller",
    "CandidateConfig",
    "CascadeConfig",
    "CascadeStrategy",
    "HybridStrategy",
    "PredictiveStrategy",
    "RouteDecision",
    "RouterContext",
    "RouterModel",
    "Strategy",
    "benchmark_predictive",
    "build_strategy",
    "load_router_model",
    "trace_header",
]
