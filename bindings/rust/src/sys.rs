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
pub const MPMC_PRIO_MAX: u32 = 32;
pub const MPMC_SHUT_RD: u32 = 1;
pub const MPMC_SHUT_WR: u32 = 2;
pub const MPMC_SHUT_RDWR: u32 = 3;
pub const MPMC_ROLE_SEND: u32 = 1;
pub const MPMC_ROLE_RECV: u32 = 2;
pub const MPMC_BATCH_MAX: u32 = 1024;
pub const MPMC_RECV_PEEK: u32 = 1;

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
