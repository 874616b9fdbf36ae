"""Fixtures for the rate-model tests (fixed seeds, published parameters)."""

from __future__ import annotations

import numpy as np
import pytest

from neuromod.rate import WongWang2006


@pytest.fixture
def params() -> WongWang2006:
    """Published Wong & Wang (2006) parameters."""
    return WongWang2006()


@pytest.fixture
def seed() -> int:
    """Fixed seed of the stochastic tests."""
    return 20060125


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    """A seeded Generator for random test inputs."""
    return np.random.default_rng(seed)
