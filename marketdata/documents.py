"""The cache's document of a series of bars: its OHLCV columns and the indicator set computed
on them (``MarketData.data``, and the same shape from the bar store)."""

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


def document_of_columns(*, times, open, high, low, close, volume):
    """The cache's document shape (OHLCV columns and the indicator set) of columns of bars."""
    # Imported here: numba costs every process about half a second at start-up otherwise.
    from .indicators import indicator_set

    columns = {
        name: np.asarray(values, dtype=float)
        for name, values in (("open", open), ("high", high), ("low", low), ("close", close),
                             ("volume", volume))
    }  # fmt: skip
    return {
        "bars": {
            "time": [t.isoformat() for t in times],
            **{name: values.tolist() for name, values in columns.items()},
        },
        "indicators": indicator_set(
            columns["open"], columns["high"], columns["low"], columns["close"], columns["volume"]
        ),
    }
