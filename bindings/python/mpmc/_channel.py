# SPDX-License-Identifier: (LGPL-2.1 OR MIT)
"""Channels, endpoints and their blocking and asyncio calls."""

from __future__ import annotations

import asyncio
import collections
import ctypes
import dataclasses
import errno
import fcntl
import os
import socket
import struct
import termios
import time
from typing import (
    AsyncIterator,
    Deque,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from . import _abi as abi

Buffer = Union[bytes, bytearray, memoryview]
E = TypeVar("E", bound="Endpoint")


class ChannelError(Exception):
    """Base class of the errors this package raises for channel states."""


class Full(ChannelError):
    """A non-blocking send found the channel full (``EAGAIN``)."""


class Empty(ChannelError):
    """A non-blocking receive found the channel empty (``EAGAIN``)."""


class Closed(ChannelError):
    """The channel is shut down: a send got ``EPIPE``, or a receive found
    it shut down and drained (end of file)."""


@dataclasses.dataclass(frozen=True)
class Config:
    """``struct mpmc_config``: ``capacity`` messages of at most
    ``max_msg_size`` bytes; ``flags`` is ``OVERWRITE``/``THROUGHPUT`` bits."""

    capacity: int = abi.MPMC_DEFAULT_CAPACITY
    max_msg_size: int = abi.MPMC_DEFAULT_MSG_SIZE
    flags: int = 0


@dataclasses.dataclass(frozen=True)
class Stats:
    """``struct mpmc_stats``: a consistent snapshot of a channel."""

    capacity: int
    max_msg_size: int
    queued_msgs: int
    shutdown: int
    queued_bytes: int
    send_files: int
    recv_files: int
    blocked_senders: int
    blocked_receivers: int
    total_sent: int
    total_received: int
    total_dropped: int


def _timeout_ns(timeout: Optional[float]) -> int:
    """Seconds (None: forever) to the ABI's nanoseconds (-1: forever)."""
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError("timeout must be None or >= 0")
    return int(timeout * 1e9)


class Endpoint:
    """A file descriptor on a channel with some roles (send, receive or
    both). Owns the fd: ``close()`` (or the ``with`` block, or garbage
    collection) closes it. Every call is one system call on the fd, as in
    libmpmc; nothing is cached that the channel could change.

    An endpoint object is meant for one event loop at a time: its asyncio
    calls register the fd with that loop (``add_reader``/``add_writer``).
    Give each loop or thread its own endpoint (``clone()``).

    The one thing an endpoint remembers is the size of its receive
    buffers (``max_msg_size`` when first needed); a message that does not
    fit (``max_msg_size`` grew since) gets ``EMSGSIZE`` and stays queued,
    and the receive is made again with a buffer of its size.
    """

    ROLES = abi.MPMC_ROLE_SEND | abi.MPMC_ROLE_RECV

    def __init__(self, fd: int) -> None:
        """Wrap ``fd``, a /dev/mpmc file descriptor, which this object
        then owns."""
        self._fd = fd
        # The size receives allocate: max_msg_size when first needed, grown
        # when a message does not fit (max_msg_size grew since).
        self._size = 0
        self._ones: List[_One] = []  # see _One
        self._rd: Optional[_Waiters] = None
        self._wr: Optional[_Waiters] = None

    # ----------------------------------------------------------- the fd
    @classmethod
    def from_fd(cls: Type[E], fd: int) -> E:
        """Take ownership of ``fd`` (inherited, or received with
        ``SCM_RIGHTS``): see :func:`recv_endpoint`."""
        return cls(fd)

    def fileno(self) -> int:
        """The file descriptor (for ``select``, ``fork``, ``SCM_RIGHTS``)."""
        if self._fd < 0:
            raise ValueError("endpoint is closed")
        return self._fd

    def detach(self) -> int:
        """Give up ownership of the fd and return it."""
        fd = self.fileno()
        self._drop_waiters()
        self._fd = -1
        return fd

    def close(self) -> None:
        """Close the fd. When it was the last file with the send role the
        channel behaves as after ``shutdown(SHUT_WR)``; the last with the
        receive role, as after ``SHUT_RD``."""
        if self._fd >= 0:
            self._drop_waiters()
            fd, self._fd = self._fd, -1
            os.close(fd)

    @property
    def closed(self) -> bool:
        """Whether this endpoint's fd was closed (not the channel)."""
        return self._fd < 0

    def __enter__(self: E) -> E:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing to do at collection
            pass

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self._fd}>"

    def _take_one(self, size: int) -> _One:
        try:
            one = self._ones.pop()  # atomic under the GIL
        except IndexError:
            return _One(size)
        return one if one.size >= size else _One(size)

    def _give_back(self, one: _One) -> None:
        if len(self._ones) < 4:
            self._ones.append(one)

    def clone(self: E, *, cloexec: bool = True) -> E:
        """Another fd with this endpoint's roles (``MPMC_IOC_NEW_ENDPOINT``):
        it counts as another sender/receiver file, like ``Clone`` of a
        channel handle."""
        return type(self)(_new_endpoint(self.fileno(), self.ROLES, cloexec, False))

    # ----------------------------------------------------- configuration
    def config(self) -> Config:
        """The channel's configuration (``MPMC_IOC_GET_CONFIG``)."""
        buf = bytearray(abi.CONFIG.size)
        fcntl.ioctl(self.fileno(), abi.MPMC_IOC_GET_CONFIG, buf, True)
        cap, size, flags, *_ = abi.CONFIG.unpack(buf)
        return Config(cap, size, flags)

    def set_config(self, config: Config) -> None:
        """Change the configuration (``MPMC_IOC_SET_CONFIG``): capacity at
        any time but not below the queued count (``EBUSY``), max_msg_size
        only while empty."""
        arg = abi.CONFIG.pack(config.capacity, config.max_msg_size, config.flags, 0, 0, 0, 0, 0)
        fcntl.ioctl(self.fileno(), abi.MPMC_IOC_SET_CONFIG, arg)

    def stats(self) -> Stats:
        """A snapshot of the channel (``MPMC_IOC_GET_STATS``)."""
        buf = bytearray(abi.STATS.size)
        fcntl.ioctl(self.fileno(), abi.MPMC_IOC_GET_STATS, buf, True)
        return Stats(*abi.STATS.unpack(buf)[:12])

    @property
    def capacity(self) -> int:
        """The channel's capacity in messages (0: rendezvous)."""
        return self.config().capacity

    def __len__(self) -> int:
        """Messages queued now."""
        return self.stats().queued_msgs

    @property
    def is_closed(self) -> bool:
        """Whether the channel is shut down in either direction (by
        ``shutdown()`` or by the last sender or receiver going away)."""
        return self.stats().shutdown != 0

    def shutdown(self, how: int = abi.MPMC_SHUT_WR) -> None:
        """``MPMC_IOC_SHUTDOWN``: ``SHUT_WR`` (default; Go's ``close(ch)``:
        receivers drain, then end of file), ``SHUT_RD`` (discard the queue)
        or ``SHUT_RDWR``. Any endpoint may call it; repeating is a no-op."""
        fcntl.ioctl(self.fileno(), abi.MPMC_IOC_SHUTDOWN, how)

    # ------------------------------------------------- asyncio plumbing
    def _drop_waiters(self) -> None:
        for w in (self._rd, self._wr):
            if w is not None:
                w.detach()
        self._rd = self._wr = None

    def _waiters(self, writer: bool) -> "_Waiters":
        loop = asyncio.get_running_loop()
        w = self._wr if writer else self._rd
        if w is None or w.loop is not loop:
            if w is not None and w.busy():
                raise RuntimeError("endpoint is in use by another event loop")
            if w is not None:
                w.detach()
            w = _Waiters(loop, self.fileno(), writer)
            if writer:
                self._wr = w
            else:
                self._rd = w
        return w


def _ioctl(fd: int, req: int, arg: bytes) -> int:
    """ioctl(2) with a struct argument, returning the kernel's result
    (``fcntl.ioctl`` returns it for a mutable buffer). A signal: the call
    had no effect and ``InterruptedError`` is raised (fcntl.ioctl does not
    retry)."""
    return int(fcntl.ioctl(fd, req, bytearray(arg), True))


def _new_endpoint(fd: int, roles: int, cloexec: bool, nonblock: bool) -> int:
    flags = (os.O_CLOEXEC if cloexec else 0) | (os.O_NONBLOCK if nonblock else 0)
    while True:
        try:
            return _ioctl(fd, abi.MPMC_IOC_NEW_ENDPOINT, abi.ENDPOINT.pack(roles, flags, 0))
        except InterruptedError:
            continue


class _Batch:
    """One MPMC_IOC_SEND/RECV argument: the batch struct, its msgvec array
    and the message memory, all in ctypes memory so the kernel can be given
    their addresses."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.vec = ctypes.create_string_buffer(abi.MSGVEC.size * n)
        self.bufs: List[ctypes.Array] = []

    def run(self, fd: int, req: int, count: int, flags: int, timeout_ns: int) -> int:
        arg = abi.BATCH.pack(ctypes.addressof(self.vec), count, flags, timeout_ns)
        while True:
            try:
                return _ioctl(fd, req, arg)
            except InterruptedError:
                # Nothing moved: again, with the time left (the caller's
                # deadline loop) when there is a timeout.
                if timeout_ns > 0:
                    raise

    def set(self, i: int, buf: ctypes.Array, length: int, prio: int) -> None:
        abi.MSGVEC.pack_into(self.vec, i * abi.MSGVEC.size, ctypes.addressof(buf), length, prio)

    def get(self, i: int) -> Tuple[int, int]:
        _, length, prio = abi.MSGVEC.unpack_from(self.vec, i * abi.MSGVEC.size)
        return length, prio


# Offset of mpmc_batch.timeout_ns: after __u64 vec, __u32 count, __u32 flags.
_TIMEOUT_OFF = struct.calcsize("=QII")
_TIMEOUT = struct.Struct("=q")


class _One:
    """Memory for one single-message MPMC_IOC_SEND/RECV, kept by an endpoint
    and reused (a call takes one from the endpoint's pool, so threads never
    share one): a message buffer, the msgvec pointing at it and the batch
    argument (count 1) pointing at the msgvec. Building these with ctypes
    costs far more than the system call; reusing them leaves one ioctl and
    a few struct packs per message."""

    __slots__ = ("size", "buf", "addr", "vec", "arg")

    def __init__(self, size: int) -> None:
        self.size = size
        self.buf = ctypes.create_string_buffer(size)
        self.addr = ctypes.addressof(self.buf)
        self.vec = ctypes.create_string_buffer(abi.MSGVEC.size)
        self.arg = bytearray(abi.BATCH.pack(ctypes.addressof(self.vec), 1, 0, 0))

    def run(self, fd: int, req: int, length: int, prio: int, timeout_ns: int) -> int:
        """One ioctl; the message length (receive) or 1 (send), 0 at end
        of file (receive)."""
        abi.MSGVEC.pack_into(self.vec, 0, self.addr, length, prio)
        _TIMEOUT.pack_into(self.arg, _TIMEOUT_OFF, timeout_ns)
        while True:
            try:
                n = int(fcntl.ioctl(fd, req, self.arg, True))
            except InterruptedError:
                if timeout_ns > 0:
                    raise  # the caller's deadline loop: again with the time left
                continue
            if n and req == abi.MPMC_IOC_RECV:
                return int(abi.MSGVEC.unpack_from(self.vec)[1])
            return n

    def prio(self) -> int:
        return int(abi.MSGVEC.unpack_from(self.vec)[2])


def _deadline_loop(timeout: Optional[float], attempt) -> object:
    """Run attempt(timeout_ns) again after EINTR with the time left."""
    deadline = None if timeout is None else time.monotonic() + timeout
    t = timeout
    while True:
        try:
            return attempt(_timeout_ns(t))
        except InterruptedError:
            assert deadline is not None
            t = max(0.0, deadline - time.monotonic())


class Sender(Endpoint):
    """An endpoint with the send role."""

    ROLES = abi.MPMC_ROLE_SEND

    def _send(self, msg: Buffer, prio: int, timeout_ns: int) -> None:
        data = msg if type(msg) is bytes else bytes(msg)
        n = len(data)
        if not n:
            return  # a 0-byte send enqueues nothing, in every state
        one = self._take_one(max(n, abi.MPMC_DEFAULT_MSG_SIZE))
        ctypes.memmove(one.addr, data, n)
        try:
            one.run(self.fileno(), abi.MPMC_IOC_SEND, n, prio, timeout_ns)
        except OSError as e:
            raise _send_error(e, timeout_ns) from None
        finally:
            self._give_back(one)

    def send(self, msg: Buffer, *, prio: int = 0) -> None:
        """Send one message, waiting while the channel is full.
        Raises :class:`Closed` once the channel is shut down for sending.
        ``prio`` 0..31: higher is received first."""
        if prio == 0:
            data = bytes(msg)
            if not data:
                return
            try:
                os.write(self.fileno(), data)  # one write(2), one message
            except OSError as e:
                raise _send_error(e, -1) from None
            return
        self._send(msg, prio, -1)

    def try_send(self, msg: Buffer, *, prio: int = 0) -> None:
        """Send without waiting: :class:`Full` when there is no room,
        :class:`Closed` when shut down."""
        self._send(msg, prio, 0)

    def send_timeout(self, msg: Buffer, timeout: float, *, prio: int = 0) -> None:
        """Send, waiting at most ``timeout`` seconds: ``TimeoutError`` when
        no room came, :class:`Closed` when shut down."""
        _deadline_loop(timeout, lambda ns: self._send(msg, prio, ns))

    def _send_batch(self, msgs: Sequence[Buffer], prio: int, timeout_ns: int) -> int:
        datas = [bytes(m) for m in msgs][: abi.MPMC_BATCH_MAX]
        if not datas:
            return 0
        if any(not d for d in datas):
            raise ValueError("empty messages cannot be sent in a batch")
        b = _Batch(len(datas))
        for i, d in enumerate(datas):
            cbuf = ctypes.create_string_buffer(d, len(d))
            b.bufs.append(cbuf)
            b.set(i, cbuf, len(d), prio)
        try:
            return b.run(self.fileno(), abi.MPMC_IOC_SEND, len(datas), 0, timeout_ns)
        except OSError as e:
            raise _send_error(e, timeout_ns) from None

    def send_batch(
        self, msgs: Sequence[Buffer], timeout: Optional[float] = None, *, prio: int = 0
    ) -> int:
        """One ``MPMC_IOC_SEND``: wait (up to ``timeout`` seconds, None =
        forever, 0 = not at all) until at least one message fits, then
        send as many of ``msgs`` (at most 1024) as fit without waiting
        further. Returns how many were sent (the first ones)."""
        return int(_deadline_loop(timeout, lambda ns: self._send_batch(msgs, prio, ns)))

    # asyncio ----------------------------------------------------------
    async def send_async(self, msg: Buffer, *, prio: int = 0) -> None:
        """Send, waiting on the event loop while the channel is full.
        Concurrent senders on this endpoint go in the order they called;
        a cancelled send has sent nothing."""
        w = self._waiters(writer=True)
        await w.run(lambda: self._send(msg, prio, 0), Full)

    async def send_batch_async(self, msgs: Sequence[Buffer], *, prio: int = 0) -> int:
        """:meth:`send_batch` on the event loop: wait until at least one
        fits, send as many as fit, return how many."""
        w = self._waiters(writer=True)
        return int(await w.run(lambda: self._send_batch(msgs, prio, 0), Full))


class Receiver(Endpoint):
    """An endpoint with the receive role. Iterating it (``for`` or
    ``async for``) receives until the channel is shut down and drained."""

    ROLES = abi.MPMC_ROLE_RECV

    def _next_len(self) -> int:
        buf = bytearray(4)
        fcntl.ioctl(self.fileno(), termios.FIONREAD, buf, True)
        return int.from_bytes(buf, "little")

    def _buf_size(self) -> int:
        if not self._size:
            self._size = self.config().max_msg_size
        return self._size

    def _grow(self, size: int) -> int:
        self._size = max(size * 2, self._next_len(), self.config().max_msg_size)
        return self._size

    def _recv_batch(self, n: int, timeout_ns: int, flags: int = 0) -> List[Tuple[bytes, int]]:
        """One MPMC_IOC_RECV of up to n messages; [] at end of file."""
        n = max(1, min(n, abi.MPMC_BATCH_MAX))
        size = self._buf_size()
        while True:
            b = _Batch(n)
            for i in range(n):
                cbuf = ctypes.create_string_buffer(size)
                b.bufs.append(cbuf)
                b.set(i, cbuf, size, 0)
            try:
                got = b.run(self.fileno(), abi.MPMC_IOC_RECV, n, flags, timeout_ns)
            except OSError as e:
                if e.errno == errno.EMSGSIZE:
                    # max_msg_size grew after we read it: size to the message.
                    size = self._grow(size)
                    continue
                raise _recv_error(e, timeout_ns) from None
            out = []
            for i in range(got):
                length, prio = b.get(i)
                out.append((ctypes.string_at(b.bufs[i], length), prio))  # copy length bytes only
            return out

    def _recv_one(self, timeout_ns: int) -> Tuple[bytes, int]:
        size = self._buf_size()
        while True:
            one = self._take_one(size)
            try:
                n = one.run(self.fileno(), abi.MPMC_IOC_RECV, one.size, 0, timeout_ns)
            except OSError as e:
                if e.errno == errno.EMSGSIZE:
                    size = self._grow(size)  # this one is too small: dropped
                    continue
                self._give_back(one)
                raise _recv_error(e, timeout_ns) from None
            if not n:
                self._give_back(one)
                raise Closed("channel shut down and drained")
            msg = (ctypes.string_at(one.addr, n), one.prio())
            self._give_back(one)
            return msg

    def recv(self) -> bytes:
        """Receive one message, waiting while the channel is empty.
        Raises :class:`Closed` once it is shut down and drained."""
        size = self._buf_size()
        while True:
            try:
                data = os.read(self.fileno(), size)  # one read(2), one message
            except OSError as e:
                if e.errno == errno.EMSGSIZE:
                    size = self._grow(size)
                    continue
                raise _recv_error(e, -1) from None
            if not data:
                raise Closed("channel shut down and drained")
            return data

    def recv_prio(self, timeout: Optional[float] = None) -> Tuple[bytes, int]:
        """Receive one message and its priority (``TimeoutError`` after
        ``timeout`` seconds, :class:`Closed` at end of file)."""
        return _deadline_loop(timeout, self._recv_one)  # type: ignore[return-value]

    def try_recv(self) -> bytes:
        """Receive without waiting: :class:`Empty` when nothing is queued,
        :class:`Closed` when shut down and drained."""
        return self._recv_one(0)[0]

    def recv_timeout(self, timeout: float) -> bytes:
        """Receive, waiting at most ``timeout`` seconds (``TimeoutError``)."""
        return self.recv_prio(timeout)[0]

    def recv_batch(self, max_count: int, timeout: Optional[float] = None) -> List[bytes]:
        """One ``MPMC_IOC_RECV``: wait (up to ``timeout`` seconds) until a
        message is queued, then take up to ``max_count`` (at most 1024)
        without waiting further. ``[]`` at end of file."""
        got = _deadline_loop(timeout, lambda ns: self._recv_batch(max_count, ns))
        return [m for m, _ in got]  # type: ignore[union-attr]

    def peek(self, max_count: int = 1, timeout: Optional[float] = 0) -> List[bytes]:
        """Copy up to ``max_count`` messages from the head without removing
        them (``MPMC_RECV_PEEK``), waiting up to ``timeout`` seconds (None:
        forever) for one; ``[]`` when nothing is queued without waiting,
        and at end of file."""
        try:
            got = _deadline_loop(
                timeout, lambda ns: self._recv_batch(max_count, ns, abi.MPMC_RECV_PEEK)
            )
        except Empty:
            return []
        return [m for m, _ in got]  # type: ignore[union-attr]

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                yield Receiver.recv(self)  # the blocking one, also in mpmc.aio
            except Closed:
                return

    # asyncio ----------------------------------------------------------
    async def recv_async(self) -> bytes:
        """Receive one message, waiting on the event loop.

        Concurrent ``recv_async`` calls on this endpoint are served in the
        order they were made. Cancel-safe: the message is taken from the
        channel only by the coroutine that returns it, in the same step
        (the reactor only says "try now"), so a cancelled call (also under
        ``asyncio.wait_for``) has taken nothing. :class:`Closed` at end
        of file."""
        w = self._waiters(writer=False)
        return (await w.run(lambda: self._recv_one(0), Empty))[0]

    async def recv_many_async(self, max_count: int) -> List[bytes]:
        """Wait for at least one message, then take up to ``max_count``
        at once. :class:`Closed` at end of file."""
        w = self._waiters(writer=False)

        def attempt() -> List[bytes]:
            got = self._recv_batch(max_count, 0)
            if not got:
                raise Closed("channel shut down and drained")
            return [m for m, _ in got]

        return await w.run(attempt, Empty)  # type: ignore[no-any-return]

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[bytes]:
        while True:
            try:
                msg = await self.recv_async()
            except Closed:
                return
            yield msg


class Channel(Sender, Receiver):
    """A channel fd with both roles, as ``open("/dev/mpmc", O_RDWR)``
    gives. Hand out single-role endpoints with :meth:`sender` and
    :meth:`receiver`.

    Example::

        with Channel.new(capacity=8) as ch:
            tx, rx = ch.sender(), ch.receiver()
            tx.send(b"hello")
            assert rx.recv() == b"hello"
    """

    ROLES = abi.MPMC_ROLE_SEND | abi.MPMC_ROLE_RECV

    @classmethod
    def new(
        cls,
        capacity: Optional[int] = None,
        max_msg_size: Optional[int] = None,
        flags: int = 0,
        *,
        cloexec: bool = True,
    ) -> "Channel":
        """Open a new channel; with any argument, configure it (defaults
        for the others: 64 messages of 4096 bytes)."""
        fd = os.open(abi.DEVICE, os.O_RDWR | (os.O_CLOEXEC if cloexec else 0))
        ch = cls(fd)
        if capacity is not None or max_msg_size is not None or flags:
            try:
                ch.set_config(
                    Config(
                        abi.MPMC_DEFAULT_CAPACITY if capacity is None else capacity,
                        abi.MPMC_DEFAULT_MSG_SIZE if max_msg_size is None else max_msg_size,
                        flags,
                    )
                )
            except BaseException:
                ch.close()
                raise
        return ch

    @classmethod
    def with_config(cls, config: Config) -> "Channel":
        """Open a new channel with ``config``."""
        return cls.new(config.capacity, config.max_msg_size, config.flags)

    def sender(self, *, cloexec: bool = True) -> Sender:
        """A new send-only endpoint (``MPMC_IOC_NEW_ENDPOINT``)."""
        return Sender(_new_endpoint(self.fileno(), abi.MPMC_ROLE_SEND, cloexec, False))

    def receiver(self, *, cloexec: bool = True) -> Receiver:
        """A new receive-only endpoint (``MPMC_IOC_NEW_ENDPOINT``)."""
        return Receiver(_new_endpoint(self.fileno(), abi.MPMC_ROLE_RECV, cloexec, False))

    def split(self) -> Tuple[Sender, Receiver]:
        """``(sender(), receiver())``, then close this fd: the channel is
        then held by the two endpoints alone, so closing every sender
        gives the receivers end of file."""
        try:
            return self.sender(), self.receiver()
        finally:
            self.close()


def _send_error(e: OSError, timeout_ns: int) -> BaseException:
    if e.errno == errno.EPIPE:
        return Closed("channel shut down for sending")
    if e.errno == errno.EAGAIN:
        return Full("channel full")
    if e.errno == errno.ETIMEDOUT:
        return TimeoutError(errno.ETIMEDOUT, "send timed out")
    return e


def _recv_error(e: OSError, timeout_ns: int) -> BaseException:
    if e.errno == errno.EAGAIN:
        return Empty("channel empty")
    if e.errno == errno.ETIMEDOUT:
        return TimeoutError(errno.ETIMEDOUT, "receive timed out")
    return e


class _Waiters:
    """The asyncio waiters of one direction of one endpoint in one loop.

    A FIFO of futures. The reactor callback (fd readable/writable) never
    moves a message: it removes itself and wakes the oldest waiter, whose
    coroutine then makes one non-blocking attempt in the same step in
    which it returns. So a waiter cancelled at any point has moved nothing,
    and the order of calls is the order of service. A woken waiter that
    finds nothing (another process was faster) goes back to the head of
    the line; one that is cancelled after being woken passes the turn on.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, writer: bool) -> None:
        self.loop = loop
        self.fd = fd
        self.writer = writer
        self.queue: Deque["asyncio.Future[None]"] = collections.deque()
        self.woken: Optional["asyncio.Future[None]"] = None
        self.armed = False

    def busy(self) -> bool:
        return bool(self.queue) or self.woken is not None

    def _arm(self) -> None:
        if self.armed or self.woken is not None or not self.queue:
            return
        if self.writer:
            self.loop.add_writer(self.fd, self._ready)
        else:
            self.loop.add_reader(self.fd, self._ready)
        self.armed = True

    def _disarm(self) -> None:
        if self.armed:
            if self.writer:
                self.loop.remove_writer(self.fd)
            else:
                self.loop.remove_reader(self.fd)
            self.armed = False

    def _ready(self) -> None:
        """The fd is ready: wake the oldest waiter that is still waiting.

        The fd stays registered (no epoll_ctl per message) until it is
        ready with nobody waiting. asyncio watches it level-triggered, so
        while a woken waiter has not made its attempt yet this is called
        again and does nothing."""
        if self.woken is not None:
            return
        while self.queue:
            fut = self.queue.popleft()
            if not fut.done():
                self.woken = fut
                fut.set_result(None)
                return
        self._disarm()

    def detach(self) -> None:
        """The fd is being closed: unregister it (waiters then fail)."""
        if not self.loop.is_closed():
            self._disarm()
        self.armed = False

    async def run(self, attempt, again: Type[BaseException]):  # type: ignore[no-untyped-def]
        """Call ``attempt()`` when it is this caller's turn and the fd is
        ready, until it does not raise ``again`` (Full/Empty)."""
        if not self.busy():
            try:
                return attempt()
            except again:
                pass
        fut = self.loop.create_future()
        self.queue.append(fut)
        self._arm()
        try:
            while True:
                await fut
                # Woken: our turn, and attempt() runs in this step.
                self.woken = None
                try:
                    result = attempt()
                except again:
                    fut = self.loop.create_future()
                    self.queue.appendleft(fut)
                    self._arm()
                    continue
                except BaseException:
                    self._arm()  # pass the turn on (end of file: all see it)
                    raise
                self._arm()
                return result
        except asyncio.CancelledError:
            if self.woken is fut:
                self.woken = None  # woken but never tried: pass it on
            else:
                try:
                    self.queue.remove(fut)
                except ValueError:
                    pass
            self._arm()
            raise


def send_endpoint(sock: socket.socket, ep: Endpoint, data: bytes = b"mpmc") -> None:
    """Pass ``ep``'s fd over a Unix socket (``SCM_RIGHTS``); ``ep`` stays
    open here (close it if it should not count as a sender/receiver)."""
    socket.send_fds(sock, [data], [ep.fileno()])


def recv_endpoint(sock: socket.socket, cls: Type[E]) -> E:
    """Receive one fd passed by :func:`send_endpoint` and wrap it in
    ``cls`` (Sender, Receiver or Channel)."""
    _, fds, _, _ = socket.recv_fds(sock, 64, 1)
    if not fds:
        raise OSError(errno.EBADMSG, "no file descriptor in the message")
    return cls.from_fd(fds[0])


def iter_batches(rx: Receiver, max_count: int) -> Iterable[List[bytes]]:
    """Blocking batches of up to ``max_count`` until end of file."""
    while True:
        got = rx.recv_batch(max_count)
        if not got:
            return
        yield got
