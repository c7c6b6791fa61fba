"""Factories of the rows the apps' own tests/factories.py do not make yet.

Rows a service computes (a decision's ratios, a fill's trade and position) are made by that
service, so tests read what the product would store.
"""

import uuid
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from marketdata.models import MarketData
from marketdata.tests.factories import CodeFactory
from orders.services import order_fill_record
from orders.tests.factories import OrderFactory
from strategies.services import decision_record
from strategies.tests.factories import StrategyFactory
from workflows.models import AgentConversation, WorkflowExecution, WorkflowMetrics
from workflows.tests.factories import WorkflowFactory


def make_decision(*, code=None, strategy=None, type="buy", current_price="100",
                  target_price="110", stop_loss="95", **kwargs):  # fmt: skip
    return decision_record(
        code=code or CodeFactory(),
        strategy=strategy or StrategyFactory(),
        type=type,
        current_price=current_price,
        target_price=target_price,
        stop_loss=stop_loss,
        **kwargs,
    )


def make_fill(*, quantity="10", price="100", **order_fields):
    """An order filled in full at ``price``: it opens a trade and a position."""
    order = OrderFactory(quantity=Decimal(quantity), price=Decimal(price), **order_fields)
    return order_fill_record(order=order, quantity=quantity, price=price)


class MarketDataFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MarketData

    conid = factory.Sequence(lambda n: 900000 + n)
    period = "1 Y"
    bar = "1 day"
    data = factory.LazyFunction(lambda: {"bars": {"close": [1.0, 2.0]}, "indicators": {}})


class ExecutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkflowExecution

    strategy = factory.SubFactory(StrategyFactory)
    workflow = factory.SubFactory(WorkflowFactory)
    task_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    status = "completed"
    started_at = factory.LazyFunction(timezone.now)
    progress = factory.LazyFunction(lambda: {"step": 3, "of": 8})


class AgentMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentConversation

    workflow_execution = factory.SubFactory(ExecutionFactory)
    agent_name = "TechnicalAnalyst"
    message_type = "response"
    message_content = factory.Sequence(lambda n: f"message {n}")
    tokens_used = 100


class WorkflowMetricsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkflowMetrics

    workflow = factory.SubFactory(WorkflowFactory)
    date = factory.Sequence(lambda n: timezone.now().date() - timedelta(days=n))
    metrics = factory.LazyFunction(lambda: {"total_executions": 2, "success_rate": 0.5})
