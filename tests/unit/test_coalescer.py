"""The coalescer behind a worker's shared transactions: what arrives during a call joins the next."""

from __future__ import annotations

import asyncio

import pytest

from services.execution import Coalescer


class Work:
    """Records each call's items; blocks the first call until ``release`` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []
        self.release = asyncio.Event()
        self.fail_on: set[int] = set()

    async def __call__(self, key: str, items: list[int]) -> list[int]:
        self.calls.append((key, list(items)))
        if len(self.calls) == 1:
            await self.release.wait()
        if self.fail_on & set(items):
            raise RuntimeError(f"refused {sorted(self.fail_on & set(items))}")
        return [item * 10 for item in items]


async def first_call_in_flight(coalescer: Coalescer, work: Work) -> asyncio.Future:
    """Submit item 1 and return once ``work`` has it (blocked until ``work.release``)."""
    first = asyncio.ensure_future(coalescer.submit("w", 1))
    while not work.calls:
        await asyncio.sleep(0)
    return first


async def test_an_item_alone_is_handed_over_at_once_and_gets_its_own_result() -> None:
    work = Work()
    work.release.set()
    coalescer = Coalescer(work)

    assert await coalescer.submit("w", 1) == 10
    assert work.calls == [("w", [1])]


async def test_items_submitted_during_a_call_go_together_in_the_next_one_each_with_its_result() -> None:
    work = Work()
    coalescer = Coalescer(work)
    first = await first_call_in_flight(coalescer, work)
    later = [asyncio.ensure_future(coalescer.submit("w", n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    work.release.set()

    assert await first == 10
    assert await asyncio.gather(*later) == [20, 30, 40]
    assert work.calls == [("w", [1]), ("w", [2, 3, 4])]


async def test_keys_are_never_mixed_in_one_call() -> None:
    work = Work()
    work.release.set()
    coalescer = Coalescer(work)

    results = await asyncio.gather(coalescer.submit("a", 1), coalescer.submit("b", 2), coalescer.submit("a", 3))

    assert results == [10, 20, 30]
    assert sorted(work.calls) == [("a", [1, 3]), ("b", [2])]


async def test_a_failed_call_fails_its_own_items_only_and_the_next_call_goes_ahead() -> None:
    work = Work()
    work.fail_on = {2}
    coalescer = Coalescer(work)
    first = await first_call_in_flight(coalescer, work)
    doomed = [asyncio.ensure_future(coalescer.submit("w", n)) for n in (2, 3)]
    await asyncio.sleep(0)
    work.release.set()
    assert await first == 10
    for future in doomed:
        with pytest.raises(RuntimeError, match=r"refused \[2\]"):
            await future

    assert await coalescer.submit("w", 5) == 50


async def test_a_caller_that_gives_up_does_not_stop_the_others() -> None:
    work = Work()
    coalescer = Coalescer(work)
    first = await first_call_in_flight(coalescer, work)
    quitter = asyncio.ensure_future(coalescer.submit("w", 2))
    stayer = asyncio.ensure_future(coalescer.submit("w", 3))
    await asyncio.sleep(0)
    quitter.cancel()
    work.release.set()

    assert await first == 10
    assert await stayer == 30
    assert quitter.cancelled()


def test_a_coalescer_serves_each_event_loop_it_is_used_on() -> None:
    work = Work()
    work.release.set()
    coalescer = Coalescer(work)

    assert asyncio.run(coalescer.submit("w", 1)) == 10
    assert asyncio.run(coalescer.submit("w", 2)) == 20


class TwoBlocked(Work):
    """Blocks the first two calls until ``release`` is set."""

    async def __call__(self, key: str, items: list[int]) -> list[int]:
        self.calls.append((key, list(items)))
        if len(self.calls) <= 2:
            await self.release.wait()
        return [item * 10 for item in items]


async def test_with_two_lanes_a_second_item_goes_at_once_and_later_ones_wait_for_a_free_lane() -> None:
    work = TwoBlocked()
    coalescer = Coalescer(work, lanes=2)
    first = await first_call_in_flight(coalescer, work)
    second = asyncio.ensure_future(coalescer.submit("w", 2))
    while len(work.calls) < 2:
        await asyncio.sleep(0)
    later = [asyncio.ensure_future(coalescer.submit("w", n)) for n in (3, 4)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert work.calls == [("w", [1]), ("w", [2])]  # both lanes busy: 3 and 4 wait

    work.release.set()

    assert (await first, await second, await asyncio.gather(*later)) == (10, 20, [30, 40])
    assert work.calls == [("w", [1]), ("w", [2]), ("w", [3, 4])]


async def test_an_item_submitted_once_every_lane_is_done_starts_a_lane_again() -> None:
    work = Work()
    work.release.set()
    coalescer = Coalescer(work, lanes=2)

    assert await coalescer.submit("w", 1) == 10
    assert await asyncio.wait_for(coalescer.submit("w", 2), 1) == 20


def test_a_coalescer_needs_a_lane() -> None:
    with pytest.raises(ValueError, match="at least one lane"):
        Coalescer(Work(), lanes=0)
