from django.core.management.base import BaseCommand, CommandError

from orders.services import orders_reconcile
from strategies.models import Strategy
from tradingsite.broker import client_role
from tradingsite.exceptions import ApplicationError
from workflows.models import ExecutionStatus
from workflows.services import execution_prepare, execution_run, execution_start


class Command(BaseCommand):
    help = "Run a strategy's workflow now: queued for the Celery worker, or here with --sync."

    def add_arguments(self, parser):
        parser.add_argument("strategy", help="strategy id or exact name")
        parser.add_argument("--sync", action="store_true", help="run in this process and wait")
        parser.add_argument("--dry-run", action="store_true", help="everything but the orders")

    def handle(self, *args, **options):
        previous = client_role("command")  # its own IB client id, beside the site's and workers'
        try:
            self._run(**options)
        finally:
            client_role(previous)  # as it was, where the command is called from code (tests)

    def _run(self, *, strategy, sync, dry_run, **options):
        found = Strategy.objects.filter(pk=int(strategy)) if strategy.isdecimal() else None
        if not found:
            found = Strategy.objects.filter(name=strategy)
        if found.count() != 1:
            raise CommandError(
                f"No strategy {strategy!r}."
                if not found
                else f"{found.count()} strategies are named {strategy!r}: give the id."
            )
        try:
            start = execution_prepare if sync else execution_start
            execution = start(strategy=found.get(), dry_run=dry_run)
        except ApplicationError as refused:
            raise CommandError(str(refused)) from None
        if not sync:
            self.stdout.write(
                f"Execution {execution.pk} queued (task {execution.task_id}); "
                "a Celery worker runs it."
            )
            return
        execution = execution_run(execution_id=execution.pk, dry_run=dry_run)
        results = execution.results
        for line in results.get("execution_logs", []):
            symbol = f"[{line['symbol']}] " if line.get("symbol") else ""
            self.stdout.write(f"{line['level']:5} {symbol}{line['message']}")
        self.stdout.write(
            f"Execution {execution.pk} {execution.status}: {results.get('symbols_processed', 0)} "
            f"codes, {results.get('decisions_made', 0)} decisions, "
            f"{results.get('orders_placed', 0)} orders"
            + (f" - {execution.error_message}" if execution.error_message else "")
        )
        if results.get("orders_placed"):
            # No worker listens to IB after this process ends: what filled meanwhile is
            # recorded now (the periodic reconcile catches what fills later).
            summary = orders_reconcile()
            self.stdout.write(
                f"Reconciled with IB: {summary['executions_applied']} fills recorded, "
                f"{summary['statuses_changed']} order statuses changed."
            )
        if execution.status != ExecutionStatus.COMPLETED:
            raise CommandError(f"Execution {execution.pk} ended {execution.status}.")
