"""From a saved task-switching result to its behaviour figures and tables.

Usage::

    python analysis/task_switching.py results/task-switching.nc --out figures/

Reads a result of ``neuromod run task-switching`` (:func:`neuromod.protocols.compare.compare`) and writes,
per model, from the per-trial data (recomputed with :mod:`neuromod.measures`):

* ``behaviour_by_condition.csv``: one row per model x switch x congruent x CSI (and ``csi_ms = "all"``
  pooled over CSIs): trials, accuracy with 95 % Wilson bounds, mean RT of correct responses with 95 % t
  bounds, number of correct RTs. The session's first trial is left out (it is neither switch nor repeat).
* ``switch_costs.csv``: one row per model x CSI, plus the pooled row ``csi_ms = "all"``: RT switch cost
  (Welch 95 % interval), error switch cost (Newcombe 95 % interval), the means and counts they come from.
* ``preparation_fits.csv``: one row per model x {rt, error}: the preparation fit
  ``cost(CSI) = A exp(-CSI / tau_eff) + residual`` with standard errors (from the file's ``summary`` when it
  has them, refitted otherwise) and ``identified`` (1/0, the rule of the experiment's table,
  :func:`neuromod.protocols.compare.preparation_fit`: all finite, ``|A| > se(A)``, ``tau_eff > se(tau_eff)``
  and ``tau_eff`` within [shortest CSI / 10, 10 x longest CSI]).
* ``switch_cost_vs_csi.png``: RT and error switch costs against CSI per model (95 % CI) with the identified
  fits; ``accuracy_by_condition.png``: accuracy and mean RT by switch x congruency per model (pooled over
  CSIs, 95 % CI);
* ``task_switching_table.md``: the main measures, one column per model.

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
from neuromod.measures import congruency_effect, fit_preparation, switch_cost, switching_behaviour
from neuromod.plotting import MODEL_COLORS, error_bars, format_interval
from neuromod.protocols.compare import preparation_fit

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
#: (switch, congruent, label) in the order of the bars
CELLS = [
    (0, 1, "repeat, congruent"),
    (0, 0, "repeat, incongruent"),
    (1, 1, "switch, congruent"),
    (1, 0, "switch, incongruent"),
]


# ------------------------------------------------------------------------------------------------------
# input
# ------------------------------------------------------------------------------------------------------
def load_result(path: Path, experiment: str = EXPERIMENT) -> xr.DataTree:
    """Load `path` and check that it is a result of `experiment`.

    Raises
    ------
    ValueError
        A one-line reason when the file cannot be read or is not a result of `experiment`.
    """
    try:
        tree = results.load(path)
    except (OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path} is not a {experiment} result ({reason})") from err
    if not isinstance(tree, xr.DataTree) or tree.nm.config.get("experiment") != experiment:
        raise ValueError(f"{path} is not a {experiment} result")
    return tree


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


def preparation_table(tree: xr.DataTree) -> pd.DataFrame:
    """One row per (model, cost = rt/error): amplitude, tau_eff, residual, their SEs and ``identified``.

    The values are the file's ``summary`` (``rt_prep_*``, ``error_prep_*``) where it has them, otherwise
    :func:`neuromod.measures.fit_preparation` of the switch cost by CSI.
    """
    summary = tree["summary"].to_dataset(inherit=False) if "summary" in tree.children else xr.Dataset()
    csi = np.unique(tree["csi_ms"].values.astype(float))
    rows = []
    for m in model_names(tree):
        for prefix in ("rt", "error"):
            keys = [f"{prefix}_prep_{n}{s}" for n in FIT_NAMES for s in ("", "_se")]
            in_summary = "model" in summary.coords and m in summary["model"].values
            if in_summary and all(k in summary for k in keys):
                row = summary[keys].sel(model=m)
                source = "summary"
            else:
                fit = fit_preparation(switch_cost(tree, model=m, by=("csi_ms",)), variable=f"{prefix}_cost")
                row = xr.Dataset({f"{prefix}_prep_{k}": fit[k] for k in fit.data_vars})
                source = "refitted"
            row = row.assign_coords(csi=("csi", csi))
            rec: dict[str, object] = {"model": m, "cost": prefix}
            for n in FIT_NAMES:
                rec[n] = float(row[f"{prefix}_prep_{n}"])
                rec[f"{n}_se"] = float(row[f"{prefix}_prep_{n}_se"])
            rec["identified"] = int(preparation_fit(row, prefix) is not None)
            rec["source"] = source
            rows.append(rec)
    return pd.DataFrame(rows)


def markdown_table(tree: xr.DataTree, costs: pd.DataFrame, fits: pd.DataFrame) -> str:
    """The main measures side by side (one column per model) as a markdown table."""
    models = model_names(tree)
    pooled = {m: switching_behaviour(tree, model=m, by=()) for m in models}
    cong = {m: congruency_effect(tree, model=m, by=()) for m in models}

    def cell(ds: xr.Dataset, var: str, digits: int) -> str:
        return format_interval(
            float(ds[var]), float(ds[f"{var}_low"]), float(ds[f"{var}_high"]), digits=digits
        )

    def cost(m: str, csi: str, var: str, digits: int) -> str:
        r = costs[(costs.model == m) & (costs.csi_ms == csi)].iloc[0]
        return format_interval(r[var], r[f"{var}_low"], r[f"{var}_high"], digits=digits)

    def prep(m: str, prefix: str, digits: int) -> str:
        r = fits[(fits.model == m) & (fits.cost == prefix)].iloc[0]
        if not r.identified:
            return "not identified"
        return f"{r.amplitude:.{digits}f} / {r.tau_eff:.0f} / {r.residual:.{digits}f}"

    csis = [c for c in dict.fromkeys(costs["csi_ms"]) if c != "all"]
    rows: list[tuple[str, list[str]]] = [
        ("trials", [str(int(pooled[m]["n_trials"])) for m in models]),
        ("accuracy", [cell(pooled[m], "accuracy", 2) for m in models]),
        ("mean RT, correct (ms)", [cell(pooled[m], "mean_rt", 0) for m in models]),
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
        "for error-rate differences); RTs of correct responses; the first trial is left out of switch/repeat "
        "splits.",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------------------------
def plot_switch_cost_vs_csi(costs: pd.DataFrame, fits: pd.DataFrame) -> Figure:
    """RT and error switch costs against CSI per model (95 % CI), with the identified preparation fits."""
    import matplotlib.pyplot as plt

    fig, (ax_rt, ax_er) = plt.subplots(2, 1, sharex=True, figsize=(6.0, 6.0), layout="constrained")
    by_csi = costs[costs.csi_ms != "all"].assign(csi=lambda d: d.csi_ms.astype(float))
    models = list(dict.fromkeys(by_csi.model))
    csi_all = np.unique(by_csi.csi.to_numpy())
    span = float(csi_all.max() - csi_all.min()) or 1.0
    offsets = np.linspace(-0.015, 0.015, len(models)) * span
    fine = np.linspace(csi_all.min(), csi_all.max(), 200)
    for ax, prefix, unit in ((ax_rt, "rt", " (ms)"), (ax_er, "error", "")):
        var = f"{prefix}_cost"
        for i, m in enumerate(models):
            d = by_csi[by_csi.model == m].sort_values("csi")
            y = d[var].to_numpy()
            yerr = error_bars(y, d[f"{var}_low"].to_numpy(), d[f"{var}_high"].to_numpy())
            ax.errorbar(
                d.csi.to_numpy() + offsets[i],
                y,
                yerr=yerr,
                fmt="o",
                ms=4,
                capsize=2,
                color=MODEL_COLORS.get(m),
            )
            f = fits[(fits.model == m) & (fits.cost == prefix)]
            label = m
            if len(f) and f.iloc[0].identified:
                r = f.iloc[0]
                ax.plot(
                    fine, r.amplitude * np.exp(-fine / r.tau_eff) + r.residual, "-", color=MODEL_COLORS.get(m)
                )
                label = f"{m} (tau_eff {r.tau_eff:.0f} ms)"
            ax.plot([], [], "o-", color=MODEL_COLORS.get(m), label=label)
        ax.axhline(0.0, color="0.6", lw=0.8, ls="--")
        ax.set_ylabel(f"{prefix if prefix == 'error' else 'RT'} switch cost{unit}")
        ax.legend(fontsize=7, frameon=False)
    ax_er.set_xlabel("cue-stimulus interval (ms)")
    fig.suptitle(
        "switch cost vs CSI (95 % CI; lines: identified fits A exp(-CSI/tau) + residual)", fontsize=9
    )
    return fig


def plot_accuracy_by_condition(behaviour: pd.DataFrame) -> Figure:
    """Accuracy and mean RT by switch x congruency per model, pooled over CSIs (95 % CI)."""
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_rt) = plt.subplots(1, 2, figsize=(10.0, 4.0), layout="constrained")
    pooled = behaviour[behaviour.csi_ms == "all"]
    models = list(dict.fromkeys(pooled.model))
    width = 0.8 / len(CELLS)
    for ax, var in ((ax_acc, "accuracy"), (ax_rt, "mean_rt")):
        for j, (sw, cg, name) in enumerate(CELLS):
            xs = np.arange(len(models)) + (j - (len(CELLS) - 1) / 2) * width
            d = pooled[(pooled.switch == sw) & (pooled.congruent == cg)].set_index("model").reindex(models)
            y = d[var].to_numpy(dtype=float)
            yerr = error_bars(y, d[f"{var}_low"].to_numpy(), d[f"{var}_high"].to_numpy())
            yerr = np.nan_to_num(yerr)
            ax.bar(
                xs,
                np.nan_to_num(y),
                width,
                yerr=yerr,
                capsize=2,
                color="0.45" if sw else "0.85",
                hatch="///" if cg == 0 else None,
                edgecolor="black",
                linewidth=0.5,
                label=name,
            )
        ax.set_xticks(np.arange(len(models)), models)
    ax_acc.set_ylim(0.0, 1.2)
    ax_acc.set_yticks(np.linspace(0.0, 1.0, 6))
    ax_acc.axhline(0.5, color="0.6", lw=0.8, ls="--")
    ax_acc.set_ylabel("accuracy (95 % Wilson CI)")
    ax_acc.legend(fontsize=7, frameon=False, ncols=2, loc="upper center")
    ax_rt.set_ylabel("mean RT, correct (ms, 95 % t CI)")
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
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    behaviour = behaviour_table(tree)
    costs = switch_cost_table(tree)
    fits = preparation_table(tree)
    table = markdown_table(tree, costs, fits)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in (
        ("behaviour_by_condition.csv", behaviour),
        ("switch_costs.csv", costs),
        ("preparation_fits.csv", fits),
    ):
        df.to_csv(out / name, index=False)
        written.append(out / name)
    for name, fig in (
        ("switch_cost_vs_csi.png", plot_switch_cost_vs_csi(costs, fits)),
        ("accuracy_by_condition.png", plot_accuracy_by_condition(behaviour)),
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
