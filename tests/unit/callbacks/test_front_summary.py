import math

import pytest
import torch

from pareto_lightning.callbacks.front_summary import summarize_front
from pareto_lightning.tasks import LexiconTask


def test_summary_hand_worked():
    w = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], dtype=torch.float64)
    pts = torch.tensor([[0.8, 0.1], [0.4, 0.4], [0.0, 0.9]], dtype=torch.float64)
    seen = torch.tensor([True, False, True])
    pu = torch.tensor([0.2, 0.5, 0.1], dtype=torch.float64)
    s = summarize_front(w, seen, pts, pu, ref_point=0.0).scalars
    assert s["pu"] == pytest.approx(0.8 / 3)
    assert s["pu_seen"] == pytest.approx(0.15) and s["pu_unseen"] == pytest.approx(0.5)
    # Union of boxes from the origin: 0.8*0.1 + 0.4*0.4 + 0*0.9, overlaps removed: staircase
    # sorted by r1: (0.8,0.1) (0.4,0.4) (0,0.9): 0.8*0.1 + 0.4*(0.4-0.1) = 0.08 + 0.12 = 0.2 (the last adds nothing)
    assert s["hypervolume"] == pytest.approx(0.2)
    assert s["spearman"] == pytest.approx(1.0)
    gaps = [math.dist((0.8, 0.1), (0.4, 0.4)), math.dist((0.4, 0.4), (0.0, 0.9))]
    assert s["max_gap"] == pytest.approx(max(gaps))
    assert "pu_regret" not in s


def test_summary_against_the_exact_front_of_the_lexicon_task():
    task = LexiconTask()
    w = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], dtype=torch.float64)
    oracle_pts = task.oracle_points(w)
    oracle_pu = task.oracle_shortfall(w)
    s = summarize_front(w, torch.ones(3, dtype=torch.bool), oracle_pts, oracle_pu, -0.1, task=task).scalars
    assert s["pu_regret"] == pytest.approx(0.0, abs=1e-12)  # the oracle has no regret
    assert s["hv_ratio"] == pytest.approx(s["hv_ceiling"])
    assert 0 < s["hv_ceiling"] < 1  # three weights cannot cover the whole front
    worse = summarize_front(
        w, torch.ones(3, dtype=torch.bool), oracle_pts * 0.5, oracle_pu + 0.1, -0.1, task=task
    )
    assert worse.scalars["pu_regret"] == pytest.approx(0.1) and worse.scalars["hv_ratio"] < s["hv_ratio"]


def test_pareto_evaluation_rejects_bad_arguments():
    from pareto_lightning import ParetoEvaluation

    with pytest.raises(ValueError, match=r"`trainer.callbacks\[i\].init_args.mu` must be a finite float > 0"):
        ParetoEvaluation(mu=0.0)
    with pytest.raises(ValueError, match=r"`trainer.callbacks\[i\].init_args.front_from` must be"):
        ParetoEvaluation(front_from="best")
    with pytest.raises(ValueError, match=r"`trainer.callbacks\[i\].init_args.yardstick` must be"):
        ParetoEvaluation(yardstick="moving")
