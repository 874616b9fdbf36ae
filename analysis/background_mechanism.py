"""Is the spiking ``background`` mechanism divisive? The f-I curve of the LIF cell at m = 0 and m = 1.

Chance, Abbott & Reyes (2002, Neuron 35:773-782) showed that balanced excitatory and inhibitory background
input scales a neuron's f-I curve divisively. neuromod's ``background`` mechanism builds that input from the
cell's own synapses (Wang 2002: AMPA and GABA conductances and rates, balanced at -52.5 mV; the noise from
Campbell's theorem, not tuned; :func:`neuromod.spiking.mechanisms.background_input`). This script measures,
over the drives of the gain-curves experiment, the slope ratio (m = 1 / m = 0) and the shift of the onset as
a fraction of the drive range, model-free: per repeat a least-squares line through the drives where the mean
rate is 5-150 Hz (slope, x-intercept), standard errors over the independent repeats (delta method for the
intercept). Criterion of a divisive effect: slope ratio <= 0.8 and onset shift under 5 % of the range.

Usage::

    python analysis/background_mechanism.py [--out docs/background-mechanism.png] [--seed 20240517]
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from neuromod.spiking import fi_sweep

REF_NA = 2000.0 * 0.13 * 2e-3  # relative drive 1 of the gain-curves experiment (nA)
DRIVES = REF_NA * np.linspace(0.5, 2.0, 16)
SPAN = float(DRIVES[-1] - DRIVES[0])


def line(rates: np.ndarray) -> tuple[float, float, float, float]:
    """Slope and x-intercept (with standard errors over repeats) of rates (drive, repeat), 5-150 Hz part."""
    mean = rates.mean(axis=1)
    ok = (mean > 5.0) & (mean < 150.0)
    a, b = np.polyfit(DRIVES[ok], rates[ok], 1)
    cov = np.cov(np.vstack([a, b]), ddof=1) / rates.shape[1]
    am, bm = a.mean(), b.mean()
    theta = -bm / am
    grad = np.array([bm / am**2, -1.0 / am])
    return float(am), float(np.sqrt(cov[0, 0])), float(theta), float(np.sqrt(grad @ cov @ grad))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/background-mechanism.png")
    parser.add_argument("--seed", type=int, default=20240517)
    parser.add_argument("--repeats", type=int, default=32)
    args = parser.parse_args()
    ds = fi_sweep("background", [0.0, 1.0], DRIVES, n_repeats=args.repeats, seed=args.seed)
    r0, r1 = ds.rate.sel(level=0.0).values, ds.rate.sel(level=1.0).values
    (a0, a0se, t0, t0se), (a1, a1se, t1, t1se) = line(r0), line(r1)
    ratio, ratio_se = a1 / a0, a1 / a0 * np.hypot(a0se / a0, a1se / a1)
    shift, shift_se = (t1 - t0) / SPAN, np.hypot(t0se, t1se) / SPAN
    divisive = ratio <= 0.8 and abs(shift) < 0.05
    print(
        f"slope ratio {ratio:.3f} +- {ratio_se:.3f}; onset shift {100 * shift:+.1f} +- "
        f"{100 * shift_se:.1f} % of "
        f"the drive range; divisive by the criterion (ratio <= 0.8, |shift| < 5 %): {divisive}"
    )
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for r, (a, t), colour, label in (
        (r0, (a0, t0), "k", "m = 0 (plain LIF)"),
        (r1, (a1, t1), "C3", "m = 1 (balanced background)"),
    ):
        sem = r.std(1, ddof=1) / np.sqrt(r.shape[1])
        ax.errorbar(DRIVES, r.mean(1), yerr=sem, fmt="o", ms=3, color=colour, label=label)
        xx = np.linspace(t, DRIVES[-1], 10)
        ax.plot(xx, a * (xx - t), "--", color=colour, lw=0.8)
    ax.set_xlabel("injected current (nA)")
    ax.set_ylabel("rate (Hz)")
    ax.set_title(
        f"slope ratio {ratio:.2f} ± {ratio_se:.2f}; onset shift {100 * shift:+.1f} ± {100 * shift_se:.1f} % "
        "of range",
        fontsize=9,
    )
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(args.out, dpi=130)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
