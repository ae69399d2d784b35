"""The acts of a run read from its diagnostics (spherepde.life): plateaus and merges on hand-made sequences,
the spread against its definition written out, the contraction rate of points that contract exactly."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spherepde import life
from spherepde.model import AttentionModel


def test_plateaus_are_counts_held_over_a_factor_two_and_merges_join_them():
    t = np.array([0, 1, 2, 3, 4, 5, 6, 8, 16, 32, 64, 128, 256, 300, 1000.0])
    clusters = np.array([0, 0, 3, 6, 5, 4, 4, 4, 4, 3, 3, 3, 2, 2, 1])
    found = life.plateaus(t, clusters)
    # 6 and 5 last one snapshot; 4 lasts from t = 5 to 32; 3 from 32 to 256; 2 from 256 until 1000 (> 2 · 256);
    # the last count 1 starts at the last snapshot, so it has not lasted yet
    assert found == [life.Plateau(4, 5.0, 32.0), life.Plateau(3, 32.0, 256.0), life.Plateau(2, 256.0, 1000.0)]
    assert life.merges(found) == [life.Merge(32.0, 4, 3), life.Merge(256.0, 3, 2)]
    acts = life.read({"t": t, "diagnostics": {"clusters": clusters}})
    assert acts.onset == 2.0 and acts.switch is None and acts.merges == life.merges(found)


def test_a_count_that_lasts_to_the_end_is_an_open_plateau():
    found = life.plateaus(np.array([1.0, 1.5, 10.0]), np.array([2, 1, 1]))  # 2 lasts a factor 1.5
    assert found == [life.Plateau(1, 1.5, math.inf)]


def test_spread_is_the_weighted_squared_distance_to_each_groups_mean():
    """Two groups on S², each symmetric about its axis (so the normalized weighted mean is the axis):
    Σ w |x − m|² = Σ w (2 sin(a/2))² with a the angle to the axis. A massless group and zero weights count nothing."""
    a, b = 0.1, 0.3
    group1 = np.array([[math.sin(a), 0, math.cos(a)], [-math.sin(a), 0, math.cos(a)]])
    group2 = np.array([[math.cos(b), math.sin(b), 0], [math.cos(b), -math.sin(b), 0]])
    stray = np.array([[0.0, 0.0, -1.0]])
    x = np.vstack([group1, group2, stray])
    w = np.array([0.1, 0.1, 0.4, 0.4, 0.0])
    label = np.array([0, 0, 1, 1, 2])
    expected = 0.2 * (2 * math.sin(a / 2)) ** 2 + 0.8 * (2 * math.sin(b / 2)) ** 2
    assert life.spread(x, w, label) == pytest.approx(expected, rel=1e-14)


def test_labels_group_rows_at_the_same_position():
    x = np.array([[1.0, 0, 0], [0, 1, 0], [1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    label = life.labels(x)
    assert label[0] == label[2] and label[1] == label[3] and len(set(label)) == 3


@given(st.floats(0.5, 5.0), st.integers(0, 2**31))
@settings(max_examples=20)
def test_contraction_fits_the_rate_of_points_that_contract_exactly(rate, seed):
    """Points at angles θ_i e^{−rt/2} about one axis (symmetric, equal weights, so the mean stays on the axis), then
    one point: the spread is Σ w (2 sin(θ_i e^{−rt/2}/2))² = e^{−rt} Σ w θ_i² (1 + O(spread)); fitted in the
    window (spread ≤ 1e-4) the rate is r to 1e-4 relative."""
    theta = np.random.default_rng(seed).uniform(0.1, 1.0, 4)
    theta = np.concatenate([theta, -theta])
    t = np.linspace(0, 40 / rate, 60)
    frames = []
    for s in t:
        angle = theta * math.exp(-rate * s / 2)
        frames.append(np.stack([np.sin(angle), np.zeros_like(angle), np.cos(angle)], axis=1))
    frames.append(np.tile([0.0, 0.0, 1.0], (8, 1)))
    t = np.append(t, t[-1] + 1)
    w = np.full(8, 1 / 8)
    active = np.append(np.full(60, 8), 1)
    diag = {"lagrangian": np.ones(61, int), "points_active": active, "clusters": np.ones(61, int)}
    fitted = life.contraction(t, diag, lambda i: (frames[i], w), AttentionModel("SA", 1.0, 3))
    assert fitted is not None and fitted.snapshots >= 3
    assert fitted.rate == pytest.approx(rate, rel=1e-4)
    assert fitted.predicted == 2.0  # 2c, c = 1 for SA


def test_no_contraction_without_a_settled_snapshot():
    diag = {"lagrangian": np.ones(3, int), "points_active": np.array([5, 4, 3]), "clusters": np.ones(3, int)}
    assert life.contraction(np.arange(3.0), diag, lambda i: (None, None), AttentionModel("SA", 1.0, 3)) is None
