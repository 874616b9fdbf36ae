"""Benchmark: ContextSE against a plain SENet reference, and its cost inside a conv block.

Run ``python benchmarks/bench_gating.py`` (default, under ~2 min on 2 cores) or with ``--quick``.

On a (64, 256, 28, 28) float32 CPU input, timed INTERLEAVED in one process (A B A B ...; the order
alternates every repeat) with 2 threads:

1. ``ContextSE(256)`` and ``ContextSE(256, context_dim=8)`` vs a plain SENet block written here
   (Hu et al. 2018, eq. 2-4: mean -> Linear -> ReLU -> Linear -> sigmoid -> multiply).
   Target: ContextSE / reference <= 1.05.
2. ``conv3x3 + ContextSE`` vs ``conv3x3`` alone. Target: (conv + ContextSE) / conv <= 1.05.
   Timed twice: the default ContextSE (allocates a new output the size of x, like the reference)
   and ``ContextSE(inplace=True)`` (rescales the conv output in place; no new allocation).

The squeeze (one read of x) and the rescale (one read, one write) are memory-bound. Each case prints
median times and the verdict ratio: the median of per-repeat ratios, A and B timed back to back in
alternating order, so slow phases caused by other processes on the shared cores hit both alike. (The
best-of-N ratio is printed too; here it is unreliable: a fresh 205 MB output is sometimes served
without page faults, so single fast outliers occur on either side.)

Allocation: every fresh 205 MB output is page-faulted in 4 KB pages (about 10 ms here, more than the
squeeze and the multiply together). PyTorch's ``THP_MEM_ALLOC_ENABLE=1`` backs large CPU allocations with
transparent huge pages; this script sets it unless the environment says otherwise (``THP_MEM_ALLOC_ENABLE=0
python benchmarks/bench_gating.py`` measures the 4 KB-page case). It applies to both sides of every ratio.
Only the script does that: importing this module changes no environment variable, and :func:`main` restores
torch's thread count and random state when it returns.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # the script only; an import leaves the environment alone
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # before torch allocates anything

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from neuromod.gating import ContextSE

TARGET = 1.05


class SENetReference(nn.Module):
    """Plain SE block (Hu, Shen & Sun 2018, eq. 2-4), the baseline."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: Tensor) -> Tensor:
        z = x.mean((2, 3))  # eq. 2
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))  # eq. 3
        return x * s[:, :, None, None]  # eq. 4


def _time(fn: Callable[[], Tensor]) -> float:
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    del out
    return elapsed


def interleaved(
    a: Callable[[], Tensor], b: Callable[[], Tensor], repeats: int, warmup: int = 2
) -> tuple[float, float, float, float]:
    """Median times of a and b, median of per-repeat ratios a/b, best-of-N ratio."""
    for _ in range(warmup):
        _time(a)
        _time(b)
    ta, tb, ratios = [], [], []
    for i in range(repeats):
        if i % 2 == 0:
            x, y = _time(a), _time(b)
        else:
            y, x = _time(b), _time(a)
        ta.append(x)
        tb.append(y)
        ratios.append(x / y)
    med = statistics.median
    return med(ta), med(tb), med(ratios), min(ta) / min(tb)


def report(name: str, base: str, result: tuple[float, float, float, float]) -> bool:
    ta, tb, ratio, best_ratio = result
    ok = ratio <= TARGET
    print(
        f"{name:<29} {ta * 1e3:8.2f} ms | {base:<16} {tb * 1e3:8.2f} ms | ratio {ratio:5.3f} "
        f"(best-of {best_ratio:5.3f}) target <= {TARGET} {'PASS' if ok else 'FAIL'}"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; torch's thread count and (CPU) random state are restored on return."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (batch 16; 7 SE and 3 conv repeats)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per case")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(0)
            return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> int:
    batch = 16 if args.quick else 64
    se_repeats = args.repeats or (7 if args.quick else 41)
    conv_repeats = args.repeats or (3 if args.quick else 11)
    channels, size = 256, 28
    x = torch.randn(batch, channels, size, size)
    k = torch.randn(batch, 8)
    thp = os.environ.get("THP_MEM_ALLOC_ENABLE", "unset")
    print(
        f"input {tuple(x.shape)} float32, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, THP_MEM_ALLOC_ENABLE={thp}, "
        f"interleaved A/B, medians of {se_repeats} (SE) and "
        f"{conv_repeats} (conv) repeats"
    )

    se0 = ContextSE(channels).eval()
    se8 = ContextSE(channels, 8).eval()
    se_inplace = ContextSE(channels, inplace=True).eval()
    se_inplace.load_state_dict(se0.state_dict())
    ref = SENetReference(channels, se0.rd_channels).eval()
    ref.load_state_dict({k.removeprefix("excitation."): v for k, v in se0.state_dict().items()})
    conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False).eval()

    results = []
    with torch.inference_mode():
        torch.testing.assert_close(se0(x), ref(x))  # same computation
        results.append(
            report(
                "ContextSE(context_dim=0)",
                "SENet reference",
                interleaved(lambda: se0(x), lambda: ref(x), se_repeats),
            )
        )
        results.append(
            report(
                "ContextSE(context_dim=8)",
                "SENet reference",
                interleaved(lambda: se8(x, k), lambda: ref(x), se_repeats),
            )
        )
        results.append(
            report(
                "conv3x3 + ContextSE",
                "conv3x3",
                interleaved(lambda: se0(conv(x)), lambda: conv(x), conv_repeats, warmup=1),
            )
        )
        results.append(
            report(
                "conv3x3 + ContextSE(inplace)",
                "conv3x3",
                interleaved(lambda: se_inplace(conv(x)), lambda: conv(x), conv_repeats, warmup=1),
            )
        )
    print("overall:", "PASS" if all(results) else "FAIL")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
