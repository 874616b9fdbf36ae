"""The ``gain-curves`` experiment: is each modulation multiplicative, divisive or additive?

One measurement protocol on every model family: the steady-state response of a modulated population
against its relative drive (1 = the input during the task's stimulus at 0 % coherence, the family's
``reference``), at the same modulation levels, fitted and classified the same way
(:func:`neuromod.measures.fit_and_classify`: curves the fitted form does not describe are reported as
"unfit" or "suppressed", never classified). For each family it sweeps the modulation variants it has
(:attr:`~neuromod.protocols.family.ModelFamily.variants`: the rate model's modes, the spiking network's
mechanisms), or those listed in ``variants``:

* ``rate``: steady-state f-I curves of a modulated population (:func:`neuromod.rate.f_i_curves`; here with
  the Abbott-Chance transfer function of Wong & Wang 2006), levels = modulator level m;
* ``spiking``: brian2 LIF f-I sweeps (:func:`neuromod.spiking.fi_sweep`), levels = modulator level m;
* ``se``: the trained SE task model's gated channels per population, levels = the cue mixed away from the
  population's own task (the SE gate reads its input through the squeeze, so its curves need not be purely
  multiplicative).

The result is an ``xr.DataTree`` with one group per family: ``response`` over (``condition``, ``level``,
``drive``, ``repeat``), the fits (``fit_*``) and the classification.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neuromod import registry, results
from neuromod._random import seed_sequence
from neuromod.config import ConfigError, FrozenMap, param
from neuromod.protocols.experiment import (
    ClassifySettings,
    ExperimentConfig,
    family_stream,
    group_attrs,
    prepare_families,
)
from neuromod.protocols.family import ModelFamily, get_family

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["GainCurvesConfig", "plot", "quick", "run_gain_curves", "summarize"]


@dataclasses.dataclass(frozen=True)
class GainCurvesConfig(ExperimentConfig, ClassifySettings):
    """The ``gain-curves`` experiment (``neuromod run gain-curves``).

    The rate family runs here with the Abbott-Chance transfer function and the published modulation of
    :class:`neuromod.rate.Modulation` (``g(m) = 1 + m``, ``dtheta(m) = 0.05 m`` nA), as in Wong & Wang
    (2006); every other family with its own defaults.
    """

    experiment: str = "gain-curves"
    models: tuple[str, ...] = ("se", "rate", "spiking")
    levels: tuple[float, ...] = param(
        (0.0, 0.5, 1.0), low=0.0, high=1.0, doc="modulation levels (0: the reference curve)"
    )
    drive_min: float = param(0.5, low=0.0, doc="smallest relative drive (1 = input at 0 % coherence)")
    drive_max: float = param(2.0, low=0.0, low_inclusive=False, doc="largest relative drive")
    n_drives: int = param(16, low=5, doc="number of drive values")
    n_repeats: int = param(16, low=1, doc="noise realisations per drive and level (deterministic: 1)")
    variants: Mapping[str, tuple[str, ...]] = param(
        default_factory=FrozenMap, doc="per family, the modulation variants to sweep (default: all)"
    )

    family_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "rate": {"transfer": "abbott_chance", "gain_at_zero": 1.0, "shift_na_per_level": 0.05}
    }
    operations: ClassVar[tuple[str, ...]] = ("fi_curves",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.drive_max <= self.drive_min:
            raise ConfigError(f"drive_max={self.drive_max} must exceed drive_min={self.drive_min}")
        if 0.0 not in self.levels:
            raise ConfigError(f"levels={self.levels} must include the reference 0.0")
        restricted = {}
        for name, chosen in self.variants.items():
            try:
                cls = get_family(name)
            except KeyError as err:
                raise ConfigError(f"variants.{name}: {err.args[0]}") from None
            bad = [v for v in chosen if v not in cls.variants]
            if not chosen or bad or len(set(chosen)) != len(chosen):
                raise ConfigError(
                    f"variants.{name}={list(chosen)!r}: expected a non-empty list of distinct names from "
                    f"{list(cls.variants)}"
                )
            if tuple(chosen) != cls.variants:  # all of them, in order, is the default: not stored
                restricted[name] = tuple(chosen)
        object.__setattr__(self, "variants", FrozenMap(restricted))

    def variants_of(self, name: str) -> tuple[str | None, ...]:
        """The variants of family `name` this run sweeps (``(None,)``: its configured one)."""
        cls = get_family(name)
        if not cls.variants:
            return (None,)
        return tuple(self.variants.get(name, cls.variants))


def _family_curves(
    config: GainCurvesConfig, name: str, family: ModelFamily, root: np.random.SeedSequence, progress: bool
) -> xr.Dataset:
    """One family's curves over all its swept variants, along ``condition``."""
    drives = np.linspace(config.drive_min, config.drive_max, config.n_drives)
    levels = np.asarray(config.levels, dtype=float)
    parts = []
    variants = config.variants_of(name)
    bar = tqdm(
        variants, desc=f"gain curves: {name}", unit="variant", disable=not progress or len(variants) < 2
    )
    for variant in bar:
        member = family
        if variant is not None:
            field = type(family).variant_field
            member = type(family)(family.config.replace(**{field: variant}))  # type: ignore[call-arg]
        seed = family_stream(root, name, f"fi_curves:{variant or ''}")
        parts.append(
            member.fi_curves(
                drives=drives, levels=levels, n_repeats=config.n_repeats, seed=seed, progress=progress
            )
        )
    ds = parts[0] if len(parts) == 1 else xr.concat(parts, dim="condition", combine_attrs="override")
    return config.classify(ds)


def run_gain_curves(
    config: GainCurvesConfig | None = None,
    *,
    families: Mapping[str, ModelFamily] | None = None,
    progress: bool = False,
) -> xr.DataTree:
    """Run the gain-curve protocol on every configured model family.

    Parameters
    ----------
    config : GainCurvesConfig, optional
        Defaults to ``GainCurvesConfig()``.
    families : mapping of name -> ModelFamily, optional
        Family instances to use instead of building them from `config` (e.g. an SE family with an
        already trained model, :meth:`neuromod.protocols.families.se.SEFamily.from_model`).
    progress : bool
        Show progress bars (the SE training, the variants of each family).

    Returns
    -------
    xarray.DataTree
        Root: provenance (``config_json`` is the resolved config). One group per family with ``response``
        over (``condition``, ``level``, ``drive``, ``repeat``), ``fit_*`` over (``condition``, ``level``)
        and the classification (``modulation_class``, ``gain_ratio``, ``threshold_shift``, ``fit_ok``).

    Examples
    --------
    >>> tree = run_gain_curves(quick(GainCurvesConfig(models=("rate",))))
    >>> tree["rate"]["modulation_class"].sel(condition="response_gain", level=1.0).item()
    'multiplicative'
    """
    config = GainCurvesConfig() if config is None else config
    if not isinstance(config, GainCurvesConfig):
        raise TypeError(f"config must be a GainCurvesConfig, got {type(config).__name__}")
    root = seed_sequence(config.seed)
    instances, prepared = prepare_families(
        config, config.models, root=root, families=families, progress=progress
    )
    groups: dict[str, xr.Dataset] = {}
    for name, family in instances.items():
        ds = _family_curves(config, name, family, root, progress)
        groups[name] = xr.merge([ds, prepared[name]], combine_attrs="override").assign_attrs(
            ds.attrs, **group_attrs(name, family)
        )
    attrs = results.provenance(config, title="Gain curves: response against drive per level")
    root_ds = xr.Dataset(attrs={**attrs, "seed_entropy": str(root.entropy)})
    return xr.DataTree.from_dict({"/": root_ds, **{f"/{m}": ds for m, ds in groups.items()}})


# ------------------------------------------------------------------------------------------------------
# experiment registration: table, figure, quick mode
# ------------------------------------------------------------------------------------------------------
def summarize(tree: xr.DataTree) -> str:
    """Table: model, condition, level, gain ratio, threshold shift, class."""
    header = f"{'model':<8} {'condition':<15} {'level':>6} {'gain ratio':>11} {'thr shift':>10} {'class':<15}"
    lines = [header, "-" * len(header)]
    for model in tree.children:
        ds = tree[model].to_dataset()
        for cond in ds["condition"].values:
            for level in ds["level"].values:
                if level == ds.attrs.get("reference_level", 0.0):
                    continue
                row = ds.sel(condition=cond, level=level)
                lines.append(
                    f"{model:<8} {cond!s:<15} {level:>6.2f} {float(row.gain_ratio):>11.2f} "
                    f"{float(row.threshold_shift):>+10.3f} {row.modulation_class.item()!s:<15}"
                )
    lines.append("threshold shift in relative drive; nan: the curve is not classified (see fit_ok)")
    return "\n".join(lines)


def plot(tree: xr.DataTree) -> Figure:
    """One panel per (model, condition) with data and fitted curves per level, the gate against drive for
    families that record one (``gain``), and a summary panel."""
    import matplotlib.pyplot as plt

    from neuromod.plotting import plot_gain_curves, plot_modulation_summary

    panels: list[tuple[str, Any, str]] = [
        (m, c, "response") for m in tree.children for c in tree[m]["condition"].values
    ]
    panels += [
        (m, c, "gain") for m in tree.children if "gain" in tree[m] for c in tree[m]["condition"].values
    ]
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


#: Variants per family in quick mode: the first three the family declares.
QUICK_VARIANTS = 3


def quick(config: GainCurvesConfig) -> GainCurvesConfig:
    """A reduced run (seconds) for tests and notebooks: fewer drives and repeats, at most
    :data:`QUICK_VARIANTS` variants per family, every family's quick settings."""
    variants = dict(config.variants)
    for name in config.models:
        chosen = config.variants_of(name)
        if chosen != (None,):
            variants[name] = chosen[:QUICK_VARIANTS]
    return config.with_quick_families().replace(n_drives=13, n_repeats=8, variants=FrozenMap(variants))


def _run(config: GainCurvesConfig, *, progress: bool = False) -> xr.DataTree:
    return run_gain_curves(config, progress=progress)


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
