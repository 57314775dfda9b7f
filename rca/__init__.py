"""rca: AI-assisted root-cause analysis for infrastructure incidents, self-hosted and offline.

Importing any part of rca makes the process offline-safe before any library that could reach
the network is loaded: litellm uses its bundled price list instead of fetching one, and
Hugging Face libraries never try the hub (model weights come from installed packages).
"""

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
