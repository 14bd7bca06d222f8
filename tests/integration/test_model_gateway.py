
"""The model gateway on litellm's real HTTP path, against a provider server on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import structlog.testing
from pydantic import SecretStr

from meshcore.adapters.breaker import BreakerBoard, BreakerPolicy
from meshcore.adapters.litellm_env import litellm
from meshcore.adapters.litellm_models import ModelGateway, configure, is_breaker_failure
from meshcore.agents import BUILTINS, coordinator, critic
from meshcore.domain.errors import CallAbandoned, InvalidPlan, ModelUnavailable
from meshcore.ports import Message
from meshcore.settings import Settings
from tests.provider_server import ProviderServer, provider_server

pytestmark = pytest.mark.integration

OPENAI = "openai/gpt-4o"
ANTHROPIC = "anthropic/claude-3-7-sonnet-20250219"
ROOT = Path(__file__).parents[2]


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with provider_server() as running:
        yield running


@pytest.fixture
def breaker_redis(redis_url: str) -> Iterator[str]:
    url = redis_url.rsplit("/", 1)[0] + "/14"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


def settings_for(server: ProviderServer, redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "model_chain": (OPENAI, ANTHROPIC),
        "provider_api_bases": {"openai": server.openai_base, "anthropic": server.anthropic_base},
        "ANTHROPIC_API_KEY": SecretStr("test-key"),
        "OPENAI_API_KEY": SecretStr("test-key"),
        "allow_offline_model": False,
        "model_attempts": 3,
        "breaker_failure_threshold": 3,
        "breaker_recovery_seconds": 30,
        **overrides,
    }
    return Settings(**values)


class Sleeps(list[float]):
    """Records the gateway's backoff instead of waiting it out."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def gateway(settings: Settings, sleep: Sleeps | None = None) -> ModelGateway:
    client = redis.Redis.from_url(settings.redis_url or "")
    policy = BreakerPolicy(
        settings.breaker_failure_threshold,
        settings.breaker_window_seconds,
        settings.breaker_recovery_seconds,
        probe_lease_seconds=10,
    )
    board = BreakerBoard(client, policy, is_breaker_failure)
    configure(settings)
    return ModelGateway(settings, board, sleep=sleep if sleep is not None else Sleeps())


def verdict_prompt() -> list[Message]:
    return critic.review_messages(task="Write the launch email", answer="Hello", iteration=1)


def ask(gw: ModelGateway, messages: list[Message] | None = None, **kwargs: object) -> object:
    return gw.complete(
        messages or verdict_prompt(),
        chain=None,
        temperature=0.0,
        max_tokens=200,
        timeout_s=kwargs.pop("timeout_s", 20),
        **kwargs,
    )


def test_a_call_is_priced_from_its_tokens(server: ProviderServer, breaker_redis: str) -> None:
    completion = ask(gateway(settings_for(server, breaker_redis)))

    usage = completion.usage
    assert completion.model == OPENAI
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    expected = litellm.cost_per_token(
        model=OPENAI, prompt_tokens=usage.input_tokens, completion_tokens=usage.output_tokens
    )
    assert usage.cost_usd == pytest.approx(sum(expected))
    assert usage.cost_usd > 0


@pytest.mark.parametrize("failure", ["500", "401"])
def test_a_failing_first_model_falls_back_to_the_second(
    server: ProviderServer, breaker_redis: str, failure: str
) -> None:
    server.behave("gpt-4o", default=failure)

    completion = ask(gateway(settings_for(server, breaker_redis)))

    assert completion.model == ANTHROPIC
    assert 0 <= json.loads(completion.text)["score"] <= 1
    # A 500 is retried on the same model; a 401 is not worth a second request.
    assert server.requests["gpt-4o"] == (3 if failure == "500" else 1)
    assert server.requests["claude-3-7-sonnet-20250219"] == 1


def test_a_429_is_retried_after_its_retry_after(server: ProviderServer, breaker_redis: str) -> None:
    server.behave("gpt-4o", "429:7")
    sleeps = Sleeps()

    completion = ask(gateway(settings_for(server, breaker_redis), sleeps))

    assert completion.model == OPENAI
    assert server.requests["gpt-4o"] == 2
    assert sleeps == [7.0]


def test_the_breaker_opens_at_its_threshold_and_then_spares_the_provider(
    server: ProviderServer, breaker_redis: str
) -> None:
    server.behave("gpt-4o", default="500")
    gw = gateway(settings_for(server, breaker_redis, model_attempts=1))

    answers = [ask(gw) for _ in range(10)]

    assert all(a.model == ANTHROPIC for a in answers)
    assert server.requests["gpt-4o"] == 3  # the threshold, then not one request more
    assert server.requests["claude-3-7-sonnet-20250219"] == 10
    status = gw_status(breaker_redis, OPENAI)
    assert status.state == "open" and status.times_opened == 1


def gw_status(redis_url: str, model: str):
    board = BreakerBoard(redis.Redis.from_url(redis_url), BreakerPolicy())
    return board.breaker(model).status()


def test_one_caller_probes_a_recovering_provider_and_closes_the_breaker(
    server: ProviderServer, breaker_redis: str
) -> None:
    settings = settings_for(server, breaker_redis, model_attempts=1, breaker_recovery_seconds=0.5)
    server.behave("gpt-4o", "500", "500", "500", default="hang:0.5")
    opener = gateway(settings)
    for _ in range(3):
        ask(opener)
    assert gw_status(breaker_redis, OPENAI).state == "open"
    time.sleep(0.6)  # the cool-down

    callers = [gateway(settings) for _ in range(8)]
    answers: list[object] = []
    threads = [threading.Thread(target=lambda g=g: answers.append(ask(g))) for g in callers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert server.requests["gpt-4o"] == 4  # three that opened it, one probe
    assert sorted(a.model for a in answers) == [ANTHROPIC] * 7 + [OPENAI]
    assert gw_status(breaker_redis, OPENAI).state == "closed"
    assert ask(opener).model == OPENAI


def test_breaker_state_is_shared_between_worker_processes(
    server: ProviderServer, breaker_redis: str
) -> None:
    server.behave("gpt-4o", default="500")
    script = ROOT / "tests" / "integration" / "gateway_calls.py"
    env_settings = json.dumps({"openai": server.openai_base, "anthropic": server.anthropic_base})

    def run(calls: int) -> dict[str, int]:
        done = subprocess.run(
            [sys.executable, str(script), breaker_redis, env_settings, str(calls)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            check=True,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    first = run(5)
    after_first = server.requests["gpt-4o"]
    second = run(5)

    assert first == {ANTHROPIC: 5}
    assert after_first == 3
    assert second == {ANTHROPIC: 5}
    assert server.requests["gpt-4o"] == 3  # the second process never called the dead provider


def test_a_hung_provider_is_cut_off_by_the_timeout(
    server: ProviderServer, breaker_redis: str
) -> None:
    server.behave("gpt-4o", default="hang:30")
    gw = gateway(settings_for(server, breaker_redis, model_timeout_seconds=1, model_attempts=2))
    started = time.monotonic()

    completion = ask(gw, timeout_s=20)

    assert completion.model == ANTHROPIC
    assert server.requests["gpt-4o"] == 2
    assert time.monotonic() - started < 15  # two 1 s attempts, nowhere near the 30 s hang


def test_a_deadline_bounds_the_whole_chain(server: ProviderServer, breaker_redis: str) -> None:
    server.behave("gpt-4o", default="hang:30")
    server.behave("claude-3-7-sonnet-20250219", default="hang:30")
    gw = gateway(settings_for(server, breaker_redis, model_timeout_seconds=60))
    started = time.monotonic()

    with pytest.raises(ModelUnavailable):
        ask(gw, timeout_s=2)

    assert time.monotonic() - started < 10


def test_a_malformed_plan_is_retried_once_with_the_error_then_the_next_model(
    server: ProviderServer, breaker_redis: str
) -> None:
    server.behave("gpt-4o", default="bad_content")
    messages = coordinator.plan_messages(
        task="Launch email", context={}, agents=BUILTINS.values(), iteration=1, feedback=None
    )

    completion = ask(gateway(settings_for(server, breaker_redis)), messages, validate=plan_check)

    assert completion.model == ANTHROPIC
    assert server.requests["gpt-4o"] == 2  # the answer, and one retry shown its error
    assert coordinator.read_plan(completion.text)


def plan_check(text: str) -> object:
    try:
        return coordinator.read_plan(text)
    except InvalidPlan as exc:
        raise ValueError(str(exc)) from exc


def test_garbage_from_a_provider_never_crashes_the_call(
    server: ProviderServer, breaker_redis: str
) -> None:
    server.behave("gpt-4o", default="garbage")

    completion = ask(gateway(settings_for(server, breaker_redis)))

    assert completion.model == ANTHROPIC


def test_a_provider_without_credentials_is_skipped_and_said_once(
    server: ProviderServer, breaker_redis: str
) -> None:
    settings = settings_for(
        server,
        breaker_redis,
        model_chain=("gemini/gemini-2.0-flash", OPENAI),
        provider_api_bases={"openai": server.openai_base},
    )
    gw = gateway(settings)

    with structlog.testing.capture_logs() as logs:
        answers = [ask(gw) for _ in range(3)]

    assert [a.model for a in answers] == [OPENAI] * 3
    skips = [e for e in logs if e["event"] == "model.skipped"]
    assert skips == [
        {
            "event": "model.skipped",
            "model": "gemini/gemini-2.0-flash",
            "reason": "no credentials",
            "log_level": "info",
        }
    ]


def test_a_call_the_task_no_longer_wants_is_not_sent(
    server: ProviderServer, breaker_redis: str
) -> None:
    with pytest.raises(CallAbandoned):
        ask(gateway(settings_for(server, breaker_redis)), is_wanted=lambda: False)

    assert sum(server.requests.values()) == 0


def test_a_cancel_during_a_retrys_backoff_sends_no_retry_and_no_fallback(
    server: ProviderServer, breaker_redis: str
) -> None:
    server.behave("gpt-4o", default="503")
    wanted = [True]

    def cancel_while_waiting(seconds: float) -> None:
        wanted[0] = False  # the task is cancelled while the gateway waits to retry

    gw = ModelGateway(
        settings_for(server, breaker_redis), gateway(settings_for(server, breaker_redis))._breakers,
        sleep=cancel_while_waiting,
    )  # fmt: skip
    with pytest.raises(CallAbandoned):
        ask(gw, is_wanted=lambda: wanted[0])

    assert server.requests["gpt-4o"] == 1
    assert server.requests["claude-3-7-sonnet-20250219"] == 0
