"""US stocks the gateway knows: a table of common symbols with their real IB conids, and the
symbols of its bars files (``--bars-dir``), each with a deterministic definition.

The universe is finite, as IB's is: any other symbol is answered with IB's error 200 ("No
security definition has been found for the request"), so a typo (APPL) is refused rather
than traded. The conids in the table are IB's own, so a product that stores conids (or
compares them with ones a real gateway gave) sees the same numbers. A bars file's symbol gets
a conid derived from the symbol alone (never from the seed), in a range above today's real
conids; the same symbol gets the same conid in every run.
"""

import hashlib
import re
import threading
from dataclasses import dataclass, replace

from .protocol import ContractQuery


class NoSecurityDefinition(LookupError):
    """IB's error 200: nothing matches the request."""

    code = 200
    message = "No security definition has been found for the request"


@dataclass(frozen=True)
class StockInfo:
    con_id: int
    primary: str
    name: str
    base_price: float
    daily_volume: int
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    stock_type: str = "COMMON"


# symbol -> (IB conid, primary exchange, long name, price level, daily volume). Price levels
# only centre the simulated walk; they are not quotes.
_TABLE = {
    "AAPL": (265598, "NASDAQ", "APPLE INC", 190, 55_000_000),
    "MSFT": (272093, "NASDAQ", "MICROSOFT CORP", 420, 22_000_000),
    "GOOGL": (208813719, "NASDAQ", "ALPHABET INC-CL A", 170, 28_000_000),
    "AMZN": (3691937, "NASDAQ", "AMAZON.COM INC", 180, 40_000_000),
    "NVDA": (4815747, "NASDAQ", "NVIDIA CORP", 120, 250_000_000),
    "TSLA": (76792991, "NASDAQ", "TESLA INC", 250, 95_000_000),
    "META": (107113386, "NASDAQ", "META PLATFORMS INC-CLASS A", 500, 15_000_000),
    "AMD": (4391, "NASDAQ", "ADVANCED MICRO DEVICES", 150, 50_000_000),
    "INTC": (270639, "NASDAQ", "INTEL CORP", 30, 45_000_000),
    "NFLX": (15124833, "NASDAQ", "NETFLIX INC", 650, 4_000_000),
    "CSCO": (268084, "NASDAQ", "CISCO SYSTEMS INC", 50, 18_000_000),
    "WMT": (13824, "NASDAQ", "WALMART INC", 70, 15_000_000),
    "QQQ": (320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1", 470, 40_000_000),
    "SPY": (756733, "ARCA", "SPDR S&P 500 ETF TRUST", 550, 60_000_000),
    "IWM": (9579970, "ARCA", "ISHARES RUSSELL 2000 ETF", 210, 30_000_000),
    "XLF": (4215220, "ARCA", "FINANCIAL SELECT SECTOR SPDR", 42, 35_000_000),
    "IBM": (8314, "NYSE", "INTL BUSINESS MACHINES CORP", 190, 4_000_000),
    "JPM": (1520593, "NYSE", "JPMORGAN CHASE & CO", 200, 9_000_000),
    "GS": (4627828, "NYSE", "GOLDMAN SACHS GROUP INC", 470, 2_500_000),
    "MS": (2841574, "NYSE", "MORGAN STANLEY", 95, 7_000_000),
    "XOM": (13977, "NYSE", "EXXON MOBIL CORP", 110, 16_000_000),
    "ORCL": (272800, "NYSE", "ORACLE CORP", 140, 9_000_000),
}
_ETFS = frozenset(["QQQ", "SPY", "IWM", "XLF"])
_CHIPS = ("Technology", "Semiconductors", "Electronic Compo-Semicon")
_WEB = ("Communications", "Internet", "Internet Content-Entmnt")
_BANKS = ("Financial", "Banks", "Diversified Banking Inst")
# symbol -> (industry, category, subcategory) as contract details report them.
_SECTORS = {
    "AAPL": ("Technology", "Computers", "Computers"),
    "MSFT": ("Technology", "Software", "Software"),
    "GOOGL": ("Communications", "Internet", "Web Portals/ISP"),
    "AMZN": ("Communications", "Internet", "E-Commerce/Products"),
    "NVDA": _CHIPS,
    "TSLA": ("Consumer, Cyclical", "Auto Manufacturers", "Auto-Cars/Light Trucks"),
    "META": _WEB,
    "AMD": _CHIPS,
    "INTC": _CHIPS,
    "NFLX": _WEB,
    "CSCO": ("Communications", "Telecommunications", "Networking Products"),
    "WMT": ("Consumer, Cyclical", "Retail", "Retail-Discount"),
    "IBM": ("Technology", "Computers", "Computer Services"),
    "JPM": _BANKS,
    "GS": _BANKS,
    "MS": _BANKS,
    "XOM": ("Energy", "Oil&Gas", "Oil Comp-Integrated"),
    "ORCL": ("Technology", "Software", "Enterprise Software/Serv"),
}

STOCKS = {
    symbol: StockInfo(
        *row,
        *_SECTORS.get(symbol, ("", "", "")),
        stock_type="ETF" if symbol in _ETFS else "COMMON",
    )
    for symbol, row in _TABLE.items()
}

#: Exchanges a US stock can be routed to; a request naming another gets error 200.
US_EXCHANGES = frozenset(
    ["SMART", "NASDAQ", "ISLAND", "NYSE", "ARCA", "AMEX", "BATS", "BYX", "EDGX", "EDGEA", "IEX",
     "DRCTEDGE", "BEX", "PSX", "CHX", "MEMX", "LTSE", "PEARL", "NYSENAT", "TPLUS1", "IBKRATS"]
)  # fmt: skip
PRIMARY_EXCHANGES = frozenset(["NASDAQ", "NYSE", "ARCA", "AMEX", "BATS"])

VALID_EXCHANGES = (
    "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,ISLAND,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,EDGX,"
    "FOXRIVER,PEARL,NYSENAT,LTSE,MEMX,IBEOS,OVERNIGHT,TPLUS0,PSX"
)
ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AON,AVGCOST,BASKET,BENCHPX,CASHQTY,COND,CONDORDER,"
    "DARKONLY,DARKPOLL,DAY,DEACT,DEACTDIS,DEACTEOD,DIS,DUR,GAT,GTC,GTD,GTT,HID,IBKRATS,ICE,"
    "IMB,IOC,LIT,LMT,LOC,MIDPX,MIT,MKT,MOC,MTL,NGCOMB,NODARK,NONALGO,OCA,OPG,OPGREROUT,PEGBENCH,"
    "PEGMID,POSTATS,POSTONLY,PREOPGRTH,PRICECHK,REL,REL2MID,RELPCTOFS,RPI,RTH,SCALE,SCALEODD,"
    "SCALERST,SIZECHK,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,SWEEP,TRAIL,TRAILLIT,TRAILLMT,"
    "TRAILMIT,WHATIF"
)

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9]{0,5}(?:[ .][A-Z]{1,2})?$")
_DERIVED_BASE = 1_000_000_000
_DERIVED_SPAN = 900_000_000  # keeps derived conids below 2**31 (a Java int at IB)


def derived_con_id(symbol: str) -> int:
    digest = hashlib.sha256(f"STK:{symbol}:USD".encode()).hexdigest()
    return _DERIVED_BASE + int(digest, 16) % _DERIVED_SPAN


def _unit(symbol: str, salt: str) -> float:
    """A number in [0, 1) fixed by the symbol (for derived names, prices, volumes)."""
    digest = hashlib.sha256(f"{salt}:{symbol}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def stock_info(symbol: str) -> StockInfo:
    """The table entry, or a deterministic one for any other symbol."""
    info = STOCKS.get(symbol)
    if info is not None:
        return info
    price = round(10 * 10 ** (1.6 * _unit(symbol, "price")), 2)  # $10 .. $400
    volume = int(500_000 * 10 ** (1.5 * _unit(symbol, "volume")))
    primary = "NASDAQ" if _unit(symbol, "primary") < 0.6 else "NYSE"
    return StockInfo(derived_con_id(symbol), primary, f"{symbol} INC", price, volume)


@dataclass(frozen=True)
class Stock:
    """A resolved US stock as the gateway reports it."""

    con_id: int
    symbol: str
    primary_exchange: str
    long_name: str
    exchange: str = "SMART"
    currency: str = "USD"
    sec_type: str = "STK"
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    stock_type: str = "COMMON"

    @property
    def local_symbol(self) -> str:
        return self.symbol

    @property
    def trading_class(self) -> str:
        # IB's trading class for NASDAQ-listed stocks is "NMS"; elsewhere the symbol itself.
        return "NMS" if self.primary_exchange == "NASDAQ" else self.symbol

    @property
    def execution_venue(self) -> str:
        return {"NASDAQ": "ISLAND", "ARCA": "ARCA", "NYSE": "NYSE"}.get(
            self.primary_exchange, "NYSE"
        )

    def on(self, exchange: str) -> "Stock":
        return replace(self, exchange=exchange)


class ContractRegistry:
    """Resolves contract requests; remembers derived conids so a conid-only request works."""

    def __init__(self, extra_symbols=(), listed=None):
        """``extra_symbols`` are known beside the table; ``listed(symbol)``, when given, says
        whether another symbol is known now (a bars file written after the start)."""
        self._lock = threading.Lock()
        self._by_con_id: dict[int, str] = {info.con_id: s for s, info in STOCKS.items()}
        self._primary_override: dict[str, str] = {}
        self._extra = {symbol.upper() for symbol in extra_symbols}
        self._listed = listed
        for symbol in self._extra:
            self.stock(symbol)

    def add_listing(self, symbol: str) -> Stock:
        """Make ``symbol`` known from now on (a listing), as a bars file would."""
        with self._lock:
            self._extra.add(symbol.upper())
        return self.stock(symbol)

    def known(self, symbol: str) -> bool:
        symbol = symbol.upper()
        return (
            symbol in STOCKS
            or symbol in self._extra
            or bool(self._listed and _SYMBOL.match(symbol) and self._listed(symbol))
        )

    def stock(self, symbol: str, primary: str = "") -> Stock:
        symbol = symbol.upper()
        info = stock_info(symbol)
        with self._lock:
            self._by_con_id.setdefault(info.con_id, symbol)
            if primary and symbol not in STOCKS:
                self._primary_override.setdefault(symbol, primary)
            primary = self._primary_override.get(symbol, info.primary)
        return Stock(
            con_id=info.con_id,
            symbol=symbol,
            primary_exchange=primary,
            long_name=info.name,
            industry=info.industry,
            category=info.category,
            subcategory=info.subcategory,
            stock_type=info.stock_type,
        )

    def by_con_id(self, con_id: int) -> Stock | None:
        with self._lock:
            symbol = self._by_con_id.get(con_id)
        return self.stock(symbol) if symbol else None

    def resolve(self, query: ContractQuery) -> list[Stock]:
        """All stocks matching ``query``; raises :class:`NoSecurityDefinition` for none.

        An empty exchange matches the stock on SMART and on its primary exchange (IB lists
        every venue; a client that wants one contract names the exchange), except for a
        conid-only request, which IB answers with the primary listing.
        """
        sec_type = query.sec_type.upper()
        currency = query.currency.upper()
        exchange = query.exchange.upper()
        primary = query.primary_exchange.upper()
        if sec_type not in ("STK", "") or (sec_type == "" and not query.con_id):
            raise NoSecurityDefinition
        if currency not in ("", "USD"):
            raise NoSecurityDefinition
        if exchange and exchange not in US_EXCHANGES:
            raise NoSecurityDefinition
        if primary and primary not in PRIMARY_EXCHANGES:
            raise NoSecurityDefinition
        symbol = (query.symbol or query.local_symbol).strip().upper()
        if query.con_id:
            stock = self.by_con_id(query.con_id)
            if stock is None or (symbol and symbol != stock.symbol):
                raise NoSecurityDefinition
        else:
            if not _SYMBOL.match(symbol) or not self.known(symbol):
                raise NoSecurityDefinition
            stock = self.stock(symbol, primary if primary in ("NASDAQ", "NYSE") else "")
        if primary and primary != stock.primary_exchange:
            raise NoSecurityDefinition
        if exchange:
            return [stock.on(exchange)]
        if query.con_id:
            return [stock.on(stock.primary_exchange)]  # a conid names one contract
        return [stock.on("SMART"), stock.on(stock.primary_exchange)]

    def search(self, pattern: str, limit: int = 16) -> list[Stock]:
        """reqMatchingSymbols over the finite universe: symbols starting with ``pattern`` (the
        table's and the listed ones, bars files' included), then table names containing it.
        A bars file written since the start is found by its whole symbol."""
        pattern = pattern.strip().upper()
        if not pattern:
            return []
        with self._lock:
            listed = set(self._extra)
        starts = sorted(s for s in {*STOCKS, *listed} if s.startswith(pattern))
        named = sorted(s for s, info in STOCKS.items() if pattern in info.name and s not in starts)
        found = [self.stock(s) for s in starts + named]
        if not found and _SYMBOL.match(pattern) and self.known(pattern):
            found = [self.stock(pattern)]
        return found[:limit]
