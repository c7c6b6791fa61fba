"""Field lists of the messages the gateway sends, and the parsing of placeOrder.

Each builder returns the fields of one message in the order the TWS decoder reads them at the
negotiated server version (``v``). The order is the whole contract: a missing field shifts
every later one, and ib_insync unpacks several messages (execDetails, position, portfolio,
commissionReport) into a fixed number of names, so one extra field breaks them too.
Traps are marked where the layout is not what one would guess.
"""

import math
from datetime import datetime
from decimal import Decimal

from .book import Execution, Holding, Order, OrderRequest
from .contracts import ORDER_TYPES, VALID_EXCHANGES, Stock
from .market import Bar
from .protocol import (
    EASTERN,
    UNSET_DOUBLE,
    Fields,
    Out,
    ib_date,
    ib_datetime,
    price_text,
)

# Server versions at which layouts change (names as in IB's ibapi/server_versions.py).
MIN_SERVER_VER_DURATION = 158
MIN_SERVER_VER_POST_TO_ATS = 160
MIN_SERVER_VER_AUTO_CANCEL_PARENT = 162
MIN_SERVER_VER_SIZE_RULES = 164
MIN_SERVER_VER_ADVANCED_ORDER_REJECT = 166
MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS = 170
MIN_SERVER_VER_BOND_ISSUERID = 176


def money(value):
    """Account amounts as TWS writes them: two decimals ("1000000.00"); text passes through."""
    if isinstance(value, Decimal):
        return format(value.quantize(Decimal("0.01")), "f")
    return value


def contract_fields(c: Stock) -> list:
    """The 11 contract fields of order/execution/position messages (no primaryExchange)."""
    return [c.con_id, c.symbol, c.sec_type, "", "0", "", "", c.exchange, c.currency,
            c.local_symbol, c.trading_class]  # fmt: skip


# --- connection -----------------------------------------------------------------------------


def next_valid_id(order_id: int) -> list:
    return [Out.NEXT_VALID_ID, 1, order_id]


def managed_accounts(accounts: list[str]) -> list:
    return [Out.MANAGED_ACCTS, 1, ",".join(accounts)]


def error(v: int, req_id: int, code: int, message: str) -> list:
    """errorMsg; from v166 on it ends with advancedOrderRejectJson, which ib_insync requires."""
    fields = [Out.ERR_MSG, 2, req_id, code, message]
    if v >= MIN_SERVER_VER_ADVANCED_ORDER_REJECT:
        fields.append("")
    return fields


def current_time(epoch: int) -> list:
    return [Out.CURRENT_TIME, 1, epoch]


# --- contracts ------------------------------------------------------------------------------


def contract_data(v: int, req_id: int, c: Stock, trading_hours: str, liquid_hours: str) -> list:
    """contractData for a stock.

    Trap: before v164 there is a version field after the message id and an mdSizeMultiplier
    after minTick; from v164 both are gone and minSize/sizeIncrement/suggestedSizeIncrement
    are appended.
    """
    fields = [Out.CONTRACT_DATA]
    if v < MIN_SERVER_VER_SIZE_RULES:
        fields.append(8)
    fields += [req_id, c.symbol, c.sec_type, "", "0", "", c.exchange, c.currency,
               c.local_symbol, c.trading_class, c.trading_class, c.con_id, "0.01"]  # fmt: skip
    if v < MIN_SERVER_VER_SIZE_RULES:
        fields.append(1)  # mdSizeMultiplier
    rules = ",".join(["26"] * len(VALID_EXCHANGES.split(",")))
    fields += [
        "",  # multiplier
        ORDER_TYPES,
        VALID_EXCHANGES,
        1,  # priceMagnifier
        0,  # underConId
        c.long_name,
        c.primary_exchange,
        "",  # contractMonth
        c.industry,
        c.category,
        c.subcategory,
        "US/Eastern",
        trading_hours,
        liquid_hours,
        "",  # evRule
        "",  # evMultiplier
        0,  # secIdList count
        1,  # aggGroup
        "",  # underSymbol
        "",  # underSecType
        rules,
        "",  # realExpirationDate
        c.stock_type,
    ]
    if v >= MIN_SERVER_VER_SIZE_RULES:
        fields += ["0.0001", "0.0001", "100"]
    return fields


def contract_data_end(req_id: int) -> list:
    return [Out.CONTRACT_DATA_END, 1, req_id]


def symbol_samples(v: int, req_id: int, stocks: list[Stock]) -> list:
    fields = [Out.SYMBOL_SAMPLES, req_id, len(stocks)]
    for c in stocks:
        fields += [c.con_id, c.symbol, c.sec_type, c.primary_exchange, c.currency]
        fields += [2, "CFD", "OPT"]  # derivative sec types
        if v >= MIN_SERVER_VER_BOND_ISSUERID:
            fields += [c.long_name, ""]  # description, issuerId
    return fields


# --- history --------------------------------------------------------------------------------


def bar_time(bar: Bar, format_date: int) -> str:
    """Daily and longer bars are "yyyymmdd" whatever formatDate says; intraday bars are
    "yyyymmdd hh:mm:ss US/Eastern" (formatDate 1) or epoch seconds (formatDate 2)."""
    if not isinstance(bar.time, datetime):
        return ib_date(bar.time)
    if format_date == 2:
        return str(int(bar.time.timestamp()))
    return ib_datetime(bar.time)


def bar_price_text(value: float) -> str:
    """A bar's price; a gap in a bars file ("nan") goes out as IB's Java server prints a NaN
    double, so a client meets the bad bar it must refuse rather than a dropped session."""
    return price_text(value) if math.isfinite(value) else "NaN"


def historical_data(
    req_id: int, start: datetime, end: datetime, bars: list[Bar], format_date: int
) -> list:
    """historicalData; trap: no version field at these server versions (v124+)."""
    fields = [Out.HISTORICAL_DATA, req_id, ib_datetime(start), ib_datetime(end), len(bars)]
    for b in bars:
        fields += [
            bar_time(b, format_date),
            bar_price_text(b.open),
            bar_price_text(b.high),
            bar_price_text(b.low),
            bar_price_text(b.close),
            str(int(b.volume)),
            bar_price_text(b.wap),
            b.count,
        ]
    return fields


def head_timestamp(req_id: int, moment: datetime, format_date: int) -> list:
    text = str(int(moment.timestamp())) if format_date == 2 else ib_datetime(moment)
    return [Out.HEAD_TIMESTAMP, req_id, text]


# --- market data ----------------------------------------------------------------------------


def market_data_type(req_id: int, kind: int) -> list:
    return [Out.MARKET_DATA_TYPE, 1, req_id, kind]


def tick_req_params(req_id: int) -> list:
    return [Out.TICK_REQ_PARAMS, req_id, "0.01", "9c0001", 3]


def tick_price(req_id: int, tick_type: int, price: float, size) -> list:
    """tickPrice always carries a size here (ib_insync unpacks exactly 7 fields)."""
    return [Out.TICK_PRICE, 6, req_id, tick_type, price_text(price), size, 0]


def tick_size(req_id: int, tick_type: int, size) -> list:
    return [Out.TICK_SIZE, 6, req_id, tick_type, size]


def tick_snapshot_end(req_id: int) -> list:
    return [Out.TICK_SNAPSHOT_END, 1, req_id]


# --- orders ---------------------------------------------------------------------------------


def _price_or_zero(value: Decimal | None):
    # TWS reports an unset limit/aux price of an open order as 0, not as "unset".
    return value if value is not None else 0


def _unset_or(value: Decimal | None):
    return value if value is not None else ""


def open_order(v: int, o: Order, *, what_if: dict | None = None) -> list:
    """openOrder, field for field as EDecoder.processOpenOrderMsg reads it.

    Traps: no version field (v145+); a dead "sharesAllocation" field sits between
    goodAfterTime and the FA fields; the order state's margin fields are strings and TWS sends
    Double.MAX_VALUE ("1.7976931348623157E308") in them when unknown.
    """
    state = what_if or {}
    unset = UNSET_DOUBLE
    fields = [Out.OPEN_ORDER, o.order_id, *contract_fields(o.contract)]
    fields += [
        o.action, o.quantity, o.order_type, _price_or_zero(o.lmt_price),
        _price_or_zero(o.aux_price), o.tif, o.oca_group, o.account, "", 0, o.order_ref,
        o.client_id,
        o.perm_id, o.outside_rth, False, 0, "",
        "",  # sharesAllocation (deprecated, still on the wire)
        "", "", "", "",  # faGroup, faMethod, faPercentage, faProfile
        "", "", "", "", "",  # modelCode, goodTillDate, rule80A, percentOffset, settlingFirm
        0, "", -1,  # shortSaleSlot, designatedLocation, exemptCode
        0,  # auctionStrategy
        "", "", "",  # startingPrice, stockRefPrice, delta
        "", "",  # stockRangeLower, stockRangeUpper
        0, False, False, False, "", o.oca_type,  # displaySize .. ocaType
        False, False, "",  # eTradeOnly, firmQuoteOnly, nbboPriceCap
        o.parent_id, 0,  # parentId, triggerMethod
        "", "", "", "",  # volatility, volatilityType, deltaNeutralOrderType, ..AuxPrice
        False, "",  # continuousUpdate, referencePriceType
        _unset_or(o.trail_stop_price), _unset_or(o.trailing_percent),
        "", "",  # basisPoints, basisPointsType
        "",  # comboLegsDescrip
        0, 0, 0,  # comboLegs, orderComboLegs, smartComboRoutingParams counts
        "", "", "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        False, "", "IB", False,  # optOutSmartRouting, clearingAccount/Intent, notHeld
        False,  # deltaNeutralContract present
        "",  # algoStrategy
        False,  # solicited
        bool(what_if),
        state.get("status", o.status),
        state.get("initMarginBefore", unset),
        state.get("maintMarginBefore", unset),
        state.get("equityWithLoanBefore", unset),
        state.get("initMarginChange", unset),
        state.get("maintMarginChange", unset),
        state.get("equityWithLoanChange", unset),
        state.get("initMarginAfter", unset),
        state.get("maintMarginAfter", unset),
        state.get("equityWithLoanAfter", unset),
        state.get("commission", unset),
        state.get("minCommission", unset),
        state.get("maxCommission", unset),
        state.get("commissionCurrency", ""),
        "",  # warningText
        False, False,  # randomizeSize, randomizePrice
        0,  # conditions
        "None", "", "", "", "", "", "", 0,  # adjusted order parameters
        "", "", "",  # softDollarTier name, value, displayName
        "",  # cashQty
        False, False, False, False,  # dontUseAutoPriceForHedge .. usePriceMgmtAlgo
    ]  # fmt: skip
    # Trap: ib_insync reads duration only from v159 on; IB writes it from v158 on. At 158
    # itself the two disagree — the negotiation never picks 158 for ib_insync (it offers 176).
    if v >= MIN_SERVER_VER_DURATION:
        fields.append("")  # duration
    if v >= MIN_SERVER_VER_POST_TO_ATS:
        fields.append("")  # postToAts
    if v >= MIN_SERVER_VER_AUTO_CANCEL_PARENT:
        fields.append(False)  # autoCancelParent
    if v >= MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS:
        fields += ["", "", "", "", ""]  # minTradeQty .. midOffsetAtHalf
    return fields


def open_order_end() -> list:
    return [Out.OPEN_ORDER_END, 1]


def order_status(o: Order) -> list:
    """orderStatus; trap: no version field from v131 on, so the order id comes first."""
    return [
        Out.ORDER_STATUS,
        o.order_id,
        o.status,
        o.filled,
        o.remaining,
        o.avg_fill_price.quantize(Decimal("0.00000001")) if o.filled else 0,
        o.perm_id,
        o.parent_id,
        o.last_fill_price,
        o.client_id,
        "",  # whyHeld
        0,  # mktCapPrice
    ]


def completed_order(v: int, o: Order) -> list:
    """completedOrder: like openOrder but without the order id and with its own field set.

    Traps: no orderId and no clientId (ib_insync keys these trades by permId); no
    sharesAllocation, auctionStrategy, blockOrder, eTradeOnly/firmQuoteOnly/nbboPriceCap,
    parentId, basisPoints or optOutSmartRouting; completedTime and completedStatus at the end.
    """
    completed = ib_datetime(o.completed_at) if o.completed_at else ""
    fields = [Out.COMPLETED_ORDER, *contract_fields(o.contract)]
    fields += [
        o.action, o.quantity, o.order_type, _price_or_zero(o.lmt_price),
        _price_or_zero(o.aux_price), o.tif, o.oca_group, o.account, "", 0, o.order_ref,
        o.perm_id, o.outside_rth, False, 0, "",
        "", "", "", "",  # faGroup, faMethod, faPercentage, faProfile
        "", "", "", "", "",  # modelCode, goodTillDate, rule80A, percentOffset, settlingFirm
        0, "", -1,  # shortSaleSlot, designatedLocation, exemptCode
        "", "", "",  # startingPrice, stockRefPrice, delta
        "", "",  # stockRangeLower, stockRangeUpper
        0, False, False, "", o.oca_type, 0,  # displaySize .. minQty, ocaType, triggerMethod
        "", "", "", "",  # volatility, volatilityType, deltaNeutralOrderType, ..AuxPrice
        False, "",  # continuousUpdate, referencePriceType
        _unset_or(o.trail_stop_price), _unset_or(o.trailing_percent),
        "",  # comboLegsDescrip
        0, 0, 0,  # comboLegs, orderComboLegs, smartComboRoutingParams counts
        "", "", "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        "", "IB", False,  # clearingAccount, clearingIntent, notHeld
        False,  # deltaNeutralContract present
        "",  # algoStrategy
        False,  # solicited
        o.status,
        False, False,  # randomizeSize, randomizePrice
        0,  # conditions
        "", "", "",  # trailStopPrice, lmtPriceOffset, cashQty
        False, False,  # dontUseAutoPriceForHedge, isOmsContainer
        "",  # autoCancelDate
        o.filled,
        0,  # refFuturesConId
        False,  # autoCancelParent
        "",  # shareholder
        False, False,  # imbalanceOnly, routeMarketableToBbo
        o.parent_perm_id,
        completed,
        o.completed_status,
    ]  # fmt: skip
    if v >= MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS:
        fields += ["", "", "", "", ""]
    return fields


def completed_orders_end() -> list:
    return [Out.COMPLETED_ORDERS_END]


def exec_details(req_id: int, e: Execution) -> list:
    """execDetails (31 fields, no version field from v136 on). Live fills use reqId -1."""
    contract = e.contract.on(e.exchange)
    return [
        Out.EXECUTION_DATA,
        req_id,
        e.order_id,
        *contract_fields(contract),
        e.exec_id,
        ib_datetime(e.time, EASTERN),
        e.account,
        e.exchange,
        e.side,
        e.shares,
        e.price,
        e.perm_id,
        e.client_id,
        0,  # liquidation
        e.cum_qty,
        e.avg_price.quantize(Decimal("0.00000001")),
        e.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        e.liquidity,
    ]


def exec_details_end(req_id: int) -> list:
    return [Out.EXECUTION_DATA_END, 1, req_id]


def commission_report(e: Execution) -> list:
    """commissionReport; an opening fill's realized P&L is IB's "unset" Double.MAX_VALUE."""
    realized = UNSET_DOUBLE if e.realized_pnl is None else e.realized_pnl.quantize(Decimal("0.01"))
    return [Out.COMMISSION_REPORT, 1, e.exec_id, e.commission, "USD", realized, UNSET_DOUBLE, ""]


# --- account and portfolio ------------------------------------------------------------------


def position(account: str, h: Holding) -> list:
    """position; the contract's exchange is its primary listing, as TWS reports positions."""
    contract = h.contract.on(h.contract.primary_exchange)
    return [Out.POSITION_DATA, 3, account, *contract_fields(contract), h.quantity,
            h.avg_cost.quantize(Decimal("0.0001"))]  # fmt: skip


def position_end() -> list:
    return [Out.POSITION_END, 1]


def position_multi(req_id: int, account: str, h: Holding) -> list:
    contract = h.contract.on(h.contract.primary_exchange)
    return [Out.POSITION_MULTI, 1, req_id, account, *contract_fields(contract), h.quantity,
            h.avg_cost.quantize(Decimal("0.0001")), ""]  # fmt: skip


def position_multi_end(req_id: int) -> list:
    return [Out.POSITION_MULTI_END, 1, req_id]


def account_value(tag: str, value, currency: str, account: str) -> list:
    return [Out.ACCT_VALUE, 2, tag, money(value), currency, account]


def portfolio_value(account: str, h: Holding, price: Decimal) -> list:
    """updatePortfolio; trap: its contract has primaryExchange where others have exchange."""
    c = h.contract
    value = h.quantity * price
    unrealized = value - h.quantity * h.avg_cost
    return [
        Out.PORTFOLIO_VALUE, 8, c.con_id, c.symbol, c.sec_type, "", "0", "", "",
        c.primary_exchange, c.currency, c.local_symbol, c.trading_class,
        h.quantity, price, money(value), h.avg_cost.quantize(Decimal("0.0001")),
        money(unrealized), money(h.realized_pnl), account,
    ]  # fmt: skip


def account_time(moment: datetime) -> list:
    return [Out.ACCT_UPDATE_TIME, 1, moment.astimezone(EASTERN).strftime("%H:%M")]


def account_download_end(account: str) -> list:
    return [Out.ACCT_DOWNLOAD_END, 1, account]


def account_update_multi(req_id: int, account: str, tag: str, value, currency: str) -> list:
    return [Out.ACCOUNT_UPDATE_MULTI, 1, req_id, account, "", tag, money(value), currency]


def account_update_multi_end(req_id: int) -> list:
    return [Out.ACCOUNT_UPDATE_MULTI_END, 1, req_id]


def account_summary(req_id: int, account: str, tag: str, value, currency: str) -> list:
    return [Out.ACCOUNT_SUMMARY, 1, req_id, account, tag, money(value), currency]


def account_summary_end(req_id: int) -> list:
    return [Out.ACCOUNT_SUMMARY_END, 1, req_id]


# --- requests -------------------------------------------------------------------------------


def parse_place_order(f: Fields):
    """(orderId, contract query, OrderRequest) from a placeOrder, read the way EClient wrote
    it up to whatIf; later fields (conditions, cashQty, ...) do not change the simulation.

    Trap: from v145 on placeOrder has no version field, so the order id is field 1.
    """
    f.skip()  # message id
    order_id = f.integer()
    contract = f.contract()
    f.skip(2)  # secIdType, secId
    action = f.text().upper()
    quantity = f.decimal()
    order_type = f.text().upper()
    lmt_price = f.decimal()
    aux_price = f.decimal()
    tif = f.text().upper() or "DAY"
    oca_group = f.text()
    account = f.text()
    f.skip(2)  # openClose, origin
    order_ref = f.text()
    transmit = f.flag()
    parent_id = f.integer()
    f.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    outside_rth = f.flag()
    f.skip()  # hidden
    if contract.sec_type.upper() == "BAG":
        legs = f.integer()
        f.skip(8 * legs)
        f.skip(f.integer())  # order combo leg prices
        f.skip(2 * f.integer())  # smart combo routing params
    f.skip()  # sharesAllocation (deprecated)
    f.skip(11)  # discretionaryAmt .. exemptCode
    oca_type = f.integer()
    f.skip(17)  # rule80A .. volatilityType
    delta_neutral_type = f.text()
    f.skip()  # deltaNeutralAuxPrice
    if delta_neutral_type:
        f.skip(8)
    f.skip(2)  # continuousUpdate, referencePriceType
    trail_stop_price = f.decimal()
    trailing_percent = f.decimal()
    f.skip(2)  # scaleInitLevelSize, scaleSubsLevelSize
    increment = f.real()
    if increment is not None and 0 < increment:
        f.skip(7)
    f.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if f.text():  # hedgeType
        f.skip()  # hedgeParam
    f.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if f.flag():  # deltaNeutralContract
        f.skip(3)
    if f.text():  # algoStrategy
        f.skip(2 * f.integer())
    f.skip()  # algoId
    what_if = f.flag() if f.remaining else False
    request = OrderRequest(
        action=action,
        quantity=quantity,
        order_type=order_type,
        lmt_price=lmt_price,
        aux_price=aux_price,
        tif=tif,
        account=account,
        order_ref=order_ref,
        outside_rth=outside_rth,
        parent_id=parent_id,
        transmit=transmit,
        what_if=what_if,
        oca_group=oca_group,
        oca_type=oca_type,
        trail_stop_price=trail_stop_price,
        trailing_percent=trailing_percent,
    )
    return order_id, contract, request
