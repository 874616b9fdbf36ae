"""The gain-curves analysis script turns a saved result into figures and tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from neuromod import results
from neuromod.protocols import run_gain_curves
from neuromod.protocols.gain_curves import GainCurvesConfig, quick

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    tree = run_gain_curves(quick(GainCurvesConfig(models=("rate",))))
    return results.save(tree, tmp_path_factory.mktemp("gc") / "gc.nc")


def test_script_writes_figures_and_tables(saved, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "analysis" / "gain_curves.py"), str(saved), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("gain_curves.png", "modulation_summary.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    df = pd.read_csv(tmp_path / "gain_curves_fits.csv")
    assert set(df["condition"]) == {"response_gain", "input_gain", "threshold"}
    top = df[(df.condition == "response_gain") & (df.level == 1.0)].iloc[0]
    assert top["modulation_class"] == "multiplicative" and abs(top["gain_ratio"] - 2.0) < 0.04
    # the form of each curve and the reference it is classified against (level 0: the unmodulated curve)
    assert set(df["fit_form"]) <= {"threshold_linear", "softplus", "saturating"}
    assert (df["reference_level"] == 0.0).all() and (df["reference_fit_ok"] == 1).all()
    table = (tmp_path / "gain_curves_table.md").read_text()
    form = df[(df.condition == "threshold") & (df.level == 1.0)].iloc[0]["fit_form"]
    assert f"| rate | threshold | 1 | {form} |" in table and "additive" in table
    assert "| rate | threshold | 0 |" not in table  # the reference itself is not a row
    assert "rate: against unmodulated: the transfer function phi(I) itself" in table


def test_script_refuses_other_results(tmp_path, result_ds):
    path = results.save(result_ds, tmp_path / "other.nc")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "analysis" / "gain_curves.py"), str(path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "is not a gain-curves result" in proc.stderr
    assert not (tmp_path / "o").exists()
