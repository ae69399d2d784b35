"""Low temperature: the zero-temperature field and the concentration onto Π#ρ₀ (docs/mathematics.md,
arXiv 2605.10931), from the PDE with general V and from n = 4000 tokens.

1. Uniform density, any B, V: X^β = sgn(β) A_d(|β||Bᵀx|) X^∞ exactly, A_d = I_{d/2}/I_{d/2-1}, on the
   grid of S² (quadrature path at lmax 40 and Funk–Hecke path) and S¹.
2. Zero temperature (beta = "inf", SA), Q = K = I, V = diag(1, ½, ½), ρ₀ ≡ 1: the PDE run against
   the exact solution, the angular central Gaussian ρ_t(y) = 1/(det A |A⁻¹y|³), A = e^{tV}.
3. Finite β = 25, 50, 100, 200, 400, same Q, K, V, ρ₀ ≡ 1 (the Funk–Hecke path with ∂_βĥ_l),
   lmax 255, until the resolution guard stops the run. M = VBᵀ = V has the top eigenspace
   E = span(e₁), so Π(x) = sgn(x₁) e₁ and Π#ρ₀ = ½(δ_{e₁} + δ_{-e₁}).
4. Tokens: n = 4000 (500 quasi-uniform points in the open positive octant and their images under
   the 8 sign changes), the same models, to t = 10.

Why V = diag(1, ½, ½) and not diag(1, ½, -½): the zero-temperature flow contracts the e_k direction
relative to e₁ at rate λ₁ - λ_k; with λ₃ = -½ the width along e₃ falls like e^{-3t/2}, below the
resolution of any affordable grid (lmax 255 resolves widths ≈ 0.03) long before t ≈ log β. With
λ₂ = λ₃ = ½ both widths fall like e^{-t/2}, and the PDE stays resolved to t ≈ ¾ log β at β = 400.

What is compared, and how (the limits Π#ρ₀ and, for large t, ρ_∞(t) are not resolved by any grid):
- D_Π(μ) = W₂(μ, Π#ρ₀) = (∫ arccos(|x₁|)² dμ)^{1/2} exactly (geodesic W₂ on S²) for every measure
  here: all are invariant under x → -x, so each hemisphere x₁ ≷ 0 has mass ½ and sending it to its
  pole is an optimal plan (the nearest-point map of a two-point target is optimal when it already
  balances the masses). Evaluated by the grid quadrature for PDE densities, exactly for tokens,
  and for ρ_∞(t) from the one-dimensional integral of the push-forward (x₁ of σ is uniform on
  [-1, 1]; quadrature to 1e-10).
- W₂(ρ_β(t), ρ_∞(t)) between grid densities is not computed exactly. Reported instead: the sliced
  distance SW₂² = average over directions ω of the exact 1-D W₂² of the projections ⟨ω, x⟩
  (chordal, so SW₂ ≤ W₂; 60 directions of a Fibonacci set in the positive octant, which suffices
  because both measures are invariant under the 8 sign changes), against the exact ACG density on
  the same grid. For tokens, the exact discrete W₂ (geodesic) between the two n-token measures: both
  are invariant under the sign changes, for which the positive octant is a fundamental chamber in
  which d(x, y) ≤ d(x, gy); so W₂ equals the optimal assignment between the folded clouds
  (scipy.optimize.linear_sum_assignment, 500 × 500). Tokens also give SW₂, i.e. the ratio W₂/SW₂.
- Times of order log β: t = c log β, c = ¼, ½, ¾, 1 (where resolved). Exponents p are least-squares
  fits of log distance against log β; for comparison, √(log β/β) has the effective exponent
  -½ + 1/(2 log β) on the same range.
- Late phase (tokens, t ∈ [7, 10]): exponential rates of D_Π against the spectrum of V. For β = ∞,
  D_Π² is dominated by the mass near the separatrix x₁ = 0 (a band of width e^{-(λ₁-λ₂)t} of initial
  points is still far from ±e₁), so D_Π(ρ_∞) ∝ e^{-(λ₁-λ₂)t/2}: rate ¼ here.

Usage: python validation/low_temperature.py [--out DIR] [--quick]
Writes DIR/low_temperature.md (tables), .json and .png (figures); default DIR is
validation/results/low_temperature/. Slow: 35 min to an hour on 2 shared cores, most of it the
token runs to t = 10 and the sliced distances of the lmax-255 snapshots (--quick: lmax 127,
β = 25 and 100, n = 800, about a minute).
"""
import math
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.integrate import quad  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402
from scipy.special import ive  # noqa: E402

import common  # noqa: E402  (validation/ is the script's directory)
from spherepde.dynamics import FunkHeckeVelocity, QuadratureVelocity  # noqa: E402
from spherepde.manifolds import Circle, Sphere  # noqa: E402
from spherepde.model import AttentionModel  # noqa: E402
from spherepde.tokens import simulate as simulate_tokens  # noqa: E402

LAMBDA = np.array([1.0, 0.5, 0.5])  # V = diag(LAMBDA), Q = K = I
BETAS = (25.0, 50.0, 100.0, 200.0, 400.0)
TOKEN_BETAS = (25.0, 100.0, 400.0)
FRACTIONS = (0.25, 0.5, 0.75, 1.0)  # t = c log β
OCTANT_POINTS = 500  # tokens per octant: n = 8 × 500
TOKEN_T_END = 10.0
LATE = (7.0, 10.0)
DIRECTIONS = 60


# --------------------------------------------------------------------------- measures and distances


def fibonacci_sphere(n: int) -> np.ndarray:
    """n quasi-uniform points on S² (the Fibonacci lattice)."""
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (1 + math.sqrt(5)) * k
    r = np.sqrt(1 - z * z)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def octant(points: np.ndarray) -> np.ndarray:
    """The points strictly inside the positive octant."""
    return points[np.all(points > 1e-9, axis=1)]


SIGNS = np.array([[a, b, c] for a in (1, -1) for b in (1, -1) for c in (1, -1)], dtype=float)


def symmetric_tokens(m: int) -> np.ndarray:
    """≈ 8m quasi-uniform tokens invariant under the 8 sign changes (and so under x → -x)."""
    inner = octant(fibonacci_sphere(8 * m))
    return np.concatenate([inner * s for s in SIGNS])


def distance_to_projection(x: np.ndarray, weights: np.ndarray) -> float:
    """W₂(μ, ½δ_{e₁} + ½δ_{-e₁}) = (∫ arccos(|x₁|)² dμ)^{1/2} for μ = Σ w_j δ_{x_j}, invariant under x → -x."""
    return math.sqrt(np.sum(weights * np.arccos(np.clip(np.abs(x[:, 0]), 0, 1)) ** 2) / np.sum(weights))


def zero_temperature_distance(t: float) -> float:
    """D_Π(ρ_∞(t)) for V = diag(1, ½, ½), ρ₀ ≡ 1: x₁ = u is uniform on [-1, 1] under σ and the flow maps it
    to e^{t}u / (e^{2t}u² + e^{t}(1 - u²))^{1/2}; the integrand is (π/2)² up to u ≈ e^{-t/2}, then decays."""
    a, b = math.exp(LAMBDA[0] * t), math.exp(LAMBDA[1] * t)

    def integrand(u):
        return math.acos(min(1.0, a * u / math.sqrt(a * a * u * u + b * b * (1 - u * u)))) ** 2

    layer = b / a
    value = sum(quad(integrand, lo, hi, epsabs=1e-13, epsrel=1e-11, limit=200)[0]
                for lo, hi in ((0, layer), (layer, min(1.0, 30 * layer)), (min(1.0, 30 * layer), 1.0)) if hi > lo)
    return math.sqrt(value)


def zero_temperature_density(y: np.ndarray, t: float) -> np.ndarray:
    """ρ_∞(t)(y) = 1/(det A |A⁻¹y|³), A = e^{tV}: the angular central Gaussian (push-forward of σ)."""
    return np.exp(-t * LAMBDA.sum()) / np.linalg.norm(y * np.exp(-t * LAMBDA), axis=-1) ** 3


def w2_line(a, wa, b, wb) -> float:
    """Exact W₂² between the weighted point sets a, b on the line (quantile functions)."""
    ia, ib = np.argsort(a), np.argsort(b)
    a, b = a[ia], b[ib]
    ca, cb = np.cumsum(wa[ia]), np.cumsum(wb[ib])
    ca, cb = ca / ca[-1], cb / cb[-1]
    s = np.union1d(ca, cb)
    ds = np.diff(s, prepend=0.0)
    mid = s - ds / 2
    qa = a[np.minimum(np.searchsorted(ca, mid), len(a) - 1)]
    qb = b[np.minimum(np.searchsorted(cb, mid), len(b) - 1)]
    return float(np.sum(ds * (qa - qb) ** 2))


def sliced_w2(x, wx, y, wy) -> float:
    """SW₂ over directions in the positive octant (measures invariant under the sign changes)."""
    directions = octant(fibonacci_sphere(8 * DIRECTIONS))
    return math.sqrt(np.mean([w2_line(x @ w, wx, y @ w, wy) for w in directions]))


def token_w2(x, y) -> float:
    """Exact geodesic W₂ between two n-token measures invariant under the sign changes: the optimal
    assignment between the clouds folded into the positive octant."""
    fx, fy = np.abs(x), np.abs(y)
    cost = np.arccos(np.clip(fx @ fy.T, -1, 1)) ** 2
    rows, cols = linear_sum_assignment(cost)
    return math.sqrt(cost[rows, cols].mean())


def fit_exponent(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def fit_rate(t, y) -> float:
    """Least-squares decay rate r of y ∝ e^{-rt}."""
    return float(-np.polyfit(t, np.log(y), 1)[0])


# --------------------------------------------------------------------------- 1. uniform identity


def uniform_identity() -> list[dict]:
    """max |X - sgn(β) A_d(|β||Bᵀx|) X^∞| / max|X^∞| for ρ ≡ 1 on S² (lmax 40) and S¹ (K = 64)."""
    rows = []
    rng = np.random.default_rng(0)
    for M in (Sphere(40), Circle(64)):
        d = M.d
        x = M.points()
        uniform = M.from_real_coefficients(np.eye(M.real_size)[0])
        for kind in ("B = 0.8 I (Funk–Hecke)", "general B (quadrature)"):
            for beta in (-3.0, 1.0, 10.0, 24.0):
                q1, _ = np.linalg.qr(rng.standard_normal((d, d)))
                q2, _ = np.linalg.qr(rng.standard_normal((d, d)))
                B = 0.8 * np.eye(d) if kind.startswith("B =") else q1 @ np.diag(rng.uniform(0.8, 1.25, d)) @ q2
                V = rng.standard_normal((d, d))
                model = AttentionModel("SA", beta, d, K=B, V=V)
                field = (FunkHeckeVelocity if kind.startswith("B =") else QuadratureVelocity)(M, model)
                X = np.stack(field(uniform)[1], axis=-1)  # tangent components
                u = x @ B
                kappa = abs(beta) * np.linalg.norm(u, axis=-1)
                w = np.sign(beta) * (ive(d / 2, kappa) / ive(d / 2 - 1, kappa))[..., None] * (u / np.linalg.norm(u, axis=-1, keepdims=True)) @ V.T
                w -= np.sum(w * x, axis=-1, keepdims=True) * x  # P_x
                frame = _frame(M)
                expected = np.einsum("a...i,...i->...a", frame, w)
                rows.append({"manifold": M.kind, "kind": kind, "beta": beta,
                             "error": float(np.abs(X - expected).max() / np.abs(expected).max())})
    return rows


def _frame(M):
    """Unit tangent vectors written from angles: (e_θ, e_φ) on S², e_θ on S¹."""
    if M.d == 2:
        return np.stack([-np.sin(M.theta), np.cos(M.theta)], axis=-1)[None]
    t, p = np.meshgrid(M.theta, M.phi, indexing="ij")
    return np.stack([np.stack([np.cos(t) * np.cos(p), np.cos(t) * np.sin(p), -np.sin(t)], axis=-1),
                     np.stack([-np.sin(p), np.cos(p), np.zeros_like(p)], axis=-1)])


# --------------------------------------------------------------------------- 2, 3. PDE runs


def run_pde(beta, lmax: int, t_end: float, save_every: float):
    """A PDE run from ρ₀ ≡ 1 (in memory) until t_end or until the resolution guard stops it: yields (t, ρ on the grid, status)."""
    run = common.run({
        "model": {"name": "SA", "beta": beta, "V": np.diag(LAMBDA).tolist()},
        "domain": {"lmax": lmax},
        "initial": {"kind": "perturbed_uniform", "amplitude": 0.0},
        "time": {"t_end": t_end, "save_every": save_every},
        "numerics": {"on_lost_resolution": "stop"},
    })
    status = "finished" if run["status"] == "finished" else run["message"].split(":")[0]
    for t, rho in zip(run["t"], run["fields"]["density"]):
        yield float(t), rho, status


def zero_temperature_run(lmax: int) -> list[dict]:
    """β = ∞ PDE against the exact angular central Gaussian: max relative error per snapshot."""
    S = Sphere(lmax)
    y = S.points()
    rows = []
    for t, rho, status in run_pde("inf", lmax, 8.0, 0.5):
        exact = zero_temperature_density(y, t)
        rows.append({"t": t, "error": float(np.abs(rho - exact).max() / exact.max()), "max": float(exact.max()),
                     "D_pde": distance_to_projection(y.reshape(-1, 3), (S.weights * rho).ravel()),
                     "D_exact": zero_temperature_distance(t), "status": status})
    return rows


def finite_beta_run(beta: float, lmax: int) -> dict:
    """Snapshots at t = k log β / 8 of the PDE at β: D_Π, and SW₂ against the exact ρ_∞(t)."""
    S = Sphere(lmax)
    y = S.points().reshape(-1, 3)
    w = S.weights.ravel()
    step = math.log(beta) / 8
    out = {"t": [], "D": [], "D_inf": [], "SW": [], "status": None}
    for t, rho, status in run_pde(beta, lmax, 1.5 * math.log(beta), step):
        mass = w * np.maximum(rho.ravel(), 0.0)
        exact = w * zero_temperature_density(y, t)
        out["t"].append(t)
        out["D"].append(distance_to_projection(y, mass))
        out["D_inf"].append(zero_temperature_distance(t))
        out["SW"].append(sliced_w2(y, mass, y, exact))
        out["status"] = status
    return {k: np.array(v) if k != "status" else v for k, v in out.items()}


# --------------------------------------------------------------------------- 4. tokens


def token_runs(betas, m: int) -> dict:
    """n ≈ 8m sign-symmetric tokens: snapshots at t = k log β/8 up to TOKEN_T_END (and every 0.25 for β = ∞)."""
    x0 = symmetric_tokens(m)
    V = np.diag(LAMBDA)
    results = {}
    for beta in betas:
        step = math.log(beta) / 8
        times = step * np.arange(math.ceil(TOKEN_T_END / step))
        times = np.append(times[times < TOKEN_T_END - 1e-9], TOKEN_T_END)
        t, x = simulate_tokens(x0, beta, "SA", V=V, save_times=times, rtol=1e-6)
        zero = [x0 * np.exp(s * LAMBDA) for s in t]
        zero = [z / np.linalg.norm(z, axis=1, keepdims=True) for z in zero]
        ones = np.ones(len(x0))
        results[beta] = {
            "t": np.asarray(t),
            "D": np.array([distance_to_projection(xi, ones) for xi in x]),
            "D_inf": np.array([distance_to_projection(z, ones) for z in zero]),
            "W": np.array([token_w2(xi, z) for xi, z in zip(x, zero)]),
            "SW": np.array([sliced_w2(xi, ones, z, ones) for xi, z in zip(x, zero)]),
            "n": len(x0),
            "separatrix": float(np.mean(np.abs(x[-1][:, 0]) < 0.1)),
        }
    return results


# --------------------------------------------------------------------------- report


def at(series: dict, key: str, t: float) -> float:
    """series[key] at the snapshot t (a multiple of log β/8), NaN if the run did not reach it."""
    hit = np.nonzero(np.isclose(series["t"], t, atol=1e-9))[0]
    return float(series[key][hit[0]]) if hit.size else math.nan


def report(identity, cold, pde, tokens, lmax, wall) -> str:
    lines = ["# Low temperature: zero-temperature field and concentration onto Π#ρ₀", "",
             f"Generated by `validation/low_temperature.py` ({wall / 60:.1f} min on 2 shared cores). SA, Q = K = I, "
             f"V = diag({', '.join(f'{v:g}' for v in LAMBDA)}) (parts 2–4); see the script's docstring for the definitions.", ""]
    lines += ["## 1. Uniform density: X^β = sgn(β) A_d(|β||Bᵀx|) X^∞", "",
              "| manifold | B | β | max error / max\\|X^∞\\| |", "|---|---|---|---|"]
    lines += [f"| {r['manifold']} | {r['kind']} | {r['beta']:g} | {r['error']:.1e} |" for r in identity]
    lines += ["", f"## 2. Zero temperature (beta = \"inf\"), PDE at lmax {lmax} against the exact angular central Gaussian", "",
              "| t | max\\|ρ - ρ_exact\\| / max ρ_exact | max ρ_exact | D_Π(PDE) | D_Π(exact) |", "|---|---|---|---|---|"]
    lines += [f"| {r['t']:g} | {r['error']:.1e} | {r['max']:.3g} | {r['D_pde']:.5f} | {r['D_exact']:.5f} |" for r in cold]
    lines += ["", f"Last row: {cold[-1]['status']}.", ""]
    betas = np.array(sorted(pde))
    lines += [f"## 3. Finite β, PDE at lmax {lmax} (Funk–Hecke path with V ≠ I)", "",
              "SW₂ = sliced W₂ between the PDE density ρ_β(t) and the exact ρ_∞(t); D_Π = W₂(·, Π#ρ₀) exactly. "
              "— where the run had stopped (resolution guard).", "",
              "| β | log β | resolved to t | " + " | ".join(f"SW₂ at {c:g} log β" for c in FRACTIONS) + " | "
              + " | ".join(f"D_Π(ρ_β) / D_Π(ρ_∞) at {c:g} log β" for c in FRACTIONS) + " |",
              "|---" * (3 + 2 * len(FRACTIONS)) + "|"]
    for b in betas:
        s, lb = pde[b], math.log(b)
        sw = " | ".join(f"{at(s, 'SW', c * lb):.2e}" if not math.isnan(at(s, "SW", c * lb)) else "—" for c in FRACTIONS)
        dd = " | ".join(f"{at(s, 'D', c * lb):.4f} / {at(s, 'D_inf', c * lb):.4f}" if not math.isnan(at(s, "D", c * lb)) else "—"
                        for c in FRACTIONS)
        lines.append(f"| {b:g} | {lb:.2f} | {s['t'][-1]:.2f} | {sw} | {dd} |")
    reference = fit_exponent(betas, np.sqrt(np.log(betas) / betas))
    lines += ["", f"Fitted exponents p of SW₂(ρ_β, ρ_∞) ∝ β^p at t = c log β (β = {', '.join(f'{b:g}' for b in betas)}); "
              f"√(log β/β) itself has p = {reference:.3f} on this range:", "",
              "| c | p (SW₂) | p (D_Π(ρ_β) - D_Π(ρ_∞)) | β used |", "|---|---|---|---|"]
    for c in FRACTIONS:
        sw = np.array([at(pde[b], "SW", c * math.log(b)) for b in betas])
        gap = np.array([abs(at(pde[b], "D", c * math.log(b)) - at(pde[b], "D_inf", c * math.log(b))) for b in betas])
        ok = np.isfinite(sw)
        if ok.sum() >= 3:
            lines.append(f"| {c:g} | {fit_exponent(betas[ok], sw[ok]):.3f} | {fit_exponent(betas[ok], gap[ok]):.3f} | "
                         f"{', '.join(f'{b:g}' for b in betas[ok])} |")
    lines += ["", f"## 4. Tokens (n = {next(iter(tokens.values()))['n']}, sign-symmetric quasi-uniform), to t = {TOKEN_T_END:g}", "",
              "W₂ = exact discrete W₂(μ_β(t), μ_∞(t)) (same initial tokens, μ_∞ by the exact zero-temperature map); "
              "PDE columns from part 3.", "",
              "| β | t | W₂ tokens | SW₂ tokens | W₂/SW₂ | SW₂ PDE | D_Π tokens | D_Π PDE | D_Π tokens, β = ∞ |",
              "|---|---|---|---|---|---|---|---|---|"]
    for b, s in tokens.items():
        for c in (0.5, 1.0):
            t = c * math.log(b)
            w, sw = at(s, "W", t), at(s, "SW", t)
            pde_sw = at(pde[b], "SW", t) if b in pde else math.nan
            pde_d = at(pde[b], "D", t) if b in pde else math.nan
            lines.append(f"| {b:g} | {t:.2f} | {w:.3e} | {sw:.3e} | {w / sw:.2f} | {pde_sw:.3e} | {at(s, 'D', t):.4f} | "
                         f"{pde_d:.4f} | {at(s, 'D_inf', t):.4f} |")
    lines += ["", f"Late phase, t ∈ [{LATE[0]:g}, {LATE[1]:g}]: decay rates r of D_Π ∝ e^(-rt). Spectrum of V: λ₁ = {LAMBDA[0]:g}, "
              f"λ₂ = λ₃ = {LAMBDA[1]:g}; zero temperature predicts (λ₁ - λ₂)/2 = {(LAMBDA[0] - LAMBDA[1]) / 2:g}.", "",
              "| β | r tokens (finite β) | r tokens at β = ∞ | r exact ρ_∞ | D_Π tokens at t = 10 | tokens with \\|x₁\\| < 0.1 at t = 10 |",
              "|---|---|---|---|---|---|"]
    late_t = np.linspace(*LATE, 13)
    exact_rate = fit_rate(late_t, [zero_temperature_distance(t) for t in late_t])
    for b, s in tokens.items():
        late = (s["t"] >= LATE[0] - 1e-9) & (s["t"] <= LATE[1] + 1e-9)
        lines.append(f"| {b:g} | {fit_rate(s['t'][late], s['D'][late]):.3f} | {fit_rate(s['t'][late], s['D_inf'][late]):.3f} | "
                     f"{exact_rate:.3f} | {s['D'][-1]:.4f} | {s['separatrix']:.3f} |")
    return "\n".join(lines) + "\n"


def figure(pde, tokens):
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.6))
    t_fine = np.linspace(0, TOKEN_T_END, 81)
    ax[0].semilogy(t_fine, [zero_temperature_distance(t) for t in t_fine], "k-", lw=2, label="ρ_∞ exact")
    for i, (b, s) in enumerate(sorted(pde.items())):
        ax[0].semilogy(s["t"], s["D"], "-", color=f"C{i}", label=f"PDE β={b:g}")
        ax[1].semilogy(s["t"][1:] / math.log(b), s["SW"][1:], "-", color=f"C{i}", label=f"PDE β={b:g}")  # SW₂ = 0 at t = 0
        if b in tokens:
            ax[0].semilogy(tokens[b]["t"], tokens[b]["D"], "--", color=f"C{i}", label=f"tokens β={b:g}")
            ax[1].semilogy(tokens[b]["t"][1:] / math.log(b), tokens[b]["SW"][1:], "--", color=f"C{i}")
    ax[0].set(xlabel="t", ylabel="W₂(ρ_β(t), Π#ρ₀)", title="distance to the projection")
    ax[1].set(xlabel="t / log β", ylabel="SW₂(ρ_β(t), ρ_∞(t))", title="finite β vs zero temperature (dashed: tokens)")
    betas = np.array(sorted(pde))
    for c, marker in zip(FRACTIONS, "osd^"):
        sw = np.array([at(pde[b], "SW", c * math.log(b)) for b in betas])
        ax[2].loglog(betas, sw, marker + "-", label=f"t = {c:g} log β")
    ref = np.sqrt(np.log(betas) / betas)
    ax[2].loglog(betas, ref * np.nanmax([at(pde[betas[0]], "SW", 0.5 * math.log(betas[0]))]) / ref[0], "k:", label="∝ √(log β/β)")
    ax[2].set(xlabel="β", ylabel="SW₂(ρ_β, ρ_∞)", title="PDE at t = c log β")
    ax[2].set_xticks(betas, [f"{b:g}" for b in betas], minor=False)
    ax[2].minorticks_off()
    for a in ax:
        a.legend(fontsize=7)
    fig.tight_layout()
    return fig


def main():
    args = common.arguments(__doc__, "low_temperature", quick="lmax 127, β = 25 and 100, n = 800 (a smoke test)")
    start = time.perf_counter()
    lmax, betas, token_betas, m = (127, (25.0, 100.0), (25.0, 100.0), 100) if args.quick else (255, BETAS, TOKEN_BETAS, OCTANT_POINTS)
    identity = uniform_identity()
    cold = zero_temperature_run(lmax)
    pde = {b: finite_beta_run(b, lmax) for b in betas}
    tokens = token_runs(token_betas, m)
    summary = {"uniform_identity_max_error": max(r["error"] for r in identity),
               "zero_temperature_max_error": max(r["error"] for r in cold),
               "resolved_until": {f"{b:g}": float(pde[b]["t"][-1]) for b in betas}}
    common.write(args.out, "low_temperature", report(identity, cold, pde, tokens, lmax, time.perf_counter() - start),
                 summary, figure(pde, tokens))


if __name__ == "__main__":
    main()
