// SPDX-License-Identifier: LGPL-2.1 OR MIT
//! The `/dev/mpmc` ABI as Rust sees it: `#[repr(C)]` copies of the structs
//! of `uapi/linux/mpmc.h` and their ioctl numbers.
//!
//! The header is the one definition of the ABI; `tests/abi.rs` parses it
//! and fails on any difference (field names, types, offsets, sizes,
//! constants and ioctl numbers), so a change there shows up here.

#![allow(missing_docs)]

pub const DEVICE: &str = "/dev/mpmc";

pub const MPMC_IOC_MAGIC: u32 = 0xB7;
pub const MPMC_DEFAULT_CAPACITY: u32 = 64;
pub const MPMC_DEFAULT_MSG_SIZE: u32 = 4096;
pub const MPMC_CONFIG_OVERWRITE: u32 = 1;
pub const MPMC_CONFIG_THROUGHPUT: u32 = 2;
pub const MPMC_CONFIG_RING: u32 = 4;
pub const MPMC_PRIO_MAX: u32 = 32;
pub const MPMC_SHUT_RD: u32 = 1;
pub const MPMC_SHUT_WR: u32 = 2;
pub const MPMC_SHUT_RDWR: u32 = 3;
pub const MPMC_ROLE_SEND: u32 = 1;
pub const MPMC_ROLE_RECV: u32 = 2;
pub const MPMC_BATCH_MAX: u32 = 1024;
pub const MPMC_RECV_PEEK: u32 = 1;

// Ring mode (MPMC_CONFIG_RING; Documentation/ring-mode.rst). The crate does
// not map the ring itself (the C library's mpmc_ring_* calls do); these are
// here so that the whole ABI has one checked Rust copy. Constants the header
// writes with a ULL suffix are u64, the others u32.
pub const MPMC_RING_OFF_CTRL: u64 = 0x0;
pub const MPMC_RING_OFF_RING: u64 = 0x1000_0000;
pub const MPMC_RING_MAGIC: u32 = 0x4d50_5247;
pub const MPMC_RING_VERSION: u32 = 1;
pub const MPMC_RING_F_BROKEN: u32 = 1;
pub const MPMC_RING_F_FRONT: u32 = 2;
pub const MPMC_RING_F_SHUT_WR: u32 = 4;
pub const MPMC_RING_F_SHUT_RD: u32 = 8;
pub const MPMC_RING_W_POLL: u32 = 0x8000_0000;
pub const MPMC_RING_ENQ_OFF: u32 = 0;
pub const MPMC_RING_DEQ_OFF: u32 = 128;
pub const MPMC_RING_CLOSED: u64 = 1 << 63;
pub const MPMC_RING_POS_SHIFT: u32 = 16;
pub const MPMC_RING_POS_MASK: u64 = (1 << 48) - 1;
pub const MPMC_RING_OWNER_SHIFT: u32 = 2;
pub const MPMC_RING_OWNER_MAX: u32 = 0x3fff;
pub const MPMC_RING_STATE_MASK: u32 = 3;
pub const MPMC_RING_FREE: u32 = 0;
pub const MPMC_RING_CLAIMED: u32 = 1;
pub const MPMC_RING_FULL: u32 = 2;
pub const MPMC_RING_READING: u32 = 3;
pub const MPMC_RING_LEN_SKIP: u32 = 0xffff_ffff;

/// `MPMC_RING_WORD(pos, owner, state)`: a slot word.
pub const fn mpmc_ring_word(pos: u64, owner: u32, state: u32) -> u64 {
    ((pos & MPMC_RING_POS_MASK) << MPMC_RING_POS_SHIFT)
        | ((owner as u64) << MPMC_RING_OWNER_SHIFT)
        | state as u64
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mpmc_config {
    pub capacity: u32,
    pub max_msg_size: u32,
    pub flags: u32,
    pub reserved: [u32; 5],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mpmc_stats {
    pub capacity: u32,
    pub max_msg_size: u32,
    pub queued_msgs: u32,
    pub shutdown: u32,
    pub queued_bytes: u64,
    pub send_files: u32,
    pub recv_files: u32,
    pub blocked_senders: u32,
    pub blocked_receivers: u32,
    pub total_sent: u64,
    pub total_received: u64,
    pub total_dropped: u64,
    pub reserved: [u64; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mpmc_endpoint {
    pub roles: u32,
    pub flags: u32,
    pub reserved: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mpmc_msgvec {
    pub buf: u64,
    pub len: u32,
    pub prio: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mpmc_batch {
    pub vec: u64,
    pub count: u32,
    pub flags: u32,
    pub timeout_ns: i64,
}

/// The control page of a ring channel (mmap offset `MPMC_RING_OFF_CTRL`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mpmc_ring_ctrl {
    pub magic: u32,
    pub version: u32,
    pub nr_slots: u32,
    pub slot_mask: u32,
    pub slot_size: u32,
    pub max_msg_size: u32,
    pub slots_offset: u32,
    pub pos_bits: u32,
    pub ring_size: u64,
    pub reserved0: [u64; 3],
    pub flags: u32,
    pub recv_waiters: u32,
    pub send_waiters: u32,
    pub reserved1: [u32; 13],
}

/// The header of a ring slot; its payload (C's `__u8 data[]`, `max_msg_size`
/// bytes) follows at `size_of::<mpmc_ring_slot>()`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mpmc_ring_slot {
    pub word: u64,
    pub len: u32,
    pub reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mpmc_ring_info {
    pub addr: u64,
    pub mapper_id: u32,
    pub nr_slots: u32,
    pub slot_size: u32,
    pub flags: u32,
    pub reserved: [u64; 2],
}

// <asm-generic/ioctl.h>, the layout of x86, arm64, riscv.
const IOC_NONE: u32 = 0;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

pub const fn ioc(dir: u32, nr: u32, size: usize) -> u64 {
    ((dir << 30) | ((size as u32) << 16) | (MPMC_IOC_MAGIC << 8) | nr) as u64
}

use std::mem::size_of;
pub const MPMC_IOC_GET_CONFIG: u64 = ioc(IOC_READ, 1, size_of::<mpmc_config>());
pub const MPMC_IOC_SET_CONFIG: u64 = ioc(IOC_WRITE, 2, size_of::<mpmc_config>());
pub const MPMC_IOC_GET_STATS: u64 = ioc(IOC_READ, 3, size_of::<mpmc_stats>());
pub const MPMC_IOC_SHUTDOWN: u64 = ioc(IOC_NONE, 4, 0);
pub const MPMC_IOC_NEW_ENDPOINT: u64 = ioc(IOC_WRITE, 5, size_of::<mpmc_endpoint>());
pub const MPMC_IOC_SEND: u64 = ioc(IOC_READ | IOC_WRITE, 6, size_of::<mpmc_batch>());
pub const MPMC_IOC_RECV: u64 = ioc(IOC_READ | IOC_WRITE, 7, size_of::<mpmc_batch>());
pub const MPMC_IOC_RING_INFO: u64 = ioc(IOC_READ | IOC_WRITE, 8, size_of::<mpmc_ring_info>());
pub const MPMC_IOC_RING_WAKE: u64 = ioc(IOC_NONE, 9, 0);
