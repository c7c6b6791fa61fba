"""Writes for instruments and the market-data cache."""

import logging
import re
import threading
from collections import OrderedDict
from contextlib import contextmanager, suppress
from datetime import timedelta

import redis
from django.conf import settings
from django.utils import timezone

from tradingsite.broker import BrokerError, BrokerUnavailable, get_broker
from tradingsite.broker.vocabulary import bar_error, period_error
from tradingsite.exceptions import ApplicationError, delete_or_refuse

from .bar_store import bars_check, bars_of_period, timeframe_of
from .documents import bars_document
from .models import Code, MarketData, contract_of

logger = logging.getLogger(__name__)


def code_resolve(*, symbol, exchange="SMART", currency="USD", sec_type="STK", broker=None,
                 refresh=True):  # fmt: skip
    """Find ``symbol`` at the broker and store it in ``code``; the same conid is stored once.

    A conid stored already is refreshed from IB's answer, or with ``refresh=False`` (adding a
    code) refused, naming the code that has it."""
    symbol = symbol_clean(symbol)
    broker = broker or get_broker()
    try:
        info = broker.resolve(
            symbol=symbol, exchange=exchange, currency=currency, sec_type=sec_type
        )
    except BrokerUnavailable:
        raise
    except BrokerError as exc:
        raise ApplicationError(
            f"{symbol} could not be resolved.", extra={"symbol": str(exc)}
        ) from exc
    if not refresh and Code.objects.filter(conid=info.conid).exists():
        raise _code_conid_taken(info.conid, field="symbol")
    code, _ = Code.objects.update_or_create(
        conid=info.conid,
        defaults={
            "symbol": info.symbol,
            "exchange": exchange,
            "currency": info.currency,
            "sec_type": info.sec_type,
        },
    )
    return code


def price_now(*, code, broker=None):
    """IB's price of ``code`` now, from a market data snapshot (a ``PriceReport``: price,
    time, and whether IB's data was delayed). A price IB cannot give is refused, naming the
    symbol; an unreachable gateway is ``BrokerUnavailable``."""
    broker = broker or get_broker()
    try:
        return broker.prices(contracts=[contract_of(code)])[code.conid]
    except BrokerUnavailable:
        raise
    except BrokerError as exc:
        raise ApplicationError(
            f"No live price of {code.symbol} could be had.", extra={"price": str(exc)}
        ) from exc


def _cache_cutoff(now=None):
    return (now or timezone.now()) - timedelta(seconds=settings.MARKET_DATA_CACHE_SECONDS)


def _cached(*, code, period, bar, now):
    cached = (
        MarketData.objects.filter(
            conid=code.conid, period=period, bar=bar, created_at__gte=_cache_cutoff(now)
        )
        .order_by("-created_at")
        .defer("data")
        .first()
    )
    if cached is None:
        return None
    data = _document_of(cached)
    if data is None:  # purged since the row was found
        return None
    cached.data = data
    cached.served_from_cache = True
    return cached


# The documents of the cache rows this process read last: a row is written once and never
# changed, and a warm run reads two per code, ten kilobytes of jsonb each, which was half of
# PostgreSQL's CPU per run (the database every worker shares) and its JSON decoding in the
# worker. Keyed by (id, created_at): an id is never given twice, and a row is purged as a whole.
DOCUMENTS_KEPT = 256
_documents = OrderedDict()
_documents_lock = threading.Lock()


def _document_of(row):
    key = (row.pk, row.created_at)
    with _documents_lock:
        if key in _documents:
            _documents.move_to_end(key)
            return _documents[key]
    data = MarketData.objects.filter(pk=row.pk).values_list("data", flat=True).first()
    if data is not None:
        with _documents_lock:
            _documents[key] = data
            while len(_documents) > DOCUMENTS_KEPT:
                _documents.popitem(last=False)
    return data


_local_flights = {}
_local_flights_lock = threading.Lock()


@contextmanager
def _single_flight(key):
    """Hold ``key`` while asking IB, so that runs that miss the cache for the same bars at
    once ask IB once: the others wait here, then find the bars in the cache.

    With Redis, a lock every process on every host sees (``redis-py``'s Lock: an expiring key
    only its holder deletes); its expiry covers one request, and is pushed back by each wait
    for IB's pacing (``extend``, yielded). A holder that died frees it at the expiry. Without
    Redis, a lock of this process."""
    if settings.REDIS_URL:
        server = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3)
        lock = server.lock(
            f"tradingsite:bars-flight:{key}",
            timeout=settings.IBKR_REQUEST_TIMEOUT + 30,
            blocking_timeout=BARS_FLIGHT_WAIT_SECONDS,
            thread_local=False,
        )
        try:
            held = lock.acquire(blocking=False)
            if not held:
                logger.info("waiting for another process's IB request of the bars %s", key)
                held = lock.acquire()
        except redis.RedisError:
            held = False  # no Redis, no sharing: this run asks IB itself (still paced)

        def extend(seconds):
            if held:
                with suppress(redis.RedisError):
                    lock.extend(seconds + 5)

        try:
            yield extend
        finally:
            if held:
                with suppress(redis.RedisError):
                    lock.release()
        return
    with _local_flights_lock:
        lock = _local_flights.setdefault(key, threading.Lock())
    if not lock.acquire(blocking=False):
        logger.info("waiting for another thread's IB request of the bars %s", key)
        lock.acquire()
    try:
        yield lambda seconds: None
    finally:
        lock.release()


# A run waits at most this long for another process's request of the same bars (IB's pacing
# may hold that one back up to ten minutes), then asks IB itself.
BARS_FLIGHT_WAIT_SECONDS = 660


def market_data_get(*, code, period, bar, broker=None, now=None, on_wait=None):
    """Bars and indicators for (code, period, bar): from the cache while younger than an hour.

    The returned row has ``served_from_cache`` set, so callers can log a hit or a miss. On a
    miss, one process at a time asks IB for the same bars (``_single_flight``); the others
    find them in the cache once it is done (``fetched_meanwhile`` set). A bar size the bar
    store keeps is served from the store, IB asked only for the bars it lacks (the gap after
    its latest bar, the holes; ``bars_of_period``); any other is asked of IB whole. A request
    IB's pacing holds back tells ``on_wait(seconds)`` before it waits.
    """
    for field, problem in (("period", period_error(period)), ("bar", bar_error(bar))):
        if problem:
            raise ApplicationError(f"Bad {field} for market data.", extra={field: problem})
    cached = _cached(code=code, period=period, bar=bar, now=now)
    if cached is not None:
        return cached
    with _single_flight(f"{code.conid}:{period}:{bar}") as extend:
        cached = _cached(code=code, period=period, bar=bar, now=now)  # fetched meanwhile?
        if cached is not None:
            cached.fetched_meanwhile = True
            return cached

        def waiting(seconds):
            extend(seconds + settings.IBKR_REQUEST_TIMEOUT)
            if on_wait is not None:
                on_wait(seconds)

        timeframe = timeframe_of(bar)
        if timeframe is not None:  # the store's bar sizes: IB is asked only for what it lacks
            bars = bars_of_period(
                code=code, timeframe=timeframe, period=period, broker=broker, now=now,
                on_wait=waiting,
            )  # fmt: skip
        else:
            broker = broker or get_broker()
            bars = broker.historical_bars(
                contract=contract_of(code), period=period, bar=bar, on_wait=waiting
            )
            if not bars:
                raise ApplicationError(
                    f"IB returned no bars for {code.symbol}.",
                    extra={"period": f"{period} / {bar}"},
                )
            bars_check(symbol=code.symbol, bars=bars)
        row = MarketData.objects.create(
            conid=code.conid, period=period, bar=bar, data=bars_document(bars)
        )
    row.served_from_cache = False
    return row


def market_data_purge(*, now=None):
    """Delete cached rows older than the cache lifetime; returns how many went."""
    deleted, _ = MarketData.objects.filter(created_at__lt=_cache_cutoff(now)).delete()
    return deleted


# --- Instruments entered by hand ---------------------------------------------------------------

CODE_EDITABLE = frozenset(
    {"symbol", "conid", "exchange", "currency", "sec_type", "name", "is_active"}
)


def _code_conid_taken(conid, *, field="conid"):
    existing = Code.objects.filter(conid=conid).first()
    named = f"code #{existing.pk}, {existing}" if existing else "another code"
    return ApplicationError(
        f"An instrument with conid {conid} is already stored.",
        extra={field: f"conid {conid} is already stored as {named}."},
    )


def code_conid_check(*, conid):
    """IB's contract ids are positive; the API and the admin both refuse any other."""
    if conid is None or conid < 1:
        raise ApplicationError(
            "The conid is not an IB contract id.",
            extra={"conid": "Ensure this value is greater than or equal to 1."},
        )


SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9 .\-]{0,31}")


def symbol_clean(symbol):
    """``symbol`` as stored: trimmed, upper-case, and made of what IB's symbols are made of
    (letters, digits, spaces, dots and dashes, e.g. "BRK B", "BF.B"). Nothing else gets in,
    since a symbol also names files (an execution's charts)."""
    symbol = (symbol or "").strip().upper()
    if not symbol:
        raise ApplicationError("A symbol is required.", extra={"symbol": "This field is required."})
    if not SYMBOL.fullmatch(symbol):
        raise ApplicationError(
            f"{symbol[:40]!r} is not a symbol.",
            extra={"symbol": "Use at most 32 letters, digits, spaces, dots and dashes, starting "
                             "with a letter or a digit."},
        )  # fmt: skip
    return symbol


def code_create_check(*, symbol, conid):
    """What ``code_create`` refuses before it writes (a symbol that is not one, a conid IB
    would never give), so that a form can show it at its field before anything is saved."""
    symbol_clean(symbol)
    code_conid_check(conid=conid)


def code_create(
    *, symbol, conid, exchange="SMART", currency="USD", sec_type="STK", name="", is_active=True
):
    """Store an instrument whose IB contract id is known already (no broker call)."""
    from django.db import IntegrityError, transaction

    code_create_check(symbol=symbol, conid=conid)
    symbol = symbol_clean(symbol)
    try:
        with transaction.atomic():
            return Code.objects.create(
                symbol=symbol, conid=conid, exchange=exchange, currency=currency,
                sec_type=sec_type, name=name, is_active=is_active,
            )  # fmt: skip
    except IntegrityError:
        raise _code_conid_taken(conid) from None


def code_update(*, code, **fields):
    """Change an instrument. Its conid is fixed once orders, trades or positions name it:
    they join ``code`` on conid, so a new conid would orphan them."""
    from django.db import IntegrityError, transaction

    unknown = fields.keys() - CODE_EDITABLE
    if unknown:
        raise ApplicationError(
            "Unknown code fields.", extra={name: "Not an editable field." for name in unknown}
        )
    if "symbol" in fields:
        fields["symbol"] = symbol_clean(fields["symbol"])
    if "conid" in fields and fields["conid"] != code.conid:
        code_conid_check(conid=fields["conid"])
        if code.orders.exists() or code.trades.exists() or code.positions.exists():
            raise ApplicationError(
                f"{code.symbol}'s conid is used by orders, trades or positions.",
                extra={"conid": "Cannot change once orders, trades or positions use it."},
            )
    for name, value in fields.items():
        setattr(code, name, value)
    try:
        with transaction.atomic():
            code.save()
    except IntegrityError:
        raise _code_conid_taken(code.conid) from None
    return code


def code_delete(*, code):
    """Delete an instrument; one that decisions, orders, trades or positions name is kept."""
    delete_or_refuse(
        code,
        message=f"{code.symbol} has decisions, orders, trades or positions and is kept as history.",
        extra={"id": "Referenced by decisions, orders, trades or positions."},
    )
