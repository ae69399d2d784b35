"""Figures of a run file: density maps and an animation, energy per degree, conserved and
monotone quantities, cluster count; for token runs the tokens and their diagnostics.

:func:`plot_run` writes them all. On the sphere: ``density_maps.png`` (Mollweide),
``density_orthographic.png``, ``density.gif`` (and ``density.mp4`` when ffmpeg is installed);
on the circle and for zonal densities: ``density.png`` (angle × t heat map and line snapshots) and
``density.gif``; on all ``energy_per_degree.png``, ``diagnostics.png`` (energy, mass error, density
range), ``clusters.png`` and ``life.png`` (the whole life against log time, its acts marked). Token runs
(``spherepde particles``): ``tokens.png`` (d = 3, orthographic views) or ``token_angles.png`` (d = 2, angle
against time), and ``token_diagnostics.png``.
The energy is drawn only for models that have a monotone one (AttentionModel.has_energy);
otherwise its panel says why there is none. Time axes are linear for evenly spaced snapshots and logarithmic
past the early even steps for log-spaced ones (:func:`time_axis`).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from . import io
from .config import loads
from .errors import InputError
from .life import read as read_life
from .manifolds import manifold_class
from .model import AttentionModel


def _figure(figsize, layout=None) -> Figure:
    """A figure on the Agg canvas (no pyplot, no global backend: plotting leaves the caller's matplotlib alone)."""
    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _subplots(rows: int, cols: int, figsize, layout=None, **options):
    fig = _figure(figsize, layout)
    return fig, fig.subplots(rows, cols, **options)


def _save(fig, target: Path, tight: bool = True) -> Path:
    """Write ``fig`` to ``target`` (after a tight layout unless the figure lays itself out)."""
    if tight:
        fig.tight_layout()
    fig.savefig(target, dpi=110)
    return target


def _model(run: dict) -> AttentionModel:
    """The attention model of a run (a :func:`spherepde.io.read_run` mapping)."""
    return loads(run["config_text"]).attention()


def snapshot_indices(n: int, count: int = 6) -> list[int]:
    """``count`` snapshot indices spread evenly from the first to the last."""
    return sorted(set(np.linspace(0, n - 1, min(n, count)).round().astype(int).tolist()))


def time_axis(ax, t: np.ndarray, axis: str = "x") -> None:
    """Label the time axis of ``ax`` and scale it as the snapshots are spaced: linear for evenly spaced ones; for
    log-spaced ones (``[time] save_per_decade``: even steps up to t_s, then a fixed number per decade) linear up to
    the power of ten at or below t_s and logarithmic after ("symlog"), so that neither the early phase nor the long
    metastable ones are squashed (and the tick at 0 keeps a decade's room from the next one)."""
    set_scale, set_limits, set_label = (getattr(ax, f"set_{axis}{part}") for part in ("scale", "lim", "label"))
    gaps = np.diff(t)
    label = "t (depth)"
    if len(gaps) > 1 and gaps[0] > 0 and gaps.max() > 10 * gaps[0]:
        t_s = float(t[np.argmin(np.isclose(gaps, gaps[0], rtol=1e-6))])  # where the even steps end
        linear = 10.0 ** np.floor(np.log10(t_s))
        set_scale("symlog", linthresh=linear)
        set_limits(t[0], None)  # from the first snapshot: symlog's autoscaling margins may reach negative times
        label = f"t (depth; linear to {linear:g}, log after)"
    set_label(label)


def _cell_edges(centres: np.ndarray, low: float, high: float) -> np.ndarray:
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[low], mid, [high]])


def _longitude_cells(phi: np.ndarray, rho: np.ndarray):
    """Cell edges in longitude -π..π (centred on φ = 0) of equally spaced longitudes ``phi``, and the
    columns of ``rho`` reordered to match: each cell holds the points nearest to its sample.

    The first column is repeated past the last one, so the map closes without a seam: the cell of
    a sample at -π is split between both ends (for an odd count the repeated cell is empty).
    """
    lon = np.mod(phi + np.pi, 2 * np.pi) - np.pi
    order = np.argsort(lon)
    lon = lon[order]
    columns = np.concatenate([rho[:, order], rho[:, order[:1]]], axis=1)
    edges = np.concatenate([[-np.pi], np.minimum(lon + np.pi / phi.size, np.pi), [np.pi]])
    return edges, columns


def density_maps(path, out: Path, count: int = 6) -> Path:
    """Mollweide maps of ρ at ``count`` times, each with its own colour bar."""
    run = io.read_run(path)
    theta, phi, t = run["grid"]["theta"], run["grid"]["phi"], run["t"]
    lat_edges = _cell_edges(np.pi / 2 - theta, np.pi / 2, -np.pi / 2)
    indices = snapshot_indices(len(t), count)
    cols = min(3, len(indices))
    rows = -(-len(indices) // cols)
    fig = _figure((5.2 * cols, 3.2 * rows))
    for k, i in enumerate(indices):
        ax = fig.add_subplot(rows, cols, k + 1, projection="mollweide")
        lon_edges, rho = _longitude_cells(phi, io.read_density(path, i))
        mesh = ax.pcolormesh(lon_edges, lat_edges, rho, cmap="magma", shading="flat", rasterized=True)
        ax.set_title(f"t = {t[i]:g}", fontsize=10)
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        fig.colorbar(mesh, ax=ax, shrink=0.7, label="ρ (relative to uniform)")
    fig.suptitle(f"density ρ(t), {_title(run)}")
    return _save(fig, out / "density_maps.png")


def line_density(path, out: Path, count: int = 6) -> Path:
    """Heat map of ρ(θ, t) and line snapshots on a one-dimensional grid (the circle, zonal densities)."""
    run = io.read_run(path)
    theta, t = run["grid"]["theta"], run["t"]
    label = manifold_class(run["manifold"]).coordinate_label
    rho = np.stack([io.read_density(path, i) for i in range(len(t))])
    fig, (a, b) = _subplots(1, 2, (11, 4))
    edges_t = _cell_edges(t, t[0] - 0.5 * (t[1] - t[0]) if len(t) > 1 else t[0] - 0.5, t[-1] + 0.5 * (t[-1] - t[-2]) if len(t) > 1 else t[0] + 0.5)
    edges_th = _cell_edges(theta, theta[0] - 0.5 * (theta[1] - theta[0]), theta[-1] + 0.5 * (theta[1] - theta[0]))
    # log scale symmetric about the uniform state ρ = 1: growth and depletion look alike
    spread = max(float(rho.max()), 1 / max(float(rho.min()), 1e-3), 1 + 1e-6)
    norm = LogNorm(1 / spread, spread)
    mesh = a.pcolormesh(edges_th, edges_t, np.clip(rho, 1 / spread, None), cmap="RdBu_r", norm=norm, shading="flat",
                        rasterized=True)
    fig.colorbar(mesh, ax=a, label="ρ (relative to uniform, log scale)")
    a.set_xlabel(label)
    time_axis(a, t, "y")
    for i in snapshot_indices(len(t), count):
        b.plot(theta, rho[i], label=f"t = {t[i]:g}")
    b.set_xlabel(label)
    b.set_ylabel("ρ(θ) (relative to uniform)")
    b.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"density ρ(t), {_title(run)}")
    return _save(fig, out / "density.png")


def energy_per_degree(path, out: Path, degrees: int = 10) -> Path:
    """E_l(t) = Σ_m a_lm² on a log scale for the lowest degrees, and a degree-time heat map."""
    run = io.read_run(path)
    t, spectrum = run["t"], run["diagnostics"]["spectrum"]
    lmax = spectrum.shape[1] - 1
    fig, (a, b) = _subplots(1, 2, (11, 4))
    for l in range(1, min(degrees, lmax) + 1):  # tab10: ten colours told apart in print
        a.semilogy(t, spectrum[:, l], color=matplotlib.colormaps["tab10"]((l - 1) % 10), label=f"l = {l}")
    time_axis(a, t)
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
    time_axis(b, t, "y")
    fig.suptitle(f"energy per degree, {_title(run)}")
    return _save(fig, out / "energy_per_degree.png")


def diagnostics(path, out: Path) -> Path:
    """Energy E_β (where the model has one), mass error and density range over time."""
    run = io.read_run(path)
    t, diag = run["t"], run["diagnostics"]
    fig, axes = _subplots(1, 3, (13, 3.6))
    _energy_panel(axes[0], t, diag["energy"], _model(run), "energy E_β")
    axes[1].semilogy(t, np.maximum(np.abs(diag["mass"] - diag["mass"][0]), 1e-17), "o-", ms=3)
    axes[1].set_ylabel("|mass(t) − mass(0)|")
    axes[1].set_title("mass error (0 drawn at 1e-17)", fontsize=9)
    axes[2].semilogy(t, diag["max_density"], label="max ρ")
    axes[2].semilogy(t, np.maximum(diag["min_density"], 1e-6), label="min ρ (floored at 1e-6)")
    axes[2].set_ylabel("ρ (relative to uniform)")
    axes[2].set_title("density range", fontsize=9)
    axes[2].legend(fontsize=8)
    for ax in axes:
        time_axis(ax, t)
        ax.grid(alpha=0.3)
    fig.suptitle(_title(run))
    return _save(fig, out / "diagnostics.png")


def _energy_panel(ax, t: np.ndarray, energy: np.ndarray, model: AttentionModel, label: str):
    """The energy over time if ``model`` has a monotone one (QᵀK = I, V = I, β finite); else a note why not."""
    if model.has_energy:
        ax.plot(t, energy, "o-", ms=3)
        ax.set_ylabel(label)
        ax.set_title("energy (nondecreasing in exact arithmetic)", fontsize=9)
        return
    reason = "β = ∞ (zero temperature)" if model.zero_temperature else "QᵀK ≠ I or V ≠ I"
    ax.text(0.5, 0.5, f"no monotone energy:\n{reason}", transform=ax.transAxes, ha="center", va="center")
    ax.set_title("energy: none for this model", fontsize=9)
    if t[-1] > t[0]:
        ax.set_xlim(t[0], t[-1])
    ax.set_yticks([])


def _sphere_name(d: int) -> str:
    return {2: "S¹", 3: "S²"}.get(d, f"S^{d - 1}")


def _title(run: dict) -> str:
    cfg = loads(run["config_text"])
    where = _sphere_name(cfg.domain.d) + (" (zonal)" if cfg.domain.kind == "zonal" else "")
    return f"{cfg.model.name}, β = {cfg.model.beta:g} on {where}, lmax = {cfg.domain.lmax}"


def _token_title(run: dict, n: int) -> str:
    cfg = loads(run["config_text"])
    return f"{cfg.model.name}, β = {cfg.model.beta:g}, {n} tokens on {_sphere_name(cfg.particles.d)}"


def _unit(colatitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """Unit vectors (…, 3) at the given colatitudes and longitudes (broadcast)."""
    colatitude, longitude = np.broadcast_arrays(colatitude, longitude)
    return np.stack([np.sin(colatitude) * np.cos(longitude), np.sin(colatitude) * np.sin(longitude), np.cos(colatitude)], axis=-1)


def _view_basis(view: np.ndarray) -> np.ndarray:
    """Rows: east and north in the image plane, and the direction ``view`` towards the viewer."""
    east = np.cross([0.0, 0.0, 1.0], view)
    if np.linalg.norm(east) < 1e-8:  # looking at a pole
        east = np.array([0.0, 1.0, 0.0])
    east /= np.linalg.norm(east)
    return np.stack([east, np.cross(view, east), view])


def _orthographic(points: np.ndarray, basis: np.ndarray):
    """Image coordinates x, y of points on the sphere seen from afar along ``basis[2]`` and their
    depth (> 0: visible). Points on the far side are pulled onto the rim, so that the cells of the
    visible side that cross it end there."""
    x, y, depth = np.moveaxis(points @ basis.T, -1, 0)
    rim = np.hypot(x, y)
    behind = (depth < 0) & (rim > 0)
    x, y = np.where(behind, x / np.where(behind, rim, 1), x), np.where(behind, y / np.where(behind, rim, 1), y)
    return x, y, depth


def _graticule(ax, basis: np.ndarray, step: int = 30):
    """Meridians and parallels every ``step`` degrees on the visible side, and the rim."""
    s = np.linspace(0, 2 * np.pi, 361)
    ax.plot(np.cos(s), np.sin(s), color="0.3", lw=0.8)
    lines = [_unit(np.radians(c), s) for c in range(step, 180, step)]
    lines += [_unit(s / 2, np.radians(lon)) for lon in range(0, 360, step)]
    for line in lines:
        x, y, depth = _orthographic(line, basis)
        ax.plot(np.where(depth > 0, x, np.nan), y, color="white", lw=0.4, alpha=0.5)


def orthographic_mesh(ax, theta: np.ndarray, phi: np.ndarray, rho: np.ndarray, basis: np.ndarray):
    """pcolormesh of grid values ρ (colatitudes ``theta``, longitudes ``phi``) on the hemisphere
    facing ``basis[2]`` (rows as from ``_view_basis``), one cell per grid point, colour range that of ρ."""
    colat_edges = _cell_edges(theta, 0.0, np.pi)
    lon_edges, rho = _longitude_cells(phi, rho)
    lon_mid = 0.5 * (lon_edges[1:] + lon_edges[:-1])
    colat_mid = 0.5 * (colat_edges[1:] + colat_edges[:-1])
    x, y, _ = _orthographic(_unit(colat_edges[:, None], lon_edges[None, :]), basis)
    depth = _orthographic(_unit(colat_mid[:, None], lon_mid[None, :]), basis)[2]
    return ax.pcolormesh(x, y, np.ma.masked_where(depth <= 0, rho), cmap="magma", shading="flat",
                         vmin=rho.min(), vmax=rho.max(), rasterized=True)


def _hemisphere_panels(t: np.ndarray, view: np.ndarray, count: int):
    """A figure of orthographic panels at ``count`` snapshot times (columns, titled by t): the
    hemisphere centred on the unit vector ``view`` (top row) and the opposite one (bottom row),
    with their graticules. Returns the figure, the axes, the snapshot indices and the two view bases."""
    indices = snapshot_indices(len(t), count)
    fig, axes = _subplots(2, len(indices), (3.6 * len(indices), 7.4), "constrained", squeeze=False)
    bases = (_view_basis(view), _view_basis(-view))
    for row, basis in enumerate(bases):
        for ax in axes[row]:
            _graticule(ax, basis)  # lines draw above meshes (zorder 2 > 1)
            ax.set_aspect("equal")
            ax.set_axis_off()
    for k, i in enumerate(indices):
        axes[0, k].set_title(f"t = {t[i]:g}")
    return fig, axes, indices, bases


def density_orthographic(path, out: Path, count: int = 3) -> Path:
    """ρ at ``count`` times on the hemisphere centred on the final maximum of ρ (top row) and
    on the opposite one (bottom row), orthographic projection, one colour scale per time."""
    run = io.read_run(path)
    theta, phi, t = run["grid"]["theta"], run["grid"]["phi"], run["t"]
    final = io.read_density(path, -1)
    top = np.unravel_index(np.argmax(final), final.shape)
    view = _unit(theta[top[0]], phi[top[1]])
    fig, axes, indices, bases = _hemisphere_panels(t, view, count)
    for k, i in enumerate(indices):
        rho = io.read_density(path, i)
        for row, basis in enumerate(bases):
            mesh = orthographic_mesh(axes[row, k], theta, phi, rho, basis)
        fig.colorbar(mesh, ax=axes[:, k], orientation="horizontal", shrink=0.85, label="ρ (relative to uniform)")
    colat, lon = np.degrees(theta[top[0]]), np.degrees(phi[top[1]])
    fig.suptitle(f"density ρ(t), {_title(run)}\ntop: centred on the final maximum (colatitude {colat:.0f}°, "
                 f"longitude {lon:.0f}°); bottom: the opposite side; grid lines every 30°", fontsize=10)
    return _save(fig, out / "density_orthographic.png", tight=False)


def clusters(path, out: Path) -> Path:
    """Number of clusters (diagnostics ``clusters``) and the maximum of ρ over time."""
    run = io.read_run(path)
    t, diag = run["t"], run["diagnostics"]
    fig, ax = _subplots(1, 1, (6.5, 3.8), "constrained")
    ax.step(t, diag["clusters"], where="mid", color="C0", lw=2)
    time_axis(ax, t)
    ax.set_ylabel("number of clusters", color="C0")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(t, diag["max_density"], color="C1", ls="--")
    twin.set_ylabel("max ρ (relative to uniform)", color="C1")
    ax.set_title(f"clusters: peaks with ρ ≥ 2 that stand out by half their height — {_title(run)}", fontsize=9)
    return _save(fig, out / "clusters.png", tight=False)


def mark_acts(axes, t: np.ndarray, acts) -> None:
    """Log-time axes with the acts of :func:`spherepde.life.read` marked: the linear phase (green), the
    metastable plateaus (blue), the merges (red dashes) and the switch to weighted points (black)."""
    for ax in axes:
        ax.set_xscale("log")
        ax.grid(alpha=0.3, which="both")
        if acts.onset is not None:
            ax.axvspan(t[t > 0][0], acts.onset, color="C2", alpha=0.08)
        for plateau in acts.plateaus:
            ax.axvspan(plateau.start, min(plateau.end, t[-1]), color="C0", alpha=0.06)
        for merge in acts.merges:
            ax.axvline(merge.t, color="C3", lw=0.8, ls="--")
        if acts.switch is not None:
            ax.axvline(acts.switch, color="k", lw=1)


def life(path, out: Path) -> Path:
    """The whole life of a run against log time: the energy (its staircase of merges), the cluster count and, after
    the switch to weighted points, how many points remain; the linear phase (before the first cluster), the
    switch, the metastable plateaus and the merges between them (:mod:`spherepde.life`) are marked."""
    run = io.read_run(path)
    t, diag = run["t"], run["diagnostics"]
    acts = read_life(run)
    positive = t > 0
    fig, (top, bottom) = _subplots(2, 1, (9, 6.5), "constrained", sharex=True)
    model = _model(run)
    if model.has_energy:
        top.plot(t[positive], diag["energy"][positive], "C0.-", ms=3)
        top.set_ylabel("energy E_β")
    else:
        top.plot(t[positive], 1 - diag["mean_direction"][positive], "C0.-", ms=3)
        top.set_yscale("log")
        top.set_ylabel("1 − |∫x dμ|")
    bottom.step(t[positive], diag["clusters"][positive], where="post", color="C3", lw=2, label="clusters")
    bottom.set_ylabel("clusters", color="C3")
    bottom.yaxis.get_major_locator().set_params(integer=True)
    if "points_active" in diag and np.any(diag["points_active"] > 0):
        twin = bottom.twinx()
        active = diag["points_active"] > 0
        twin.semilogy(t[active], diag["points_active"][active], "k:", lw=1)
        twin.yaxis.set_major_formatter(ticker.LogFormatter())  # counts as 3, 4, 6, not 3×10⁰ (minor ticks are
        twin.yaxis.set_minor_formatter(ticker.LogFormatter())  # labelled when the axis spans a decade or less)
        twin.set_ylabel("weighted points", color="0.3")
    mark_acts((top, bottom), t, acts)
    bottom.set_xlabel("t (depth, log scale)")
    top.set_title(f"the whole life — {_title(run)}\ngreen: linear phase; blue: metastable plateaus; red dashes: "
                  "merges; black line: switch to weighted points", fontsize=9)
    return _save(fig, out / "life.png", tight=False)


def animation(path, out: Path, max_frames: int = 60, fps: int = 8) -> list[Path]:
    """ρ over time: Mollweide maps (sphere) or ρ(θ) (circle), colour or y scale per frame.

    At most ``max_frames`` snapshots, spread evenly from the first to the last (all of them when
    there are fewer). Writes ``density.gif`` (pillow) and ``density.mp4`` when ffmpeg is installed.
    """
    from matplotlib import animation as mpl_animation

    run = io.read_run(path)
    t = run["t"]
    indices = snapshot_indices(len(t), max_frames)
    if "phi" in run["grid"]:
        theta, phi = run["grid"]["theta"], run["grid"]["phi"]
        fig = _figure((7, 4), "constrained")
        ax = fig.add_subplot(projection="mollweide")
        lon_edges, rho = _longitude_cells(phi, io.read_density(path, indices[0]))
        artist = ax.pcolormesh(lon_edges, _cell_edges(np.pi / 2 - theta, np.pi / 2, -np.pi / 2), rho, cmap="magma",
                               shading="flat")
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        fig.colorbar(artist, ax=ax, shrink=0.7, label="ρ (relative to uniform)")

        def draw(i):
            rho = _longitude_cells(phi, io.read_density(path, i))[1]
            artist.set_array(rho)
            artist.set_clim(rho.min(), rho.max())
    else:
        theta = run["grid"]["theta"]
        fig, ax = _subplots(1, 1, (7, 4), "constrained")
        (artist,) = ax.plot(theta, io.read_density(path, indices[0]), color="C0")
        ax.set_xlabel(manifold_class(run["manifold"]).coordinate_label)
        ax.set_ylabel("ρ(θ) (relative to uniform)")
        ax.set_xlim(theta.min(), theta.max())
        ax.grid(alpha=0.3)

        def draw(i):
            rho = io.read_density(path, i)
            artist.set_ydata(rho)
            pad = 0.05 * max(rho.max() - rho.min(), 1e-12)
            ax.set_ylim(rho.min() - pad, rho.max() + pad)

    fig.canvas.draw()
    fig.set_layout_engine("none")  # lay out once: frames differ only in data, title and colour scale
    writers: dict[Path, mpl_animation.AbstractMovieWriter] = {out / "density.gif": mpl_animation.PillowWriter(fps=fps)}
    if mpl_animation.writers.is_available("ffmpeg"):
        writers[out / "density.mp4"] = mpl_animation.FFMpegWriter(fps=fps)
    for target, writer in writers.items():
        with writer.saving(fig, target, dpi=80):
            for i in indices:
                draw(i)
                ax.set_title(f"t = {t[i]:.4g} — {_title(run)}", fontsize=10)
                writer.grab_frame()
    return list(writers)


#: Token figures draw at most this many tokens (every k-th, the same ones in every panel).
DRAWN_TOKENS = 20000


def _drawn(n: int) -> slice:
    return slice(None, None, max(1, -(-n // DRAWN_TOKENS)))


def token_sphere(path, out: Path, count: int = 3) -> Path:
    """Tokens on S² at ``count`` times, orthographic views of the hemisphere centred on the final
    mean direction x̄/|x̄| (top row) and of the opposite one (bottom row). Each token keeps the
    colour of its initial height ⟨x_i(0), view⟩, so that one can follow where tokens go. Beyond
    DRAWN_TOKENS tokens every k-th is drawn (the title says how many)."""
    run = io.read_run(path)
    t = run["t"]
    start, final = io.read_points(path, 0), io.read_points(path, -1)
    drawn = _drawn(len(start))
    mean = final.mean(axis=0)
    view = mean / np.linalg.norm(mean) if np.linalg.norm(mean) > 1e-8 else np.array([0.0, 0.0, 1.0])
    height = start[drawn] @ view
    size = float(np.clip(4000 / len(height), 1, 20))
    fig, axes, indices, bases = _hemisphere_panels(t, view, count)
    for k, i in enumerate(indices):
        points = io.read_points(path, i)[drawn]
        for row, basis in enumerate(bases):
            x, y, depth = _orthographic(points, basis)
            ax = axes[row, k]
            ax.add_patch(Circle((0, 0), 1, color="0.92", zorder=0))
            front = depth > 0
            dots = ax.scatter(x[front], y[front], c=height[front], s=size, cmap="coolwarm", vmin=-1, vmax=1,
                              edgecolors="none", zorder=3)
            ax.set_xlim(-1.05, 1.05)
            ax.set_ylim(-1.05, 1.05)
    fig.colorbar(dots, ax=axes, orientation="horizontal", shrink=0.6, label="initial height ⟨x_i(0), view⟩")
    shown = "" if len(height) == len(start) else f" ({len(height)} of them drawn)"
    fig.suptitle(f"tokens, {_token_title(run, len(start))}{shown}\ntop: centred on the final mean direction; "
                 "bottom: the opposite side; grid lines every 30°", fontsize=10)
    return _save(fig, out / "tokens.png", tight=False)


def token_angles(path, out: Path) -> Path:
    """Angles θ_i(t) ∈ [0, 2π) of tokens on S¹ against time, each a line coloured by θ_i(0).

    Angles are unwrapped from one snapshot to the next (a token moves by less than π between
    snapshots) and drawn with copies shifted by ±2π, so that lines cross θ = 0 without a jump.
    """
    from matplotlib.collections import LineCollection

    run = io.read_run(path)
    t = run["t"]
    drawn = _drawn(len(io.read_points(path, 0)))
    points = np.stack([io.read_points(path, i)[drawn] for i in range(len(t))])
    angles = np.unwrap(np.mod(np.arctan2(points[..., 1], points[..., 0]), 2 * np.pi), axis=0)  # (n_t, n)
    fig, ax = _subplots(1, 1, (7.5, 4.5), "constrained")
    # the shifts k with angles − 2πk meeting [0, 2π]
    turns = range(int(np.ceil(angles.min() / (2 * np.pi))) - 1, int(np.floor(angles.max() / (2 * np.pi))) + 1)
    lines = [np.column_stack([t, angles[:, i] - 2 * np.pi * k]) for k in turns for i in range(angles.shape[1])]
    colours = np.tile(angles[0], len(turns))
    collection = LineCollection(lines, array=colours, cmap="twilight", norm=Normalize(0, 2 * np.pi),
                                linewidths=0.8)
    ax.add_collection(collection)
    ax.set_xlim(t[0], t[-1] if t[-1] > t[0] else t[0] + 1)
    ax.set_ylim(0, 2 * np.pi)
    ax.set_yticks(np.arange(5) * np.pi / 2, ["0", "π/2", "π", "3π/2", "2π"])
    time_axis(ax, t)
    ax.set_ylabel("token angle θ_i (rad)")
    fig.colorbar(collection, ax=ax, label="initial angle θ_i(0) (rad)")
    ax.set_title(f"token angles, {_token_title(run, angles.shape[1])}", fontsize=10)
    return _save(fig, out / "token_angles.png", tight=False)


def token_diagnostics(path, out: Path) -> Path:
    """Energy (where the model has one), mean direction |x̄|, cluster count and close-pair
    fraction of a token run over time (the series of /diagnostics, see spherepde.particles)."""
    run = io.read_run(path)
    t, diag = run["t"], run["diagnostics"]
    fig, axes = _subplots(1, 4, (16, 3.6), "constrained")
    _energy_panel(axes[0], t, diag["energy"], _model(run), "energy E_β − 1/(2β)")
    panels = (
        ("mean_direction", "|x̄| = |(1/n) Σ x_i|", "mean direction (1: one cluster)", "linear"),
        ("clusters", "number of clusters", "single-linkage clusters", "log"),
        ("close_pairs", "fraction of pairs", "close pairs ⟨x_i, x_j⟩ > 0.999", "linear"),
    )
    for ax, (key, label, title, scale) in zip(axes[1:], panels):
        ax.plot(t, diag[key], "o-", ms=3)
        ax.set_yscale(scale)
        ax.set_ylabel(label)
        ax.set_title(title, fontsize=9)
    for ax in axes:
        time_axis(ax, t)
        ax.grid(alpha=0.3)
    fig.suptitle(_token_title(run, io.read_points(path, -1).shape[0]))
    return _save(fig, out / "token_diagnostics.png", tight=False)


def plot_run(path, out) -> list[Path]:
    """All figures of a run (PDE or tokens) into the directory ``out`` (created if missing)."""
    run = io.read_run(path)  # refusals come before the directory is made
    if len(run["t"]) == 0:
        raise InputError(f"run file {str(path)!r} holds no snapshot to plot")
    out = io.output_directory(out, "the figures")
    if run["manifold"] == "particles":
        d = loads(run["config_text"]).particles.d
        pictures = [] if "points" not in run["fields"] else [token_angles] if d == 2 else [token_sphere] if d == 3 else []
        return [draw(path, out) for draw in (*pictures, token_diagnostics)]
    maps = [density_maps, density_orthographic] if "phi" in run["grid"] else [line_density]
    figures = [draw(path, out) for draw in (*maps, energy_per_degree, diagnostics, clusters, life)]
    return figures + animation(path, out)
