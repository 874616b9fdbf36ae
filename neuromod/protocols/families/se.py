"""The SE family: the SE task model (sensory channels -> context SE gate with kinetics -> accumulators).

:class:`neuromod.gating.SETaskModel` expands each sensory population ``a+, a-, b+, b-`` into heterogeneous
channels, gates them with a :class:`~neuromod.gating.ContextSE` whose excitation also receives the cue and
whose gates relax with time constant ``tau_ms`` (the neuromodulator's release/uptake), and reads the gated
channels out into two leaky competing accumulators (Usher & McClelland 2001). The model is trained on cued
task switching (``neuromod.protocols.se_task.train_se_task_model``) or loaded from a file
(``model_path``) when the family is prepared.

The SE family gates by itself: the cue acts through the gate, not through a release pattern set from
outside, so it ignores the release pattern of a run; instead it *provides* one for the other families: its
per-context population gains divided by their largest value (:func:`se_release`). Relative drive 1 is the
task's stimulus at 0 % coherence (relative input 1 of a population); the levels of
``SEFamily.fi_curves`` mix the cue away from each population's own task, ``(1 - level) own + level
other`` (0: its feature is cued, 1: the other feature is).

References
----------
Hu, J., Shen, L. & Sun, G. (2018). Squeeze-and-Excitation Networks. CVPR.
Usher, M. & McClelland, J. L. (2001). The time course of perceptual choice: the leaky, competing
accumulator model. Psychol. Rev. 108:550-592.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from neuromod._memory import Footprint
from neuromod._random import int_seed
from neuromod.config import Config, param
from neuromod.protocols.families._common import (
    CUE_LEVEL,
    RELEVANT_CONTEXT,
    context_population,
    decision_dataset,
    gain_dataset,
)
from neuromod.protocols.family import FamilyBase, register_family
from neuromod.results import var_attrs as _attrs
from neuromod.tasks.switching import CONTEXTS, POPULATIONS, CuedTaskSwitching

if TYPE_CHECKING:
    from neuromod.gating.task_model import SETaskModel, SETaskModelConfig

__all__ = ["SE_RELEASE_MAPPING", "SEConfig", "SEFamily", "se_release"]

#: How SE population gains become release levels (stored as ``release_mapping`` with the result).
SE_RELEASE_MAPPING = (
    "release[context, population] = se_gain[context, population] / max over (context, population) of "
    "se_gain, where se_gain is neuromod.protocols.se_profile.population_gains (the mean steady-state SE gate "
    "of the population's channels): the population with the largest SE gain gets full release (1) and the "
    "ratios between populations and contexts are kept"
)


#: torch in the main process: 181 MB resident after ``import torch``, and its allocator's and threads' arenas
#: once a model ran (measured: 250 to 310 MB in all, with the training's memory).
_LIBRARY_BYTES = 250 * 2**20
#: Training (``neuromod.protocols.se_task.train_se_task_model``): autograd's graph over a batch of
#: closed-loop sessions (measured: 194 MB with the quick batch of 16 sessions, 282 MB with 32).
_TRAIN_BYTES = {True: 195 * 2**20, False: 285 * 2**20}
#: Python and torch objects of one trial of a session (5 small tensors and a list entry or two each).
_TRIAL_OBJECT_BYTES = 4096
#: The model's sizes when it is trained here: the defaults of SETaskModelConfig (dt_ms; channels =
#: channels_per_population * populations; populations), checked against it in tests/protocols/test_memory.py.
_MODEL_SIZES = (10.0, 32, 4)


def _model_sizes(config: SEConfig) -> tuple[float, int, int]:
    """(dt_ms, channels, populations) of the model a run uses: a saved model's (its JSON file, read without
    torch), else those of a model trained here."""
    if config.model_path:
        try:
            base = Path(config.model_path).expanduser()  # as se_files.se_model_files names the files
            base = base.with_suffix("") if base.suffix in (".pt", ".json") else base
            meta = json.loads(base.with_name(base.name + ".json").read_text())
            cfg = meta["config"]
            pops = int(cfg.get("populations", _MODEL_SIZES[2]))
            per = int(cfg.get("channels_per_population", _MODEL_SIZES[1] // _MODEL_SIZES[2]))
            return float(cfg.get("dt_ms", _MODEL_SIZES[0])), per * pops, pops
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # loading it (prepare) names what is wrong with the file
    return _MODEL_SIZES


@dataclasses.dataclass(frozen=True)
class SEConfig(Config):
    """Settings of the SE family (the ``[se]`` table of every experiment)."""

    model_path: str = param(
        "", doc="a model saved with neuromod.protocols.se_files.save_se_model ('' = train one)"
    )
    quick: bool = param(False, doc="a few-second training (weaker gate profile), for tests and demos")
    train_steps: int | None = param(None, low=1, doc="Adam steps (default: train_se_task_model's)")
    noise: bool = param(True, doc="sensory and accumulator noise")
    tau_ms: float = param(
        400.0, low=0.0, low_inclusive=False, doc="gate time constant the model is trained and run at (ms)"
    )
    readout_gain: float = param(
        0.2, low=0.0, low_inclusive=False, doc="weight of the fixed readout (calibrated, SETaskModelConfig)"
    )
    noise_sd: float = param(0.085, low=0.0, doc="accumulator noise (calibrated, SETaskModelConfig)")
    threshold: float = param(
        1.5, low=0.0, low_inclusive=False, doc="decision threshold (calibrated, SETaskModelConfig)"
    )
    gain_cost: float = param(0.05, low=0.0, doc="training: weight of the cost on the mean gate")

    def model_config(self, seed: int) -> SETaskModelConfig:
        """The :class:`~neuromod.gating.SETaskModelConfig` this family trains."""
        from neuromod.gating.task_model import SETaskModelConfig

        return SETaskModelConfig(
            seed=seed,
            tau_ms=self.tau_ms,
            readout_gain=self.readout_gain,
            noise_sd=self.noise_sd,
            threshold=self.threshold,
        )


def se_release(
    model: SETaskModel, *, seed: int = 0, coherences_pct: Sequence[float] | None = None
) -> xr.DataArray:
    """Release levels over (``context``, ``population``) from the SE model's per-context population gains.

    See :data:`SE_RELEASE_MAPPING`: the gains of ``neuromod.protocols.se_profile.population_gains``
    (averaged over stimuli with the unsigned coherences `coherences_pct`, default those of
    :class:`CuedTaskSwitching`) divided by their largest value.

    Raises
    ------
    ValueError
        The gains are all <= 0 (nothing to normalise by).
    """
    from neuromod.protocols.se_profile import population_gains

    gains = population_gains(model, seed=seed, coherences_pct=coherences_pct)
    top = float(gains.max())
    if not top > 0:
        raise ValueError(f"the SE model's population gains are all <= 0 (max {top!r}); cannot map to release")
    out = (gains / top).clip(0.0, 1.0)
    return out.assign_attrs(
        _attrs("1", "release level from the SE gate profile"),
        mapping=SE_RELEASE_MAPPING,
        se_gain=gains.values.reshape(-1).tolist(),
    )


@register_family
class SEFamily(FamilyBase):
    """Adapter of the SE task model (see the module docstring).

    ``SEFamily(config)`` trains or loads its model in :meth:`prepare`; ``SEFamily.from_model(model)`` uses
    a trained model as it is.
    """

    name = "se"
    config_cls = SEConfig
    description = "context SE gate with kinetics -> competing accumulators (neuromod.gating.SETaskModel)"
    reference = "relative drive 1 = the relative input of a population during a 0 % coherence stimulus"
    provides_release = True
    tau_field = "tau_ms"
    config: SEConfig

    def __init__(self, config: SEConfig | None = None) -> None:
        super().__init__(config)
        self.model: SETaskModel | None = None
        self.origin = "not prepared"

    @classmethod
    def from_model(cls, model: SETaskModel, config: SEConfig | None = None) -> SEFamily:
        """The family with an already trained model (``prepare`` then keeps it)."""
        from neuromod.gating.task_model import SETaskModel

        if not isinstance(model, SETaskModel):
            raise TypeError(f"model must be an SETaskModel, got {type(model).__name__}")
        family = cls(config)
        family.model, family.origin = model, "passed in"
        return family

    @classmethod
    def quick_config(cls, config: SEConfig) -> SEConfig:
        """A few-second training (a weaker gate profile)."""
        return config.replace(quick=True)

    @classmethod
    def memory_footprint(cls, config: SEConfig, operation: str, **sizes: Any) -> Footprint:
        """Memory of an operation (see :meth:`FamilyBase.memory_footprint`).

        ``prepare`` loads torch and trains the model (unless it loads one). ``run_trials`` runs the session
        at the model's step ``dt_ms`` and holds, at its peak, every trial's gates over its whole window
        (RCI + CSI + deadline, ``channels`` float32 per step; the window is cut at the response only when
        the trials are laid end to end), the accumulator windows and the session's gate trace; it keeps the
        gates every ``decimate_ms`` as doubles (``channel_gain`` and the population ``gain``). Gain curves
        run every (population, drive, repeat) through the model at once; the plain decision task runs
        every trial's window at once (about 5 float32 tensors over (trial, step, channel) live at once:
        measured 65 kB per trial at 101 steps).
        """
        from neuromod.protocols.memory import trial_ms, window_ms

        dt, channels, pops = _model_sizes(config)
        if operation == "prepare":
            training = 0 if config.model_path else _TRAIN_BYTES[config.quick]
            return Footprint(kept=_LIBRARY_BYTES, working=training)
        if operation == "run_trials":
            task = sizes["task"]
            n, max_rt = task.n_trials, task.timing["max_rt_ms"]
            step = max(1, round(sizes["decimate_ms"] / dt))
            steps = trial_ms(task) / dt  # of the session's time axis, per trial
            kept = n * (steps / step * (channels + pops) * 8 + 48)
            segments = window_ms(task) / dt * channels * 4 + max_rt / dt * 2 * 4
            return Footprint(kept=kept, working=n * (segments + steps * channels * 4 + _TRIAL_OBJECT_BYTES))
        if operation in ("fi_curves", "cue_gain_curves"):
            rows = pops * sizes["n_drives"] * sizes["n_repeats"]
            kept = 2 * rows * sizes.get("n_levels", 2) * 8  # response and gain
            return Footprint(kept=kept, working=rows * (pops * 8 + channels * 4 * 5))
        if operation == "decision":
            trials = sizes["n_coherences"] * sizes["n_trials"]
            steps = 2 + sizes["max_rt_ms"] / dt
            return Footprint(kept=trials * 16, working=trials * steps * channels * 4 * 5)
        return Footprint()

    # ------------------------------------------------------------------ the model
    def prepare(self, *, seed: np.random.SeedSequence, progress: bool = False) -> xr.Dataset:
        """Load (``model_path``) or train the model unless one was passed in; the training curve, if any."""
        from neuromod.protocols.se_files import load_se_model
        from neuromod.protocols.se_task import train_se_task_model

        if self.model is not None:
            return xr.Dataset()
        c = self.config
        if c.model_path:
            self.model = load_se_model(Path(c.model_path).expanduser())
            self.origin = f"loaded from {c.model_path}"
            return xr.Dataset()
        seed_int = int_seed(seed)
        self.model, history = train_se_task_model(
            c.model_config(seed_int),
            quick=c.quick,
            n_steps=c.train_steps,
            gain_cost=c.gain_cost,
            progress=progress,
            seed=seed_int,
        )
        self.origin = "trained here"
        out = xr.Dataset(
            {
                "train_loss": history["loss"].rename(step="train_step"),
                "train_accuracy": history["accuracy"].rename(step="train_step"),
            }
        )
        out["train_step"].attrs.update(_attrs("1", "Adam step of the SE training"))
        return out

    def _model(self) -> SETaskModel:
        if self.model is None:
            raise RuntimeError("the SE family has no model yet: call prepare() first")
        return self.model

    def provenance(self) -> dict[str, str]:
        import torch

        model = self.model
        return {
            "se_model_origin": self.origin,
            "se_model_json": "" if model is None else json.dumps(model.config.to_dict(), sort_keys=True),
            "torch_cpu_capability": str(torch.backends.cpu.get_cpu_capability()),  # its kernels' CPU path
        }

    # ------------------------------------------------------------------ operations
    def run_trials(
        self,
        task: CuedTaskSwitching,
        *,
        release: np.ndarray,
        tau_ms: float,
        decimate_ms: float,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        """The closed-loop session; `release` is not used. The model runs at the gate time constant it was
        trained at, which must be `tau_ms`."""
        from neuromod.protocols.se_session import run_se_session

        model = self._model()
        if abs(model.config.tau_ms - float(tau_ms)) > 1e-9 * max(1.0, float(tau_ms)):
            raise ValueError(
                f"tau_ms={tau_ms!r}: this SE model was trained at tau_ms={model.config.tau_ms!r} and runs "
                "only "
                "at the time constant it was trained at; train one at that tau (the se table's tau_ms)"
            )
        ds = run_se_session(
            model, task, seed=int_seed(seed), decimate_ms=decimate_ms, noise=self.config.noise
        )
        out = ds.drop_vars("correct").rename({"gain": "channel_gain"}).rename({"population_gain": "gain"})
        out["gain"].attrs.update(long_name="gain of each sensory population (mean SE gate of its channels)")
        return out.assign_attrs(tau_ms=float(model.config.tau_ms))

    def _population_sweep(
        self, drives: np.ndarray, levels: np.ndarray, n_repeats: int, seed: np.random.SeedSequence
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gated activity and gate of each population's channels over (population, level, drive, repeat):
        population p's input swept over `drives`, the others held at 1, the cue mixed `level` away from
        p's own task."""
        import torch

        model = self._model()
        n_pop, n_drive = len(POPULATIONS), len(drives)
        stim = np.ones((n_pop, n_drive, n_repeats, n_pop))
        for p in range(n_pop):
            stim[p, :, :, p] = drives[:, None]
        gen = torch.Generator().manual_seed(int_seed(seed))
        pop_of = model.channel_population.numpy()
        eye = np.eye(len(CONTEXTS))
        cues = {}  # the cue vector of (own context, level index), computed once per distinct vector
        for i, lam in enumerate(np.asarray(levels, dtype=float)):
            for own in range(len(CONTEXTS)):
                cues[own, i] = tuple((1.0 - lam) * eye[own] + lam * eye[1 - own])
        response = np.empty((n_pop, len(levels), n_drive, n_repeats))
        gain = np.empty_like(response)
        with torch.no_grad():
            x = model.sensory(
                torch.as_tensor(stim.reshape(-1, n_pop), dtype=torch.float32),
                noise=self.config.noise,
                generator=gen,
            )
            for vec in dict.fromkeys(cues.values()):
                cue = torch.tensor(vec, dtype=torch.float32).expand(x.shape[0], len(CONTEXTS))
                g = model.steady_gate(x, cue)
                y = (g * x).numpy().reshape(n_pop, n_drive, n_repeats, -1)
                gv = g.numpy().reshape(n_pop, n_drive, n_repeats, -1)
                for (own, i), v in cues.items():
                    if v != vec:
                        continue
                    for p in np.flatnonzero(RELEVANT_CONTEXT == own):
                        response[p, i] = y[p][..., pop_of == p].mean(-1)
                        gain[p, i] = gv[p][..., pop_of == p].mean(-1)
        return response, gain

    def fi_curves(
        self,
        *,
        drives: np.ndarray,
        levels: np.ndarray,
        n_repeats: int,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        drives = np.asarray(drives, dtype=float)
        response, gain = self._population_sweep(drives, levels, n_repeats, seed)
        dims = ("condition", "level", "drive", "repeat")
        return gain_dataset(
            response,
            conditions=list(POPULATIONS),
            condition_name="sensory population (its SE channels)",
            levels=levels,
            level_name="cue mixed away from the population's task",
            drives=drives,
            units="1",
            long_name="gated activity of the population's SE channels",
            extra={"gain": (dims, gain, _attrs("1", "SE gate (population mean)"))},
        )

    def cue_gain_curves(
        self,
        *,
        release: np.ndarray,
        drives: np.ndarray,
        n_repeats: int,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        drives = np.asarray(drives, dtype=float)
        response, gain = self._population_sweep(drives, np.array([0.0, 1.0]), n_repeats, seed)
        dims = ("condition", "level", "drive", "repeat")
        return gain_dataset(
            response,
            conditions=list(POPULATIONS),
            condition_name="sensory population",
            levels=np.array([0.0, 1.0]),
            level_name=CUE_LEVEL,
            drives=drives,
            units="1",
            long_name="gated activity of the population's SE channels",
            extra={"gain": (dims, gain, _attrs("1", "SE gate (population mean)"))},
        )

    def decision(
        self,
        coherences_pct: np.ndarray,
        *,
        n_trials: int,
        max_rt_ms: float,
        seed: np.random.SeedSequence,
        progress: bool = False,
    ) -> xr.Dataset:
        """Feature a at each coherence, feature b at 0 %, task a cued: every trial is its own session that
        starts with the gate in its steady state under cue a (prepared) and the stimulus one step later."""
        import torch

        model = self._model()
        dt = model.config.dt_ms
        coh = np.asarray(coherences_pct, dtype=float)
        batch = coh.size * n_trials
        f = np.repeat(coh / 100.0, n_trials)
        stim = np.stack([1 + f, 1 - f, np.ones_like(f), np.ones_like(f)], axis=1)[:, None, :]
        cue = np.zeros((batch, 1, len(CONTEXTS)), np.float32)
        cue[..., 0] = 1.0
        ones = torch.ones((batch, 1), dtype=torch.long)
        gen = torch.Generator().manual_seed(int_seed(seed))
        with torch.no_grad():
            state = model.initial_state(batch, torch.from_numpy(cue[:, 0]))
            out = model(
                torch.from_numpy(stim.astype(np.float32)),
                torch.from_numpy(cue),
                rci=0 * ones,
                csi=ones,
                max_rt=max(1, round(max_rt_ms / dt)),
                state=state,
                noise=self.config.noise,
                generator=gen,
            )
            choice, rt = model.decide(out)
        shape = (coh.size, n_trials)
        return decision_dataset(
            coh,
            choice[:, 0].numpy().astype(np.int8).reshape(shape),
            rt[:, 0].numpy().reshape(shape),
            {"params_json": json.dumps(model.config.to_dict(), sort_keys=True)},
        )

    def gain_profile(self, release: np.ndarray, coherences_pct: tuple[float, ...] = ()) -> np.ndarray:
        from neuromod.protocols.se_profile import population_gains

        return population_gains(self._model(), coherences_pct=coherences_pct or None).values

    def release_pattern(self, coherences_pct: tuple[float, ...]) -> xr.DataArray:
        rel = se_release(self._model(), coherences_pct=coherences_pct)
        return context_population(rel.values, "release level from the SE gate profile").assign_attrs(
            mapping=SE_RELEASE_MAPPING, se_gain=rel.attrs["se_gain"]
        )
