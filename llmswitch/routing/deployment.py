"""A deployment at run time: one upstream model on one provider, with its pool, pricer and health."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmswitch.pricing.book import DeploymentPricer
from llmswitch.pricing.selfhost import SelfHostedMeter
from llmswitch.providers.http_client import ConnectionPool


@dataclass(slots=True)
class Health:
    """Shared by all requests: consecutive retryable failures cool a deployment down for a while."""

    failures: int = 0
    cooldown_until: float = 0.0  # loop time; 0 = healthy
    not_before: float = 0.0  # loop time before which the upstream asked us not to call (Retry-After)

    def available(self, now: float) -> bool:
        return now >= self.cooldown_until and now >= self.not_before

    def succeeded(self) -> None:
        self.failures = 0
        self.cooldown_until = 0.0

    def failed(self, now: float, threshold: int, cooldown: float) -> None:
        self.failures += 1
        if self.failures >= threshold:
            self.cooldown_until = now + cooldown
            self.failures = 0


@dataclass(slots=True, eq=False)
class Deployment:
    model_name: str  # the configured model this deployment serves
    provider: str
    upstream_model: str
    api: str  # wire protocol: openai | anthropic
    region: str | None
    pool: ConnectionPool
    head: bytes  # request head for this deployment's endpoint, auth included (never logged)
    pricer: DeploymentPricer
    timeout: float | None  # per-attempt time to first byte; None = the routing default
    secret: str | None = None  # the provider key, kept only to scrub it from anything we echo
    max_output_tokens: int | None = None
    meter: SelfHostedMeter | None = None  # self-hosted: cost from the GPU time requests occupy
    health: Health = field(default_factory=Health)

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.upstream_model}"
