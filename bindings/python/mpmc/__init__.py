# SPDX-License-Identifier: (LGPL-2.1 OR MIT)
"""mpmc: Python bindings for /dev/mpmc channels (pure Python).

Every :meth:`Channel.new` opens ``/dev/mpmc``: a new bounded
multi-producer multi-consumer message channel, shared between threads
and processes as a file descriptor (fork, ``SCM_RIGHTS``, endpoints).
The calls follow libmpmc: each is one system call on the fd, and any
/dev/mpmc fd works (``Receiver.from_fd(fd)``).

Blocking::

    import mpmc
    ch = mpmc.Channel.new(capacity=16)
    tx, rx = ch.split()            # a send-only and a receive-only fd
    tx.send(b"job 1")
    tx.close()                     # the last sender gone: end of file
    for msg in rx:                 # b"job 1", then the loop ends
        print(msg)

asyncio (``recv_async``/``send_async``, ``async for``): concurrent waiters
on one endpoint are served in call order, and a cancelled call has
moved nothing.

Errors: :class:`Full` / :class:`Empty` from ``try_*`` calls,
:class:`Closed` for a shut-down channel (send) or end of file (receive),
``TimeoutError`` from ``*_timeout`` calls, ``OSError`` for the rest
(``EBADF`` for a direction the endpoint lacks, ``EMSGSIZE`` for a message
over ``max_msg_size``, ...).

Standard library only: ``os``, ``fcntl.ioctl``, ``struct``, ``asyncio``,
and ``ctypes`` only for memory whose address a batch ioctl carries.
"""

from ._abi import (
    MPMC_BATCH_MAX as BATCH_MAX,
    MPMC_CONFIG_OVERWRITE as OVERWRITE,
    MPMC_CONFIG_THROUGHPUT as THROUGHPUT,
    MPMC_PRIO_MAX as PRIO_MAX,
    MPMC_SHUT_RD as SHUT_RD,
    MPMC_SHUT_RDWR as SHUT_RDWR,
    MPMC_SHUT_WR as SHUT_WR,
)
from ._channel import (
    Channel,
    ChannelError,
    Closed,
    Config,
    Empty,
    Endpoint,
    Full,
    Receiver,
    Sender,
    Stats,
    iter_batches,
    recv_endpoint,
    send_endpoint,
)

__version__ = "0.1.0"

__all__ = [
    "BATCH_MAX",
    "OVERWRITE",
    "THROUGHPUT",
    "PRIO_MAX",
    "SHUT_RD",
    "SHUT_WR",
    "SHUT_RDWR",
    "Channel",
    "ChannelError",
    "Closed",
    "Config",
    "Empty",
    "Endpoint",
    "Full",
    "Receiver",
    "Sender",
    "Stats",
    "iter_batches",
    "recv_endpoint",
    "send_endpoint",
]
