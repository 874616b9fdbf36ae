"""The ``decision`` experiment: psychometric and chronometric curves of the families' decision stages.

The two-alternative random-dot task of Wang (2002) and Wong & Wang (2006): a stimulus of coherence c favours
choice 1 over choice 2; a family's choice is the first of its two decision populations (or accumulators) to
reach threshold, and the reaction time is that crossing's time from stimulus onset. Every family runs the
same coherences with the same response deadline (:meth:`~neuromod.protocols.family.ModelFamily.decision`),
and accuracy and mean RT per family are laid out along a ``model`` dimension in the ``summary`` group.

Expected: accuracy rises from chance (0.5) at 0 % to near 1 at 51.2 %, and the mean decision time falls
with coherence (Wong & Wang 2006, Fig. 3; Wang 2002, Fig. 2).

References
----------
Wang, X.-J. (2002). Probabilistic decision making by slow reverberation in cortical circuits. Neuron
36:955-968.
Wong, K.-F. & Wang, X.-J. (2006). A recurrent network mechanism of time integration in perceptual
decisions. J. Neurosci. 26:1314-1328.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neuromod import registry, results
from neuromod._checks import check_bool
from neuromod._memory import check_memory
from neuromod._random import seed_sequence
from neuromod.config import ConfigError, FrozenMap, param
from neuromod.measures import psychometric
from neuromod.protocols.experiment import (
    ExperimentConfig,
    family_stream,
    group_attrs,
    prepare_families,
)
from neuromod.protocols.family import ModelFamily, family_names
from neuromod.protocols.memory import estimate_decision as estimate_memory

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DecisionConfig", "estimate_memory", "plot", "quick", "run_decision", "summarize"]

_SUMMARY_VARS = (
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "mean_rt",
    "mean_rt_low",
    "mean_rt_high",
    "p_response",
)


@dataclasses.dataclass(frozen=True)
class DecisionConfig(ExperimentConfig):
    """The ``decision`` experiment (``neuromod run decision``).

    ``n_trials`` gives the trials per coherence of each family (a family without an entry gets
    ``default_n_trials``): the spiking network runs every trial as its own sub-network, so it gets fewer.
    """

    experiment: str = "decision"
    models: tuple[str, ...] = ("rate", "spiking")
    coherences_pct: tuple[float, ...] = param(
        (0.0, 3.2, 6.4, 12.8, 25.6, 51.2), low=0.0, high=100.0, doc="motion coherences (%)"
    )
    max_rt_ms: float = param(2000.0, low=0.0, low_inclusive=False, doc="response deadline (ms)")
    n_trials: Mapping[str, int] = param(
        default_factory=lambda: FrozenMap({"rate": 500, "spiking": 100}),
        low=1,
        doc="trials per coherence, per family",
    )
    default_n_trials: int = param(100, low=1, doc="trials per coherence of a family not in n_trials")

    operations: ClassVar[tuple[str, ...]] = ("decision",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.coherences_pct:
            raise ConfigError("coherences_pct=() must list at least one coherence")
        unknown = sorted(set(self.n_trials) - set(family_names()))
        if unknown:
            raise ConfigError(f"n_trials names {unknown}, which are not model families: {family_names()}")
        for name in self.models:
            try:
                self.create(name).check_timing({"max_rt_ms": self.max_rt_ms})
            except ValueError as err:
                raise ConfigError(str(err)) from None

    def trials_of(self, name: str) -> int:
        """Trials per coherence of family `name`."""
        return int(self.n_trials.get(name, self.default_n_trials))


def run_decision(
    config: DecisionConfig | None = None,
    *,
    families: Mapping[str, ModelFamily] | None = None,
    progress: bool = False,
) -> xr.DataTree:
    """Run the decision experiment on each configured family.

    Parameters
    ----------
    config : DecisionConfig, optional
        Defaults to ``DecisionConfig()``.
    families : mapping of name -> ModelFamily, optional
        Family instances to use instead of building them from `config`.
    progress : bool
        Show a progress bar over families.

    Returns
    -------
    xarray.DataTree
        Root: provenance and the ``coherence`` coordinate. One group per family with per-trial ``choice``
        and ``rt`` over (``coherence``, ``trial``) and their psychometric summary; ``summary``: accuracy
        and mean RT (with 95 % intervals) over (``model``, ``coherence``).

    Raises
    ------
    TypeError
        `config` is not a DecisionConfig.
    neuromod.protocols.memory.MemoryLimitError
        The run's estimated memory (:func:`estimate_memory`) exceeds the limit, before any work.

    Examples
    --------
    >>> tree = run_decision(quick(DecisionConfig(models=("rate",))))
    >>> float(tree["summary"]["accuracy"].sel(model="rate", coherence=51.2)) > 0.9
    True
    """
    config = DecisionConfig() if config is None else config
    if not isinstance(config, DecisionConfig):
        raise TypeError(f"config must be a DecisionConfig, got {type(config).__name__}")
    check_bool("progress", progress)
    check_memory(estimate_memory(config))
    coherences = np.asarray(config.coherences_pct, dtype=float)
    root = seed_sequence(config.seed)
    instances, _ = prepare_families(config, config.models, root=root, families=families, progress=progress)
    groups: dict[str, xr.Dataset] = {}
    for name in tqdm(config.models, desc="decision", unit="model", disable=not progress):
        family = instances[name]
        trials = family.decision(
            coherences,
            n_trials=config.trials_of(name),
            max_rt_ms=config.max_rt_ms,
            seed=family_stream(root, name, "decision"),
            progress=progress,
        )
        merged = xr.merge([trials[["choice", "rt"]], psychometric(trials)], combine_attrs="override")
        groups[name] = merged.drop_attrs(deep=False).assign_attrs(
            params_json=trials.attrs.get("params_json", "{}"), **group_attrs(name, family)
        )
    summary = xr.concat(
        [groups[m][list(_SUMMARY_VARS)].expand_dims(model=[m]) for m in config.models],
        dim="model",
        combine_attrs="override",
    ).drop_attrs(deep=False)
    summary["model"].attrs = {"units": "1", "long_name": "model"}
    root_ds = xr.Dataset(
        coords={"coherence": ("coherence", coherences, {"units": "%", "long_name": "motion coherence"})},
        attrs={
            **results.provenance(config, title="Decision stages: psychometric and chronometric curves"),
            "seed_entropy": str(root.entropy),
        },
    )
    nodes = {f"/{m}": ds.drop_vars("coherence") for m, ds in groups.items()}
    return xr.DataTree.from_dict({"/": root_ds, **nodes, "/summary": summary.drop_vars("coherence")})


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


def plot(tree: xr.DataTree) -> Figure:
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
    """A reduced run for tests and notebooks: three coherences, a fifth of the trials, 1 s deadline."""
    n_trials = {name: max(1, config.trials_of(name) // 5) for name in config.models}
    return config.with_quick_families().replace(
        coherences_pct=(0.0, 12.8, 51.2),
        max_rt_ms=1000.0,
        n_trials=FrozenMap({**config.n_trials, **n_trials}),
    )


registry.register(
    registry.Experiment(
        name="decision",
        config_cls=DecisionConfig,
        run=run_decision,
        summarize=summarize,
        plot=plot,
        quick=quick,
        description="psychometric/chronometric curves of the families' decision stages",
        memory=estimate_memory,
    ),
    replace=True,
)
