"""Which recorded replies the model gives instead of asking one (a backtest's replay).

Why here and not in the client's module: the backtest sets them around each code's steps at
each bar without importing AutoGen (a rules-only backtest never loads it); the model client
reads them when the agents ask for a model (``llm.model_client_from_settings``).
"""

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RecordedReplies:
    label: str  # the model's name in the conversation records, e.g. "replay of bt-..."
    replies: list = field(default_factory=list)  # the model's answers, in the order given


_REPLAYED = ContextVar("recorded_replies", default=None)


@contextmanager
def replies_replayed(replies, *, label):
    """Within this block the model answers with ``replies``, one a call, in turn."""
    token = _REPLAYED.set(RecordedReplies(label=label, replies=list(replies)))
    try:
        yield
    finally:
        _REPLAYED.reset(token)


def replayed():
    """The replies being replayed here, or None."""
    return _REPLAYED.get()
