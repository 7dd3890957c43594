#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""async_bench.py [N]: Python asyncio receiving N 64-byte messages over
/dev/mpmc from another process, against asyncio.Queue(64) within one
process and a socketpair across processes (asyncio streams, fixed 64-byte
records). Prints one ``bench:`` line per transport."""

import asyncio
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import mpmc  # noqa: E402
import mpmc.aio  # noqa: E402

MSG = 64
PAYLOAD = b"x" * MSG


def report(name: str, n: int, secs: float) -> None:
    print(f"bench: transport={name} messages={n} msg_size={MSG} secs={secs:.3f} msg_per_s={n / secs:.0f}")


def fork_child(fn) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            asyncio.run(fn())
            code = 0
        finally:
            os._exit(code)
    return pid


def wait(pid: int) -> None:
    _, st = os.waitpid(pid, 0)
    assert st == 0, "child failed"


def bench_mpmc(n: int) -> None:
    ch = mpmc.Channel.new()
    tx, rx = ch.split()

    async def produce() -> None:
        rx.close()
        atx = mpmc.aio.Sender(tx.detach())
        for _ in range(n):
            await atx.send(PAYLOAD)

    t0 = time.monotonic()
    pid = fork_child(produce)
    tx.close()

    async def consume() -> int:
        arx = mpmc.aio.Receiver(rx.detach())
        got = 0
        async for m in arx:
            assert len(m) == MSG
            got += 1
        return got

    got = asyncio.run(consume())
    secs = time.monotonic() - t0
    wait(pid)
    assert got == n
    report("mpmc-2proc", n, secs)


def bench_queue(n: int) -> None:
    async def main() -> float:
        q: asyncio.Queue = asyncio.Queue(64)
        t0 = time.monotonic()

        async def produce() -> None:
            for _ in range(n):
                await q.put(PAYLOAD)
            await q.put(None)

        task = asyncio.create_task(produce())
        got = 0
        while (m := await q.get()) is not None:
            assert len(m) == MSG
            got += 1
        await task
        assert got == n
        return time.monotonic() - t0

    report("asyncio-queue-1proc", n, asyncio.run(main()))


def bench_socketpair(n: int) -> None:
    a, b = socket.socketpair()

    async def produce() -> None:
        b.close()
        _, w = await asyncio.open_connection(sock=a)
        for _ in range(n):
            w.write(PAYLOAD)
            await w.drain()
        w.close()
        await w.wait_closed()

    t0 = time.monotonic()
    pid = fork_child(produce)
    a.close()

    async def consume() -> int:
        r, w = await asyncio.open_connection(sock=b)
        got = 0
        while True:
            try:
                await r.readexactly(MSG)
            except asyncio.IncompleteReadError:
                break
            got += 1
        w.close()
        return got

    got = asyncio.run(consume())
    secs = time.monotonic() - t0
    wait(pid)
    assert got == n
    report("socketpair-2proc", n, secs)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    bench_mpmc(count)
    bench_queue(count)
    bench_socketpair(count)
