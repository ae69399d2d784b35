"""Linear theory around the uniform state: rates, dominant degree, switch points (docs/mathematics.md, "Linear theory").

Independent references: the Funk–Hecke integral by quadrature, the power series of ĥ_l in
50-digit decimal arithmetic, the closed forms for d = 3, the reference values of docs/mathematics.md and the
large-β asymptotics.
"""
import json
import math
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.integrate import quad
from scipy.special import eval_gegenbauer, gammaln

from spherepde import linear
from spherepde.errors import InputError
from spherepde.harmonics import log_funk_hecke

SETTINGS = settings(max_examples=60)


def log_funk_hecke_decimal(l: int, beta: float, d: int) -> float:
    """log|ĥ_l(β)| from ĥ_l = (|β|/2)^l/(d/2)_l · Σ_k (β²/4)^k/(k! (l+d/2)_k), 50 digits.

    All terms are positive: no cancellation, so the sum is exact to the working precision.
    """
    with localcontext() as ctx:
        ctx.prec = 50
        b, a = Decimal(abs(beta)), Decimal(d) / 2
        prefactor = Decimal(1)
        for j in range(l):
            prefactor = prefactor * (b / 2) / (a + j)
        z, c = b * b / 4, a + l
        term = total = Decimal(1)
        k = 0
        while not (k > z / c and term < total * Decimal("1e-45")):
            k += 1
            term = term * z / (k * (c + k - 1))
            total += term
        return float((prefactor * total).ln())


def funk_hecke_quadrature(lmax: int, beta: float, d: int) -> np.ndarray:
    """e^{-|β|} ĥ_l(β) for l = 0..lmax by quadrature of the Funk–Hecke integral with t = cos θ:

        ĥ_l = c_d ∫_0^π e^{β cos θ} P_l(cos θ) sin^{d-2}θ dθ,   c_d = Γ(d/2)/(√π Γ((d-1)/2)),

    P_l the Gegenbauer polynomial with P_l(1) = 1 (Chebyshev cos lθ for d = 2). As |P_l| ≤ 1,
    the integrand is bounded by that of l = 0 (positive, computed first to 1e-12 relative), and
    the others are computed to an absolute 1e-13 ĥ_0: the most that cancellation allows.
    """
    nu0 = (d - 2) / 2
    c = math.exp(gammaln(d / 2) - gammaln((d - 1) / 2)) / math.sqrt(math.pi)

    def legendre(l: int, theta: float) -> float:
        if d == 2:
            return math.cos(l * theta)
        return eval_gegenbauer(l, nu0, math.cos(theta)) / eval_gegenbauer(l, nu0, 1.0)

    def integral(l: int, epsabs: float) -> float:
        value, _ = quad(
            lambda th: math.exp(beta * math.cos(th) - abs(beta)) * legendre(l, th) * math.sin(th) ** (d - 2),
            0, math.pi, epsabs=epsabs, epsrel=1e-12, limit=500,
        )
        return c * value

    h0 = integral(0, 0.0)
    return np.array([h0] + [integral(l, 1e-13 * h0) for l in range(1, lmax + 1)])


# --- rates against references -------------------------------------------------------------

@pytest.mark.parametrize("d", [2, 3, 4, 7, 64])
@pytest.mark.parametrize("beta", [0.05, -3.0, 9.0, 200.0])
@pytest.mark.parametrize("model", ["SA", "USA"])
def test_rates_match_quadrature(d, beta, model):
    # The quadrature is good to 1e-12 relative or 1e-13 ĥ_0 absolute (see its docstring),
    # which bounds the reference λ_l's error by 1e-12 |λ_l| + 1e-13 l(l+d-2) ĥ_0/|β|.
    lmax = 14
    h = funk_hecke_quadrature(lmax, beta, d)
    l = np.arange(lmax + 1)
    eigen = l * (l + d - 2)
    unit = 1 / h[0] if model == "SA" else 1.0
    expected = eigen * h / beta * unit
    rates, s = linear.scaled_growth_rates(beta, d, model, lmax)
    if model == "USA":
        rates = rates * math.exp(s - abs(beta))  # quadrature gives e^{-|β|} ĥ_l
    tolerance = 1e-10 * np.abs(expected) + 1e-12 * eigen * h[0] / abs(beta) * unit  # 10× margin
    np.testing.assert_array_less(np.abs(rates - expected), tolerance + 1e-300)


@SETTINGS
@given(
    d=st.integers(2, 1024),
    log_beta=st.floats(math.log(1e-6), math.log(1000.0)),
    negative=st.booleans(),
    model=st.sampled_from(["SA", "USA"]),
    fraction=st.floats(0, 1),
)
def test_rates_accurate_to_1e_10_over_the_whole_range(d, log_beta, negative, model, fraction):
    # The contract: 1e-10 relative for 0 < |β| ≤ 1000 and d ≤ 1024, i.e. 1e-10 in log|λ_l|.
    beta = -math.exp(log_beta) if negative else math.exp(log_beta)
    l = 1 + int(fraction * (4 * math.sqrt(abs(beta)) + 40))
    rates, s = linear.scaled_growth_rates(beta, d, model, l)
    expected = (
        math.log(l * (l + d - 2)) + log_funk_hecke_decimal(l, beta, d) - math.log(abs(beta))
        - (log_funk_hecke_decimal(0, beta, d) if model == "SA" else 0.0)
    )
    if expected - s < -700:  # the value itself underflows the double range
        assert abs(rates[l]) < 1e-300
        return
    assert abs(math.log(abs(rates[l])) + s - expected) <= 1e-10
    assert np.sign(rates[l]) == (1 if beta > 0 or l % 2 else -1)


@pytest.mark.parametrize("beta, d, l", [(1e4, 3, 3400), (1e4, 3, 5000), (3000.0, 2, 1900)])
def test_funk_hecke_finite_and_accurate_beyond_the_contract(beta, d, l):
    # β ≫ 1000 at degrees where the scaled Bessel function underflows: the Bessel-ratio
    # recurrence must still agree with the series (1e-12 relative: no cancellation anywhere).
    logh, _ = log_funk_hecke(l, beta, d)
    assert abs(logh[l] - log_funk_hecke_decimal(l, beta, d)) <= 1e-12 * abs(logh[l])


def test_theory_reference_values():
    # reference values (docs/mathematics.md), d = 3, β = 9, quoted to 6 decimals (USA to 4): tolerances half a unit.
    sa = linear.growth_rates(9.0, 3, "SA", 6)
    reference = [0.197531, 0.469136, 0.663923, 0.703145, 0.605091, 0.441226]
    np.testing.assert_allclose(sa[1:], reference, rtol=0, atol=5e-7)
    assert linear.growth_rates(9.0, 3, "USA", 6)[4] == pytest.approx(316.5356, abs=5e-5)
    assert linear.dominant_degree(9.0, 3) == 4


@pytest.mark.parametrize("beta", [0.3, 2.0, 9.0, -5.0, 40.0])
def test_closed_forms_on_s2(beta):
    # d = 3: ĥ_0 = sinh β/β, ĥ_1 = (β cosh β - sinh β)/β², so λ^USA/λ^SA = ĥ_0 and
    # λ_1^USA = 2ĥ_1/β; for |β| ≥ 0.3 these lose at most ~1e-14 to cancellation.
    sa = linear.growth_rates(beta, 3, "SA", 8)
    usa = linear.growth_rates(beta, 3, "USA", 8)
    h0 = math.sinh(beta) / beta
    h1 = (beta * math.cosh(beta) - math.sinh(beta)) / beta**2
    np.testing.assert_allclose(usa[1:], h0 * sa[1:], rtol=1e-13)
    assert usa[1] == pytest.approx(2 * h1 / beta, rel=1e-12)


# --- β = 0 and small β -------------------------------------------------------------------

@pytest.mark.parametrize("d", [2, 3, 5, 1024])
@pytest.mark.parametrize("model", ["SA", "USA"])
def test_beta_zero_limit(d, model):
    rates = linear.growth_rates(0.0, d, model, 6)
    np.testing.assert_array_equal(rates, [0, (d - 1) / d, 0, 0, 0, 0, 0])
    assert linear.dominant_degree(0.0, d, model) == 1
    assert linear.selectivity(0.0, d, model) == math.inf
    # ĥ_l ≈ β^l / (2^l (d/2)_l): λ_1 moves at O(β²), λ_2 ≈ 4β/(d+2) and higher degrees are
    # smaller still, so every rate is within |β| of its limit for |β| ≤ 1e-3, up to the
    # rounding of logarithms of size ≤ 700 (700 ε ≈ 1.6e-13 relative).
    for beta in (1e-3, -1e-6, 1e-300):
        assert np.max(np.abs(linear.growth_rates(beta, d, model, 6) - rates)) <= abs(beta) + 2e-13


# --- dominant degree and switch points -------------------------------------------------------

@SETTINGS
@given(beta=st.floats(2.0, 1000.0))
def test_dominant_degree_large_beta_asymptote_s2(beta):
    # on S², l* = ⌊√(2β)⌋ except just below the switch points, which lie within
    # 1/(l+1)² of (l+1)²/2 (test below): a distance ≥ 0.1 of √(2β) from an integer avoids them.
    root = math.sqrt(2 * beta)
    if abs(root - round(root)) < 0.1:
        return
    assert linear.dominant_degree(beta, 3) == math.floor(root)


@pytest.mark.parametrize("d", [2, 3])
def test_switch_points_against_asymptote(d):
    # β_{l→l+1} ≈ [(l + (d-1)/2)² - (d-1)(d-3)/4]/2 up to O(l⁻²) (large-β expansion of the
    # tie λ_l = λ_{l+1}); we allow 1/(l+1)² for every l ≥ 1.
    points = linear.switch_points(d, 1000.0)
    assert [(l, l_next) for _, l, l_next in points] == [(l, l + 1) for l in range(1, len(points) + 1)]
    assert len(points) == math.floor(math.sqrt(2000 + (d - 1) * (d - 3) / 4) - (d - 1) / 2)
    for beta, l, _ in points:
        asymptote = ((l + (d - 1) / 2) ** 2 - (d - 1) * (d - 3) / 4) / 2
        assert abs(beta - asymptote) <= 1 / (l + 1) ** 2


@pytest.mark.parametrize("d", [2, 3, 7, 64])
def test_switch_points_are_ties_by_quadrature(d):
    # At β_{l→l+1} the quadrature rates of l and l+1 agree; a root error δβ shows as a
    # relative mismatch ≈ δβ · ∂_β log(λ_{l+1}/λ_l) ≤ δβ, and quad adds ≤ 1e-11 here.
    for beta, l, l_next in linear.switch_points(d, 60.0) + linear.switch_points(d, -30.0):
        h = funk_hecke_quadrature(l_next, beta, d)
        lam = [m * (m + d - 2) * h[m] for m in (l, l_next)]
        assert lam[1] == pytest.approx(lam[0], rel=1e-10)


@SETTINGS
@given(d=st.sampled_from([2, 3, 4, 7, 64]), beta=st.floats(-300.0, 300.0).filter(lambda b: b != 0))
def test_dominant_degree_counts_switch_points(d, beta):
    # Two computations of l*: argmax of the rates, and 1 + (number of switches passed).
    passed = linear.switch_points(d, beta)
    top = linear.dominant_degree(beta, d)
    assert top == (1 + len(passed) if beta > 0 else 1 + 2 * len(passed))
    lo, hi = linear.dominance_interval(beta, d)
    assert lo < beta < hi
    assert linear.selectivity(beta, d) >= 1


@pytest.mark.parametrize("d", [2, 3, 64])
def test_selectivity_is_one_at_switch_points(d):
    for beta, _, _ in linear.switch_points(d, 50.0) + linear.switch_points(d, -50.0):
        assert linear.selectivity(beta, d) == pytest.approx(1.0, abs=1e-9)


def test_repulsive_only_odd_degrees_grow():
    rates = linear.growth_rates(-7.0, 4, "USA", 12)
    assert np.all(rates[1::2] > 0) and np.all(rates[2::2] < 0)
    assert linear.dominant_degree(-7.0, 4) % 2 == 1


# --- diffusion ----------------------------------------------------------------------------

@pytest.mark.parametrize("d", [2, 3, 7])
@pytest.mark.parametrize("beta", [0.5, 9.0, -4.0])
@pytest.mark.parametrize("model", ["SA", "USA"])
def test_stability_threshold(d, beta, model):
    # κ_c = β/ĥ_1 (USA), βĥ_0/ĥ_1 (SA) from quadrature; the uniform state is stable below it.
    h0, h1 = funk_hecke_quadrature(1, beta, d)
    expected = beta / h1 * (h0 if model == "SA" else math.exp(-abs(beta)))
    kappa_c = linear.stability_threshold(beta, d, model)
    assert kappa_c == pytest.approx(expected, rel=1e-10)
    below = linear.growth_rates(beta, d, model, 30, kappa=kappa_c * (1 - 1e-6))
    above = linear.growth_rates(beta, d, model, 30, kappa=kappa_c * (1 + 1e-6))
    assert np.all(below[1:] < 0) and above[1] > 0
    assert linear.dominant_degree(beta, d, model, kappa=kappa_c * (1 + 1e-6)) == 1


def test_kuramoto_threshold():
    # d = 2, β → 0: κ_c → 2 ; κ_c = (d-1)/λ_1 = 2(1 + O(β²)).
    assert linear.stability_threshold(1e-6, 2, "SA") == pytest.approx(2.0, rel=1e-10)
    assert linear.stability_threshold(0.0, 2, "USA") == 2.0


# --- the linear phase -------------------------------------------------------

def test_linear_phase_duration():
    # t = ln(1/ε₀)/λ_{l*} with the reference λ_4 = 0.703145 (6 digits → rel 1e-6); N(3,4) = 9.
    assert linear.linear_phase_duration(9.0, 3, "SA", amplitude=1e-3) == pytest.approx(
        math.log(1e3) / 0.703145, rel=1e-6
    )
    assert linear.linear_phase_duration(9.0, 3, "SA", n_tokens=9000) == pytest.approx(
        0.5 * math.log(1000) / 0.703145, rel=1e-6
    )
    assert linear.linear_phase_duration(9.0, 3, "SA", amplitude=2.0) == 0.0
    assert linear.linear_phase_duration(9.0, 3, "SA", amplitude=1e-3, kappa=1.0) == math.inf
    with pytest.raises(InputError):
        linear.linear_phase_duration(9.0, 3, "SA")


# --- report, table, figure -----------------------------------------------------------------

@pytest.mark.parametrize(
    "beta, d, model, kappa",
    [(9.0, 3, "SA", None), (9.0, 3, "usa", None), (0.0, 2, "SA", None), (-5.0, 2, "USA", None),
     (1000.0, 3, "USA", None), (1000.0, 1024, "SA", None), (9.0, 3, "SA", 100.0)],
)
def test_report(beta, d, model, kappa):
    rep = json.loads(json.dumps(linear.report(beta, d, model, kappa=kappa), allow_nan=False))
    L = rep["degrees"][-1]
    assert rep["degrees"] == list(range(L + 1)) and len(rep["growth_rates"]) == L + 1
    rates = np.array(rep["growth_rates"])
    top = rep["dominant_degree"]
    assert top == int(np.argmax(rates[1:])) + 1 and L >= top + 2
    assert abs(rates[L]) <= 1e-2 * rates[top] or kappa is not None
    assert rep["model"] == model.upper() and rep["dim"] == d
    log_rates, s = linear.scaled_growth_rates(beta, d, model, L, kappa)
    np.testing.assert_allclose(rates, log_rates, rtol=1e-15)
    assert rep["rate_exponent"] == s == (1000.0 if (model.upper(), beta) == ("USA", 1000.0) else 0.0)
    assert rep["selectivity"] is None or rep["selectivity"] >= 1
    text = linear.format_report(rep)
    assert f"l* = {top}" in text and len(text.splitlines()) >= L + 3


def test_report_usa_overflow_is_scaled():
    # USA at β = 1000: λ_l = r_l e^{1000}; compare with SA through λ^USA = ĥ_0 λ^SA in logs.
    rep = linear.report(1000.0, 3, "USA", lmax=50)
    sa = linear.growth_rates(1000.0, 3, "SA", 50)
    log_h0 = log_funk_hecke(0, 1000.0, 3)[0][0]
    np.testing.assert_allclose(np.log(rep["growth_rates"][1:]) + 1000.0, np.log(sa[1:]) + log_h0, rtol=1e-13)
    assert np.isinf(linear.growth_rates(1000.0, 3, "USA", 50)[1])


@pytest.mark.parametrize(
    "kwargs, named",
    [(dict(beta=9.0, d=1, model="SA"), "d = 1"), (dict(beta=math.nan, d=3, model="SA"), "nan"),
     (dict(beta=math.inf, d=3, model="SA"), "inf"), (dict(beta=9.0, d=3, model="XA"), "XA"),
     (dict(beta=9.0, d=3, model="SA", lmax=0), "lmax = 0"), (dict(beta=9.0, d=3.5, model="SA"), "3.5"),
     (dict(beta=9.0, d=3, model="SA", kappa=-1.0), "kappa = -1")],
)
def test_report_rejects_bad_input(kwargs, named):
    with pytest.raises(InputError, match=named) as info:
        linear.report(**kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("d, beta_max", [(3, 20.0), (2, -12.0)])
def test_phase_diagram_is_written(tmp_path, d, beta_max):
    out = linear.plot_phase_diagram(d, beta_max, tmp_path / "phase.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
