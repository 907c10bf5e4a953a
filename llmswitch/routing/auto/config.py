"""Configuration of an ``auto`` route (to be embedded in the gateway YAML under a route)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["AutoRouteConfig", "CandidateConfig", "CascadeConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CandidateConfig(_Strict):
    """A model the router may call. Prices in USD per million tokens; omitted = taken from the model file."""

    name: str
    input_price: float | None = Field(default=None, ge=0)
    output_price: float | None = Field(default=None, ge=0)


class CascadeConfig(_Strict):
    """How the cascade calls cheap candidates and decides to accept or escalate.

    ``order``: cheap candidates in calling order (omitted = the order learned by ``router train``);
    ``strong``: the model escalated to (omitted = the model file's strongest candidate);
    ``max_cheap``: at most this many cheap calls per request; ``first_batch``: how many of the first cheap
    calls are made concurrently before the first check.
    ``check``: ``learned`` = the trained acceptance model estimates P(correct) of the agreed answer and the
    gain of escalating; ``agreement`` = accept when ``min_agree`` normalised final answers agree;
    ``judge`` = ask ``judge_model`` (through the same caller) whether the cheap answer is right.
    ``continue_factor``: between cheap calls, continue to the next cheap candidate when the estimated gain
    exceeds ``continue_factor`` × the escalation threshold (0 = keep sampling cheap answers whenever the
    strong model is expected to do better at all).
    """

    order: list[str] | None = None
    strong: str | None = None
    max_cheap: int | None = Field(default=None, ge=1)
    first_batch: int = Field(default=1, ge=1)
    check: Literal["learned", "agreement", "judge"] = "learned"
    min_agree: int = Field(default=2, ge=2)
    judge_model: str | None = None
    continue_factor: float | None = Field(default=None, ge=0)


class AutoRouteConfig(_Strict):
    """An ``auto`` route: which strategy, over which candidates, aiming at which quality / trade-off.

    ``target``: minimum acceptable probability of a good answer (0–1); a request's
    ``x-llmswitch-min-quality`` header overrides it. With no target, ``lambda`` (quality per USD per
    request) trades quality against cost: the router maximises P(good) − λ·cost.
    ``skip_margin`` (hybrid): go straight to the strong model when its predicted quality exceeds the best
    cheap candidate's by more than this (omitted = the value learned by ``router train``).
    """

    strategy: Literal["predictive", "cascade", "hybrid"] = "hybrid"
    candidates: list[str | CandidateConfig] = Field(default_factory=list)
    target: float | None = Field(default=None, ge=0, le=1)
    lambda_: float = Field(default=100.0, ge=0, alias="lambda")
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)
    skip_margin: float | None = None
    model_file: str | None = None

    @field_validator("candidates")
    @classmethod
    def _unique(cls, v: list[str | CandidateConfig]) -> list[str | CandidateConfig]:
        names = [c if isinstance(c, str) else c.name for c in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"candidates listed twice: {sorted(dup)}")
        return v

    def candidate_names(self) -> list[str]:
        return [c if isinstance(c, str) else c.name for c in self.candidates]

    def price_overrides(self) -> dict[str, tuple[float | None, float | None]]:
        return {
            c.name: (c.input_price, c.output_price) for c in self.candidates if isinstance(c, CandidateConfig)
        }
