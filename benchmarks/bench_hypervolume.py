"""Overhead of ``Hypervolume`` (update + compute) over calling ``moocore.hypervolume`` directly.

Data: 10^4 points in 2-D and 10^3 points in 4-D, spread on and just below the unit sphere's positive
orthant (a densely populated front, so the exact computation has real work to do). Prints the median of
several repeats side by side and their ratio.

Run: ``python benchmarks/bench_hypervolume.py``
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import moocore
import torch

try:
    from pareto_lightning.metrics import Hypervolume
except ModuleNotFoundError:  # a source checkout without `pip install -e .`
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    from pareto_lightning.metrics import Hypervolume


def near_front(n: int, k: int, seed: int) -> torch.Tensor:
    """``n`` points, directions uniform on the positive orthant, radius in [0.9, 1]: ``[n, k]`` float32."""
    g = torch.Generator().manual_seed(seed)
    directions = torch.randn(n, k, generator=g).abs()
    directions = directions / directions.norm(dim=-1, keepdim=True)
    return directions * (1 - 0.1 * torch.rand(n, 1, generator=g))


def median_seconds(fn: Callable[[], float], repeats: int) -> tuple[float, float]:
    times, value = [], 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def bench(n: int, k: int, batches: int, repeats: int) -> None:
    points = near_front(n, k, seed=k)  # [n, k]
    ref = -0.1

    def with_metric() -> float:
        metric = Hypervolume(ref_point=ref)
        for chunk in points.chunk(batches):  # as an evaluation loop would feed it
            metric.update(chunk)
        return float(metric.compute())

    def direct() -> float:
        # The same float32 points, converted and negated as moocore's minimization convention needs.
        return moocore.hypervolume(-points.double().numpy(), ref=[-ref] * k)

    with_metric(), direct()  # warm up
    t_metric, hv_metric = median_seconds(with_metric, repeats)
    t_direct, hv_direct = median_seconds(direct, repeats)
    print(
        f"K={k} N={n:>6} ({batches} updates): Hypervolume {t_metric * 1e3:8.2f} ms | "
        f"moocore.hypervolume {t_direct * 1e3:8.2f} ms | ratio {t_metric / t_direct:5.2f}x | "
        f"HV {hv_metric:.6f} vs {hv_direct:.6f}"
    )


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, moocore {moocore.__version__}, 1 thread, median of repeats")
    bench(10_000, 2, batches=10, repeats=20)
    bench(1_000, 4, batches=10, repeats=10)


if __name__ == "__main__":
    main()
