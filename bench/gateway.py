"""What the gateway adds to a call when the first model's breaker is open.

Baseline: litellm straight to the second provider. Measured: the gateway with the chain
(dead first provider, breaker open; second provider), so each call pays the breaker check in
Redis and the chain walk. Both go to the same loopback provider server in the same run.
"""

from __future__ import annotations

import time

import redis
from pydantic import SecretStr

from bench.report import Figure, median, percentile, publish
from meshcore.adapters.breaker import BreakerBoard, BreakerPolicy
from meshcore.adapters.litellm_env import litellm, quiet_call
from meshcore.adapters.litellm_models import ModelGateway, configure, is_breaker_failure
from meshcore.agents import critic
from meshcore.settings import Settings
from tests.provider_server import provider_server

DEAD, ALIVE = "openai/gpt-4o", "anthropic/claude-3-7-sonnet-20250219"


def run(redis_url: str, calls: int) -> list[Figure]:
    client = redis.Redis.from_url(redis_url)
    client.delete(*client.keys("mesh:breaker:*") or ["-"])
    messages = critic.review_messages(task="Write the launch email", answer="Hi", iteration=1)
    wire = [{"role": m.role, "content": m.content} for m in messages]
    with provider_server() as server:
        server.behave("gpt-4o", default="500")
        settings = Settings(
            redis_url=redis_url, model_chain=(DEAD, ALIVE), allow_offline_model=False,
            provider_api_bases={"openai": server.openai_base, "anthropic": server.anthropic_base},
            OPENAI_API_KEY=SecretStr("k"), ANTHROPIC_API_KEY=SecretStr("k"), model_attempts=1,
        )
        board = BreakerBoard(client, BreakerPolicy(failure_threshold=3, recovery_seconds=3600),
                             is_breaker_failure)
        configure(settings)
        gateway = ModelGateway(settings, board)

        def direct() -> None:
            # The same arguments the gateway passes, so only the gateway's own work differs.
            with quiet_call():
                litellm.completion(model=ALIVE, messages=wire, api_base=server.anthropic_base,
                                   api_key="k", num_retries=0, max_retries=0, max_tokens=100,
                                   temperature=0, timeout=30)

        def through_gateway() -> None:
            gateway.complete(messages, chain=None, temperature=0, max_tokens=100, timeout_s=30)

        for _ in range(5):  # opens the breaker, and warms both paths
            through_gateway()
            direct()
        dead_before = server.requests["gpt-4o"]
        baseline, measured = [], []
        for _ in range(calls):  # interleaved, so drift on a shared machine hits both alike
            baseline.append(_timed(direct))
            measured.append(_timed(through_gateway))
        assert server.requests["gpt-4o"] == dead_before, "the open breaker let a call through"
    client.delete(*client.keys("mesh:breaker:*") or ["-"])
    base_ms, gate_ms = median(baseline), median(measured)
    return [
        Figure("call, median (gateway vs direct)", gate_ms, base_ms, "ms"),
        Figure("call, p99 (gateway vs direct)", percentile(measured, 0.99),
               percentile(baseline, 0.99), "ms"),
        Figure("added by the gateway per call, median", gate_ms - base_ms, base_ms, "ms",
               "ratio: share of a direct call"),
        Figure("requests to the dead provider while open", 0, calls, "requests",
               f"of {calls} calls"),
    ]


def _timed(call: object) -> float:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


def main(redis_url: str, quick: bool) -> None:
    publish("gateway (first provider's breaker open)", run(redis_url, 50 if quick else 300))
