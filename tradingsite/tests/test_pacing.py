"""IB's historical pacing rules, kept by waiting: a simulated clock shows every wait."""

import time

import pytest

from tradingsite.broker.pacing import HistoricalPacing, PacingRules, SimulatedTime


def throttle(clock, **rules):
    return HistoricalPacing(PacingRules(**rules), clock=clock, sleep=clock.sleep)


def test_sixty_requests_in_ten_minutes_then_waits_for_the_oldest_to_age():
    clock = SimulatedTime()
    pacing = throttle(clock, per_contract_requests=1000)
    for n in range(60):
        assert pacing.acquire(("key", n), n) == 0
        clock.now += 1
    waited = pacing.acquire(("key", 60), 60)
    # The first request went at t=1000; the 61st may go at t=1600, and it is now t=1060.
    assert waited == 540
    assert clock.now == 1600


def test_identical_request_waits_fifteen_seconds():
    clock = SimulatedTime()
    pacing = throttle(clock)
    pacing.acquire(("AAPL", "1 Y", "1 day"), "AAPL")
    clock.now += 4
    assert pacing.acquire(("AAPL", "1 Y", "1 day"), "AAPL") == 11
    # a different request for the same contract did not have to wait
    assert pacing.acquire(("AAPL", "6 M", "1 hour"), "AAPL") == 0


def test_six_requests_for_one_contract_within_two_seconds():
    clock = SimulatedTime()
    pacing = throttle(clock)
    for n in range(6):
        assert pacing.acquire(("AAPL", n), "AAPL") == 0
        clock.now += 0.1
    # six went in 0.6 s: the seventh waits until two seconds after the first
    assert round(pacing.acquire(("AAPL", 6), "AAPL"), 6) == 1.4
    assert pacing.acquire(("MSFT", 0), "MSFT") == 0  # other contracts are not held up


def test_a_burst_never_breaks_a_rule():
    clock = SimulatedTime()
    rules = PacingRules()
    pacing = throttle(clock)
    sent = []
    for n in range(150):
        pacing.acquire(("X", n % 7), f"C{n % 3}")
        sent.append((clock.now, ("X", n % 7), f"C{n % 3}"))
    for i, (t, key, contract) in enumerate(sent):
        window = [s for s in sent[: i + 1] if t - s[0] < rules.window_seconds]
        assert len(window) <= rules.max_requests
        same = [s for s in sent[:i] if s[1] == key]
        assert not same or t - same[-1][0] >= rules.identical_seconds
        burst = [
            s for s in sent[: i + 1] if s[2] == contract and t - s[0] < rules.per_contract_seconds
        ]
        assert len(burst) <= rules.per_contract_requests


def test_the_broker_keeps_the_rules_on_the_clock_its_settings_name():
    from tradingsite.broker.pacing import pacing_for

    real_waits = []
    simulated = pacing_for("simulated", sleep=real_waits.append)
    simulated.acquire(("AAPL", "1 Y", "1 day"), "AAPL")
    assert simulated.acquire(("AAPL", "1 Y", "1 day"), "AAPL") == 15  # the rule still holds
    assert real_waits == []  # but no real time was spent on it

    real = pacing_for("real", sleep=real_waits.append)
    assert (real._clock, real._sleep) == (time.monotonic, real_waits.append)
    with pytest.raises(ValueError, match="one of real, simulated, not 'fast'"):
        pacing_for("fast", sleep=real_waits.append)
