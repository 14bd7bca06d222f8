"""The model client over litellm: the chain of models, the offline model, usage accounting.

Only processes that call models import this module: importing litellm costs seconds of CPU.
"""

from __future__ import annotations

import os

# litellm fetches its cost map from the internet at import unless told otherwise; the
# packaged map is enough and a worker must never reach out at start. It must precede the import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import time
from collections.abc import Sequence

import litellm
import openai
import structlog
from litellm.llms.custom_llm import CustomLLMError

from meshcore.adapters.offline_model import PROVIDER, OfflineModel
from meshcore.domain.errors import ModelUnavailable
from meshcore.domain.task import Usage
from meshcore.ports import Completion, Message
from meshcore.settings import OFFLINE_MODEL, Settings

log = structlog.get_logger(__name__)

# Errors a provider call can end in; anything else is a bug and propagates.
MODEL_ERRORS = (openai.OpenAIError, CustomLLMError)


class LiteLLMModelClient:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._keys = {
            "anthropic": settings.anthropic_api_key,
            "openai": settings.openai_api_key,
            "gemini": settings.gemini_api_key,
        }
        self._skipped: set[str] = set()
        has_credentials = any(key is not None for key in self._keys.values())
        allow = settings.allow_offline_model
        self._allow_offline = (not has_credentials) if allow is None else allow
        register_offline_model(settings.offline_latency_ms)

    def complete(
        self,
        messages: Sequence[Message],
        *,
        chain: Sequence[str] | None,
        temperature: float,
        max_tokens: int,
        timeout_s: float,
    ) -> Completion:
        """The first answer along the chain; ModelUnavailable if no model gives one."""
        failures = []
        for model in self._models(chain or self._settings.model_chain):
            started = time.perf_counter()
            try:
                response = litellm.completion(
                    model=model,
                    messages=[{"role": m.role, "content": m.content} for m in messages],
                    temperature=temperature,
                    max_tokens=max_tokens,
                    timeout=timeout_s,
                    num_retries=0,  # one retry layer only, the gateway's (design.md)
                    api_key=self._api_key(model),
                )
            except MODEL_ERRORS as exc:
                log.warning("model.failed", model=model, error=type(exc).__name__)
                failures.append(f"{model}: {type(exc).__name__}")
                continue
            latency_ms = (time.perf_counter() - started) * 1000
            usage = response.usage
            return Completion(
                text=response.choices[0].message.content or "",
                model=model,
                usage=Usage(
                    input_tokens=usage.prompt_tokens,
                    output_tokens=usage.completion_tokens,
                    cost_usd=float(response._hidden_params.get("response_cost") or 0.0),
                ),
                latency_ms=latency_ms,
            )
        raise ModelUnavailable("no model could answer: " + ("; ".join(failures) or "none usable"))

    def _models(self, chain: Sequence[str]) -> list[str]:
        usable = []
        for model in chain:
            provider = model.split("/", 1)[0]
            if provider in self._keys and self._keys[provider] is None:
                if model not in self._skipped:
                    self._skipped.add(model)
                    log.info("model.skipped", model=model, reason="no credentials")
                continue
            usable.append(model)
        if self._allow_offline and OFFLINE_MODEL not in usable:
            usable.append(OFFLINE_MODEL)
        return usable

    def _api_key(self, model: str) -> str | None:
        key = self._keys.get(model.split("/", 1)[0])
        return key.get_secret_value() if key is not None else None


def register_offline_model(latency_ms: int) -> None:
    """Make `mesh-offline/...` models answer through litellm's custom provider path."""
    litellm.custom_provider_map = [
        entry for entry in litellm.custom_provider_map if entry["provider"] != PROVIDER
    ] + [{"provider": PROVIDER, "custom_handler": OfflineModel(latency_ms)}]
