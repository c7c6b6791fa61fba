"""`manage.py backup` and `restore --confirm`: a round trip gives back the same orders, trades
and positions (rows and a checksum of every column), on PostgreSQL and on SQLite."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tradingsite.backup import ledger_fingerprint

ROOT = Path(__file__).resolve().parents[2]

LEDGER = """
from decimal import Decimal
from django.utils import timezone
from marketdata.tests.factories import CodeFactory
from orders.models import Order, Position, Trade
from orders.tests.factories import OrderFactory

def make_ledger():
    now = timezone.now()
    codes = [CodeFactory(symbol=s) for s in ("AAA", "BBB", "CCC")]
    for n, code in enumerate(codes):
        order = OrderFactory(instrument=code, quantity=Decimal(10 + n), price=Decimal("101.25"))
        Trade.objects.create(order=order, instrument=code, entry_price=Decimal("101.25"),
                             entry_quantity=Decimal(10 + n), entry_date=now, fees=Decimal("1"))
        Position.objects.create(instrument=code, quantity=Decimal(10 + n),
                                average_cost=Decimal("101.25"))

def change_ledger():
    Trade.objects.order_by("id").last().delete()
    Order.objects.filter(trades__isnull=True).delete()
    Position.objects.update(quantity=Decimal(1))
    OrderFactory(instrument=Position.objects.first().instrument)
"""
namespace = {}
exec(LEDGER, namespace)  # noqa: S102 - the same rows here and in the SQLite process


@pytest.mark.django_db(transaction=True)
def test_a_postgresql_round_trip_gives_back_the_same_ledger(tmp_path):
    namespace["make_ledger"]()
    before = ledger_fingerprint()
    assert [rows for rows, _ in before.values()] == [3, 3, 3]
    out = StringIO()
    call_command("backup", str(tmp_path), stdout=out)
    dumps = list(tmp_path.glob("*.dump"))
    assert len(dumps) == 1 and dumps[0].read_bytes().startswith(b"PGDMP")
    assert f"Backed up to {dumps[0]}" in out.getvalue()
    assert f"orders: 3 rows, sha256 {before['orders'][1]}" in out.getvalue()

    namespace["change_ledger"]()
    assert ledger_fingerprint() != before
    with pytest.raises(CommandError, match="add --confirm to do it"):
        call_command("restore", str(dumps[0]))
    assert ledger_fingerprint() != before  # nothing restored without --confirm

    out = StringIO()
    call_command("restore", str(dumps[0]), "--confirm", stdout=out)
    assert ledger_fingerprint() == before
    assert f"trades: 3 rows, sha256 {before['trades'][1]}" in out.getvalue()
    # The site goes on writing after a restore (sequences came back with the rows).
    namespace["change_ledger"]()


@pytest.mark.django_db
def test_restore_refuses_what_is_not_a_backup_of_this_kind_of_database(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CommandError, match="is not a backup: neither a pg_dump custom-format"):
        call_command("restore", str(text), "--confirm")
    with pytest.raises(CommandError, match="No backup file at"):
        call_command("restore", str(tmp_path / "missing.dump"), "--confirm")
    lite = tmp_path / "other.sqlite3"
    import sqlite3

    sqlite3.connect(lite).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(CommandError, match="is a sqlite backup, and the database .* is postgresql"):
        call_command("restore", str(lite), "--confirm")


SQLITE_ROUND_TRIP = (
    LEDGER
    + """
import json, sys
from django.core.management import call_command
from tradingsite.backup import ledger_fingerprint
call_command("migrate", verbosity=0)
make_ledger()
before = ledger_fingerprint()
call_command("backup", sys.argv[1], verbosity=0)
change_ledger()
changed = ledger_fingerprint()
from pathlib import Path
backup = next(Path(sys.argv[1]).glob("*.sqlite3"))
call_command("restore", str(backup), "--confirm")
print(json.dumps({"before": before, "changed": changed, "after": ledger_fingerprint(),
                  "head": backup.read_bytes()[:16].decode("latin-1")}))
"""
)


def test_an_sqlite_round_trip_gives_back_the_same_ledger(tmp_path):
    script = "import django, os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', " \
             "'tradingsite.settings')\ndjango.setup()\n" + SQLITE_ROUND_TRIP  # fmt: skip
    env = {**os.environ, "TESTING": "true",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite3'}"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "backups")], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["head"] == "SQLite format 3\x00"
    assert [rows for rows, _ in found["before"].values()] == [3, 3, 3]
    assert found["changed"] != found["before"]
    assert found["after"] == found["before"]
