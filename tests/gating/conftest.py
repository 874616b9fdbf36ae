"""Fixtures for the gating tests: fixed seeds, small inputs."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _torch_seed_and_threads() -> Iterator[None]:
    """Every test starts from the same torch seed (module initialisation draws from it).

    The tensors here are tiny: one intra-op thread avoids thread-pool overhead on shared cores.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(20180601)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded torch generator for test inputs."""
    return torch.Generator().manual_seed(7)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy generator."""
    return np.random.default_rng(11)


@pytest.fixture
def image(gen: torch.Generator) -> torch.Tensor:
    """(batch=4, channels=16, 6, 7) float32 feature map."""
    return torch.randn(4, 16, 6, 7, generator=gen)
