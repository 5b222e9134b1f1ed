import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Cached task artifacts (the lexicon task's supervised base) go to a fresh folder per test session, so tests never
# read what an earlier run or a user left in ~/.cache.
os.environ["PARETO_LIGHTNING_CACHE"] = tempfile.mkdtemp(prefix="pareto_lightning_cache_")
