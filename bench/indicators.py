"""Indicators on one million bars, timed beside TA-Lib on the same arrays in the same run.

Run by hand (not a test): ``.venv/bin/python bench/indicators.py [--bars N] [--repeat R]``.
TA-Lib (``pip install TA-Lib``) is a bench- and test-only dependency. Each figure is the best
of ``repeat`` runs, so a busy machine inflates both sides less. SuperTrend has no TA-Lib
function: its time is printed and counted in our total only, which makes the total ratio the
strict one; the goal is at most 3x TA-Lib's time overall.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from marketdata import indicators  # noqa: E402
from marketdata.tests.series import random_walk  # noqa: E402


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def cases(high, low, close, talib):
    """(name, ours, TA-Lib's or None), on the issue's default parameters."""
    ours = indicators
    return [
        ("sma 20", lambda: ours.sma(close, 20), lambda: talib.SMA(close, 20)),
        ("ema 20", lambda: ours.ema(close, 20), lambda: talib.EMA(close, 20)),
        ("rsi 14", lambda: ours.rsi(close, 14), lambda: talib.RSI(close, 14)),
        ("macd 12/26/9", lambda: ours.macd(close), lambda: talib.MACD(close, 12, 26, 9)),
        ("atr 14", lambda: ours.atr(high, low, close, 14), lambda: talib.ATR(high, low, close, 14)),
        (
            "bollinger 20/2",
            lambda: ours.bollinger(close, 20, 2.0),
            lambda: talib.BBANDS(close, 20, 2.0, 2.0, 0),
        ),
        ("supertrend 10/3", lambda: ours.supertrend(high, low, close, 10, 3.0), None),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    try:
        import talib
    except ImportError:
        sys.exit("TA-Lib is not installed: pip install TA-Lib (a bench-only dependency).")

    high, low, close = random_walk(args.bars, seed=20240601, volatility=0.01)
    print(
        f"{args.bars:,} bars, best of {args.repeat} runs (NumPy {np.__version__}, "
        f"TA-Lib {talib.__version__})"
    )
    print(f"{'indicator':<17}{'ours ms':>10}{'TA-Lib ms':>11}{'ratio':>8}")
    total_ours = total_talib = supertrend_time = 0.0
    for name, ours, reference in cases(high, low, close, talib):
        ours_time = best_of(ours, args.repeat)
        total_ours += ours_time
        if reference is None:
            supertrend_time = ours_time
            print(f"{name:<17}{ours_time * 1e3:>10.1f}{'-':>11}{'-':>8}   (no TA-Lib equivalent)")
            continue
        talib_time = best_of(reference, args.repeat)
        total_talib += talib_time
        print(
            f"{name:<17}{ours_time * 1e3:>10.1f}{talib_time * 1e3:>11.1f}"
            f"{ours_time / talib_time:>7.2f}x"
        )
    comparable = total_ours - supertrend_time
    print(
        f"{'total w/o st':<17}{comparable * 1e3:>10.1f}{total_talib * 1e3:>11.1f}"
        f"{comparable / total_talib:>7.2f}x   (the six indicators TA-Lib has)"
    )
    ratio = total_ours / total_talib
    verdict = "within" if ratio <= 3.0 else "OVER"
    print(
        f"{'total':<17}{total_ours * 1e3:>10.1f}{total_talib * 1e3:>11.1f}{ratio:>7.2f}x"
        f"   ({verdict} the 3x goal; ours includes supertrend, TA-Lib has none)"
    )


if __name__ == "__main__":
    main()
