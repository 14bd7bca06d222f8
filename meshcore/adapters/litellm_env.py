"""litellm, imported the way Mesh needs it. Every module that uses litellm imports it from here.

litellm fetches its model cost map from the internet at import unless told otherwise; the
packaged map is enough, and no Mesh process may reach out at start. Only this has to happen
before the import; the rest of litellm's set-up is `litellm_models.configure`, which the
composition root calls once.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm._internal_context import internal_sub_call

# A call made inside `quiet_call()` skips building litellm's success-logging payload (see
# litellm_models.configure).
quiet_call = internal_sub_call

__all__ = ["litellm", "quiet_call"]
