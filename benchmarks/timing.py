"""The timer the benchmarks share, the transform pair they measure in, and the machine lines they print first and last."""
import os
import platform
import time
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


def transform_pair(sphere, c):
    """One SHTns scalar synthesis of the coefficients c and one analysis of the result on ``sphere``'s grid, into
    buffers allocated once: the unit in which the right-hand side's parts are counted."""
    f, spec = np.empty(sphere.grid_shape), np.empty(sphere.size, complex)
    return lambda: (sphere._sh.SH_to_spat(c, f), sphere._sh.spat_to_SH(f, spec))


def stretch_time(fn, calls: int) -> float:
    """Time per call of ``fn`` over one unbroken stretch of ``calls`` calls: what a whole run of as many calls is to be
    compared with (the least of short batches, :func:`best_time`, would be the least disturbed moment instead)."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) CPU ticks of the machine so far, from /proc/stat (None where there is none)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[7], sum(fields[:8])


def stolen_since(start: tuple[int, int] | None) -> str:
    """The share of CPU time a hypervisor took from this virtual machine since ``start`` (:func:`cpu_ticks`): where
    it is not small, timings (above all the threaded ones) are disturbed by other machines on the same host."""
    now = cpu_ticks()
    if start is None or now is None or now[1] == start[1]:
        return "CPU time stolen by the hypervisor: unknown"
    return f"CPU time stolen by the hypervisor: {(now[0] - start[0]) / (now[1] - start[1]):.1%}"


def machine_line(extra: str = "") -> tuple[int, int] | None:
    """Print the machine, its cores and load (and ``extra``); returns :func:`cpu_ticks` for :func:`end_line`."""
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}{extra}")
    return cpu_ticks()


def end_line(start: tuple[int, int] | None):
    """Print the load at the end and the share of CPU time stolen since ``start`` (:func:`machine_line`)."""
    print(f"load average at the end {os.getloadavg()[0]:.2f}; {stolen_since(start)}")
