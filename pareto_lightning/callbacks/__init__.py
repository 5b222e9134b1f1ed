"""Lightning callbacks: the Reptile meta-learning loop, the evaluation sweep, and the prediction writer."""

from pareto_lightning.callbacks.evaluation import ParetoEvaluation
from pareto_lightning.callbacks.meta_loop import MetaLoop
from pareto_lightning.callbacks.prediction_writer import JSONLPredictionWriter

__all__ = ["JSONLPredictionWriter", "MetaLoop", "ParetoEvaluation"]
