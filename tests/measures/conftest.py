"""A simulator of task-switching trials with known ground truth, for the measures' statistical tests."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

#: The task's default CSI set (ms).
CSI = (50.0, 150.0, 300.0, 600.0, 1200.0)
#: Ground truth of the simulated behaviour: RT switch cost A exp(-CSI / tau) + R (ms), RT noise SD, other
#: RT effects (ms) and the log-odds model of errors.
TRUTH = {
    "A": 80.0,
    "tau": 300.0,
    "R": 20.0,
    "sd": 60.0,
    "incongruent": 25.0,
    "context": 10.0,
    "error_base": -2.5,
    "error_A": 1.0,
    "error_R": 0.4,
    "error_incongruent": 0.8,
}


def table(n: int, seed: int, *, csi=CSI, coherences=(25.6,), p_switch: float = 0.5) -> xr.Dataset:
    """A trial table like the task's (context as a Markov chain, random signs, coherences and CSIs)."""
    rng = np.random.default_rng(seed)
    ctx = np.zeros(n, dtype=np.int8)
    ctx[0] = rng.integers(2)
    flips = rng.random(n) < p_switch
    for k in range(1, n):
        ctx[k] = 1 - ctx[k - 1] if flips[k] else ctx[k - 1]
    sign_a = rng.choice([-1.0, 1.0], n)
    sign_b = np.where(rng.random(n) < 0.5, sign_a, -sign_a)
    fa = sign_a * rng.choice(coherences, n)
    fb = sign_b * rng.choice(coherences, n)
    relevant = np.where(ctx == 0, fa, fb)
    switch = np.r_[False, ctx[1:] != ctx[:-1]]
    a = {"units": "1", "long_name": "x"}
    return xr.Dataset(
        {
            "context": ("trial", ctx, a),
            "cue": ("trial", ctx, a),
            "feature_a": ("trial", fa, {"units": "%", "long_name": "a"}),
            "feature_b": ("trial", fb, {"units": "%", "long_name": "b"}),
            "csi_ms": (
                "trial",
                rng.choice(np.asarray(csi, dtype=float), n),
                {"units": "ms", "long_name": "csi"},
            ),
            "rci_ms": ("trial", np.full(n, 300.0), {"units": "ms", "long_name": "rci"}),
            "is_switch": ("trial", switch, a),
            "is_cue_switch": ("trial", switch, a),
            "is_first": ("trial", np.arange(n) == 0, a),
            "is_congruent": ("trial", np.sign(fa) == np.sign(fb), a),
            "correct_choice": ("trial", np.where(relevant > 0, 1, 2).astype(np.int8), a),
        },
        coords={"trial": ("trial", np.arange(n), a)},
    )


def behave(
    t: xr.Dataset,
    seed: int,
    *,
    A: float = TRUTH["A"],
    tau: float = TRUTH["tau"],
    R: float = TRUTH["R"],
    sd: float = TRUTH["sd"],
    errors: bool = True,
    shared: np.ndarray | None = None,
) -> xr.Dataset:
    """One model's choices, correctness and RTs on table `t` with a known switch cost.

    RT = 450 + switch (A exp(-CSI/tau) + R) + 25 incongruent + 10 context + N(0, sd) (+ `shared`, a per-trial
    component common to models on the same trials). Errors: logit P = -2.5 + switch (1.0 exp(-CSI/tau) + 0.4)
    + 0.8 incongruent; a fifth of the errors are misses (choice 0, no RT).
    """
    rng = np.random.default_rng(seed)
    n = t.sizes["trial"]
    sw = t["is_switch"].values.astype(float)
    prep = np.exp(-t["csi_ms"].values / tau)
    inc = 1.0 - t["is_congruent"].values
    rt = 450 + sw * (A * prep + R) + TRUTH["incongruent"] * inc + TRUTH["context"] * t["context"].values
    rt = rt + rng.normal(0, sd, n) + (0.0 if shared is None else shared)
    if errors:
        logit = TRUTH["error_base"] + sw * (TRUTH["error_A"] * prep + TRUTH["error_R"])
        logit = logit + TRUTH["error_incongruent"] * inc
        error = rng.random(n) < 1 / (1 + np.exp(-logit))
    else:
        error = np.zeros(n, dtype=bool)
    right = t["correct_choice"].values
    choice = np.where(error, 3 - right, right).astype(np.int8)
    choice[error & (rng.random(n) < 0.2)] = 0
    rt = np.where(choice == 0, np.nan, rt)
    a = {"units": "1", "long_name": "x"}
    return xr.Dataset(
        {
            "choice": ("trial", choice, a),
            "correct": ("trial", (~error).astype(np.int8), a),
            "rt": ("trial", rt, {"units": "ms", "long_name": "rt"}),
        },
        coords={"trial": ("trial", np.arange(n), a)},
    )


def tree(t: xr.Dataset, **models: xr.Dataset) -> xr.DataTree:
    """The protocol's layout: the trial table at the root, one group per model."""
    return xr.DataTree.from_dict({"/": t, **{f"/{name}": ds for name, ds in models.items()}})


@pytest.fixture(scope="session")
def sim() -> SimpleNamespace:
    """The simulator: ``table``, ``behave``, ``tree``, ``TRUTH`` and ``CSI``."""
    return SimpleNamespace(table=table, behave=behave, tree=tree, TRUTH=TRUTH, CSI=CSI)
