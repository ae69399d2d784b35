"""Cost of the circle solver: one right-hand side against one FFT pair, and time to accuracy
against a first-order finite-volume scheme.

1. For grids of N = 256 … 65 536 points (K = (N-1)//3, so that N = 3K+1 rounded up to the FFT
   size), the median time of one rFFT + irFFT pair through the solver's own planned FFTW
   transforms, and of one right-hand side -∂_θ(ρX[ρ]) for SA and USA at β = 5 (two backward
   transforms in one batched plan, one more for SA's K∗ρ, one forward transform, and the
   products on the grid). The ratio RHS / pair is the figure of merit (target ≤ 6).
2. The Ott–Antonsen solution (β = 0, R0 = 0.5, ψ = 0.7, docs/mathematics.md) to T = 2: error
   |R(T) - R_exact(T)| and wall time of
   - the spectral solver (the package's Circle, ContinuityEquation and adaptive Dormand–Prince,
     no file output) over K = 4 … 64 and rtol = 1e-3 … 1e-11;
   - a first-order Lax–Friedrichs finite-volume scheme on M uniform cells (below; explicit Euler,
     CFL 0.9) over M = 64 … 32 768;
   and, for each target accuracy, the fastest run of each that reaches it. First order means
   error ∝ 1/M at cost ∝ M² (M steps of M cells), so targets beyond the largest M are
   extrapolated that way from the largest run and marked as such.

Usage: python benchmarks/bench_circle.py [--repeat N] [--max-cells M]   (about 1 min)
"""
import argparse
import math
import time

import numpy as np
from timing import end_line, machine_line, median_time

from spherepde.manifolds import Circle
from spherepde.dynamics import ContinuityEquation
from spherepde.profiles import wrapped_cauchy
from spherepde.integrate import DOPRI5, DeviationNorm, Stepper
from spherepde.model import AttentionModel

R0, PSI, T = 0.5, 0.7, 2.0
TARGETS = (1e-2, 1e-3, 1e-4, 1e-6, 1e-8, 1e-10)



def exact_radius(t: float) -> float:
    grow = R0**2 * math.exp(t)
    return math.sqrt(grow / (1 - R0**2 + grow))


# --------------------------------------------------------------------------- 1. RHS vs FFT pair


def rhs_table(repeat: int):
    print(f"{'N':>6} {'K':>6} {'FFT pair':>10} {'RHS SA':>10} {'RHS USA':>10} {'SA/pair':>8} {'USA/pair':>9}")
    for N in 2 ** np.arange(8, 17):
        K = int((N - 1) // 3)
        M = Circle(K)
        assert M.grid_shape == (N,)
        rng = np.random.default_rng(0)
        a = np.zeros(M.real_size)
        a[1:] = 1e-3 * rng.standard_normal(M.real_size - 1) / math.sqrt(M.real_size)
        a[0] = 1.0
        c = M.from_real_coefficients(a)
        fft = M._fft
        fft.grid[...] = M.synthesis(c)

        def pair():
            fft.forward()
            fft.backward()

        times = {"pair": median_time(pair, repeat)}
        for name in ("SA", "USA"):
            F = ContinuityEquation(M, AttentionModel(name, 5.0, d=2))
            times[name] = median_time(lambda: F(0.0, c), repeat)
        print(f"{N:>6} {K:>6} {times['pair'] * 1e6:>7.2f} µs {times['SA'] * 1e6:>7.1f} µs {times['USA'] * 1e6:>7.1f} µs "
              f"{times['SA'] / times['pair']:>8.2f} {times['USA'] / times['pair']:>9.2f}", flush=True)


# --------------------------------------------------------------------------- 2. time to accuracy


def spectral(K: int, rtol: float) -> tuple[float, float]:
    """(error of R(T), wall time) of the package's solver: analysis of ρ0, adaptive steps to T.
    The FFTW plans are made before the clock starts (once per size and process, see docs/circle.md)."""
    M = Circle(K)
    start = time.perf_counter()
    F = ContinuityEquation(M, AttentionModel("SA", 0.0, d=2))
    c = M.analysis(wrapped_cauchy(M.theta, R0, PSI))
    stepper = Stepper(DOPRI5, rtol=rtol, norm=DeviationNorm(rtol), max_step=F.max_step)
    t = 0.0
    while t < T:
        t, c = stepper.step(F, t, c, T)
    return abs(abs(c[1]) - exact_radius(T)), time.perf_counter() - start


def lax_friedrichs(cells: int) -> tuple[float, float]:
    """(error of R(T), wall time) of the first-order finite-volume scheme

        ρ_i ← ρ_i - (Δt/Δθ) (F_{i+1/2} - F_{i-1/2}),
        F_{i+1/2} = v_{i+1/2} (ρ_i + ρ_{i+1})/2 - (α/2)(ρ_{i+1} - ρ_i),   α = max|v|,  Δt = 0.9 Δθ/α,

    for ∂_t ρ + ∂_θ(ρ v) = 0 with v(θ) = Im(m e^{-iθ}) = R sin(ψ - θ), m = ∫ e^{iθ} ρ dσ (β = 0),
    on M cells of width Δθ = 2π/M; cell averages of ρ0 by 4-point Gauss–Legendre quadrature.
    For piecewise constant ρ, m = (1/M) Σ ρ_i e^{iθ_i} · sin(Δθ/2)/(Δθ/2) exactly."""
    start = time.perf_counter()
    h = 2 * np.pi / cells
    centres = h * (np.arange(cells) + 0.5)
    nodes, weights = np.polynomial.legendre.leggauss(4)
    rho = wrapped_cauchy(centres[:, None] + 0.5 * h * nodes, R0, PSI) @ weights / 2
    cos_face, sin_face = np.cos(centres + 0.5 * h), np.sin(centres + 0.5 * h)
    moment = np.stack([np.cos(centres), np.sin(centres)]) * (math.sin(h / 2) / (h / 2)) / cells  # ρ ↦ (Re m, Im m)
    t = 0.0
    while t < T:
        m_re, m_im = moment @ rho  # real products: numpy's float @ complex is slow for long vectors
        v = m_im * cos_face - m_re * sin_face  # Im(m e^{-iθ})
        alpha = np.max(np.abs(v))
        dt = min(0.9 * h / alpha, T - t)
        right = np.roll(rho, -1)
        flux = 0.5 * v * (rho + right) - 0.5 * alpha * (right - rho)
        rho = rho - (dt / h) * (flux - np.roll(flux, 1))
        t += dt
    return abs(math.hypot(*(moment @ rho)) - exact_radius(T)), time.perf_counter() - start


def fastest(results, target):
    """The quickest (label, error, time) among results with error ≤ target, or None."""
    ok = [r for r in results if r[1] <= target]
    return min(ok, key=lambda r: r[2]) if ok else None


def accuracy_table(max_cells: int):
    runs = [(f"K={K}, rtol={rtol:g}", *spectral(K, rtol)) for K in (4, 8, 16, 32, 64) for rtol in (1e-3, 1e-5, 1e-7, 1e-9, 1e-11)]
    cells = [int(m) for m in 2 ** np.arange(6, int(math.log2(max_cells)) + 1)]
    fv = [(f"M={m}", *lax_friedrichs(m)) for m in cells]
    print(f"\nOtt–Antonsen to T = {T}: error of R(T) per run")
    for label, err, wall in runs:
        print(f"  spectral {label:>20}: error {err:.2e}, {wall * 1e3:8.1f} ms")
    for label, err, wall in fv:
        print(f"  Lax–Friedrichs {label:>14}: error {err:.2e}, {wall * 1e3:8.1f} ms")
    # beyond the largest M: error ∝ M^-p (p observed from the last two), time ∝ M² (M steps of M cells)
    (_, e1, _), (_, e2, w2) = fv[-2], fv[-1]
    p, q = math.log2(e1 / e2), 2.0
    print(f"  (observed order of Lax–Friedrichs: {p:.2f})")
    print(f"\n{'target':>8} | {'spectral (fastest run)':>34} | {'Lax–Friedrichs FV (fastest run)':>42} | speed-up")
    for target in TARGETS:
        s, f = fastest(runs, target), fastest(fv, target)
        spec = f"{s[0]:>20} {s[2] * 1e3:8.1f} ms" if s else "not reached"
        if f:
            lf, lf_time = f"{f[0]:>12} {f[2]:9.3f} s", f[2]
        else:
            m = cells[-1] * (e2 / target) ** (1 / p)
            lf_time = w2 * (m / cells[-1]) ** q
            lf = f"M≈{m:.2g} (extrapolated) {lf_time:9.3g} s"
        ratio = f"{lf_time / s[2]:.3g}×" if s else "-"
        print(f"{target:>8.0e} | {spec:>34} | {lf:>42} | {ratio}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--max-cells", type=int, default=32768)
    args = parser.parse_args()
    ticks = machine_line(f", numpy {np.__version__}, one FFTW thread")
    rhs_table(args.repeat)
    accuracy_table(args.max_cells)
    end_line(ticks)


if __name__ == "__main__":
    main()
