"""The ``decision`` experiment: psychometric and chronometric curves of the decision circuits.

The two-alternative random-dot task of Wang (2002) and Wong & Wang (2006): a stimulus of coherence c favours
pool 1 over pool 2; the circuit's choice is the first pool whose rate crosses threshold, and the reaction
time is that crossing's time from stimulus onset. It runs the reduced rate model
(:func:`neuromod.rate.simulate_decision`) and the spiking network (:func:`neuromod.spiking.simulate_decision`)
at the same coherences, and lays out accuracy and mean RT per model along a ``model`` dimension in the
``summary`` group, so the two levels of description are compared on one task.

Expected: accuracy rises from chance (0.5) at 0 % to near 1 at 51.2 %, and the mean decision time falls with
coherence (Wong & Wang 2006, Fig. 3; Wang 2002, Fig. 2).

References
----------
Wang, X.-J. (2002). Probabilistic decision making by slow reverberation in cortical circuits. Neuron
36:955-968.
Wong, K.-F. & Wang, X.-J. (2006). A recurrent network mechanism of time integration in perceptual
decisions. J. Neurosci. 26:1314-1328.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neuromod import registry, results
from neuromod.config import Config, ConfigError, param
from neuromod.measures import psychometric

__all__ = ["DecisionConfig", "RateDecisionConfig", "SpikingDecisionConfig", "run_decision"]

Model = Literal["rate", "spiking"]


@dataclasses.dataclass(frozen=True)
class RateDecisionConfig(Config):
    """Settings of the rate model (Wong & Wang 2006 reduced two-variable model, published parameters)."""

    n_trials: int = param(500, low=1, doc="trials per coherence")
    dt_ms: float = param(
        0.5, low=0.0, low_inclusive=False, high=1.0, doc="integration step (ms), at most tau_AMPA / 2"
    )
    duration_ms: float = param(2000.0, low=0.0, low_inclusive=False, doc="stimulus duration = timeout (ms)")

    def __post_init__(self) -> None:
        super().__post_init__()
        steps = self.duration_ms / self.dt_ms
        if abs(steps - round(steps)) > 1e-9:
            raise ConfigError(f"duration_ms={self.duration_ms} must be a multiple of dt_ms={self.dt_ms}")


@dataclasses.dataclass(frozen=True)
class SpikingDecisionConfig(Config):
    """Settings of the spiking network (reduced Wang 2002 circuit)."""

    n_trials: int = param(100, low=1, doc="trials per coherence")
    dt_ms: float = param(0.1, low=0.0, low_inclusive=False, high=0.5, doc="integration step (ms)")
    max_rt_ms: float = param(1500.0, low=0.0, low_inclusive=False, doc="response deadline (whole ms)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_rt_ms != round(self.max_rt_ms):
            raise ConfigError(f"max_rt_ms={self.max_rt_ms} must be a whole number of ms")


@dataclasses.dataclass(frozen=True)
class DecisionConfig(Config):
    """The ``decision`` experiment (``neuromod run decision``)."""

    experiment: str = "decision"
    seed: int = param(0, low=0, doc="seed of every random stream in the run")
    models: tuple[Model, ...] = ("rate", "spiking")
    coherences_pct: tuple[float, ...] = param(
        (0.0, 3.2, 6.4, 12.8, 25.6, 51.2), low=0.0, high=100.0, doc="motion coherences (%)"
    )
    rate: RateDecisionConfig = param(default_factory=RateDecisionConfig)
    spiking: SpikingDecisionConfig = param(default_factory=SpikingDecisionConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.models or len(set(self.models)) != len(self.models):
            raise ConfigError(f"models={self.models!r} must name each of 'rate', 'spiking' at most once")
        if not self.coherences_pct:
            raise ConfigError("coherences_pct=() must list at least one coherence")


def _run_rate(coherences: np.ndarray, config: DecisionConfig, seed: np.random.SeedSequence) -> xr.Dataset:
    from neuromod.rate import simulate_decision

    c = config.rate
    return simulate_decision(
        coherences, n_trials=c.n_trials, dt_ms=c.dt_ms, duration_ms=c.duration_ms, seed=seed
    )


def _run_spiking(coherences: np.ndarray, config: DecisionConfig, seed: np.random.SeedSequence) -> xr.Dataset:
    from neuromod.spiking import simulate_decision

    c = config.spiking
    return simulate_decision(
        coherences,
        n_trials=c.n_trials,
        dt_ms=c.dt_ms,
        max_rt_ms=c.max_rt_ms,
        seed=int(seed.generate_state(1)[0]),
    )


_RUNNERS: dict[str, Callable[[np.ndarray, DecisionConfig, np.random.SeedSequence], xr.Dataset]] = {
    "rate": _run_rate,
    "spiking": _run_spiking,
}


_SUMMARY_VARS = (
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "mean_rt",
    "mean_rt_low",
    "mean_rt_high",
    "p_response",
)


def run_decision(config: DecisionConfig | None = None, *, progress: bool = False) -> xr.DataTree:
    """Run the decision experiment on each configured model.

    Parameters
    ----------
    config : DecisionConfig, optional
        Defaults to ``DecisionConfig()``.
    progress : bool
        Show a progress bar over models.

    Returns
    -------
    xarray.DataTree
        Root: provenance and the ``coherence`` coordinate. One group per model with per-trial ``choice`` and
        ``rt`` over (``coherence``, ``trial``) and their psychometric summary; ``summary``: accuracy and mean
        RT (with 95 % intervals) over (``model``, ``coherence``).
    """
    config = DecisionConfig() if config is None else config
    coherences = np.asarray(config.coherences_pct, dtype=float)
    seeds = np.random.SeedSequence(config.seed).spawn(len(_RUNNERS))
    stream = dict(zip(_RUNNERS, seeds, strict=True))  # fixed per model: adding a model changes no other
    groups: dict[str, xr.Dataset] = {}
    for model in tqdm(config.models, desc="decision", unit="model", disable=not progress):
        trials = _RUNNERS[model](coherences, config, stream[model])
        summary = psychometric(trials)
        merged = xr.merge([trials[["choice", "rt"]], summary], combine_attrs="override")
        groups[model] = merged.drop_attrs(deep=False).assign_attrs(
            model=model, params_json=trials.attrs.get("params_json", "{}")
        )
    summary = xr.concat(
        [groups[m][list(_SUMMARY_VARS)].expand_dims(model=[m]) for m in config.models],
        dim="model",
        combine_attrs="override",
    ).drop_attrs(deep=False)
    summary["model"].attrs = {"units": "1", "long_name": "model"}
    root = xr.Dataset(
        coords={"coherence": ("coherence", coherences, {"units": "%", "long_name": "motion coherence"})},
        attrs=results.provenance(config, title="Decision circuits: psychometric and chronometric curves"),
    )
    nodes = {f"/{m}": ds.drop_vars("coherence") for m, ds in groups.items()}
    return xr.DataTree.from_dict({"/": root, **nodes, "/summary": summary.drop_vars("coherence")})


def summarize(tree: xr.DataTree) -> str:
    """A table of accuracy and mean RT per model and coherence."""
    s = tree["summary"].to_dataset()
    lines = [
        f"{'model':<8} {'coh (%)':>8} {'accuracy':>9} {'95% CI':>15} {'mean RT (ms)':>13} {'responded':>10}"
    ]
    for model in s["model"].values:
        for coh in s["coherence"].values:
            row = s.sel(model=model, coherence=coh)
            ci = f"[{float(row.accuracy_low):.2f}, {float(row.accuracy_high):.2f}]"
            lines.append(
                f"{model!s:<8} {coh:>8.1f} {float(row.accuracy):>9.3f} {ci:>15} "
                f"{float(row.mean_rt):>13.0f} {float(row.p_response):>10.2f}"
            )
    return "\n".join(lines)


def plot(tree: xr.DataTree):
    """Two panels: accuracy and mean RT against coherence, one line per model."""
    import matplotlib.pyplot as plt

    from neuromod.plotting import label, plot_psychometric

    s = tree["summary"].to_dataset()
    fig, (ax_acc, ax_rt) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
    for model in s["model"].values:
        row = s.sel(model=model)
        plot_psychometric(row, ax=ax_acc, label=str(model))
        err = np.vstack([row.mean_rt - row.mean_rt_low, row.mean_rt_high - row.mean_rt])
        ax_rt.errorbar(row.coherence, row.mean_rt, yerr=err, marker="o", capsize=3, label=str(model))
    ax_rt.set_xticks(s["coherence"].values, [f"{v:g}" for v in s["coherence"].values])
    ax_rt.set_xlabel(label(s["coherence"]))
    ax_rt.set_ylabel(label(s["mean_rt"]))
    ax_acc.legend(frameon=False)
    ax_acc.set_title("psychometric")
    ax_rt.set_title("chronometric")
    return fig


def quick(config: DecisionConfig) -> DecisionConfig:
    """A reduced run for tests and notebooks: three coherences, few trials, 1 s timeout."""
    return config.replace(
        coherences_pct=(0.0, 12.8, 51.2),
        rate=config.rate.replace(n_trials=100, duration_ms=1000.0),
        spiking=config.spiking.replace(n_trials=20, max_rt_ms=1000.0),
    )


registry.register(
    registry.Experiment(
        name="decision",
        config_cls=DecisionConfig,
        run=run_decision,
        summarize=summarize,
        plot=plot,
        quick=quick,
        description="psychometric/chronometric curves of the rate and spiking decision circuits",
    ),
    replace=True,
)
