"""The ``task-switching`` experiment: the SE gate, a rate model and a spiking network on the same trials.

:func:`compare` is the package's main comparison (``neuromod run task-switching``):

1. train the SE task model on cued task switching (:func:`~neuromod.protocols.se_task.train_se_task_model`),
   or load one (:func:`~neuromod.protocols.se_task.load_se_model`);
2. map its per-context gate profile onto the release level of each sensory population
   (:func:`~neuromod.protocols.task_switching.se_release`: the population gains of
   :func:`~neuromod.protocols.se_task.population_gains` divided by their largest value);
3. run one trial table (:class:`~neuromod.tasks.CuedTaskSwitching`) on the SE model, the rate model and the
   spiking network, every model with the same modulator time constant ``tau_ms``
   (:func:`~neuromod.protocols.task_switching`);
4. measure each model's gain curves: the response of each sensory population against stimulus strength
   when its feature is cued (relevant) and when the other feature is cued (irrelevant), fitted and
   classified as in :mod:`neuromod.protocols.gain_curves`;
5. put the behaviour (accuracy, RT, switch cost by CSI, congruency effect, preparation curve) and the gain
   measures side by side along a ``model`` dimension.

The gain curves share one drive axis, the *relative drive* ``d``: stimulus strength relative to the task's
stimulus at 0 % coherence, from 0 to ``gain.drive_max`` (default 2; the task's stimuli span 0.49-1.51). For
the SE model ``d`` scales the input of the population measured while the other three stay at 1 (the gate
reads all channels through its squeeze, so it sees the change); for the rate model it is the sensory drive
``d * drive_na``; for the spiking network the injected current ``d * I_ref`` of an f-I sweep of the sensory
LIF cells (:func:`neuromod.spiking.fi_sweep`), where ``I_ref = sens_in_hz * sens_w_na * tau_AMPA`` is the
mean synaptic current of a sensory cell during the task's stimulus at 0 % coherence (0.325 nA at the
comparison's 1250 Hz). The sweep's current is constant plus the cells' own white noise, while in the task the
input is Poisson (at 1250 Hz its shot noise has an SD of about 0.145 nA), which smooths the curve near its
threshold: the sweep measures the mechanism, the session the circuit.

Level 0 of a curve is the population's relevant context, level 1 the irrelevant one, so ``gain_ratio`` is
gain(irrelevant) / gain(relevant). A curve is fitted well (``fit_ok = 1``) when ``fit_r2_mean`` (the R^2 of
the fit against the curve's mean over repeats) reaches ``gain.min_r2``, at least 3 drives give a response
above 5 % of the population's largest, and the fitted threshold lies inside the drive range. Otherwise its
``gain_ratio`` and ``threshold_shift`` are not reported and its ``modulation`` is "suppressed" when the
response stays below 5 % almost everywhere (e.g. a rate population whose release is so low that it never
crosses threshold: the strongest gating, with no curve left to fit) or "unfit".
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neuromod import registry, results
from neuromod.config import Config, ConfigError, param
from neuromod.measures.switching import (
    congruency_effect,
    fit_preparation,
    switch_cost,
    switching_behaviour,
)
from neuromod.plotting import format_interval
from neuromod.protocols.gain_curves import fit_and_classify
from neuromod.protocols.task_switching import (
    MODELS,
    RateSwitchConfig,
    SESwitchConfig,
    SpikingSwitchConfig,
    _int_seed,
    task_switching,
)
from neuromod.results import var_attrs as _attrs
from neuromod.tasks.switching import CONTEXTS, POPULATIONS, CuedTaskSwitching

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from neuromod.gating.task_model import SETaskModel

__all__ = [
    "CompareGainConfig",
    "TaskSwitchingConfig",
    "compare",
    "plot",
    "preparation_fit",
    "quick",
    "summarize",
]

ModelName = Literal["se", "rate", "spiking"]
Form = Literal["threshold_linear", "softplus", "naka_rushton"]

#: The context in which each population's feature is relevant (a+, a- in context a; b+, b- in context b).
RELEVANT_CONTEXT = np.array([0, 0, 1, 1])


# ------------------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CompareGainConfig(Config):
    """Gain curves of the comparison: each population's response against relative drive, cued vs not."""

    drive_max: float = param(
        2.0, low=0.0, low_inclusive=False, doc="largest relative drive (1 = the task's stimulus at 0 %)"
    )
    n_drives: int = param(17, low=5, doc="number of drive values from 0")
    n_repeats: int = param(8, low=1, doc="spiking neurons (noise realisations) per drive and level")
    se_repeats: int = param(128, low=1, doc="noisy SE input samples per drive (cheap: one batch)")
    spiking_duration_ms: float = param(1000.0, low=0.0, low_inclusive=False, doc="f-I sweep length (ms)")
    spiking_transient_ms: float = param(200.0, low=0.0, doc="initial part excluded from the rate (ms)")
    form: Form = "softplus"
    z: float = param(2.0, low=0.0, low_inclusive=False, doc="standard errors a change must exceed")
    gain_tolerance: float = param(0.1, low=0.0, low_inclusive=False, doc="smallest relative gain change")
    threshold_tolerance: float = param(
        0.05, low=0.0, low_inclusive=False, doc="smallest threshold shift, as a fraction of the drive range"
    )
    min_r2: float = param(0.9, low=0.0, high=1.0, doc="smallest R^2 for a fit to be reported")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.spiking_transient_ms >= self.spiking_duration_ms:
            raise ConfigError(
                f"spiking_transient_ms={self.spiking_transient_ms} must be shorter than "
                f"spiking_duration_ms={self.spiking_duration_ms}"
            )


@dataclasses.dataclass(frozen=True)
class TaskSwitchingConfig(Config):
    """The ``task-switching`` experiment (``neuromod run task-switching``): SE vs rate vs spiking.

    The task settings (``n_trials`` ... ``p_congruent``) define the one trial table that every model runs;
    ``tau_ms`` is the modulator time constant of every model (the SE gate kinetics are re-timed to it, the
    weights unchanged); ``release`` says where the rate and spiking models' per-context release pattern
    comes from (``"se"``: the trained SE gate profile; ``"default"``:
    :data:`~neuromod.protocols.task_switching.DEFAULT_RELEASE`). The nested ``rate.tau_ms`` and
    ``spiking.tau_ms`` are not used: ``tau_ms`` sets every model's.

    Spiking defaults (calibrated for this comparison): ``dt_ms = 0.2`` (the session is the run's main
    cost), and ``sens_in_hz = 1250`` Hz of sensory input at 0 % coherence instead of the 2000 Hz at which
    the unmodulated circuit was calibrated (:class:`neuromod.spiking.DecisionParams`). With the input-gain
    factor ``1 + m``, a fully released feature (factor 2) and a weakly released one then give each
    decision pool about the input the unmodulated circuit was calibrated with (2 x 2000 Hz): with the default
    SE profile, pool 1 gets ``1250 (2.0 + 1.09) = 3860`` Hz under cue a (a+ fully released, b+ barely) and
    ``1250 (1.45 + 1.73) = 3970`` Hz under cue b. Measured with the default SE profile: 1000 Hz leaves
    40 % of 128 trials without a response; on the default 192 trials, 1250 Hz gives accuracy 0.81 and mean
    RT 329 ms (SE 0.90 and 385 ms, rate 0.80 and 360 ms) and 1500 Hz a mean RT of 194 ms.
    """

    experiment: str = "task-switching"
    seed: int = param(0, low=0, doc="seed of every random stream in the run")
    models: tuple[ModelName, ...] = ("se", "rate", "spiking")
    tau_ms: float = param(400.0, low=0.0, doc="modulator / gate time constant of every model (ms)")
    n_trials: int = param(192, low=8, doc="trials in the shared session")
    csi_ms: tuple[float, ...] = param(
        (100.0, 300.0, 600.0, 1000.0), low=0.0, doc="cue-stimulus intervals (ms, whole ms)"
    )
    coherences: tuple[float, ...] = param(
        (3.2, 6.4, 12.8, 25.6, 51.2), low=0.0, low_inclusive=False, high=100.0, doc="coherences (%)"
    )
    rsi_ms: float = param(300.0, low=0.0, doc="response-stimulus interval (ms, whole ms)")
    max_rt_ms: float = param(800.0, low=0.0, low_inclusive=False, doc="response window (ms, whole ms)")
    p_switch: float = param(0.5, low=0.0, high=1.0, doc="probability of a task switch")
    p_congruent: float = param(0.5, low=0.0, high=1.0, doc="probability of a congruent stimulus")
    release: Literal["se", "default"] = "se"
    se_model_path: str = param(
        "", doc="a saved SE task model to load instead of training ('' = train; relative to the working dir)"
    )
    decimate_ms: float = param(20.0, low=0.0, low_inclusive=False, doc="sampling of the gain traces (ms)")
    se: SESwitchConfig = param(default_factory=SESwitchConfig)
    rate: RateSwitchConfig = param(default_factory=RateSwitchConfig)
    spiking: SpikingSwitchConfig = param(
        default_factory=lambda: SpikingSwitchConfig(sens_in_hz=1250.0, dt_ms=0.2)
    )
    gain: CompareGainConfig = param(default_factory=CompareGainConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.models or len(set(self.models)) != len(self.models):
            raise ConfigError(
                f"models={self.models!r} must name each of {MODELS} at most once, and one at least"
            )
        if len(self.csi_ms) < 1:
            raise ConfigError("csi_ms=() must hold at least one cue-stimulus interval")
        for key in ("rsi_ms", "max_rt_ms"):
            value = getattr(self, key)
            if abs(value - round(value)) > 1e-9:
                raise ConfigError(f"{key}={value} must be a whole number of ms (the spiking schedule's grid)")
        bad = [c for c in self.csi_ms if abs(c - round(c)) > 1e-9]
        if bad:
            raise ConfigError(f"csi_ms={self.csi_ms} must be whole numbers of ms; {bad} are not")
        try:
            self.task()
        except (TypeError, ValueError) as err:
            raise ConfigError(str(err)) from None

    def task(self, seed: int | None = None) -> CuedTaskSwitching:
        """The session every model runs (its trial table is drawn from `seed`)."""
        return CuedTaskSwitching(
            coherences=self.coherences,
            csi_ms=self.csi_ms,
            rsi_ms=self.rsi_ms,
            p_switch=self.p_switch,
            p_congruent=self.p_congruent,
            max_rt_ms=self.max_rt_ms,
            n_trials=self.n_trials,
            seed=seed,
        )


# ------------------------------------------------------------------------------------------------------
# gain curves
# ------------------------------------------------------------------------------------------------------
def _levels_m(release: np.ndarray) -> np.ndarray:
    """Modulator level of (population, level): level 0 = relevant context, 1 = irrelevant."""
    pops = np.arange(len(POPULATIONS))
    return np.stack([release[RELEVANT_CONTEXT, pops], release[1 - RELEVANT_CONTEXT, pops]], axis=1)


def _gain_dataset(
    response: np.ndarray, drives: np.ndarray, units: str, long_name: str, extra: dict[str, Any]
) -> xr.Dataset:
    """response (population, level, drive, repeat) as a gain-curves dataset."""
    dims = ("condition", "level", "drive", "repeat")
    return xr.Dataset(
        {"response": (dims, response, _attrs(units, long_name)), **extra},
        coords={
            "condition": ("condition", list(POPULATIONS), _attrs("1", "sensory population")),
            "level": (
                "level",
                np.array([0.0, 1.0]),
                _attrs("1", "cue: 0 = the population's feature is relevant, 1 = irrelevant"),
            ),
            "drive": (
                "drive",
                drives,
                _attrs("1", "relative drive (1 = the task's stimulus at 0 % coherence)"),
            ),
            "repeat": ("repeat", np.arange(response.shape[-1]), _attrs("1", "noise sample")),
        },
    )


def _se_gain_curves(
    config: TaskSwitchingConfig, model: SETaskModel, release: np.ndarray, seed: int
) -> xr.Dataset:
    import torch

    g = config.gain
    drives = np.linspace(0.0, g.drive_max, g.n_drives)
    n_pop, n_rep = len(POPULATIONS), g.se_repeats
    # population p's input swept, the others held at the task's stimulus (relative drive 1)
    stim = np.ones((n_pop, g.n_drives, n_rep, n_pop))
    for p in range(n_pop):
        stim[p, :, :, p] = drives[:, None]
    gen = torch.Generator().manual_seed(seed)
    pop_of = model.channel_population.numpy()
    gated = np.empty((len(CONTEXTS), g.n_drives, n_rep, n_pop))  # (context, drive, repeat, swept pop)
    gates = np.empty_like(gated)
    with torch.no_grad():
        x = model.sensory(
            torch.as_tensor(stim.reshape(-1, n_pop), dtype=torch.float32),
            noise=config.se.noise,
            generator=gen,
        )
        for k in range(len(CONTEXTS)):
            cue = torch.zeros(x.shape[0], len(CONTEXTS))
            cue[:, k] = 1.0
            gate = model.se.excite(x, cue).gain
            y = (gate * x).numpy().reshape(n_pop, g.n_drives, n_rep, -1)
            gv = gate.numpy().reshape(n_pop, g.n_drives, n_rep, -1)
            for p in range(n_pop):
                gated[k, ..., p] = y[p][..., pop_of == p].mean(-1)
                gates[k, ..., p] = gv[p][..., pop_of == p].mean(-1)
    pops = np.arange(n_pop)
    ctx = np.stack([RELEVANT_CONTEXT, 1 - RELEVANT_CONTEXT], axis=1)  # (pop, level)
    response = gated[ctx, :, :, pops[:, None]]  # (pop, level, drive, repeat)
    gain = gates[ctx, :, :, pops[:, None]]
    return _gain_dataset(
        response,
        drives,
        "1",
        "gated activity of the population's SE channels",
        {"gain": (("condition", "level", "drive", "repeat"), gain, _attrs("1", "SE gate (population mean)"))},
    )


def _rate_gain_curves(config: TaskSwitchingConfig, release: np.ndarray, seed: int) -> xr.Dataset:
    from neuromod.rate import f_i_curves

    c, g = config.rate, config.gain
    drives = np.linspace(0.0, g.drive_max, g.n_drives)
    m = _levels_m(release)
    da = f_i_curves(drives * c.drive_na, m.reshape(-1), transfer=c.transfer(), modulation=c.modulation())
    response = da.values.reshape(*m.shape, g.n_drives)[..., None]
    ds = _gain_dataset(response, drives, "Hz", "steady-state rate of the sensory population", {})
    return ds.assign_coords(
        modulator=(("condition", "level"), m, _attrs("1", "modulator level m (release)"))
    ).assign_attrs(drive_unit_na=c.drive_na)


def _spiking_gain_curves(config: TaskSwitchingConfig, release: np.ndarray, seed: int) -> xr.Dataset:
    from neuromod.spiking import DecisionParams, ModulationParams, fi_sweep

    c, g = config.spiking, config.gain
    p = DecisionParams(sens_in_hz=c.sens_in_hz)
    i_ref = p.sens_in_hz * p.sens_w_na * p.tau_ampa_ms * 1e-3  # nA: mean synaptic current at 0 % coherence
    drives = np.linspace(0.0, g.drive_max, g.n_drives)
    m = np.clip(_levels_m(release), 0.0, 1.0)
    levels = np.unique(m)
    ds = fi_sweep(
        c.mechanism,
        levels,
        drives * i_ref,
        modulation=ModulationParams(gain_max=c.gain_max),
        n_repeats=g.n_repeats,
        duration_ms=g.spiking_duration_ms,
        transient_ms=g.spiking_transient_ms,
        dt_ms=c.dt_ms,
        seed=seed,
        target=c.target,
    )
    idx = np.searchsorted(levels, m)
    response = ds["rate"].values[idx]  # (pop, level, drive, repeat)
    out = _gain_dataset(response, drives, "Hz", "firing rate of a sensory LIF cell", {})
    return out.assign_coords(
        modulator=(("condition", "level"), m, _attrs("1", "modulator level m (release)"))
    ).assign_attrs(drive_unit_na=i_ref, mechanism=c.mechanism)


def _mask_unfit(ds: xr.Dataset, min_r2: float) -> xr.Dataset:
    """Mark curves the fitted form does not describe, and drop the classification that relies on them.

    The test is on the mean curve (over repeats), so that trial noise does not count against the form:
    ``fit_r2_mean`` is the fraction of the mean curve's variance the fit explains.
    """
    from neuromod.measures.gain import gain_curve

    form = ds.attrs["fit_form"]
    drive = ds["drive"].values
    mean = ds["response"].mean("repeat")
    params = [k for k in ds.data_vars if k.startswith("fit_") and not k.endswith("_se") and k != "fit_r2"]
    r2 = np.full((ds.sizes["condition"], ds.sizes["level"]), np.nan)
    for i in range(ds.sizes["condition"]):
        for j in range(ds.sizes["level"]):
            y = mean.values[i, j]
            fit = {k[4:]: float(ds[k].values[i, j]) for k in params}
            if np.all(np.isfinite(list(fit.values()))):
                pred = gain_curve(drive, fit, form=form)
                total = float(((y - y.mean()) ** 2).sum())
                r2[i, j] = 1 - float(((y - pred) ** 2).sum()) / total if total > 0 else np.nan
    r2_mean = xr.DataArray(
        r2, dims=("condition", "level"), coords={"condition": ds["condition"], "level": ds["level"]}
    )
    top = mean.max(("level", "drive"))
    active = (mean > 0.05 * top).sum("drive")
    inside = ds["fit_threshold"] <= float(drive.max())  # beyond the range the fit only extrapolates a tail
    ok = (r2_mean >= min_r2) & (active >= 3) & inside
    reference = ok.sel(level=0.0)  # a comparison needs the reference curve
    both = ok & reference
    suppressed = (active < 3) & reference  # below 5 % of the cued response almost everywhere
    out = ds.copy()
    for name in ("gain_ratio", "gain_ratio_se", "threshold_shift", "threshold_shift_se"):
        out[name] = ds[name].where(both).assign_attrs(ds[name].attrs)
    kind = xr.where(suppressed, "suppressed", ds["modulation"].where(both, "unfit"))
    out["modulation"] = kind.astype(str).assign_attrs(
        ds["modulation"].attrs,
        long_name="modulation class (none/multiplicative/divisive/additive/mixed; suppressed: the response "
        "stays below 5 % of the population's largest; unfit: the fitted form does not describe the curve)",
    )
    out["fit_r2_mean"] = r2_mean.assign_attrs(
        _attrs("1", "R^2 of the fit against the mean curve over repeats")
    )
    out["fit_ok"] = ok.astype(np.int8).assign_attrs(
        _attrs(
            "1",
            f"fit describes the mean curve (R^2 >= {min_r2:g}), >= 3 drives give a response (> 5 % of the "
            "population's largest) and the fitted threshold lies inside the drive range",
        )
    )
    return out.assign_attrs(min_r2=min_r2)


def _gain_profile(
    name: str, config: TaskSwitchingConfig, release: np.ndarray, se_gain: np.ndarray | None
) -> np.ndarray:
    """Steady-state gain applied to each (context, population); NaN where the mechanism has none."""
    if name == "se":
        assert se_gain is not None  # the SE model runs, so it exists
        return se_gain
    if name == "rate":
        if config.rate.mode == "threshold":
            return np.full_like(release, np.nan)
        return np.asarray(config.rate.modulation().gain(release), dtype=float)
    from neuromod.spiking import ModulationParams, input_gain_factor

    c = config.spiking
    if c.mechanism != "input_gain":
        return np.full_like(release, np.nan)
    mp = ModulationParams(gain_max=c.gain_max)
    return input_gain_factor(np.clip(release, 0.0, 1.0).reshape(-1), modulation=mp).reshape(release.shape)


# ------------------------------------------------------------------------------------------------------
# summary
# ------------------------------------------------------------------------------------------------------
def _renamed(ds: xr.Dataset, names: dict[str, str]) -> dict[str, xr.DataArray]:
    out = {}
    for old, new in names.items():
        for suffix in ("", "_low", "_high", "_se"):
            if old + suffix in ds:
                out[new + suffix] = ds[old + suffix]
    return out


def _summary(
    tree: xr.DataTree,
    gains: dict[str, xr.Dataset],
    profiles: dict[str, np.ndarray],
    release: np.ndarray,
    models: tuple[str, ...],
) -> xr.Dataset:
    """The side-by-side measures along ``model``."""
    one = len(models) == 1

    def by_model(ds: xr.Dataset) -> xr.Dataset:
        # the measures add a model dimension only for trees with several models
        if one:
            ds = ds.expand_dims(model=list(models))
        return ds.drop_vars("model")

    pooled = by_model(switching_behaviour(tree, by=()))
    cond = by_model(switching_behaviour(tree, by=("is_switch", "is_congruent")))
    cost = by_model(switch_cost(tree, by=()))
    cost_csi = by_model(switch_cost(tree, by=("csi_ms",)))
    cong = by_model(congruency_effect(tree, by=()))
    prep_rt = fit_preparation(cost_csi, variable="rt_cost")
    prep_err = fit_preparation(cost_csi, variable="error_cost")
    data: dict[str, Any] = {}
    data.update(_renamed(pooled, {k: k for k in ("accuracy", "mean_rt", "p_response")}))
    data["n_trials"] = pooled["n_trials"]
    data.update(_renamed(cond, {"accuracy": "accuracy_by_condition", "mean_rt": "mean_rt_by_condition"}))
    data.update(_renamed(cost, {"rt_cost": "rt_switch_cost", "error_cost": "error_switch_cost"}))
    data.update(
        _renamed(cost_csi, {"rt_cost": "rt_switch_cost_by_csi", "error_cost": "error_switch_cost_by_csi"})
    )
    data.update(
        _renamed(cong, {"rt_effect": "rt_congruency_effect", "error_effect": "error_congruency_effect"})
    )
    for prefix, fit in (("rt", prep_rt), ("error", prep_err)):
        for name in ("amplitude", "tau_eff", "residual"):
            for key in (name, f"{name}_se"):
                long_name = f"{fit[key].attrs['long_name']} (fit of the {prefix} switch cost)"
                data[f"{prefix}_prep_{key}"] = fit[key].assign_attrs(long_name=long_name)
        data[f"{prefix}_prep_identified"] = fit["identified"].assign_attrs(
            long_name=f"{fit['identified'].attrs['long_name']} ({prefix} switch cost)"
        )
    out = xr.Dataset(data)
    # gain measures, relative to each model's relevant context
    ratio = np.stack([gains[m]["gain_ratio"].sel(level=1.0).values for m in models])
    ratio_se = np.stack([gains[m]["gain_ratio_se"].sel(level=1.0).values for m in models])
    shift = np.stack([gains[m]["threshold_shift"].sel(level=1.0).values for m in models])
    shift_se = np.stack([gains[m]["threshold_shift_se"].sel(level=1.0).values for m in models])
    kind = np.stack([gains[m]["modulation"].sel(level=1.0).values.astype(str) for m in models])
    profile = np.stack([profiles[m] for m in models])
    top = np.nanmax(profile.reshape(len(models), -1), axis=1)
    dims_g = ("model", "population")
    dims_p = ("model", "context", "population")
    out = out.assign(
        gain_ratio=(dims_g, ratio, _attrs("1", "f-I gain ratio, irrelevant / relevant cue")),
        gain_ratio_se=(dims_g, ratio_se, _attrs("1", "f-I gain ratio, standard error")),
        threshold_shift=(
            dims_g,
            shift,
            _attrs("1", "f-I threshold shift, irrelevant minus relevant cue (relative drive)"),
        ),
        threshold_shift_se=(dims_g, shift_se, _attrs("1", "f-I threshold shift, standard error")),
        modulation=(dims_g, kind, _attrs("1", "class of the cue's effect on the f-I curve")),
        gain_profile=(dims_p, profile, _attrs("1", "steady-state gain of each population per context")),
        relative_gain_profile=(
            dims_p,
            profile / top[:, None, None],
            _attrs("1", "steady-state gain / the model's largest (the profile's shape)"),
        ),
    )
    out = out.assign_coords(
        model=("model", list(models), _attrs("1", "model")),
        context=("context", list(CONTEXTS), _attrs("1", "task context (cued feature)")),
        population=("population", list(POPULATIONS), _attrs("1", "sensory population")),
    )
    out["release"] = (
        ("context", "population"),
        release,
        _attrs("1", "modulator release level per context and population (rate, spiking)"),
    )
    return out.assign_attrs(
        rt_trials="correct responses",
        interval_level=0.95,
        first_trial="the session's first trial is left out of switch/repeat splits",
    )


# ------------------------------------------------------------------------------------------------------
# protocol
# ------------------------------------------------------------------------------------------------------
def compare(
    config: TaskSwitchingConfig | None = None,
    *,
    se_model: SETaskModel | None = None,
    progress: bool = False,
) -> xr.DataTree:
    """Run the comparison: SE gate, rate model and spiking network on one cued task-switching session.

    Parameters
    ----------
    config : TaskSwitchingConfig, optional
        Defaults to ``TaskSwitchingConfig()`` (the ``neuromod run task-switching`` defaults).
    se_model : SETaskModel, optional
        A trained SE task model; otherwise ``config.se_model_path`` is loaded, or a model is trained with
        ``config.se`` (``quick``, ``train_steps``) and a seed from ``config.seed``.
    progress : bool
        Show progress bars (training, each model's session, the gain curves).

    Returns
    -------
    xarray.DataTree
        * root: the trial table (``context``, ``feature_a``, ``csi_ms``, ``is_switch``, ...) and provenance
          (``config_json`` is the resolved :class:`TaskSwitchingConfig`);
        * ``se``, ``rate``, ``spiking`` (those in ``config.models``): per-trial ``choice``, ``correct``,
          ``rt``, gain and modulator traces (see :func:`~neuromod.protocols.task_switching`); ``se`` also
          has the training curve (``train_loss``, ``train_accuracy`` over ``train_step``) when trained
          here; each has a ``gain_curves`` child: ``response`` over (``condition`` = population,
          ``level`` = cue relevant 0 / irrelevant 1, ``drive``, ``repeat``), the fits (``fit_*``, ``fit_ok``)
          and the classification;
        * ``summary``: along ``model``: ``accuracy``, ``mean_rt``, ``p_response``,
          ``accuracy_by_condition`` and ``mean_rt_by_condition`` over (``switch``, ``congruent``),
          ``rt_switch_cost``/``error_switch_cost`` (pooled and ``_by_csi``), ``rt_congruency_effect``,
          ``error_congruency_effect`` (all with 95 % bounds ``_low``/``_high``), the preparation fits
          ``rt_prep_*``/``error_prep_*`` (``amplitude``, ``tau_eff``, ``residual``, with ``_se``),
          ``gain_ratio``, ``threshold_shift`` and ``modulation`` per population, and ``gain_profile``
          (with ``relative_gain_profile``) over (``context``, ``population``); ``release`` over
          (``context``, ``population``).

        No wall-clock time is stored: the same config gives identical data and attributes (up to the
        ``created``/``history`` stamps; :func:`neuromod.results.without_timestamps`).

    Raises
    ------
    TypeError, ValueError
        Bad arguments, or a saved SE model that cannot be loaded, before any model runs.
    FileNotFoundError
        ``config.se_model_path`` names no saved model (checked before any model runs).

    Examples
    --------
    >>> tree = compare(quick(TaskSwitchingConfig(models=("se", "rate"))))  # seconds (no spiking network)
    >>> tree["summary"]["model"].values.tolist(), sorted(tree["rate"].children)
    (['se', 'rate'], ['gain_curves'])
    """
    from neuromod.protocols.se_task import load_se_model, population_gains, train_se_task_model

    config = TaskSwitchingConfig() if config is None else config
    if not isinstance(config, TaskSwitchingConfig):
        raise TypeError(f"config must be a TaskSwitchingConfig, got {type(config).__name__}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {progress!r}")
    origin = "passed in"
    if se_model is not None:
        from neuromod.gating.task_model import SETaskModel

        if not isinstance(se_model, SETaskModel):
            raise TypeError(f"se_model must be an SETaskModel, got {type(se_model).__name__}")
    elif config.se_model_path:
        se_model = load_se_model(Path(config.se_model_path).expanduser())
        origin = f"loaded from {config.se_model_path}"
    task_ss, run_ss, train_ss, gain_ss = np.random.SeedSequence(config.seed).spawn(4)
    task = config.task(seed=_int_seed(task_ss))

    history = None
    needs_se = "se" in config.models or config.release == "se"
    if se_model is None and needs_se:
        se_model, history = train_se_task_model(
            quick=config.se.quick, n_steps=config.se.train_steps, progress=progress, seed=_int_seed(train_ss)
        )
        origin = "trained here"

    tree = task_switching(
        task,
        models=config.models,
        tau_ms=config.tau_ms,
        seed=_int_seed(run_ss),
        release="se" if config.release == "se" else None,
        se_model=se_model,
        rate=config.rate,
        spiking=config.spiking,
        se=config.se,
        decimate_ms=config.decimate_ms,
        progress=progress,
    )
    release = np.asarray(json.loads(tree.attrs["release_mapping_json"])["release"], dtype=float)
    se_gain = None if se_model is None else population_gains(se_model, coherences=task.coherences).values

    builders: dict[str, Callable[[int], xr.Dataset]] = {
        "se": lambda s: _se_gain_curves(config, se_model, release, s),
        "rate": lambda s: _rate_gain_curves(config, release, s),
        "spiking": lambda s: _spiking_gain_curves(config, release, s),
    }
    streams = dict(zip(MODELS, gain_ss.spawn(len(MODELS)), strict=True))
    g = config.gain
    gains: dict[str, xr.Dataset] = {}
    for name in tqdm(list(config.models), desc="gain curves", unit="model", disable=not progress):
        ds = builders[name](_int_seed(streams[name]))
        fitted = fit_and_classify(
            ds,
            form=g.form,
            z=g.z,
            gain_tolerance=g.gain_tolerance,
            threshold_tolerance=g.threshold_tolerance,
        )
        gains[name] = _mask_unfit(fitted, g.min_r2).assign_attrs(model=name)
    profiles = {m: _gain_profile(m, config, release, se_gain) for m in config.models}
    summary = _summary(tree, gains, profiles, release, tuple(config.models))

    nodes: dict[str, xr.Dataset] = {}
    root = tree.to_dataset(inherit=False)
    kept = {k: v for k, v in root.attrs.items() if k not in results.REQUIRED_ATTRS}
    switching_config = root.attrs["config_json"]
    root.attrs = {
        **kept,
        **results.provenance(config, title="SE gate vs rate model vs spiking network on cued task switching"),
        "switching_config_json": switching_config,
        "se_model_origin": origin if se_model is not None else "not used",
        "se_model_json": "" if se_model is None else json.dumps(se_model.config.to_dict(), sort_keys=True),
    }
    nodes["/"] = root
    for name in config.models:
        ds = tree[name].to_dataset(inherit=False)
        if name == "se" and history is not None:
            ds = ds.assign(
                train_loss=history["loss"].rename(step="train_step"),
                train_accuracy=history["accuracy"].rename(step="train_step"),
            )
            ds["train_step"].attrs.update(_attrs("1", "Adam step of the SE training"))
        nodes[f"/{name}"] = ds
        nodes[f"/{name}/gain_curves"] = gains[name]
    nodes["/summary"] = summary
    return xr.DataTree.from_dict(nodes)


# ------------------------------------------------------------------------------------------------------
# experiment registration: table, figure, quick mode
# ------------------------------------------------------------------------------------------------------
def preparation_fit(row: xr.Dataset, prefix: str) -> tuple[float, float, float] | None:
    """(A, tau_eff, residual) of one model's preparation fit in a summary, or None when not identified.

    Reads ``<prefix>_prep_amplitude``, ``_tau_eff``, ``_residual`` and ``_identified`` (see
    :func:`neuromod.measures.fit_preparation` for when a fit counts as identified).
    """
    if int(row[f"{prefix}_prep_identified"]) != 1:
        return None
    a, tau, res = (float(row[f"{prefix}_prep_{k}"]) for k in ("amplitude", "tau_eff", "residual"))
    return a, tau, res


def summarize(tree: xr.DataTree) -> str:
    """A side-by-side table of the summary: one column per model."""
    s = tree["summary"].to_dataset(inherit=False)
    models = [str(m) for m in s["model"].values]

    def row(var: str, digits: int = 0, bounds: bool = True) -> list[str]:
        out = []
        for m in models:
            v = s.sel(model=m)
            low = float(v[f"{var}_low"]) if bounds and f"{var}_low" in v else None
            high = float(v[f"{var}_high"]) if bounds and f"{var}_high" in v else None
            out.append(format_interval(float(v[var]), low, high, digits=digits))
        return out

    def prep(prefix: str, digits: int) -> list[str]:
        out = []
        for m in models:
            fit = preparation_fit(s.sel(model=m), prefix)
            out.append(
                "not identified" if fit is None else "{:.{d}f} / {:.0f} / {:.{d}f}".format(*fit, d=digits)
            )
        return out

    def gain_row(var: str, digits: int) -> list[str]:
        return [
            ", ".join(format_interval(float(x), digits=digits) for x in s[var].sel(model=m).values)
            for m in models
        ]

    rows = [
        ("trials", [str(int(s["n_trials"].sel(model=m))) for m in models]),
        ("accuracy", row("accuracy", 2)),
        ("mean RT, correct (ms)", row("mean_rt", 0)),
        ("RT switch cost (ms)", row("rt_switch_cost", 0)),
        ("error switch cost", row("error_switch_cost", 2)),
        ("RT congruency effect (ms)", row("rt_congruency_effect", 0)),
        ("error congruency effect", row("error_congruency_effect", 2)),
        ("RT preparation: A / tau (ms) / residual", prep("rt", 0)),
        ("error preparation: A / tau (ms) / residual", prep("error", 2)),
        ("gain ratio irr./rel. (a+ a- b+ b-)", gain_row("gain_ratio", 2)),
        ("threshold shift (rel. drive)", gain_row("threshold_shift", 2)),
        (
            "f-I effect of the cue",
            [", ".join(dict.fromkeys(s["modulation"].sel(model=m).values.astype(str))) for m in models],
        ),
    ]
    csi = s["csi"].values
    for i, c in enumerate(csi):
        rows.insert(
            4 + i,
            (
                f"  at CSI {c:g} ms",
                [
                    format_interval(
                        float(s["rt_switch_cost_by_csi"].sel(model=m)[i]),
                        float(s["rt_switch_cost_by_csi_low"].sel(model=m)[i]),
                        float(s["rt_switch_cost_by_csi_high"].sel(model=m)[i]),
                    )
                    for m in models
                ],
            ),
        )
    width = max(len(r[0]) for r in rows) + 2
    cols = [max(len(m), *(len(r[1][i]) for r in rows)) + 2 for i, m in enumerate(models)]
    header = "".ljust(width) + "".join(m.ljust(w) for m, w in zip(models, cols, strict=True))
    lines = [header.rstrip(), "-" * len(header.rstrip())]
    for name, values in rows:
        lines.append(
            (name.ljust(width) + "".join(v.ljust(w) for v, w in zip(values, cols, strict=True))).rstrip()
        )
    lines.append(
        "95 % intervals in brackets: accuracy Wilson, mean RT t, RT differences Welch, error-rate "
        "differences Newcombe; RTs of correct responses; '-': not defined or not fitted."
    )
    return "\n".join(lines)


def plot(tree: xr.DataTree) -> Figure:
    """The four-panel figure: gain curves per model; gain profiles per context; switch cost against CSI
    per model (RT and errors, with the preparation fit); accuracy by congruency x switch."""
    import matplotlib.pyplot as plt

    from neuromod.plotting import (
        plot_by_condition,
        plot_cue_gain_curves,
        plot_gain_profile,
        plot_switch_cost,
    )

    s = tree["summary"].to_dataset(inherit=False)
    models = [str(m) for m in s["model"].values]
    fig = plt.figure(figsize=(13.0, 8.5), layout="constrained")
    (fa, fb), (fc, fd) = fig.subfigures(2, 2, wspace=0.04, hspace=0.04)
    axes = np.atleast_1d(fa.subplots(1, len(models), sharex=True))
    for ax, m in zip(axes, models, strict=True):
        plot_cue_gain_curves(tree[f"{m}/gain_curves"].to_dataset(inherit=False), ax=ax, legend=ax is axes[0])
    fa.suptitle(
        "A  gain curves (points: mean over the fitted populations; lines: mean of their fits)",
        x=0.02,
        ha="left",
        fontsize=11,
    )
    axes = fb.subplots(1, len(CONTEXTS), sharey=True)
    for ax, ctx in zip(axes, CONTEXTS, strict=True):
        plot_gain_profile(s, context=ctx, ax=ax, legend=ax is axes[0])
    axes[1].set_ylabel("")
    fb.suptitle("B  gain profile per context", x=0.02, ha="left", fontsize=11)
    ax_rt, ax_er = fc.subplots(2, 1, sharex=True)
    plot_switch_cost(s, cost="rt", ax=ax_rt)
    plot_switch_cost(s, cost="error", ax=ax_er, legend=False)
    ax_rt.set_xlabel("")
    fc.suptitle(
        "C  switch cost vs CSI (95 % CI; lines: A exp(-CSI/tau) + residual)", x=0.02, ha="left", fontsize=11
    )
    plot_by_condition(s, variable="accuracy", ax=fd.subplots())
    fd.suptitle("D  accuracy by congruency x switch", x=0.02, ha="left", fontsize=11)
    return fig


def quick(config: TaskSwitchingConfig) -> TaskSwitchingConfig:
    """A reduced run for tests and notebooks (tens of seconds; the spiking network dominates)."""
    return config.replace(
        n_trials=24,
        csi_ms=(100.0, 300.0, 600.0, 1000.0),
        coherences=(25.6, 51.2),
        max_rt_ms=500.0,
        rsi_ms=200.0,
        se=config.se.replace(quick=True),
        gain=config.gain.replace(
            n_drives=9, n_repeats=4, se_repeats=32, spiking_duration_ms=500.0, spiking_transient_ms=100.0
        ),
    )


def _run(config: TaskSwitchingConfig, *, progress: bool = False) -> xr.DataTree:
    return compare(config, progress=progress)


registry.register(
    registry.Experiment(
        name="task-switching",
        config_cls=TaskSwitchingConfig,
        run=_run,
        summarize=summarize,
        plot=plot,
        quick=quick,
        description="SE gate vs rate model vs spiking network on one cued task-switching session",
    ),
    replace=True,
)
