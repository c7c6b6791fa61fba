from django.core.management.base import BaseCommand, CommandError

from strategies.models import Strategy
from tradingsite.exceptions import ApplicationError
from workflows.services import backtest_execute, backtest_settings


class Command(BaseCommand):
    help = (
        "Backtest a strategy's own workflow over the bar store, bar by bar, and store the "
        "results (strategy_probe_results, strategy_probe_trades)."
    )

    def add_arguments(self, parser):
        parser.add_argument("strategy", help="strategy id or exact name")
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD")
        parser.add_argument("--commission", choices=["ib_fixed", "none"], default="ib_fixed")
        parser.add_argument("--slippage-bps", default="0", help="basis points against market fills")
        parser.add_argument("--allow-short", action="store_true", help="a sell may open a short")
        parser.add_argument(
            "--no-brackets",
            dest="brackets",
            action="store_false",
            help="place each entry alone (no take-profit and stop): the workflow's exits close",
        )
        parser.add_argument(
            "--replay",
            metavar="RUN_ID",
            help="the agents get the replies recorded in that backtest run, no model is asked",
        )

    def handle(self, *args, strategy, start, end, commission, slippage_bps, allow_short, brackets,
               replay, **options):  # fmt: skip
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
            settings = backtest_settings(
                start=start, end=end, commission=commission, slippage_bps=slippage_bps,
                allow_short=allow_short, brackets=brackets, replay=replay,
            )  # fmt: skip
            outcome = backtest_execute(strategy=found.get(), settings=settings)
        except ApplicationError as refused:
            raise CommandError(str(refused)) from None
        self.stdout.write(f"run {outcome.run_id}: {outcome.bars} bars, final equity "
                          f"{outcome.final_equity:.2f}")  # fmt: skip
        for result in outcome.results:
            self.stdout.write(
                f"  {result.symbol}: {result.total_trades} trades, P&L {result.total_pnl:.2f} "
                f"({result.metrics['return_pct']:.2f} %), win rate {_or(result.win_rate)} %, "
                f"profit factor {_or(result.profit_factor)}, Sharpe {_or(result.sharpe_ratio)}, "
                f"max drawdown {_or(result.max_drawdown)} %"
            )
        for symbol, reason in outcome.failures.items():
            self.stderr.write(f"  {symbol} failed: {reason}")


def _or(value):
    return "-" if value is None else f"{value:.2f}"
