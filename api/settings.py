"""Settings: one object read from ``OSTINATO_*`` environment variables (and an optional ``.env`` file).

A wrong setting stops start-up with one line that names it (:class:`SettingsError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.errors import OstinatoError

DEFAULT_DATABASE_FILE = "ostinato.db"
SUPPORTED_DATABASES = ("sqlite+aiosqlite://", "postgresql+asyncpg://", "memory://")


class SettingsError(OstinatoError):
    """Raised when a setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OSTINATO_", env_file=None, extra="ignore", frozen=True)

    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{DEFAULT_DATABASE_FILE}",
        description="Where runs are recorded: sqlite+aiosqlite:///file.db, postgresql+asyncpg://…, or memory://",
    )
    database_pool_size: int = Field(
        default=5, ge=1, le=1000,
        description="PostgreSQL connections each process keeps open (an API process opens them as it starts); bursts "
        "open up to 10 more, closed as they are returned. Give an API process at least as many as the requests it "
        "serves at once",
    )
    broker_url: str = Field(default="", description="Empty: in-process broker; redis://… or amqp://…")
    planner: Literal["deterministic", "openai"] = "deterministic"
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"),
        description="The key of the OpenAI-compatible server (OPENAI_API_KEY, no prefix); needed when planner is openai",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    worker_threads: int = Field(default=8, ge=1, le=256)
    worker_continue_locally: bool = Field(
        default=True,
        description="A worker starts the runs its recording made ready at once (a workflow's next step) itself, as "
        "many as the batch it finished, instead of sending them through the broker; the others are sent",
    )
    handler_modules: str = Field(
        default="examples.hello",
        description="Comma-separated modules whose @handler functions workers may run",
    )
    scheduler_batch: int = Field(default=500, ge=1, le=10_000, description="Endpoints claimed per scheduler batch")
    scheduler_lease_s: float = Field(default=30.0, gt=0, description="Seconds a claim holds an endpoint")
    scheduler_max_sleep_s: float = Field(default=1.0, gt=0, le=60)
    scheduler_lookahead_ms: float = Field(
        default=100.0, ge=0, le=1000,
        description="How far ahead a scheduler fires endpoints; a worker starts each run at its slot (0: off)",
    )
    heartbeat_timeout_s: float = Field(
        default=30.0, ge=0.5, le=3600,
        description="Seconds without a heartbeat after which a running run's worker is taken for dead and the run "
        "expired; workers beat every third of it (at most every 5 s); set the same value on schedulers and workers",
    )
    api_tokens: SecretStr = Field(
        default=SecretStr(""),
        description="Optional API tokens held only in the process: tenant:role:secret, comma-separated",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("postgresql://"):
            value = "postgresql+asyncpg://" + value.removeprefix("postgresql://")
        if value.startswith("sqlite:///"):
            value = "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        if not value.startswith(SUPPORTED_DATABASES):
            raise ValueError(f"must start with one of {', '.join(SUPPORTED_DATABASES)}")
        return value

    @field_validator("api_tokens")
    @classmethod
    def _well_formed_tokens(cls, value: SecretStr) -> SecretStr:
        from services.tokens import parse_configured_tokens

        parse_configured_tokens(value.get_secret_value())  # raises ValueError naming the entry, not the secret
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("redis://", "rediss://", "amqp://", "amqps://")):
            raise ValueError("must be empty (in-process), redis://… or amqp://…")
        return value

    @property
    def handler_module_list(self) -> list[str]:
        return [name.strip() for name in self.handler_modules.split(",") if name.strip()]

    @property
    def database_kind(self) -> str:
        return self.database_url.split(":", 1)[0].split("+", 1)[0]


def load_settings(env_file: str | Path | None = None, **values: object) -> Settings:
    """Read settings from the environment (and ``env_file``); raise :class:`SettingsError` naming the bad one."""
    try:
        return Settings(_env_file=env_file, **values)  # type: ignore[call-arg]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "OSTINATO_" + "_".join(str(part) for part in first["loc"]).upper()
        raise SettingsError(f"{name}: {first['msg']}") from None
