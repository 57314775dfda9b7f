"""Configuration, read once at the edge (CLI entry, `create_app`) and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ImportSettings(BaseModel):
    """Limits on imported files."""

    max_file_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    """Largest file `rca import` reads; bigger files are refused."""


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
    imports: ImportSettings = Field(default_factory=ImportSettings)
    """Limits on imported files."""

    def effective_database_url(self) -> str:
        """The configured database URL, or the SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'rca.db').resolve()}"
