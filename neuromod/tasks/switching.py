"""Cued task switching with bivalent stimuli, in closed loop: the stimulus ends at the response.

Every stimulus has two features, ``a`` and ``b``, each a signed coherence in percent. A cue names the task
(context 0: judge feature ``a``; context 1: judge feature ``b``); the correct response is the sign of the
relevant feature (choice 1 for positive, choice 2 for negative). Trials form one continuous session, so a
model's modulator state carries over from trial to trial: this is what produces switch costs (Monsell 2003;
Meiran 1996).

Timeline of trial ``k`` (all intervals in ms)::

    response k-1 | response-cue interval: rci_ms | cue-stimulus interval: csi_ms | stimulus ... response k
                 ^ cue off, no stimulus          ^ cue k on                      ^ stimulus k on

The cue goes off and the stimulus ends at the response (or at the deadline ``max_rt_ms`` after stimulus
onset when there is none); the next cue comes ``rci_ms`` later, the next stimulus ``csi_ms`` after it, so
the response-stimulus interval is ``RSI = RCI + CSI`` whatever the reaction time. During the RCI no task is
cued, so a task set can decay passively (Meiran, Chorev & Sapir 2000). The session's time axis therefore
depends on the responses: :meth:`CuedTaskSwitching.trials` gives what is fixed in advance (contexts, cues,
stimuli, intervals), :meth:`CuedTaskSwitching.timeline` the event times that a given set of reaction times
implies, and each model runs the session in closed loop (its own responses set its own timeline).

With ``cues_per_task=2`` each task has two cues (cues 0, 1 name task a; 2, 3 task b), drawn at random on
every trial, so a cue switch without a task switch separates the cost of changing the cue from that of
changing the task (Logan & Bundesen 2003; Mayr & Kliegl 2003).

References
----------
Logan, G. D. & Bundesen, C. (2003). Clever homunculus: is there an endogenous act of control in the
explicit task-cuing procedure? J. Exp. Psychol. Hum. Percept. Perform. 29:575-599.
Mayr, U. & Kliegl, R. (2003). Differential effects of cue changes and task changes on task-set selection
costs. J. Exp. Psychol. Learn. Mem. Cogn. 29:362-372.
Meiran, N. (1996). Reconfiguration of processing mode prior to task performance. J. Exp. Psychol. Learn.
Mem. Cogn. 22:1423-1442 (cued task switching with a variable cue-stimulus interval).
Meiran, N., Chorev, Z. & Sapir, A. (2000). Component processes in task switching. Cogn. Psychol.
41:211-253 (the response-cue interval and passive decay of the task set).
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
    """A session of cued task-switching trials (closed loop: the stimulus ends at the response).

    Parameters
    ----------
    coherences_pct : sequence of float
        Unsigned coherence magnitudes (%) in (0, 100]; each feature's magnitude is drawn uniformly from this
        set and its sign at random, independently for a and b (up to the congruency constraint). One value
        is the fixed-difficulty design (every stimulus equally hard, so RT variance is the model's own).
    csi_ms : sequence of float
        The cue-stimulus intervals (ms); each trial draws one uniformly. Longer CSIs give more time to
        prepare (reconfigure gains) before the stimulus.
    rci_ms : float
        Response-cue interval (ms): from the response (or the deadline) to the next cue, with no cue on.
    p_switch : float
        Probability that a trial's context differs from the previous trial's.
    p_congruent : float
        Probability that the two features have the same sign (both tasks give the same answer).
    max_rt_ms : float
        Deadline (ms after stimulus onset): no threshold crossing before it = no response.
    cues_per_task : {1, 2}
        Cues that name each task; with 2, the cue of every trial is drawn at random among its task's two.
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
    >>> times = task.timeline(np.full(8, 500.0))  # every response 500 ms after stimulus onset
    >>> float(times["stim_onset_ms"][1] - times["response_ms"][0]) == task.rsi_ms(1)
    True
    >>> task.inputs(dt_ms=1.0, rt_ms=np.full(8, 500.0))["stimulus"].dims
    ('time', 'population')
    """

    #: Default timing of a trial, in ms; copied and updated from the constructor's arguments.
    default_timing: Mapping[str, float] = {"rci_ms": 100.0, "max_rt_ms": 2000.0}

    def __init__(
        self,
        *,
        coherences_pct: Sequence[float] = (3.2, 6.4, 12.8, 25.6, 51.2),
        csi_ms: Sequence[float] = (50.0, 150.0, 300.0, 600.0, 1200.0),
        rci_ms: float = 100.0,
        p_switch: float = 0.5,
        p_congruent: float = 0.5,
        max_rt_ms: float = 2000.0,
        cues_per_task: int = 1,
        n_trials: int = 200,
        seed: int | None = None,
    ) -> None:
        self.coherences_pct = tuple(
            float(c) for c in check_array("coherences_pct", coherences_pct, ndim=1, low=0.0, high=100.0)
        )
        if not self.coherences_pct or min(self.coherences_pct) <= 0:
            raise ValueError(
                f"coherences_pct={coherences_pct!r} must hold one value or more, each > 0 (the sign is "
                "drawn per trial)"
            )
        self.csi_ms = tuple(float(c) for c in check_array("csi_ms", csi_ms, ndim=1, low=0.0))
        if not self.csi_ms:
            raise ValueError("csi_ms=() must hold at least one cue-stimulus interval")
        self.timing = dict(self.default_timing)
        self.timing.update(
            rci_ms=check_positive("rci_ms", rci_ms, allow_zero=True),
            max_rt_ms=check_positive("max_rt_ms", max_rt_ms),
        )
        self.p_switch = float(check_range("p_switch", p_switch, 0.0, 1.0))
        self.p_congruent = float(check_range("p_congruent", p_congruent, 0.0, 1.0))
        self.cues_per_task = check_int("cues_per_task", cues_per_task, low=1, high=2)
        self.n_trials = check_int("n_trials", n_trials, low=1)
        if self.timing["rci_ms"] == 0 and min(self.csi_ms) == 0:
            raise ValueError(
                f"rci_ms=0 with a CSI of 0 in csi_ms={self.csi_ms!r} would start a stimulus at the previous "
                "response; expected rci_ms > 0 or CSIs > 0"
            )
        self.seed = None if seed is None else check_int("seed", seed, low=0)
        self.rng = np.random.default_rng(seed)
        self._rows: list[dict[str, Any]] = []
        self._table: xr.Dataset | None = None

    def __repr__(self) -> str:
        return (
            f"CuedTaskSwitching(n_trials={self.n_trials}, coherences_pct={self.coherences_pct}, "
            f"csi_ms={self.csi_ms}, rci_ms={self.timing['rci_ms']}, max_rt_ms={self.timing['max_rt_ms']}, "
            f"p_switch={self.p_switch}, p_congruent={self.p_congruent}, cues_per_task={self.cues_per_task}, "
            f"seed={self.seed})"
        )

    @property
    def n_cues(self) -> int:
        """Number of distinct cues (``cues_per_task`` per context)."""
        return self.cues_per_task * len(CONTEXTS)

    def rsi_ms(self, trial: int) -> float:
        """Response-stimulus interval (ms) before `trial`: ``rci_ms + csi_ms[trial]``."""
        trial = check_int("trial", trial, low=0, high=self.n_trials - 1)
        return self.timing["rci_ms"] + float(self.trials()["csi_ms"][trial])

    # -- trial generation --------------------------------------------------------------------------------
    def _new_trial(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        """Draw one trial's context, cue, features and CSI (the hook a task variant overrides)."""
        rng = self.rng
        if previous is None:
            context = int(rng.integers(2))
        else:
            context = 1 - previous["context"] if rng.random() < self.p_switch else previous["context"]
        mags = rng.choice(self.coherences_pct, size=2)
        sign_a = 1.0 if rng.random() < 0.5 else -1.0
        sign_b = sign_a if rng.random() < self.p_congruent else -sign_a
        cue = context * self.cues_per_task + (
            int(rng.integers(self.cues_per_task)) if self.cues_per_task > 1 else 0
        )
        return {
            "context": context,
            "cue": cue,
            "feature_a": sign_a * float(mags[0]),
            "feature_b": sign_b * float(mags[1]),
            "csi_ms": float(rng.choice(self.csi_ms)),
        }

    def new_trial(self) -> dict[str, Any]:
        """Append the next trial of the session and return it (bookkeeping around ``_new_trial``)."""
        previous = self._rows[-1] if self._rows else None
        trial = self._new_trial(previous)
        relevant = trial["feature_a"] if trial["context"] == 0 else trial["feature_b"]
        trial.update(
            trial=len(self._rows),
            rci_ms=self.timing["rci_ms"],
            is_switch=previous is not None and trial["context"] != previous["context"],
            is_cue_switch=previous is not None and trial["cue"] != previous["cue"],
            is_congruent=bool(np.sign(trial["feature_a"]) == np.sign(trial["feature_b"])),
            correct_choice=1 if relevant > 0 else 2,
        )
        self._rows.append(trial)
        return trial

    def trials(self) -> xr.Dataset:
        """The trial table of the session (generated once, then returned again unchanged).

        Returns
        -------
        xarray.Dataset
            Over ``trial``: ``context`` (0 = task a, 1 = task b), ``cue`` (``context * cues_per_task`` plus
            the cue's index within its task), ``feature_a``, ``feature_b`` (signed coherence, %),
            ``csi_ms``, ``rci_ms``, ``is_switch`` (task switch; False on the first trial), ``is_cue_switch``
            (the cue differs from the last trial's), ``is_first`` (the first trial, which has no preceding
            task: measures leave it out of switch/repeat splits), ``is_congruent``, ``correct_choice`` (1 =
            positive, 2 = negative relevant feature). Event times depend on the responses
            (:meth:`timeline`). Task settings are in the attributes.
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
                "context": ("trial", col["context"].astype(np.int8), _attrs("1", "task context", **flag)),
                "cue": (
                    "trial",
                    col["cue"].astype(np.int8),
                    _attrs("1", "cue shown (context * cues_per_task + k)"),
                ),
                "feature_a": ("trial", col["feature_a"], _attrs("%", "signed coherence of feature a")),
                "feature_b": ("trial", col["feature_b"], _attrs("%", "signed coherence of feature b")),
                "csi_ms": ("trial", col["csi_ms"], _attrs("ms", "cue-stimulus interval")),
                "rci_ms": ("trial", col["rci_ms"], _attrs("ms", "response-cue interval before the cue")),
                "is_switch": (
                    "trial",
                    col["is_switch"].astype(bool),
                    _attrs("1", "task differs from last trial"),
                ),
                "is_cue_switch": (
                    "trial",
                    col["is_cue_switch"].astype(bool),
                    _attrs("1", "cue differs from last trial"),
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
            },
            coords={"trial": ("trial", col["trial"], _attrs("1", "trial index"))},
            attrs={
                "task": "cued task switching",
                "coherences_pct": list(self.coherences_pct),
                "csi_set_ms": list(self.csi_ms),
                "rci_ms": self.timing["rci_ms"],
                "max_rt_ms": self.timing["max_rt_ms"],
                "p_switch": self.p_switch,
                "p_congruent": self.p_congruent,
                "cues_per_task": self.cues_per_task,
                "seed": -1 if self.seed is None else int(self.seed),
            },
        )

    # -- the closed loop -----------------------------------------------------------------------------------
    def steps(self, dt_ms: float) -> dict[str, np.ndarray | int]:
        """The session's intervals as whole steps of `dt_ms` (rounded): what a closed-loop runner needs.

        Returns
        -------
        dict
            ``rci`` and ``csi`` (int arrays over trials), ``max_rt`` (int, at least 1).

        Raises
        ------
        ValueError
            `dt_ms` longer than the deadline.
        """
        dt_ms = self._check_dt(dt_ms)
        table = self.trials()
        return {
            "rci": np.rint(table["rci_ms"].values / dt_ms).astype(np.int64),
            "csi": np.rint(table["csi_ms"].values / dt_ms).astype(np.int64),
            "max_rt": max(1, round(self.timing["max_rt_ms"] / dt_ms)),
        }

    def _check_dt(self, dt_ms: Any) -> float:
        dt_ms = check_positive("dt_ms", dt_ms)
        if dt_ms > self.timing["max_rt_ms"]:
            raise ValueError(
                f"dt_ms={dt_ms} is longer than max_rt_ms={self.timing['max_rt_ms']}; expected a step that "
                "resolves the response window"
            )
        return dt_ms

    def _check_rt(self, rt_ms: Any) -> np.ndarray:
        rt = check_array("rt_ms", rt_ms, finite=False, nonempty=False)
        if rt.shape != (self.n_trials,):
            raise ValueError(f"rt_ms has shape {rt.shape}, expected ({self.n_trials},): one RT per trial")
        ok = np.isnan(rt) | ((rt >= 0) & (rt <= self.timing["max_rt_ms"]))
        if not ok.all():
            bad = rt[~ok][:3].tolist()
            raise ValueError(
                f"rt_ms holds {bad!r}; expected RTs in [0, max_rt_ms={self.timing['max_rt_ms']}] or NaN "
                "(no response)"
            )
        return rt

    def timeline(self, rt_ms: Any) -> xr.Dataset:
        """The event times (ms on the session's axis) that the reaction times `rt_ms` imply.

        Trial ``k``'s cue comes ``rci_ms`` after the previous response (after time 0 for the first trial),
        its stimulus ``csi_ms`` after the cue; the stimulus and the cue end at the response, ``rt_ms[k]``
        after stimulus onset (at the deadline ``max_rt_ms`` for NaN, no response).

        Returns
        -------
        xarray.Dataset
            ``cue_onset_ms``, ``stim_onset_ms``, ``response_ms`` (the end of the stimulus and the cue) over
            ``trial``.

        Raises
        ------
        ValueError
            `rt_ms` of the wrong shape or outside [0, max_rt_ms].
        """
        rt = self._check_rt(rt_ms)
        table = self.trials()
        held = np.where(np.isnan(rt), self.timing["max_rt_ms"], rt)
        slot = table["rci_ms"].values + table["csi_ms"].values + held
        end = np.cumsum(slot)
        response = end
        stim_on = end - held
        cue_on = stim_on - table["csi_ms"].values
        return xr.Dataset(
            {
                "cue_onset_ms": ("trial", cue_on, _attrs("ms", "cue onset")),
                "stim_onset_ms": ("trial", stim_on, _attrs("ms", "stimulus onset")),
                "response_ms": ("trial", response, _attrs("ms", "response (end of stimulus and cue)")),
            },
            coords={"trial": table["trial"]},
        )

    def inputs(self, dt_ms: float, rt_ms: Any = None) -> xr.Dataset:
        """Input time series of the session on a grid of step `dt_ms`, for the reaction times `rt_ms`.

        Parameters
        ----------
        dt_ms : float
            Time step (ms), at most ``max_rt_ms``; events are placed on the grid by rounding.
        rt_ms : array-like, optional
            One reaction time per trial (ms from stimulus onset, NaN = no response); default: no responses
            (every stimulus stays on until the deadline).

        Returns
        -------
        xarray.Dataset
            ``stimulus`` over (``time``, ``population``): the relative input to populations a+, a-, b+, b-
            (``1 +/- c/100`` during the stimulus, 0 otherwise; 1 is the mean input); ``cue`` over (``time``,
            ``context``): the context signal, one-hot while a cue is on and uniform (``1 / 2`` each) during
            the response-cue interval, when no task is cued; ``trial_index`` and ``stim_on`` over
            ``time``. ``time`` is in ms.

        Raises
        ------
        ValueError, TypeError
            `dt_ms` not a number in (0, max_rt_ms], or `rt_ms` as refused by :meth:`timeline`.
        """
        dt_ms = self._check_dt(dt_ms)
        rt = np.full(self.n_trials, np.nan) if rt_ms is None else self._check_rt(rt_ms)
        table = self.trials()
        times = self.timeline(rt)

        def idx(name: str) -> np.ndarray:
            return np.rint(times[name].values / dt_ms).astype(np.int64)

        cue_on, stim_on, resp = idx("cue_onset_ms"), idx("stim_onset_ms"), idx("response_ms")
        n_steps = int(resp[-1])
        starts = np.r_[0, resp[:-1]]
        trial_index = np.repeat(np.arange(self.n_trials), resp - starts)
        cue = np.full((n_steps, len(CONTEXTS)), 1.0 / len(CONTEXTS))
        on = np.zeros(n_steps, dtype=bool)
        levels = np.zeros((n_steps, len(POPULATIONS)))
        fa, fb = table["feature_a"].values / 100.0, table["feature_b"].values / 100.0
        context = table["context"].values
        for i in range(self.n_trials):
            cue[cue_on[i] : resp[i]] = np.eye(len(CONTEXTS))[context[i]]
            on[stim_on[i] : resp[i]] = True
            levels[stim_on[i] : resp[i]] = (1 + fa[i], 1 - fa[i], 1 + fb[i], 1 - fb[i])
        time = np.arange(n_steps) * dt_ms
        return xr.Dataset(
            {
                "stimulus": (("time", "population"), levels, _attrs("1", "relative sensory input")),
                "cue": (("time", "context"), cue, _attrs("1", "context signal (one-hot cue; uniform: none)")),
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
