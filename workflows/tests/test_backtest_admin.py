"""Backtest results in the admin: the statistics, the equity curve, the trades on the price
chart, runs compared side by side; a strategy's backtest queued from its list."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from marketdata.tests.factories import CodeFactory
from tradingsite.admin_tools import changelist_url
from workflows.backtest import BacktestSettings, backtest_run
from workflows.models import StrategyProbeResult

from .test_backtest import FIRST_DAY, daily_walk, sma_cross_strategy, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def backtested():
    frame = daily_walk()
    code = CodeFactory(symbol="WALK")
    store(code, frame)
    strategy = sma_cross_strategy([code])
    outcome = backtest_run(strategy=strategy, settings=BacktestSettings(
        start=FIRST_DAY, end=frame.index[-1].to_pydatetime()))  # fmt: skip
    return outcome, strategy, frame


def chart(page, element_id):
    start = page.index(f'<script id="{element_id}" type="application/json">')
    body = page[page.index(">", start) + 1 : page.index("</script>", start)]
    return json.loads(body)


def test_a_result_shows_its_equity_curve_and_its_trades_on_the_price(admin_client, backtested):
    outcome, _, frame = backtested
    (result,) = outcome.results

    page = admin_client.get(f"/admin/workflows/strategyproberesult/{result.pk}/change/",
                            secure=True).content.decode()  # fmt: skip

    equity = chart(page, f"equity-{result.pk}")
    assert len(equity["close"]) == len(frame) and equity["labels"][0] == "2022-01-03"
    trades = chart(page, f"trades-{result.pk}")
    assert len(trades["close"]) == len(frame)
    closed = [t for t in outcome.trades if t.exit_time is not None]
    buys = [m for m in trades["markers"] if m["type"] == "buy"]
    sells = [m for m in trades["markers"] if m["type"] == "sell"]
    assert len(buys) == len(outcome.trades) and len(sells) == len(closed)
    assert trades["labels"][buys[0]["index"]] == f"{closed[0].entry_time:%Y-%m-%d}"
    assert "long only" in page and "signal" in page  # the settings; the trades' exit reason


def test_runs_are_compared_side_by_side(admin_client, backtested):
    outcome, strategy, frame = backtested
    again = backtest_run(strategy=strategy, settings=BacktestSettings(
        start=FIRST_DAY, end=frame.index[-1].to_pydatetime(), commission="none"))  # fmt: skip
    ids = [outcome.results[0].pk, again.results[0].pk]

    page = admin_client.post(
        changelist_url(StrategyProbeResult),
        {"action": "compare", "_selected_action": ids}, secure=True,
    ).content.decode()  # fmt: skip

    assert outcome.run_id in page and again.run_id in page
    assert "commission ib_fixed" in page and "commission none" in page
    # The equity curves overlaid on one chart (Chart.js, as the dashboard draws).
    overlay = chart(page, "compare-equity")
    assert overlay["labels"] == [f"{day:%Y-%m-%d}" for day in frame.index]
    newest_first = [again, outcome]
    assert [c["label"] for c in overlay["curves"]] == [f"{o.run_id} WALK" for o in newest_first]
    for curve, run in zip(overlay["curves"], newest_first, strict=True):
        assert curve["equity"] == [value for _, value in run.results[0].metrics["equity_curve"]]
    assert overlay["curves"][0]["equity"] != overlay["curves"][1]["equity"]  # commissions
    assert 'data-compare-id="compare-equity"' in page and "vendor/chart.umd.min.js" in page
    assert "tradingsite/compare_chart.js" in page


def test_the_result_list_costs_the_same_queries_with_more_rows(
    admin_client, backtested, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):
        response = admin_client.get(changelist_url(StrategyProbeResult), secure=True)
    assert backtested[0].run_id in response.content.decode()


def test_the_backtest_command_prints_the_statistics(backtested):
    _, strategy, frame = backtested
    out = StringIO()

    last = frame.index[-1].date().isoformat()
    call_command("backtest", str(strategy.pk), "--from", "2022-01-03", "--to", last,
                 "--commission", "none", stdout=out)  # fmt: skip

    text = out.getvalue()
    assert text.startswith("run bt-") and "  WALK: " in text and "trades, P&L" in text
    assert StrategyProbeResult.objects.filter(strategy=strategy).count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2022-13-01", "--to", "2022-12-31"], "from"),
        (["--from", "2023-01-01", "--to", "2022-12-31"], "ends before it starts"),
        (["--from", "2030-01-01", "--to", "2030-12-31"], "no bars in that period"),
    ],
)
def test_the_backtest_command_refuses_bad_periods(backtested, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("backtest", str(backtested[1].pk), *args)


def test_a_strategys_backtest_is_queued_from_its_list(
    admin_client, django_capture_on_commit_callbacks
):
    from unittest import mock

    from strategies.models import Strategy

    strategy = sma_cross_strategy([CodeFactory(symbol="WALK")])
    with mock.patch("workflows.tasks.backtest_task.apply_async") as queued:
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(
                changelist_url(Strategy),
                {"action": "backtest_last_year", "_selected_action": [strategy.pk]},
                secure=True, follow=True,
            )  # fmt: skip

    page = response.content.decode()
    assert f"Backtest of {strategy} queued" in page
    ((_, call),) = [(c.args, c.kwargs) for c in queued.call_args_list]
    assert call["kwargs"]["strategy_id"] == strategy.pk
    assert call["kwargs"]["commission"] == "ib_fixed"
