"""The two litellm internals Mesh turns off, and the pricing it does instead.

If a litellm upgrade renames either hook, these fail rather than the gateway quietly paying
for work again (or losing its costs).
"""

from __future__ import annotations

import time

import pytest

from meshcore.adapters.litellm_env import litellm, quiet_call
from meshcore.adapters.litellm_models import configure, price_of
from meshcore.settings import OFFLINE_MODEL, Settings

MESSAGES = [{"role": "user", "content": "Write the launch email"}]


class Recorder(litellm.integrations.custom_logger.CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.successes = 0

    def log_success_event(self, *_: object, **__: object) -> None:
        self.successes += 1


@pytest.fixture
def recorder() -> Recorder:
    configure(Settings())
    recorder = Recorder()
    litellm.callbacks.append(recorder)
    yield recorder
    litellm.callbacks.remove(recorder)


def completion() -> litellm.ModelResponse:
    return litellm.completion(model=OFFLINE_MODEL, messages=MESSAGES, max_tokens=50)


def successes_after(recorder: Recorder, call: object) -> int:
    before = recorder.successes
    call()
    time.sleep(0.5)  # litellm logs success on a background thread
    return recorder.successes - before


def test_a_quiet_call_skips_litellms_success_logging(recorder: Recorder) -> None:
    def quiet() -> None:
        with quiet_call():
            completion()

    assert successes_after(recorder, completion) == 1  # the hook the quiet call turns off
    assert successes_after(recorder, quiet) == 0


def test_litellm_leaves_the_pricing_to_mesh(recorder: Recorder) -> None:
    response = completion()

    assert response.usage.prompt_tokens > 0
    assert response._hidden_params.get("response_cost") is None


@pytest.mark.parametrize("cached", [0, 1000])
def test_mesh_prices_a_call_as_litellm_would(cached: int) -> None:
    usage = litellm.Usage(
        prompt_tokens=12_000,
        completion_tokens=800,
        total_tokens=12_800,
        prompt_tokens_details={"cached_tokens": cached},
    )
    response = litellm.ModelResponse(model="gpt-4o", usage=usage)

    expected = litellm.completion_cost(completion_response=response, model="openai/gpt-4o")

    assert expected > 0
    assert price_of("openai/gpt-4o").cost(usage) == pytest.approx(expected)


def test_a_model_missing_from_the_price_map_has_no_price() -> None:
    assert price_of("openai/no-such-model") is None
