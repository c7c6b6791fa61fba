"""Backtests of a strategy's own workflow over the bar store, bar by bar.

At the close of each bar of the strategy's first timeframe (``bar_1``) in the period, every
code goes through the workflow's own steps (the same registry, risk gate and sizing; the
agents with whatever model is configured, the offline one by default). What the steps reach
outside is the backtest's: bars from the store up to that close and never after it (weekly
and monthly bars are built from the daily ones when the store has none, the current one
partial, as IB shows it), IB's "price now" is that close, decisions stay in memory, and
orders go to a simulated book. There an order placed at one close fills on the next bar:
a market order at its open, a limit or stop order when the bar's range reaches its price
(at the open when the bar opens past it); a DAY order not filled on that bar is cancelled.
Commissions are IB's fixed rate (USD 0.005 a share, at least 1.00, at most 1 % of the value)
or none; ``slippage_bps`` moves market and stop fills against the order. Long only by
default: a sell closes the long position and opens no short.

Results go to seed 004's ``strategy_probe_results`` (one row per code) and
``strategy_probe_trades``.
"""

import contextlib
import math
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.db import transaction
from django.utils import timezone

from marketdata.documents import document_of_columns
from marketdata.models import OhlcvBar, Timeframe
from strategies.services import decision_build
from tradingsite.broker import AccountSummary, PriceReport
from tradingsite.exceptions import ApplicationError

from .engine.params import fill_placeholders
from .engine.runner import SymbolRun
from .engine.steps import REGISTRY
from .engine.validation import params_errors
from .models import StrategyProbeConversation, StrategyProbeResult, StrategyProbeTrade
from .templates import strategy_steps

ZERO = Decimal(0)
EXIT_REASONS = {"take_profit": "take profit", "stop_loss": "stop loss"}
CENT = Decimal("0.01")
TRADING_DAYS = 252
# IB's bar sizes the store keeps as they are; the others are built from daily bars.
STORED = {"1 min": "1Min", "5 mins": "5Min", "15 mins": "15Min", "30 mins": "30Min",
          "1 hour": "1Hour", "1 day": "1Day", "1 week": "1Week"}  # fmt: skip
BUILT_FROM_DAILY = {"1 week": "W", "1 month": "M"}
DURATION = re.compile(r"^(\d+) ([SDWMY])$")


class LookAhead(Exception):
    """A step asked for bars after the backtest's present."""


@dataclass(frozen=True)
class BacktestSettings:
    start: datetime
    end: datetime
    commission: str = "ib_fixed"  # or "none"
    slippage_bps: Decimal = ZERO
    allow_short: bool = False
    cash: Decimal | None = None  # default: the strategy's account_size
    brackets: bool = True  # the book works each entry's take-profit and stop, as IB does
    replay: str | None = None  # a run id: its agents' recorded replies answer, not a model


# --- bars -------------------------------------------------------------------------------------


class Series:
    """One code's bars of one bar size, oldest first, as numpy columns."""

    def __init__(self, times, open_, high, low, close, volume):
        self.times = np.asarray(times, dtype="datetime64[us]")
        self.open, self.high, self.low, self.close, self.volume = (
            np.asarray(c, dtype=float) for c in (open_, high, low, close, volume)
        )
        self.iso = [f"{t.isoformat()}+00:00" for t in self.times.astype(datetime)]

    def __len__(self):
        return len(self.times)

    def upto(self, moment):
        """How many bars start at or before ``moment`` (numpy datetime64)."""
        return int(np.searchsorted(self.times, moment, side="right"))

    def document(self, stop, period):
        """The bars-and-indicators document of the bars of ``period`` ending at index
        ``stop`` (exclusive), as ``market_data_get`` would give it then."""
        start = _window_start(self, stop, period)
        return document_of_columns(
            times=self.iso[start:stop],
            open=self.open[start:stop], high=self.high[start:stop], low=self.low[start:stop],
            close=self.close[start:stop], volume=self.volume[start:stop], lazy=True,
        )  # fmt: skip


def _window_start(series, stop, period):
    match = DURATION.match(period or "")
    if not match or stop == 0:
        return 0
    count, unit = int(match[1]), match[2]
    if unit == "D":  # sessions, as IB counts them for daily bars
        return max(0, stop - count)
    span = {"S": timedelta(seconds=count), "W": timedelta(weeks=count),
            "M": timedelta(days=30 * count), "Y": timedelta(days=365 * count)}[unit]  # fmt: skip
    first = series.times[stop - 1] - np.timedelta64(int(span.total_seconds()), "s")
    return int(np.searchsorted(series.times[:stop], first, side="right"))


def _load(code, timeframe, until):
    rows = list(
        OhlcvBar.objects.filter(ticker=code, timeframe=timeframe, timestamp__lte=until)
        .order_by("timestamp")
        .values_list("timestamp", "open", "high", "low", "close", "volume")
    )
    if not rows:
        return None
    columns = list(zip(*rows, strict=True))
    times = [t.astimezone(UTC).replace(tzinfo=None) for t in columns[0]]
    return Series(times, *columns[1:])


def _built(daily, rule):
    """Weekly ("W") or monthly ("M") bars of daily ones, each dated by its first day."""
    days = daily.times.astype("datetime64[D]")
    if rule == "W":  # ISO weeks: Monday
        keys = (days - ((days.astype(np.int64) - 4) % 7)).astype("datetime64[D]")
    else:
        keys = days.astype("datetime64[M]").astype("datetime64[D]")
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    ends = np.concatenate([starts[1:], [len(days)]])
    return Series(
        daily.times[starts], daily.open[starts],
        np.maximum.reduceat(daily.high, starts), np.minimum.reduceat(daily.low, starts),
        daily.close[ends - 1], np.add.reduceat(daily.volume, starts),
    ), ends  # fmt: skip


class Bars:
    """Every series a run asks for, loaded once; ``document`` cuts each at the present."""

    def __init__(self, codes, until):
        self.codes = codes
        self.until = until
        self._series = {}

    def series(self, code, bar):
        key = (code.pk, bar)
        if key not in self._series:
            self._series[key] = self._make(code, bar)
        return self._series[key]

    def _make(self, code, bar):
        timeframe = STORED.get(bar)
        stored = _load(code, timeframe, self.until) if timeframe else None
        if stored is not None:
            return stored, None
        if bar in BUILT_FROM_DAILY:
            daily = _load(code, Timeframe.DAY_1, self.until)
            if daily is not None:
                return _built(daily, BUILT_FROM_DAILY[bar])[0], daily
        raise ApplicationError(
            f"The bar store has no {bar} bars of {code.symbol}.",
            extra={"bar": f"sync or import {code.symbol}'s {bar} bars first"},
        )

    def document(self, code, period, bar, now):
        series, daily = self.series(code, bar)
        if daily is None:
            return series.document(series.upto(now), period)
        # A built bar is shown as it stood at ``now``: from the daily bars up to then.
        built, _ = _built(_cut(daily, daily.upto(now)), BUILT_FROM_DAILY[bar])
        return built.document(len(built), period)


def _cut(series, stop):
    cut = Series.__new__(Series)
    cut.times, cut.iso = series.times[:stop], series.iso[:stop]
    cut.open, cut.high, cut.low, cut.close, cut.volume = (
        c[:stop] for c in (series.open, series.high, series.low, series.close, series.volume)
    )
    return cut


# --- the simulated book -------------------------------------------------------------------------


class Children(list):
    """A simulated entry's bracket children (the live order's ``children`` manager's ``all``)."""

    def all(self):
        return list(self)


@dataclass(eq=False)  # an order is itself (its children point back at it)
class SimOrder:
    pk: int
    code: object
    side: str
    quantity: int
    order_type: str
    price: Decimal | None
    tif: str
    placed_at: datetime
    decision: object = None
    ibkr_order_id: None = None
    children: Children = field(default_factory=Children)
    role: str = "entry"  # entry, take_profit, stop_loss (a bracket's children), exit
    parent: object = None
    after: datetime | None = None  # a child works on the bars after its entry's fill


@dataclass
class Lot:
    side: str  # long / short
    quantity: int
    price: Decimal
    time: datetime
    commission: Decimal


@dataclass
class ClosedTrade:
    code_pk: int
    symbol: str
    side: str
    entry_time: datetime
    exit_time: datetime | None
    entry_price: Decimal
    exit_price: Decimal | None
    quantity: int
    pnl: Decimal
    exit_reason: str
    commission: Decimal


class Book:
    """Cash, positions (FIFO lots per code), working orders and fills of a backtest."""

    def __init__(self, *, cash, settings, strategy):
        self.cash = Decimal(cash)
        self.settings = settings
        self.strategy = strategy
        self.lots = {}  # code pk -> [Lot]
        self.orders = []  # working
        self.trades = []  # ClosedTrade
        self.placed_on = {}  # date -> orders placed
        self._ids = 0
        self.now = None
        self.marks = {}  # code pk -> last close
        self.symbols = {}  # code pk -> symbol

    # The risk gate's questions (strategies.risk.LiveBook answers them for the live site).
    def held(self, code):
        return Decimal(self.position(code))

    def entries(self, code, *, strategy):
        return (1 if self.lots.get(code.pk) else 0) + sum(
            1 for o in self.orders if o.code.pk == code.pk and o.role == "entry"
        )

    def trading_halt(self):
        return None  # the site's kill switch halts live trading, not a replay

    def daily_loss_status(self, *, percent, account_size, now):
        return None  # off in a backtest

    def open_positions(self):
        return sum(1 for lots in self.lots.values() if lots)

    def working_order(self, conid, *, strategy):  # a bracket's children work for the position
        return next((o for o in self.orders if o.code.conid == conid and o.parent is None), None)

    def orders_today(self, now, *, strategy):
        return self.placed_on.get(self.now.date(), 0)

    def position(self, code):
        return sum((lot.quantity if lot.side == "long" else -lot.quantity)
                   for lot in self.lots.get(code.pk, []))  # fmt: skip

    def equity(self):
        value = self.cash
        for pk, lots in self.lots.items():
            mark = self.marks.get(pk)
            for lot in lots:
                sign = 1 if lot.side == "long" else -1
                value += sign * lot.quantity * mark
        return value

    def place(self, *, code, side, quantity, order_type, price, tif, decision=None,
              role="entry", target_price=None, stop_loss=None):  # fmt: skip
        """Place an order; an entry with ``target_price`` and ``stop_loss`` is a bracket:
        its take-profit (a limit at the target) and stop (a stop at the stop loss), one
        cancelling the other, work from the bar after the entry fills, for what it filled."""
        self._ids += 1
        order = SimOrder(self._ids, code, side, int(quantity), order_type, price, tif,
                         self.now, decision, role=role)  # fmt: skip
        closing = "SELL" if side == "BUY" else "BUY"
        for child_role, child_type, level in (
            ("take_profit", "LMT", target_price), ("stop_loss", "STP", stop_loss)
        ):  # fmt: skip
            if level is not None:
                self._ids += 1
                order.children.append(SimOrder(
                    self._ids, code, closing, int(quantity), child_type, Decimal(level), "GTC",
                    self.now, decision, role=child_role, parent=order,
                ))  # fmt: skip
        self.orders.append(order)
        day = self.now.date()
        self.placed_on[day] = self.placed_on.get(day, 0) + 1
        return order

    def commission(self, quantity, price):
        if self.settings.commission == "none":
            return ZERO
        fee = max(Decimal("0.005") * quantity, Decimal("1.00"))
        return min(fee, Decimal("0.01") * quantity * price).quantize(CENT, ROUND_HALF_UP)

    def fill_working(self, code, bar_open, bar_high, bar_low, when):
        """Fill or expire ``code``'s working orders on the bar starting at ``when``.

        A bar says nothing of the order of its high and low: when it reaches both a
        bracket's stop and its take-profit, the stop is taken to fill first (the worse
        outcome), and the take-profit is cancelled with it."""
        working = [o for o in self.orders if o.code.pk == code.pk]
        working.sort(key=lambda o: o.role != "stop_loss")  # stable: else as placed
        for order in working:
            if order not in self.orders or (order.after is not None and when <= order.after):
                continue  # cancelled meanwhile (one cancels the other), or placed on this bar
            price = self._fill_price(order, bar_open, bar_high, bar_low)
            if price is not None:
                self.orders.remove(order)
                self._fill(order, price, when)
            elif order.tif == "DAY":
                self.orders.remove(order)
        if self.position(code) == 0:  # flat: no bracket child is left to protect anything
            self.orders = [o for o in self.orders if o.code.pk != code.pk or o.parent is None]

    def _fill_price(self, order, bar_open, bar_high, bar_low):
        slip = self.settings.slippage_bps / Decimal(10000)
        buy = order.side == "BUY"
        adverse = (1 + slip) if buy else (1 - slip)
        if order.order_type == "MKT":
            return bar_open * adverse
        limit = order.price
        if order.order_type == "LMT":
            if buy:
                return bar_open if bar_open <= limit else (limit if bar_low <= limit else None)
            return bar_open if bar_open >= limit else (limit if bar_high >= limit else None)
        # STP
        if buy:
            hit = bar_open if bar_open >= limit else (limit if bar_high >= limit else None)
        else:
            hit = bar_open if bar_open <= limit else (limit if bar_low <= limit else None)
        return None if hit is None else hit * adverse

    def _fill(self, order, price, when):
        code, lots = order.code, self.lots.setdefault(order.code.pk, [])
        quantity = order.quantity
        buy = order.side == "BUY"
        held = self.position(code)
        if not buy and not self.settings.allow_short:
            quantity = held  # long only: a sell closes the long position, nothing more
            if order.parent is not None:
                quantity = min(order.quantity, held)
            if quantity <= 0:
                return
        if order.parent is not None:  # one cancels the other
            self.orders = [o for o in self.orders if o.parent is not order.parent]
        commission = self.commission(quantity, price)
        self.cash -= commission
        self.cash += (-1 if buy else 1) * quantity * price
        closing_side = "short" if buy else "long"
        remaining = quantity
        while remaining and lots and lots[0].side == closing_side:
            lot = lots[0]
            taken = min(lot.quantity, remaining)
            sign = 1 if lot.side == "long" else -1
            entry_fee = lot.commission * taken / lot.quantity
            exit_fee = commission * taken / quantity
            self.trades.append(ClosedTrade(
                code_pk=code.pk, symbol=code.symbol, side=lot.side, entry_time=lot.time,
                exit_time=when,
                entry_price=lot.price, exit_price=price, quantity=taken,
                pnl=sign * (price - lot.price) * taken - entry_fee - exit_fee,
                exit_reason=EXIT_REASONS.get(order.role, "signal"),
                commission=entry_fee + exit_fee,
            ))  # fmt: skip
            lot.commission -= entry_fee
            lot.quantity -= taken
            remaining -= taken
            if not lot.quantity:
                lots.pop(0)
        if remaining:
            share = commission * remaining / quantity
            lots.append(Lot("long" if buy else "short", remaining, price, when, share))
            for child in order.children:  # the bracket's children start to work
                child.quantity, child.after = remaining, when
                self.orders.append(child)

    def open_trades(self, when):
        """The positions still open, as trades marked at the last close."""
        marked = []
        for pk, lots in self.lots.items():
            for lot in lots:
                mark = self.marks[pk]
                sign = 1 if lot.side == "long" else -1
                marked.append(ClosedTrade(
                    code_pk=pk, symbol=self.symbols[pk], side=lot.side, entry_time=lot.time,
                    exit_time=None, entry_price=lot.price, exit_price=mark,
                    quantity=lot.quantity, pnl=sign * (mark - lot.price) * lot.quantity
                    - lot.commission, exit_reason="open at the end", commission=lot.commission,
                ))  # fmt: skip
        return marked


# --- the run ------------------------------------------------------------------------------------


class _Exiting:
    """The book as the risk gate sees an exit: the position it closes is not counted."""

    def __init__(self, book):
        self.book = book

    def open_positions(self):
        return self.book.open_positions() - 1

    def working_order(self, conid, *, strategy):
        return self.book.working_order(conid, strategy=strategy)

    def orders_today(self, now, *, strategy):
        return self.book.orders_today(now, strategy=strategy)

    def __getattr__(self, name):  # the other questions as the book answers them
        return getattr(self.book, name)


class MarketRow:
    """What ``fetch_data`` reads: a cache row's shape, from the store."""

    served_from_cache = False
    source = "the bar store"

    def __init__(self, data):
        self.data = data


class BacktestRun:
    """What the workflow's steps see of the world in a backtest (``runner.Run``'s methods)."""

    dry_run = False
    execution = None

    def __init__(self, *, strategy, params, steps, codes, bars, book, keep_log=False):
        self.strategy = strategy
        self.params = params
        self.steps = steps
        self.codes = codes
        self.bars = bars
        self.book = book
        self.now = None  # the close the steps stand at (numpy datetime64 of the bar's start)
        self.moment = None  # the same, as an aware datetime
        self.closes = {}
        self.counts = {"symbols_processed": 0, "decisions_made": 0, "orders_placed": 0}
        self.charts = []
        self.keep_log = keep_log
        self.logs = []
        self.messages = 0
        self.code = None  # the code the steps are at
        self.conversations = []  # (code pk, the close, the agents' messages)

    def log(self, message, *, level="info", symbol=None, step=None):
        if self.keep_log or level == "error":
            self.logs.append({"time": self.moment.isoformat(), "level": level,
                              "message": message, "symbol": symbol, "step": step})  # fmt: skip

    def market_data(self, *, code, period, bar, on_wait=None):
        return MarketRow(self.bars.document(code, period, bar, self.now))

    def price_now(self, *, code):
        return PriceReport(conid=code.conid, price=self.closes[code.pk], time=self.moment)

    def decision_record(self, **fields):
        fields.pop("workflow_execution", None)
        return decision_build(**fields, created_at=self.moment)

    def risk_check(self, **arguments):
        from strategies.risk import risk_check

        decision = arguments["decision"]
        held = self.book.position(decision.code)
        book = self.book
        if decision.type == "sell" and held > 0 and not self.book.settings.allow_short:
            # Long only, a sell is the long's exit: it opens no position (the cap on open
            # positions is no reason to keep one), and the funds it frees pay for it (IB needs
            # no cash to sell shares held).
            freed = held * self.closes[decision.code.pk]
            arguments["account"] = lambda: self.account(freed=freed)
            book = _Exiting(self.book)
        return risk_check(**arguments, book=book)

    def bracket_place(self, *, decision, side, quantity, entry_price, entry_type, tif,
                      target_price=None, stop_loss=None):  # fmt: skip
        # Without ``brackets`` the entry alone: the workflow's own exits close the position.
        brackets = self.book.settings.brackets
        return self.book.place(code=decision.code, side=side, quantity=quantity,
                               order_type=entry_type,
                               price=entry_price if entry_type == "LMT" else None, tif=tif,
                               decision=decision, target_price=target_price if brackets else None,
                               stop_loss=stop_loss if brackets else None)  # fmt: skip

    def position_exit(self, *, code, order_type, price, tif, decision=None):
        held = self.book.position(code)
        side = "SELL" if held > 0 else "BUY"
        return [self.book.place(code=code, side=side, quantity=abs(held), order_type=order_type,
                                price=price, tif=tif, decision=decision, role="exit")]  # fmt: skip

    def account(self, freed=ZERO):
        equity = self.book.equity()
        cash = self.book.cash + freed
        return AccountSummary(account="BACKTEST", currency="USD", net_liquidation=equity,
                              cash=cash, buying_power=cash, available_funds=cash,
                              time=self.moment)  # fmt: skip

    def chart_record(self, **arguments):
        return None

    def conversation_record(self, messages):
        """Keep the agents' messages of this code at this bar; stored with its result."""
        self.messages += len(messages)
        self.conversations.append((self.code.pk, self.moment, list(messages)))

    def sleep(self, seconds):
        return None


@dataclass
class BacktestOutcome:
    run_id: str
    results: list = field(default_factory=list)
    bars: int = 0
    final_equity: Decimal = ZERO
    trades: list = field(default_factory=list)
    equity: list = field(default_factory=list)  # (time, equity)
    logs: list = field(default_factory=list)
    failures: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    messages: int = 0  # the agents' messages, over every bar
    conversations: list = field(default_factory=list)  # (code pk, close, messages)


def _aware(moment):
    return datetime.fromisoformat(str(moment.astype("datetime64[us]"))).replace(tzinfo=UTC)


def backtest_run(*, strategy, settings, progress=None, store=True, keep_log=False):
    """Backtest ``strategy``'s workflow over ``settings``' period; returns a BacktestOutcome
    (and stores its results unless ``store`` is false)."""
    steps, defaults = strategy_steps(strategy_type=strategy.type, workflow=strategy.workflow)
    params = {**defaults, **(strategy.param or {})}
    problems = params_errors(steps, params) if steps else {"steps": "the workflow has no steps"}
    codes = list(strategy.codes.order_by("symbol"))
    if problems or not codes:
        reason = "; ".join(f"{k}: {v}" for k, v in problems.items()) or "the strategy has no codes"
        raise ApplicationError(f"Cannot backtest: {reason}", extra=problems or {"codes": reason})
    if settings.end <= settings.start:
        raise ApplicationError("The period ends before it starts.", extra={"to": "after from"})
    steps = fill_placeholders(steps, params)
    # The first data step's bar is the backtest's clock (the step types declare which is one).
    first_fetch = next((s for s in steps if REGISTRY[s["type"]].essential), None)
    primary = first_fetch["config"]["bar"]
    bars = Bars(codes, settings.end)
    cash = settings.cash
    if cash is None:
        cash = Decimal(str(params.get("account_size", "100000")))
    book = Book(cash=cash, settings=settings, strategy=strategy)
    book.symbols = {code.pk: code.symbol for code in codes}
    run = BacktestRun(strategy=strategy, params=params, steps=steps, codes=codes, bars=bars,
                      book=book, keep_log=keep_log)  # fmt: skip
    start = np.datetime64(settings.start.astimezone(UTC).replace(tzinfo=None), "us")
    end = np.datetime64(settings.end.astimezone(UTC).replace(tzinfo=None), "us")
    primaries, missing = {}, {}
    for code in codes:
        try:
            primaries[code.pk] = bars.series(code, primary)[0]
        except ApplicationError as exc:
            missing[code.symbol] = str(exc)  # that code is left out, and the result says so
    if not primaries:
        raise ApplicationError(
            "The bar store has no bars of the strategy's codes.",
            extra={"codes": "; ".join(missing.values())},
        )
    codes = [code for code in codes if code.pk in primaries]
    run.codes = codes
    clock = np.unique(np.concatenate([s.times for s in primaries.values()]))
    clock = clock[(clock >= start) & (clock <= end)]
    if not len(clock):
        raise ApplicationError(
            "The bar store has no bars in that period.",
            extra={"from": f"no {primary} bars of {', '.join(c.symbol for c in codes)} there"},
        )
    outcome = BacktestOutcome(run_id=_run_id(strategy), failures=dict(missing))
    replayed = _replayer(settings.replay)
    curves = {code.pk: [] for code in codes}
    realized = {code.pk: ZERO for code in codes}
    counted = 0
    for number, now in enumerate(clock):
        moment = _aware(now)
        run.now, run.moment, book.now = now, moment, moment
        # The orders of the last close fill (or expire) on this bar; then the close marks.
        present = []
        for code in codes:
            series = primaries[code.pk]
            index = series.upto(now) - 1
            if index < 0 or series.times[index] != now:
                continue  # no bar of this code now (a holiday of its own, not yet listed)
            present.append(code)
            columns = (series.open, series.high, series.low, series.close)
            o, h, lo, c = (Decimal(repr(float(column[index]))) for column in columns)
            book.fill_working(code, o, h, lo, moment)
            book.marks[code.pk] = c
            run.closes[code.pk] = c
        for trade in book.trades[counted:]:
            realized[trade.code_pk] += trade.pnl
        counted = len(book.trades)
        for code in present:
            run.code = code
            symbol = SymbolRun(code=code)
            try:
                with replayed(code, moment):
                    for step in steps:
                        handler = REGISTRY[step["type"]]
                        if symbol.halted and handler.needs_decision_path:
                            continue
                        handler.run(run, symbol, step.get("config", {}))
                run.counts["symbols_processed"] += 1
            except ApplicationError as exc:
                outcome.failures.setdefault(code.symbol, f"{moment:%Y-%m-%d %H:%M}: {exc}")
        equity = book.equity()
        outcome.equity.append((moment, equity))
        for code in codes:
            unrealized = _unrealized(book, code)
            curves[code.pk].append((moment, cash + realized[code.pk] + unrealized))
        if progress is not None and (number % 25 == 0 or number == len(clock) - 1):
            progress(number + 1, len(clock))
    outcome.bars = len(clock) * len(codes)
    outcome.final_equity = book.equity()
    outcome.trades = book.trades + book.open_trades(outcome.equity[-1][0])
    outcome.logs = run.logs
    outcome.counts = run.counts
    outcome.messages = run.messages
    outcome.conversations = run.conversations
    if store:
        outcome.results = _store(outcome, strategy=strategy, settings=settings, codes=codes,
                                 curves=curves, cash=cash, clock=clock)  # fmt: skip
    return outcome


def _replayer(run_id):
    """``replayed(code, moment)``: a context in which the agents get the replies recorded for
    that code at that close in run ``run_id`` (none: they ask the configured model)."""
    if not run_id:
        return lambda code, moment: contextlib.nullcontext()
    from .agents.replay import replies_replayed  # no AutoGen import: see replay.py

    replies = {}
    for symbol, moment, content in (
        StrategyProbeConversation.objects.filter(result__run_id=run_id, message_type="response")
        .order_by("bar_time", "id")
        .values_list("result__symbol", "bar_time", "message_content")
    ):
        replies.setdefault((symbol, moment), []).append(content)
    label = f"replay of {run_id}"
    return lambda code, moment: replies_replayed(
        replies.get((code.symbol[:20], moment), []), label=label
    )


def _unrealized(book, code):
    mark = book.marks.get(code.pk)
    total = ZERO
    for lot in book.lots.get(code.pk, []):
        sign = 1 if lot.side == "long" else -1
        total += sign * (mark - lot.price) * lot.quantity - lot.commission
    return total


def _run_id(strategy):
    return f"bt-{strategy.pk}-{timezone.now():%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


# --- statistics -----------------------------------------------------------------------------------


def sharpe_ratio(values):
    """Mean return per bar over its standard deviation (n - 1), times sqrt(252)."""
    returns = [float(b / a - 1) for a, b in zip(values, values[1:], strict=False) if a]
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return None if variance <= 0 else mean / math.sqrt(variance) * math.sqrt(TRADING_DAYS)


def max_drawdown_pct(values):
    peak, worst = None, 0.0
    for value in values:
        if peak is None or value > peak:
            peak = value
        if peak > 0:
            worst = max(worst, float((peak - value) / peak * 100))
    return worst


def _statistics(trades, curve, cash):
    closed = [t for t in trades if t.exit_time is not None]
    wins = [t.pnl for t in closed if t.pnl > 0]
    losses = [t.pnl for t in closed if t.pnl < 0]
    values = [value for _, value in curve]
    total = sum((t.pnl for t in trades), ZERO).quantize(CENT)  # return_pct is of this
    return {
        "total_trades": len(closed),
        "win_rate": 100 * len(wins) / len(closed) if closed else None,
        "profit_factor": float(sum(wins) / -sum(losses)) if losses else None,
        "total_pnl": float(total),
        "max_drawdown": max_drawdown_pct(values),
        "sharpe_ratio": sharpe_ratio(values),
        "return_pct": float(total / cash * 100) if cash else None,
    }


@transaction.atomic
def _store(outcome, *, strategy, settings, codes, curves, cash, clock):
    results = []
    period_start, period_end = _aware(clock[0]), _aware(clock[-1])
    for code in codes:
        trades = [t for t in outcome.trades if t.code_pk == code.pk]
        stats = _statistics(trades, curves[code.pk], cash)
        return_pct = stats.pop("return_pct")
        result = StrategyProbeResult.objects.create(
            run_id=outcome.run_id, symbol=code.symbol[:20], strategy=strategy,
            period_start=period_start, period_end=period_end, open_day=period_start.date(),
            **stats,
            metrics={
                "return_pct": return_pct,
                "final_equity": str(outcome.final_equity.quantize(CENT)),
                "starting_cash": str(cash),
                "commission": settings.commission,
                "slippage_bps": str(settings.slippage_bps),
                "allow_short": settings.allow_short,
                "brackets": settings.brackets,
                "replay": settings.replay,
                "equity_curve": [[t.isoformat(), float(v)] for t, v in curves[code.pk]],
                "workflow_id": strategy.workflow_id,
                "bars": len(clock),
                "failures": {k: v for k, v in outcome.failures.items() if k == code.symbol},
            },
        )  # fmt: skip
        StrategyProbeTrade.objects.bulk_create(
            StrategyProbeTrade(
                result=result,
                symbol=t.symbol[:20],
                side=t.side,
                entry_time=t.entry_time,
                exit_time=t.exit_time,
                entry_price=float(t.entry_price),
                exit_price=None if t.exit_price is None else float(t.exit_price),
                quantity=t.quantity,
                pnl=float(t.pnl),
                return_pct=float(t.pnl / (t.entry_price * t.quantity) * 100),
                exit_reason=t.exit_reason,
                metrics={"commission": str(t.commission)},
            )  # fmt: skip
            for t in trades
        )
        StrategyProbeConversation.objects.bulk_create(
            (
                StrategyProbeConversation(
                    result=result,
                    bar_time=moment,
                    agent_name=m.agent_name,
                    message_type=m.message_type,
                    message_content=m.content,
                    timestamp=m.timestamp,
                    tokens_used=m.tokens_used,
                    llm_model=m.llm_model,
                )  # fmt: skip
                for code_pk, moment, messages in outcome.conversations
                if code_pk == code.pk
                for m in messages
            ),
            batch_size=1000,
        )
        results.append(result)
    return results
