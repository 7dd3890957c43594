# SPDX-License-Identifier: (LGPL-2.1 OR MIT)
"""The /dev/mpmc ABI as Python sees it: ioctl numbers, struct layouts, flags.

This mirrors ``uapi/linux/mpmc.h``, the one definition of the ABI. Python
cannot include a C header, so the values are written here once and
``tests/test_abi.py`` parses the header and fails on any difference (ioctl
numbers, struct sizes, field names, types and order, constants). Change
the header and that test tells you what to change here.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Tuple

DEVICE = "/dev/mpmc"

MPMC_IOC_MAGIC = 0xB7
MPMC_DEFAULT_CAPACITY = 64
MPMC_DEFAULT_MSG_SIZE = 4096
MPMC_CONFIG_OVERWRITE = 1
MPMC_CONFIG_THROUGHPUT = 2
MPMC_CONFIG_RING = 4
MPMC_PRIO_MAX = 32
MPMC_SHUT_RD = 1
MPMC_SHUT_WR = 2
MPMC_SHUT_RDWR = 3
MPMC_ROLE_SEND = 1
MPMC_ROLE_RECV = 2
MPMC_BATCH_MAX = 1024
MPMC_RECV_PEEK = 1

# Ring mode (Documentation/ring-mode.rst): the Python package does not map
# the ring, but it names its ABI so that the test keeps the two in step.
MPMC_RING_OFF_CTRL = 0x0
MPMC_RING_OFF_RING = 0x10000000
MPMC_RING_MAGIC = 0x4D505247
MPMC_RING_VERSION = 1
MPMC_RING_F_BROKEN = 1
MPMC_RING_F_FRONT = 2
MPMC_RING_F_SHUT_WR = 4
MPMC_RING_F_SHUT_RD = 8
MPMC_RING_W_POLL = 0x80000000
MPMC_RING_ENQ_OFF = 0
MPMC_RING_DEQ_OFF = 128
MPMC_RING_CLOSED = 1 << 63
MPMC_RING_POS_SHIFT = 16
MPMC_RING_POS_MASK = (1 << 48) - 1
MPMC_RING_OWNER_SHIFT = 2
MPMC_RING_OWNER_MAX = 0x3FFF
MPMC_RING_STATE_MASK = 3
MPMC_RING_FREE = 0
MPMC_RING_CLAIMED = 1
MPMC_RING_FULL = 2
MPMC_RING_READING = 3
MPMC_RING_LEN_SKIP = 0xFFFFFFFF

# Field lists in header order: (name, C type, count). struct formats are
# derived from them, so the test compares one list with the header.
STRUCTS: Dict[str, List[Tuple[str, str, int]]] = {
    "mpmc_config": [
        ("capacity", "__u32", 1),
        ("max_msg_size", "__u32", 1),
        ("flags", "__u32", 1),
        ("reserved", "__u32", 5),
    ],
    "mpmc_stats": [
        ("capacity", "__u32", 1),
        ("max_msg_size", "__u32", 1),
        ("queued_msgs", "__u32", 1),
        ("shutdown", "__u32", 1),
        ("queued_bytes", "__u64", 1),
        ("send_files", "__u32", 1),
        ("recv_files", "__u32", 1),
        ("blocked_senders", "__u32", 1),
        ("blocked_receivers", "__u32", 1),
        ("total_sent", "__u64", 1),
        ("total_received", "__u64", 1),
        ("total_dropped", "__u64", 1),
        ("reserved", "__u64", 3),
    ],
    "mpmc_endpoint": [
        ("roles", "__u32", 1),
        ("flags", "__u32", 1),
        ("reserved", "__u64", 1),
    ],
    "mpmc_msgvec": [
        ("buf", "__u64", 1),
        ("len", "__u32", 1),
        ("prio", "__u32", 1),
    ],
    "mpmc_batch": [
        ("vec", "__u64", 1),
        ("count", "__u32", 1),
        ("flags", "__u32", 1),
        ("timeout_ns", "__s64", 1),
    ],
    "mpmc_ring_ctrl": [
        ("magic", "__u32", 1),
        ("version", "__u32", 1),
        ("nr_slots", "__u32", 1),
        ("slot_mask", "__u32", 1),
        ("slot_size", "__u32", 1),
        ("max_msg_size", "__u32", 1),
        ("slots_offset", "__u32", 1),
        ("pos_bits", "__u32", 1),
        ("ring_size", "__u64", 1),
        ("reserved0", "__u64", 3),
        ("flags", "__u32", 1),
        ("recv_waiters", "__u32", 1),
        ("send_waiters", "__u32", 1),
        ("reserved1", "__u32", 13),
    ],
    # followed by __u8 data[] (the payload)
    "mpmc_ring_slot": [
        ("word", "__u64", 1),
        ("len", "__u32", 1),
        ("reserved", "__u32", 1),
    ],
    "mpmc_ring_info": [
        ("addr", "__u64", 1),
        ("mapper_id", "__u32", 1),
        ("nr_slots", "__u32", 1),
        ("slot_size", "__u32", 1),
        ("flags", "__u32", 1),
        ("reserved", "__u64", 2),
    ],
}

_CODES = {"__u32": "I", "__u64": "Q", "__s64": "q", "__s32": "i"}


def _format(name: str) -> str:
    # "=" : native byte order, standard sizes, no padding: the structs are
    # laid out without implicit padding (the header says so).
    return "=" + "".join(
        (str(n) if n > 1 else "") + _CODES[t] for _, t, n in STRUCTS[name]
    )


CONFIG = struct.Struct(_format("mpmc_config"))
STATS = struct.Struct(_format("mpmc_stats"))
ENDPOINT = struct.Struct(_format("mpmc_endpoint"))
MSGVEC = struct.Struct(_format("mpmc_msgvec"))
BATCH = struct.Struct(_format("mpmc_batch"))
RING_CTRL = struct.Struct(_format("mpmc_ring_ctrl"))
RING_SLOT = struct.Struct(_format("mpmc_ring_slot"))
RING_INFO = struct.Struct(_format("mpmc_ring_info"))

SIZES = {
    "mpmc_config": CONFIG.size,
    "mpmc_stats": STATS.size,
    "mpmc_endpoint": ENDPOINT.size,
    "mpmc_msgvec": MSGVEC.size,
    "mpmc_batch": BATCH.size,
    "mpmc_ring_ctrl": RING_CTRL.size,
    "mpmc_ring_slot": RING_SLOT.size,
    "mpmc_ring_info": RING_INFO.size,
}

# <asm-generic/ioctl.h> (x86, arm64, riscv: the generic layout).
_IOC_NRBITS, _IOC_TYPEBITS, _IOC_SIZEBITS = 8, 8, 14
_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS
_IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS
_IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2


def _ioc(direction: int, nr: int, size: int) -> int:
    return (
        (direction << _IOC_DIRSHIFT)
        | (MPMC_IOC_MAGIC << _IOC_TYPESHIFT)
        | (nr << _IOC_NRSHIFT)
        | (size << _IOC_SIZESHIFT)
    )


# name: (direction, nr, struct or None), as in the header's #defines.
IOCTLS = {
    "MPMC_IOC_GET_CONFIG": (_IOC_READ, 1, "mpmc_config"),
    "MPMC_IOC_SET_CONFIG": (_IOC_WRITE, 2, "mpmc_config"),
    "MPMC_IOC_GET_STATS": (_IOC_READ, 3, "mpmc_stats"),
    "MPMC_IOC_SHUTDOWN": (_IOC_NONE, 4, None),
    "MPMC_IOC_NEW_ENDPOINT": (_IOC_WRITE, 5, "mpmc_endpoint"),
    "MPMC_IOC_SEND": (_IOC_READ | _IOC_WRITE, 6, "mpmc_batch"),
    "MPMC_IOC_RECV": (_IOC_READ | _IOC_WRITE, 7, "mpmc_batch"),
    "MPMC_IOC_RING_INFO": (_IOC_READ | _IOC_WRITE, 8, "mpmc_ring_info"),
    "MPMC_IOC_RING_WAKE": (_IOC_NONE, 9, None),
}


def ioctl_number(name: str) -> int:
    """The request number of ioctl ``name`` (e.g. ``"MPMC_IOC_SEND"``)."""
    d, nr, s = IOCTLS[name]
    return _ioc(d, nr, SIZES[s] if s else 0)


MPMC_IOC_GET_CONFIG = ioctl_number("MPMC_IOC_GET_CONFIG")
MPMC_IOC_SET_CONFIG = ioctl_number("MPMC_IOC_SET_CONFIG")
MPMC_IOC_GET_STATS = ioctl_number("MPMC_IOC_GET_STATS")
MPMC_IOC_SHUTDOWN = ioctl_number("MPMC_IOC_SHUTDOWN")
MPMC_IOC_NEW_ENDPOINT = ioctl_number("MPMC_IOC_NEW_ENDPOINT")
MPMC_IOC_SEND = ioctl_number("MPMC_IOC_SEND")
MPMC_IOC_RECV = ioctl_number("MPMC_IOC_RECV")
MPMC_IOC_RING_INFO = ioctl_number("MPMC_IOC_RING_INFO")
MPMC_IOC_RING_WAKE = ioctl_number("MPMC_IOC_RING_WAKE")
