"""A separate process that makes model calls through the gateway: `redis_url bases_json n`.

Prints which model answered each call, as JSON, so a test can compare two processes.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import redis
from pydantic import SecretStr

from meshcore.adapters.breaker import BreakerBoard, BreakerPolicy
from meshcore.adapters.litellm_models import ModelGateway, configure, is_breaker_failure
from meshcore.agents import critic
from meshcore.settings import Settings


def main() -> None:
    redis_url, bases, calls = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    settings = Settings(
        redis_url=redis_url,
        provider_api_bases=bases,
        allow_offline_model=False,
        model_chain=("openai/gpt-4o", "anthropic/claude-3-7-sonnet-20250219"),
        model_attempts=1,
        OPENAI_API_KEY=SecretStr("k"),
        ANTHROPIC_API_KEY=SecretStr("k"),
    )
    board = BreakerBoard(
        redis.Redis.from_url(redis_url), BreakerPolicy(failure_threshold=3), is_breaker_failure
    )
    configure(settings)
    gateway = ModelGateway(settings, board)
    messages = critic.review_messages(task="t", answer="a", iteration=1)
    answered = Counter(
        gateway.complete(messages, chain=None, temperature=0, max_tokens=50, timeout_s=20).model
        for _ in range(calls)
    )
    print(json.dumps(answered))


if __name__ == "__main__":
    main()
