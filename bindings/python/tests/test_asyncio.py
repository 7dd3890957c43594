# SPDX-License-Identifier: (LGPL-2.1 OR MIT)
"""asyncio: waiting on the event loop, order of service, cancellation."""

import asyncio
import os
import random

import pytest

import mpmc
import mpmc.aio

pytestmark = pytest.mark.needs_device


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_await_send_recv_and_async_for():
    async def main():
        tx, rx = mpmc.aio.Channel.new(capacity=2).split()

        async def produce():
            for i in range(50):
                await tx.send(b"%d" % i)  # waits while full
            tx.close()

        task = asyncio.create_task(produce())
        got = [int(m) async for m in rx]
        await task
        assert got == list(range(50))
        rx.close()

    run(main())


def test_concurrent_waiters_served_in_order():
    async def main():
        ch = mpmc.aio.Channel.new()
        results = {}

        async def waiter(k):
            results[k] = await ch.recv()

        tasks = []
        for k in range(8):
            tasks.append(asyncio.create_task(waiter(k)))
            await asyncio.sleep(0)  # k starts waiting before k+1
        await asyncio.sleep(0.05)
        for k in range(8):
            ch.try_send(b"%d" % k)
        await asyncio.gather(*tasks)
        assert results == {k: b"%d" % k for k in range(8)}
        ch.close()

    run(main())


def test_concurrent_senders_served_in_order():
    async def main():
        ch = mpmc.aio.Channel.new(capacity=1)
        ch.try_send(b"first")
        tasks = []
        for k in range(5):
            tasks.append(asyncio.create_task(ch.send(b"%d" % k)))
            await asyncio.sleep(0)
        got = [await ch.recv() for _ in range(6)]
        await asyncio.gather(*tasks)
        assert got == [b"first"] + [b"%d" % k for k in range(5)]
        ch.close()

    run(main())


def test_cancel_after_wakeup_loses_no_message():
    """The reactor has woken the waiter (as after the fd became readable)
    and the task is cancelled before it runs: the message must stay."""

    async def main():
        ch = mpmc.aio.Channel.new()
        t = asyncio.create_task(ch.recv())
        await asyncio.sleep(0.01)  # t is queued and the fd watched
        ch.try_send(b"keep me")
        ch._rd._ready()  # what the event loop does on readiness
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert ch.try_recv() == b"keep me"
        # The turn was passed on: a later waiter still gets woken.
        t2 = asyncio.create_task(ch.recv())
        await asyncio.sleep(0.01)
        ch.try_send(b"next")
        assert await t2 == b"next"
        ch.close()

    run(main())


def test_wait_for_timeouts_exactly_once_across_processes():
    ch = mpmc.Channel.new(capacity=16)
    n = 1500
    pid = os.fork()
    if pid == 0:
        try:
            tx = ch.sender()
            ch.close()
            rnd = random.Random(1)
            for i in range(n):
                tx.send(b"%d" % i)
                if rnd.random() < 0.05:
                    os.sched_yield()
            os._exit(0)
        except BaseException:
            os._exit(1)
    rx = mpmc.aio.Receiver(ch.receiver().detach())
    ch.close()

    async def main():
        got = []
        timeouts = 0
        rnd = random.Random(2)
        while True:
            try:
                got.append(int(await asyncio.wait_for(rx.recv(), rnd.choice([0.0, 0.0001, 0.001, 0.01]))))
            except asyncio.TimeoutError:
                timeouts += 1
            except mpmc.Closed:
                return got, timeouts

    got, timeouts = asyncio.run(main())
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert got == list(range(n)), "lost, duplicated or reordered messages"
    assert timeouts > 0  # cancellation was exercised
    rx.close()


def test_recv_many_and_many_tasks_exactly_once():
    async def main():
        ch = mpmc.aio.Channel.new(capacity=8)
        tx = ch.sender()
        got = []

        async def consumer():
            try:
                while True:
                    got.extend(await ch.recv_many(5))
            except mpmc.Closed:
                pass

        async def producer(k):
            for i in range(100):
                await tx.send(b"%d:%d" % (k, i))

        cons = [asyncio.create_task(consumer()) for _ in range(4)]
        await asyncio.gather(*(producer(k) for k in range(4)))
        ch.shutdown()
        await asyncio.gather(*cons)
        assert sorted(got) == sorted(b"%d:%d" % (k, i) for k in range(4) for i in range(100))
        tx.close()
        ch.close()

    run(main())
