"""rca: AI-assisted root-cause analysis for infrastructure incidents, self-hosted and offline.

Importing any part of rca makes the process offline-safe before any library that could reach
the network is loaded: litellm uses its bundled price list instead of fetching one, tiktoken
reads the encodings litellm ships instead of downloading them, and Hugging Face libraries never
try the hub (model weights come from installed packages).
"""

import os
from importlib.util import find_spec
from pathlib import Path


def offline() -> None:
    """Set the variables that keep litellm, tiktoken and Hugging Face off the network.

    Runs when rca is imported; call it again before loading a model in case something has
    changed the environment since."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        litellm = find_spec("litellm")
        if litellm is not None and litellm.origin is not None:
            tokenizers = Path(litellm.origin).parent / "litellm_core_utils" / "tokenizers"
            os.environ["TIKTOKEN_CACHE_DIR"] = str(tokenizers)


offline()
