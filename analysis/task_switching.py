"""From a saved task-switching result to its behaviour figures and tables.

Usage::

    python analysis/task_switching.py results/task-switching.nc --out figures/

Reads a result of ``neuromod run task-switching`` (:func:`neuromod.protocols.run_task_switching`) and writes,
per model, from the per-trial data (recomputed with :mod:`neuromod.measures`; a model limited to the table's
first trials, ``ran`` in its group, counts the trials it ran):

* ``behaviour_by_condition.csv``: one row per model x switch x congruent x CSI (and ``csi_ms = "all"``
  pooled over CSIs): trials, accuracy with 95 % Wilson bounds, mean RT of correct responses with 95 % t
  bounds, number of correct RTs. The session's first trial is left out (it is neither switch nor repeat).
* ``switch_costs.csv``: one row per model x CSI, plus the pooled row ``csi_ms = "all"``: RT switch cost
  (Welch 95 % interval), error switch cost (Newcombe 95 % interval), the means and counts they come from.
* ``switch_cost_estimates.csv``: the run's primary estimates, from its ``summary``: one row per model x
  method x quantity, with standard error, 95 % interval and ``resolved`` (the interval excludes 0):
  method ``regression`` (the trial-level switch-cost regression with the modulator's ``tau_ms`` fixed,
  :func:`neuromod.measures.switch_regression`: ``rt_``/``error_`` ``cost_shortest``, ``amplitude`` A,
  ``residual`` R, ``cost_drop``; RT in ms, errors in log odds) and ``fixed-tau fit`` (the per-CSI RT
  costs fitted with ``A exp(-CSI / tau_ms) + R``, :func:`neuromod.measures.fit_preparation_fixed`).
* ``preparation_fits.csv``: one row per model x {rt, error}: the free-tau preparation fit
  ``cost(CSI) = A exp(-CSI / tau_eff) + residual`` with standard errors and ``identified`` (1/0: all finite,
  ``|A|`` and ``tau_eff`` above two standard errors, ``tau_eff`` within [shortest CSI / 10, 10 x longest
  CSI]; :func:`neuromod.measures.fit_preparation`), from the run's ``summary``.
* ``model_contrasts.csv``: the summary's paired contrasts between models on the trials both ran (one row
  per pair x quantity: the difference a - b with its 95 % interval, the equivalence margin and the TOST
  verdict; :func:`neuromod.measures.model_contrast`).
* ``switch_cost_vs_csi.png``: RT and error switch costs against CSI per model (95 % CI) with the identified
  free-tau fits and (RT, dashed) the fixed-tau fits; ``accuracy_by_condition.png``: accuracy and mean RT by
  switch x congruency per model (pooled over CSIs, 95 % CI);
* ``task_switching_table.md``: the main measures, one column per model, and the paired contrasts.

Nothing here runs a model: it reads the file only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import pandas as pd
import typer
import xarray as xr

from neuromod import results
from neuromod.measures import congruency_effect, switch_cost, switching_behaviour
from neuromod.plotting import format_interval, plot_by_condition, plot_switch_cost

if TYPE_CHECKING:
    from matplotlib.figure import Figure

EXPERIMENT = "task-switching"
BEHAVIOUR_COLUMNS = [
    "n_trials",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "mean_rt",
    "mean_rt_low",
    "mean_rt_high",
    "n_rt",
]
COST_COLUMNS = [
    "rt_cost",
    "rt_cost_low",
    "rt_cost_high",
    "error_cost",
    "error_cost_low",
    "error_cost_high",
    "mean_rt_switch",
    "mean_rt_repeat",
    "error_rate_switch",
    "error_rate_repeat",
    "n_switch",
    "n_repeat",
]
FIT_NAMES = ("amplitude", "tau_eff", "residual")
#: The summary's switch-cost estimates: (method, quantity, summary variable, units).
ESTIMATES = [
    *[
        ("regression", f"{o}_{q}", f"{o}_{q}", "ms" if o == "rt" else "log odds")
        for o in ("rt", "error")
        for q in ("cost_shortest", "amplitude", "residual", "cost_drop")
    ],
    ("fixed-tau fit", "rt_amplitude", "rt_prep_fixed_amplitude", "ms"),
    ("fixed-tau fit", "rt_residual", "rt_prep_fixed_residual", "ms"),
]
ESTIMATE_COLUMNS = ["model", "method", "quantity", "units", "estimate", "se", "low", "high", "resolved"]
CONTRAST_COLUMNS = ["pair", "model_a", "model_b", "quantity", "contrast", "low", "high", "margin", "verdict"]


# ------------------------------------------------------------------------------------------------------
# input
# ------------------------------------------------------------------------------------------------------
def load_result(path: Path) -> xr.DataTree:
    """Load a task-switching result, or raise OSError/ValueError with a one-line reason."""
    return results.load(path, experiment="task-switching")


def model_names(tree: xr.DataTree) -> list[str]:
    """The model groups of a task-switching result, in the run's order."""
    order = list(tree.nm.config.get("models", [])) or list(tree.children)
    return [
        m
        for m in order
        if m in tree.children and all(v in tree[m].data_vars for v in ("choice", "correct", "rt"))
    ]


def _csi_label(value: float) -> str:
    return f"{float(value):g}"


def trials_run(tree: xr.DataTree, model: str) -> tuple[int, int]:
    """(trials the model ran, trials in the table): a model limited by ``max_trials`` has ``ran``."""
    total = tree.to_dataset(inherit=False).sizes["trial"]
    group = tree[model].to_dataset(inherit=False)
    return (int(group["ran"].values.astype(bool).sum()) if "ran" in group else total), total


def _summary(tree: xr.DataTree) -> xr.Dataset:
    return tree["summary"].to_dataset(inherit=False)


# ------------------------------------------------------------------------------------------------------
# tables
# ------------------------------------------------------------------------------------------------------
def behaviour_table(tree: xr.DataTree) -> pd.DataFrame:
    """One row per (model, switch, congruent, csi_ms): accuracy and mean RT with 95 % bounds, counts.

    ``csi_ms`` is the CSI in ms as text, or ``"all"`` for the cells pooled over CSIs.
    """
    frames = []
    for m in model_names(tree):
        by_csi = switching_behaviour(tree, model=m, by=("is_switch", "is_congruent", "csi_ms"))
        df = by_csi[BEHAVIOUR_COLUMNS].to_dataframe().reset_index()
        df["csi_ms"] = [_csi_label(c) for c in df.pop("csi")]
        pooled = switching_behaviour(tree, model=m, by=("is_switch", "is_congruent"))
        dp = pooled[BEHAVIOUR_COLUMNS].to_dataframe().reset_index()
        dp["csi_ms"] = "all"
        both = pd.concat([df, dp], ignore_index=True)
        both.insert(0, "model", m)
        frames.append(both[["model", "switch", "congruent", "csi_ms", *BEHAVIOUR_COLUMNS]])
    return pd.concat(frames, ignore_index=True)


def switch_cost_table(tree: xr.DataTree) -> pd.DataFrame:
    """One row per (model, csi_ms) and one pooled row per model (``csi_ms = "all"``): switch costs."""
    frames = []
    for m in model_names(tree):
        by_csi = switch_cost(tree, model=m, by=("csi_ms",))
        df = by_csi[COST_COLUMNS].to_dataframe().reset_index()
        df["csi_ms"] = [_csi_label(c) for c in df.pop("csi")]
        pooled = switch_cost(tree, model=m, by=())
        dp = pd.DataFrame([{k: pooled[k].item() for k in COST_COLUMNS}])
        dp["csi_ms"] = "all"
        both = pd.concat([df, dp], ignore_index=True)
        both.insert(0, "model", m)
        frames.append(both[["model", "csi_ms", *COST_COLUMNS]])
    return pd.concat(frames, ignore_index=True)


def estimates_table(tree: xr.DataTree) -> pd.DataFrame:
    """One row per (model, method, quantity): the summary's switch-cost estimates (see the module docstring).

    ``resolved`` is 1 where the 95 % interval excludes 0, 0 where it includes it, -1 where it is undefined.
    """
    s = _summary(tree)
    rows = []
    for m in model_names(tree):
        row = s.sel(model=m)
        for method, quantity, var, units in ESTIMATES:
            if var not in s:
                continue
            est, se, low, high = (float(row[var + k]) for k in ("", "_se", "_low", "_high"))
            defined = np.isfinite(low) and np.isfinite(high)
            resolved = int(low > 0 or high < 0) if defined else -1
            rows.append(
                {
                    "model": m,
                    "method": method,
                    "quantity": quantity,
                    "units": units,
                    "estimate": est,
                    "se": se,
                }
                | {"low": low, "high": high, "resolved": resolved}
            )
    return pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)


def contrast_table(tree: xr.DataTree) -> pd.DataFrame:
    """One row per (pair, quantity): the summary's paired contrasts (empty for a single-model result)."""
    s = _summary(tree)
    if "contrast" not in s:
        return pd.DataFrame(columns=CONTRAST_COLUMNS)
    margin = float(s.attrs.get("equivalence_margin_ms", np.nan))
    rows = []
    for pair in s["pair"].values:
        a, b = (x.strip() for x in str(pair).split(" - "))
        for q in s["quantity"].values:
            c = s.sel(pair=pair, quantity=q)
            rows.append(
                {"pair": str(pair), "model_a": a, "model_b": b, "quantity": str(q)}
                | {
                    k: float(c[f"contrast{x}"])
                    for k, x in (("contrast", ""), ("low", "_low"), ("high", "_high"))
                }
                | {"margin": margin, "verdict": str(c["contrast_verdict"].values)}
            )
    return pd.DataFrame(rows, columns=CONTRAST_COLUMNS)


def preparation_table(tree: xr.DataTree) -> pd.DataFrame:
    """One row per (model, cost = rt/error): amplitude, tau_eff, residual, their SEs and ``identified``.

    From the run's ``summary`` (``rt_prep_*``, ``error_prep_*``; :func:`neuromod.measures.fit_preparation`).
    """
    summary = _summary(tree)
    rows = []
    for m in model_names(tree):
        row = summary.sel(model=m)
        for prefix in ("rt", "error"):
            rec: dict[str, object] = {"model": m, "cost": prefix}
            for n in FIT_NAMES:
                rec[n] = float(row[f"{prefix}_prep_{n}"])
                rec[f"{n}_se"] = float(row[f"{prefix}_prep_{n}_se"])
            rec["identified"] = int(row[f"{prefix}_prep_identified"])
            rows.append(rec)
    return pd.DataFrame(rows)


def markdown_table(
    tree: xr.DataTree,
    costs: pd.DataFrame,
    fits: pd.DataFrame,
    estimates: pd.DataFrame | None = None,
    contrasts: pd.DataFrame | None = None,
) -> str:
    """The main measures side by side (one column per model) as a markdown table; the paired contrasts."""
    models = model_names(tree)
    estimates = estimates_table(tree) if estimates is None else estimates
    contrasts = contrast_table(tree) if contrasts is None else contrasts
    shortest = _csi_label(_summary(tree)["csi"].values.min())
    pooled = {m: switching_behaviour(tree, model=m, by=()) for m in models}
    cong = {m: congruency_effect(tree, model=m, by=()) for m in models}

    def cell(ds: xr.Dataset, var: str, digits: int) -> str:
        return format_interval(
            float(ds[var]), float(ds[f"{var}_low"]), float(ds[f"{var}_high"]), digits=digits
        )

    def cost(m: str, csi: str, var: str, digits: int) -> str:
        r = costs[(costs.model == m) & (costs.csi_ms == csi)].iloc[0]
        return format_interval(r[var], r[f"{var}_low"], r[f"{var}_high"], digits=digits)

    def estimate(m: str, method: str, quantity: str, digits: int) -> str:
        r = estimates[
            (estimates.model == m) & (estimates.method == method) & (estimates.quantity == quantity)
        ]
        if r.empty:
            return "-"
        r = r.iloc[0]
        return format_interval(r.estimate, r.low, r.high, digits=digits)

    def ran(m: str) -> str:
        n, total = trials_run(tree, m)
        return str(n) if n == total else f"{n} of {total}"

    def prep(m: str, prefix: str, digits: int) -> str:
        r = fits[(fits.model == m) & (fits.cost == prefix)].iloc[0]
        if not r.identified:
            return "not identified"
        return f"{r.amplitude:.{digits}f} / {r.tau_eff:.0f} / {r.residual:.{digits}f}"

    csis = [c for c in dict.fromkeys(costs["csi_ms"]) if c != "all"]
    regression = [
        (f"RT switch cost at CSI {shortest} ms (regression, ms)", "rt_cost_shortest", 0),
        ("  preparation amplitude A (ms)", "rt_amplitude", 0),
        ("  residual cost R (ms)", "rt_residual", 0),
        ("  shortest minus longest CSI (ms)", "rt_cost_drop", 0),
        (f"error switch cost at CSI {shortest} ms (regression, log odds)", "error_cost_shortest", 2),
    ]
    rows: list[tuple[str, list[str]]] = [
        ("trials run", [ran(m) for m in models]),
        ("trials", [str(int(pooled[m]["n_trials"])) for m in models]),
        ("accuracy", [cell(pooled[m], "accuracy", 2) for m in models]),
        ("mean RT, correct (ms)", [cell(pooled[m], "mean_rt", 0) for m in models]),
        *[(label, [estimate(m, "regression", q, d) for m in models]) for label, q, d in regression],
        ("RT fixed-tau fit: A (ms)", [estimate(m, "fixed-tau fit", "rt_amplitude", 0) for m in models]),
        ("RT fixed-tau fit: R (ms)", [estimate(m, "fixed-tau fit", "rt_residual", 0) for m in models]),
        ("RT switch cost (ms)", [cost(m, "all", "rt_cost", 0) for m in models]),
        *[(f"RT switch cost at CSI {c} ms", [cost(m, c, "rt_cost", 0) for m in models]) for c in csis],
        ("error switch cost", [cost(m, "all", "error_cost", 2) for m in models]),
        *[(f"error switch cost at CSI {c} ms", [cost(m, c, "error_cost", 2) for m in models]) for c in csis],
        ("RT congruency effect (ms)", [cell(cong[m], "rt_effect", 0) for m in models]),
        ("error congruency effect", [cell(cong[m], "error_effect", 2) for m in models]),
        ("RT preparation: A / tau (ms) / residual", [prep(m, "rt", 0) for m in models]),
        ("error preparation: A / tau (ms) / residual", [prep(m, "error", 2) for m in models]),
    ]
    lines = ["| measure | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows]
    lines += [
        "",
        "95 % intervals in brackets (Wilson for accuracy, t for mean RT, Welch for RT differences, Newcombe "
        "for error-rate differences, HC3 OLS / binomial GLM for the regression estimates); RTs of correct "
        "responses; the first trial is left out of switch/repeat splits; a model limited to the table's "
        "first trials is measured on the trials it ran.",
    ]
    if not contrasts.empty:
        margin = float(contrasts["margin"].iloc[0])
        lines += [
            "",
            "Paired contrasts on the trials both models ran (a - b, ms; equivalence margin "
            f"+-{margin:g} ms, TOST):",
            "",
            "| pair | quantity | contrast | verdict |",
            "|---|---|---|---|",
        ]
        for r in contrasts.itertuples():
            text = format_interval(r.contrast, r.low, r.high, digits=0)
            lines.append(f"| {r.pair} | {r.quantity} | {text} | {r.verdict} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------------------------
def plot_switch_cost_vs_csi(tree: xr.DataTree) -> Figure:
    """RT and error switch costs against CSI per model (95 % CI), with the identified preparation fits."""
    import matplotlib.pyplot as plt

    from neuromod.plotting import MODEL_COLORS

    summary = _summary(tree)
    fig, (ax_rt, ax_er) = plt.subplots(2, 1, sharex=True, figsize=(6.0, 6.0), layout="constrained")
    plot_switch_cost(summary, cost="rt", ax=ax_rt)
    plot_switch_cost(summary, cost="error", ax=ax_er, legend=False)
    tau = float(summary.attrs.get("tau_ms", np.nan))
    csi = summary["csi"].values
    fine = np.linspace(csi.min(), csi.max(), 200)
    if np.isfinite(tau) and tau > 0 and "rt_prep_fixed_amplitude" in summary:
        for m in model_names(tree):
            a = float(summary["rt_prep_fixed_amplitude"].sel(model=m))
            r = float(summary["rt_prep_fixed_residual"].sel(model=m))
            if np.isfinite(a) and np.isfinite(r):
                ax_rt.plot(fine, a * np.exp(-fine / tau) + r, "--", lw=1, color=MODEL_COLORS.get(m))
    ax_rt.set_xlabel("")
    fig.suptitle(
        "switch cost vs CSI (95 % CI; solid: identified free-tau fits A exp(-CSI/tau_eff) + R; dashed: "
        f"fixed tau = {tau:g} ms)",
        fontsize=8,
    )
    return fig


def plot_accuracy_by_condition(tree: xr.DataTree) -> Figure:
    """Accuracy and mean RT by switch x congruency per model, pooled over CSIs (95 % CI)."""
    import matplotlib.pyplot as plt

    summary = _summary(tree)
    fig, (ax_acc, ax_rt) = plt.subplots(1, 2, figsize=(10.0, 4.0), layout="constrained")
    plot_by_condition(summary, variable="accuracy", ax=ax_acc)
    plot_by_condition(summary, variable="mean_rt", ax=ax_rt, legend=False)
    fig.suptitle("behaviour by switch x congruency (pooled over CSIs; first trial left out)", fontsize=9)
    return fig


# ------------------------------------------------------------------------------------------------------
# script
# ------------------------------------------------------------------------------------------------------
def main(
    file: Annotated[Path, typer.Argument(help="A task-switching result (.nc or .zarr).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("figures"),
) -> None:
    """Write the task-switching behaviour figures and tables of FILE into OUT."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        tree = load_result(file)
    except (OSError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    behaviour = behaviour_table(tree)
    costs = switch_cost_table(tree)
    fits = preparation_table(tree)
    estimates = estimates_table(tree)
    contrasts = contrast_table(tree)
    table = markdown_table(tree, costs, fits, estimates, contrasts)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in (
        ("behaviour_by_condition.csv", behaviour),
        ("switch_costs.csv", costs),
        ("switch_cost_estimates.csv", estimates),
        ("preparation_fits.csv", fits),
        ("model_contrasts.csv", contrasts),
    ):
        df.to_csv(out / name, index=False)
        written.append(out / name)
    for name, fig in (
        ("switch_cost_vs_csi.png", plot_switch_cost_vs_csi(tree)),
        ("accuracy_by_condition.png", plot_accuracy_by_condition(tree)),
    ):
        written.append(results.save_figure(fig, out / name, overwrite=True))
        plt.close(fig)
    md = out / "task_switching_table.md"
    md.write_text(table)
    written.append(md)
    for path in written:
        typer.echo(f"wrote {path}")


if __name__ == "__main__":
    typer.run(main)
