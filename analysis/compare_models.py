"""From saved task-switching results to the cross-level comparison: SE gate vs rate model vs spiking network.

Usage::

    python analysis/compare_models.py results/task-switching.nc --out figures/
    python analysis/compare_models.py results/seed0.nc results/seed1.nc --out figures/

Reads results of ``neuromod run task-switching`` (:func:`neuromod.protocols.run_task_switching`; every FILE is
checked before anything is written) and writes:

* ``comparison.png``: the experiment's four-panel figure (:func:`neuromod.protocols.switching_report.plot`);
  with several FILES one ``comparison_<run>.png`` per file instead;
* ``gain_measures.csv``: one row per run x model x population: ``gain_ratio`` (irrelevant / relevant cue),
  ``threshold_shift`` (relative drive), their standard errors, ``class`` (the f-I effect of the cue), the
  gain matching (``gain_match_target``: the SE gate's ratio the release was matched to;
  ``gain_match_error``: measured ratio / target - 1), and the model's gain profile and release per context
  (``gain_profile_<context>``, ``relative_gain_profile_<context>``, ``release_<context>``);
* ``correspondence.md``: per measure, the models side by side with their 95 % intervals and, for each model
  other than SE, whether it is *equivalent* to the SE model within a stated margin, *different*, or
  *inconclusive* (the data cannot tell: not agreement), by two one-sided tests
  (:func:`neuromod.measures.agreement` with ``margins``; :data:`MARGINS`, RT measures within the run's
  ``equivalence_margin_ms``). The two primary RT quantities (cost at the shortest CSI, its drop to the
  longest) use the run's paired contrasts on the trials both models ran (the summary's ``contrast_*``,
  :func:`neuromod.measures.model_contrast`), the others the models' separate intervals (conservative:
  more often inconclusive). The gain measures' margins are the classification's tolerances; the f-I class
  is the same or not. Then every paired contrast of the run. One section per run with several FILES;
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
from neuromod.protocols.switching_figure import plot as plot_comparison
from neuromod.protocols.switching_summary import preparation_fit

REFERENCE = "se"
Z95 = 1.959963984540054
#: Marks RT measures (ms) whose equivalence margin is the run's ``equivalence_margin_ms``.
RT_MARGIN = "equivalence_margin_ms"
#: Equivalence margins of the correspondence table, in each measure's units: how far from the SE model a
#: value may lie and still count as the same. RT costs and effects: the run's margin; proportions: 5 points;
#: the mean RT: 50 ms (the calibration's RT window is 300 ms wide); preparation time constants: 100 ms.
MARGINS: dict[str, float | str] = {
    "accuracy": 0.05,
    "mean_rt": 50.0,
    "rt_cost_shortest": RT_MARGIN,
    "rt_amplitude": RT_MARGIN,
    "rt_residual": RT_MARGIN,
    "rt_cost_drop": RT_MARGIN,
    "rt_switch_cost": RT_MARGIN,
    "error_switch_cost": 0.05,
    "rt_congruency_effect": RT_MARGIN,
    "error_congruency_effect": 0.05,
    "rt_error_minus_correct": RT_MARGIN,
    "rt_prep_amplitude": RT_MARGIN,
    "rt_prep_tau_eff": 100.0,
    "error_prep_amplitude": 0.05,
    "error_prep_tau_eff": 100.0,
}
#: (summary variable, label, digits, null value) of the behavioural rows of the correspondence table
BEHAVIOUR_ROWS = [
    ("accuracy", "accuracy", 2, 0.5),
    ("mean_rt", "mean RT, correct (ms)", 0, 0.0),
    ("rt_cost_shortest", "RT switch cost at the shortest CSI (ms)", 0, 0.0),
    ("rt_amplitude", "  preparation amplitude A (ms)", 0, 0.0),
    ("rt_residual", "  residual cost R (ms)", 0, 0.0),
    ("rt_cost_drop", "  shortest minus longest CSI (ms)", 0, 0.0),
    ("rt_switch_cost", "RT switch cost, pooled means (ms)", 0, 0.0),
    ("error_switch_cost", "error switch cost", 2, 0.0),
    ("rt_congruency_effect", "RT congruency effect (ms)", 0, 0.0),
    ("error_congruency_effect", "error congruency effect", 2, 0.0),
    ("rt_error_minus_correct", "error RT minus correct RT (ms)", 0, 0.0),
]
#: Verdict words of the table: agreement's verdict, '-' where it is undefined.
WORDS = {"equivalent": "equivalent", "different": "different", "inconclusive": "inconclusive"}


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
    for var in ("gain_match_error",):
        if var in s:
            df[var] = s[var].to_dataframe().reset_index()[var].to_numpy()
    if "gain_match_target" in s:
        target = dict(zip(s["population"].values, s["gain_match_target"].values, strict=True))
        df["gain_match_target"] = df["population"].map(target)
    for var in ("gain_profile", "relative_gain_profile", "release"):
        if var not in s:
            continue
        wide = s[var].to_dataframe().reset_index().pivot(index=["model", "population"], columns="context")
        wide.columns = [f"{var}_{ctx}" for _, ctx in wide.columns]
        df = df.merge(wide.reset_index(), on=["model", "population"], how="left")
    df.insert(0, "run", run)
    return df


Part = tuple[xr.Dataset, dict[str, float], dict[str, float], list[tuple[str, str, int]]]


def margins_of(s: xr.Dataset) -> dict[str, float]:
    """:data:`MARGINS` with the run's RT margin filled in (``equivalence_margin_ms``, default 20 ms)."""
    rt = float(s.attrs.get(RT_MARGIN, 20.0))
    return {k: rt if v == RT_MARGIN else float(v) for k, v in MARGINS.items()}


def _gain_summary(s: xr.Dataset, gain_config: dict) -> Part:
    """Per-population gain measures as scalars along ``model`` (value, SE, 95 % interval), with their
    equivalence margins: the tolerances the classification itself uses (``gain_tolerance`` on the ratio,
    ``threshold_tolerance`` x the drive range on the shift). A noise-free model's fits (the rate model's)
    have SE 0: its difference from the reference is then judged against the margin alone."""
    gain_tol = float(gain_config.get("gain_tolerance", 0.1))
    span = float(gain_config.get("drive_max", 2.0))  # relative drive runs from 0
    thr_tol = float(gain_config.get("threshold_tolerance", 0.05)) * span
    data: dict[str, xr.DataArray] = {}
    nulls: dict[str, float] = {}
    margins: dict[str, float] = {}
    rows = []
    for var, label, null, margin in (
        ("gain_ratio", "f-I gain ratio irr./rel.", 1.0, gain_tol),
        ("threshold_shift", "f-I threshold shift (rel. drive)", 0.0, thr_tol),
    ):
        for pop in s["population"].values:
            name = f"{var}_{pop}"
            v, se = s[var].sel(population=pop), s[f"{var}_se"].sel(population=pop)
            data[name] = v.drop_vars("population")
            data[f"{name}_se"] = se.drop_vars("population")
            data[f"{name}_low"] = (v - Z95 * se).drop_vars("population")
            data[f"{name}_high"] = (v + Z95 * se).drop_vars("population")
            nulls[name], margins[name] = null, margin
            rows.append((name, f"{label}, {pop}", 2))
    return xr.Dataset(data), nulls, margins, rows


def _prep_summary(s: xr.Dataset) -> Part:
    """The preparation fits (A, tau_eff) as scalars along ``model``, NaN where not identified."""
    data: dict[str, xr.DataArray] = {}
    nulls: dict[str, float] = {}
    margins = margins_of(s)
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
            data[f"{name}_se"] = se
            nulls[name] = null
            rows.append((name, f"{prefix} preparation: {label}", d))
    return xr.Dataset(data), nulls, {n: margins[n] for n in nulls}, rows


def paired_verdict(s: xr.Dataset, model: str, reference: str, quantity: str) -> str | None:
    """The summary's paired-contrast verdict of `model` against `reference` for `quantity`, if it has one."""
    if "contrast_verdict" not in s or quantity not in s["quantity"].values:
        return None
    for pair in (f"{reference} - {model}", f"{model} - {reference}"):
        if pair in s["pair"].values:
            return str(s["contrast_verdict"].sel(pair=pair, quantity=quantity).values)
    return None


def _word(verdict: str) -> str:
    return WORDS.get(verdict, "-")


def correspondence_table(tree: xr.DataTree) -> str:
    """The markdown correspondence table of one result (see the module docstring)."""
    s = summary_of(tree)
    models = [str(m) for m in s["model"].values]
    reference = REFERENCE if REFERENCE in models else models[0]
    others = [m for m in models if m != reference]
    behaviour = [r for r in BEHAVIOUR_ROWS if all(v in s for v in (r[0], f"{r[0]}_low", f"{r[0]}_high"))]
    keep = [v for r in behaviour for v in (r[0], f"{r[0]}_low", f"{r[0]}_high", f"{r[0]}_se") if v in s]
    scalars = s[keep]
    nulls = {r[0]: r[3] for r in behaviour}
    rt_margins = margins_of(s)
    margins = {r[0]: rt_margins[r[0]] for r in behaviour}
    rows = [(r[0], r[1], r[2]) for r in behaviour]
    for extra in (_prep_summary(s), _gain_summary(s, tree.nm.config.get("gain", {}))):
        scalars = scalars.merge(extra[0])
        nulls.update(extra[1])
        margins.update(extra[2])
        rows += extra[3]
    agree = agreement(scalars, reference=reference, measures=nulls, margins=margins)
    header = ["measure", *models, *[f"{m} vs {reference}" for m in others]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, label, digits in rows:
        a = agree.sel(measure=name)
        values = []
        for m in models:
            v = a.sel(model=m)
            text = format_interval(float(v["value"]), float(v["low"]), float(v["high"]), digits=digits)
            values.append("not identified" if text == "-" and "_prep_" in name else text)
        verdicts = []
        for m in others:
            paired = paired_verdict(s, m, reference, name)
            verdicts.append(
                f"{_word(paired)} (paired)"
                if paired is not None
                else _word(str(a["verdict"].sel(model=m).values))
            )
        lines.append("| " + " | ".join([label, *values, *verdicts]) + " |")
    for pop in s["population"].values:
        kinds = {m: str(s["modulation_class"].sel(model=m, population=pop).values) for m in models}
        verdicts = [
            "-"
            if "unfit" in (kinds[m], kinds[reference])
            else "same"
            if kinds[m] == kinds[reference]
            else "differs"
            for m in others
        ]
        lines.append("| " + " | ".join([f"f-I class, {pop}", *kinds.values(), *verdicts]) + " |")
    shown = ", ".join(f"{k} {v:g}" for k, v in rt_margins.items() if k in margins)
    pop0 = str(s["population"].values[0])
    gain_margin, shift_margin = (
        margins.get(f"{v}_{pop0}", np.nan) for v in ("gain_ratio", "threshold_shift")
    )
    lines += [
        "",
        f"Values with 95 % intervals; '{reference}' is the reference. Equivalence by two one-sided tests "
        "(TOST, alpha 0.05): 'equivalent': the 90 % interval of the difference lies within the margin; "
        "'different': its 95 % interval excludes 0 (and equivalence is not shown); 'inconclusive': the data "
        "cannot tell (not agreement); '-': undefined. '(paired)': the run's paired contrast on the trials "
        "both models ran; otherwise the models' separate intervals (independent: conservative). Margins "
        f"(units of the measure): {shown}; gain ratio {gain_margin:g}, threshold shift {shift_margin:g} "
        "(the classification's tolerances). f-I class: the same class or not ('-' when a curve is unfit). "
        "Preparation fits count only where identified (neuromod.measures.fit_preparation).",
    ]
    return "\n".join(lines) + "\n"


def contrasts_section(tree: xr.DataTree) -> str:
    """Every paired contrast of the run (the summary's ``contrast_*``), as a markdown table."""
    s = summary_of(tree)
    if "contrast" not in s:
        return ""
    margin = float(s.attrs.get(RT_MARGIN, np.nan))
    lines = [
        "Paired contrasts on the trials both models ran (a - b, ms, 95 % interval; TOST margin "
        f"+-{margin:g} ms):",
        "",
        "| pair | quantity | contrast | verdict |",
        "|---|---|---|---|",
    ]
    for pair in s["pair"].values:
        for q in s["quantity"].values:
            c = s.sel(pair=pair, quantity=q)
            text = format_interval(float(c["contrast"]), float(c["contrast_low"]), float(c["contrast_high"]))
            lines.append(f"| {pair} | {q} | {text} | {c['contrast_verdict'].values} |")
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
        paired = contrasts_section(tree)
        body = f"{body}\n{paired}" if paired else body
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
