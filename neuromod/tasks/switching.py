"""Cued task switching with bivalent stimuli.

Every stimulus has two features, ``a`` and ``b``, each a signed coherence in percent. A cue names the task
(context 0: judge feature ``a``; context 1: judge feature ``b``); the correct response is the sign of the
relevant feature (choice 1 for positive, choice 2 for negative). Trials form one continuous session, so a
model's modulator state carries over from trial to trial: this is what produces switch costs (Monsell 2003;
Meiran 1996).

Each trial occupies a fixed slot on the session's time axis::

    | cue period: csi_ms | stimulus (response window): max_rt_ms | response-stimulus interval: rsi_ms |
    ^ cue onset          ^ stimulus onset                         ^ stimulus offset

The cue (context signal) is on from cue onset to the next cue onset (the rule persists through the RSI). The
stimulus stays on for the whole response window; models read their response as the first threshold crossing
after stimulus onset, so trial onsets do not depend on any model's reaction time and all models see the same
input time series.

References
----------
Meiran, N. (1996). Reconfiguration of processing mode prior to task performance. J. Exp. Psychol. Learn.
Mem. Cogn. 22:1423-1442 (cued task switching with a variable cue-stimulus interval).
Monsell, S. (2003). Task switching. Trends Cogn. Sci. 7:134-140 (switch costs, preparation, residual cost).
Molano-Mazon, M. et al. (2022). NeuroGym: an open resource for developing and sharing neuroscience tasks
(the task-interface conventions followed here: ``new_trial``/``_new_trial``, timing dicts in ms).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from neuromod._checks import check_array, check_int, check_positive, check_range
from neuromod.results import var_attrs as _attrs

__all__ = ["CONTEXTS", "POPULATIONS", "CuedTaskSwitching"]

#: Sensory populations, in the order of the ``population`` dimension: preferring positive / negative values
#: of feature a, then of feature b.
POPULATIONS = ("a+", "a-", "b+", "b-")
#: Contexts (tasks): 0 judges feature a, 1 judges feature b.
CONTEXTS = ("a", "b")


class CuedTaskSwitching:
    """A session of cued task-switching trials.

    Parameters
    ----------
    coherences_pct : sequence of float
        Unsigned coherence magnitudes (%) in (0, 100]; each feature's magnitude is drawn uniformly from this
        set and its sign at random, independently for a and b (up to the congruency constraint).
    csi_ms : sequence of float
        The cue-stimulus intervals (ms); each trial draws one uniformly. Longer CSIs give more time to
        prepare (reconfigure gains) before the stimulus.
    rsi_ms : float
        Response-stimulus interval (ms): the gap after the response window before the next cue.
    p_switch : float
        Probability that a trial's context differs from the previous trial's.
    p_congruent : float
        Probability that the two features have the same sign (both tasks give the same answer).
    max_rt_ms : float
        Response window (ms): the stimulus is on this long; no threshold crossing in it = no response.
    n_trials : int
        Trials in the session.
    seed : int, optional
        Seed of the task's one random generator; same seed, same session.

    Examples
    --------
    >>> task = CuedTaskSwitching(n_trials=8, seed=1)
    >>> table = task.trials()
    >>> table.sizes["trial"], sorted(table.data_vars)[:3]
    (8, ['context', 'correct_choice', 'csi_ms'])
    >>> x = task.inputs(dt_ms=1.0)
    >>> x["stimulus"].dims
    ('time', 'population')
    """

    #: Default timing of a trial, in ms; copied and updated from the constructor's arguments.
    default_timing: Mapping[str, float] = {"rsi_ms": 500.0, "max_rt_ms": 2000.0}

    def __init__(
        self,
        *,
        coherences_pct: Sequence[float] = (3.2, 6.4, 12.8, 25.6, 51.2),
        csi_ms: Sequence[float] = (100.0, 300.0, 600.0, 1000.0),
        rsi_ms: float = 500.0,
        p_switch: float = 0.5,
        p_congruent: float = 0.5,
        max_rt_ms: float = 2000.0,
        n_trials: int = 200,
        seed: int | None = None,
    ) -> None:
        self.coherences_pct = tuple(
            float(c) for c in check_array("coherences_pct", coherences_pct, ndim=1, low=0.0, high=100.0)
        )
        if min(self.coherences_pct) <= 0:
            raise ValueError(f"coherences_pct={coherences_pct!r} must be > 0 (the sign is drawn per trial)")
        self.csi_ms = tuple(float(c) for c in check_array("csi_ms", csi_ms, ndim=1, low=0.0))
        self.timing = dict(self.default_timing)
        self.timing.update(
            rsi_ms=check_positive("rsi_ms", rsi_ms, allow_zero=True),
            max_rt_ms=check_positive("max_rt_ms", max_rt_ms),
        )
        self.p_switch = float(check_range("p_switch", p_switch, 0.0, 1.0))
        self.p_congruent = float(check_range("p_congruent", p_congruent, 0.0, 1.0))
        self.n_trials = check_int("n_trials", n_trials, low=1)
        if self.timing["rsi_ms"] == 0 and min(self.csi_ms) == 0:
            raise ValueError(
                f"rsi_ms=0 with a CSI of 0 in csi_ms={self.csi_ms!r} would merge consecutive stimuli; "
                "expected rsi_ms > 0 or CSIs > 0"
            )
        self.seed = None if seed is None else check_int("seed", seed, low=0)
        self.rng = np.random.default_rng(seed)
        self._rows: list[dict[str, Any]] = []
        self._table: xr.Dataset | None = None

    def __repr__(self) -> str:
        return (
            f"CuedTaskSwitching(n_trials={self.n_trials}, coherences_pct={self.coherences_pct}, "
            f"csi_ms={self.csi_ms}, rsi_ms={self.timing['rsi_ms']}, max_rt_ms={self.timing['max_rt_ms']}, "
            f"p_switch={self.p_switch}, p_congruent={self.p_congruent}, seed={self.seed})"
        )

    # -- trial generation --------------------------------------------------------------------------------
    def _new_trial(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        """Draw one trial's context, features and CSI (the hook a task variant overrides)."""
        rng = self.rng
        if previous is None:
            context = int(rng.integers(2))
        else:
            context = 1 - previous["context"] if rng.random() < self.p_switch else previous["context"]
        mags = rng.choice(self.coherences_pct, size=2)
        sign_a = 1.0 if rng.random() < 0.5 else -1.0
        sign_b = sign_a if rng.random() < self.p_congruent else -sign_a
        return {
            "context": context,
            "feature_a": sign_a * float(mags[0]),
            "feature_b": sign_b * float(mags[1]),
            "csi_ms": float(rng.choice(self.csi_ms)),
        }

    def new_trial(self) -> dict[str, Any]:
        """Append the next trial of the session and return it (bookkeeping around :meth:`_new_trial`)."""
        previous = self._rows[-1] if self._rows else None
        trial = self._new_trial(previous)
        relevant = trial["feature_a"] if trial["context"] == 0 else trial["feature_b"]
        cue_onset = previous["trial_end_ms"] if previous else 0.0
        stim_onset = cue_onset + trial["csi_ms"]
        trial.update(
            trial=len(self._rows),
            is_switch=previous is not None and trial["context"] != previous["context"],
            is_congruent=bool(np.sign(trial["feature_a"]) == np.sign(trial["feature_b"])),
            correct_choice=1 if relevant > 0 else 2,
            cue_onset_ms=cue_onset,
            stim_onset_ms=stim_onset,
            stim_offset_ms=stim_onset + self.timing["max_rt_ms"],
            trial_end_ms=stim_onset + self.timing["max_rt_ms"] + self.timing["rsi_ms"],
        )
        self._rows.append(trial)
        return trial

    def trials(self) -> xr.Dataset:
        """The trial table of the session (generated once, then returned again unchanged).

        Returns
        -------
        xarray.Dataset
            Over ``trial``: ``context`` (0 = task a, 1 = task b), ``feature_a``, ``feature_b`` (signed
            coherence, %), ``csi_ms``, ``is_switch`` (False on the first trial), ``is_first`` (the
            first trial, which has no preceding task: measures leave it out of switch/repeat splits),
            ``is_congruent``, ``correct_choice`` (1 = positive, 2 = negative relevant feature), and the
            event times ``cue_onset_ms``, ``stim_onset_ms``, ``stim_offset_ms``, ``trial_end_ms`` on the
            session's time axis. Task settings are in the attributes.
        """
        if self._table is None:
            while len(self._rows) < self.n_trials:
                self.new_trial()
            self._table = self._to_dataset(self._rows[: self.n_trials])
        return self._table.copy(deep=True)  # callers may edit it without touching the session

    def _to_dataset(self, rows: list[dict[str, Any]]) -> xr.Dataset:
        col = {key: np.array([r[key] for r in rows]) for key in rows[0]}
        flag = {"flag_values": [0, 1], "flag_meanings": "task_a task_b"}
        return xr.Dataset(
            {
                "context": (
                    "trial",
                    col["context"].astype(np.int8),
                    _attrs("1", "task context (cue)", **flag),
                ),
                "feature_a": ("trial", col["feature_a"], _attrs("%", "signed coherence of feature a")),
                "feature_b": ("trial", col["feature_b"], _attrs("%", "signed coherence of feature b")),
                "csi_ms": ("trial", col["csi_ms"], _attrs("ms", "cue-stimulus interval")),
                "is_switch": (
                    "trial",
                    col["is_switch"].astype(bool),
                    _attrs("1", "context differs from last trial"),
                ),
                "is_first": (
                    "trial",
                    col["trial"] == 0,
                    _attrs("1", "first trial of the session (neither switch nor repeat)"),
                ),
                "is_congruent": (
                    "trial",
                    col["is_congruent"].astype(bool),
                    _attrs("1", "features agree in sign"),
                ),
                "correct_choice": (
                    "trial",
                    col["correct_choice"].astype(np.int8),
                    _attrs("1", "correct choice (1: relevant feature > 0, 2: < 0)"),
                ),
                "cue_onset_ms": ("trial", col["cue_onset_ms"], _attrs("ms", "cue onset")),
                "stim_onset_ms": ("trial", col["stim_onset_ms"], _attrs("ms", "stimulus onset")),
                "stim_offset_ms": (
                    "trial",
                    col["stim_offset_ms"],
                    _attrs("ms", "end of the response window"),
                ),
                "trial_end_ms": (
                    "trial",
                    col["trial_end_ms"],
                    _attrs("ms", "end of the trial (next cue onset)"),
                ),
            },
            coords={"trial": ("trial", col["trial"], _attrs("1", "trial index"))},
            attrs={
                "task": "cued task switching",
                "coherences_pct": list(self.coherences_pct),
                "csi_set_ms": list(self.csi_ms),
                "rsi_ms": self.timing["rsi_ms"],
                "max_rt_ms": self.timing["max_rt_ms"],
                "p_switch": self.p_switch,
                "p_congruent": self.p_congruent,
                "seed": -1 if self.seed is None else int(self.seed),
            },
        )

    # -- input time series ---------------------------------------------------------------------------------
    def inputs(self, dt_ms: float) -> xr.Dataset:
        """Input time series of the whole session on a grid of step `dt_ms`.

        Event times are placed on the grid by rounding (``index = round(t / dt_ms)``), so any `dt_ms` works
        and every event falls on a step.

        Returns
        -------
        xarray.Dataset
            ``stimulus`` over (``time``, ``population``): the relative input to populations a+, a-, b+, b-
            (``1 +/- c/100`` during the stimulus, 0 otherwise; 1 is the mean input); ``cue`` over (``time``,
            ``context``): one-hot context signal from cue onset to the next cue; ``trial_index`` and
            ``stim_on`` over ``time``. ``time`` is in ms.
        """
        dt_ms = check_positive("dt_ms", dt_ms)
        table = self.trials()
        t_end = float(table["trial_end_ms"][-1])
        periods = [p for p in (*self.csi_ms, self.timing["max_rt_ms"], self.timing["rsi_ms"]) if p > 0]
        if dt_ms > min(periods):
            raise ValueError(
                f"dt_ms={dt_ms} is longer than the shortest task period ({min(periods)} ms); "
                "expected a step that resolves every period"
            )
        n_steps = round(t_end / dt_ms)

        def idx(t: xr.DataArray) -> np.ndarray:
            return np.rint(t.values / dt_ms).astype(np.int64)

        cue_on, stim_on, stim_off = (
            idx(table["cue_onset_ms"]),
            idx(table["stim_onset_ms"]),
            idx(table["stim_offset_ms"]),
        )
        ends = np.append(cue_on[1:], n_steps)
        trial_index = np.repeat(np.arange(table.sizes["trial"]), ends - cue_on)
        context = table["context"].values[trial_index]
        cue = np.zeros((n_steps, 2))
        cue[np.arange(n_steps), context] = 1.0
        on = np.zeros(n_steps, dtype=bool)
        levels = np.zeros((n_steps, 4))
        fa, fb = table["feature_a"].values / 100.0, table["feature_b"].values / 100.0
        for i in range(table.sizes["trial"]):
            sl = slice(stim_on[i], stim_off[i])
            on[sl] = True
            levels[sl] = (1 + fa[i], 1 - fa[i], 1 + fb[i], 1 - fb[i])
        time = np.arange(n_steps) * dt_ms
        return xr.Dataset(
            {
                "stimulus": (("time", "population"), levels, _attrs("1", "relative sensory input")),
                "cue": (("time", "context"), cue, _attrs("1", "context cue (one-hot)")),
                "trial_index": ("time", trial_index, _attrs("1", "trial of each time step")),
                "stim_on": ("time", on, _attrs("1", "stimulus on")),
            },
            coords={
                "time": ("time", time, _attrs("ms", "time")),
                "population": ("population", list(POPULATIONS), _attrs("1", "sensory population")),
                "context": ("context", list(CONTEXTS), _attrs("1", "task context")),
            },
            attrs={"dt_ms": dt_ms},
        )
