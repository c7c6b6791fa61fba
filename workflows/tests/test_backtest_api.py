"""Backtests through the API: queued for a real Celery worker, followed, and read back."""

import time
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from marketdata.tests.factories import CodeFactory
from strategies.tests.factories import StrategyFactory
from tradingsite.testing.api import APITestCase, APIViewTestCases, assert_refused, results
from workflows.api.filters import ProbeResultFilter
from workflows.models import StrategyProbeResult, StrategyProbeTrade

from .test_backtest import FIRST_DAY, daily_walk, sma_cross_strategy, store

RESULT_FIELDS = {
    "id", "run_id", "symbol", "strategy_id", "period_start", "period_end", "open_day",
    "total_trades", "win_rate", "profit_factor", "total_pnl", "max_drawdown", "sharpe_ratio",
    "metrics", "created_at",
}  # fmt: skip


def probe_result(**fields):
    result = StrategyProbeResult.objects.create(
        run_id=fields.pop("run_id", "bt-1"), symbol="WALK", strategy=StrategyFactory(),
        period_start=FIRST_DAY, period_end=datetime(2023, 1, 2, tzinfo=UTC),
        open_day=FIRST_DAY.date(), total_trades=1, total_pnl=12.5, **fields,
    )  # fmt: skip
    StrategyProbeTrade.objects.create(
        result=result, symbol="WALK", side="long", entry_time=FIRST_DAY,
        exit_time=datetime(2022, 2, 1, tzinfo=UTC), entry_price=100, exit_price=101.25,
        quantity=10, pnl=12.5, return_pct=1.25, exit_reason="signal",
    )  # fmt: skip
    return result


@pytest.mark.django_db
class TestBacktestResults(APIViewTestCases.ReadOnlyViewSet):
    basename = "backtest"
    model = StrategyProbeResult
    expected_fields = RESULT_FIELDS | {"trades"}
    list_fields = RESULT_FIELDS
    list_queries = 2  # count, page
    filterset = ProbeResultFilter
    filter_ignore = {"metrics", "trades"}

    def make(self):
        return probe_result()

    def test_a_result_has_its_trades(self, reader_client):
        result = probe_result()
        (trade,) = reader_client.get(self.detail_url(result)).json()["trades"]
        assert (trade["side"], trade["pnl"], trade["exit_reason"]) == ("long", 12.5, "signal")

    def test_a_runs_results_are_found_by_its_id(self, reader_client):
        mine, _ = probe_result(run_id="bt-mine"), probe_result(run_id="bt-other")
        response = reader_client.get(self.list_url(), {"run_id": "bt-mine"})
        assert [row["id"] for row in results(response)] == [mine.pk]


@pytest.mark.django_db
class TestBacktestRequests(APITestCase):
    basename = "strategy"

    def backtest_url(self, strategy):
        return reverse("api:strategy-backtest", kwargs={"pk": strategy.pk})

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"to": "2023-01-31"}, "from"),
            ({"from": "2023-13-01", "to": "2023-01-31"}, "from"),
            ({"from": "2023-02-01", "to": "2023-01-31"}, "to"),
            ({"from": "2023-01-01", "to": "2023-01-31", "commission": "free"}, "commission"),
            ({"from": "2023-01-01", "to": "2023-01-31", "slippage_bps": -1}, "slippage_bps"),
        ],
    )
    def test_bad_requests_name_the_field(self, staff_client, body, field):
        response = staff_client.post(self.backtest_url(StrategyFactory()), body, format="json")
        assert_refused(response, 400, field)

    def test_readers_and_strangers_are_refused(self, reader_client, anonymous):
        strategy = StrategyFactory()
        body = {"from": "2023-01-01", "to": "2023-01-31"}
        assert_refused(reader_client.post(self.backtest_url(strategy), body, format="json"), 403)
        assert_refused(anonymous.post(self.backtest_url(strategy), body, format="json"), 401)
        assert_refused(anonymous.get(reverse("api:backtest-task", args=["x"])), 401)


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_backtest_runs_on_a_worker_with_its_progress(celery_worker_process, django_user_model):
    from tradingsite.testing.api import SecureAPIClient

    frame = daily_walk(260)
    code = CodeFactory(symbol="WALK")
    store(code, frame)
    strategy = sma_cross_strategy([code])
    client = SecureAPIClient()
    client.force_authenticate(django_user_model.objects.create_user("desk", is_staff=True))

    response = client.post(
        reverse("api:strategy-backtest", kwargs={"pk": strategy.pk}),
        {"from": "2022-01-03", "to": frame.index[-1].date().isoformat(), "commission": "none"},
        format="json",
    )

    assert response.status_code == 202, response.content
    status_url = response.json()["status_url"]
    states, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        body = client.get(status_url).json()
        states.append(body["state"])
        if body["state"] in ("SUCCESS", "FAILURE"):
            break
        time.sleep(0.1)
    assert body["state"] == "SUCCESS", body
    assert body["progress"] == {"percent": 100}
    (result,) = results(client.get(reverse("api:backtest-list"), {"run_id": body["run_id"]}))
    assert result["strategy_id"] == strategy.pk and result["symbol"] == "WALK"
    assert len(result["metrics"]["equity_curve"]) == len(frame)
