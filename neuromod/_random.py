"""Seeds: one way to turn a seed or a ``numpy.random.SeedSequence`` into an integer seed, one way to derive
a named child stream.

Every random stream of neuromod starts from one seed. Code that draws with numpy takes the ``SeedSequence``
itself (``numpy.random.default_rng(seed_sequence)``); simulators that take an integer (brian2, torch) get one
from :func:`int_seed`. Independent streams are derived by *name* with :func:`child`, so that adding, removing
or reordering the parts of a run (the model families of an experiment, say) changes no other part's stream.

Examples
--------
>>> import numpy as np
>>> root = np.random.SeedSequence(0)
>>> int_seed(child(root, "rate")) == int_seed(child(root, "rate"))
True
>>> int_seed(child(root, "rate")) != int_seed(child(root, "spiking"))
True
"""

from __future__ import annotations

import zlib

import numpy as np

from neuromod._checks import check_int

__all__ = ["SeedLike", "child", "int_seed", "seed_sequence"]

#: What neuromod functions accept as a seed: an int >= 0, a SeedSequence, or None (fresh entropy).
SeedLike = int | np.random.SeedSequence | None

_INT_HIGH = 2**31 - 1  # brian2 and torch both take seeds below 2**31


def seed_sequence(seed: SeedLike, name: str = "seed") -> np.random.SeedSequence:
    """`seed` as a SeedSequence of its own (an int must be >= 0; None draws fresh entropy, recorded in
    ``.entropy``).

    A SeedSequence passed in is copied, children spawned so far included: spawning from the result (as
    ``Generator.spawn`` does) leaves the caller's object alone, so passing the same SeedSequence twice gives
    the same streams twice.
    """
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(
            seed.entropy,
            spawn_key=seed.spawn_key,
            pool_size=seed.pool_size,
            n_children_spawned=seed.n_children_spawned,
        )
    if seed is not None:
        seed = check_int(name, seed, low=0)
    return np.random.SeedSequence(seed)


def int_seed(seed: SeedLike, name: str = "seed") -> int:
    """An integer seed in [0, 2**31 - 1) for simulators that take one (brian2, torch).

    The integer is the first draw of a ``numpy.random.Generator`` seeded with `seed`, so an int seed, the
    SeedSequence of that int and a derived child stream each give a well-mixed integer; None gives a fresh
    one.

    Raises
    ------
    TypeError, ValueError
        `seed` is not None, a SeedSequence or an int >= 0.
    """
    if not isinstance(seed, np.random.SeedSequence) and seed is not None:
        seed = check_int(name, seed, low=0)
    return int(np.random.default_rng(seed).integers(0, _INT_HIGH))


def child(parent: np.random.SeedSequence, *names: str) -> np.random.SeedSequence:
    """The child stream of `parent` named by `names` (a path, e.g. ``("family", "rate")``).

    The child depends on the parent's entropy and spawn key and on the names only: never on which other
    children exist or in what order they were made. Names are hashed (CRC-32) into the spawn key, behind a
    marker that keeps them apart from the integer keys of ``parent.spawn()``.
    """
    if not isinstance(parent, np.random.SeedSequence):
        raise TypeError(f"parent must be a numpy.random.SeedSequence, got {type(parent).__name__}")
    keys = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"stream names must be non-empty strings, got {name!r}")
        keys.append(zlib.crc32(name.encode()))
    # 2**32 is outside the range of CRC-32 values and of any realistic spawn() index
    return np.random.SeedSequence(
        parent.entropy, spawn_key=(*parent.spawn_key, 2**32, *keys), pool_size=parent.pool_size
    )
