"""Seeds of the spiking models: the integer seed of a brian2 run and the dataset attributes that record it."""

from __future__ import annotations

import numpy as np

from neuromod._random import SeedLike, int_seed

__all__ = ["brian_seed"]


def brian_seed(seed: SeedLike) -> tuple[int, dict[str, int | str]]:
    """The integer seed of a brian2 run (and of the hash noise), and the attributes that record `seed`.

    An int seed gives ``int_seed(seed)`` and ``{"seed": seed}``. A SeedSequence gives ``{"seed": -1}`` plus
    its entropy and spawn key as text (``seed_entropy``, ``seed_spawn_key``, space-separated): the run is
    repeated with ``numpy.random.SeedSequence(entropy, spawn_key=spawn_key)``. None draws fresh entropy,
    recorded the same way.

    Raises
    ------
    TypeError, ValueError
        `seed` is not None, a SeedSequence or an int >= 0.
    """
    if seed is None:
        seed = np.random.SeedSequence()
    bseed = int_seed(seed)
    if not isinstance(seed, np.random.SeedSequence):
        return bseed, {"seed": int(seed)}
    key = " ".join(str(k) for k in seed.spawn_key)
    return bseed, {"seed": -1, "seed_entropy": str(seed.entropy), "seed_spawn_key": key}
