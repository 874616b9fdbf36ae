"""From saved task-switching results to the cross-level comparison: SE gate vs rate model vs spiking network.

Usage::

    python analysis/compare_models.py results/task-switching.nc --out figures/
    python analysis/compare_models.py results/seed0.nc results/seed1.nc --out figures/

Reads results of ``neuromod run task-switching`` (:func:`neuromod.protocols.run_task_switching`; every FILE is
checked before anything is written) and writes:

* ``comparison.png``: the experiment's four-panel figure (:func:`neuromod.protocols.switching_report.plot`);
  with several FILES one ``comparison_<run>.png`` per file instead;
* ``gain_measures.csv``: one row per run x model x population: ``gain_ratio`` (irrelevant / relevant cue),
  ``threshold_shift`` (relative drive), their standard errors, ``class`` (the f-I effect of the cue) and
  the model's gain profile per context (``gain_profile_<context>``, ``relative_gain_profile_<context>``);
* ``correspondence.md``: per measure, the models side by side with their 95 % intervals and, for each model
  other than SE, whether its interval overlaps the SE model's (``agrees``) or not (``differs``), by
  :func:`neuromod.measures.agreement`; the gain measures use value +- max(1.96 SE, half the classification
  tolerance), the f-I class agrees when it is the same; one section per run with several FILES;
* with several FILES, ``summary_across_runs.csv``: every file's scalar summary measures (one row per run x
  model) with the columns ``run`` (file stem), ``tau_ms`` and ``seed``.

Nothing here runs a model: it reads the files only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
import xarray as xr

from neuromod import results
from neuromod.measures import agreement
from neuromod.plotting import format_interval
from neuromod.protocols.switching_report import plot as plot_comparison
from neuromod.protocols.switching_summary import preparation_fit

REFERENCE = "se"
Z95 = 1.959963984540054
#: (summary variable, label, digits, null value) of the behavioural rows of the correspondence table
BEHAVIOUR_ROWS = [
    ("accuracy", "accuracy", 2, 0.5),
    ("mean_rt", "mean RT, correct (ms)", 0, 0.0),
    ("rt_switch_cost", "RT switch cost (ms)", 0, 0.0),
    ("error_switch_cost", "error switch cost", 2, 0.0),
    ("rt_congruency_effect", "RT congruency effect (ms)", 0, 0.0),
    ("error_congruency_effect", "error congruency effect", 2, 0.0),
]


def load_result(path: Path) -> xr.DataTree:
    """Load a task-switching result, or raise OSError/ValueError with a one-line reason."""
    return results.load(path, experiment="task-switching")


def run_names(files: list[Path]) -> list[str]:
    """File stems, made unique with an index where two files share one."""
    stems = [f.stem for f in files]
    return [s if stems.count(s) == 1 else f"{s}_{i}" for i, s in enumerate(stems)]


def summary_of(tree: xr.DataTree) -> xr.Dataset:
    """The ``summary`` group of a task-switching result."""
    return tree["summary"].to_dataset(inherit=False)


# ------------------------------------------------------------------------------------------------------
# tables
# ------------------------------------------------------------------------------------------------------
def gain_table(tree: xr.DataTree, run: str) -> pd.DataFrame:
    """One row per (model, population): gain ratio, threshold shift (with SEs), class and gain profile."""
    s = summary_of(tree)
    cols = ["gain_ratio", "gain_ratio_se", "threshold_shift", "threshold_shift_se"]
    df = s[cols].to_dataframe().reset_index()[["model", "population", *cols]]
    classes = s["modulation_class"].to_dataframe().reset_index()["modulation_class"]
    df["class"] = classes.astype(str).to_numpy()
    for var in ("gain_profile", "relative_gain_profile"):
        wide = s[var].to_dataframe().reset_index().pivot(index=["model", "population"], columns="context")
        wide.columns = [f"{var}_{ctx}" for _, ctx in wide.columns]
        df = df.merge(wide.reset_index(), on=["model", "population"], how="left")
    df.insert(0, "run", run)
    return df


def _gain_summary(
    s: xr.Dataset, gain_config: dict
) -> tuple[xr.Dataset, dict[str, float], list[tuple[str, str, int]]]:
    """Per-population gain measures as scalars along ``model`` with intervals for the agreement test.

    Interval: value +- max(1.96 SE, half the classification tolerance): the fits of a noise-free model
    (the rate model) have SE 0, so two models agree when their values differ by less than the tolerance
    the classification itself uses (``gain_tolerance`` relative, ``threshold_tolerance`` x drive range),
    or by less than their combined uncertainty.
    """
    gain_tol = float(gain_config.get("gain_tolerance", 0.1))
    span = float(gain_config.get("drive_max", 2.0))  # relative drive runs from 0
    thr_tol = float(gain_config.get("threshold_tolerance", 0.05)) * span
    data: dict[str, xr.DataArray] = {}
    nulls: dict[str, float] = {}
    rows = []
    for var, label, null in (
        ("gain_ratio", "f-I gain ratio irr./rel.", 1.0),
        ("threshold_shift", "f-I threshold shift (rel. drive)", 0.0),
    ):
        for pop in s["population"].values:
            name = f"{var}_{pop}"
            v, se = s[var].sel(population=pop), s[f"{var}_se"].sel(population=pop)
            tol = gain_tol / 2 if var == "gain_ratio" else thr_tol / 2
            half = np.maximum(Z95 * se, tol)
            data[name] = v.drop_vars("population")
            data[f"{name}_low"] = (v - half).drop_vars("population")
            data[f"{name}_high"] = (v + half).drop_vars("population")
            nulls[name] = null
            rows.append((name, f"{label}, {pop}", 2))
    return xr.Dataset(data), nulls, rows


def _prep_summary(s: xr.Dataset) -> tuple[xr.Dataset, dict[str, float], list[tuple[str, str, int]]]:
    """The preparation fits (A, tau_eff) as scalars along ``model``, NaN where not identified."""
    data: dict[str, xr.DataArray] = {}
    nulls: dict[str, float] = {}
    rows = []
    models = [str(m) for m in s["model"].values]
    for prefix, digits in (("rt", 0), ("error", 2)):
        ok = np.array([preparation_fit(s.sel(model=m), prefix) is not None for m in models])
        for key, label, d, null in (
            ("amplitude", "preparable switch cost A", digits, 0.0),
            ("tau_eff", "preparation time constant tau_eff (ms)", 0, 0.0),
        ):
            name = f"{prefix}_prep_{key}"
            if name not in s or f"{name}_se" not in s:
                continue
            v = s[name].where(ok)
            se = s[f"{name}_se"].where(ok)
            data[name], data[f"{name}_low"], data[f"{name}_high"] = v, v - Z95 * se, v + Z95 * se
            nulls[name] = null
            rows.append((name, f"{prefix} preparation: {label}", d))
    return xr.Dataset(data), nulls, rows


def correspondence_table(tree: xr.DataTree) -> str:
    """The markdown correspondence table of one result (see the module docstring)."""
    s = summary_of(tree)
    models = [str(m) for m in s["model"].values]
    reference = REFERENCE if REFERENCE in models else models[0]
    others = [m for m in models if m != reference]
    behaviour = [r for r in BEHAVIOUR_ROWS if all(v in s for v in (r[0], f"{r[0]}_low", f"{r[0]}_high"))]
    scalars = s[[v for r in behaviour for v in (r[0], f"{r[0]}_low", f"{r[0]}_high")]]
    nulls = {r[0]: r[3] for r in behaviour}
    rows = [(r[0], r[1], r[2]) for r in behaviour]
    for extra in (_prep_summary(s), _gain_summary(s, tree.nm.config.get("gain", {}))):
        scalars = scalars.merge(extra[0])
        nulls.update(extra[1])
        rows += extra[2]
    agree = agreement(scalars, reference=reference, measures=nulls)
    words = {1: "agrees", 0: "differs", -1: "-"}
    header = ["measure", *models, *[f"{m} vs {reference}" for m in others]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, label, digits in rows:
        a = agree.sel(measure=name)
        values = []
        for m in models:
            v = a.sel(model=m)
            text = format_interval(float(v["value"]), float(v["low"]), float(v["high"]), digits=digits)
            values.append("not identified" if text == "-" and "_prep_" in name else text)
        verdicts = [words[int(a["agrees"].sel(model=m))] for m in others]
        lines.append("| " + " | ".join([label, *values, *verdicts]) + " |")
    for pop in s["population"].values:
        kinds = {m: str(s["modulation_class"].sel(model=m, population=pop).values) for m in models}
        verdicts = [
            "-"
            if "unfit" in (kinds[m], kinds[reference])
            else "agrees"
            if kinds[m] == kinds[reference]
            else "differs"
            for m in others
        ]
        lines.append("| " + " | ".join([f"f-I class, {pop}", *kinds.values(), *verdicts]) + " |")
    lines += [
        "",
        f"Values with 95 % intervals; '{reference}' is the reference. 'agrees': the intervals overlap (not "
        "shown to differ with these trials); 'differs': they do not; '-': an interval is undefined. Gain "
        "measures: value +- max(1.96 SE, half the classification tolerance); f-I class: the same class or "
        "not ('-' when a curve is unfit). Preparation fits count only where identified "
        "(neuromod.measures.fit_preparation).",
    ]
    return "\n".join(lines) + "\n"


def summary_scalars(tree: xr.DataTree, run: str) -> pd.DataFrame:
    """One row per model: every numeric summary variable over ``model`` only, with run, tau_ms and seed."""
    s = summary_of(tree)
    names = [v for v in s.data_vars if s[v].dims == ("model",) and np.issubdtype(s[v].dtype, np.number)]
    df = s[names].to_dataframe().reset_index()
    config = tree.nm.config
    df.insert(0, "seed", config.get("seed"))
    df.insert(0, "tau_ms", config.get("tau_ms"))
    df.insert(0, "run", run)
    return df


# ------------------------------------------------------------------------------------------------------
# script
# ------------------------------------------------------------------------------------------------------
def main(
    files: Annotated[list[Path], typer.Argument(help="Task-switching results (.nc or .zarr).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("figures"),
) -> None:
    """Write the cross-level comparison of FILES into OUT."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trees = []
    for file in files:
        try:
            trees.append(load_result(file))
        except (OSError, ValueError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from None
    runs = run_names(files)
    several = len(trees) > 1
    gains = pd.concat([gain_table(t, r) for t, r in zip(trees, runs, strict=True)], ignore_index=True)
    sections = []
    for tree, run in zip(trees, runs, strict=True):
        body = correspondence_table(tree)
        sections.append(f"## {run}\n\n{body}" if several else body)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for tree, run in zip(trees, runs, strict=True):
        fig = plot_comparison(tree)
        name = f"comparison_{run}.png" if several else "comparison.png"
        written.append(results.save_figure(fig, out / name, overwrite=True))
        plt.close(fig)
    gains.to_csv(out / "gain_measures.csv", index=False)
    written.append(out / "gain_measures.csv")
    md = out / "correspondence.md"
    md.write_text("# SE gate vs rate model vs spiking network\n\n" + "\n".join(sections))
    written.append(md)
    if several:
        across = pd.concat(
            [summary_scalars(t, r) for t, r in zip(trees, runs, strict=True)], ignore_index=True
        )
        across.to_csv(out / "summary_across_runs.csv", index=False)
        written.append(out / "summary_across_runs.csv")
    for path in written:
        typer.echo(f"wrote {path}")


if __name__ == "__main__":
    typer.run(main)
