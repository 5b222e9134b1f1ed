"""Preference vectors on the probability simplex (paper sections 2.1, A.3, A.6).

A preference ``w`` has ``K`` non-negative entries that sum to one. Training draws ``w`` from a Dirichlet
distribution, either restricted to a finite grid (the paper's 11 weights) or on the continuous simplex;
evaluation sweeps the 28 weights of the paper's Table 1 and splits them into seen and unseen ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

SIMPLEX_TOLERANCE = 1e-6

# The evaluation weights of the paper's Table 1, first objective listed, in the table's row order
# (the table lists 0.52 before 0.55; the order is kept as printed).
_TABLE1_FIRST = (
    1.00, 0.99, 0.98, 0.95, 0.90, 0.88, 0.85, 0.80, 0.78, 0.70, 0.65, 0.60, 0.58, 0.52,
    0.55, 0.50, 0.45, 0.40, 0.30, 0.20, 0.15, 0.12, 0.11, 0.10, 0.05, 0.02, 0.01, 0.00,
)  # fmt: skip
PAPER_EVAL_WEIGHTS: Tensor = torch.tensor(
    [[a, round(1.0 - a, 2)] for a in _TABLE1_FIRST], dtype=torch.float64
)
"""The 28 two-objective evaluation weights of the paper's Table 1, ``[28, 2]``, float64, in its row order."""


def validate_preference(w: Any, num_objectives: int, key: str = "weights") -> Tensor:
    """Check that ``w`` is one preference vector (or a batch ``[..., K]``) on the simplex.

    This is the single place where a weight vector is checked: ``K`` entries, each ``>= 0``, summing to one
    within ``1e-6``.

    Args:
        w: a sequence or tensor of shape ``[K]`` or ``[..., K]``.
        num_objectives: the expected ``K``.
        key: the config key or argument name to quote in the error.

    Returns:
        ``w`` as a floating tensor (float64 when given as a Python sequence).

    Raises:
        ValueError: with the offending value and what is allowed.

    Example:
        >>> validate_preference([0.7, 0.3], 2)
        tensor([0.7000, 0.3000], dtype=torch.float64)
        >>> validate_preference([0.7, 0.4], 2)
        Traceback (most recent call last):
        ...
        ValueError: `weights` must lie on the simplex: ...got [0.7, 0.4].
    """
    t = w if isinstance(w, Tensor) else torch.as_tensor(w, dtype=torch.float64)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    allowed = f"{num_objectives} entries, each >= 0, summing to 1 (within {SIMPLEX_TOLERANCE:g})"
    if t.dim() == 0 or t.shape[-1] != num_objectives:
        raise ValueError(f"`{key}` must have {allowed}; got shape {tuple(t.shape)} and value {t.tolist()}.")
    if not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"`{key}` must lie on the simplex: {allowed}; got {t.tolist()}.")
    if ((t.sum(-1, dtype=torch.float64) - 1.0).abs() > SIMPLEX_TOLERANCE).any():
        raise ValueError(f"`{key}` must lie on the simplex: {allowed}; got {t.tolist()}.")
    return t


def simplex_grid(num_objectives: int, divisions: int, key: str = "divisions") -> Tensor:
    """Every weight vector with entries in ``{0, 1/divisions, ..., 1}`` that sums to one.

    For ``K = 2`` and ``divisions = 10`` this is the paper's training set
    ``(1, 0), (0.9, 0.1), ..., (0, 1)``; for ``K >= 3`` it is the Das-Dennis lattice with
    ``C(divisions + K - 1, K - 1)`` points. Rows are ordered with the first objective descending.
    ``key`` names ``divisions`` in the error (the config key that set it).

    Example:
        >>> simplex_grid(2, 4)
        tensor([[1.0000, 0.0000],
                [0.7500, 0.2500],
                [0.5000, 0.5000],
                [0.2500, 0.7500],
                [0.0000, 1.0000]], dtype=torch.float64)
        >>> simplex_grid(3, 2).shape
        torch.Size([6, 3])
        >>> simplex_grid(2, 0, key="data.init_args.eval_lattice_divisions")
        Traceback (most recent call last):
        ...
        ValueError: `data.init_args.eval_lattice_divisions` must be an integer >= 1; got 0.
    """
    if not isinstance(num_objectives, int) or num_objectives < 1:
        raise ValueError(f"`num_objectives` must be an integer >= 1; got {num_objectives!r}.")
    if not isinstance(divisions, int) or divisions < 1:
        raise ValueError(f"`{key}` must be an integer >= 1; got {divisions!r}.")
    rows = [
        c for c in itertools.product(range(divisions, -1, -1), repeat=num_objectives) if sum(c) == divisions
    ]
    return torch.tensor(rows, dtype=torch.float64) / divisions


def split_seen_unseen(eval_weights: Tensor, train_weights: Tensor, atol: float = SIMPLEX_TOLERANCE) -> Tensor:
    """Boolean mask ``[M]`` of the evaluation weights that appear in the training support.

    Example:
        >>> split_seen_unseen(PAPER_EVAL_WEIGHTS, simplex_grid(2, 10)).sum().item()
        11
    """
    ev, tr = (
        torch.as_tensor(eval_weights, dtype=torch.float64),
        torch.as_tensor(train_weights, dtype=torch.float64),
    )
    if ev.shape[-1] != tr.shape[-1]:
        raise ValueError(
            f"`eval_weights` has {ev.shape[-1]} objectives but `train_weights` has {tr.shape[-1]}."
        )
    dist = (ev[:, None, :] - tr[None, :, :]).abs().amax(-1)  # [M, N]
    return (dist <= atol).any(-1)


def mirrored_pairs(draws: Tensor) -> Tensor:
    """Each preference followed by its mirror image, its entries in reverse order: ``[N, K] -> [2N, K]``.

    For ``K = 2`` the mirror of ``(a, 1 - a)`` is ``(1 - a, a)``. Under a symmetric ``Dirichlet(alpha)`` (every
    ``alpha_k`` equal) the mirror has the same distribution as the draw, and a simplex grid holds the mirror of
    each of its points, so every row still follows the sampler's distribution; only the pairs are dependent
    (antithetic draws). A pair's mean is ``(w + reversed(w)) / 2``, for ``K = 2`` the centre ``(0.5, 0.5)``.

    Example:
        >>> mirrored_pairs(torch.tensor([[0.9, 0.1], [0.3, 0.7]]))
        tensor([[0.9000, 0.1000],
                [0.1000, 0.9000],
                [0.3000, 0.7000],
                [0.7000, 0.3000]])
    """
    if draws.ndim != 2:
        raise ValueError(f"`draws` must be [N, K]; got shape {tuple(draws.shape)}.")
    return torch.stack([draws, draws.flip(-1)], dim=1).reshape(-1, draws.shape[-1])


def _grid_divisions(support: Tensor) -> int | None:
    """The smallest ``d <= 1000`` with every coordinate a multiple of ``1/d``, or None (irregular support)."""
    for d in range(1, 1001):
        scaled = support * d
        if (scaled - scaled.round()).abs().max() <= 1e-6:
            return d
    return None


class DirichletPreferenceSampler:
    """Draws preferences from ``Dirichlet(alpha)``, on a finite support or the continuous simplex.

    With ``support`` (an ``[M, K]`` set of simplex points such as :func:`simplex_grid`), point ``m`` is drawn with
    probability proportional to the Dirichlet density at that point. The density is infinite at the corners for
    ``alpha < 1`` and zero there for ``alpha > 1``, so coordinates are clipped below at
    ``epsilon = 1 / (2 * divisions)`` (half a grid step; for an irregular support, half the smallest non-zero
    coordinate) before the density is evaluated. Hence ``alpha = 1`` is uniform over the grid, ``alpha < 1``
    favours corners and ``alpha > 1`` the middle, as in the paper's section A.3. With ``support=None`` it samples the
    continuous simplex exactly.

    Draws use a private ``torch.Generator``; :meth:`state_dict` holds its state so a resumed run draws the same
    sequence.

    Args:
        num_objectives: ``K``.
        alpha: concentration, a float or a length-``K`` sequence, all ``> 0``.
        support: optional ``[M, K]`` finite support.
        seed: seed of the private generator.
        key: the config key of ``alpha``, quoted in its error.

    Example:
        >>> sampler = DirichletPreferenceSampler(2, alpha=1.0, support=simplex_grid(2, 10), seed=0)
        >>> sampler.probabilities.round(decimals=4)[:3]
        tensor([0.0909, 0.0909, 0.0909], dtype=torch.float64)
        >>> sampler.sample(3).shape
        torch.Size([3, 2])
        >>> DirichletPreferenceSampler(2, alpha=[1.0, -1.0], key="data.init_args.alpha")
        Traceback (most recent call last):
        ...
        ValueError: `data.init_args.alpha` must be a positive float or a sequence of 2 positive floats; got [1.0, -1.0].
    """

    def __init__(
        self,
        num_objectives: int,
        alpha: float | Sequence[float] = 1.0,
        support: Tensor | None = None,
        seed: int = 0,
        key: str = "alpha",
    ) -> None:
        if not isinstance(num_objectives, int) or num_objectives < 2:
            raise ValueError(f"`num_objectives` must be an integer >= 2; got {num_objectives!r}.")
        alpha_t = torch.as_tensor(alpha, dtype=torch.float64).flatten()
        if alpha_t.numel() == 1:
            alpha_t = alpha_t.expand(num_objectives).clone()
        if alpha_t.numel() != num_objectives or not torch.isfinite(alpha_t).all() or (alpha_t <= 0).any():
            raise ValueError(
                f"`{key}` must be a positive float or a sequence of {num_objectives} positive floats; got {alpha!r}."
            )
        self.num_objectives = num_objectives
        self.alpha = alpha_t
        self.generator = torch.Generator().manual_seed(int(seed))
        self.support: Tensor | None = None
        self._probabilities: Tensor | None = None
        if support is not None:
            sup = validate_preference(
                torch.as_tensor(support, dtype=torch.float64), num_objectives, key="support"
            )
            if sup.dim() != 2 or sup.shape[0] < 1:
                raise ValueError(
                    f"`support` must be a non-empty [M, {num_objectives}] tensor; got {tuple(sup.shape)}."
                )
            self.support = sup
            self._probabilities = self._support_probabilities(sup)

    @property
    def epsilon(self) -> float | None:
        """The lower clip applied to support coordinates before the density is evaluated."""
        if self.support is None:
            return None
        d = _grid_divisions(self.support)
        if d is not None:
            return 1.0 / (2 * d)
        positive = self.support[self.support > 0]
        return float(positive.min()) / 2

    def _support_probabilities(self, support: Tensor) -> Tensor:
        eps = self.epsilon
        clipped = support.clamp_min(eps)
        clipped = clipped / clipped.sum(-1, keepdim=True)  # [M, K], stays on the simplex
        log_density = ((self.alpha - 1.0) * clipped.log()).sum(-1)  # [M]; the normalizer cancels
        return torch.softmax(log_density, dim=0)

    @property
    def probabilities(self) -> Tensor:
        """Probability of each support point, ``[M]`` (raises for the continuous simplex)."""
        if self._probabilities is None:
            raise ValueError(
                "`probabilities` is defined only for a finite `support`; this sampler is continuous."
            )
        return self._probabilities

    def sample(self, n: int) -> Tensor:
        """Draw ``n`` preferences, ``[n, K]`` float64."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"`n` must be an integer >= 1; got {n!r}.")
        if self.support is not None:
            idx = torch.multinomial(self.probabilities, n, replacement=True, generator=self.generator)  # [n]
            return self.support[idx].clone()
        return sample_dirichlet(self.alpha, n, self.generator)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "alpha": self.alpha.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not torch.equal(torch.as_tensor(state["alpha"], dtype=torch.float64), self.alpha):
            raise ValueError(
                f"checkpoint `alpha` {state['alpha'].tolist()} differs from {self.alpha.tolist()}."
            )
        self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        where = "simplex" if self.support is None else f"support of {self.support.shape[0]} points"
        return f"DirichletPreferenceSampler(K={self.num_objectives}, alpha={self.alpha.tolist()}, {where})"


def sample_dirichlet(alpha: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """``n`` draws from ``Dirichlet(alpha)``, ``[n, K]`` float64, through ``generator`` (reproducible, resumable).

    Normalized ``Gamma(alpha_k, 1)`` draws. For the flat ``alpha = 1`` (uniform on the simplex) these are
    ``Exp(1) = -log U`` draws, exact and cheaper; otherwise Marsaglia and Tsang's method, since torch's own Gamma
    sampler takes no generator.

    Example:
        >>> w = sample_dirichlet(torch.ones(3), 4, torch.Generator().manual_seed(0))
        >>> w.shape, bool(torch.allclose(w.sum(-1), torch.ones(4, dtype=torch.float64))), bool((w >= 0).all())
        (torch.Size([4, 3]), True, True)
    """
    alpha = torch.as_tensor(alpha, dtype=torch.float64)  # [K]
    if (alpha == 1).all():
        g = -torch.rand(n, alpha.numel(), generator=generator, dtype=torch.float64).clamp_min(1e-12).log()
    else:
        g = _gamma(alpha.expand(n, -1), generator)  # [n, K]
    return g / g.sum(-1, keepdim=True)


def _gamma(shape: Tensor, generator: torch.Generator) -> Tensor:
    """Gamma(shape, 1) draws with an explicit generator (Marsaglia and Tsang, 2000; boost for shape < 1)."""
    boost = shape < 1
    a = torch.where(boost, shape + 1.0, shape)
    d = a - 1.0 / 3.0
    c = 1.0 / (9.0 * d).sqrt()
    out = torch.empty_like(a)
    todo = torch.ones_like(a, dtype=torch.bool)
    while todo.any():
        x = torch.randn(a.shape, generator=generator, dtype=a.dtype)
        u = torch.rand(a.shape, generator=generator, dtype=a.dtype)
        v = (1.0 + c * x) ** 3
        ok = (v > 0) & (u.clamp_min(1e-300).log() < 0.5 * x * x + d - d * v + d * v.clamp_min(1e-300).log())
        take = todo & ok
        out[take] = (d * v)[take]
        todo &= ~take
    if boost.any():
        u = torch.rand(a.shape, generator=generator, dtype=a.dtype)
        out = torch.where(boost, out * u.pow(1.0 / shape.clamp_min(1e-12)), out)
    return out


__all__ = [
    "PAPER_EVAL_WEIGHTS",
    "DirichletPreferenceSampler",
    "mirrored_pairs",
    "sample_dirichlet",
    "simplex_grid",
    "split_seen_unseen",
    "validate_preference",
]
