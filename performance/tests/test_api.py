"""The performance API: a strategy's figures, their series and per-symbol results, P&L per
period, and every strategy side by side."""

from decimal import Decimal

from performance.api.filters import PerformanceFilter
from performance.api.serializers import FIGURES
from performance.models import AgentPerformance
from performance.services import performance_snapshot
from performance.tests.factories import at
from strategies.tests.factories import StrategyFactory
from tradingsite.testing.api import APITestCase, APIViewTestCases

D = Decimal


class TestPerformance(APIViewTestCases.ReadOnlyViewSet):
    basename = "performance"
    expected_fields = {
        "id", "strategy_id", "strategy_name", "snapshot_time", "total_value", "cash_balance",
        "position_value", "realized_pnl", "unrealized_pnl", "total_pnl", "roi_percent",
        "num_trades", "num_winning_trades", "num_losing_trades", "win_rate", "avg_win",
        "avg_loss", "profit_factor", "sharpe_ratio", "max_drawdown", "max_drawdown_percent",
    }  # fmt: skip
    list_queries = 2
    model = AgentPerformance
    filterset = PerformanceFilter
    filter_ignore = set(FIGURES) - {"snapshot_time"}

    def make(self):
        return performance_snapshot(strategy=StrategyFactory(), now=at(20, 21))

    def test_strategies_side_by_side_newest_snapshot_each_sorted_by_a_figure(
        self, reader_client, two_weeks
    ):
        performance_snapshot(strategy=two_weeks, now=at(14, 21))
        newest = performance_snapshot(strategy=two_weeks, now=at(20, 21))
        idle = performance_snapshot(strategy=StrategyFactory(), now=at(20, 21))
        body = reader_client.get(self.list_url(), {"ordering": "-total_pnl"}).json()
        assert [row["id"] for row in body["results"]] == [newest.pk, idle.pk]
        assert D(body["results"][0]["total_pnl"]) == D("65")
        body = reader_client.get(self.list_url(), {"ordering": "total_pnl"}).json()
        assert [row["id"] for row in body["results"]] == [idle.pk, newest.pk]

        refused = reader_client.get(self.list_url(), {"ordering": "password"})
        assert refused.status_code == 400 and "ordering" in refused.json()["errors"]


class TestStrategyPerformance(APITestCase):
    def url(self, strategy_id, what="performance"):
        return f"/api/strategies/{strategy_id}/{what}/"

    def test_the_latest_figures_their_series_and_each_symbols_results(
        self, reader_client, two_weeks
    ):
        performance_snapshot(strategy=two_weeks, now=at(14, 21))
        performance_snapshot(strategy=two_weeks, now=at(20, 21))
        body = reader_client.get(self.url(two_weeks.pk)).json()

        latest = body["latest"]
        assert (D(latest["realized_pnl"]), D(latest["total_pnl"])) == (D("46"), D("65"))
        assert (D(latest["win_rate"]), D(latest["profit_factor"])) == (D("50"), D("1.8846"))
        assert latest["strategy_name"] == two_weeks.name
        # The book as it stood at each snapshot: here the same trades twice, oldest first.
        assert [(p["snapshot_time"], D(p["total_pnl"])) for p in body["series"]] == [
            ("2025-03-14T21:00:00Z", D("65")), ("2025-03-20T21:00:00Z", D("65")),
        ]  # fmt: skip
        assert [
            (row["symbol"], row["num_trades"], D(row["net_pnl"]), D(row["fees"]))
            for row in body["by_symbol"]
        ] == [
            ("AAPL", 1, D("98"), D("2")),
            ("MSFT", 1, D("-52"), D("2")),
        ]  # fmt: skip  (the open PEP trade and the manual KO one are not there)
        # Today's daily equity curve, with each day's fall below the peak so far.
        equity = {point["day"]: point for point in body["equity"]}
        assert body["equity"][0] == {"day": "2025-03-07", "equity": "10000.00",
                                     "drawdown_percent": "0.00"}  # fmt: skip
        assert (equity["2025-03-12"]["equity"], equity["2025-03-12"]["drawdown_percent"]) == (
            "10098.00", "0.00",
        )  # fmt: skip
        assert (equity["2025-03-18"]["equity"], equity["2025-03-18"]["drawdown_percent"]) == (
            "10046.00",
            "0.51",
        )  # fmt: skip  (52 below the 10,098 peak)

    def test_pnl_per_day_week_and_month(self, reader_client, two_weeks):
        week = reader_client.get(self.url(two_weeks.pk, "pnl"), {"period": "week"}).json()
        assert [(row["period_start"], D(row["net_pnl"]), row["exits"]) for row in week] == [
            ("2025-03-10", D("98"), 1), ("2025-03-17", D("-52"), 1),
        ]  # fmt: skip
        month = reader_client.get(self.url(two_weeks.pk, "pnl"), {"period": "month"}).json()
        assert [(row["period_start"], D(row["net_pnl"]), D(row["fees"])) for row in month] == [
            ("2025-03-01", D("46"), D("4")),
        ]
        day = reader_client.get(self.url(two_weeks.pk, "pnl")).json()  # day by default
        assert [row["period_start"] for row in day] == ["2025-03-12", "2025-03-18"]

    def test_bad_input_is_a_400_or_a_404_naming_it(self, reader_client, two_weeks):
        refused = reader_client.get(self.url(two_weeks.pk, "pnl"), {"period": "fortnight"})
        assert refused.status_code == 400
        assert refused.json()["errors"]["period"] == ["'fortnight' is not one of day, week, month."]
        assert reader_client.get(self.url(999999)).status_code == 404
        assert reader_client.get(self.url(999999, "pnl")).status_code == 404
        assert reader_client.get(self.url("x1", "pnl")).status_code == 404  # not an id at all

    def test_a_snapshot_of_a_strategy_that_does_not_exist_is_a_404_and_writes_nothing(
        self, staff_client
    ):
        assert staff_client.post(self.url(999999)).status_code == 404
        assert not AgentPerformance.objects.exists()

    def test_a_snapshot_on_demand_is_staffs(self, reader_client, staff_client, two_weeks):
        assert reader_client.post(self.url(two_weeks.pk)).status_code == 403
        made = staff_client.post(self.url(two_weeks.pk))
        assert made.status_code == 201 and D(made.json()["realized_pnl"]) == D("46")

    def test_anonymous_gets_nothing(self, anonymous, two_weeks):
        assert anonymous.get(self.url(two_weeks.pk)).status_code in (401, 403)
        assert anonymous.get(self.url(two_weeks.pk, "pnl")).status_code in (401, 403)
