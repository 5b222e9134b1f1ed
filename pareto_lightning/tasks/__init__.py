"""The built-in synthetic task: a tiny word-level LLM setup with an exactly known, non-convex Pareto front.

It runs through the same code path as a real run (a Hugging Face causal LM, text prompts, rewards computed on
decoded text) and learns in minutes on a CPU, so recipes, tests and benchmarks can check steering against the
exact answer (:class:`LexiconTask`).
"""

from pareto_lightning.tasks.front import LexiconTask, count_vectors, counts_to_rewards, shortfalls
from pareto_lightning.tasks.instruct import LexiconInstructLM, build_instruct_lm
from pareto_lightning.tasks.lexicon import LexiconLM, LexiconPrompts, LexiconReward
from pareto_lightning.tasks.vocabulary import (
    FILLER_WORDS,
    LEXICONS,
    OBJECTIVE_NAMES,
    VOCABULARY,
    LexiconTokenizer,
    build_backend_tokenizer,
)

__all__ = [
    "FILLER_WORDS",
    "LEXICONS",
    "OBJECTIVE_NAMES",
    "VOCABULARY",
    "LexiconInstructLM",
    "LexiconLM",
    "LexiconPrompts",
    "LexiconReward",
    "LexiconTask",
    "LexiconTokenizer",
    "build_backend_tokenizer",
    "build_instruct_lm",
    "count_vectors",
    "counts_to_rewards",
    "shortfalls",
]
