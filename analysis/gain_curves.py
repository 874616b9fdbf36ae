"""From a saved gain-curves result to its figures and tables.

Usage::

    python analysis/gain_curves.py results/gain-curves.nc --out figures/

writes ``gain_curves.png`` (one panel per model and mechanism), ``modulation_summary.png`` (gain ratio against
threshold shift), ``gain_curves_fits.csv`` (every fitted parameter with its standard error, the fitted form,
the reference curve's fit and the class) and ``gain_curves_table.md`` (the classification table, against
each model's reference: the unmodulated curve where the model has one). Nothing here runs a model: it reads
the file only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
import xarray as xr

from neuromod import results
from neuromod.plotting import plot_modulation_summary
from neuromod.protocols.gain_curves import plot as plot_gain_curves_figure

COLUMNS = ["gain_ratio", "gain_ratio_se", "threshold_shift", "threshold_shift_se", "modulation_class"]
#: The reference curve of each condition: the level it is (NaN: a separate unmodulated sweep) and its fit.
REFERENCE_COLUMNS = [
    "reference_level",
    "reference_fit_ok",
    "reference_fit_gain",
    "reference_fit_gain_se",
    "reference_fit_threshold",
    "reference_fit_threshold_se",
]


def fits_table(tree: xr.DataTree) -> pd.DataFrame:
    """One row per (model, condition, level): fitted form and parameters, standard errors, the reference
    curve's fit and the class against it."""
    frames = []
    for model in tree.children:
        ds = tree[model].to_dataset()
        names = [v for v in ds.data_vars if v.startswith("fit_")]
        names += [c for c in REFERENCE_COLUMNS if c in ds] + COLUMNS
        df = ds[names].to_dataframe().reset_index()
        df.insert(0, "model", model)
        if "fit_form" not in df:  # a result written before the form was stored per curve
            df["fit_form"] = ds.attrs.get("fit_form", "")
        if "reference_level" not in df:  # ... or before the reference was: level 0
            df["reference_level"] = 0.0
        frames.append(
            df[["model", "condition", "level", *dict.fromkeys([*names, "fit_form", "reference_level"])]]
        )
    return pd.concat(frames, ignore_index=True)


def markdown_table(df: pd.DataFrame, references: dict[str, str] | None = None) -> str:
    """The classification as a markdown table: every level but the one that is its condition's reference
    curve; `references` (model -> what its reference is) is written under it."""
    rows = df[df["level"] != df["reference_level"]]
    lines = [
        "| model | mechanism / mode | level | form | gain ratio | threshold shift | class |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows.itertuples():
        lines.append(
            f"| {r.model} | {r.condition} | {r.level:g} | {r.fit_form} | {r.gain_ratio:.2f} ± "
            f"{r.gain_ratio_se:.2f} | {r.threshold_shift:+.3f} ± {r.threshold_shift_se:.3f} "
            f"| {r.modulation_class} |"
        )
    lines.append("")
    lines.append("Gain ratio and threshold shift (relative drive) against the reference curve, ± 1 SE.")
    for model, what in (references or {}).items():
        lines.append(f"{model}: against {what}.")
    return "\n".join(lines) + "\n"


def main(
    file: Annotated[Path, typer.Argument(help="A gain-curves result (.nc or .zarr).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("figures"),
) -> None:
    """Write the gain-curve figures and tables of FILE into OUT."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tree = results.load(file)
    if not isinstance(tree, xr.DataTree) or tree.nm.config.get("experiment") != "gain-curves":
        typer.echo(f"error: {file} is not a gain-curves result", err=True)
        raise typer.Exit(1)
    out.mkdir(parents=True, exist_ok=True)
    written = [results.save_figure(plot_gain_curves_figure(tree), out / "gain_curves.png", overwrite=True)]
    fig, ax = plt.subplots(figsize=(5, 4), layout="constrained")
    plot_modulation_summary(tree, ax=ax)
    written.append(results.save_figure(fig, out / "modulation_summary.png", overwrite=True))
    df = fits_table(tree)
    csv = out / "gain_curves_fits.csv"
    df.to_csv(csv, index=False)
    md = out / "gain_curves_table.md"
    references = {m: str(tree[m].attrs.get("reference", "level 0")) for m in tree.children}
    md.write_text(markdown_table(df, references))
    for path in [*written, csv, md]:
        typer.echo(f"wrote {path}")


if __name__ == "__main__":
    typer.run(main)
