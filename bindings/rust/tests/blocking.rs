// SPDX-License-Identifier: LGPL-2.1 OR MIT
//! The blocking API against the real device (`make check` runs these in
//! its guest with --include-ignored).

use mpmc::prelude::*;
use mpmc::{Channel, Config, Error, Sender, Shutdown};
use std::os::unix::io::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

#[test]
#[ignore = "needs /dev/mpmc"]
fn send_recv_fifo_and_stats() {
    let ch = Channel::new().unwrap();
    assert_eq!(ch.capacity().unwrap(), 64);
    for i in 0..10 {
        ch.send(format!("m{i}").as_bytes()).unwrap();
    }
    assert_eq!(ch.len().unwrap(), 10);
    for i in 0..10 {
        assert_eq!(ch.recv().unwrap(), format!("m{i}").as_bytes());
    }
    let st = ch.stats().unwrap();
    assert_eq!((st.total_sent, st.total_received, st.queued_msgs), (10, 10, 0));
    assert_eq!((st.send_files, st.recv_files), (1, 1));
    assert!(ch.is_empty().unwrap() && !ch.is_closed().unwrap());
}

#[test]
#[ignore = "needs /dev/mpmc"]
fn try_calls_tell_full_empty_closed_apart() {
    let ch = Channel::with_config(Config { capacity: 2, ..Config::default() }).unwrap();
    assert!(matches!(ch.try_recv(), Err(Error::Empty)));
    ch.try_send(b"a").unwrap();
    ch.try_send(b"b").unwrap();
    assert!(matches!(ch.try_send(b"c"), Err(Error::Full)));
    ch.shutdown(Shutdown::Write).unwrap();
    assert!(ch.is_closed().unwrap());
    assert!(matches!(ch.try_send(b"c"), Err(Error::Closed)));
    assert!(matches!(ch.send(b"c"), Err(Error::Closed)));
    assert_eq!(ch.try_recv().unwrap(), b"a");
    assert_eq!(ch.recv().unwrap(), b"b");
    assert!(matches!(ch.try_recv(), Err(Error::Closed)));
    assert!(matches!(ch.recv(), Err(Error::Closed)));
}

#[test]
#[ignore = "needs /dev/mpmc"]
fn timeouts() {
    let ch = Channel::with_config(Config { capacity: 1, ..Config::default() }).unwrap();
    let t0 = Instant::now();
    assert!(matches!(ch.recv_timeout(Duration::from_millis(100)), Err(Error::Timeout)));
    assert!(t0.elapsed() >= Duration::from_millis(95));
    ch.send_timeout(b"x", Duration::from_millis(100)).unwrap();
    assert!(matches!(ch.send_timeout(b"y", Duration::from_millis(100)), Err(Error::Timeout)));
    assert_eq!(ch.recv_timeout(Duration::from_millis(100)).unwrap(), b"x");
}

#[test]
#[ignore = "needs /dev/mpmc"]
fn batches_priorities_peek() {
    let ch = Channel::with_config(Config { capacity: 5, ..Config::default() }).unwrap();
    let msgs: Vec<Vec<u8>> = (0..8).map(|i| format!("{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    assert_eq!(ch.send_batch(&refs, None).unwrap(), 5);
    assert_eq!(ch.recv_batch(3, None).unwrap(), [b"0", b"1", b"2"]);
    assert_eq!(ch.recv_batch(10, Some(Duration::ZERO)).unwrap(), [b"3", b"4"]);
    assert!(matches!(ch.recv_batch(10, Some(Duration::ZERO)), Err(Error::Empty)));
    assert!(ch.peek(4).unwrap().is_empty());
    ch.send(b"low").unwrap();
    ch.send_prio(b"high", 7).unwrap();
    assert_eq!(ch.peek(4).unwrap(), [b"high".to_vec(), b"low".to_vec()]);
    assert_eq!(ch.recv_prio().unwrap(), (b"high".to_vec(), 7));
    ch.shutdown(Shutdown::Write).unwrap();
    assert_eq!(ch.recv().unwrap(), b"low");
    assert!(matches!(ch.recv_batch(4, None), Err(Error::Closed)));
}

#[test]
#[ignore = "needs /dev/mpmc"]
fn message_sizes_and_growing_max_msg_size() {
    let small = Config { capacity: 4, max_msg_size: 16, flags: 0 };
    let ch = Channel::with_config(small).unwrap();
    assert_eq!(ch.config().unwrap(), small);
    assert_eq!(ch.send(&[0u8; 17]).unwrap_err().raw_os_error(), Some(libc::EMSGSIZE));
    let rx = ch.receiver().unwrap();
    assert!(matches!(rx.try_recv(), Err(Error::Empty))); // rx now sized for 16
    ch.set_config(&Config { max_msg_size: 8192, ..small }).unwrap();
    ch.send(&[7u8; 5000]).unwrap();
    assert_eq!(rx.recv().unwrap(), vec![7u8; 5000]); // EMSGSIZE, then grown
}

#[test]
#[ignore = "needs /dev/mpmc"]
fn roles_clone_and_last_sender_gives_eof() {
    let (tx, rx) = Channel::new().unwrap().split().unwrap();
    // The kernel enforces roles whatever the Rust type says.
    let as_both = Channel::from_fd(rx.as_fd().try_clone_to_owned().unwrap());
    assert_eq!(as_both.send(b"x").unwrap_err().raw_os_error(), Some(libc::EBADF));
    let tx2 = tx.clone();
    assert_eq!(tx.stats().unwrap().send_files, 2);
    tx.send(b"one").unwrap();
    drop(tx);
    tx2.send(b"two").unwrap();
    drop(tx2);
    let got: Vec<Vec<u8>> = rx.iter().collect();
    assert_eq!(got, [b"one", b"two"]);
}

#[test]
#[ignore = "needs /dev/mpmc"]
#[allow(clippy::needless_collect)] // every thread must start before tx/rx drop
fn threads_exactly_once() {
    let (tx, rx) = Channel::with_config(Config { capacity: 4, ..Config::default() })
        .unwrap()
        .split()
        .unwrap();
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || rx.iter().collect::<Vec<_>>())
        })
        .collect();
    drop(rx);
    let producers: Vec<_> = (0..3)
        .map(|k| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    tx.send(format!("{k}:{i}").as_bytes()).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    producers.into_iter().for_each(|p| p.join().unwrap());
    let mut got: Vec<Vec<u8>> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let mut want: Vec<Vec<u8>> = (0..3).flat_map(|k| (0..300).map(move |i| format!("{k}:{i}").into_bytes())).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
#[ignore = "needs /dev/mpmc"]
fn endpoint_over_scm_rights_to_a_child_process() {
    let (tx, rx) = Channel::new().unwrap().split().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    // SAFETY: the child only makes system calls and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        drop(tx);
        drop(rx);
        let code = (|| -> mpmc::Result<()> {
            let tx = Sender::from_fd(mpmc::recv_fd(&b)?);
            for i in 0..500 {
                tx.send(format!("{i}").as_bytes())?;
            }
            Ok(())
        })()
        .map_or(1, |_| 0);
        // SAFETY: leave without running the test harness's destructors.
        unsafe { libc::_exit(code) };
    }
    mpmc::send_fd(&a, tx.as_fd()).unwrap();
    drop(tx); // now only the child holds the send role
    let got: Vec<u32> = rx.iter().map(|m| String::from_utf8(m).unwrap().parse().unwrap()).collect();
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(status, 0);
    assert_eq!(got, (0..500).collect::<Vec<_>>());
}
