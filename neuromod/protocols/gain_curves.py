"""The ``gain-curves`` experiment: is each modulation multiplicative, divisive or additive?

One measurement protocol on every model family: the steady-state response of a modulated population
against its relative drive (1 = the input during the task's stimulus at 0 % coherence, the family's
``reference``), at the same modulation levels, fitted and classified the same way
(:func:`neuromod.measures.fit_and_classify`: by default the form is chosen per condition by AIC, so curves
that saturate are fitted with the saturating form; curves the fitted form does not describe are reported as
"unfit" or "suppressed", never classified). For each family it sweeps the modulation variants it has
(``neuromod.protocols.family.ModelFamily.variants``: the rate model's modes, the spiking network's
mechanisms), or those listed in ``variants``:

* ``rate``: steady-state f-I curves of a modulated population (:func:`neuromod.rate.f_i_curves`; here with
  the Abbott-Chance transfer function of Wong & Wang 2006), levels = modulator level m;
* ``spiking``: brian2 LIF f-I sweeps (:func:`neuromod.spiking.fi_sweep`), levels = modulator level m;
* ``se``: the trained SE task model's gated channels per population, levels = the cue mixed away from the
  population's own task (the SE gate reads its input through the squeeze, so its curves need not be purely
  multiplicative).

The reference of the classification. Every level is classified against the family's *unmodulated*
response where it has one (:data:`UNMODULATED`), so a gain above it is multiplicative and one below it
divisive:

* ``rate``: the population's own transfer function ``phi(I)``, i.e. gain ``g = 1`` and shift 0
  (:class:`neuromod.rate.Modulation`: ``g(m) = gain_at_zero + gain_per_level m``, ``dtheta(m) =
  shift_na_per_level m``). In this experiment ``gain_at_zero = 1``, so level 0 (m = 0) is that curve; with
  another ``gain_at_zero`` (a gain mode) the curve at ``g = 1`` is swept separately;
* ``spiking``: the plain LIF cell, which every mechanism is at m = 0
  (:class:`~neuromod.spiking.ModulationParams`), except ``input_gain`` with ``gain_min`` != 1 (efficacy
  ``gain_min`` at m = 0), whose unmodulated curve (efficacy 1) is swept separately;
* ``se`` (and a family not in :data:`UNMODULATED`): no unmodulated state (the gate is always on), so the
  levels are compared with level 0, the population's own task cued.

Where the unmodulated curve is level 0 of the sweep, the levels are compared with that level
(``reference_level``); where it is swept separately, it is passed to the classifier as the explicit
``reference`` (it is not passed twice: the form's AIC would count it twice).

The result is an ``xr.DataTree`` with one group per family: ``response`` over (``condition``, ``level``,
``drive``, ``repeat``), the fits (``fit_*``, the chosen form ``fit_form``), the classification, and the
reference used: ``reference_response`` over (``condition``, ``drive``, ``repeat``), ``reference_level``
(the level it is, NaN for a separate sweep), its fit ``reference_fit_*`` and the group attribute
``reference``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from neuromod import registry, results
from neuromod._checks import check_bool
from neuromod._memory import check_memory
from neuromod._random import seed_sequence
from neuromod.config import Config, ConfigError, FrozenMap, param
from neuromod.protocols.experiment import (
    ClassifySettings,
    ExperimentConfig,
    family_stream,
    group_attrs,
    prepare_families,
)
from neuromod.protocols.family import ModelFamily, get_family
from neuromod.protocols.memory import estimate_gain_curves as estimate_memory

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "UNMODULATED",
    "GainCurvesConfig",
    "estimate_memory",
    "plot",
    "quick",
    "run_gain_curves",
    "summarize",
]


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
        (0.0, 0.5, 1.0), low=0.0, high=1.0, doc="modulation levels (0: m = 0, the unmodulated curve here)"
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


def _rate_unmodulated(config: Config) -> Config:
    # g(0) = gain_at_zero, dtheta(0) = 0: with gain_at_zero = 1 level 0 fires phi(I) in every mode
    if config.mode == "threshold" or config.gain_at_zero == 1.0:  # type: ignore[attr-defined]
        return config
    return config.replace(gain_at_zero=1.0)


def _spiking_unmodulated(config: Config) -> Config:
    # m = 0 is the plain LIF for every mechanism except input_gain with an efficacy gain_min != 1 there
    if config.mechanism != "input_gain" or config.gain_min == 1.0:  # type: ignore[attr-defined]
        return config
    return config.replace(gain_min=1.0, gain_max=max(config.gain_max, 1.0))  # type: ignore[attr-defined]


#: Per family, the unmodulated response: a function of the swept member's config that returns the config
#: whose level 0 (m = 0) is the unmodulated curve (the member's own config when its level 0 is), and what
#: that curve is. A family not listed has no unmodulated state: its levels are compared with level 0.
UNMODULATED: dict[str, tuple[Callable[[Config], Config], str]] = {
    "rate": (
        _rate_unmodulated,
        "unmodulated: the transfer function phi(I) itself (gain g = 1, threshold shift 0)",
    ),
    "spiking": (
        _spiking_unmodulated,
        "unmodulated: the plain LIF cell (every mechanism at m = 0, input_gain at efficacy 1)",
    ),
}


def _reference_curves(
    config: GainCurvesConfig,
    name: str,
    member: ModelFamily,
    ds: xr.Dataset,
    seed: np.random.SeedSequence,
    progress: bool,
) -> tuple[xr.DataArray, float]:
    """The curve that `member`'s levels are classified against, over (condition, drive, repeat), and the
    level it is (NaN: swept separately, the unmodulated curve being no level of the sweep)."""
    level0 = ds["response"].sel(level=0.0, drop=True)
    if name not in UNMODULATED:
        return level0, 0.0
    unmodulated, _ = UNMODULATED[name]
    ref_config = unmodulated(member.config)
    if ref_config == member.config:
        return level0, 0.0
    curves = type(member)(ref_config).fi_curves(  # type: ignore[call-arg]
        drives=ds["drive"].values,
        levels=np.array([0.0]),
        n_repeats=config.n_repeats,
        seed=seed,
        progress=progress,
    )
    return curves["response"].isel(level=0, drop=True).assign_coords(condition=ds["condition"].values), np.nan


def _classify(
    config: GainCurvesConfig, ds: xr.Dataset, reference: xr.DataArray, ref_level: xr.DataArray
) -> xr.Dataset:
    """Fit, screen and classify each condition against its reference: the level ``ref_level`` of the sweep,
    or the separately swept `reference` curve (NaN level). The reference's fit is stored as
    ``reference_fit_*`` for every condition."""
    parts = []
    for cond in ds["condition"].values:
        sub = ds.sel(condition=[cond])
        level = float(ref_level.sel(condition=cond))
        if np.isnan(level):
            part = config.classify(sub, reference=reference.sel(condition=[cond]))
        else:
            part = config.classify(sub, reference_level=level)
            for var in [v for v in part.data_vars if v.startswith("fit_") and "level" in part[v].dims]:
                if var == "fit_form":
                    continue
                part[f"reference_{var}"] = part[var].sel(level=level, drop=True)
        parts.append(part)
    out = parts[0] if len(parts) == 1 else xr.concat(parts, "condition", combine_attrs="drop_conflicts")
    for key in ("reference_level", "reference"):  # per condition: reference_level (the variable) below
        out.attrs.pop(key, None)
    if "fit_form" not in out:  # a fixed form: stored all the same
        out["fit_form"] = xr.full_like(out["fit_ok"], config.form, dtype=object).astype(str)
    out["fit_form"] = out["fit_form"].assign_attrs(
        units="1", long_name=out["fit_form"].attrs.get("long_name", "fitted form")
    )
    out["reference_fit_ok"] = out["reference_fit_ok"].astype(np.int8)
    for var in [v for v in out.data_vars if v.startswith("reference_fit_")]:
        attrs = dict(out[var.removeprefix("reference_")].attrs)
        attrs["long_name"] = f"reference curve: {attrs.get('long_name', var)}"
        out[var] = out[var].assign_attrs(attrs)
    return out


def _family_curves(
    config: GainCurvesConfig, name: str, family: ModelFamily, root: np.random.SeedSequence, progress: bool
) -> xr.Dataset:
    """One family's curves over all its swept variants, along ``condition``, classified against the
    family's unmodulated curve (or level 0 where it has none)."""
    drives = np.linspace(config.drive_min, config.drive_max, config.n_drives)
    levels = np.asarray(config.levels, dtype=float)
    parts, refs, ref_levels = [], [], []
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
        curves = member.fi_curves(
            drives=drives, levels=levels, n_repeats=config.n_repeats, seed=seed, progress=progress
        )
        ref_seed = family_stream(root, name, f"fi_curves_unmodulated:{variant or ''}")
        ref, ref_level = _reference_curves(config, name, member, curves, ref_seed, progress)
        parts.append(curves)
        refs.append(ref)
        ref_levels.append(np.full(curves.sizes["condition"], ref_level))
    ds = parts[0] if len(parts) == 1 else xr.concat(parts, dim="condition", combine_attrs="override")
    reference = xr.concat(refs, dim="condition") if len(refs) > 1 else refs[0]
    reference = reference.transpose("condition", "drive", "repeat").assign_attrs(
        units=ds["response"].attrs.get("units", "1"),
        long_name=f"reference curve of the classification: {ds['response'].attrs.get('long_name', '')}",
    )
    ref_level = xr.DataArray(
        np.concatenate(ref_levels),
        dims="condition",
        coords={"condition": ds["condition"]},
        attrs={"units": "1", "long_name": "level whose curve is the reference (NaN: an unmodulated sweep)"},
    )
    out = _classify(config, ds, reference, ref_level)
    out["reference_response"] = reference
    out["reference_level"] = ref_level
    if name in UNMODULATED:
        what = UNMODULATED[name][1]
    else:
        level_name = str(ds["level"].attrs.get("long_name", "modulation level"))
        what = f"level 0 ({level_name} = 0): no unmodulated curve for this family (gain_curves.UNMODULATED)"
    return out.assign_attrs(reference=what, fit_form=config.form)


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
        with the form of each curve (``fit_form``; ``aic_*`` per condition with ``form="auto"``), the
        classification against the reference curve (``modulation_class``, ``gain_ratio``,
        ``threshold_shift``, with ``_se``, ``fit_ok``) and that curve: ``reference_response`` over
        (``condition``, ``drive``, ``repeat``), ``reference_level`` (NaN: a separate unmodulated sweep),
        ``reference_fit_*``, and the group attribute ``reference`` (what it is; see the module docstring).

    Raises
    ------
    TypeError
        `config` is not a GainCurvesConfig.
    neuromod.protocols.memory.MemoryLimitError
        The run's estimated memory (:func:`estimate_memory`) exceeds the limit, before any work.

    Examples
    --------
    >>> tree = run_gain_curves(quick(GainCurvesConfig(models=("rate",))))
    >>> tree["rate"]["modulation_class"].sel(condition="response_gain", level=1.0).item()
    'multiplicative'
    """
    config = GainCurvesConfig() if config is None else config
    if not isinstance(config, GainCurvesConfig):
        raise TypeError(f"config must be a GainCurvesConfig, got {type(config).__name__}")
    check_bool("progress", progress)
    check_memory(estimate_memory(config))
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
    """Table: model, condition, level, fitted form, gain ratio and threshold shift (with standard errors)
    against the reference curve, class; then what each model's reference is."""
    header = (
        f"{'model':<8} {'condition':<15} {'level':>6} {'form':<16} {'gain ratio':>13} "
        f"{'thr shift':>15} {'class':<15}"
    )
    lines = [header, "-" * len(header)]
    references = []
    for model in tree.children:
        ds = tree[model].to_dataset()
        for cond in ds["condition"].values:
            ref_level = float(ds["reference_level"].sel(condition=cond)) if "reference_level" in ds else 0.0
            for level in ds["level"].values:
                if level == ref_level:  # the reference itself
                    continue
                row = ds.sel(condition=cond, level=level)
                form = str(row["fit_form"].values) if "fit_form" in row else str(ds.attrs.get("fit_form", ""))
                ratio = f"{float(row.gain_ratio):.2f}±{float(row.gain_ratio_se):.2f}"
                shift = f"{float(row.threshold_shift):+.3f}±{float(row.threshold_shift_se):.3f}"
                lines.append(
                    f"{model:<8} {cond!s:<15} {level:>6.2f} {form:<16} {ratio:>13} {shift:>15} "
                    f"{row.modulation_class.item()!s:<15}"
                )
        references.append(f"{model}: against {ds.attrs.get('reference', 'level 0')}")
    lines.append("threshold shift in relative drive; nan: the curve is not classified (see fit_ok)")
    return "\n".join([*lines, *references])


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
    ``QUICK_VARIANTS`` variants per family, every family's quick settings."""
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
        memory=estimate_memory,
    ),
    replace=True,
)
