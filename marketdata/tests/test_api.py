from django.urls import reverse

from marketdata.api.filters import CodeFilter, MarketDataFilter
from marketdata.models import Code, MarketData
from marketdata.tests.factories import CodeFactory
from tradingsite.testing.api import APIViewTestCases, assert_refused, ids
from tradingsite.testing.factories import MarketDataFactory, make_decision

CODE_FIELDS = {
    "id", "symbol", "conid", "exchange", "currency", "sec_type", "name", "is_active", "created_at",
    "updated_at",
}  # fmt: skip


class TestCodes(APIViewTestCases.ModelViewSet):
    basename = "code"
    model = Code
    expected_fields = CODE_FIELDS
    list_queries = 2  # count, page
    filterset = CodeFilter
    invalid_create_data = [
        ({"conid": "abc"}, "conid"),
        ({"conid": 0}, "conid"),
        ({"conid": 2**40}, "conid"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "X" * 33}, "symbol"),
    ]
    invalid_update_data = [
        ({"conid": -5}, "conid"),
        ({"symbol": "   "}, "symbol"),
        ({"symbol": "../../../PWNED"}, "symbol"),  # a symbol names chart files
        ({"symbol": "/etc/x"}, "symbol"),
    ]

    def make(self):
        return CodeFactory()

    def create_data(self):
        return {"symbol": "AAPL", "conid": 265598, "exchange": "NASDAQ", "currency": "USD"}

    def update_data(self, obj):
        return {"exchange": "ARCA", "symbol": "SPY"}

    def test_a_taken_conid_is_a_400_naming_conid(self, staff_client):
        taken = CodeFactory(conid=265598, symbol="AAPL")
        response = staff_client.post(self.list_url(), self.create_data(), format="json")
        assert_refused(response, 400, "conid")
        assert response.json()["errors"]["conid"] == [
            f"conid 265598 is already stored as code #{taken.pk}, AAPL (SMART, 265598)."
        ]
        assert Code.objects.filter(conid=265598).count() == 1

    def test_a_symbol_ib_does_not_know_is_a_400_naming_symbol(self, staff_client, gateway):
        """The loopback gateway's universe is finite, as IB's: a typo is not a contract."""
        response = staff_client.post(reverse("api:code-resolve"), {"symbol": "APPL"},
                                     format="json")  # fmt: skip
        assert_refused(response, 400, "symbol")
        assert "No security definition has been found" in response.json()["errors"]["symbol"][0]
        assert not Code.objects.exists()

    def test_symbols_are_stored_upper_case(self, staff_client):
        response = staff_client.post(
            self.list_url(), {**self.create_data(), "symbol": " aapl "}, format="json"
        )
        assert response.json()["symbol"] == "AAPL"

    def test_symbols_have_what_ibs_symbols_have(self, staff_client):
        response = staff_client.post(
            self.list_url(), {**self.create_data(), "symbol": "brk b"}, format="json"
        )
        assert response.json()["symbol"] == "BRK B"
        response = staff_client.post(
            self.list_url(), {**self.create_data(), "conid": 7, "symbol": "A;B"}, format="json"
        )
        assert_refused(response, 400, "symbol")
        assert response.json()["errors"]["symbol"] == [
            "Use at most 32 letters, digits, spaces, dots and dashes, starting with a letter or "
            "a digit."
        ]

    def test_a_code_with_decisions_is_kept(self, staff_client):
        code = make_decision().code
        response = staff_client.delete(self.detail_url(code))
        assert_refused(response, 400, "id")
        assert Code.objects.filter(pk=code.pk).exists()

    def test_filters_by_symbol_and_exchange(self, reader_client):
        aapl = CodeFactory(symbol="AAPL", exchange="NASDAQ")
        CodeFactory(symbol="AAPL", exchange="SMART")
        CodeFactory(symbol="MSFT", exchange="NASDAQ")
        response = reader_client.get(self.list_url(), {"symbol": "aapl", "exchange": "NASDAQ"})
        assert ids(response) == [aapl.pk]


class TestMarketData(APIViewTestCases.ReadOnlyViewSet):
    basename = "market-data"
    model = MarketData
    expected_fields = {"id", "conid", "period", "bar", "data", "created_at"}
    list_fields = {"id", "conid", "period", "bar", "created_at"}
    list_queries = 2
    filterset = MarketDataFilter

    def make(self):
        return MarketDataFactory()

    def test_list_rows_leave_the_document_out(self, reader_client):
        row = self.make()
        listed = reader_client.get(self.list_url()).json()["results"]
        assert listed == [
            {
                "id": row.pk,
                "conid": row.conid,
                "period": "1 Y",
                "bar": "1 day",
                "created_at": listed[0]["created_at"],
            }
        ]
        assert reader_client.get(self.detail_url(row)).json()["data"] == row.data

    def test_filters_by_conid_period_and_bar(self, reader_client):
        wanted = MarketDataFactory(conid=1, period="1 Y", bar="1 day")
        MarketDataFactory(conid=1, period="1 Y", bar="1 week")
        MarketDataFactory(conid=1, period="2 Y", bar="1 day")
        MarketDataFactory(conid=2, period="1 Y", bar="1 day")
        query = {"conid": 1, "period": "1 Y", "bar": "1 day"}
        assert ids(reader_client.get(self.list_url(), query)) == [wanted.pk]
