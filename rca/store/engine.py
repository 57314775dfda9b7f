"""The system of record's schema and engine: SQLite by default, PostgreSQL by URL.

SQLite is set up for durability: WAL journal, `synchronous=FULL`, foreign keys on, a busy
timeout, and explicit transactions (`BEGIN IMMEDIATE` for writers, so two writers queue on the
lock instead of failing half-way, behind our own writer lock). PostgreSQL (psycopg 3) takes no
such lock: writers run side by side at READ COMMITTED, and what SQLite's single writer gave for
free comes from row locks (`FOR UPDATE`, `SKIP LOCKED` for claiming work), unique constraints
(a collision is a `Conflict`, never a duplicate) and `insert_or_wait`; its pool size and
statement timeout are settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from rca.config import Settings
from rca.errors import StoreUnavailable
from rca.store.sqlite_lock import writer_lock

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored as UTC; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive timestamps are not stored")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 - fixed signature
    ) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


ID = String(128)

incidents = Table(
    "incidents",
    metadata,
    Column("id", ID, primary_key=True),
    Column("title", Text, nullable=False),
    Column("severity", String(8), nullable=False),
    Column("started_at", UTCDateTime, nullable=False, index=True),
    Column("content_hash", String(64), nullable=False),
    Column("document", Text, nullable=False),
    Column("revision", Integer, nullable=False, server_default="1"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

postmortems = Table(
    "postmortems",
    metadata,
    Column("id", ID, primary_key=True),
    Column("latest_revision", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("date", Date, nullable=True, index=True),
    Column("severity", String(8), nullable=True),
    Column("incident_id", ID, nullable=True, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

postmortem_revisions = Table(
    "postmortem_revisions",
    metadata,
    Column(
        "postmortem_id",
        ID,
        ForeignKey("postmortems.id", ondelete="RESTRICT"),
        primary_key=True,
    ),
    Column("revision", Integer, primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("document", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


# The list orders: incidents newest first, dated postmortems newest first; then by id.
Index("ix_incidents_started_desc_id", incidents.c.started_at.desc(), incidents.c.id)
Index("ix_postmortems_date_desc_id", postmortems.c.date.desc(), postmortems.c.id)


index_outbox = Table(
    "index_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("postmortem_id", ID, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
"""Postmortem revisions waiting to be indexed; written in the same transaction as the revision."""

index_state = Table(
    "index_state",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
"""Small facts about derived indexes, such as which vector collection is active for a model."""


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook issue BEGIN itself (pysqlite's own is unreliable).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return on_connect


def _sqlite_begin(conn: Connection) -> None:
    writer = conn.get_execution_options().get("rca_writer", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def make_engine(settings: Settings) -> Engine:
    """An engine for the configured database; creates the data directory for SQLite."""
    url = settings.effective_database_url()
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # One pooled connection per server thread (anyio's pool has 40): a pool smaller than
        # the thread count opens and closes an overflow connection, with its pragmas, per
        # request under load.
        engine = create_engine(url, pool_size=settings.sqlite_pool_size, max_overflow=8)
        event.listen(engine, "connect", _sqlite_pragmas(settings.sqlite_busy_timeout_ms))
        event.listen(engine, "begin", _sqlite_begin)
    else:
        # Every session in UTC; a statement (lock waits included) longer than the timeout is
        # cancelled, so a stuck writer cannot hold a request thread forever. No ping before
        # each use (a round trip per transaction, a third of a short read): a connection found
        # cut fails its one statement (503 to a request, retried by lease holders) and makes
        # the pool replace every connection opened before it.
        options = f"-c timezone=UTC -c statement_timeout={settings.postgres_statement_timeout_ms}"
        engine = create_engine(
            url,
            pool_size=settings.postgres_pool_size,
            max_overflow=8,
            connect_args={"options": options},
        )
        event.listen(engine, "before_cursor_execute", _without_nul, retval=True)
    return engine


NUL_SHOWN_AS = "\u2400"
"""What a NUL character in a text value becomes on PostgreSQL, whose text cannot hold one:
the symbol pages show for it anyway. Documents are JSON, where a NUL is escaped and kept."""


def _without_nul(
    _conn: Connection,
    _cursor: Any,
    statement: str,
    parameters: Any,
    _context: Any,
    _executemany: bool,
) -> tuple[str, Any]:
    def clean(value: Any) -> Any:
        return value.replace("\x00", NUL_SHOWN_AS) if isinstance(value, str) else value

    if isinstance(parameters, dict):
        return statement, {k: clean(v) for k, v in parameters.items()}
    if isinstance(parameters, list | tuple):
        return statement, type(parameters)(
            {k: clean(v) for k, v in p.items()} if isinstance(p, dict) else clean(p)
            for p in parameters
        )
    return statement, parameters


_MIGRATION_LOCK = 0x7263612D6D696772  # "rca-migr": the PostgreSQL advisory lock's key


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest migration."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        # Processes starting together on a new database: one migrates at a time (SQLite: in
        # the writer queue, not a busy timeout a slow migration outlasts); the rest find it done.
        with writer_lock(engine), engine.connect().execution_options(rca_writer=True) as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
    except SQLAlchemyError as err:
        raise StoreUnavailable(f"cannot migrate the database: {type(err).__name__}: {err}") from err


_OPEN_WRITES: ContextVar[dict[Engine, Connection] | None] = ContextVar("writes", default=None)
"""The write transactions this thread (or task) has open, by engine."""


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: all of it commits, or none of it. Inside another one of the same
    engine and thread it joins that one as a savepoint (a failure undoes only its own writes),
    so a write and its record, such as an idempotent request's answer, commit together."""
    open_writes = _OPEN_WRITES.get() or {}
    outer = open_writes.get(engine)
    if outer is not None:
        with outer.begin_nested():
            yield outer
        return
    with (
        writer_lock(engine),
        engine.connect().execution_options(rca_writer=True) as conn,
        conn.begin(),
    ):
        token = _OPEN_WRITES.set({**open_writes, engine: conn})
        try:
            yield conn
        finally:
            _OPEN_WRITES.reset(token)


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """One SQLite transaction (one snapshot); on PostgreSQL, autocommit statements, each
    seeing what was committed when it began (as READ COMMITTED did), without BEGIN/COMMIT."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        with (conn if sqlite else conn.execution_options(isolation_level="AUTOCOMMIT")).begin():
            yield conn


api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)
"""API keys: the public id is the key's prefix; only a hash of the secret part is kept."""

drafts = Table(
    "drafts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("incident_id", ID, ForeignKey("incidents.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Float, nullable=False),
    Column("message", Text, nullable=False),
    Column("model", String(200), nullable=False),
    Column("requested_by", String(100), nullable=False),
    Column("requested_key", String(32), nullable=True),
    Column("incident_revision", Integer, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("lease_owner", String(100), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("deadline_at", UTCDateTime, nullable=False),
    Column("error", Text, nullable=True),
    Column("retryable", Boolean, nullable=False),
    Column("document", Text, nullable=True),
    Column("version", Integer, nullable=False),
    Column("finalized_postmortem_id", ID, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
"""Draft jobs and, once done, the draft itself (`document`); `version` is the review ETag;
`requested_key` is the API key that asked (none from the command line); `incident_revision` the
state of the incident the draft was written from."""
Index("ix_drafts_status", drafts.c.status, drafts.c.created_at)
Index("ix_drafts_incident_id", drafts.c.incident_id)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("draft_id", ID, ForeignKey("drafts.id"), nullable=False),
    Column("suggestion_id", ID, nullable=False),
    Column("reviewer", String(100), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("original", Text, nullable=False),
    Column("edited", Text, nullable=True),
    Column("draft_version", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)
"""Every review decision, with the content before and after."""
Index("ix_reviews_draft_id", reviews.c.draft_id)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(32), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("body", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)
"""Idempotent requests: in flight, or done with the stored response."""

action_status = Table(
    "action_status",
    metadata,
    Column("postmortem_id", ID, ForeignKey("postmortems.id"), primary_key=True),
    Column("item", Integer, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("updated_by", String(100), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
"""Follow-up status of action items by position, up to migration 0009; since then no longer
written (`action_items` holds it by a stable key), kept as the record of what was tracked."""

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(40), nullable=False),
    Column("target_type", String(40), nullable=False),
    Column("target_id", ID, nullable=False),
    Column("detail", Text, nullable=False),
)
"""Who created, edited, accepted, rejected or finalized what, and when."""
Index("ix_audit_log_target", audit_log.c.target_type, audit_log.c.target_id)


web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("key_id", String(32), ForeignKey("api_keys.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
"""Web UI sign-ins: the cookie's token (hashed), the API key it acts as, its CSRF token."""
Index("ix_web_sessions_expires_at", web_sessions.c.expires_at)
