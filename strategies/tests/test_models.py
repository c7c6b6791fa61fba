import pytest
from django.db.models import ProtectedError

from marketdata.models import Code
from marketdata.tests.factories import CodeFactory
from strategies.models import Strategy, StrategyCode
from strategies.services import decision_record
from strategies.tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db


def test_deleting_a_strategy_removes_its_links_and_keeps_the_codes():
    codes = [CodeFactory(), CodeFactory()]
    strategy = StrategyFactory()
    strategy.codes.set(codes)
    other = StrategyFactory()
    other.codes.set(codes[:1])

    strategy.delete()

    assert not StrategyCode.objects.filter(strategy_id=strategy.pk).exists()
    assert Code.objects.filter(pk__in=[c.pk for c in codes]).count() == 2
    assert list(other.codes.all()) == codes[:1]


def test_a_strategy_with_decisions_is_kept_as_history():
    strategy = StrategyFactory()
    code = CodeFactory()
    decision_record(code=code, strategy=strategy, type="hold", current_price="10")
    with pytest.raises(ProtectedError):
        strategy.delete()
    with pytest.raises(ProtectedError):
        code.delete()
    assert Strategy.objects.filter(pk=strategy.pk).exists()


def test_workflow_is_optional():
    assert StrategyFactory(workflow=None).workflow_id is None
