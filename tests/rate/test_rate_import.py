"""Importing neuromod.rate leaves process-wide state alone (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

_SCRIPT = r"""
import json, logging, os, sys, warnings

import numba
import numpy as np
import xarray as xr

import neuromod  # the parent package; its own import effects are not neuromod.rate's


def snapshot():
    state = np.random.get_state()
    return {
        "numpy errstate": np.geterr(),
        "numpy printoptions": {k: repr(v) for k, v in np.get_printoptions().items()},
        "numpy global RNG": [state[1][:4].tolist(), int(state[2])],
        "warnings filters": [repr(f) for f in warnings.filters],
        "os.environ": dict(os.environ),
        "xarray options": {k: repr(v) for k, v in xr.get_options().items()},
        "numba config": [numba.config.THREADING_LAYER, numba.config.NUMBA_NUM_THREADS,
                         numba.config.DISABLE_JIT, numba.config.OPT],
        "root logger": [logging.getLogger().level, len(logging.getLogger().handlers)],
        "sys.path": list(sys.path),
        "recursion limit": sys.getrecursionlimit(),
        "cwd": os.getcwd(),
    }


before = snapshot()
import neuromod.rate  # noqa: E402
import neuromod.rate._kernel  # noqa: E402
after = snapshot()
print(json.dumps(sorted(k for k in before if before[k] != after[k])))
"""


def test_import_does_not_mutate_global_state() -> None:
    res = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
    changed = json.loads(res.stdout.strip().splitlines()[-1])
    assert changed == [], f"importing neuromod.rate changed: {changed}"
