"""Configuration validation: every bad input is one InputError line naming the key."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spherepde import config
from spherepde.errors import InputError


def test_defaults_fill_design_contract():
    cfg = config.resolve({})
    assert cfg["model"] == {"name": "SA", "beta": 9.0}
    assert cfg["domain"] == {"kind": "sphere", "lmax": 63}
    assert cfg["initial"] == {"kind": "perturbed_uniform", "amplitude": 1e-3, "seed": 0}
    assert cfg["time"]["t_end"] == 10.0 and cfg["time"]["save_every"] == 0.25 and cfg["time"]["rtol"] == 1e-8


def test_names_are_case_insensitive():
    cfg = config.resolve({"model": {"name": "usa", "beta": 1}, "domain": {"kind": "Sphere", "lmax": 16}})
    assert cfg["model"]["name"] == "USA" and cfg["domain"]["kind"] == "sphere" and cfg["model"]["beta"] == 1.0


def test_dump_and_reload_round_trip():
    cfg = config.resolve({"model": {"beta": -2.5}, "domain": {"lmax": 20},
                          "initial": {"kind": "perturbed_uniform", "modes": [[3, -1], [4, 0]], "amplitude": 1e-4},
                          "time": {"method": "rk4", "dt": 0.01}})
    assert config.loads(config.dumps(cfg)) == cfg


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
]


@pytest.mark.parametrize("raw,key", BAD)
def test_bad_input_names_the_key(raw, key):
    with pytest.raises(InputError) as info:
        config.resolve(raw)
    message = str(info.value)
    assert key in message and "\n" not in message


@given(st.sampled_from([("model", "beta"), ("domain", "lmax"), ("time", "t_end"), ("time", "save_every"), ("initial", "amplitude")]),
       st.one_of(st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=2), st.just(math.nan)))
@settings(max_examples=60, deadline=None)
def test_wrong_types_are_input_errors(where, value):
    section, key = where
    with pytest.raises(InputError, match=f"{section}.{key}"):
        config.resolve({section: {key: value}})


@pytest.mark.parametrize("beta", [-30.0, 5.0, 100.0])
def test_lmax_too_small_for_beta_says_which_lmax_suffices(beta):
    """The suggested lmax is accepted, one less is not, and there ĥ_lmax+1 < 1e-8 ĥ_0."""
    import re

    import numpy as np

    from spherepde.model import funk_hecke

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
