"""Single linkage (spherepde.linkage): components and labels against the full graph of pairs."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import pdist, squareform

from spherepde.linkage import any_link, linked_components


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labellings put the same points together (labels i ↔ j one to one)."""
    pairs = np.unique(np.stack([a, b]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


@settings(max_examples=80)
@given(seed=st.integers(0, 2**31), d=st.sampled_from([2, 3, 5]), k=st.integers(1, 12), log_width=st.floats(-9, 0),
       log_chord=st.floats(-7, 0), n=st.sampled_from([1, 2, 50, 400, 1500]), duplicates=st.booleans())
def test_components_equal_those_of_the_pair_graph(seed, d, k, log_width, log_chord, n, duplicates):
    """k clusters of unit vectors of any width relative to the chord (10⁻⁹ … 1 against chords 10⁻⁷ … 1), on the
    circle (sorted angles), S² and S⁴ (cubes), with or without points on top of each other: the count equals
    that of the graph of all pairs closer than the chord, and the labels make the same partition, numbered
    by first appearance; `any_link` says whether any two points are linked."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d))
    x = centres[rng.integers(0, k, n)] + 10.0**log_width * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    if duplicates:
        x = np.vstack([x, x[: n // 5]])
    chord = 10.0**log_chord
    expected_count, expected = connected_components(squareform(pdist(x)) < chord, directed=False)
    count, labels = linked_components(x, chord)
    assert count == expected_count and same_partition(labels, expected)
    assert any_link(x, chord) == (count < len(x))
    assert np.array_equal(np.unique(labels, return_index=True)[1], np.sort(np.unique(labels, return_index=True)[1]))
