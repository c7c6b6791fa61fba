"""The seed specification (seeds 000 and 001, and seed 004's bar store) as a SQLAlchemy
``MetaData``, written by hand.

This is the yardstick the live database is measured against (``check_schema``, startup). It is
deliberately not generated from the Django models: a model or migration that drifts from the
seeds then shows up as a problem instead of silently moving the yardstick. It holds the seed
tables, the seed columns, the seed foreign keys and unique constraints, and seed 000's index
list, nothing of our own (extra columns, indexes and constraints are allowed in the database).
Nullability follows the models. Precisions are those of tradingsite/fields.py: change both
together.

Index and unique constraint names are the ones Django gives the same objects, so that a
database created from this metadata (as the seed system's Alembic migrations create it) and
adopted with ``migrate --fake-initial`` carries the names later Django migrations look for.
Foreign keys stay unnamed: Django's names carry a hash, and it finds them by their columns.

The CHECK constraints are kept apart, in ``ALLOWED_VALUES`` (enumerations) and
``REQUIRED_CHECKS`` (seed 004's rules on a bar's prices): the seed system created none, so a
database built from this metadata has none until our later migrations add them.

Seed 004 (the sister system's bar store) is a second reference, ``bar_store_metadata``:
``ohlcv_bars`` and ``data_sync_log``, whose ``ticker_id`` names our ``code`` (seed 004's
``tickers``), and ``code.name`` / ``code.is_active``. It is apart because a database the seed
system (000/001) created has none of it: our migrations add it after adoption.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

PRICE = Numeric(18, 6)
QUANTITY = Numeric(18, 4)
MONEY = Numeric(20, 6)
RATIO = Numeric(18, 6)

metadata = MetaData()


def _id():
    return Column("id", BigInteger, primary_key=True)


def _moment(name, *, nullable=False):
    return Column(name, DateTime(timezone=True), nullable=nullable)


Table(
    "workflow",
    metadata,
    _id(),
    Column("name", String(200), nullable=False),
    Column("type", String(32), nullable=False),
    Column("steps", JSONB, nullable=False),
    Column("default_params", JSONB, nullable=False),
    _moment("created_at"),
    _moment("updated_at"),
)

Table(
    "strategy",
    metadata,
    _id(),
    Column("name", String(200), nullable=False),
    Column("type", String(32), nullable=False),
    Column("param", JSONB, nullable=False),
    _moment("created_at"),
    _moment("updated_at"),
    # Seed 001: NULL means the legacy inline workflow.
    Column("workflow_id", BigInteger, ForeignKey("workflow.id"), nullable=True),
)

Table(
    "code",
    metadata,
    _id(),
    Column("symbol", String(32), nullable=False),
    Column("conid", Integer, nullable=False),
    Column("exchange", String(32), nullable=False),
    _moment("created_at"),
    _moment("updated_at"),
    # Seed 000 lists "code.conid (unique)" among the indexes; PostgreSQL backs it with one.
    UniqueConstraint("conid", name="code_conid_key"),
    Index("ix_code_symbol", "symbol"),
)

Table(
    "strategy_codes",
    metadata,
    _id(),
    Column("strategy_id", BigInteger, ForeignKey("strategy.id"), nullable=False),
    Column("code_id", BigInteger, ForeignKey("code.id"), nullable=False),
    UniqueConstraint("strategy_id", "code_id", name="uq_strategy_codes_strategy_code"),
)

Table(
    "market_data",
    metadata,
    _id(),
    # A plain contract id: bars may be cached for a contract that has no code row.
    Column("conid", Integer, nullable=False),
    Column("period", String(16), nullable=False),
    Column("bar", String(16), nullable=False),
    Column("data", JSONB, nullable=False),
    _moment("created_at"),
    Index("ix_market_data_cache_key", "conid", "period", "bar"),
)

Table(
    "decision",
    metadata,
    _id(),
    Column("code_id", BigInteger, ForeignKey("code.id"), nullable=False),
    Column("strategy_id", BigInteger, ForeignKey("strategy.id"), nullable=False),
    Column("type", String(8), nullable=False),
    Column("current_price", PRICE, nullable=False),
    Column("target_price", PRICE, nullable=True),
    Column("stop_loss", PRICE, nullable=True),
    Column("profit_margin", RATIO, nullable=True),
    Column("r_coefficient", RATIO, nullable=True),
    Column("analysis_text", Text, nullable=False),
    _moment("created_at"),
    Index("ix_decision_code_id", "code_id"),
    Index("ix_decision_strategy_id", "strategy_id"),
    Index("ix_decision_created_at", "created_at"),
)

# orders, trades and positions keep conid as a plain column, without a foreign key: the broker
# may report a contract before it is stored as a code.
Table(
    "orders",
    metadata,
    _id(),
    Column("decision_id", BigInteger, ForeignKey("decision.id"), nullable=True),
    Column("ibkr_order_id", Integer, nullable=True),
    Column("conid", Integer, nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", QUANTITY, nullable=False),
    Column("price", PRICE, nullable=True),
    # Widened from seed 000's LMT/MKT (String(3)) to IB's STP, STP LMT and TRAIL (seed 003).
    Column("order_type", String(7), nullable=False),
    Column("tif", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    _moment("created_at"),
    _moment("updated_at"),
    Index("ix_orders_ibkr_order_id", "ibkr_order_id"),
    Index("ix_orders_status", "status"),
    Index("ix_orders_created_at", "created_at"),
)

Table(
    "trades",
    metadata,
    _id(),
    Column("order_id", BigInteger, ForeignKey("orders.id"), nullable=False),
    Column("conid", Integer, nullable=False),
    Column("entry_price", PRICE, nullable=False),
    Column("entry_quantity", QUANTITY, nullable=False),
    _moment("entry_date"),
    Column("exit_price", PRICE, nullable=True),
    Column("exit_quantity", QUANTITY, nullable=True),
    _moment("exit_date", nullable=True),
    Column("realized_pnl", MONEY, nullable=True),
    _moment("created_at"),
    _moment("updated_at"),
    Index("ix_trades_order_id", "order_id"),
)

Table(
    "positions",
    metadata,
    _id(),
    Column("conid", Integer, nullable=False),
    Column("quantity", QUANTITY, nullable=False),
    Column("average_cost", PRICE, nullable=False),
    Column("current_price", PRICE, nullable=True),
    Column("unrealized_pnl", MONEY, nullable=True),
    _moment("updated_at"),
    Index("ix_positions_conid", "conid"),
)

Table(
    "workflow_versions",
    metadata,
    _id(),
    Column("workflow_id", BigInteger, ForeignKey("workflow.id"), nullable=False),
    Column("version_number", Integer, nullable=False),
    Column("steps", JSONB, nullable=False),
    _moment("created_at"),
    Column("created_by", String(150), nullable=True),
)

Table(
    "workflow_execution",
    metadata,
    _id(),
    Column("workflow_id", BigInteger, ForeignKey("workflow.id"), nullable=True),
    Column("strategy_id", BigInteger, ForeignKey("strategy.id"), nullable=False),
    Column("task_id", String(255), nullable=True),
    Column("status", String(16), nullable=False),
    _moment("started_at", nullable=True),
    _moment("completed_at", nullable=True),
    Column("results", JSONB, nullable=False),
    Column("error_message", Text, nullable=True),
)

Table(
    "agent_conversations",
    metadata,
    _id(),
    Column(
        "workflow_execution_id", BigInteger, ForeignKey("workflow_execution.id"), nullable=False
    ),
    Column("agent_name", String(100), nullable=False),
    Column("message_type", String(16), nullable=False),
    Column("message_content", Text, nullable=False),
    _moment("timestamp"),
    Column("tokens_used", Integer, nullable=True),
)

Table(
    "workflow_metrics",
    metadata,
    _id(),
    Column("workflow_id", BigInteger, ForeignKey("workflow.id"), nullable=False),
    Column("date", Date, nullable=False),
    Column("metrics", JSONB, nullable=False),
)

# --- Seed 004: the bar store ----------------------------------------------------------------

bar_store_metadata = MetaData()

Table(
    "code",
    bar_store_metadata,
    _id(),
    # Seed 004's ticker metadata.
    Column("name", String(255), nullable=False),
    Column("is_active", Boolean, nullable=False),
)

Table(
    "ohlcv_bars",
    bar_store_metadata,
    _id(),
    Column("ticker_id", BigInteger, ForeignKey("code.id"), nullable=False),
    Column("timeframe", String(10), nullable=False),
    _moment("timestamp"),
    *(Column(price, Double, nullable=False) for price in ("open", "high", "low", "close")),
    Column("volume", BigInteger, nullable=False),
    Column("trade_count", Integer, nullable=True),
    Column("source", String(20), nullable=False),
    _moment("created_at"),
    UniqueConstraint("ticker_id", "timeframe", "timestamp", name="uq_ohlcv_ticker_timeframe_ts"),
    Index("ix_ohlcv_ticker_timeframe_ts", "ticker_id", "timeframe", "timestamp"),
    Index("ix_ohlcv_timestamp", "timestamp"),
)

Table(
    "data_sync_log",
    bar_store_metadata,
    _id(),
    Column("ticker_id", BigInteger, ForeignKey("code.id"), nullable=False),
    Column("timeframe", String(10), nullable=False),
    _moment("last_synced_timestamp", nullable=True),
    _moment("first_synced_timestamp", nullable=True),
    _moment("last_sync_at"),
    Column("bars_fetched", Integer, nullable=False),
    Column("total_bars", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("error_message", Text, nullable=True),
)

#: Every reference the live database is measured against.
REFERENCES = (metadata, bar_store_metadata)

TIMEFRAMES = frozenset({"1Min", "5Min", "15Min", "30Min", "1Hour", "1Day", "1Week"})

# The values the seeds enumerate, which the database must enforce with a CHECK constraint.
ALLOWED_VALUES = {
    ("decision", "type"): frozenset({"buy", "sell", "hold"}),
    ("orders", "side"): frozenset({"BUY", "SELL"}),
    ("orders", "order_type"): frozenset({"LMT", "MKT", "STP", "STP LMT", "TRAIL"}),
    ("orders", "tif"): frozenset({"GTC", "DAY"}),
    ("orders", "status"): frozenset(
        {"submitted", "partially_filled", "filled", "cancelled", "rejected"}
    ),
    ("workflow", "type"): frozenset(
        {"two_indicator", "three_indicator", "autogen_multi_agent", "custom"}
    ),
    ("workflow_execution", "status"): frozenset(
        {"pending", "running", "completed", "failed", "cancelled"}
    ),
    ("agent_conversations", "message_type"): frozenset({"request", "response"}),
    # Seed 004's timeframes and sources, with the IB bar sizes and sources the store adds.
    ("ohlcv_bars", "timeframe"): TIMEFRAMES,
    ("ohlcv_bars", "source"): frozenset({"ib", "csv_import", "parquet_import", "aggregated"}),
    ("data_sync_log", "timeframe"): TIMEFRAMES,
    ("data_sync_log", "status"): frozenset({"success", "partial", "failed"}),
}

# Seed 004's "Data Integrity" rules on a bar, as PostgreSQL spells each CHECK's condition.
REQUIRED_CHECKS = {
    "ohlcv_bars": frozenset(
        {
            "high >= low",
            "high >= open",
            "high >= close",
            "low <= open",
            "low <= close",
            "open > 0",
            "high > 0",
            "low > 0",
            "close > 0",
            "volume >= 0",
        }
    ),
}
