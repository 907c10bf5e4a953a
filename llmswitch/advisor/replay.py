"""Calls to the embedded gateway with the official OpenAI SDK: streamed replays (latency, time to first
token, usage, the ledger id that holds the cost) and non-streamed judge calls (cost from the header).

An HTTP error from the gateway is an outcome (the model could not answer this request: it counts
against it); a connection error means the embedded gateway is gone, and stops the run (`GatewayDown`).
"""

from __future__ import annotations

import time
from typing import Any, cast

import openai

from llmswitch.advisor.state import CallRecord

__all__ = ["GatewayDown", "Replayer"]

TIMEOUT_S = 900.0  # longer than any sane routing.timeout: the gateway's own deadline (504) applies first


class GatewayDown(Exception):
    """The embedded gateway stopped answering."""


def _cost_header(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:  # "unknown": no price for this model
        return None


class Replayer:
    def __init__(self, base_url: str, run_key: str) -> None:
        self.client = openai.AsyncOpenAI(
            base_url=f"{base_url}/v1", api_key="llmswitch-advise", max_retries=0, timeout=TIMEOUT_S
        )
        self.tags = {"x-llmswitch-tags": f"llmswitch-advise={run_key}"}

    async def close(self) -> None:
        await self.client.close()

    async def replay(self, rid: str, model: str, request: dict[str, Any]) -> CallRecord:
        body = {k: v for k, v in request.items() if k != "messages"}
        started = time.perf_counter()
        ttft: float | None = None
        pieces: list[str] = []
        usage: Any = None
        gateway_id: str | None = None
        try:
            raw = await self.client.chat.completions.with_raw_response.create(
                model=model,
                messages=request["messages"],
                stream=True,
                stream_options={"include_usage": True},
                extra_body=body,
                extra_headers=self.tags,
            )
            gateway_id = raw.headers.get("x-llmswitch-request-id")
            stream = raw.parse()
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    delta = choice.delta
                    text = delta.content if delta is not None else None
                    reasoning = getattr(delta, "reasoning_content", None) if delta is not None else None
                    if ttft is None and (text or reasoning):
                        ttft = time.perf_counter() - started
                    if text:
                        pieces.append(text)
        except openai.APIConnectionError as e:
            if not isinstance(e, openai.APITimeoutError):
                raise GatewayDown(str(e)) from e
            return self._failed(rid, model, "timeout", gateway_id)
        except openai.APIStatusError as e:
            gateway_id = e.response.headers.get("x-llmswitch-request-id", gateway_id)
            return self._failed(rid, model, f"HTTP {e.status_code}: {_message(e)}", gateway_id)
        except openai.APIError as e:  # an error event inside the stream (upstream cut it short)
            return self._failed(rid, model, f"stream error: {e.message}"[:300], gateway_id)
        return CallRecord(
            rid=rid,
            model=model,
            ok=True,
            text="".join(pieces),
            error=None,
            latency_s=time.perf_counter() - started,
            ttft_s=ttft,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            gateway_id=gateway_id,
            ts=time.time(),
        )

    @staticmethod
    def _failed(rid: str, model: str, error: str, gateway_id: str | None) -> CallRecord:
        return CallRecord(rid, model, False, "", error[:300], None, None, None, None, gateway_id, time.time())

    async def judge(self, model: str, messages: list[dict[str, str]]) -> tuple[str, float | None]:
        """One judge call: (reply text, cost). Raises openai errors (the judge module retries)."""
        try:
            raw = await self.client.chat.completions.with_raw_response.create(
                model=model,
                messages=cast(Any, messages),  # plain dicts: the SDK's TypedDicts are structural
                temperature=0,
                max_tokens=1024,
                extra_headers=self.tags,
            )
        except openai.APIConnectionError as e:
            if isinstance(e, openai.APITimeoutError):
                raise
            raise GatewayDown(str(e)) from e
        completion = raw.parse()
        text = completion.choices[0].message.content if completion.choices else None
        return text or "", _cost_header(raw.headers.get("x-llmswitch-cost-usd"))


def _message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
    return str(e.message)
