"""Brokers by URL, each with the AsyncIO middleware our async actors need."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

MAX_PRIORITY = 9


def make_broker(url: str) -> dramatiq.Broker:
    """``""`` -> in-process stub broker; ``redis://…``; ``amqp://…`` (queues declared with
    ``x-max-priority`` so endpoint priority orders messages inside the broker)."""
    if not url:
        broker: dramatiq.Broker = StubBroker()
    elif url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url)
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, max_priority=MAX_PRIORITY)
    else:
        raise ValueError(f"unsupported broker URL {url!r}: use '', redis://… or amqp://…")
    broker.add_middleware(AsyncIO())
    return broker


def supports_broker_priority(broker: dramatiq.Broker) -> bool:
    return type(broker).__name__ == "RabbitmqBroker"
