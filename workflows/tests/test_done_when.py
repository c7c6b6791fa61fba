"""Issue 17's "done when", walked as a trader would: ``import_bars`` loads CSV files of daily
bars, ``backtest`` runs the demo strategy's own workflow (its offline agent team) over them,
and the admin shows the result's equity curve, trades and statistics."""

import html
import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from strategies.models import Strategy
from tradingsite.management.commands.load_demo import DEMO_CODES, DEMO_STRATEGY
from workflows.models import StrategyProbeConversation, StrategyProbeResult

from .test_backtest import daily_walk

pytestmark = pytest.mark.django_db

SESSIONS = 520
BACKTESTED = 40  # the last sessions; the workflow looks two years back from each


def chart(page, element_id):
    start = page.index(f'<script id="{element_id}" type="application/json">')
    return json.loads(page[page.index(">", start) + 1 : page.index("</script>", start)])


def demo_with_bars(tmp_path):
    """The demo loaded, and a CSV file of daily bars imported for each of its codes."""
    call_command("load_demo", stdout=StringIO())
    frames = {}
    for number, (symbol, _) in enumerate(DEMO_CODES):
        frame = daily_walk(SESSIONS, seed=8 + number)
        frames[symbol] = frame
        path = tmp_path / f"{symbol}.csv"
        rows = ["date,open,high,low,close,volume"] + [
            f"{day:%Y-%m-%d},{r.Open},{r.High},{r.Low},{r.Close},{r.Volume}"
            for day, r in frame.iterrows()
        ]
        path.write_text("\n".join(rows) + "\n")
        out = StringIO()
        call_command("import_bars", str(path), "--symbol", symbol, "--timeframe", "1Day",
                     stdout=out)  # fmt: skip
        assert f"{symbol} 1Day: {SESSIONS} rows read from 1 file, {SESSIONS} new bars" in (
            out.getvalue()
        )
    return frames


def test_import_bars_then_backtest_the_demo_then_the_admin_shows_the_result(admin_client, tmp_path):
    frames = demo_with_bars(tmp_path)
    frame = frames["AAPL"]
    first, last = frame.index[-BACKTESTED], frame.index[-1]

    out = StringIO()
    call_command("backtest", DEMO_STRATEGY, "--from", f"{first:%Y-%m-%d}", "--to",
                 f"{last:%Y-%m-%d}", stdout=out)  # fmt: skip

    demo = Strategy.objects.get(name=DEMO_STRATEGY)
    results = StrategyProbeResult.objects.filter(strategy=demo).order_by("symbol")
    assert [r.symbol for r in results] == ["AAPL", "MSFT", "SPY"]
    assert f"run {results[0].run_id}: {3 * BACKTESTED} bars" in out.getvalue()
    traded = [r for r in results if r.trades.exists()]
    assert traded, out.getvalue()  # the agents bought something in 40 sessions
    result = traded[0]

    page = admin_client.get(f"/admin/workflows/strategyproberesult/{result.pk}/change/",
                            secure=True).content.decode()  # fmt: skip
    shown = text(page)

    # The equity curve: one point a session of the period, dated, from the starting cash.
    equity = chart(page, f"equity-{result.pk}")
    assert equity["labels"] == [f"{day:%Y-%m-%d}" for day in frame.index[-BACKTESTED:]]
    assert equity["close"][0] == float(result.metrics["starting_cash"])
    assert equity["close"][-1] == pytest.approx(
        float(result.metrics["starting_cash"]) + result.total_pnl, abs=0.01
    )
    # The trades: listed with their prices and exit reason, and marked on the price chart.
    trades = list(result.trades.order_by("entry_time"))
    for trade in trades:
        assert f" {trade.entry_price} " in shown and f" {trade.exit_reason} " in shown
    marks = chart(page, f"trades-{result.pk}")["markers"]
    assert len([m for m in marks if m["type"] == "buy"]) == len(trades)
    # The statistics.
    for label, value in (
        ("Total trades", result.total_trades), ("Win rate", result.win_rate),
        ("Profit factor", result.profit_factor), ("Total pnl", result.total_pnl),
        ("Sharpe ratio", result.sharpe_ratio), ("Max drawdown", result.max_drawdown),
    ):  # fmt: skip
        assert f"{label}: {'-' if value is None else value} " in shown, label
    assert f"Return: {result.metrics['return_pct']:.2f} %" in shown
    # The agents' conversation of each bar, stored with the result, as a live run's.
    conversation = result.conversation.all()
    assert conversation.count() >= 2 * BACKTESTED  # a request and replies at every bar
    assert {m.bar_time.date() for m in conversation} == {
        d.date() for d in frame.index[-BACKTESTED:]
    }
    assert {m.message_type for m in conversation} == {"request", "response"}
    assert f"{conversation.count()} agent messages" in shown
    listed = admin_client.get(
        f"/admin/workflows/strategyprobeconversation/?result__id__exact={result.pk}", secure=True
    ).content.decode()
    assert f"{conversation.count()} backtest agent messages" in text(listed)


def text(page):
    """The page as a person reads it: tags and scripts gone, spaces squeezed."""
    body = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def trades_of(run_id):
    return [
        (r.symbol, t.entry_time, t.entry_price, t.quantity, t.exit_time, t.exit_price, t.pnl,
         t.exit_reason)
        for r in StrategyProbeResult.objects.filter(run_id=run_id).order_by("symbol")
        for t in r.trades.order_by("entry_time", "id")
    ]  # fmt: skip


def replies_of(run_id):
    return [
        (m.result.symbol, m.bar_time, m.agent_name, m.message_content)
        for m in StrategyProbeConversation.objects.filter(
            result__run_id=run_id, message_type="response"
        )
        .select_related("result")
        .order_by("result__symbol", "bar_time", "id")
    ]


def test_a_backtest_is_replayed_from_its_agents_recorded_replies(tmp_path, settings):
    frame = demo_with_bars(tmp_path)["AAPL"]
    period = [
        "--from",
        f"{frame.index[-BACKTESTED]:%Y-%m-%d}",
        "--to",
        f"{frame.index[-1]:%Y-%m-%d}",
    ]
    call_command("backtest", DEMO_STRATEGY, *period, stdout=StringIO())
    (recorded,) = set(StrategyProbeResult.objects.values_list("run_id", flat=True))
    assert trades_of(recorded) and replies_of(recorded)
    # A real model is configured now, and nothing answers there: only the replay can.
    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:9/v1", "gpt-4o"

    call_command("backtest", DEMO_STRATEGY, *period, "--replay", recorded, stdout=StringIO())

    (replay,) = set(StrategyProbeResult.objects.values_list("run_id", flat=True)) - {recorded}
    assert trades_of(replay) == trades_of(recorded)
    assert replies_of(replay) == replies_of(recorded)
    models = set(
        StrategyProbeConversation.objects.filter(result__run_id=replay, message_type="response")
        .exclude(llm_model="")
        .values_list("llm_model", flat=True)
    )
    assert models == {f"replay of {recorded}"}
    with pytest.raises(CommandError, match="Run bt-none has no recorded agent messages"):
        call_command("backtest", DEMO_STRATEGY, *period, "--replay", "bt-none")
