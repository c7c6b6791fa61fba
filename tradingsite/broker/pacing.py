"""IB's historical-data pacing rules, kept by waiting rather than by failing.

IB answers a pacing violation with error 162 and a penalty box; the throttle makes the
request wait instead: at most 60 historical requests in any 10 minutes, no identical request
within 15 seconds, and at most 6 requests for one contract within 2 seconds.

IB counts these for the whole gateway (every client id together), so with Redis
(``REDIS_URL``) they are counted there, per gateway, by every process of the site on every
host (``SharedPacing``): N workers together stay within them. Without Redis (one process
talks to IB at a time on ``make run``'s machine... or so it is assumed) each connection counts
its own (``HistoricalPacing``).

The clock is injectable (``IBKR_PACING_CLOCK``): ``real`` waits in real time, as IB needs;
``simulated`` keeps and counts every rule on a clock that moves only when waited on, for the
test suite against the loopback gateway, which has no pacing limits of its own. A test then
spends no real time on a rule (a repeated request waits "15 s" in no time).
"""

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

import redis

from .types import BrokerError


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

    def acquire(self, key, contract, on_wait=None):
        """Wait until the request may be sent, record it, and return the seconds waited.
        ``on_wait(seconds)`` is told of each wait before it starts."""
        waited = 0.0
        with self._lock:
            while (wait := self.delay(key, contract)) > 0:
                if on_wait is not None:
                    on_wait(wait)
                self._sleep(wait)
                waited += wait
            self._sent.append((self._clock(), key, contract))
        return waited


# One atomic check-and-record in Redis. KEYS: every request of the gateway (a sorted set by
# time), the last time of this identical request, this contract's recent requests (sorted
# set). ARGV: now ("" for Redis's own clock, shared by every host), the rules, a unique
# member. Returns "0" when recorded (the request may go), else the seconds to wait.
_TRY = """
local now = tonumber(ARGV[1])
if not now then
    local t = redis.call('time')
    now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local window, most = tonumber(ARGV[2]), tonumber(ARGV[3])
local identical = tonumber(ARGV[4])
local burst, burst_seconds = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('zremrangebyscore', KEYS[1], '-inf', now - window)
redis.call('zremrangebyscore', KEYS[3], '-inf', now - burst_seconds)
local wait = 0
local sent = redis.call('zcard', KEYS[1])
if sent >= most then
    local oldest = redis.call('zrange', KEYS[1], sent - most, sent - most, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
end
local last = redis.call('get', KEYS[2])
if last then wait = math.max(wait, tonumber(last) + identical - now) end
local recent = redis.call('zcard', KEYS[3])
if recent >= burst then
    local first = redis.call('zrange', KEYS[3], recent - burst, recent - burst, 'WITHSCORES')
    wait = math.max(wait, tonumber(first[2]) + burst_seconds - now)
end
if wait > 0 then return tostring(wait) end
local member = ARGV[7] .. '@' .. tostring(now)
redis.call('zadd', KEYS[1], now, member)
redis.call('pexpire', KEYS[1], math.ceil(window * 1000) + 60000)
redis.call('set', KEYS[2], tostring(now), 'PX', math.ceil(identical * 1000) + 60000)
redis.call('zadd', KEYS[3], now, member)
redis.call('pexpire', KEYS[3], math.ceil(burst_seconds * 1000) + 60000)
return '0'
"""


class SharedTime:
    """A simulated clock shared by every process through Redis (the test suite's, with
    ``IBKR_PACING_CLOCK=simulated``): it moves only when some process waits on it."""

    def __init__(self, redis, key, start=1000.0):
        self.redis, self.key = redis, key
        self.redis.set(key, start, nx=True)
        self.slept = []

    def __call__(self):
        return float(self.redis.get(self.key) or 1000.0)

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.redis.incrbyfloat(self.key, seconds)


class SharedPacing:
    """IB's rules counted in Redis for one gateway, by every process that talks to it."""

    def __init__(self, redis, gateway, rules=None, *, clock=None, sleep=time.sleep):
        self.rules = rules or PacingRules()
        self.redis = redis
        self.prefix = f"tradingsite:ib-pacing:{gateway}:"
        self._clock = clock  # None: Redis's clock
        self._sleep = sleep
        self._script = redis.register_script(_TRY)
        self._me = uuid.uuid4().hex[:12]
        self._count = 0

    def _try(self, key, contract):
        self._count += 1
        rules = self.rules
        now = "" if self._clock is None else repr(self._clock())
        answer = self._script(
            keys=[
                self.prefix + "all",
                self.prefix + "request:" + "|".join(map(str, key)),
                self.prefix + f"contract:{contract}",
            ],
            args=[now, rules.window_seconds, rules.max_requests, rules.identical_seconds,
                  rules.per_contract_requests, rules.per_contract_seconds,
                  f"{self._me}:{self._count}"],
        )  # fmt: skip
        return float(answer)

    def acquire(self, key, contract, on_wait=None):
        """Wait until the request may be sent by the rules counted for the whole gateway,
        record it, and return the seconds waited (``on_wait(seconds)`` before each wait)."""
        waited = 0.0
        while True:
            try:
                wait = self._try(key, contract)
            except redis.RedisError as exc:
                raise BrokerError(
                    f"IB's historical-data pacing is counted in Redis, which does not answer "
                    f"({exc}); the request was not sent."
                ) from None
            if wait <= 0:
                return waited
            if on_wait is not None:
                on_wait(wait)
            self._sleep(wait)
            waited += wait


def pacing_for(clock: str, *, sleep, redis_url="", gateway="") -> HistoricalPacing:
    """IB's rules on the ``clock`` named (one of ``PACING_CLOCKS``); ``sleep`` is the real
    wait (the broker's, which keeps its connection's events flowing meanwhile). With
    ``redis_url``, counted in Redis for ``gateway`` (host:port) by every process."""
    if clock not in PACING_CLOCKS:
        raise ValueError(f"the pacing clock is one of {', '.join(PACING_CLOCKS)}, not {clock!r}")
    if redis_url:
        server = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=5)
        if clock == "simulated":
            shared = SharedTime(server, f"tradingsite:ib-pacing:{gateway}:clock")
            return SharedPacing(server, gateway, clock=shared, sleep=shared.sleep)
        return SharedPacing(server, gateway, sleep=sleep)
    if clock == "simulated":
        time_ = SimulatedTime()
        return HistoricalPacing(clock=time_, sleep=time_.sleep)
    return HistoricalPacing(sleep=sleep)
