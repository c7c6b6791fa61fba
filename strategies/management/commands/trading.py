"""``python manage.py trading kill|resume|close|cancel``: the trader's controls from a shell,
recorded with who and when like the admin's buttons and the API.

    manage.py trading kill [--flatten]   # cancel every working order, pause every strategy
    manage.py trading resume             # lift the kill switch
    manage.py trading close AAPL         # close the AAPL position at market
    manage.py trading cancel 42          # ask IB to cancel order 42
    manage.py trading status             # halted or not, today's loss against the limit
"""

import getpass

from django.core.management.base import BaseCommand, CommandError

from marketdata.models import Code
from orders.models import Order, Position
from orders.selectors import trading_status
from orders.services import order_cancel, position_close
from strategies.services import trading_kill, trading_resume
from tradingsite.broker import BrokerError
from tradingsite.exceptions import ApplicationError


class Command(BaseCommand):
    help = "The kill switch, its resume, closing a position and cancelling an order."

    def add_arguments(self, parser):
        parser.add_argument("what", choices=["kill", "resume", "close", "cancel", "status"])
        parser.add_argument("target", nargs="?", help="close: a symbol; cancel: an order id.")
        parser.add_argument(
            "--flatten", action="store_true", help="kill: close every open position too."
        )
        parser.add_argument(
            "--user", default=None, help="Who does it, for the record (default: your login)."
        )

    def handle(self, *args, what, target, flatten, user, **options):
        who = user or f"{getpass.getuser()} (manage.py)"
        try:
            if what == "kill":
                action = trading_kill(user=who, flatten=flatten)
                self.stdout.write(f"Trading halted. {action.detail}")
            elif what == "resume":
                self.stdout.write(trading_resume(user=who).detail)
            elif what == "close":
                exits = position_close(position=self._position(target), user=who)
                self.stdout.write(f"Exit order(s) sent: {', '.join(str(o) for o in exits)}")
            elif what == "cancel":
                self.stdout.write(str(order_cancel(order=self._order(target), user=who)))
            else:
                status = trading_status()
                halted = "trading is on"
                if status["halted"]:
                    at = status["halted_at"].strftime("%Y-%m-%d %H:%M")
                    halted = f"HALTED by {status['halted_by']} at {at} UTC"
                loss = status["daily_loss"]
                self.stdout.write(f"{halted}; {loss.detail if loss else 'no daily loss limit'}")
        except (ApplicationError, BrokerError) as refused:
            raise CommandError(str(refused)) from None

    def _position(self, symbol):
        code = Code.objects.filter(symbol__iexact=symbol or "").first()
        if code is None:
            raise CommandError(f"close: {symbol!r} is not a code stored here.")
        position = Position.objects.filter(instrument_id=code.conid).order_by("-id").first()
        if position is None:
            raise CommandError(f"close: there has never been a position in {code.symbol}.")
        return position

    def _order(self, order_id):
        if not (order_id or "").isdigit():
            raise CommandError(f"cancel: {order_id!r} is not an order id.")
        order = Order.objects.filter(pk=int(order_id)).first()
        if order is None:
            raise CommandError(f"cancel: there is no order {order_id}.")
        return order
