# SPDX-License-Identifier: (LGPL-2.1 OR MIT)
"""asyncio flavours of the endpoints: ``send``/``recv`` are coroutines.

::

    import asyncio, mpmc.aio

    async def main():
        tx, rx = mpmc.aio.Channel.new(capacity=16).split()
        await tx.send(b"hello")
        tx.close()                      # last sender gone: end of file
        async for msg in rx:            # b"hello", then the loop ends
            print(msg)

    asyncio.run(main())

They are the blocking classes of :mod:`mpmc` with ``send``, ``recv``,
``send_batch`` and ``recv_many`` turned into coroutines (the
``*_async`` methods); ``try_*``, ``stats``, ``shutdown`` and the rest do
not wait and stay plain calls. Waiting is done by the event loop
(``add_reader``/``add_writer`` on the fd, which asyncio watches
level-triggered): no thread, no ``O_NONBLOCK`` on the shared file (each
attempt is one ``MPMC_IOC_SEND``/``RECV`` with timeout 0), so blocking
users of the same file are not disturbed.

Concurrent callers of one endpoint are served in call order. A
cancelled ``recv`` (``asyncio.wait_for``, ``TaskGroup``...) has taken no
message, a cancelled ``send`` has sent none. Timeouts: use
``asyncio.wait_for``/``asyncio.timeout``.
"""

from __future__ import annotations

from typing import List, Sequence

from . import _channel as c


class Sender(c.Sender):
    """A send-only endpoint whose ``send`` is a coroutine."""

    async def send(self, msg: c.Buffer, *, prio: int = 0) -> None:  # type: ignore[override]
        """Send one message, waiting on the loop while the channel is full;
        :class:`mpmc.Closed` once it is shut down."""
        await self.send_async(msg, prio=prio)

    async def send_batch(  # type: ignore[override]
        self, msgs: Sequence[c.Buffer], *, prio: int = 0
    ) -> int:
        """Wait until at least one fits, send as many as fit, return how
        many."""
        return await self.send_batch_async(msgs, prio=prio)


class Receiver(c.Receiver):
    """A receive-only endpoint whose ``recv`` is a coroutine; ``async for``
    receives until end of file."""

    async def recv(self) -> bytes:  # type: ignore[override]
        """Receive one message (:class:`mpmc.Closed` at end of file)."""
        return await self.recv_async()

    async def recv_many(self, max_count: int) -> List[bytes]:
        """Wait for one message, take up to ``max_count``."""
        return await self.recv_many_async(max_count)


class Channel(c.Channel, Sender, Receiver):  # type: ignore[misc]
    """A channel fd with both roles and coroutine ``send``/``recv``."""

    def sender(self, *, cloexec: bool = True) -> Sender:
        return Sender(c._new_endpoint(self.fileno(), c.abi.MPMC_ROLE_SEND, cloexec, False))

    def receiver(self, *, cloexec: bool = True) -> Receiver:
        return Receiver(c._new_endpoint(self.fileno(), c.abi.MPMC_ROLE_RECV, cloexec, False))

    def split(self) -> "tuple[Sender, Receiver]":  # type: ignore[override]
        try:
            return self.sender(), self.receiver()
        finally:
            self.close()

    send = Sender.send  # type: ignore[assignment]
    send_batch = Sender.send_batch  # type: ignore[assignment]
    recv = Receiver.recv  # type: ignore[assignment]
    recv_many = Receiver.recv_many


__all__ = ["Channel", "Sender", "Receiver"]
