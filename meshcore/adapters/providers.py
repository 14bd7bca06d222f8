"""Which models of a chain can be called: credentials and base URLs, without importing litellm."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from meshcore.settings import OFFLINE_MODEL, Settings

# Providers that run locally and take no key (and the offline model).
KEYLESS = frozenset({"ollama", "ollama_chat", "hosted_vllm", "lm_studio", "mesh-offline"})
KEY_SETTINGS = {
    "anthropic": "anthropic_api_key",
    "openai": "openai_api_key",
    "gemini": "gemini_api_key",
}


def provider_of(model: str) -> str:
    return model.split("/", 1)[0]


class Providers:
    """Keys, base URLs, and whether the offline model may answer, as the settings say."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._keys: dict[str, SecretStr | None] = {
            p: getattr(settings, name) for p, name in KEY_SETTINGS.items()
        }
        configured = any(k is not None for k in self._keys.values()) or bool(
            settings.provider_api_bases
        )
        allow = settings.allow_offline_model
        # On by default only when nothing real is configured: a production outage must never
        # be answered silently by the offline model.
        self.allows_offline = (not configured) if allow is None else allow

    def has_credentials(self, model: str) -> bool:
        provider = provider_of(model)
        if provider in KEYLESS or provider in self._settings.provider_api_bases:
            return True
        return self._keys.get(provider) is not None if provider in self._keys else True

    def api_key(self, model: str) -> str | None:
        provider = provider_of(model)
        key = self._keys.get(provider)
        if key is not None:
            return key.get_secret_value()
        # A local OpenAI-compatible server takes any key, but the SDK insists on one.
        return "not-needed" if provider in self._settings.provider_api_bases else None

    def api_base(self, model: str) -> str | None:
        return self._settings.provider_api_bases.get(provider_of(model))

    def chain(self, chain: Sequence[str] | None) -> list[str]:
        """The chain as configured, with the offline model last where it is allowed."""
        models = list(chain or self._settings.model_chain)
        if self.allows_offline and OFFLINE_MODEL not in models:
            models.append(OFFLINE_MODEL)
        return models
