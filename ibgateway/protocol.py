"""The TWS API wire format: framing, field encoding and the message ids both sides use.

Every message after the handshake is a 4-byte big-endian length followed by NUL-terminated
fields. Only the very first bytes a client sends differ: ``API\\0`` and then one framed field
``v<min>..<max>`` (optionally followed by `` +OPTIONS``) naming the protocol versions it speaks.
The server answers with exactly two fields (its version and the connection time); ib_insync
recognises the handshake reply by that count, so nothing else may be sent before it.
"""

import re
import struct
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from zoneinfo import ZoneInfo

#: Server versions whose message layouts this gateway writes. ib_insync 0.9.86 speaks
#: 157..176; the encoders below branch on the negotiated version where the layout changed.
MIN_SERVER_VERSION = 157
MAX_SERVER_VERSION = 176

#: IB's "unset" sentinels as they appear on the wire (Java's Double.MAX_VALUE and
#: Integer.MAX_VALUE). TWS writes this exact spelling for unset doubles in order states.
UNSET_DOUBLE = "1.7976931348623157E308"
UNSET_INTEGER = 2**31 - 1

#: The largest frame we accept from a client; TWS itself refuses anything above 16 MiB.
MAX_FRAME = 0xFFFFFF

HANDSHAKE_PREFIX = b"API\0"

#: The exchange time zone, spelled as IB spells it (contract details' timeZoneId).
EASTERN = ZoneInfo("US/Eastern")


class In(IntEnum):
    """Request ids a client sends (EClient)."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCT_DATA = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_MKT_DEPTH = 10
    CANCEL_MKT_DEPTH = 11
    REQ_NEWS_BULLETINS = 12
    CANCEL_NEWS_BULLETINS = 13
    SET_SERVER_LOGLEVEL = 14
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_FA = 18
    REPLACE_FA = 19
    REQ_HISTORICAL_DATA = 20
    EXERCISE_OPTIONS = 21
    REQ_SCANNER_SUBSCRIPTION = 22
    CANCEL_SCANNER_SUBSCRIPTION = 23
    REQ_SCANNER_PARAMETERS = 24
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_REAL_TIME_BARS = 50
    CANCEL_REAL_TIME_BARS = 51
    REQ_FUNDAMENTAL_DATA = 52
    CANCEL_FUNDAMENTAL_DATA = 53
    REQ_CALC_IMPLIED_VOLAT = 54
    REQ_CALC_OPTION_PRICE = 55
    CANCEL_CALC_IMPLIED_VOLAT = 56
    CANCEL_CALC_OPTION_PRICE = 57
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    VERIFY_REQUEST = 65
    VERIFY_MESSAGE = 66
    QUERY_DISPLAY_GROUPS = 67
    SUBSCRIBE_TO_GROUP_EVENTS = 68
    UPDATE_DISPLAY_GROUP = 69
    UNSUBSCRIBE_FROM_GROUP_EVENTS = 70
    START_API = 71
    VERIFY_AND_AUTH_REQUEST = 72
    VERIFY_AND_AUTH_MESSAGE = 73
    REQ_POSITIONS_MULTI = 74
    CANCEL_POSITIONS_MULTI = 75
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_SEC_DEF_OPT_PARAMS = 78
    REQ_SOFT_DOLLAR_TIERS = 79
    REQ_FAMILY_CODES = 80
    REQ_MATCHING_SYMBOLS = 81
    REQ_MKT_DEPTH_EXCHANGES = 82
    REQ_SMART_COMPONENTS = 83
    REQ_NEWS_ARTICLE = 84
    REQ_NEWS_PROVIDERS = 85
    REQ_HISTORICAL_NEWS = 86
    REQ_HEAD_TIMESTAMP = 87
    REQ_HISTOGRAM_DATA = 88
    CANCEL_HISTOGRAM_DATA = 89
    CANCEL_HEAD_TIMESTAMP = 90
    REQ_MARKET_RULE = 91
    REQ_PNL = 92
    CANCEL_PNL = 93
    REQ_PNL_SINGLE = 94
    CANCEL_PNL_SINGLE = 95
    REQ_HISTORICAL_TICKS = 96
    REQ_TICK_BY_TICK_DATA = 97
    CANCEL_TICK_BY_TICK_DATA = 98
    REQ_COMPLETED_ORDERS = 99
    REQ_WSH_META_DATA = 100
    CANCEL_WSH_META_DATA = 101
    REQ_WSH_EVENT_DATA = 102
    CANCEL_WSH_EVENT_DATA = 103
    REQ_USER_INFO = 104
    # The loopback gateway's own, no id of IB's: move a symbol's simulated price (``control``).
    SIMULATE_PRICE = 9001


class Out(IntEnum):
    """Message ids the server sends (EDecoder)."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERR_MSG = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    POSITION_MULTI = 71
    POSITION_MULTI_END = 72
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    SYMBOL_SAMPLES = 79
    TICK_REQ_PARAMS = 81
    NEWS_PROVIDERS = 85
    HEAD_TIMESTAMP = 88
    COMPLETED_ORDER = 101
    COMPLETED_ORDERS_END = 102
    USER_INFO = 107
    SIMULATED_PRICE = 9001  # the answer to In.SIMULATE_PRICE: symbol, price now


class ProtocolError(Exception):
    """The peer sent something that is not the TWS API; the connection is dropped."""


# --- framing --------------------------------------------------------------------------------


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its 4-byte big-endian length."""
    return struct.pack(">I", len(payload)) + payload


def encode(*fields) -> bytes:
    """One framed message from already-ordered fields (see :func:`fmt` for the value forms)."""
    return frame("".join(fmt(value) + "\0" for value in fields).encode())


def decode(payload: bytes) -> list[str]:
    """Split one frame's payload into its fields (the trailing NUL leaves an empty last item)."""
    fields = payload.decode(errors="replace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


_VERSION_RANGE = re.compile(r"^v(\d+)(?:\.\.(\d+))?")


def parse_version_range(text: str) -> tuple[int, int]:
    """``"v157..176 +PACEAPI"`` -> (157, 176); a single ``"v100"`` means exactly that one."""
    match = _VERSION_RANGE.match(text.strip())
    if not match:
        raise ProtocolError(f"not a TWS API version range: {text!r}")
    low = int(match.group(1))
    return low, int(match.group(2) or low)


def negotiate(low: int, high: int) -> int:
    """The server version to answer: the highest both sides speak.

    A client that speaks nothing we write still gets our highest version, as TWS does: the
    client then disconnects with its own "version must be >= ..." message, which is clearer
    than a connection that silently closes.
    """
    version = min(high, MAX_SERVER_VERSION)
    if version < max(low, MIN_SERVER_VERSION):
        return MAX_SERVER_VERSION
    return version


# --- field values ---------------------------------------------------------------------------


def fmt_decimal(value: Decimal) -> str:
    """A Decimal in plain notation without trailing zeros: 10 -> "10", 185.50 -> "185.5"."""
    if not value.is_finite():
        raise ValueError(f"cannot send {value!r}")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("", "-0"):
        return "0"
    return text


def fmt(value) -> str:
    """The wire text of one field value.

    Trap: booleans must be "1"/"0" — ib_insync parses them with ``bool(int(v))``, so "true"
    would break the decoding of a whole message. ``None`` is an empty field (IB's "unset").
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return fmt_decimal(value)
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if "\0" in text:
        raise ValueError("a field cannot contain NUL")
    return text


def price_text(value: float) -> str:
    """A float price with at most 4 decimals and no float noise."""
    return fmt_decimal(Decimal(f"{value:.4f}"))


class Fields:
    """A cursor over a request's fields with IB's lenient number parsing (empty = unset)."""

    def __init__(self, fields: list[str]):
        self.fields = fields
        self.pos = 0

    def __len__(self):
        return len(self.fields)

    @property
    def remaining(self) -> int:
        return max(0, len(self.fields) - self.pos)

    def text(self) -> str:
        value = self.fields[self.pos] if self.pos < len(self.fields) else ""
        self.pos += 1
        return value

    def skip(self, count: int = 1) -> None:
        self.pos += count

    def integer(self, default: int = 0) -> int:
        value = self.text().strip()
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            return int(float(value))

    def real(self, default: float | None = None) -> float | None:
        value = self.text().strip()
        if not value:
            return default
        number = float(value)
        return default if number >= 1.7e308 else number

    def decimal(self, default: Decimal | None = None) -> Decimal | None:
        """A Decimal from the exact text sent (so "185.5" stays 185.5); unset -> ``default``."""
        value = self.text().strip()
        if not value:
            return default
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
        if not number.is_finite() or abs(number) >= Decimal("1.7e308"):
            return default
        return number

    def flag(self) -> bool:
        value = self.text().strip().lower()
        return value in ("1", "true")

    def contract(self) -> "ContractQuery":
        """The 12 contract fields every request carries, in EClient's order.

        Trap: requests put ``primaryExchange`` between exchange and currency; the contract in
        *server* messages (orders, executions) has no primaryExchange at all.
        """
        return ContractQuery(
            con_id=self.integer(),
            symbol=self.text(),
            sec_type=self.text(),
            last_trade=self.text(),
            strike=self.text(),
            right=self.text(),
            multiplier=self.text(),
            exchange=self.text(),
            primary_exchange=self.text(),
            currency=self.text(),
            local_symbol=self.text(),
            trading_class=self.text(),
        )


@dataclass(frozen=True)
class ContractQuery:
    """A contract as a client describes it in a request (anything may be empty)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade: str = ""
    strike: str = ""
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""


# --- date and time texts --------------------------------------------------------------------


def ib_datetime(moment: datetime, zone: ZoneInfo = EASTERN) -> str:
    """IB's "20231124 09:30:00 US/Eastern" form (ib_insync reads the zone name back)."""
    return moment.astimezone(zone).strftime("%Y%m%d %H:%M:%S ") + zone.key


def ib_date(day: date) -> str:
    return day.strftime("%Y%m%d")


def parse_ib_datetime(text: str, default_zone: ZoneInfo = EASTERN) -> datetime | None:
    """Parse the end/filter times clients send; None for an empty text.

    Accepted: "20231124 16:00:00 UTC" / "... US/Eastern" (zone name), "20231124-16:00:00"
    (the dash form is UTC by IB's definition), "20231124 16:00:00" and "20231124" (both in
    the exchange zone, as TWS reads them when no zone is given).
    """
    text = text.strip()
    if not text:
        return None
    if "-" in text and len(text) == 17 and text[8] == "-":
        moment = datetime.strptime(text, "%Y%m%d-%H:%M:%S")
        return moment.replace(tzinfo=UTC)
    parts = text.split()
    if len(parts) == 1:
        day = datetime.strptime(parts[0], "%Y%m%d")
        return day.replace(hour=23, minute=59, second=59, tzinfo=default_zone)
    moment = datetime.strptime(parts[0] + " " + parts[1], "%Y%m%d %H:%M:%S")
    if len(parts) >= 3:
        zone_name = parts[2]
        zone = UTC if zone_name.upper() in ("UTC", "GMT") else ZoneInfo(zone_name)
        return moment.replace(tzinfo=zone)
    return moment.replace(tzinfo=default_zone)
