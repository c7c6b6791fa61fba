from django.core.management.base import BaseCommand
from django.db import transaction

from marketdata.models import Code
from strategies.models import Strategy, StrategyType
from workflows.models import Workflow
from workflows.services import strategy_create, workflow_create
from workflows.templates import TEMPLATES

DEMO_CODES = [("AAPL", 265598), ("MSFT", 272093), ("SPY", 756733)]
DEMO_STRATEGY = "Demo: two indicator on AAPL, MSFT and SPY"
DEMO_INTERVAL_MINUTES = 1  # the demo runs by itself soon after `make run`; pause it in the admin
# make run's loopback gateway serves AAPL's history from this folder (run.sh: --bars-dir): a
# rising walk ending 2025-03-14 on which the offline team buys, whatever the day, so the demo's
# first run places a bracket. MSFT and SPY follow the gateway's simulated market of the day.
DEMO_BARS_DIR = "tradingsite/demo_bars"


class Command(BaseCommand):
    help = "Load the demo: instruments, the workflow templates and one strategy. Idempotent."

    @transaction.atomic
    def handle(self, *args, **options):
        codes = {}
        for symbol, conid in DEMO_CODES:
            codes[symbol], _ = Code.objects.get_or_create(
                conid=conid, defaults={"symbol": symbol, "exchange": "SMART"}
            )
        # The templates come with the migrations (workflows 0003); a deleted one is made again.
        workflows = {}
        for type_, template in TEMPLATES.items():
            workflows[type_] = Workflow.objects.filter(
                type=type_, name=template["name"]
            ).first() or workflow_create(
                name=template["name"],
                type=type_,
                steps=template["steps"],
                default_params=template["default_params"],
                description=template["description"],
                note="Built-in template",
            )
        strategy = Strategy.objects.filter(name=DEMO_STRATEGY).first()
        created = strategy is None
        if created:
            strategy = strategy_create(
                name=DEMO_STRATEGY,
                type=StrategyType.TWO_INDICATOR,
                workflow=workflows["two_indicator"],
                codes=list(codes.values()),
                schedule_interval_minutes=DEMO_INTERVAL_MINUTES,
            )
        self.stdout.write(
            f"Demo ready: {len(codes)} codes, {len(workflows)} workflow templates, "
            f"strategy {strategy.name!r} ({'created' if created else 'already there'})."
        )
