import pytest

from marketdata.tests.factories import CodeFactory
from orders.services import position_mark_price
from strategies.tests.factories import StrategyFactory

from .factories import at, fill


@pytest.fixture
def two_weeks():
    """Week of 2025-03-10: AAPL bought 10 @ 100, sold @ 110 (+100 gross, 2 of fees: +98).
    Week of 2025-03-17: MSFT short 5 @ 200, covered @ 210 (-50, fees 2: -52); PEP bought
    4 @ 50 and still open, marked at 55; a manual KO trade beside them."""
    strategy = StrategyFactory(param={"account_size": "10000"})
    aapl, msft, pep, ko = (CodeFactory(symbol=s) for s in ("AAPL", "MSFT", "PEP", "KO"))
    fill(aapl, "BUY", "10", "100", at(10), strategy=strategy)
    fill(aapl, "SELL", "10", "110", at(12), strategy=strategy)
    fill(msft, "SELL", "5", "200", at(17), strategy=strategy)
    fill(msft, "BUY", "5", "210", at(18), strategy=strategy)
    fill(pep, "BUY", "4", "50", at(19), strategy=strategy)
    position_mark_price(conid=pep.conid, price="55")
    fill(ko, "BUY", "10", "60", at(11))
    fill(ko, "SELL", "10", "70", at(13))  # manual: +100 that is not the strategy's
    return strategy
