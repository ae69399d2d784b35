"""Single linkage of points: the components of the graph that links points x_i, x_j ∈ R^d closer than a
chord, |x_i − x_j| < c — clusters of tokens (c = √(2δ) for ⟨x_i,x_j⟩ > 1 − δ) and the merging of weighted
points (c = 2 sin(distance/2) for a geodesic distance). Exact, in O(n log n) time and O(n) memory: never
the list of linked pairs, which grows like n² for points in tight clusters."""
from __future__ import annotations

import itertools

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

#: k-d tree options for counting and range queries: unbalanced, nodes not shrunk to their points. With scipy's
#: defaults a dual-tree count of 10⁶ tokens in six tight clusters took 400 s instead of 0.7 s (in a uniform
#: cloud 6.2 s instead of 4.5 s).
FLAT_TREE = dict(balanced_tree=False, compact_nodes=False)

#: Groups whose candidate links `_cell_components` looks up at a time (the k-d tree answers with Python lists:
#: about 36 bytes a neighbour, up to a hundred neighbours a group in a clustering state).
_GROUP_CHUNK = 4096


def root_of(parent, k: int) -> int:
    """The root of k in the union-find forest ``parent`` (a list or an integer array: parent[r] = r at a root),
    halving the path on the way."""
    while parent[k] != k:
        parent[k] = parent[parent[k]]
        k = parent[k]
    return k


def linked_components(x: np.ndarray, chord: float) -> tuple[int, np.ndarray]:
    """(count, labels): the components of the graph linking |x_i − x_j| < chord, and each point's component
    (0 … count−1, numbered in order of first appearance). Points on the unit circle (d = 2): by their sorted
    angles; any other d: :func:`_cell_components`."""
    if len(x) == 0:
        return 0, np.zeros(0, dtype=np.int64)
    labels = _circle_components(x, chord) if x.shape[1] == 2 else _cell_components(x, chord)
    _, first, labels = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # renumber the components by their first point
    return len(first), order[labels.ravel()]


def any_link(x: np.ndarray, chord: float) -> bool:
    """Whether some two points are closer than ``chord``: nearest neighbours within it, O(n log n) — cheaper
    than :func:`linked_components` (at 20 000 points on S² with no link 8 against 32 ms) where links are rare."""
    if len(x) < 2:
        return False
    distance, _ = cKDTree(x, **FLAT_TREE).query(x, k=2, distance_upper_bound=np.nextafter(chord, 0))
    return bool(np.isfinite(distance[:, 1]).any())


def _circle_components(x: np.ndarray, chord: float) -> np.ndarray:
    """Component labels of points of the unit circle: sorted by angle, consecutive points link when the chord
    between them is below ``chord`` (and the last with the first across 2π)."""
    order = np.argsort(np.arctan2(x[:, 1], x[:, 0]))
    sorted_x = x[order]
    gaps = np.linalg.norm(sorted_x - np.roll(sorted_x, -1, axis=0), axis=1)  # point k to k+1, the last to the first
    cut = gaps >= chord
    label = np.concatenate([[0], np.cumsum(cut[:-1])])
    if not cut[-1]:
        label[label == label[-1]] = 0  # across 2π: the last run joins the first
    labels = np.empty(len(x), dtype=np.int64)
    labels[order] = label
    return labels


def _cell_components(x: np.ndarray, chord: float) -> np.ndarray:
    """Component labels of the graph linking |x_i − x_j| < chord, exactly, by cubes of side h = chord/√d in R^d.

    Points in one cube are within its diagonal, below the chord: linked, one group each. Two groups can
    only link when their bounding boxes come closer than the chord: such pairs are found among the groups'
    centres by a k-d tree (radius chord + both boxes' half diagonals). A pair whose boxes are entirely within
    the chord of each other is linked; the others ("ambiguous") are decided only while their groups are
    still in different components, by a nearest-neighbour query of one group's points in the other's tree.
    Unlike a Delaunay triangulation (qhull: about 700 bytes a point) this needs O(n)
    memory, and a clustered state (many points, few cubes) is as cheap as a uniform one."""
    h = chord / np.sqrt(x.shape[1]) * (1 - 1e-12)  # the diagonal strictly below the chord
    group, size = _cubes(np.floor(x / h).astype(np.int64))
    m = len(size)
    order = np.argsort(group, kind="stable")
    starts = np.concatenate([[0], np.cumsum(size)[:-1]])
    sorted_x = x[order]
    centre, half = np.minimum.reduceat(sorted_x, starts), np.maximum.reduceat(sorted_x, starts)
    half -= centre
    half /= 2
    centre += half  # in place: the boxes' centres and half sides (every array of m rows counts at 10⁶ points)
    reach = chord + 2 * float(np.max(np.linalg.norm(half, axis=1)))
    tree = cKDTree(centre, **FLAT_TREE)
    sure_parts, maybe_parts = [], []
    for first in range(0, m, _GROUP_CHUNK):  # candidate pairs chunk by chunk: O(chunk · neighbours) memory
        rows = np.arange(first, min(m, first + _GROUP_CHUNK))
        near = tree.query_ball_point(centre[rows], reach, return_sorted=False)
        a = np.repeat(rows, [len(k) for k in near])
        b = np.fromiter(itertools.chain.from_iterable(near), dtype=np.int64, count=len(a))
        forward = a < b  # each pair once
        a, b = a[forward], b[forward]
        distance = np.abs(centre[a] - centre[b])
        gap = np.linalg.norm(np.maximum(distance - half[a] - half[b], 0), axis=1)  # the boxes' nearest points
        span = np.linalg.norm(distance + half[a] + half[b], axis=1)  # and farthest
        sure, maybe = span < chord, (gap < chord) & (span >= chord)
        sure_parts.append(_spanning_forest(a[sure], b[sure]))
        maybe_parts.append(np.stack([a[maybe], b[maybe]]).astype(np.int32))
    certain, ambiguous = np.concatenate(sure_parts, axis=1), np.concatenate(maybe_parts, axis=1)
    graph = coo_matrix((np.ones(certain.shape[1], dtype=np.int8), (certain[0], certain[1])), shape=(m, m))
    count, label = connected_components(graph, directed=False)
    parent = np.arange(count)  # union-find over those components (an array: 8 bytes each, 10⁶ of them here)

    def members(g):
        return sorted_x[starts[g]:starts[g] + size[g]]

    bound = np.nextafter(chord, 0)
    for i, j in zip(*ambiguous.tolist()):
        ri, rj = root_of(parent, label[i]), root_of(parent, label[j])
        if ri == rj:
            continue
        if size[i] > size[j]:
            i, j = j, i
        if np.isfinite(cKDTree(members(j)).query(members(i), distance_upper_bound=bound)[0]).any():
            parent[ri] = rj
    while not np.array_equal(parent[parent], parent):  # every component straight to its root
        parent = parent[parent]
    return parent[label][group]


def _cubes(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cube index of each point (0 … m−1) and the number of points in each cube, for integer cells (n, d):
    one integer key per cell where the cells' range allows (a 1-d sort), the rows themselves otherwise."""
    low = cells.min(axis=0)
    extent = cells.max(axis=0) - low + 1
    if float(np.prod(extent.astype(float))) < 2.0**62:
        key = np.ravel_multi_index(tuple((cells - low).T), tuple(int(e) for e in extent))
        _, group, size = np.unique(key, return_inverse=True, return_counts=True)
    else:
        _, group, size = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    return group.ravel(), size


def _spanning_forest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Edges (2, k) with the components of the edges (a, b), one per vertex: each vertex to its component's first
    vertex (k ≤ the vertices, often far fewer than the edges: a chunk's links among dense cubes)."""
    if not len(a):
        return np.empty((2, 0), dtype=np.int32)
    vertices, ends = np.unique(np.concatenate([a, b]), return_inverse=True)
    k = len(vertices)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (ends[:len(a)], ends[len(a):])), shape=(k, k))
    _, component = connected_components(graph, directed=False)
    first = np.zeros(component.max() + 1, dtype=np.int64)
    first[component[::-1]] = np.arange(k)[::-1]  # the first vertex of each component
    return np.stack([vertices, vertices[first[component]]]).astype(np.int32)
