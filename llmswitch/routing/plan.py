"""Which deployments a request tries, in which order."""

from __future__ import annotations

from llmswitch.routing.deployment import Deployment


class ModelRoute:
    """A configured model: its own deployments first, then those of its fallback models (depth-first)."""

    __slots__ = ("deployments", "name")

    def __init__(self, name: str, deployments: list[Deployment]) -> None:
        self.name = name
        self.deployments = deployments

    def plan(self, now: float) -> list[Deployment]:
        """Healthy deployments in configured order, then cooled-down ones as a last resort.

        A cooled-down deployment is still better than refusing the request when everything is cooling."""
        ready = [d for d in self.deployments if d.health.available(now)]
        if len(ready) == len(self.deployments):
            return ready
        return ready + [d for d in self.deployments if not d.health.available(now)]


def expand(name: str, own: dict[str, list[Deployment]], fallbacks: dict[str, list[str]]) -> list[Deployment]:
    """All deployments for `name`: its own, then each fallback's (recursively), each deployment once."""
    seen: set[int] = set()
    out: list[Deployment] = []

    def walk(model: str, stack: tuple[str, ...]) -> None:
        if model in stack:  # a fallback cycle: stop, the deployments are already listed
            return
        for d in own[model]:
            if id(d) not in seen:
                seen.add(id(d))
                out.append(d)
        for fb in fallbacks[model]:
            walk(fb, (*stack, model))

    walk(name, ())
    return out
