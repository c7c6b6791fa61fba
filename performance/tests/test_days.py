"""A strategy's figures are read from its days (``strategy_pnl_days``, which the ledger keeps
as it books fills) instead of from every trade: they are the figures the formulas give on
the raw trades and exits, on hand-computed series and on a seeded random book (partial exits,
shorts, fills booked late), the library agrees with them, and the page and the API read them
in as many queries for a long history as for a short one."""

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import empyrical
import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketdata.tests.factories import CodeFactory
from orders.models import StrategyPnlDay, Trade, TradeExit
from orders.services import strategy_pnl_days_rebuild
from performance import metrics
from performance.services import performance_snapshot, strategy_capital, strategy_figures
from strategies.tests.factories import StrategyFactory
from tradingsite.broker import reset_broker
from tradingsite.testing.api import SecureAPIClient

from .factories import at, fill

pytestmark = pytest.mark.django_db

D = Decimal
TRADE_FIGURES = ("num_trades", "num_winning_trades", "num_losing_trades", "win_rate", "avg_win",
                 "avg_loss", "profit_factor")  # fmt: skip


def figures_from_trades(strategy, now):
    """The figures straight from the strategy's trades and exits, through the formulas'
    list functions: the definition the days' rows must give."""
    trades = list(Trade.objects.filter(strategy=strategy))
    results = [t.realized_pnl - t.fees for t in trades if t.exit_quantity == t.entry_quantity]
    by_day = defaultdict(Decimal)
    for exit_ in TradeExit.objects.filter(strategy=strategy):
        by_day[timezone.localdate(exit_.exited_at)] += exit_.realized_pnl - exit_.fees
    unrealized = strategy_figures(strategy=strategy, now=now)["unrealized_pnl"]  # open trades
    first = min(t.entry_date for t in trades).date() if trades else now.date()
    equity = metrics.equity_curve(
        capital=strategy_capital(strategy), realized_by_day=by_day, first=first,
        last=now.date(), unrealized=unrealized,
    )  # fmt: skip
    values = [value for _, value in equity]
    money, percent = metrics.max_drawdown(values)
    return {
        "num_trades": len(results),
        "num_winning_trades": sum(1 for r in results if r > 0),
        "num_losing_trades": sum(1 for r in results if r < 0),
        "win_rate": metrics.win_rate(results),
        "avg_win": metrics.average_win(results),
        "avg_loss": metrics.average_loss(results),
        "profit_factor": metrics.profit_factor(results),
        "realized_pnl": sum(by_day.values(), D(0)),
        "equity": equity,
        "sharpe_ratio": metrics.sharpe_ratio(metrics.daily_returns(values)),
        "max_drawdown": money,
        "max_drawdown_percent": percent,
    }


def assert_days_give_the_trades_figures(strategy, now):
    ours = strategy_figures(strategy=strategy, now=now)
    raw = figures_from_trades(strategy, now)
    assert {name: ours[name] for name in raw} == raw
    return ours


def day_rows():
    return sorted(
        StrategyPnlDay.objects.values_list(
            "strategy_id", "instrument_id", "day", "exits", "exits_net", "exits_fees",
            "num_trades", "num_winning_trades", "num_losing_trades", "gross_profit",
            "gross_loss", "trades_fees", "first_entry",
        )
    )  # fmt: skip


def test_the_days_of_a_winning_and_a_losing_week(two_weeks):
    """AAPL +98 closed on Wednesday 12th; MSFT -52 on Tuesday 18th (README's fixture)."""
    rows = StrategyPnlDay.objects.filter(strategy=two_weeks).order_by("day")
    assert [(r.day.isoformat(), r.exits, r.exits_net, r.num_trades, r.gross_profit,
             r.gross_loss, r.trades_fees) for r in rows] == [
        ("2025-03-12", 1, D("98"), 1, D("98"), D("0"), D("2")),
        ("2025-03-18", 1, D("-52"), 1, D("0"), D("-52"), D("2")),
    ]  # fmt: skip
    assert rows[0].first_entry == at(10)
    # The manual KO trade has no day of a strategy.
    assert StrategyPnlDay.objects.count() == 2
    figures = assert_days_give_the_trades_figures(two_weeks, at(20, 21))
    assert (figures["win_rate"], figures["profit_factor"]) == (D(50), D(98) / D(52))


def test_a_trade_closed_over_two_days_counts_on_the_day_of_its_last_exit():
    strategy = StrategyFactory(param={"account_size": "10000"})
    aapl = CodeFactory(symbol="AAPL")
    fill(aapl, "BUY", "10", "100", at(10), strategy=strategy)
    fill(aapl, "SELL", "4", "105", at(11), strategy=strategy)  # +20 gross
    (tuesday,) = StrategyPnlDay.objects.filter(strategy=strategy)
    assert (tuesday.exits, tuesday.num_trades) == (1, 0)  # not closed yet
    fill(aapl, "SELL", "6", "95", at(13), strategy=strategy)  # -30 gross
    rows = {r.day.day: r for r in StrategyPnlDay.objects.filter(strategy=strategy)}
    # Fees: the entry's 1.00 shared 4:6 over the exits, each exit's own 1.00.
    assert (rows[11].exits_net, rows[11].num_trades) == (D("20") - D("1.4"), 0)
    assert (rows[13].exits_net, rows[13].num_trades) == (D("-30") - D("1.6"), 1)
    assert (rows[13].gross_loss, rows[13].num_losing_trades) == (D("-13"), 1)  # -10 - 3 fees
    assert_days_give_the_trades_figures(strategy, at(14, 21))


def test_a_strategy_with_no_losses_and_one_with_no_trades():
    winner = StrategyFactory(param={"account_size": "10000"})
    aapl = CodeFactory(symbol="AAPL")
    fill(aapl, "BUY", "10", "100", at(10), strategy=winner)
    fill(aapl, "SELL", "10", "110", at(12), strategy=winner)
    figures = assert_days_give_the_trades_figures(winner, at(14, 21))
    assert figures["profit_factor"] is None and figures["win_rate"] == D(100)

    idle = StrategyFactory(param={"account_size": "10000"})
    figures = assert_days_give_the_trades_figures(idle, at(14, 21))
    assert figures["num_trades"] == 0 and figures["win_rate"] is None
    assert not StrategyPnlDay.objects.filter(strategy=idle).exists()


def seeded_book(strategy, seed=16, trips=30):
    """``trips`` round trips on three contracts, long and short, each closed in one or two
    exits with IB-like commissions; every tenth fill is booked after a later one (IB reported
    it late), which re-books its contract's ledger."""
    rng = random.Random(seed)
    codes = [CodeFactory(symbol=s) for s in ("AAPL", "MSFT", "PEP")]
    start = datetime(2025, 2, 3, 14, tzinfo=UTC)
    late = []
    for k in range(trips):
        code, side = codes[k % 3], rng.choice(["BUY", "SELL"])
        back = "SELL" if side == "BUY" else "BUY"
        quantity = rng.randint(2, 20)
        entry = D(rng.randint(5000, 15000)) / 100
        opened = start + timedelta(hours=7 * k)
        fill(code, side, quantity, entry, opened, strategy=strategy,
             commission=D(rng.randint(100, 300)) / 100)  # fmt: skip
        parts = [quantity] if rng.random() < 0.6 else [quantity // 2, quantity - quantity // 2]
        for n, part in enumerate(parts):
            price = (entry * D(1 + rng.gauss(0, 0.03))).quantize(D("0.01"))
            when = opened + timedelta(hours=3 + 16 * n)
            args = (code, back, part, price, when)
            if k % 10 == 9 and n == len(parts) - 1:
                late.append(args)
            else:
                fill(*args, strategy=strategy, commission=D("1.00"))
    for args in late:  # booked after the later fills of their contracts
        fill(*args, strategy=strategy, commission=D("1.00"))
    return start + timedelta(hours=7 * trips + 48)


def test_a_seeded_random_book_gives_the_trades_figures_and_the_librarys():
    strategy = StrategyFactory(param={"account_size": "25000"})
    now = seeded_book(strategy)
    assert Trade.objects.filter(strategy=strategy).count() >= 30
    figures = assert_days_give_the_trades_figures(strategy, now)

    # The days the ledger kept as it booked are those counted anew from the trades.
    kept = day_rows()
    strategy_pnl_days_rebuild()
    assert day_rows() == kept

    # The library on the same trades and the same curve.
    closed = Trade.objects.filter(strategy=strategy).exclude(exit_date=None)
    results = pd.Series([float(t.realized_pnl - t.fees) for t in closed
                         if t.exit_quantity == t.entry_quantity])  # fmt: skip
    assert figures["num_trades"] == len(results) and (results > 0).any() and (results < 0).any()
    assert float(figures["win_rate"]) == pytest.approx(100 * (results > 0).mean(), abs=1e-9)
    assert float(figures["profit_factor"]) == pytest.approx(
        results[results > 0].sum() / -results[results < 0].sum(), abs=1e-9
    )
    assert round(figures["realized_pnl"], 2) == round(
        sum(e.realized_pnl - e.fees for e in TradeExit.objects.filter(strategy=strategy)), 2
    )
    returns = pd.Series(metrics.daily_returns([value for _, value in figures["equity"]]))
    assert figures["sharpe_ratio"] == pytest.approx(empyrical.sharpe_ratio(returns), abs=1e-9)
    assert float(figures["max_drawdown_percent"]) == pytest.approx(
        -100 * empyrical.max_drawdown(returns), abs=1e-9
    )


@pytest.fixture
def no_gateway(settings):
    """IB is down: the admin's account summary says so at once."""
    settings.IBKR_HOST, settings.IBKR_PORT, settings.IBKR_CONNECT_ATTEMPTS = "127.0.0.1", 9, 1
    reset_broker()
    yield
    reset_broker()


def queries_of(get):
    with CaptureQueriesContext(connection) as context:
        assert get().status_code == 200
    return len(context.captured_queries)


def test_the_page_and_the_api_read_as_many_queries_for_many_trades_as_for_one(
    admin_client, admin_user, no_gateway
):
    strategy = StrategyFactory(param={"account_size": "10000"})
    aapl = CodeFactory(symbol="AAPL")
    api = SecureAPIClient()
    api.force_authenticate(admin_user)
    api_url = f"/api/strategies/{strategy.pk}/performance/"
    page_url = f"/admin/strategies/strategy/{strategy.pk}/change/"

    def book(days):
        for day in days:
            fill(aapl, "BUY", "10", "100", at(day, 14), strategy=strategy)
            fill(aapl, "SELL", "10", str(95 + day % 7), at(day, 16), strategy=strategy)
        performance_snapshot(strategy=strategy, now=at(28, 21))

    def counts():
        return queries_of(lambda: api.get(api_url)), queries_of(
            lambda: admin_client.get(page_url, secure=True)
        )

    book([3])
    counts()  # the first request fills the caches (content types, the session)
    one = counts()
    book(range(4, 28))
    assert Trade.objects.filter(strategy=strategy).count() == 25
    assert counts() == one
    # The strategy, its snapshots, its days (twice: totals and curve), its open trades (none
    # here: one query), and the authentication.
    assert one[0] == 6
