"""The ``auto`` router: predict, cascade or both, trained on outcome data and evaluated by replay.

Gateway-facing API (see ``docs/router/README.md``)::

    cfg = AutoRouteConfig.model_validate(route_yaml["auto"])
    model = load_router_model(cfg.model_file)           # once, at start-up (None = shipped default)
    strategy = build_strategy(cfg, model)
    decision = await strategy.route(messages, min_quality, call)   # call(model) -> Answer
"""

from typing import TYPE_CHECKING, Any

from llmswitch.routing.auto.config import AutoRouteConfig, CandidateConfig, CascadeConfig

if TYPE_CHECKING:
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

# The config is all a gateway without an `auto` model needs: the rest (numpy, ~15 MB of RSS per worker)
# is imported on first use.
_LAZY = {
    **dict.fromkeys(["DEFAULT_MODEL_FILE", "RouterModel", "load_router_model"], "model"),
    **dict.fromkeys(
        [
            "Answer",
            "Caller",
            "CascadeStrategy",
            "HybridStrategy",
            "PredictiveStrategy",
            "RouteDecision",
            "RouterContext",
            "Strategy",
            "benchmark_predictive",
            "build_strategy",
            "trace_header",
        ],
        "strategies",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


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
