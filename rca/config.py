"""Configuration, read once at the edge (CLI entry, `create_app`) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ImportSettings(BaseModel):
    """Limits on imported files."""

    max_file_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    """Largest file `rca import` reads; bigger files are refused."""


class RetrievalSettings(BaseModel):
    """Embeddings, the vector index and similar-incident search."""

    embedder: Literal["sentence-transformers", "fake", "remote"] = "sentence-transformers"
    """`fake`: a deterministic bag-of-words embedder for tests and demos (no model loaded);
    `remote`: ask the embedding service at `embedder_url` (`rca embedder serve`)."""
    embedder_url: str | None = None
    """Where the embedding service listens when `embedder` is `remote`: `http(s)://host:port`
    or the path of its Unix socket. `rca serve --workers N` (N >= 2) sets it for its
    processes."""
    embedder_timeout_s: float = Field(default=30.0, gt=0, le=600)
    """Longest wait for the embedding service's answer to one request."""
    model_dir: Path | None = None
    """A local sentence-transformers model directory; default: the bundled all-MiniLM-L6-v2."""
    int8: Literal["none", "queries", "all"] = "queries"
    """Run the embedding model with int8 linear layers: `queries` (the default) halves query
    latency against the same fp32 document vectors; `all` also speeds up indexing about 1.9x
    but moves P@5 more (and indexes into its own collection). See the README's benchmark."""
    query_threads: int = Field(default=1, ge=0, le=256)
    """PyTorch threads that encode queries (0: PyTorch's default, one per core); documents
    always use the default. Measured on 2 cores with int8 queries: one thread costs ~4 ms of
    CPU per query in a batch against ~6 ms with two, at the same wall time (11 ms for a query
    alone either way), so a busy server has that CPU for its requests."""
    chroma_url: str | None = None
    """URL of a Chroma server (`http://host:8000`); default: embedded, under the data directory."""
    chroma_database: str | None = Field(
        default=None, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$"
    )
    """The database on the Chroma server (created if missing), so teams can share a server;
    default: the server's `default_database`. Needs `chroma_url`."""
    index_lease_s: float = Field(default=120.0, ge=1.0, le=3600.0)
    """How long the vector index writer's lease in the database lasts unless renewed (it is
    renewed as the writer works): after a writer dies, another takes over this much later."""
    batch_size: int = Field(default=16, ge=1, le=1024)
    """Texts per embedding batch."""
    chunk_words: int = Field(default=180, ge=20, le=2000)
    """Longest chunk, in words (MiniLM reads at most 256 word pieces)."""
    candidates: int = Field(default=50, ge=10, le=10_000)
    """Postmortems each retriever proposes before fusion (at least as many as asked for)."""
    result_cache: int = Field(default=256, ge=0, le=100_000)
    """Search results each process keeps, for a search asked again before the index changes
    (same text or incident, k, filters and mode); 0 keeps none."""
    rrf_k: int = Field(default=60, ge=1)
    """Reciprocal-rank-fusion constant."""
    lexical_weight: float = Field(default=1.0, ge=0.0)
    """Weight of BM25 in the fusion."""
    dense_weight: float = Field(default=1.0, ge=0.0)
    """Weight of dense search in the fusion."""

    @field_validator("embedder_url")
    @classmethod
    def _embedder_url(cls, value: str | None) -> str | None:
        if value is None or value.startswith(("unix:/", "/")):
            return value
        if value.startswith(("http://", "https://")) and urlsplit(value).hostname:
            return value
        raise ValueError(
            "the embedding service's URL is http(s)://host:port or a Unix socket's absolute path"
        )

    @model_validator(mode="after")
    def _remote_needs_url(self) -> RetrievalSettings:
        if self.embedder == "remote" and not self.embedder_url:
            raise ValueError(
                "RCA_RETRIEVAL__EMBEDDER=remote needs RCA_RETRIEVAL__EMBEDDER_URL "
                "(where `rca embedder serve` listens)"
            )
        return self


class LlmSettings(BaseModel):
    """Which model drafts, and how it is called (through litellm)."""

    model: str = "local/qwen2.5-coder-0.5b"
    """Any litellm model string (`openai/gpt-4o-mini`, `ollama/qwen2.5`, ...) or the embedded
    `local/qwen2.5-coder-0.5b`, `local/qwen2.5-coder-1.5b`, `local/<path>.gguf`. Provider keys
    come from the provider's usual variables (`OPENAI_API_KEY`, ...). `CHOOSER+WRITER` splits
    the work: the first model chooses the trigger, root causes and chain, the second writes
    the summary, impact, factors, actions and lessons (`local/qwen2.5-coder-0.5b+local/
    qwen2.5-coder-1.5b`)."""
    fallbacks: list[str] = Field(default_factory=list)
    """Models to try, in order, when the model fails (JSON list)."""
    api_base: str | None = None
    """Base URL of an OpenAI-compatible server, for `openai/...` models served elsewhere."""
    timeout_s: float = Field(default=120.0, gt=0)
    """Longest wait for one model call (for a provider that stops answering, the longest
    silence: the wait for the connection, and for each part of the answer)."""
    max_retries: int = Field(default=1, ge=0, le=5)
    """Extra attempts per model on timeouts, rate limits, server errors and unusable answers
    (not JSON, cut off, no choices); then the next fallback is tried."""
    backoff_s: float = Field(default=2.0, ge=0, le=60)
    """Wait before retrying a model that gave no Retry-After; it doubles with each retry, up
    to `max_wait_s`."""
    max_wait_s: float = Field(default=30.0, ge=0, le=600)
    """Longest wait before a retry. A provider's Retry-After is honoured up to this; one asking
    for longer is not retried (the next fallback is tried at once)."""
    max_tokens: int = Field(default=1024, ge=1, le=32_768)
    """Default cap on the tokens one call may generate."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Sampling temperature (0: as repeatable as the provider allows)."""
    context_tokens: int = Field(default=8192, ge=512, le=131_072)
    """Context window of the embedded model."""
    threads: int | None = Field(default=None, ge=1, le=256)
    """CPU threads of the embedded model (default: all cores)."""
    concurrency: int = Field(default=4, ge=1, le=32)
    """Questions of one draft asked at the same time of a hosted model (the embedded model
    answers one at a time)."""
    evidence_tokens: int = Field(default=2_500, ge=200, le=100_000)
    """Token budget of the evidence block in drafting prompts."""
    own_words: bool | None = None
    """Whether the model words the root causes and chain steps it chooses, or only chooses
    (the chosen evidence lines are quoted). Default: hosted models word, the embedded model
    only chooses (its wording rarely survives validation and costs it ~13 s per draft)."""


class RedactionSettings(BaseModel):
    """What redaction removes besides secrets, e-mail addresses, phone and card numbers."""

    ip_addresses: bool = False
    """Also replace IPv4 and IPv6 addresses."""


class ApiSettings(BaseModel):
    """The HTTP service and its draft workers."""

    host: str = "127.0.0.1"
    """Interface `rca serve` listens on."""
    port: int = Field(default=8000, ge=1, le=65_535)
    """Port `rca serve` listens on."""
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1_024)
    """Largest request body accepted (413 beyond it)."""
    header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    """Longest wait for a request's headers, from the connection or from the first byte after
    the previous response; then the connection is closed (408 if part of a request came)."""
    body_timeout_s: float = Field(default=30.0, gt=0, le=3_600)
    """Longest wait for a request's body once its headers are in; then 408 and the connection
    is closed."""
    processes: int = Field(default=1, ge=1, le=64)
    """Server processes `rca serve` starts (each handles requests; one runs draft workers)."""
    warm_up: bool = True
    """Load the embedding model and the search index at start-up rather than on first use."""
    threads: int = Field(default=8, ge=1, le=256)
    """Threads serving requests that block (database, embedding); more only add contention."""
    read_threads: int = Field(default=2, ge=1, le=64)
    """Threads per process for short database reads on PostgreSQL (key lookups, single
    records, pages), apart from `threads`; more measured longer tails at 32 clients."""
    key_cache_s: float = Field(default=1.0, ge=0, le=300)
    """How long a server process trusts an API key it has just checked without reading the
    key again (one read a second under load instead of one a request). A key revoked through
    another process stops working there within this time; 0: read it on every request."""
    draft_workers: int = Field(default=1, ge=0, le=64)
    """Draft worker threads inside the server (0: drafts run only in `rca worker`)."""
    max_queued_drafts: int = Field(default=20, ge=1)
    """Draft jobs allowed to wait; beyond it, submissions get 429 with Retry-After."""
    max_queued_drafts_per_key: int = Field(default=5, ge=1)
    """Draft jobs one API key may have waiting, so one client cannot fill the queue (429)."""
    draft_deadline_s: int = Field(default=1_800, ge=10)
    """A draft job not finished this long after submission fails (retryable)."""
    lease_s: int = Field(default=120, ge=5)
    """How long a worker's claim on a job lasts without a progress report."""
    max_attempts: int = Field(default=2, ge=1, le=10)
    """Times a job is started before a lost worker makes it fail."""


class IntegrationSettings(BaseModel):
    """Webhooks from other tools and the change feed."""

    changes_before_s: int = Field(default=6 * 3_600, ge=0, le=30 * 86_400)
    """How long before an incident started a change on one of its services is attached to it
    as a candidate trigger."""
    changes_after_s: int = Field(default=300, ge=0, le=86_400)
    """How long after the start a change is still attached (clocks differ; a deploy takes a
    while to roll out)."""
    max_attached_changes: int = Field(default=20, ge=0, le=200)
    """The most changes attached to one incident (the latest ones)."""
    alertmanager: dict[str, Any] = Field(default_factory=dict)
    """How alert labels become severity, services and text (JSON; fields and defaults in
    `rca.integrations.alertmanager.LabelMapping`); an empty object keeps the defaults."""
    pagerduty: dict[str, Any] = Field(default_factory=dict)
    """How PagerDuty priorities and urgencies become severities (JSON; fields and defaults in
    `rca.integrations.pagerduty.PagerDutyMapping`)."""


class OutboundSettings(BaseModel):
    """Outbound webhooks: how rca's events are delivered to subscribers, and retried."""

    timeout_s: float = Field(default=10.0, gt=0, le=120)
    """Longest wait for a receiver to connect, take the body and answer (each step)."""
    max_attempts: int = Field(default=24, ge=1, le=100)
    """Attempts at one message before it is dead (an admin may retry it)."""
    base_backoff_s: float = Field(default=10.0, gt=0, le=3_600)
    """Wait after the first failed attempt; it doubles with each further one (with jitter)."""
    max_backoff_s: float = Field(default=3_600.0, gt=0, le=86_400)
    """The longest wait between two attempts."""
    max_age_s: int = Field(default=2 * 86_400, ge=1, le=30 * 86_400)
    """A message still undelivered this long after it was queued (or retried by hand) is
    dead."""
    poll_s: float = Field(default=1.0, gt=0, le=60)
    """How often an idle sender looks for messages due."""
    senders: int = Field(default=1, ge=0, le=16)
    """Sender threads in each server process and in `rca worker` (0: none there)."""
    digest_every_s: int = Field(default=7 * 86_400, ge=0, le=31 * 86_400)
    """Length of a digest period: when one ends, a `digest.ready` event with the digest of the
    period is queued once for the subscriptions wanting it (0: no digest events). Periods are
    counted from Monday 1970-01-05 00:00 UTC, so a week runs Monday to Monday."""
    digest_offset_s: int = Field(default=0, ge=0, le=31 * 86_400)
    """Shift of the period boundaries from midnight UTC (32_400: weeks from Monday 09:00 UTC)."""

    @field_validator("digest_every_s")
    @classmethod
    def _whole_hours(cls, value: int) -> int:
        if value and (value < 3_600 or value % 3_600):
            raise ValueError("a digest period is 0 (off) or a whole number of hours")
        return value


class ActionSettings(BaseModel):
    """Follow-up of action items: when each is due unless a reviewer sets a date."""

    must_days: int = Field(default=14, ge=1, le=3_650)
    """A must-have is due this many days after it first appeared (finalized or imported)."""
    should_days: int = Field(default=30, ge=1, le=3_650)
    """A should-have is due this many days after it first appeared."""
    could_days: int = Field(default=90, ge=1, le=3_650)
    """A could-have is due this many days after it first appeared (a won't-have has no
    default due date)."""


class Settings(BaseSettings):
    """Every setting rca reads. Environment variables use the `RCA_` prefix and `__` for groups."""

    model_config = SettingsConfigDict(
        env_prefix="RCA_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    data_dir: Path = Path(".rca")
    """Directory holding all state: database, index, models."""
    database_url: str | None = None
    """SQLAlchemy URL of the system of record; default: SQLite `rca.db` in the data directory."""
    sqlite_busy_timeout_ms: int = Field(default=5_000, ge=0)
    """How long a SQLite writer waits for a lock before failing."""
    sqlite_pool_size: int = Field(default=48, ge=1, le=512)
    """SQLite connections kept open (at least the server's request and worker threads)."""
    postgres_pool_size: int = Field(default=10, ge=1, le=512)
    """PostgreSQL connections kept open per process (up to 8 more are opened under load)."""
    postgres_statement_timeout_ms: int = Field(default=30_000, ge=0)
    """Longest a PostgreSQL statement may run, lock waits included, before it is cancelled and
    its transaction undone (0: no limit)."""
    imports: ImportSettings = Field(default_factory=ImportSettings)
    """Limits on imported files."""
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    """Embeddings, vector index and search."""
    llm: LlmSettings = Field(default_factory=LlmSettings)
    """Which model drafts and how it is called."""
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    """What is redacted before text leaves rca."""
    api: ApiSettings = Field(default_factory=ApiSettings)
    """The HTTP service."""
    integrations: IntegrationSettings = Field(default_factory=IntegrationSettings)
    """Webhooks from Alertmanager, PagerDuty and GitHub; the change feed."""
    outbound: OutboundSettings = Field(default_factory=OutboundSettings)
    """Outbound webhooks: delivery, retries and backoff."""
    actions: ActionSettings = Field(default_factory=ActionSettings)
    """Action items: default due dates by priority."""

    def effective_database_url(self) -> str:
        """The configured database URL, or the SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'rca.db').resolve()}"
