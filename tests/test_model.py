"""The attention model: validation, its derived quantities, and when linear theory applies."""
import math

import numpy as np
import pytest

from spherepde.errors import InputError
from spherepde.model import USA_MAX_CONCENTRATION, AttentionModel, LinearTheory, scalar_multiple


def test_model_validation():
    with pytest.raises(InputError, match="'XA'"):
        AttentionModel("XA", 1.0)
    with pytest.raises(InputError, match="finite"):
        AttentionModel("SA", float("nan"))
    with pytest.raises(InputError, match="700"):
        AttentionModel("USA", 800.0).check_mean_field()
    AttentionModel("USA", 800.0, clock="rescaled").check_mean_field()  # e^{β(<x,y> - 1)}: no overflow
    with pytest.raises(InputError, match="clock"):
        AttentionModel("SA", 1.0, clock="wall")
    assert AttentionModel("sa", 1.0).name == "SA"


def test_scalar_multiple_to_round_off():
    assert scalar_multiple(2.5 * np.eye(3)) == 2.5
    assert scalar_multiple(np.diag([1.0, 1.0, 1.0 + 1e-15])) == pytest.approx(1.0)
    assert scalar_multiple(np.diag([1.0, 1.0, 1.0 + 1e-9])) is None
    assert scalar_multiple(np.zeros((2, 2))) == 0.0


def rotation(angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


@pytest.mark.parametrize("Q,K,V,beta,expected", [
    (None, None, None, 9.0, LinearTheory(9.0, 1.0)),
    (2 * np.eye(3), None, -0.5 * np.eye(3), 3.0, LinearTheory(6.0, -0.5)),  # B = 2I, V = -I/2
    (0.5 * rotation(0.3), rotation(0.3), None, 4.0, LinearTheory(2.0, 1.0)),  # QᵀK = I/2 though Q, K are not scalar
    (rotation(0.3), None, None, 0.0, LinearTheory(0.0, 1.0)),  # β = 0: the kernel is constant for any B
    (rotation(0.3), None, None, 2.0, None),  # B = rotation: not zonal
    (None, None, np.diag([1.0, 2.0, 3.0]), 2.0, None),  # uniform not stationary: P_x V x ≠ 0
    (None, None, None, math.inf, None),  # zero temperature
])
def test_linear_theory_applies_exactly_for_scalar_kernel_and_values(Q, K, V, beta, expected):
    model = AttentionModel("SA", beta, 3, Q, K, V)
    theory = model.linear_theory()
    if expected is None:
        assert theory is None and model.linear_theory_gap()
    else:
        assert theory.beta == pytest.approx(expected.beta) and theory.speed == pytest.approx(expected.speed)
        assert model.linear_theory_gap() == ""


def test_rescaled_clock_divides_usa_rates_by_the_kernel_scale():
    """τ = e^{|β|} t: the USA rates in the rescaled clock are e^{-|β|} times those in depth; SA's are unchanged."""
    assert AttentionModel("USA", 5.0, clock="rescaled").linear_theory().speed == pytest.approx(math.exp(-5.0))
    assert AttentionModel("SA", 5.0, clock="rescaled").linear_theory().speed == 1.0
    assert AttentionModel("USA", 5.0, clock="rescaled").clock_shift == 5.0
    assert AttentionModel("USA", USA_MAX_CONCENTRATION + 1, clock="rescaled").linear_theory() is not None
