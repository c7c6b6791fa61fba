from django.core.management.base import BaseCommand, CommandError

from marketdata.bar_import import bars_import
from marketdata.models import Code, Timeframe
from marketdata.services import code_create, symbol_clean
from tradingsite.exceptions import ApplicationError


class Command(BaseCommand):
    help = (
        "Import OHLCV bars from CSV or Parquet files into the bar store (ohlcv_bars). Every "
        "row is checked first; a bad row refuses the import, naming its line. Repeating an "
        "import adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE", help=".csv or .parquet files")
        parser.add_argument("--symbol", required=True, help="the code the bars are of")
        parser.add_argument(
            "--timeframe", required=True, choices=Timeframe.values, help="the bars' timeframe"
        )
        parser.add_argument(
            "--tz", default="UTC",
            help="the zone of times written without one (IANA name; default UTC)",
        )  # fmt: skip
        parser.add_argument(
            "--conid", type=int,
            help="IB contract id: picks the code among several of the symbol, or stores it",
        )  # fmt: skip

    def handle(self, *args, files, symbol, timeframe, tz, conid, **options):
        try:
            code = self._code(symbol, conid)
            report = bars_import(paths=files, code=code, timeframe=timeframe, tz=tz)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"{code.symbol} {timeframe}: {report.rows} rows read from {report.files} "
            f"file{'s' if report.files != 1 else ''}, {report.created} new bars stored "
            f"({report.rows - report.created} were stored already)"
        )

    def _code(self, symbol, conid):
        symbol = symbol_clean(symbol)
        if conid is not None:
            existing = Code.objects.filter(conid=conid).first()
            return existing or code_create(symbol=symbol, conid=conid)
        codes = list(Code.objects.filter(symbol=symbol)[:2])
        if not codes:
            raise CommandError(
                f"No code {symbol} is stored: add it in the admin, or give its --conid."
            )
        if len(codes) > 1:
            raise CommandError(f"Several codes are {symbol}: say which with --conid.")
        return codes[0]
