"""A model client that gives recorded replies back, in turn: a backtest that ran with a real
LLM is re-run offline, deterministically, from the replies its agents got (stored with its
results, ``strategy_probe_conversations``). Usage is counted as the offline model counts it."""

from .offline import OfflineChatCompletionClient


class RepliesExhausted(RuntimeError):
    """The agents asked more than was recorded: the replay has left the recorded run."""


class RecordedRepliesClient(OfflineChatCompletionClient):
    def __init__(self, recording):
        super().__init__()
        self.recording = recording

    def _answer(self, messages):
        if not self.recording.replies:
            raise RepliesExhausted(
                f"No recorded reply is left ({self.recording.label}): the agents asked more "
                "than they did in the recorded run."
            )
        return self.recording.replies.pop(0)
