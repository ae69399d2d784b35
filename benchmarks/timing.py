"""The timer the benchmarks share."""
import timeit

import numpy as np


def median_time(fn, repeat: int) -> float:
    """Median over ``repeat`` batches of the time per call of ``fn`` (each batch about 0.05 s)."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, number // 4)
    return float(np.median(timer.repeat(repeat=repeat, number=number))) / number


def best_time(fn, repeat: int) -> float:
    """Least time per call of ``fn`` over ``repeat`` batches: on a shared machine the least disturbed batch."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, number // 4)
    return min(timer.repeat(repeat=repeat, number=number)) / number
