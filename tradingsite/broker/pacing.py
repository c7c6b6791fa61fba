"""IB's historical-data pacing rules, kept by waiting rather than by failing.

IB answers a pacing violation with error 162 and a penalty box; the throttle makes the
request wait instead: at most 60 historical requests in any 10 minutes, no identical request
within 15 seconds, and at most 6 requests for one contract within 2 seconds.

The clock is injectable (``IBKR_PACING_CLOCK``): ``real`` waits in real time, as IB needs;
``simulated`` keeps and counts every rule on a clock that moves only when waited on, for the
test suite against the loopback gateway, which has no pacing limits of its own. A test then
spends no real time on a rule (a repeated request waits "15 s" in no time).
"""

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class PacingRules:
    max_requests: int = 60
    window_seconds: float = 600.0
    identical_seconds: float = 15.0
    per_contract_requests: int = 6
    per_contract_seconds: float = 2.0


class SimulatedTime:
    """Seconds that pass only when slept: ``clock()`` and ``clock.sleep(seconds)``."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.slept = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


PACING_CLOCKS = ("real", "simulated")


class HistoricalPacing:
    """A per-connection throttle; ``acquire`` blocks (through ``sleep``) until a request may go."""

    def __init__(self, rules=None, *, clock=time.monotonic, sleep=time.sleep):
        self.rules = rules or PacingRules()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent = deque()  # (time, key, contract)

    def delay(self, key, contract):
        """Seconds to wait before a request with ``key`` for ``contract`` keeps every rule."""
        now = self._clock()
        rules = self.rules
        while self._sent and now - self._sent[0][0] >= rules.window_seconds:
            self._sent.popleft()
        wait = 0.0
        if len(self._sent) >= rules.max_requests:
            oldest = self._sent[len(self._sent) - rules.max_requests][0]
            wait = max(wait, oldest + rules.window_seconds - now)
        same = [t for t, k, _ in self._sent if k == key]
        if same:
            wait = max(wait, same[-1] + rules.identical_seconds - now)
        recent = [
            t for t, _, c in self._sent if c == contract and now - t < rules.per_contract_seconds
        ]
        if len(recent) >= rules.per_contract_requests:
            wait = max(
                wait, recent[-rules.per_contract_requests] + rules.per_contract_seconds - now
            )
        return wait

    def acquire(self, key, contract):
        """Wait until the request may be sent, record it, and return the seconds waited."""
        waited = 0.0
        with self._lock:
            while (wait := self.delay(key, contract)) > 0:
                self._sleep(wait)
                waited += wait
            self._sent.append((self._clock(), key, contract))
        return waited


def pacing_for(clock: str, *, sleep) -> HistoricalPacing:
    """IB's rules on the ``clock`` named (one of ``PACING_CLOCKS``); ``sleep`` is the real
    wait (the broker's, which keeps its connection's events flowing meanwhile)."""
    if clock == "simulated":
        time_ = SimulatedTime()
        return HistoricalPacing(clock=time_, sleep=time_.sleep)
    if clock == "real":
        return HistoricalPacing(sleep=sleep)
    raise ValueError(f"the pacing clock is one of {', '.join(PACING_CLOCKS)}, not {clock!r}")
