"""Brokers by URL, each with the AsyncIO middleware our async actors need."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

MAX_PRIORITY = 9
# Wake tokens kept per queue: enough to wake every idle consumer of a busy deployment.
WAKE_TOKENS = 64


def make_broker(url: str) -> dramatiq.Broker:
    """``""`` -> in-process stub broker; ``redis://…``; ``amqp://…`` (queues declared with
    ``x-max-priority`` so endpoint priority orders messages inside the broker)."""
    if not url:
        broker: dramatiq.Broker = StubBroker()
    elif url.startswith(("redis://", "rediss://")):
        broker = _waking_redis_broker(url)
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, max_priority=MAX_PRIORITY)
    else:
        raise ValueError(f"unsupported broker URL {url!r}: use '', redis://… or amqp://…")
    broker.add_middleware(AsyncIO())
    return broker


def supports_broker_priority(broker: dramatiq.Broker) -> bool:
    return type(broker).__name__ == "RabbitmqBroker"


def _waking_redis_broker(url: str) -> dramatiq.Broker:
    """A Redis broker whose idle consumers wait on a wake list instead of sleeping.

    Dramatiq's Redis consumer polls an empty queue with an exponential backoff
    (up to the worker's idle timeout), so a run sent to an idle worker waited
    tens of milliseconds before it started. Here each enqueue also pushes a
    token on ``<namespace>:<queue>.wake`` (in the same round trip), and an idle
    consumer blocks on that list with ``BLPOP`` for up to its idle timeout:
    it fetches as soon as something is sent. Message storage, acks, requeues
    and heartbeats stay Dramatiq's own.
    """
    import redis
    from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
    from dramatiq.errors import ConnectionClosed

    class WakingConsumer(_RedisConsumer):
        def __next__(self):
            if not self.message_cache and self.outstanding_message_count < self.prefetch:
                try:
                    self.message_cache = self.broker.do_fetch(
                        self.queue_name, self.prefetch - self.outstanding_message_count
                    )
                    if not self.message_cache:
                        self.broker.client.blpop([self.broker.wake_key(self.queue_name)], timeout=self.timeout / 1000)
                        return None
                except redis.ConnectionError as exc:
                    raise ConnectionClosed(exc) from None
            return super().__next__()

    class WakingRedisBroker(RedisBroker):
        @property
        def consumer_class(self):
            return WakingConsumer

        def wake_key(self, queue_name: str) -> str:
            return f"{self.namespace}:{queue_name}.wake"

        def do_enqueue(self, queue_name: str, *args):
            result = self._dispatch("enqueue")(queue_name, *args)
            key = self.wake_key(queue_name)
            self.client.pipeline(transaction=False).rpush(key, 1).ltrim(key, -WAKE_TOKENS, -1).execute()
            return result

    return WakingRedisBroker(url=url)
