// SPDX-License-Identifier: LGPL-2.1 OR MIT
//! uapi/linux/mpmc.h is the one home of the ABI: parse it and compare
//! everything src/sys.rs says (constants, ioctl numbers, struct fields,
//! their types, offsets and sizes).

use mpmc::sys;
use std::mem::{size_of, MaybeUninit};

const HEADER: &str = include_str!("../../../uapi/linux/mpmc.h");

fn uncommented() -> String {
    let mut out = String::new();
    let mut rest = HEADER;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        let j = rest[i..].find("*/").expect("unterminated comment");
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

fn defines() -> Vec<(String, String)> {
    uncommented()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            if w.next()? != "#define" {
                return None;
            }
            let name = w.next()?.to_string();
            Some((name, w.collect::<Vec<_>>().join(" ")))
        })
        .filter(|(n, _)| n.starts_with("MPMC_"))
        .collect()
}

/// (field, type, count) of `struct NAME` in the header.
fn fields(name: &str) -> Vec<(String, String, usize)> {
    let text = uncommented();
    let start = text.find(&format!("struct {name} {{")).expect(name);
    let body = &text[start..start + text[start..].find("};").unwrap()];
    body.lines()
        .skip(1)
        .filter_map(|l| {
            let l = l.trim().strip_suffix(';')?;
            let (ty, f) = l.split_once(char::is_whitespace)?;
            let f = f.trim();
            Some(match f.split_once('[') {
                Some((f, n)) => (f.to_string(), ty.to_string(), n.trim_end_matches(']').parse().unwrap()),
                None => (f.to_string(), ty.to_string(), 1),
            })
        })
        .collect()
}

fn c_size(ty: &str) -> usize {
    match ty {
        "__u32" | "__s32" => 4,
        "__u64" | "__s64" => 8,
        t => panic!("type {t}"),
    }
}

/// Compares the header's fields with (name, offset, size) of the Rust
/// struct, the C offsets computed by natural alignment.
macro_rules! check_struct {
    ($c:literal, $t:ty, [$($f:ident),*]) => {{
        let u = MaybeUninit::<$t>::uninit();
        let base = u.as_ptr() as usize;
        let rust: Vec<(String, usize, usize)> = vec![$({
            // SAFETY: only the address of the field is taken.
            let p = unsafe { std::ptr::addr_of!((*u.as_ptr()).$f) };
            (stringify!($f).to_string(), p as usize - base, std::mem::size_of_val(unsafe { &*p }))
        }),*];
        let mut off = 0;
        let mut c = Vec::new();
        for (f, ty, n) in fields($c) {
            let s = c_size(&ty);
            off = (off + s - 1) / s * s;
            c.push((f, off, s * n));
            off += s * n;
        }
        assert_eq!(rust, c, "struct {}", $c);
        assert_eq!(size_of::<$t>(), (off + 7) / 8 * 8, "sizeof struct {}", $c);
    }};
}

#[test]
fn structs_match_the_header() {
    check_struct!("mpmc_config", sys::mpmc_config, [capacity, max_msg_size, flags, reserved]);
    check_struct!(
        "mpmc_stats",
        sys::mpmc_stats,
        [
            capacity, max_msg_size, queued_msgs, shutdown, queued_bytes, send_files, recv_files,
            blocked_senders, blocked_receivers, total_sent, total_received, total_dropped, reserved
        ]
    );
    check_struct!("mpmc_endpoint", sys::mpmc_endpoint, [roles, flags, reserved]);
    check_struct!("mpmc_msgvec", sys::mpmc_msgvec, [buf, len, prio]);
    check_struct!("mpmc_batch", sys::mpmc_batch, [vec, count, flags, timeout_ns]);
}

#[test]
fn constants_and_ioctls_match_the_header() {
    let consts: &[(&str, u64)] = &[
        ("MPMC_IOC_MAGIC", sys::MPMC_IOC_MAGIC as u64),
        ("MPMC_DEFAULT_CAPACITY", sys::MPMC_DEFAULT_CAPACITY as u64),
        ("MPMC_DEFAULT_MSG_SIZE", sys::MPMC_DEFAULT_MSG_SIZE as u64),
        ("MPMC_CONFIG_OVERWRITE", sys::MPMC_CONFIG_OVERWRITE as u64),
        ("MPMC_CONFIG_THROUGHPUT", sys::MPMC_CONFIG_THROUGHPUT as u64),
        ("MPMC_PRIO_MAX", sys::MPMC_PRIO_MAX as u64),
        ("MPMC_SHUT_RD", sys::MPMC_SHUT_RD as u64),
        ("MPMC_SHUT_WR", sys::MPMC_SHUT_WR as u64),
        ("MPMC_SHUT_RDWR", sys::MPMC_SHUT_RDWR as u64),
        ("MPMC_ROLE_SEND", sys::MPMC_ROLE_SEND as u64),
        ("MPMC_ROLE_RECV", sys::MPMC_ROLE_RECV as u64),
        ("MPMC_BATCH_MAX", sys::MPMC_BATCH_MAX as u64),
        ("MPMC_RECV_PEEK", sys::MPMC_RECV_PEEK as u64),
    ];
    let ioctls: &[(&str, u64, &str, u32, usize)] = &[
        ("MPMC_IOC_GET_CONFIG", sys::MPMC_IOC_GET_CONFIG, "_IOR", 1, size_of::<sys::mpmc_config>()),
        ("MPMC_IOC_SET_CONFIG", sys::MPMC_IOC_SET_CONFIG, "_IOW", 2, size_of::<sys::mpmc_config>()),
        ("MPMC_IOC_GET_STATS", sys::MPMC_IOC_GET_STATS, "_IOR", 3, size_of::<sys::mpmc_stats>()),
        ("MPMC_IOC_SHUTDOWN", sys::MPMC_IOC_SHUTDOWN, "_IO", 4, 0),
        ("MPMC_IOC_NEW_ENDPOINT", sys::MPMC_IOC_NEW_ENDPOINT, "_IOW", 5, size_of::<sys::mpmc_endpoint>()),
        ("MPMC_IOC_SEND", sys::MPMC_IOC_SEND, "_IOWR", 6, size_of::<sys::mpmc_batch>()),
        ("MPMC_IOC_RECV", sys::MPMC_IOC_RECV, "_IOWR", 7, size_of::<sys::mpmc_batch>()),
    ];
    let defs = defines();
    assert_eq!(defs.len(), consts.len() + ioctls.len(), "{defs:?}");
    for (name, value) in defs {
        if let Some((_, v)) = consts.iter().find(|(n, _)| *n == name) {
            let parsed = if name == "MPMC_SHUT_RDWR" {
                assert_eq!(value, "(MPMC_SHUT_RD | MPMC_SHUT_WR)");
                3
            } else if let Some(h) = value.strip_prefix("0x") {
                u64::from_str_radix(h, 16).unwrap()
            } else {
                value.parse().unwrap()
            };
            assert_eq!(parsed, *v, "{name}");
            continue;
        }
        let (_, v, mac, nr, size) = ioctls.iter().find(|i| i.0 == name).expect(&name);
        let sname = value.split("struct ").nth(1).map(|s| s.trim_end_matches(')').trim());
        let expect = match *mac {
            "_IO" => format!("_IO(MPMC_IOC_MAGIC, {nr})"),
            m => format!("{m}(MPMC_IOC_MAGIC, {nr}, struct {})", sname.unwrap()),
        };
        assert_eq!(value, expect, "{name}");
        if let Some(s) = sname {
            let rust_size = match s {
                "mpmc_config" => size_of::<sys::mpmc_config>(),
                "mpmc_stats" => size_of::<sys::mpmc_stats>(),
                "mpmc_endpoint" => size_of::<sys::mpmc_endpoint>(),
                "mpmc_batch" => size_of::<sys::mpmc_batch>(),
                other => panic!("{other}"),
            };
            assert_eq!(rust_size, *size, "{name}");
        }
        let dir = match *mac { "_IO" => 0, "_IOW" => 1, "_IOR" => 2, _ => 3 };
        assert_eq!(*v, sys::ioc(dir, *nr, *size), "{name}");
    }
    // As the C compiler computes them on x86-64.
    assert_eq!(sys::MPMC_IOC_SEND, 0xc018_b706);
    assert_eq!(sys::MPMC_IOC_GET_STATS, 0x8058_b703);
}
