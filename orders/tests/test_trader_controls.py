"""The trader's controls as a person uses them: close a position and cancel an order from the
admin (buttons with a confirmation) and the API, the kill switch from the API, the dashboard
and the command, the header while trading is halted, the daily loss limit on the dashboard,
and trading sessions. Over the real socket to the loopback gateway."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from marketdata.services import code_resolve
from orders.models import (
    Order,
    OrderStatus,
    Position,
    TradingAction,
    TradingActionKind,
    TradingSession,
)
from orders.services import order_place_manual, trading_session_end
from strategies.models import Strategy
from strategies.tests.factories import StrategyFactory
from tradingsite.testing.api import APITestCase, assert_refused

D = Decimal


def reload(row):
    return type(row).objects.get(pk=row.pk)


@pytest.fixture
def aapl(gateway):
    code = code_resolve(symbol="AAPL")
    gateway.set_price("AAPL", 200)
    return code


def bought(code, wait_for, quantity=10):
    order = order_place_manual(code=code, side="BUY", quantity=quantity, order_type="MKT")
    assert wait_for(lambda: reload(order).status == OrderStatus.FILLED)
    return Position.objects.get(instrument_id=code.conid, closed_at__isnull=True)


class TestControlsInTheAPI(APITestCase):
    def test_close_a_position_then_a_close_of_the_flat_one_is_refused(
        self, staff_client, reader_client, gateway, aapl, wait_for
    ):
        position = bought(aapl, wait_for)
        url = reverse("api:position-close", args=[position.pk])
        assert_refused(reader_client.post(url), 403)
        response = staff_client.post(url)
        assert response.status_code == 200, response.content
        [exit_] = response.json()
        assert (exit_["role"], exit_["side"], exit_["order_type"]) == ("exit", "SELL", "MKT")
        assert D(exit_["quantity"]) == 10
        assert wait_for(lambda: reload(position).closed_at is not None)
        action = TradingAction.objects.get(kind=TradingActionKind.CLOSE_POSITION)
        assert (action.user, action.position_id, action.order_id) == ("staff", position.pk,
                                                                      exit_["id"])  # fmt: skip
        sent = len(gateway.orders())
        refused = staff_client.post(url)
        assert_refused(refused, 400, "position")
        assert "nothing to close" in refused.json()["errors"]["position"][0]
        assert len(gateway.orders()) == sent

    def test_the_kill_switch_and_resume(self, staff_client, reader_client, gateway, aapl, wait_for):
        StrategyFactory(active=True)
        position = bought(aapl, wait_for)
        resting = order_place_manual(code=code_resolve(symbol="MSFT"), side="BUY", quantity=1,
                                     order_type="LMT", price=D("1.00"), tif="GTC")  # fmt: skip
        assert_refused(reader_client.post(reverse("api:trading-kill"), {}, format="json"), 403)
        response = staff_client.post(reverse("api:trading-kill"), {"flatten": True}, format="json")
        assert response.status_code == 200, response.content
        assert (response.json()["kind"], response.json()["flatten"]) == ("kill_switch", True)
        assert wait_for(lambda: reload(resting).status == OrderStatus.CANCELLED)
        assert wait_for(lambda: reload(position).closed_at is not None)
        assert not Strategy.objects.filter(active=True).exists()
        state = reader_client.get(reverse("api:trading")).json()
        assert (state["halted"], state["halted_by"]) == (True, "staff")
        assert staff_client.post(reverse("api:trading-resume")).status_code == 200
        assert reader_client.get(reverse("api:trading")).json()["halted"] is False
        assert_refused(staff_client.post(reverse("api:trading-resume")), 400, "kill_switch")
        kinds = [a["kind"] for a in reader_client.get(reverse("api:tradingaction-list")).json()
                 ["results"]]  # fmt: skip
        assert kinds == ["resume", "kill_switch"]

    def test_a_cancel_through_the_api_is_recorded(self, staff_client, gateway, aapl, wait_for):
        order = order_place_manual(code=aapl, side="BUY", quantity=1, order_type="LMT",
                                   price=D("100.00"), tif="GTC")  # fmt: skip
        assert staff_client.post(reverse("api:order-cancel", args=[order.pk])).status_code == 200
        assert wait_for(lambda: reload(order).status == OrderStatus.CANCELLED)
        action = TradingAction.objects.get(kind=TradingActionKind.CANCEL_ORDER)
        assert (action.user, action.order_id) == ("staff", order.pk)

    def test_trading_sessions_one_active_per_mode_with_their_figures(
        self, staff_client, reader_client, gateway, aapl, wait_for
    ):
        url = reverse("api:tradingsession-list")
        assert_refused(reader_client.post(url, {"session_name": "x"}, format="json"), 403)
        response = staff_client.post(url, {"session_name": "Friday paper"}, format="json")
        assert response.status_code == 201, response.content
        session = response.json()
        assert (session["trading_mode"], session["is_active"]) == ("paper", True)
        assert D(session["starting_balance"]) == D("1000000.00")  # IB's net liquidation
        again = staff_client.post(url, {"session_name": "another"}, format="json")
        assert_refused(again, 400, "trading_mode")
        assert_refused(staff_client.post(url, {"session_name": ""}, format="json"), 400,
                       "session_name")  # fmt: skip

        position = bought(aapl, wait_for)  # buy 10 at 200, sell them at 210: +100 gross
        gateway.set_price("AAPL", 210)
        exit_order = order_place_manual(code=aapl, side="SELL", quantity=10, order_type="MKT")
        assert wait_for(lambda: reload(position).closed_at is not None)
        assert wait_for(lambda: not reload(exit_order).executions.filter(commission=None).exists())
        ended = staff_client.post(reverse("api:tradingsession-end", args=[session["id"]]))
        assert ended.status_code == 200, ended.content
        figures = ended.json()
        assert (figures["is_active"], figures["total_trades"], figures["winning_trades"]) == (
            False, 1, 1
        )  # fmt: skip
        # 100 gross less IB's commissions of 1.00 on the entry and 1.00 on the exit
        assert (D(figures["total_pnl"]), D(figures["total_commission"])) == (D("98.00"), 2)
        assert D(figures["win_rate"]) == 100 and D(figures["max_drawdown"]) == 0
        assert D(figures["ending_balance"]) == D("1000098.00")
        end_again = reverse("api:tradingsession-end", args=[session["id"]])
        assert_refused(staff_client.post(end_again), 400, "is_active")
        assert staff_client.post(url, {"session_name": "next"}, format="json").status_code == 201


@pytest.mark.django_db
def test_the_admin_buttons_ask_first_close_and_cancel_and_the_header_says_halted(
    admin_client, admin_user, gateway, aapl, wait_for
):
    position = bought(aapl, wait_for)
    page = admin_client.get(reverse("admin:orders_position_change", args=[position.pk]),
                            secure=True).content.decode()  # fmt: skip
    assert "Close at market" in page and "return confirm(" in page
    assert "Paper trading: these orders go to the IB paper account" in page  # the banner stays
    close = reverse("admin:orders_position_object_action", args=[position.pk, "close_position"])
    admin_client.post(close, secure=True)
    assert wait_for(lambda: reload(position).closed_at is not None)
    assert TradingAction.objects.get(kind="close_position").user == "admin"
    page = admin_client.get(reverse("admin:orders_position_change", args=[position.pk]),
                            secure=True).content.decode()  # fmt: skip
    assert "Close at market" not in page  # a closed position has no button

    resting = order_place_manual(code=aapl, side="BUY", quantity=1, order_type="LMT",
                                 price=D("100.00"), tif="GTC")  # fmt: skip
    page = admin_client.get(reverse("admin:orders_order_change", args=[resting.pk]),
                            secure=True).content.decode()  # fmt: skip
    assert "Cancel at IB" in page and "Ask IB to cancel this order?" in page
    admin_client.post(reverse("admin:orders_order_object_action", args=[resting.pk,
                                                                       "cancel_order"]),
                      secure=True)  # fmt: skip
    assert wait_for(lambda: reload(resting).status == OrderStatus.CANCELLED)

    assert "Trading is halted" not in admin_client.get("/admin/", secure=True).content.decode()
    dashboard = admin_client.get(reverse("dashboard"), secure=True).content.decode()
    assert 'id="kill-switch"' in dashboard and "return confirm(" in dashboard
    admin_client.post(reverse("dashboard-kill"), secure=True)
    page = admin_client.get("/admin/", secure=True).content.decode()
    assert "Trading is halted</strong> (kill switch by admin at" in page
    admin_client.post(reverse("dashboard-resume"), secure=True)
    assert "Trading is halted" not in admin_client.get("/admin/", secure=True).content.decode()


@pytest.mark.django_db
def test_the_dashboard_says_when_the_daily_loss_limit_is_passed(
    admin_client, admin_user, gateway, aapl, wait_for, settings
):
    settings.MAX_DAILY_LOSS_PCT = D("0.05")  # of 100,000: a loss of 50
    position = bought(aapl, wait_for)  # 10 at 200
    from orders.services import position_mark_price

    position_mark_price(conid=aapl.conid, price=D("196"))  # -40 unrealized
    page = admin_client.get(reverse("dashboard"), secure=True).content.decode()
    assert "Daily loss limit 0.05 % of the account" in page and "Passed" not in page
    position_mark_price(conid=aapl.conid, price=D("194"))  # -60: past it
    page = admin_client.get(reverse("dashboard"), secure=True).content.decode()
    assert "the limit is a loss of 50.00" in page
    assert "Passed: new entries are refused for the rest of the day" in page
    assert position.pk


@pytest.mark.django_db
def test_the_trading_command(gateway, aapl, wait_for, capsys):
    position = bought(aapl, wait_for)
    call_command("trading", "status")
    assert "trading is on" in capsys.readouterr().out
    call_command("trading", "kill", "--flatten", "--user", "ops")
    assert "Trading halted." in capsys.readouterr().out
    assert wait_for(lambda: reload(position).closed_at is not None)
    call_command("trading", "status")
    assert "HALTED by ops at" in capsys.readouterr().out
    with pytest.raises(CommandError, match="already flat"):
        call_command("trading", "close", "AAPL", "--user", "ops")
    with pytest.raises(CommandError, match="'NOPE' is not a code stored here"):
        call_command("trading", "close", "NOPE")
    with pytest.raises(CommandError, match="there is no order 999999"):
        call_command("trading", "cancel", "999999")
    call_command("trading", "resume", "--user", "ops")
    assert [a.user for a in TradingAction.objects.all()] == ["ops", "ops"]


@pytest.mark.django_db
def test_a_session_is_started_in_the_admin_once_per_mode(admin_client, admin_user):
    add = reverse("admin:orders_tradingsession_add")
    data = {"session_name": "Morning", "trading_mode": "paper", "starting_balance": "50000",
            "notes": ""}  # fmt: skip
    assert admin_client.post(add, data, secure=True).status_code == 302
    session = TradingSession.objects.get()
    assert (session.is_active, session.starting_balance) == (True, D("50000.00"))
    refused = admin_client.post(add, {**data, "session_name": "Again"}, secure=True)
    assert refused.status_code == 200
    assert (
        f"End session {session.pk} (Morning) first: one active session per trading mode."
        in refused.content.decode()
    )  # the service's words, as the API's
    trading_session_end(session=session)
    assert admin_client.post(add, {**data, "session_name": "Again"}, secure=True).status_code == 302
    assert Order.objects.count() == 0
