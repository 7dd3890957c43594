// SPDX-License-Identifier: LGPL-2.1 OR MIT
//! The tokio API against the real device (run in the guest with
//! --include-ignored).

use futures::{SinkExt, StreamExt};
use mpmc::prelude::*;
use mpmc::{Async, Channel, Config, Error, Receiver, Sender};
use std::collections::HashSet;
use std::os::unix::io::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn small(capacity: u32) -> Channel {
    Channel::with_config(Config { capacity, ..Config::default() }).unwrap()
}

#[tokio::test]
#[ignore = "needs /dev/mpmc"]
async fn await_send_recv_through_a_full_channel() {
    let (tx, rx) = small(2).split().unwrap();
    let (tx, rx) = (Async::new(tx).unwrap(), Async::new(rx).unwrap());
    let producer = tokio::spawn(async move {
        for i in 0..200u32 {
            tx.send(&i.to_le_bytes()).await.unwrap(); // waits while full
        }
    });
    for i in 0..200u32 {
        assert_eq!(rx.recv().await.unwrap(), i.to_le_bytes());
    }
    producer.await.unwrap();
    assert!(matches!(rx.recv().await, Err(Error::Closed))); // the sender task dropped tx
}

#[tokio::test]
#[ignore = "needs /dev/mpmc"]
async fn stream_and_sink() {
    let (tx, rx) = small(3).split().unwrap();
    let mut sink = Async::new(tx).unwrap();
    let stream = Async::new(rx).unwrap();
    let producer = tokio::spawn(async move {
        for i in 0..100 {
            SinkExt::send(&mut sink, format!("{i}").into_bytes()).await.unwrap();
        }
        sink.close().await.unwrap();
    });
    let got: Vec<String> = stream.map(|m| String::from_utf8(m.unwrap()).unwrap()).collect().await;
    producer.await.unwrap();
    assert_eq!(got, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
#[ignore = "needs /dev/mpmc"]
async fn recv_many_takes_what_is_queued() {
    let ch = Async::new(small(16)).unwrap();
    let msgs: Vec<Vec<u8>> = (0..10).map(|i| vec![i]).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    assert_eq!(ch.send_batch(&refs).await.unwrap(), 10);
    assert_eq!(ch.recv_many(4).await.unwrap(), msgs[..4].to_vec());
    assert_eq!(ch.recv_many(100).await.unwrap(), msgs[4..].to_vec());
}

/// A producer in another process; the consumer receives under
/// `tokio::select!` against short timeouts, so many recv futures are
/// dropped while waiting. Every message must arrive exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs /dev/mpmc"]
async fn dropped_recv_futures_lose_nothing() {
    const N: u32 = 3000;
    let (tx, rx) = small(8).split().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    // SAFETY: the child makes system calls only (no runtime, no allocator
    // state shared with other threads matters: it allocates after fork
    // only through a fresh single thread) and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        drop(rx);
        let code = (|| -> mpmc::Result<()> {
            let tx = Sender::from_fd(mpmc::recv_fd(&b)?);
            for i in 0..N {
                tx.send(&i.to_le_bytes())?;
                if i % 97 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            Ok(())
        })()
        .map_or(1, |_| 0);
        // SAFETY: leave without the harness's destructors.
        unsafe { libc::_exit(code) };
    }
    mpmc::send_fd(&a, tx.as_fd()).unwrap();
    drop(tx);
    let rx = Async::new(rx).unwrap();
    let mut got = Vec::new();
    let mut timeouts = 0u32;
    let mut ticks = 0u64;
    loop {
        ticks += 1;
        let t = Duration::from_micros([0, 10, 100, 1000][(ticks % 4) as usize]);
        tokio::select! {
            r = rx.recv() => match r {
                Ok(m) => got.push(u32::from_le_bytes(m.try_into().unwrap())),
                Err(Error::Closed) => break,
                Err(e) => panic!("{e}"),
            },
            _ = tokio::time::sleep(t) => timeouts += 1,
        }
    }
    let mut status = 0;
    // SAFETY: our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(status, 0);
    assert!(timeouts > 0, "no recv future was dropped");
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "lost, duplicated or reordered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs /dev/mpmc"]
async fn many_tasks_exactly_once() {
    let ch = small(4);
    let mut consumers = Vec::new();
    for _ in 0..4 {
        let rx = Async::new(ch.receiver().unwrap()).unwrap();
        consumers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Ok(m) = rx.recv().await {
                got.push(m);
            }
            got
        }));
    }
    let mut producers = Vec::new();
    for k in 0..4 {
        let tx = Async::new(ch.sender().unwrap()).unwrap();
        producers.push(tokio::spawn(async move {
            for i in 0..250 {
                tx.send(format!("{k}:{i}").as_bytes()).await.unwrap();
            }
        }));
    }
    drop(ch);
    for p in producers {
        p.await.unwrap();
    }
    let mut seen = HashSet::new();
    for c in consumers {
        for m in c.await.unwrap() {
            assert!(seen.insert(m), "duplicate");
        }
    }
    assert_eq!(seen.len(), 1000);
}

#[tokio::test]
#[ignore = "needs /dev/mpmc"]
async fn async_and_blocking_share_a_file() {
    let ch = small(4);
    let rx: Receiver = ch.receiver().unwrap();
    let arx = Async::new(rx.clone()).unwrap();
    let blocking = std::thread::spawn(move || rx.recv().unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    ch.send(b"to the blocked one").unwrap(); // a blocked receiver is served first
    ch.send(b"to the task").unwrap();
    assert_eq!(arx.recv().await.unwrap(), b"to the task");
    assert_eq!(blocking.join().unwrap(), b"to the blocked one");
}
