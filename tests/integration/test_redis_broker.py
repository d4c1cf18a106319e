"""The Redis broker's wake list: an idle worker starts a sent run at once instead of polling."""

from __future__ import annotations

import threading

import pytest
import redis

from adapters.dramatiq.brokers import WAKE_TOKENS, make_broker
from tests.services import REDIS_URL, require_redis

pytestmark = [pytest.mark.redis]

QUEUE = "wake-test"
IDLE_TIMEOUT_MS = 20_000


@pytest.fixture
def broker():
    require_redis()
    redis.Redis.from_url(REDIS_URL).flushdb()
    broker = make_broker(REDIS_URL)
    broker.declare_queue(QUEUE)
    yield broker
    broker.close()
    redis.Redis.from_url(REDIS_URL).flushdb()


def _send(broker, payload: int) -> None:
    import dramatiq

    broker.enqueue(dramatiq.Message(queue_name=QUEUE, actor_name="noop", args=(payload,), kwargs={}, options={}))


def test_each_message_sent_leaves_a_wake_token_and_the_list_stays_bounded(broker) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    _send(broker, 1)
    assert client.llen(broker.wake_key(QUEUE)) == 1
    for i in range(WAKE_TOKENS + 10):
        _send(broker, i)
    assert client.llen(broker.wake_key(QUEUE)) == WAKE_TOKENS


def test_an_idle_consumer_wakes_when_a_message_is_sent_not_at_its_idle_timeout(broker) -> None:
    consumer = broker.consume(QUEUE, prefetch=4, timeout=IDLE_TIMEOUT_MS)
    woke = threading.Event()

    def idle() -> None:
        assert next(consumer) is None  # nothing queued: blocks on the wake list
        woke.set()

    thread = threading.Thread(target=idle, daemon=True)
    thread.start()
    assert not woke.wait(0.5), "an empty queue must not wake the consumer"
    _send(broker, 42)
    # far below the 20 s idle timeout: woken by the token, not by the timeout
    assert woke.wait(5), "the consumer did not wake when a message was sent"
    thread.join(5)
    message = next(consumer)
    assert message is not None and message.args == (42,)
    consumer.ack(message)
    consumer.close()
