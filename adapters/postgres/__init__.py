"""PostgreSQL-specific adapters that go beyond SQLAlchemy: LISTEN/NOTIFY wake-ups."""

from adapters.postgres.wakeups import WAKE_CHANNEL, PostgresWakeups

__all__ = ["WAKE_CHANNEL", "PostgresWakeups"]
