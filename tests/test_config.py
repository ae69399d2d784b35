"""Configuration validation: every bad input is one InputError line naming the key (also as data)."""
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tomllib

import numpy as np

from spherepde import config
from spherepde.errors import InputError
from spherepde.harmonics import funk_hecke


def test_defaults_fill_design_contract():
    cfg = config.resolve({})
    table = tomllib.loads(config.dumps(cfg))
    assert table["model"] == {"name": "SA", "beta": 9.0, "clock": "depth"}
    assert table["domain"] == {"kind": "sphere", "lmax": 63}
    assert table["initial"] == {"kind": "perturbed_uniform", "amplitude": 1e-3, "seed": 0}
    assert table["time"] == {"t_end": 10.0, "save_every": 0.25, "rtol": 1e-8, "method": "dopri5"}
    assert table["numerics"]["on_lost_resolution"] == "lagrangian" and table["numerics"]["representation"] == "eulerian"
    assert cfg.model.beta == 9.0 and cfg.domain.d == 3 and isinstance(cfg.initial, config.PerturbedUniform)


def test_names_are_case_insensitive():
    cfg = config.resolve({"model": {"name": "usa", "beta": 1}, "domain": {"kind": "Sphere", "lmax": 16}})
    assert cfg.model.name == "USA" and cfg.domain.kind == "sphere" and cfg.model.beta == 1.0


@pytest.mark.parametrize("raw", [
    {"model": {"beta": -2.5}, "domain": {"lmax": 20},
     "initial": {"kind": "perturbed_uniform", "modes": [[3, -1], [4, 0]], "amplitude": 1e-4},
     "time": {"method": "rk4", "dt": 0.01}},
    {"model": {"beta": "inf", "Q": [[2, 0, 0], [0, 1, 0], [0, 0, 1]]}, "domain": {"lmax": 12},
     "initial": {"kind": "von_mises_fisher", "kappa": 3.0, "mean": [0, 0, 1]}},
    {"domain": {"kind": "zonal", "dim": 64, "lmax": 40}, "time": {"save_per_decade": 5, "t_end": 100.0}},
    {"domain": {"kind": "circle", "lmax": 30}, "initial": {"kind": "wrapped_cauchy", "R0": 0.3}},
])
def test_dump_and_reload_round_trip(raw):
    cfg = config.resolve(raw)
    assert config.loads(config.dumps(cfg)) == cfg


def test_token_config_round_trip_and_dispatch():
    cfg = config.resolve_particles({"particles": {"n": 50, "backend": "NumPy"}, "time": {"t_end": 1.0}})
    assert isinstance(config.loads(config.dumps(cfg)), config.TokenConfig)
    assert config.loads(config.dumps(cfg)) == cfg and cfg.particles.backend == "numpy"


BAD = [
    ({"model": {"name": "GPT"}}, "model.name"),
    ({"model": {"beta": "9"}}, "model.beta"),
    ({"model": {"beta": -math.inf}}, "model.beta"),
    ({"model": {"beta": math.nan}}, "model.beta"),
    ({"model": {"temperature": 1.0}}, "model.temperature"),
    ({"model": {"Q": [[math.nan, 0, 0], [0, 1, 0], [0, 0, 1]]}}, "model.Q"),
    ({"model": {"V": [[1, 0], [0, 1]]}}, "model.V"),
    ({"domain": {"kind": "torus"}}, "domain.kind"),
    ({"domain": {"lmax": 7.5}}, "domain.lmax"),
    ({"domain": {"lmax": 1}}, "domain.lmax"),
    ({"model": {"beta": 100.0}, "domain": {"lmax": 20}}, "domain.lmax"),
    ({"time": {"t_end": -1.0}}, "time.t_end"),
    ({"time": {"save_every": 0.0}}, "time.save_every"),
    ({"time": {"save_every": 20.0}}, "time.save_every"),
    ({"time": {"method": "euler"}}, "time.method"),
    ({"time": {"method": "rk4"}}, "time.dt"),
    ({"time": {"dt": 0.1}}, "time.dt"),
    ({"time": {"rtol": 2.0}}, "time.rtol"),
    ({"initial": {"kind": "gaussian"}}, "initial.kind"),
    ({"initial": {"amplitude": -1.0}}, "initial.amplitude"),
    ({"initial": {"modes": [[1]]}}, "initial.modes"),
    ({"initial": {"modes": [[1.5, 0]]}}, "initial.modes"),
    ({"initial": {"kappa": 1.0}}, "initial.kappa"),
    ({"initial": {"kind": "von_mises_fisher", "kappa": 2.0}}, "initial.mean"),
    ({"initial": {"kind": "von_mises_fisher", "kappa": 2.0, "mean": [0, 0, 0]}}, "initial.mean"),
    ({"initial": {"kind": "wrapped_cauchy", "R0": 0.5}}, "initial.kind"),
    ({"numerics": {"max_tail_energy": 0}}, "numerics.max_tail_energy"),
    ({"output": {}}, "[output]"),
    ({"initial": {"seed": -1}}, "initial.seed"),
    ({"initial": {"modes": [[4, 0], [2, 1], [4, 0]]}}, "initial.modes"),
    ({"domain": {"kind": "zonal", "lmax": 20}}, "domain.dim"),
    ({"domain": {"kind": "zonal", "dim": 2, "lmax": 20}}, "domain.dim"),
    ({"domain": {"kind": "zonal", "dim": 5000, "lmax": 20}}, "domain.dim"),
    ({"domain": {"kind": "sphere", "dim": 3}}, "domain.dim"),
    ({"domain": {"kind": "zonal", "dim": 8, "lmax": 20}, "initial": {"kind": "von_mises_fisher", "kappa": 1.0,
                                                                     "mean": [1, 0, 0, 0, 0, 0, 0, 0]}}, "initial.mean"),
    ({"domain": {"kind": "zonal", "dim": 8, "lmax": 20}, "initial": {"kind": "particles", "n": 5, "bandwidth": 2.0}},
     "initial.kind"),
    ({"numerics": {"on_lost_resolution": "ignore"}}, "numerics.on_lost_resolution"),
    ({"numerics": {"representation": "mixed"}}, "numerics.representation"),
    ({"numerics": {"merge_distance": 0.0}}, "numerics.merge_distance"),
    ({"numerics": {"merge_distance": 0.1}}, "numerics.merge_distance"),
    ({"time": {"save_per_decade": 0}}, "time.save_per_decade"),
    ({"time": {"save_log_from": 5.0}}, "time.save_log_from"),
    ({"time": {"t_end": 1e9, "save_every": 1e-3}}, "time.save_every"),
    ({"time": {"method": "rk4", "dt": 1e-300, "save_every": 0.25}}, "time.dt"),
    ({"time": {"rtol": 1e-300}}, "time.rtol"),
    ({"model": {"beta": 1e12}}, "model.beta"),
    ({"model": {"clock": "wall"}}, "model.clock"),
    ({"initial": {"kind": "points", "n": 10}}, "initial.kind"),  # a point measure needs representation = lagrangian
    ({"initial": {"kind": "points", "points": [[0, 0, 1], [1, 0, 0]], "weights": [1.0]},
      "numerics": {"representation": "lagrangian"}}, "initial.weights"),
    ({"initial": {"kind": "points", "n": 3, "seed": 1, "weights": [1.0, -1.0, 1.0]},
      "numerics": {"representation": "lagrangian"}}, "initial.weights"),
    ({"initial": {"kind": "points", "points": [[0, 1], [1, 0]]}, "numerics": {"representation": "lagrangian"}},
     "initial.points"),
]


@pytest.mark.parametrize("raw,key", BAD)
def test_bad_input_names_the_key(raw, key):
    with pytest.raises(InputError) as info:
        config.resolve(raw)
    message = str(info.value)
    assert key in message and "\n" not in message
    assert info.value.key is not None and key.strip("[]").startswith(info.value.key.strip("[]"))


@given(st.sampled_from([("model", "beta"), ("domain", "lmax"), ("time", "t_end"), ("time", "save_every"), ("initial", "amplitude")]),
       st.one_of(st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=2), st.just(math.nan)))
@settings(max_examples=60)
def test_wrong_types_are_input_errors(where, value):
    section, key = where
    with pytest.raises(InputError, match=f"{section}.{key}"):
        config.resolve({section: {key: value}})


@pytest.mark.parametrize("beta", [-30.0, 5.0, 100.0])
def test_lmax_too_small_for_beta_says_which_lmax_suffices(beta):
    """The suggested lmax is accepted, one less is not, and there ĥ_lmax+1 < 1e-8 ĥ_0."""
    with pytest.raises(InputError) as info:
        config.resolve({"model": {"beta": beta}, "domain": {"lmax": 2}})
    needed = int(re.search(r"use lmax >= (\d+)", str(info.value)).group(1))
    config.resolve({"model": {"beta": beta}, "domain": {"lmax": needed}})
    with pytest.raises(InputError):
        config.resolve({"model": {"beta": beta}, "domain": {"lmax": needed - 1}})
    h = np.abs(funk_hecke(needed, beta))
    assert h[needed] < 1e-8 * h[0] <= h[needed - 1]


def test_bad_toml_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[model\nname = 'SA'")
    with pytest.raises(InputError, match="not valid TOML"):
        config.load(path)
    with pytest.raises(InputError, match="does not exist"):
        config.load(tmp_path / "missing.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes("[model]\nname = 'SA' # Gr\xfc\xdfe\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        config.load(latin)


def test_zonal_needs_matrices_that_keep_densities_zonal():
    """Q^T K = bI and V = vI keep zonal densities zonal; a general V does not: refused, naming the model."""
    base = {"domain": {"kind": "zonal", "dim": 4, "lmax": 24}}
    config.resolve({**base, "model": {"beta": 3.0, "Q": (2 * np.eye(4)).tolist(), "V": (-np.eye(4)).tolist()}})
    with pytest.raises(InputError, match="zonal"):
        config.resolve({**base, "model": {"beta": 3.0, "V": np.diag([1.0, 2, 3, 4]).tolist()}})


@pytest.mark.parametrize("save_every,per_decade,log_from", [(0.5, 10, None), (0.25, 3, 20.0), (1.0, 40, None)])
def test_log_spaced_snapshots(save_every, per_decade, log_from):
    """Uniform steps save_every up to the switch, then a constant ratio 10^(1/k), t_end last."""
    t = config.resolve({"time": {"t_end": 1e4, "save_every": save_every, "save_per_decade": per_decade,
                                 **({} if log_from is None else {"save_log_from": log_from})}}).time.save_times()
    steps, ratios = np.diff(t), t[2:] / t[1:-1]
    uniform = np.isclose(steps, save_every)
    assert uniform[0] and t[0] == 0 and t[-1] == 1e4
    switch = int(np.argmin(uniform))  # first log step
    assert np.all(uniform[:switch]) and not np.any(uniform[switch + 1:-1])
    assert np.allclose(ratios[switch:-1], 10 ** (1 / per_decade))
    if log_from is not None:
        assert t[switch] == pytest.approx(log_from)
