from django.core.management.base import BaseCommand
from django.db import transaction

from marketdata.models import Code
from strategies.models import Strategy, StrategyType
from workflows.models import Workflow
from workflows.templates import TEMPLATES

DEMO_CODES = [("AAPL", 265598), ("MSFT", 272093), ("SPY", 756733)]
DEMO_STRATEGY = "Demo: two indicator on AAPL and MSFT"


class Command(BaseCommand):
    help = "Load the demo: instruments, the workflow templates and one strategy. Idempotent."

    @transaction.atomic
    def handle(self, *args, **options):
        codes = {}
        for symbol, conid in DEMO_CODES:
            codes[symbol], _ = Code.objects.get_or_create(
                conid=conid, defaults={"symbol": symbol, "exchange": "SMART"}
            )
        workflows = {}
        for type_, template in TEMPLATES.items():
            workflows[type_], _ = Workflow.objects.get_or_create(
                type=type_,
                name=template["name"],
                defaults={
                    "description": template["description"],
                    "steps": template["steps"],
                    "default_params": template["default_params"],
                },
            )
        strategy, created = Strategy.objects.get_or_create(
            name=DEMO_STRATEGY,
            defaults={
                "type": StrategyType.TWO_INDICATOR,
                "workflow": workflows["two_indicator"],
                "param": {},
            },
        )
        if created:
            strategy.codes.set([codes["AAPL"], codes["MSFT"]])
        self.stdout.write(
            f"Demo ready: {len(codes)} codes, {len(workflows)} workflow templates, "
            f"strategy {strategy.name!r} ({'created' if created else 'already there'})."
        )
