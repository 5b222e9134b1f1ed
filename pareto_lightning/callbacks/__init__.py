"""Lightning callbacks: the Reptile meta-learning loop, the evaluation sweep, the prediction writer, and the
checkpoint a failed run leaves."""

from pareto_lightning.callbacks.crash import CrashCheckpoint
from pareto_lightning.callbacks.evaluation import ParetoEvaluation
from pareto_lightning.callbacks.meta_loop import MetaLoop
from pareto_lightning.callbacks.prediction_writer import JSONLPredictionWriter

__all__ = ["CrashCheckpoint", "JSONLPredictionWriter", "MetaLoop", "ParetoEvaluation"]
