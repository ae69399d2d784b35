"""Figures of a run file: density maps, energy per degree, conserved and monotone quantities."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import io  # noqa: E402
from .errors import InputError  # noqa: E402


def snapshot_indices(n: int, count: int = 6) -> list[int]:
    """``count`` snapshot indices spread evenly from the first to the last."""
    return sorted(set(np.linspace(0, n - 1, min(n, count)).round().astype(int).tolist()))


def _cell_edges(centres: np.ndarray, low: float, high: float) -> np.ndarray:
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[low], mid, [high]])


def _longitude_cells(phi: np.ndarray, rho: np.ndarray):
    """Cell edges in longitude -π..π (centred on φ = 0) and the columns reordered to match.

    The first column is repeated past the last one, so the map closes without a seam.
    """
    lon = np.mod(phi + np.pi, 2 * np.pi) - np.pi
    order = np.argsort(lon)
    lon = lon[order]
    columns = np.concatenate([rho[:, order], rho[:, order[:1]]], axis=1)
    edges = np.concatenate([[-np.pi], lon + np.pi / phi.size, [np.pi]])
    return edges, columns


def density_maps(path, out: Path, count: int = 6) -> Path:
    """Mollweide maps of ρ at ``count`` times, each with its own colour bar."""
    run = io.read_run(path)
    theta, phi, t = run["grid"]["theta"], run["grid"]["phi"], run["t"]
    lat_edges = _cell_edges(np.pi / 2 - theta, np.pi / 2, -np.pi / 2)
    indices = snapshot_indices(len(t), count)
    cols = min(3, len(indices))
    rows = -(-len(indices) // cols)
    fig = plt.figure(figsize=(5.2 * cols, 3.2 * rows))
    for k, i in enumerate(indices):
        ax = fig.add_subplot(rows, cols, k + 1, projection="mollweide")
        lon_edges, rho = _longitude_cells(phi, io.read_density(path, i))
        mesh = ax.pcolormesh(lon_edges, lat_edges, rho, cmap="magma", shading="flat", rasterized=True)
        ax.set_title(f"t = {t[i]:g}", fontsize=10)
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        fig.colorbar(mesh, ax=ax, shrink=0.7, label="ρ (relative to uniform)")
    model = run["config"]["model"]
    fig.suptitle(f"density ρ(t) on S² — {model['name']}, β = {model['beta']:g}, lmax = {run['config']['domain']['lmax']}")
    fig.tight_layout()
    target = out / "density_maps.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def circle_density(path, out: Path, count: int = 6) -> Path:
    """Heat map of ρ(θ, t) and line snapshots on the circle."""
    run = io.read_run(path)
    theta, t = run["grid"]["theta"], run["t"]
    rho = np.stack([io.read_density(path, i) for i in range(len(t))])
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    edges_t = _cell_edges(t, t[0] - 0.5 * (t[1] - t[0]) if len(t) > 1 else t[0] - 0.5, t[-1] + 0.5 * (t[-1] - t[-2]) if len(t) > 1 else t[0] + 0.5)
    edges_th = _cell_edges(theta, theta[0] - 0.5 * (theta[1] - theta[0]), theta[-1] + 0.5 * (theta[1] - theta[0]))
    mesh = a.pcolormesh(edges_th, edges_t, rho, cmap="magma", shading="flat", rasterized=True)
    fig.colorbar(mesh, ax=a, label="ρ")
    a.set_xlabel("θ (rad)")
    a.set_ylabel("t (depth)")
    for i in snapshot_indices(len(t), count):
        b.plot(theta, rho[i], label=f"t = {t[i]:g}")
    b.set_xlabel("θ (rad)")
    b.set_ylabel("ρ(θ)")
    b.legend(fontsize=8)
    fig.tight_layout()
    target = out / "density.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def energy_per_degree(path, out: Path, degrees: int = 10) -> Path:
    """E_l(t) = Σ_m a_lm² on a log scale for the lowest degrees, and a degree-time heat map."""
    run = io.read_run(path)
    t, spectrum = run["t"], run["diagnostics"]["spectrum"]
    lmax = spectrum.shape[1] - 1
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    cmap = plt.get_cmap("viridis")
    for l in range(1, min(degrees, lmax) + 1):
        a.semilogy(t, spectrum[:, l], color=cmap((l - 1) / max(1, degrees - 1)), label=f"l = {l}")
    a.set_xlabel("t (depth)")
    a.set_ylabel("energy per degree E_l = Σ_m a_lm²")
    a.legend(fontsize=7, ncol=2)
    a.grid(alpha=0.3)
    with np.errstate(divide="ignore"):
        logs = np.log10(np.maximum(spectrum[:, 1:], 1e-300))
    edges_l = np.arange(0.5, lmax + 1.0)
    edges_t = _cell_edges(t, t[0], t[-1]) if len(t) > 1 else np.array([t[0] - 0.5, t[0] + 0.5])
    mesh = b.pcolormesh(edges_l, edges_t, logs, cmap="viridis", shading="flat", vmin=max(logs.min(), logs.max() - 20), rasterized=True)
    fig.colorbar(mesh, ax=b, label="log10 E_l")
    b.set_xlabel("degree l")
    b.set_ylabel("t (depth)")
    fig.tight_layout()
    target = out / "energy_per_degree.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def diagnostics(path, out: Path) -> Path:
    """Energy E_β, mass error and density range over time."""
    run = io.read_run(path)
    t, diag = run["t"], run["diagnostics"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(t, diag["energy"], "o-", ms=3)
    axes[0].set_ylabel("energy E_β")
    axes[1].semilogy(t, np.maximum(np.abs(diag["mass"] - diag["mass"][0]), 1e-17), "o-", ms=3)
    axes[1].set_ylabel("|mass(t) − mass(0)|")
    axes[2].semilogy(t, diag["max_density"], label="max ρ")
    axes[2].semilogy(t, np.maximum(diag["min_density"], 1e-6), label="min ρ (floored at 1e-6)")
    axes[2].set_ylabel("density range")
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("t (depth)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    target = out / "diagnostics.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def plot_run(path, out) -> list[Path]:
    """All figures of a run into the directory ``out`` (created if missing)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output directory {str(out)!r} cannot be created: {exc.strerror}") from None
    run = io.read_run(path)
    if len(run["t"]) == 0:
        raise InputError(f"run file {str(path)!r} holds no snapshot to plot")
    maps = density_maps if run["config"]["domain"]["kind"] == "sphere" else circle_density
    return [maps(path, out), energy_per_degree(path, out), diagnostics(path, out)]
