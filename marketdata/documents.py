"""The cache's document of a series of bars: its OHLCV columns and the indicator set computed
on them (``MarketData.data``, and the same shape from the bar store)."""

from collections.abc import Mapping

import numpy as np


def bars_document(bars):
    """The cached JSON: OHLCV columns and the indicator set computed on them."""
    return document_of_columns(
        times=[b.time for b in bars],
        **{
            name: [getattr(b, name) for b in bars]
            for name in ("open", "high", "low", "close", "volume")
        },
    )


def document_of_columns(*, times, open, high, low, close, volume, lazy=False):
    """The cache's document shape (OHLCV columns and the indicator set) of columns of bars;
    ``lazy``: each indicator computed when first read (a backtest's)."""
    # Imported here: numba costs every process about half a second at start-up otherwise.
    from .indicators import LazyIndicatorSet, indicator_set

    columns = {
        name: np.asarray(values, dtype=float)
        for name, values in (("open", open), ("high", high), ("low", low), ("close", close),
                             ("volume", volume))
    }  # fmt: skip
    if lazy:
        return {
            "bars": LazyColumns(times, columns),
            "indicators": LazyIndicatorSet(columns["high"], columns["low"], columns["close"]),
        }
    return {
        "bars": {
            "time": [t if isinstance(t, str) else t.isoformat() for t in times],
            **{name: values.tolist() for name, values in columns.items()},
        },
        "indicators": indicator_set(
            columns["open"], columns["high"], columns["low"], columns["close"], columns["volume"]
        ),
    }


class LazyColumns(Mapping):
    """A document's ``bars``, each column made a list when first read."""

    def __init__(self, times, columns):
        self._times = times
        self._columns = columns
        self._lists = {}

    def __getitem__(self, name):
        if name not in self._lists:
            if name == "time":
                self._lists[name] = [
                    t if isinstance(t, str) else t.isoformat() for t in self._times
                ]
            else:
                self._lists[name] = self._columns[name].tolist()
        return self._lists[name]

    def __iter__(self):
        return iter(("time", *self._columns))

    def __len__(self):
        return 1 + len(self._columns)
