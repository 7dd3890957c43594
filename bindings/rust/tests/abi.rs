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

/// A `#define` of the header: `params` is `Some` for a function-like macro.
#[derive(Debug)]
struct Define {
    name: String,
    params: Option<Vec<String>>,
    value: String,
}

fn defines() -> Vec<Define> {
    uncommented()
        .replace("\\\n", " ")
        .lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix("#define")?;
            if !rest.starts_with(char::is_whitespace) {
                return None;
            }
            let rest = rest.trim_start();
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let name = rest[..end].to_string();
            let mut rest = &rest[end..];
            // No blank between the name and `(`: a function-like macro.
            let params = match rest.strip_prefix('(') {
                Some(r) => {
                    let close = r.find(')').expect(&name);
                    rest = &r[close + 1..];
                    Some(r[..close].split(',').map(|p| p.trim().to_string()).collect())
                }
                None => None,
            };
            let value = rest.split_whitespace().collect::<Vec<_>>().join(" ");
            Some(Define { name, params, value })
        })
        .filter(|d| d.name.starts_with("MPMC_"))
        .collect()
}

/// A value of the header's integer constant expressions and whether its C
/// type is 64 bits wide (else 32).
type CVal = (u64, bool);

/// Evaluates the integer constant expressions of the header as C does, for
/// the forms it uses: literals with U/ULL suffixes, names of earlier
/// constants, parentheses, `(__u64)`/`(__u32)` casts, `|`, `&`, `<<`, `>>`,
/// `+` and `-`. Anything else, any overflow or a literal whose type would
/// differ between 32- and 64-bit userspace panics.
struct Eval<'a> {
    toks: Vec<String>,
    at: usize,
    names: &'a dyn Fn(&str) -> Option<CVal>,
}

impl Eval<'_> {
    fn run(expr: &str, names: &dyn Fn(&str) -> Option<CVal>) -> CVal {
        let mut toks = Vec::new();
        let b = expr.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i] as char;
            if c.is_whitespace() {
                i += 1;
            } else if c.is_ascii_alphanumeric() || c == '_' {
                let j = i + expr[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(b.len() - i);
                toks.push(expr[i..j].to_string());
                i = j;
            } else if expr[i..].starts_with("<<") || expr[i..].starts_with(">>") {
                toks.push(expr[i..i + 2].to_string());
                i += 2;
            } else if "()|&+-".contains(c) {
                toks.push(c.to_string());
                i += 1;
            } else {
                panic!("{expr}: cannot evaluate {c:?}");
            }
        }
        let mut e = Eval { toks, at: 0, names };
        let v = e.or();
        assert_eq!(e.at, e.toks.len(), "{expr}: trailing tokens");
        v
    }

    fn peek(&self) -> Option<&str> {
        self.toks.get(self.at).map(|s| s.as_str())
    }

    fn next(&mut self) -> String {
        self.at += 1;
        self.toks.get(self.at - 1).expect("expression ends early").clone()
    }

    fn narrow(v: u128, wide: bool) -> CVal {
        let max = if wide { u64::MAX as u128 } else { u32::MAX as u128 };
        assert!(v <= max, "{v:#x} overflows its type");
        (v as u64, wide)
    }

    fn or(&mut self) -> CVal {
        let mut l = self.and();
        while self.peek() == Some("|") {
            self.next();
            let r = self.and();
            l = (l.0 | r.0, l.1 || r.1);
        }
        l
    }

    fn and(&mut self) -> CVal {
        let mut l = self.shift();
        while self.peek() == Some("&") {
            self.next();
            let r = self.shift();
            l = (l.0 & r.0, l.1 || r.1);
        }
        l
    }

    fn shift(&mut self) -> CVal {
        let mut l = self.add();
        while let Some(op @ ("<<" | ">>")) = self.peek() {
            let left = op == "<<";
            self.next();
            let r = self.add();
            // The type of a shift is that of its left operand.
            assert!(r.0 < if l.1 { 64 } else { 32 }, "shift by {}", r.0);
            l = if left { Self::narrow((l.0 as u128) << r.0, l.1) } else { (l.0 >> r.0, l.1) };
        }
        l
    }

    fn add(&mut self) -> CVal {
        let mut l = self.unary();
        while let Some(op @ ("+" | "-")) = self.peek() {
            let plus = op == "+";
            self.next();
            let r = self.unary();
            let v = if plus { l.0 as u128 + r.0 as u128 } else { (l.0 as u128).checked_sub(r.0 as u128).expect("negative") };
            l = Self::narrow(v, l.1 || r.1);
        }
        l
    }

    fn unary(&mut self) -> CVal {
        let t = self.next();
        if t == "(" {
            let cast = match self.peek() {
                Some("__u64") => Some(true),
                Some("__u32") => Some(false),
                _ => None,
            };
            if let Some(wide) = cast {
                self.next();
                assert_eq!(self.next(), ")");
                let v = self.unary();
                let mask = if wide { u64::MAX } else { u32::MAX as u64 };
                return (v.0 & mask, wide);
            }
            let v = self.or();
            assert_eq!(self.next(), ")");
            return v;
        }
        if t.starts_with(|c: char| c.is_ascii_digit()) {
            let digits = t.trim_end_matches(|c: char| "uUlL".contains(c));
            let suffix = t[digits.len()..].to_ascii_lowercase();
            // `L` alone is 32 bits on 32-bit userspace, 64 on 64-bit.
            let wide = match suffix.as_str() {
                "" | "u" => false,
                "ull" | "llu" | "ll" => true,
                s => panic!("{t}: suffix {s}"),
            };
            let v = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
                Some(h) => u64::from_str_radix(h, 16),
                None => digits.parse(),
            }
            .unwrap_or_else(|e| panic!("{t}: {e}"));
            // An unsuffixed literal too big for 32 bits is a long: 32 or 64 bits.
            return Self::narrow(v as u128, wide);
        }
        (self.names)(&t).unwrap_or_else(|| panic!("unknown name {t}"))
    }
}

/// (field, type, count) of `struct NAME` in the header; count `None` for a
/// flexible array member (`data[]`).
fn fields(name: &str) -> Vec<(String, String, Option<usize>)> {
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
                Some((f, "]")) => (f.to_string(), ty.to_string(), None),
                Some((f, n)) => (f.to_string(), ty.to_string(), Some(n.trim_end_matches(']').parse().unwrap())),
                None => (f.to_string(), ty.to_string(), Some(1)),
            })
        })
        .collect()
}

fn c_size(ty: &str) -> usize {
    match ty {
        "__u8" | "__s8" => 1,
        "__u16" | "__s16" => 2,
        "__u32" | "__s32" => 4,
        "__u64" | "__s64" => 8,
        t => panic!("type {t}"),
    }
}

/// Compares the header's fields with (name, offset, size) of the Rust
/// struct, the C offsets computed by natural alignment. A trailing flexible
/// array member (`(name, type)`, or `None` when there must be none) has no
/// Rust field: it must start where the Rust struct ends.
macro_rules! check_struct {
    ($c:literal, $t:ty, [$($f:ident),*]) => {
        check_struct!($c, $t, [$($f),*], None)
    };
    ($c:literal, $t:ty, [$($f:ident),*], $flex:expr) => {{
        let u = MaybeUninit::<$t>::uninit();
        let base = u.as_ptr() as usize;
        let rust: Vec<(String, usize, usize)> = vec![$({
            // SAFETY: only the address of the field is taken.
            let p = unsafe { std::ptr::addr_of!((*u.as_ptr()).$f) };
            (stringify!($f).to_string(), p as usize - base, std::mem::size_of_val(unsafe { &*p }))
        }),*];
        let mut off = 0;
        let mut align = 1;
        let mut c = Vec::new();
        let mut flex: Option<(String, String, usize)> = None;
        for (f, ty, n) in fields($c) {
            assert!(flex.is_none(), "struct {}: {} after a flexible array member", $c, f);
            let s = c_size(&ty);
            align = align.max(s);
            off = (off + s - 1) / s * s;
            match n {
                Some(n) => {
                    c.push((f, off, s * n));
                    off += s * n;
                }
                None => flex = Some((f, ty, off)),
            }
        }
        assert_eq!(rust, c, "struct {}", $c);
        assert_eq!(size_of::<$t>(), (off + 7) / 8 * 8, "sizeof struct {}", $c);
        assert_eq!(std::mem::align_of::<$t>(), align, "alignof struct {}", $c);
        let want: Option<(&str, &str)> = $flex;
        let got = flex.as_ref().map(|(f, ty, _)| (f.as_str(), ty.as_str()));
        assert_eq!(got, want, "flexible array member of struct {}", $c);
        if let Some((_, _, o)) = flex {
            assert_eq!(o, size_of::<$t>(), "offset of the flexible array of struct {}", $c);
        }
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
    check_struct!(
        "mpmc_ring_ctrl",
        sys::mpmc_ring_ctrl,
        [
            magic, version, nr_slots, slot_mask, slot_size, max_msg_size, slots_offset, pos_bits,
            ring_size, reserved0, flags, recv_waiters, send_waiters, reserved1
        ]
    );
    check_struct!("mpmc_ring_slot", sys::mpmc_ring_slot, [word, len, reserved], Some(("data", "__u8")));
    check_struct!(
        "mpmc_ring_info",
        sys::mpmc_ring_info,
        [addr, mapper_id, nr_slots, slot_size, flags, reserved]
    );
}

/// (name, value, size of the Rust constant) of constants of `sys`.
macro_rules! consts {
    ($($n:ident),* $(,)?) => {
        vec![$((stringify!($n), sys::$n as u64, std::mem::size_of_val(&sys::$n))),*]
    };
}

#[test]
fn constants_and_ioctls_match_the_header() {
    let consts: Vec<(&str, u64, usize)> = consts![
        MPMC_IOC_MAGIC,
        MPMC_DEFAULT_CAPACITY,
        MPMC_DEFAULT_MSG_SIZE,
        MPMC_CONFIG_OVERWRITE,
        MPMC_CONFIG_THROUGHPUT,
        MPMC_CONFIG_RING,
        MPMC_PRIO_MAX,
        MPMC_SHUT_RD,
        MPMC_SHUT_WR,
        MPMC_SHUT_RDWR,
        MPMC_ROLE_SEND,
        MPMC_ROLE_RECV,
        MPMC_BATCH_MAX,
        MPMC_RECV_PEEK,
        MPMC_RING_OFF_CTRL,
        MPMC_RING_OFF_RING,
        MPMC_RING_MAGIC,
        MPMC_RING_VERSION,
        MPMC_RING_F_BROKEN,
        MPMC_RING_F_FRONT,
        MPMC_RING_F_SHUT_WR,
        MPMC_RING_F_SHUT_RD,
        MPMC_RING_W_POLL,
        MPMC_RING_ENQ_OFF,
        MPMC_RING_DEQ_OFF,
        MPMC_RING_CLOSED,
        MPMC_RING_POS_SHIFT,
        MPMC_RING_POS_MASK,
        MPMC_RING_OWNER_SHIFT,
        MPMC_RING_OWNER_MAX,
        MPMC_RING_STATE_MASK,
        MPMC_RING_FREE,
        MPMC_RING_CLAIMED,
        MPMC_RING_FULL,
        MPMC_RING_READING,
        MPMC_RING_LEN_SKIP,
    ];
    let ioctls: &[(&str, u64, &str, u32, usize)] = &[
        ("MPMC_IOC_GET_CONFIG", sys::MPMC_IOC_GET_CONFIG, "_IOR", 1, size_of::<sys::mpmc_config>()),
        ("MPMC_IOC_SET_CONFIG", sys::MPMC_IOC_SET_CONFIG, "_IOW", 2, size_of::<sys::mpmc_config>()),
        ("MPMC_IOC_GET_STATS", sys::MPMC_IOC_GET_STATS, "_IOR", 3, size_of::<sys::mpmc_stats>()),
        ("MPMC_IOC_SHUTDOWN", sys::MPMC_IOC_SHUTDOWN, "_IO", 4, 0),
        ("MPMC_IOC_NEW_ENDPOINT", sys::MPMC_IOC_NEW_ENDPOINT, "_IOW", 5, size_of::<sys::mpmc_endpoint>()),
        ("MPMC_IOC_SEND", sys::MPMC_IOC_SEND, "_IOWR", 6, size_of::<sys::mpmc_batch>()),
        ("MPMC_IOC_RECV", sys::MPMC_IOC_RECV, "_IOWR", 7, size_of::<sys::mpmc_batch>()),
        ("MPMC_IOC_RING_INFO", sys::MPMC_IOC_RING_INFO, "_IOWR", 8, size_of::<sys::mpmc_ring_info>()),
        ("MPMC_IOC_RING_WAKE", sys::MPMC_IOC_RING_WAKE, "_IO", 9, 0),
    ];
    // Function-like macros, checked by function_like_macros_match_the_header.
    let funcs = ["MPMC_RING_WORD"];
    let defs = defines();
    assert_eq!(defs.len(), consts.len() + ioctls.len() + funcs.len(), "{defs:?}");
    for n in consts.iter().map(|c| c.0).chain(ioctls.iter().map(|i| i.0)).chain(funcs) {
        assert_eq!(defs.iter().filter(|d| d.name == n).count(), 1, "{n}");
    }
    let mut values = std::collections::HashMap::new();
    for Define { name, params, value } in defs {
        if funcs.contains(&name.as_str()) {
            assert!(params.is_some(), "{name}");
            continue;
        }
        assert!(params.is_none(), "{name}");
        if let Some((_, v, rust_size)) = consts.iter().find(|(n, _, _)| *n == name) {
            if name == "MPMC_SHUT_RDWR" {
                assert_eq!(value, "(MPMC_SHUT_RD | MPMC_SHUT_WR)");
            }
            let (parsed, wide) = Eval::run(&value, &|n| values.get(n).copied());
            assert_eq!(parsed, *v, "{name}");
            // u64 in Rust exactly where the C expression is 64 bits wide.
            assert_eq!(*rust_size, if wide { 8 } else { 4 }, "size of {name}");
            values.insert(name, (parsed, wide));
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
                "mpmc_ring_info" => size_of::<sys::mpmc_ring_info>(),
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
    assert_eq!(sys::MPMC_IOC_RING_INFO, 0xc028_b708);
    assert_eq!(sys::MPMC_IOC_RING_WAKE, 0xb709);
}

/// `MPMC_RING_WORD(pos, owner, state)`: the header's body, evaluated with C's
/// rules, against `sys::mpmc_ring_word`.
#[test]
fn function_like_macros_match_the_header() {
    let defs = defines();
    // The object-like constants, each in terms of those before it.
    let mut values = std::collections::HashMap::new();
    for d in defs.iter().filter(|d| d.params.is_none() && !d.value.starts_with("_IO")) {
        let v = Eval::run(&d.value, &|n| values.get(n).copied());
        values.insert(d.name.clone(), v);
    }
    let word = defs.iter().find(|d| d.name == "MPMC_RING_WORD").expect("MPMC_RING_WORD");
    assert_eq!(word.params.as_deref(), Some(&["pos".to_string(), "owner".to_string(), "state".to_string()][..]));
    let mask = (1u64 << 48) - 1;
    let cases = [
        (0, 0, sys::MPMC_RING_FREE),
        (1, 1, sys::MPMC_RING_CLAIMED),
        (5, sys::MPMC_RING_OWNER_MAX, sys::MPMC_RING_READING),
        (mask, 7, sys::MPMC_RING_FULL),
        ((1 << 48) | 9, 0, sys::MPMC_RING_FULL),
        (u64::MAX, sys::MPMC_RING_OWNER_MAX, sys::MPMC_RING_READING),
    ];
    for (pos, owner, state) in cases {
        let arg = |n: &str| -> Option<CVal> {
            match n {
                "pos" => Some((pos, true)),
                "owner" => Some((owner as u64, false)),
                "state" => Some((state as u64, false)),
                _ => values.get(n).copied(),
            }
        };
        let (c, wide) = Eval::run(&word.value, &arg);
        assert!(wide, "MPMC_RING_WORD is a __u64");
        assert_eq!(sys::mpmc_ring_word(pos, owner, state), c, "MPMC_RING_WORD({pos:#x}, {owner}, {state})");
        // The layout the header's comment gives: pos (mod 2^48) << 16 | owner << 2 | state.
        assert_eq!(c, (pos & mask) << 16 | (owner as u64) << 2 | state as u64);
    }
}

/// The evaluator on the forms the header uses or has used.
#[test]
fn eval_reads_c_constant_expressions() {
    let none = |_: &str| None;
    assert_eq!(Eval::run("0x0ULL", &none), (0, true));
    assert_eq!(Eval::run("0x10000000ULL", &none), (0x1000_0000, true));
    assert_eq!(Eval::run("0x80000000U", &none), (0x8000_0000, false));
    assert_eq!(Eval::run("0xffffffffU", &none), (u32::MAX as u64, false));
    assert_eq!(Eval::run("0x4d505247", &none), (0x4d50_5247, false));
    assert_eq!(Eval::run("128", &none), (128, false));
    assert_eq!(Eval::run("0x8000000000000000ULL", &none), (1 << 63, true));
    assert_eq!(Eval::run("(1ULL << 63)", &none), (1 << 63, true));
    assert_eq!(Eval::run("((1ULL << 48) - 1)", &none), ((1 << 48) - 1, true));
    assert_eq!(Eval::run("((__u64)(3) << 40) | 2", &none), (3 << 40 | 2, true));
    let names = |n: &str| match n {
        "A" => Some((1, false)),
        "B" => Some((2, false)),
        _ => None,
    };
    assert_eq!(Eval::run("(A | B)", &names), (3, false));
    for bad in ["1 << 32", "0x100000000", "1L", "(1ULL << 64)", "(0 - 1)", "C", "1 * 2", "(1"] {
        let r = std::panic::catch_unwind(|| Eval::run(bad, &names));
        assert!(r.is_err(), "{bad} evaluated");
    }
}
