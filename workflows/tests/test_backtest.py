"""Backtests of a strategy's own workflow: checked against backtesting.py, free of look-ahead,
filled as the simulated book says, stored in seed 004's probe tables."""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

from marketdata.models import OhlcvBar
from marketdata.tests.factories import CodeFactory
from strategies.tests.factories import StrategyFactory
from workflows.backtest import BacktestSettings, Book, SimOrder, backtest_run
from workflows.engine import steps as engine_steps
from workflows.models import StrategyProbeResult, StrategyProbeTrade
from workflows.services import workflow_create

pytestmark = pytest.mark.django_db

FAST, SLOW = 10, 30
FIRST_DAY = datetime(2022, 1, 3, tzinfo=UTC)

SMA_CROSS_STEPS = [
    {"type": "fetch_data", "config": {"period": "{{period_1}}", "bar": "{{bar_1}}"}},
    {"type": "sma_cross", "config": {"fast": FAST, "slow": SLOW}},
    {"type": "decide", "config": {}},
    {"type": "validate_risk", "config": {"min_r_coefficient": "{{min_r_coefficient}}",
                                         "min_profit_margin": "{{min_profit_margin}}"}},
    {"type": "place_order", "config": {"order_type": "MKT", "tif": "DAY"}},
]  # fmt: skip
PARAMS = {
    "period_1": "1 Y", "bar_1": "1 day", "min_r_coefficient": "1.0", "min_profit_margin": "0.05",
    "risk_per_trade": "0.01", "account_size": "100000",
}  # fmt: skip


def daily_walk(sessions=500, seed=8):
    """Weekday bars of a seeded walk whose drift turns now and then (so SMAs cross)."""
    rng = np.random.default_rng(seed)
    drift = np.repeat(rng.choice([-0.003, 0.003], sessions // 30 + 1), 30)[:sessions]
    close = 100 * np.exp(np.cumsum(drift + rng.normal(0, 0.012, sessions)))
    open_ = np.concatenate([[100.0], close[:-1] * (1 + rng.normal(0, 0.003, sessions - 1))])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, sessions)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, sessions)))
    days, day = [], FIRST_DAY
    while len(days) < sessions:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return pd.DataFrame(
        {"Open": open_.round(2), "High": high.round(2), "Low": low.round(2),
         "Close": close.round(2), "Volume": rng.integers(1000, 5000, sessions)},
        index=pd.DatetimeIndex(days),
    )  # fmt: skip


def store(code, frame):
    OhlcvBar.objects.bulk_create(
        OhlcvBar(
            ticker=code,
            timeframe="1Day",
            timestamp=moment.to_pydatetime(),
            open=row.Open,
            high=row.High,
            low=row.Low,
            close=row.Close,
            volume=int(row.Volume),
            source="csv_import",
        )  # fmt: skip
        for moment, row in frame.iterrows()
    )


def sma_cross_strategy(codes, steps=SMA_CROSS_STEPS, params=PARAMS):
    workflow = workflow_create(name="SMA cross", steps=steps, default_params=params)
    strategy = StrategyFactory(type="custom", workflow=workflow, param={})
    strategy.codes.set(codes)
    return strategy


class SmaCrossLongOnly(Strategy):
    """The same rules in backtesting.py: the risk gate's size (10 % of the equity, at most
    the account size, in whole shares at the close), market orders at the next open."""

    def init(self):
        close = pd.Series(self.data.Close)
        self.fast = self.I(lambda: close.rolling(FAST).mean().to_numpy())
        self.slow = self.I(lambda: close.rolling(SLOW).mean().to_numpy())

    def next(self):
        if crossover(self.fast, self.slow):
            equity = min(Decimal("100000"), Decimal(repr(float(self.equity))))
            close = Decimal(repr(float(self.data.Close[-1])))
            self.buy(size=int((equity * Decimal("0.10") / close).to_integral_value("ROUND_FLOOR")))
        elif crossover(self.slow, self.fast):
            self.position.close()


def test_an_sma_cross_workflow_matches_backtesting_py_to_the_cent():
    frame = daily_walk()
    code = CodeFactory(symbol="WALK")
    store(code, frame)
    strategy = sma_cross_strategy([code])

    outcome = backtest_run(
        strategy=strategy,
        settings=BacktestSettings(
            start=FIRST_DAY,
            end=frame.index[-1].to_pydatetime(),
            commission="none",
            brackets=False,  # backtesting.py's SMA cross trades on its signals alone
        ),  # fmt: skip
    )

    anchor = Backtest(frame, SmaCrossLongOnly, cash=100_000, commission=0).run()
    theirs = anchor._trades
    ours = [t for t in outcome.trades if t.exit_time is not None]
    assert len(ours) == len(theirs) >= 4
    for trade, (_, row) in zip(ours, theirs.iterrows(), strict=True):
        assert trade.entry_time == row.EntryTime.to_pydatetime().replace(tzinfo=UTC)
        assert trade.exit_time == row.ExitTime.to_pydatetime().replace(tzinfo=UTC)
        assert trade.quantity == row.Size
        assert float(trade.entry_price) == pytest.approx(row.EntryPrice, abs=1e-9)
        assert float(trade.exit_price) == pytest.approx(row.ExitPrice, abs=1e-9)
        assert round(float(trade.pnl), 2) == round(row.PnL, 2)
    assert round(float(outcome.final_equity), 2) == round(anchor["Equity Final [$]"], 2)


def test_results_and_trades_are_stored_in_the_probe_tables():
    frame = daily_walk()
    code = CodeFactory(symbol="WALK")
    store(code, frame)
    strategy = sma_cross_strategy([code])

    outcome = backtest_run(strategy=strategy, settings=BacktestSettings(
        start=FIRST_DAY, end=frame.index[-1].to_pydatetime()))  # fmt: skip

    (result,) = StrategyProbeResult.objects.filter(run_id=outcome.run_id)
    closed = [t for t in outcome.trades if t.exit_time is not None]
    assert (result.strategy_id, result.symbol, result.total_trades) == (
        strategy.pk,
        "WALK",
        len(closed),
    )
    assert result.open_day == FIRST_DAY.date()
    wins = [t for t in closed if t.pnl > 0]
    assert result.win_rate == pytest.approx(100 * len(wins) / len(closed))
    assert result.total_pnl == pytest.approx(float(sum(t.pnl for t in outcome.trades)), abs=0.01)
    curve = result.metrics["equity_curve"]
    assert len(curve) == len(frame) and curve[0][1] == 100000.0
    assert result.metrics["return_pct"] == pytest.approx(result.total_pnl / 1000)
    assert result.max_drawdown > 0 and result.sharpe_ratio is not None
    stored = StrategyProbeTrade.objects.filter(result=result).order_by("entry_time")
    reasons = [t.exit_reason for t in stored]
    assert set(reasons[: len(closed)]) <= {"signal", "take profit", "stop loss"}
    assert reasons[len(closed) :] in ([], ["open at the end"])
    # IB's fixed commissions, the default: at least 1.00 a fill, two fills a round trip.
    first = stored[0]
    assert Decimal(first.metrics["commission"]) >= 2
    assert first.pnl == pytest.approx(
        (first.exit_price - first.entry_price) * first.quantity
        - float(first.metrics["commission"]), abs=0.01)  # fmt: skip


class Peeking(engine_steps.Step):
    """A cheat: it reads the next bar's close from the store and buys what will rise."""

    type = "peek_next_bar"
    fields = {}

    def run(self, run, symbol, config):
        after = OhlcvBar.objects.filter(ticker=symbol.code, timestamp__gt=run.moment).order_by(
            "timestamp").first()  # fmt: skip
        close = symbol.timeframes["1 day"]["bars"]["close"][-1]
        kind = "hold" if after is None else "buy" if after.close > close else "sell"
        symbol.proposal = {"type": kind, "current_price": close, "analysis": "the next bar"}


def decisions_seen(strategy, start, end):
    """(time, decision) of each bar in [start, end], as the run decided them."""
    outcome = backtest_run(strategy=strategy, settings=BacktestSettings(start=start, end=end),
                           store=False, keep_log=True)  # fmt: skip
    return [(entry["time"], entry["message"]) for entry in outcome.logs
            if entry["message"].startswith("decision ")]  # fmt: skip


def look_ahead_free(strategy, frame):
    """What the workflow decided over the first 200 bars is the same whether the store holds
    the bars after them or not: no step saw a bar after its own time."""
    start, cut = FIRST_DAY, frame.index[199].to_pydatetime()
    with_future = [d for d in decisions_seen(strategy, start, frame.index[-1].to_pydatetime())
                   if d[0] <= cut.isoformat()]  # fmt: skip
    OhlcvBar.objects.filter(timestamp__gt=cut).delete()
    without_future = decisions_seen(strategy, start, cut)
    return with_future == without_future and len(with_future) == 200


@pytest.fixture
def peeking_step():
    engine_steps.REGISTRY[Peeking.type] = Peeking()
    yield
    del engine_steps.REGISTRY[Peeking.type]


def test_no_step_sees_a_bar_after_its_time():
    frame = daily_walk()
    code = CodeFactory(symbol="WALK")
    store(code, frame)

    assert look_ahead_free(sma_cross_strategy([code]), frame)


def test_a_workflow_that_peeks_at_the_next_bar_fails_the_look_ahead_check(peeking_step):
    frame = daily_walk()
    code = CodeFactory(symbol="WALK")
    store(code, frame)
    steps = [SMA_CROSS_STEPS[0], {"type": "peek_next_bar", "config": {}}, *SMA_CROSS_STEPS[2:]]

    assert not look_ahead_free(sma_cross_strategy([code], steps=steps), frame)


def test_the_workflow_is_shown_only_bars_up_to_its_time():
    frame = daily_walk(120)
    code = CodeFactory(symbol="WALK")
    store(code, frame)
    seen = []

    class Spy(engine_steps.Step):
        type = "spy"
        fields = {}

        def run(self, run, symbol, config):
            seen.append((run.moment, symbol.timeframes["1 day"]["bars"]["time"][-1],
                         len(symbol.timeframes["1 day"]["bars"]["time"])))  # fmt: skip

    engine_steps.REGISTRY["spy"] = Spy()
    try:
        steps = [SMA_CROSS_STEPS[0], {"type": "spy", "config": {}}, *SMA_CROSS_STEPS[1:]]
        backtest_run(strategy=sma_cross_strategy([code], steps=steps), store=False,
                     settings=BacktestSettings(start=frame.index[50].to_pydatetime(),
                                               end=frame.index[-1].to_pydatetime()))  # fmt: skip
    finally:
        del engine_steps.REGISTRY["spy"]

    assert len(seen) == 70
    for number, (moment, last_seen, count) in enumerate(seen, start=51):
        assert last_seen == moment.isoformat()
        assert count == number  # every bar up to now, none after


def book(**settings):
    return Book(cash=Decimal("10000"), strategy=None,
                settings=BacktestSettings(start=FIRST_DAY, end=FIRST_DAY, **settings))  # fmt: skip


def order(sim, side, order_type, price=None, quantity=10, tif="DAY"):
    code = CodeFactory.build(pk=1, symbol="X", conid=1)
    sim.symbols = {1: "X"}
    sim.now = FIRST_DAY
    return sim.place(code=code, side=side, quantity=quantity, order_type=order_type,
                     price=None if price is None else Decimal(price), tif=tif), code  # fmt: skip


@pytest.mark.parametrize(
    ("side", "order_type", "price", "bar", "filled_at"),
    [
        ("BUY", "MKT", None, ("100", "105", "95"), "100"),  # the next open
        ("BUY", "LMT", "98", ("100", "105", "95"), "98"),  # the range reaches the limit
        ("BUY", "LMT", "102", ("100", "105", "95"), "100"),  # opens under the limit: the open
        ("BUY", "LMT", "94", ("100", "105", "95"), None),  # not reached: a DAY order expires
        ("BUY", "STP", "103", ("100", "105", "95"), "103"),
        ("BUY", "STP", "98", ("100", "105", "95"), "100"),  # opens past the stop
        ("SELL", "LMT", "104", ("100", "105", "95"), "104"),
    ],
)
def test_the_simulated_book_fills_as_the_bar_allows(side, order_type, price, bar, filled_at):
    sim = book(commission="none", allow_short=True)
    placed, code = order(sim, side, order_type, price)

    sim.fill_working(code, *(Decimal(v) for v in bar), FIRST_DAY + timedelta(days=1))

    assert sim.orders == []
    if filled_at is None:
        assert sim.position(code) == 0 and sim.cash == 10000
    else:
        sign = 1 if side == "BUY" else -1
        assert sim.position(code) == sign * 10
        assert sim.cash == 10000 - sign * 10 * Decimal(filled_at)
    assert isinstance(placed, SimOrder)


def test_ib_fixed_commissions_and_slippage_on_a_market_fill():
    sim = book(slippage_bps=Decimal("10"))
    _, code = order(sim, "BUY", "MKT", quantity=500)

    sim.fill_working(code, Decimal("100"), Decimal("101"), Decimal("99"), FIRST_DAY)

    # 500 x 0.005 = 2.50 of commission; 10 bps of slippage: 100.10 a share.
    assert sim.cash == Decimal("10000") - Decimal("500") * Decimal("100.10") - Decimal("2.50")
    assert math.isclose(sim.commission(100, Decimal("1")), 1.0)  # at most 1 % of the value


def test_a_code_without_stored_bars_is_left_out_and_named():
    frame = daily_walk(120)
    code, bare = CodeFactory(symbol="WALK"), CodeFactory(symbol="BARE")
    store(code, frame)

    outcome = backtest_run(strategy=sma_cross_strategy([code, bare]), settings=BacktestSettings(
        start=FIRST_DAY, end=frame.index[-1].to_pydatetime()))  # fmt: skip

    assert [r.symbol for r in outcome.results] == ["WALK"]
    assert outcome.failures == {
        "BARE": "The bar store has no 1 day bars of BARE. (bar: sync or import BARE's 1 day "
        "bars first)"
    }


def bracket(sim, side="BUY", quantity=10, target="110", stop="95"):
    code = CodeFactory.build(pk=1, symbol="X", conid=1)
    sim.symbols = {1: "X"}
    sim.now = FIRST_DAY
    entry = sim.place(code=code, side=side, quantity=quantity, order_type="MKT", price=None,
                      tif="DAY", target_price=Decimal(target), stop_loss=Decimal(stop))  # fmt: skip
    return entry, code


def day(n):
    return FIRST_DAY + timedelta(days=n)


def test_a_brackets_take_profit_fills_on_a_later_bar_and_cancels_its_stop():
    sim = book(commission="none")
    entry, code = bracket(sim)
    assert [c.role for c in entry.children.all()] == ["take_profit", "stop_loss"]

    # The entry fills at the next open; its children work from the bar after it, so this
    # bar's high over the target fills nothing more.
    sim.fill_working(code, Decimal("100"), Decimal("111"), Decimal("99"), day(1))
    assert sim.position(code) == 10 and sim.trades == []
    assert sorted(o.role for o in sim.orders) == ["stop_loss", "take_profit"]
    assert sim.working_order(code.conid, strategy=None) is None  # the children protect it
    sim.fill_working(code, Decimal("104"), Decimal("108"), Decimal("101"), day(2))
    assert sim.position(code) == 10  # neither reached
    sim.fill_working(code, Decimal("108"), Decimal("112"), Decimal("107"), day(3))

    (trade,) = sim.trades
    assert (trade.exit_reason, trade.exit_price, trade.exit_time) == ("take profit", 110, day(3))
    assert trade.pnl == (110 - 100) * 10
    assert sim.position(code) == 0 and sim.orders == []  # the stop went with it
    assert sim.cash == 10000 + 100


def test_a_bar_reaching_both_the_stop_and_the_target_fills_the_stop_first():
    sim = book(commission="ib_fixed")
    _, code = bracket(sim)
    sim.fill_working(code, Decimal("100"), Decimal("101"), Decimal("99"), day(1))

    sim.fill_working(code, Decimal("100"), Decimal("111"), Decimal("94"), day(2))

    (trade,) = sim.trades
    assert (trade.exit_reason, trade.exit_price) == ("stop loss", 95)
    # IB's fixed commission, USD 1.00 at least, on the entry and on the exit.
    assert trade.pnl == (95 - 100) * 10 - 2
    assert sim.orders == [] and sim.position(code) == 0


def test_a_gap_through_the_stop_fills_at_the_open():
    sim = book(commission="none")
    _, code = bracket(sim)
    sim.fill_working(code, Decimal("100"), Decimal("101"), Decimal("99"), day(1))

    sim.fill_working(code, Decimal("90"), Decimal("92"), Decimal("88"), day(2))

    (trade,) = sim.trades
    assert (trade.exit_reason, trade.exit_price, trade.pnl) == ("stop loss", 90, -100)


def test_the_workflows_own_exit_cancels_the_brackets_children():
    sim = book(commission="none")
    _, code = bracket(sim)
    sim.fill_working(code, Decimal("100"), Decimal("101"), Decimal("99"), day(1))
    sim.now = day(1)
    sim.place(code=code, side="SELL", quantity=10, order_type="MKT", price=None, tif="DAY",
              role="exit")  # fmt: skip

    sim.fill_working(code, Decimal("102"), Decimal("103"), Decimal("101"), day(2))

    (trade,) = sim.trades
    assert (trade.exit_reason, trade.exit_price) == ("signal", 102)
    assert sim.orders == []


def test_a_backtest_closes_trades_at_the_decisions_target_and_stop():
    frame = daily_walk()
    code = CodeFactory(symbol="WALK")
    store(code, frame)

    outcome = backtest_run(strategy=sma_cross_strategy([code]), settings=BacktestSettings(
        start=FIRST_DAY, end=frame.index[-1].to_pydatetime(), commission="none"))  # fmt: skip

    closed = [t for t in outcome.trades if t.exit_time is not None]
    reasons = {t.exit_reason for t in closed}
    assert {"take profit", "stop loss"} & reasons, reasons
    for trade in closed:
        assert trade.pnl == (trade.exit_price - trade.entry_price) * trade.quantity
        # sma_cross's levels: a target 10 % and a stop 5 % from the close it decided at.
        if trade.exit_reason == "stop loss":
            assert trade.exit_price < trade.entry_price
        if trade.exit_reason == "take profit":
            assert trade.exit_price > trade.entry_price
    stored_reasons = set(StrategyProbeTrade.objects.values_list("exit_reason", flat=True))
    assert reasons <= stored_reasons
