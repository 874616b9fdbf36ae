"""The ``gain-curves`` experiment: is each modulation multiplicative, divisive or additive?

Response against drive at several modulation levels, for every model and mechanism, with fitted gain and
threshold per curve and a class per level (see :mod:`neuromod.measures.gain`):

* ``rate``: the steady-state f-I curve of a modulated population (:func:`neuromod.rate.f_i_curves`) in each
  modulation mode (``response_gain``, ``input_gain``, ``threshold``), at modulator levels m;
* ``spiking``: brian2 LIF f-I sweeps (:func:`neuromod.spiking.fi_sweep`) for each mechanism (``input_gain``,
  ``leak``, ``threshold``, ``background``, ``adaptation``), at modulator levels m;
* ``se``: a :class:`~neuromod.gating.ContextSE` trained (in seconds) on a context-dependent feature-selection
  problem, or one passed in. Its two channel groups are the "conditions"; the "level" mixes the context
  cue away from the group's own task: ``(1 - level) * own + level * other`` (0: the group is relevant, 1:
  the other task is cued). The drive scales the input, so the squeeze sees
  it: both the gated response and the gate itself are recorded against drive, and the gate's dependence on
  drive is what makes SE curves depart from pure multiplication.

Every model family plugs in through :class:`GainCurveModel`: ``run(config, seed) -> Dataset`` with
``response`` over (``condition``, ``level``, ``drive``, ``repeat``). The result is an ``xr.DataTree``
with one group per model, each holding the curves, the fits (``fit_*``) and the classification.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neuromod import registry, results
from neuromod.config import Config, ConfigError, param
from neuromod.measures.gain import classify_modulation, fit_gain_curve

if TYPE_CHECKING:
    from neuromod.gating import ContextSE

__all__ = [
    "GainCurveModel",
    "GainCurvesConfig",
    "RateGainConfig",
    "SEGainConfig",
    "SpikingGainConfig",
    "fit_and_classify",
    "gain_curves",
    "train_feature_selection_se",
]

Form = Literal["threshold_linear", "softplus", "naka_rushton"]
RateMode = Literal["response_gain", "input_gain", "threshold"]
SpikingMechanism = Literal["input_gain", "leak", "threshold", "background", "adaptation"]
ModelName = Literal["se", "rate", "spiking"]
MODEL_NAMES = ("se", "rate", "spiking")


# ------------------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RateGainConfig(Config):
    """Rate model: Abbott-Chance transfer (Wong & Wang 2006 values), g(m) = 1 + m, dtheta(m) = 0.05 m nA."""

    modes: tuple[RateMode, ...] = ("response_gain", "input_gain", "threshold")
    levels: tuple[float, ...] = param((0.0, 0.5, 1.0), low=0.0, high=1.0, doc="modulator levels m")
    drive_min_na: float = param(0.2, doc="smallest input current (nA)")
    drive_max_na: float = param(0.7, doc="largest input current (nA)")
    n_drives: int = param(26, low=5, doc="number of drive values")
    gain_per_level: float = param(1.0, doc="response/input gain added per unit level")
    shift_na_per_level: float = param(0.05, doc="threshold shift per unit level (nA)")


@dataclasses.dataclass(frozen=True)
class SpikingGainConfig(Config):
    """Spiking model: LIF (Wang 2002 pyramidal cells) f-I sweeps, one NeuronGroup per mechanism."""

    mechanisms: tuple[SpikingMechanism, ...] = ("input_gain", "leak", "threshold", "background", "adaptation")
    levels: tuple[float, ...] = param((0.0, 0.5, 1.0), low=0.0, high=1.0, doc="modulator levels m")
    drive_min_na: float = param(0.3, doc="smallest injected current (nA)")
    drive_max_na: float = param(0.9, doc="largest injected current (nA)")
    n_drives: int = param(19, low=5, doc="number of drive values")
    n_repeats: int = param(20, low=1, doc="noise realisations per condition (cheap: one neuron each)")
    duration_ms: float = param(1000.0, low=0.0, low_inclusive=False, doc="simulated time (ms)")
    transient_ms: float = param(200.0, low=0.0, doc="initial time excluded from the rate (ms)")
    dt_ms: float = param(0.1, low=0.0, low_inclusive=False, high=0.5, doc="time step (ms), at most 0.5")
    noise: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.transient_ms >= self.duration_ms:
            raise ConfigError(
                f"transient_ms={self.transient_ms} must be shorter than duration_ms={self.duration_ms}"
            )


@dataclasses.dataclass(frozen=True)
class SEGainConfig(Config):
    """SE gate: ContextSE trained on context-dependent feature selection (two channel groups)."""

    channels: int = param(8, low=2, doc="channels (two equal groups, a and b)")
    positions: int = param(6, low=2, doc="spatial positions squeezed by the gate")
    train_steps: int = param(300, low=1, doc="Adam steps of the training (a few seconds)")
    levels: tuple[float, ...] = param(
        (0.0, 0.25, 0.5, 0.75, 1.0), low=0.0, high=1.0, doc="context mix away from the group's task"
    )
    drive_max: float = param(2.0, low=0.0, low_inclusive=False, doc="largest input strength (a.u.)")
    n_drives: int = param(21, low=5, doc="number of drive values from 0")
    n_repeats: int = param(16, low=1, doc="noisy input samples per drive")


@dataclasses.dataclass(frozen=True)
class GainCurvesConfig(Config):
    """The ``gain-curves`` experiment (``neuromod run gain-curves``)."""

    experiment: str = "gain-curves"
    seed: int = param(0, low=0, doc="seed of every random stream in the run")
    models: tuple[ModelName, ...] = ("se", "rate", "spiking")
    form: Form = "softplus"
    z: float = param(2.0, low=0.0, low_inclusive=False, doc="standard errors a change must exceed")
    gain_tolerance: float = param(0.1, low=0.0, low_inclusive=False, doc="smallest relative gain change")
    threshold_tolerance: float = param(
        0.05, low=0.0, low_inclusive=False, doc="smallest threshold shift, as a fraction of the drive range"
    )
    rate: RateGainConfig = param(default_factory=RateGainConfig)
    spiking: SpikingGainConfig = param(default_factory=SpikingGainConfig)
    se: SEGainConfig = param(default_factory=SEGainConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.models or len(set(self.models)) != len(self.models):
            raise ConfigError(
                f"models={self.models!r} must name each of 'se', 'rate', 'spiking' at most once"
            )
        for name in ("rate", "spiking"):
            sub = getattr(self, name)
            if sub.drive_max_na <= sub.drive_min_na:
                raise ConfigError(
                    f"{name}.drive_max_na={sub.drive_max_na} must exceed "
                    f"{name}.drive_min_na={sub.drive_min_na}"
                )
        for name in ("rate", "spiking", "se"):
            if 0.0 not in getattr(self, name).levels:
                raise ConfigError(
                    f"{name}.levels={getattr(self, name).levels} must include the reference 0.0"
                )


# ------------------------------------------------------------------------------------------------------
# model families
# ------------------------------------------------------------------------------------------------------
class GainCurveModel(Protocol):
    """How a model family plugs into the gain-curves protocol."""

    name: str

    def run(
        self, config: GainCurvesConfig, seed: np.random.SeedSequence, *, progress: bool = False
    ) -> xr.Dataset:
        """``response`` over (``condition``, ``level``, ``drive``, ``repeat``), with units."""
        ...


def _bar(items, model: str, progress: bool):
    """A progress bar over one model's conditions (one bar per model)."""
    return tqdm(items, desc=f"gain curves: {model}", unit="condition", disable=not progress)


def _coord(dim: str, values, units: str, long_name: str) -> tuple:
    return (dim, values, {"units": units, "long_name": long_name})


class _RateModel:
    name = "rate"

    def run(
        self, config: GainCurvesConfig, seed: np.random.SeedSequence, *, progress: bool = False
    ) -> xr.Dataset:
        from neuromod.rate import Modulation, f_i_curves

        c = config.rate
        drives = np.linspace(c.drive_min_na, c.drive_max_na, c.n_drives)
        curves = []
        for mode in _bar(c.modes, "rate", progress):
            modulation = Modulation(
                mode=mode, gain_per_level=c.gain_per_level, shift_na_per_level=c.shift_na_per_level
            )
            da = f_i_curves(drives, np.asarray(c.levels), modulation=modulation)
            curves.append(da.drop_vars(["gain", "shift"]))
        response = xr.concat(curves, dim="condition").expand_dims(repeat=[0], axis=-1)
        response.attrs = {"units": "Hz", "long_name": "steady-state firing rate"}
        return xr.Dataset(
            {"response": response},
            coords={
                "condition": _coord("condition", list(c.modes), "1", "modulation mode"),
                "repeat": _coord("repeat", [0], "1", "repeat (deterministic: one)"),
            },
        )


class _SpikingModel:
    name = "spiking"

    def run(
        self, config: GainCurvesConfig, seed: np.random.SeedSequence, *, progress: bool = False
    ) -> xr.Dataset:
        from neuromod.spiking import fi_sweep

        c = config.spiking
        drives = np.linspace(c.drive_min_na, c.drive_max_na, c.n_drives)
        seeds = seed.spawn(len(c.mechanisms))
        rates, cvs = [], []
        for mechanism, s in zip(_bar(c.mechanisms, "spiking", progress), seeds, strict=True):
            ds = fi_sweep(
                mechanism,
                np.asarray(c.levels),
                drives,
                n_repeats=c.n_repeats,
                duration_ms=c.duration_ms,
                transient_ms=c.transient_ms,
                noise=c.noise,
                dt_ms=c.dt_ms,
                seed=int(s.generate_state(1)[0]),
            )
            rates.append(ds["rate"].drop_vars("mechanism", errors="ignore"))
            cvs.append(ds["isi_cv"].drop_vars("mechanism", errors="ignore"))
        response = xr.concat(rates, dim="condition", combine_attrs="override")
        response.attrs = {"units": "Hz", "long_name": "firing rate"}
        isi_cv = xr.concat(cvs, dim="condition", combine_attrs="override")
        return xr.Dataset(
            {"response": response, "isi_cv": isi_cv},
            coords={"condition": _coord("condition", list(c.mechanisms), "1", "modulation mechanism")},
        )


def train_feature_selection_se(
    *, channels: int = 8, positions: int = 6, steps: int = 300, seed: int = 0
) -> ContextSE:
    """Train a ContextSE on context-dependent feature selection (a few seconds on a CPU).

    Channels form two groups, a (first half) and b (second half). Each sample carries a label in the
    relevant group and an independent distractor label in the other, both as a zero-mean spatial pattern
    over a positive mean input of random strength; a one-hot context (2 values) says which group is
    relevant, and a context-free linear readout must report the label. The task is solvable only by gating,
    so the trained gains favour the relevant group in each context.

    Returns
    -------
    ContextSE
        The trained gate (``context_dim=2``, mean squeeze, sigmoid gate with ``gain_max=1``), in eval mode.
    """
    import torch
    from torch import nn

    from neuromod.gating import ContextSE

    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation; the caller's torch RNG is untouched
        torch.manual_seed(seed)
        se = ContextSE(channels, 2, rd_ratio=1.0)
        readout = nn.Linear(channels * positions, 1)
    half = channels // 2
    pattern = torch.tensor([1.0, -1.0] * (positions // 2) + [0.0] * (positions % 2))

    def batch(n: int):
        ctx = torch.randint(0, 2, (n,), generator=gen)
        label = torch.randint(0, 2, (n,), generator=gen).float() * 2 - 1
        distractor = torch.randint(0, 2, (n,), generator=gen).float() * 2 - 1
        first = (ctx == 0)[:, None]
        sign = torch.empty(n, channels)
        sign[:, :half] = torch.where(first, label[:, None], distractor[:, None])
        sign[:, half:] = torch.where(first, distractor[:, None], label[:, None])
        strength = 0.25 + 1.75 * torch.rand(n, 1, 1, generator=gen)
        x = strength * (
            1.0 + 0.5 * sign[:, :, None] * pattern + 0.25 * torch.randn(n, channels, positions, generator=gen)
        )
        return x, nn.functional.one_hot(ctx, 2).float(), (label > 0).float()

    opt = torch.optim.Adam([*se.parameters(), *readout.parameters()], lr=0.05)
    for _ in range(steps):
        x, k, y = batch(64)
        logit = readout(se(x, k).flatten(1)).squeeze(-1)
        loss = nn.functional.binary_cross_entropy_with_logits(logit, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return se.eval()


class _SEModel:
    name = "se"

    def __init__(self, se: ContextSE | None = None) -> None:
        self.se = se

    def run(
        self, config: GainCurvesConfig, seed: np.random.SeedSequence, *, progress: bool = False
    ) -> xr.Dataset:
        import torch

        c = config.se
        train_seed, sample_seed = (int(s.generate_state(1)[0]) for s in seed.spawn(2))
        se = self.se or train_feature_selection_se(
            channels=c.channels, positions=c.positions, steps=c.train_steps, seed=train_seed
        )
        channels = se.channels
        half = channels // 2
        levels = np.asarray(c.levels)
        drives = np.linspace(0.0, c.drive_max, c.n_drives)
        gen = torch.Generator().manual_seed(sample_seed)
        # inputs: (drive, repeat, channel, position) = drive * (1 + noise); zero-mean noise averages out
        noise = 0.25 * torch.randn(c.n_repeats, channels, c.positions, generator=gen)
        x = torch.as_tensor(drives, dtype=torch.float32)[:, None, None, None] * (1.0 + noise)
        x = x.reshape(-1, channels, c.positions)
        groups = {"group_a": slice(0, half), "group_b": slice(half, channels)}
        # level lam mixes the context away from the group's own task: (1 - lam) own + lam other
        shape = (len(groups), len(levels), c.n_drives, c.n_repeats)
        response, gain = np.empty(shape), np.empty(shape)
        channel_gain = np.empty((len(levels), 2, c.n_drives, c.n_repeats, channels))
        with torch.no_grad():
            for i, lam in enumerate(_bar(levels, "se", progress)):
                for task in (0, 1):
                    mix = [1.0 - lam, lam] if task == 0 else [lam, 1.0 - lam]
                    k = torch.tensor(mix, dtype=torch.float32).expand(x.shape[0], 2)
                    g = se.gain(x, k).gain.reshape(c.n_drives, c.n_repeats, channels).numpy()
                    y = se(x, k).mean(-1).reshape(c.n_drives, c.n_repeats, channels).numpy()
                    channel_gain[i, task] = g
                    sl = list(groups.values())[task]
                    gain[task, i] = g[..., sl].mean(-1)
                    response[task, i] = y[..., sl].mean(-1)
        dims = ("condition", "level", "drive", "repeat")
        return xr.Dataset(
            {
                "response": (dims, response, {"units": "1", "long_name": "gated response"}),
                "gain": (dims, gain, {"units": "1", "long_name": "gate value (gain)"}),
                "channel_gain": (
                    ("level", "task", "drive", "repeat", "channel"),
                    channel_gain,
                    {"units": "1", "long_name": "gate value per channel"},
                ),
            },
            coords={
                "condition": _coord("condition", list(groups), "1", "channel group (a: relevant in task a)"),
                "level": _coord("level", levels, "1", "context mix away from the group's task"),
                "task": _coord("task", ["a", "b"], "1", "task whose cue is mixed away from"),
                "drive": _coord("drive", drives, "1", "input strength"),
                "repeat": _coord("repeat", np.arange(c.n_repeats), "1", "input sample"),
                "channel": _coord("channel", np.arange(channels), "1", "channel"),
            },
            attrs={"se_repr": repr(se)},
        )


_MODELS: dict[str, type] = {"rate": _RateModel, "spiking": _SpikingModel, "se": _SEModel}


# ------------------------------------------------------------------------------------------------------
# protocol
# ------------------------------------------------------------------------------------------------------
def fit_and_classify(
    ds: xr.Dataset,
    *,
    form: str = "softplus",
    z: float = 2.0,
    gain_tolerance: float = 0.1,
    threshold_tolerance: float = 0.05,
) -> xr.Dataset:
    """Fit every (condition, level) curve of ``ds.response`` jointly over repeats and classify each level.

    Adds ``fit_<param>`` (and ``fit_<param>_se``, ``fit_r2``) over (``condition``, ``level``) and the
    classification (``gain_ratio``, ``threshold_shift``, their standard errors, and ``modulation``) relative
    to level 0. `threshold_tolerance` is a fraction of the drive range.
    """
    fits = fit_gain_curve(ds["response"], "drive", form=form, reduce_dims="repeat")
    span = float(ds["drive"].max() - ds["drive"].min())
    classes = classify_modulation(
        fits,
        reference_level=0.0,
        z=z,
        gain_tolerance=gain_tolerance,
        threshold_tolerance=threshold_tolerance * span,
    )
    out = ds.copy()
    for name, var in fits.data_vars.items():
        out[f"fit_{name}"] = var
    for name, var in classes.data_vars.items():
        out[name] = var
    return out.assign_attrs(fit_form=form, reference_level=0.0)


def gain_curves(
    config: GainCurvesConfig | None = None,
    *,
    se: ContextSE | None = None,
    progress: bool = False,
) -> xr.DataTree:
    """Run the gain-curve protocol on every configured model.

    Parameters
    ----------
    config : GainCurvesConfig, optional
        Defaults to ``GainCurvesConfig()``.
    se : ContextSE, optional
        A trained gate with ``context_dim=2`` whose channels split into two groups; by default one is trained
        on the feature-selection problem (:func:`train_feature_selection_se`).
    progress : bool
        Show a progress bar per model (over its modes, mechanisms or context levels).

    Returns
    -------
    xarray.DataTree
        Root: provenance. Groups ``se``, ``rate``, ``spiking`` (those configured), each with ``response``
        over (``condition``, ``level``, ``drive``, ``repeat``), ``fit_*`` over (``condition``, ``level``),
        and the classification (``modulation``, ``gain_ratio``, ``threshold_shift``).
    """
    config = GainCurvesConfig() if config is None else config
    streams = dict(zip(_MODELS, np.random.SeedSequence(config.seed).spawn(len(_MODELS)), strict=True))
    groups: dict[str, xr.Dataset] = {}
    for name in config.models:
        model: GainCurveModel = _SEModel(se) if name == "se" else _MODELS[name]()
        ds = model.run(config, streams[name], progress=progress)
        groups[name] = fit_and_classify(
            ds,
            form=config.form,
            z=config.z,
            gain_tolerance=config.gain_tolerance,
            threshold_tolerance=config.threshold_tolerance,
        ).assign_attrs(model=name)
    root = xr.Dataset(attrs=results.provenance(config, title="Gain curves: response against drive per level"))
    return xr.DataTree.from_dict({"/": root, **{f"/{m}": ds for m, ds in groups.items()}})


# ------------------------------------------------------------------------------------------------------
# experiment registration
# ------------------------------------------------------------------------------------------------------
def summarize(tree: xr.DataTree) -> str:
    """Table: model, condition, level, gain ratio, threshold shift, class."""
    header = (
        f"{'model':<8} {'mechanism/mode':<15} {'level':>6} {'gain ratio':>11} {'thr shift':>12} {'class':<15}"
    )
    lines = [header, "-" * len(header)]
    for model in tree.children:
        ds = tree[model].to_dataset()
        units = ds["threshold_shift"].attrs.get("units", "")
        for cond in ds["condition"].values:
            for level in ds["level"].values:
                if level == ds.attrs.get("reference_level", 0.0):
                    continue
                row = ds.sel(condition=cond, level=level)
                shift = f"{float(row.threshold_shift):+.3f} {units if units != '1' else ''}".rstrip()
                lines.append(
                    f"{model:<8} {cond!s:<15} {level:>6.2f} {float(row.gain_ratio):>11.2f} {shift:>12} "
                    f"{row.modulation.item()!s:<15}"
                )
    return "\n".join(lines)


def plot(tree: xr.DataTree):
    """One panel per (model, condition) with data and fitted curves per level, and a summary panel."""
    import matplotlib.pyplot as plt

    from neuromod.plotting import plot_gain_curves, plot_modulation_summary

    panels = [(m, c, "response") for m in tree.children for c in tree[m]["condition"].values]
    if "se" in tree.children:  # the SE gate itself against drive: its squeeze sees the drive
        panels += [("se", c, "gain") for c in tree["se"]["condition"].values]
    ncols = 4
    nrows = int(np.ceil((len(panels) + 1) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.0 * ncols, 3.2 * nrows), layout="constrained", squeeze=False
    )
    flat = axes.ravel()
    for ax, (model, cond, variable) in zip(flat, panels, strict=False):
        plot_gain_curves(
            tree, model=model, condition=str(cond), variable=variable, ax=ax, legend=ax is flat[0]
        )
    plot_modulation_summary(tree, ax=flat[len(panels)])
    for ax in flat[len(panels) + 1 :]:
        ax.set_visible(False)
    return fig


def quick(config: GainCurvesConfig) -> GainCurvesConfig:
    """A reduced run (seconds) for tests and notebooks."""
    return config.replace(
        rate=config.rate.replace(n_drives=11),
        spiking=config.spiking.replace(
            mechanisms=("threshold", "background"), n_drives=13, n_repeats=10, duration_ms=800.0
        ),
        se=config.se.replace(train_steps=150, levels=(0.0, 0.5, 1.0), n_drives=11, n_repeats=8),
    )


def _run(config: GainCurvesConfig, *, progress: bool = False) -> xr.DataTree:
    return gain_curves(config, progress=progress)


registry.register(
    registry.Experiment(
        name="gain-curves",
        config_cls=GainCurvesConfig,
        run=_run,
        summarize=summarize,
        plot=plot,
        quick=quick,
        description="response vs drive per modulation level; gain/threshold fits; class per mechanism",
    ),
    replace=True,
)
