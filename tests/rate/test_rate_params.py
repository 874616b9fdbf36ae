"""WongWang2006 parameters: published values (Wong & Wang 2006, J Neurosci 26:1314) and checks."""

from __future__ import annotations

import dataclasses
import json

import pytest

from neuromod.rate import WongWang2006

PUBLISHED = {
    "a_hz_per_na": 270.0,
    "b_hz": 108.0,
    "d_s": 0.154,
    "gamma": 0.641,
    "tau_s_ms": 100.0,
    "tau_ampa_ms": 2.0,
    "j11_na": 0.2609,
    "j12_na": 0.0497,
    "j_ext_na_per_hz": 5.2e-4,
    "i0_na": 0.3255,
    "sigma_noise_na": 0.02,
    "mu0_hz": 30.0,
    "threshold_hz": 15.0,
}


def test_published_values(params: WongWang2006) -> None:
    assert dataclasses.asdict(params) == PUBLISHED


def test_frozen_and_citation(params: WongWang2006) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.gamma = 1.0  # type: ignore[misc]
    assert "Wong" in (WongWang2006.__doc__ or "") and "26(4):1314" in (WongWang2006.__doc__ or "")


def test_json_roundtrip(params: WongWang2006) -> None:
    assert WongWang2006(**json.loads(params.to_json())) == params


@pytest.mark.parametrize("coherence", [0.0, 12.8, -51.2])
def test_stimulus_currents(params: WongWang2006, coherence: float) -> None:
    i1, i2 = params.stimulus_na(coherence)
    base = 5.2e-4 * 30.0
    assert i1 == pytest.approx(base * (1 + coherence / 100), rel=1e-15)
    assert i2 == pytest.approx(base * (1 - coherence / 100), rel=1e-15)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("tau_s_ms", -1.0, r"tau_s_ms=-1\.0 must be a finite number > 0"),
        ("tau_ampa_ms", 0.0, r"tau_ampa_ms=0\.0 must be a finite number > 0"),
        ("sigma_noise_na", -0.01, r"sigma_noise_na=-0\.01 must be a finite number >= 0"),
        ("gamma", float("nan"), r"gamma=nan must be a finite number > 0"),
    ],
)
def test_bad_values(field: str, value: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WongWang2006(**{field: value})
