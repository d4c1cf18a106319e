"""Wake sleeping schedulers when an endpoint is created or its next run moves.

A trigger (migration ``0002``) runs ``pg_notify('ostinato_wake', '')`` when an
endpoint row is inserted, or its ``next_run_at`` changes outside a
scheduler's claim. :class:`PostgresWakeups` keeps one dedicated connection
LISTENing and sets an ``asyncio.Event``; when the connection drops (a
database restart) it reconnects by itself and wakes the scheduler once, so
nothing that changed meanwhile waits for the next bounded sleep.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("ostinato.wakeups")

WAKE_CHANNEL = "ostinato_wake"


def _dsn(url: str) -> str:
    """An asyncpg DSN from a SQLAlchemy URL (``postgresql+asyncpg://`` -> ``postgresql://``)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class PostgresWakeups:
    def __init__(self, url: str, *, check_every_s: float = 1.0, retry_max_s: float = 5.0) -> None:
        self._dsn = _dsn(url)
        self._check_every_s = check_every_s
        self._retry_max_s = retry_max_s
        self.connected = asyncio.Event()
        self.notifications = 0

    async def run(self, wake: asyncio.Event, stop: asyncio.Event) -> None:
        """LISTEN until ``stop`` is set, reconnecting whenever the connection is lost."""
        import asyncpg

        failures = 0
        while not stop.is_set():
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)

                def on_notify(*_: object) -> None:
                    self.notifications += 1
                    wake.set()

                await conn.add_listener(WAKE_CHANNEL, on_notify)
                self.connected.set()
                if failures:
                    log.info("listening for wake-ups again after %d failed attempts", failures)
                    wake.set()  # catch up on anything that changed while we were away
                failures = 0
                while not stop.is_set() and not conn.is_closed():
                    try:
                        await asyncio.wait_for(stop.wait(), self._check_every_s)
                    except TimeoutError:
                        await conn.execute("SELECT 1")  # notices a dead server promptly
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                failures += 1
                self.connected.clear()
                delay = min(self._retry_max_s, 0.2 * 2 ** min(failures, 5))
                if failures == 1:
                    log.warning("wake-up listener lost its connection (%s); reconnecting", exc)
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    try:
                        await asyncio.wait_for(conn.close(), 2)
                    except Exception:
                        conn.terminate()
