"""litellm, imported the way Mesh needs it. Every module that uses litellm imports it from here.

litellm fetches its model cost map from the internet at import unless told otherwise; the
packaged map is enough, and no Mesh process may reach out at start. Its debug banners go to
stdout, around our JSON logs.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

litellm.suppress_debug_info = True

__all__ = ["litellm"]
