import warnings

import torch

from pareto_lightning.callbacks.plotting import pareto_figure
from pareto_lightning.preferences import PAPER_EVAL_WEIGHTS
from pareto_lightning.tasks import LexiconTask


def test_pareto_figure_draws_every_layer_without_warnings():
    weights = PAPER_EVAL_WEIGHTS.double()
    greedy = torch.stack([weights[:, 0], 1 - weights[:, 0]], -1)  # [28, 2]
    with warnings.catch_warnings():
        warnings.simplefilter(
            "error"
        )  # matplotlib warned at every evaluation when c and facecolors were both set
        fig = pareto_figure(
            weights, greedy, greedy * 0.9, LexiconTask().exact_front(), ("help", "harm"), "step 8"
        )
    ax = fig.axes[0]
    assert len(ax.collections) == 2 and len(ax.lines) == 1  # sampled, greedy; the exact front
    hollow = ax.collections[0]
    assert hollow.get_facecolors().size == 0 and len(hollow.get_edgecolors()) == 28
