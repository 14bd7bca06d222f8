"""The model gateway: every model call of every agent goes through here.

For each model of the chain, in order:
  skip it     when its provider has no credentials (logged once), or its breaker is open;
  call it     through litellm with litellm's and the OpenAI SDK's own retries off;
  retry it    on transient errors only (timeouts, connection errors, 429, 5xx), with
              exponential backoff and jitter, honouring Retry-After, bounded in attempts
              and by the caller's deadline: this is the one retry layer;
  move on     on anything else (400, 401, 404, content policy), on an open breaker, or on
              an answer that stays malformed after one corrected retry.
Only processes that call models import this module: importing litellm costs seconds of CPU.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import openai
import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from meshcore.adapters.breaker import BreakerBoard, CircuitBreakerError
from meshcore.adapters.litellm_env import litellm, quiet_call
from meshcore.adapters.offline_model import PROVIDER, OfflineModel
from meshcore.adapters.providers import Providers
from meshcore.domain.errors import CallAbandoned, ModelUnavailable
from meshcore.domain.task import Usage
from meshcore.ports import Completion, Message, ToolCall
from meshcore.settings import OFFLINE_MODEL, Settings
from meshcore.telemetry import metrics
from meshcore.telemetry.tracing import tracer

log = structlog.get_logger(__name__)

# Errors a provider call can end in; anything else is a bug and propagates.
MODEL_ERRORS = (openai.OpenAIError, litellm.llms.custom_llm.CustomLLMError)


class InvalidAnswer(Exception):
    """A model's answer that does not parse or validate as the caller asked."""


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """Worth the same model again after a pause: timeouts, connection errors, 429 and 5xx."""
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return True
    status = status_of(exc)
    return status is not None and (status in (408, 409, 425, 429) or status >= 500)


def is_breaker_failure(exc_type: type[BaseException], exc: BaseException) -> bool:
    """Counts against a provider's health: transient errors, and 401/403/404 (it is unusable).

    A 400 or a content-policy refusal says the request was wrong, not that the provider is.
    """
    if not isinstance(exc, MODEL_ERRORS):
        return False
    return is_transient(exc) or status_of(exc) in (401, 403, 404)


@dataclass(frozen=True)
class _Request:
    """One call's arguments, the same for every model of the chain."""

    messages: Sequence[Message]
    temperature: float
    max_tokens: int
    deadline: float  # time.monotonic() by which the whole chain must have answered
    is_wanted: Callable[[], bool] | None = None  # asked before each request goes out
    tools: Sequence[dict[str, object]] | None = None  # OpenAI function specs it may call


class ModelGateway:
    def __init__(
        self,
        settings: Settings,
        breakers: BreakerBoard,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings, self._breakers, self._sleep = settings, breakers, sleep
        self._providers = Providers(settings)
        self._skipped: set[str] = set()
        self._unpriced: set[str] = set()

    def complete(
        self,
        messages: Sequence[Message],
        *,
        chain: Sequence[str] | None,
        temperature: float,
        max_tokens: int,
        timeout_s: float,
        validate: Callable[[str], object] | None = None,
        is_wanted: Callable[[], bool] | None = None,
        tools: Sequence[dict[str, object]] | None = None,
    ) -> Completion:
        """The first good answer along the chain, or ModelUnavailable saying why none came."""
        deadline = time.monotonic() + timeout_s
        request = _Request(messages, temperature, max_tokens, deadline, is_wanted, tools)
        failures = []
        for model in self.usable(chain):
            if time.monotonic() >= request.deadline:
                failures.append("deadline reached")
                break
            with tracer.start_as_current_span(
                "mesh.model_call",
                attributes={"gen_ai.request.model": model, "gen_ai.system": _provider(model)},
            ) as span:
                completion, failure = self._try(model, request, validate)
                span.set_attribute("mesh.outcome", failure[0] if failure else "success")
                if completion is not None:
                    span.set_attribute("gen_ai.usage.input_tokens", completion.usage.input_tokens)
                    span.set_attribute("gen_ai.usage.output_tokens", completion.usage.output_tokens)
            if completion is not None:
                if failures:
                    log.info("model.fallback", model=model, skipped=len(failures))
                return completion
            metrics.model_calls.labels(model, failure[0]).inc()
            metrics.model_fallbacks.labels(model).inc()
            failures.append(f"{model}: {failure[1]}")
        raise ModelUnavailable("no model could answer: " + ("; ".join(failures) or "none usable"))

    def _try(
        self, model: str, request: _Request, validate: Callable[[str], object] | None
    ) -> tuple[Completion | None, tuple[str, str] | None]:
        """One model of the chain: its answer, or (outcome, why) when it gave none."""
        try:
            completion = self._attempt(model, request)
            # A request for tool calls is no answer yet: the answer that follows is checked.
            if validate is not None and not completion.tool_calls:
                completion = self._validated(model, request, completion, validate)
        except CircuitBreakerError:
            log.info("model.breaker_open", model=model)
            return None, ("skipped_open_breaker", "circuit open")
        except InvalidAnswer as exc:
            log.warning("model.invalid_answer", model=model, error=str(exc))
            return None, ("invalid_answer", f"invalid answer ({exc})")
        except MODEL_ERRORS as exc:
            # The provider's own words say what to fix (a quota, a key); the log redacts keys.
            log.warning(
                "model.failed",
                model=model,
                error=type(exc).__name__,
                status=status_of(exc),
                detail=str(exc)[:500],
            )
            return None, ("error", type(exc).__name__)
        metrics.model_calls.labels(model, "success").inc()
        metrics.model_tokens.labels(model, "input").inc(completion.usage.input_tokens)
        metrics.model_tokens.labels(model, "output").inc(completion.usage.output_tokens)
        metrics.model_cost.labels(model).inc(completion.usage.cost_usd)
        return completion, None

    def usable(self, chain: Sequence[str] | None) -> list[str]:
        """The chain without the models whose provider has no credentials (logged once)."""
        usable = []
        for model in self._providers.chain(chain):
            if self._providers.has_credentials(model):
                usable.append(model)
            elif model not in self._skipped:
                self._skipped.add(model)
                log.info("model.skipped", model=model, reason="no credentials")
        return usable

    def _attempt(self, model: str, request: _Request) -> Completion:
        s = self._settings
        breaker = self._breakers.breaker(model)
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(s.model_attempts)
            | stop_before_delay(max(0.0, request.deadline - time.monotonic())),
            wait=_retry_after_or(
                wait_random_exponential(s.retry_base_seconds, max=s.retry_max_seconds)
            ),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda state: log.info(
                "model.retrying",
                model=model,
                attempt=state.attempt_number,
                error=type(state.outcome.exception()).__name__,
            ),
        )
        return retrying(breaker.call, self._call, model, request)

    def _call(self, model: str, request: _Request) -> Completion:
        # Asked before every request, retries and fallbacks included: a task cancelled while
        # a retry waited out its backoff sends nothing more.
        if request.is_wanted is not None and not request.is_wanted():
            raise CallAbandoned(f"{model} not called: the task has ended")
        remaining = request.deadline - time.monotonic()
        if remaining <= 0:
            raise openai.APITimeoutError(request=None)  # type: ignore[arg-type]
        started = time.perf_counter()
        timer = metrics.model_call_duration.labels(model).time()
        with timer:
            response = self._complete(model, request, remaining)
        latency_ms = (time.perf_counter() - started) * 1000
        usage = response.usage
        message = response.choices[0].message
        return Completion(
            text=message.content or "",
            model=model,
            usage=Usage(usage.prompt_tokens, usage.completion_tokens, self._cost(model, response)),
            latency_ms=latency_ms,
            tool_calls=tool_calls_of(message) if request.tools else (),
        )

    def _complete(
        self, model: str, request: _Request, remaining: float
    ) -> litellm.ModelResponse:
        # Offered only when there are some: a provider may refuse an empty list.
        tools = {"tools": list(request.tools)} if request.tools else {}
        with quiet_call():
            return litellm.completion(
                model=model,
                messages=[message_dict(m) for m in request.messages],
                **tools,
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                timeout=self._timeout(remaining),
                num_retries=0,  # one retry layer only: ours
                max_retries=0,  # and none inside the provider's SDK either
                api_key=self._providers.api_key(model),
                api_base=self._providers.api_base(model),
            )

    def _timeout(self, remaining: float) -> float:
        # litellm keeps one HTTP client (and its open connections) per distinct timeout; whole
        # seconds keep that to a few clients, where the exact remainder made one per call.
        return float(min(self._settings.model_timeout_seconds, max(1, math.ceil(remaining))))

    def _validated(
        self,
        model: str,
        request: _Request,
        completion: Completion,
        validate: Callable[[str], object],
    ) -> Completion:
        """Check the answer; a bad one gets one retry that shows the model its error."""
        try:
            validate(completion.text)
            return completion
        except ValueError as exc:
            problem = str(exc)
        retry = [
            *request.messages,
            Message("assistant", completion.text),
            Message(
                "user",
                f"That answer could not be used: {problem}. Reply again with only the JSON "
                "asked for.",
            ),
        ]
        second = self._attempt(model, replace(request, messages=retry))
        try:
            validate(second.text)
        except ValueError as exc:
            raise InvalidAnswer(str(exc)) from exc
        total = completion.usage + second.usage
        return Completion(second.text, model, total, completion.latency_ms + second.latency_ms)

    def _cost(self, model: str, response: litellm.ModelResponse) -> float:
        prices = price_of(model)
        if prices is None:
            if model not in self._unpriced:
                self._unpriced.add(model)
                log.info("model.unpriced", model=model, reason="not in litellm's cost map")
            return 0.0
        return prices.cost(response.usage)


def message_dict(message: Message) -> dict[str, object]:
    """A message as litellm takes it (the OpenAI shape, which it translates per provider)."""
    found: dict[str, object] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        found["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        found["tool_call_id"] = message.tool_call_id
    return found


def tool_calls_of(message: object) -> tuple[ToolCall, ...]:
    """The tool calls an assistant message asks for; arguments that are no JSON object are
    passed as {} (the tool then answers what it misses, which the model reads)."""
    found = []
    for position, call in enumerate(getattr(message, "tool_calls", None) or ()):
        function = call.function
        try:
            arguments = json.loads(function.arguments or "{}")
        except (TypeError, ValueError):
            arguments = {}
        if not isinstance(arguments, dict):
            arguments = {}
        found.append(ToolCall(call.id or f"call_{position}", function.name or "", arguments))
    return tuple(found)


@dataclass(frozen=True)
class Prices:
    """A model's price per token, from litellm's price map."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    def cost(self, usage: litellm.Usage) -> float:
        details = getattr(usage, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", None) or 0
        written = getattr(usage, "cache_creation_input_tokens", None) or 0
        fresh = usage.prompt_tokens - cached - written
        return (
            fresh * self.input
            + cached * self.cache_read
            + written * self.cache_write
            + usage.completion_tokens * self.output
        )


@functools.cache
def price_of(model: str) -> Prices | None:
    """What litellm's price map says `model` costs per token; None when it is not there.

    Flat prices only: tiered prices (above 200k tokens of context) and batch or priority
    rates are not applied.
    """
    info = litellm.model_cost.get(model) or litellm.model_cost.get(model.partition("/")[2])
    if not info or info.get("input_cost_per_token") is None:
        return None
    per_input = info["input_cost_per_token"]
    return Prices(
        input=per_input,
        output=info.get("output_cost_per_token") or 0.0,
        cache_read=info.get("cache_read_input_token_cost", per_input),
        cache_write=info.get("cache_creation_input_token_cost", per_input),
    )


def _retry_after_or(
    fallback: Callable[[RetryCallState], float],
) -> Callable[[RetryCallState], float]:
    """Wait what the provider's Retry-After asks, else the exponential backoff."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        response = getattr(exc, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        try:
            return min(float(header), 60.0) if header else fallback(state)
        except ValueError:
            return fallback(state)

    return wait


def _provider(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else "unknown"


# Nothing listens on the discard port of loopback: a warm-up request is refused at once.
_NOWHERE = "http://127.0.0.1:9"


def warm_up(chain: Sequence[str]) -> None:
    """Load what litellm loads on a provider's first call, sending nothing anywhere.

    A process's first call of a provider spends about 150 ms in imports and client set-up
    before its request goes out. Paid here at worker start (a request to a closed port on
    loopback, refused at once), a step's request follows its start in the log by
    milliseconds, and `is_wanted`, asked just before, sees a cancel that came in between.
    """
    started = time.perf_counter()
    for model in chain:
        # A provider's own complaint (no such model, bad base) still warmed its path.
        with quiet_call(), contextlib.suppress(*MODEL_ERRORS, ValueError):
            litellm.completion(
                model=model,
                messages=[{"role": "user", "content": "warm up"}],
                api_base=_NOWHERE,
                api_key="warm-up",
                timeout=1,
                num_retries=0,
                max_retries=0,
            )
    took_ms = round((time.perf_counter() - started) * 1000)
    log.info("models.warmed_up", models=len(chain), ms=took_ms)


def configure(settings: Settings) -> None:
    """Set litellm's process-wide state the way the gateway needs it; once per process, before
    the first gateway is made (again is harmless).

    Two pieces of litellm's per-call work Mesh has no use for, about half of its CPU per call:
    - pricing each response (and, for a model missing from the price map, searching all of
      it): the gateway prices calls itself from the same map (`price_of`);
    - building the success-logging payload on litellm's background thread, for callbacks,
      budgets and spend logs Mesh does not use. A call made inside `quiet_call()` skips it.
    Both are litellm internals (litellm is pinned); tests/unit/adapters/test_litellm_env.py
    fails if either goes away. Its debug banners would go to stdout, around our JSON logs.
    """
    litellm.suppress_debug_info = True
    litellm.response_cost_calculator = lambda **_: None
    register_offline_model(settings.offline_latency_ms)


def register_offline_model(latency_ms: int) -> None:
    """Make `mesh-offline/...` models answer through litellm's custom provider path."""
    litellm.custom_provider_map = [
        entry for entry in litellm.custom_provider_map if entry["provider"] != PROVIDER
    ] + [{"provider": PROVIDER, "custom_handler": OfflineModel(latency_ms)}]
    # Free, and priced as such: its cost reads as $0 rather than unknown.
    litellm.register_model({
        OFFLINE_MODEL: {
            "litellm_provider": PROVIDER,
            "mode": "chat",
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
            "cache_creation_input_token_cost": 0.0,
            "cache_read_input_token_cost": 0.0,
        }
    })
