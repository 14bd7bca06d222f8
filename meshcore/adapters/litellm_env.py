"""litellm, imported the way Mesh needs it. Every module that uses litellm imports it from here.

litellm fetches its model cost map from the internet at import unless told otherwise; the
packaged map is enough, and no Mesh process may reach out at start. Its debug banners go to
stdout, around our JSON logs.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm._internal_context import internal_sub_call

litellm.suppress_debug_info = True

# Two pieces of litellm's per-call work Mesh has no use for, about half of its CPU per call:
# - pricing each response (and, for a model missing from the price map, searching all of
#   it): the gateway prices calls itself from the same map (litellm_models.price_of);
# - building the success-logging payload on litellm's background thread, for callbacks,
#   budgets and spend logs Mesh does not use. A call made inside `quiet_call()` skips it.
# Both are litellm internals (litellm is pinned); tests/unit/adapters/test_litellm_env.py
# fails if either goes away.
litellm.response_cost_calculator = lambda **_: None
quiet_call = internal_sub_call

__all__ = ["litellm", "quiet_call"]
