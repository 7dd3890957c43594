// SPDX-License-Identifier: LGPL-2.1 OR MIT
//! bench_async [N]: tokio `recv().await` of N 64-byte messages over
//! /dev/mpmc between two processes, against tokio's own bounded `mpsc`
//! (64 slots) within one process and a `UnixStream` pair across processes
//! (fixed 64-byte records). Prints one `bench:` line per transport.
use std::time::Instant;
use mpmc::Endpoint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MSG: usize = 64;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Fork a child running `child` (which makes its own runtime and its own
/// copies of what it uses: the parent's are dropped there at `_exit`);
/// returns its pid.
fn fork_child(child: impl FnOnce()) -> libc::pid_t {
    // SAFETY: no runtime or thread exists in this process at fork time.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        child();
        // SAFETY: leave without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    pid
}

fn wait(pid: libc::pid_t) {
    let mut st = 0;
    // SAFETY: our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    assert_eq!(st, 0, "child failed");
}

fn report(name: &str, n: u64, t: f64) {
    println!("bench: transport={name} messages={n} msg_size={MSG} secs={t:.3} msg_per_s={:.0}", n as f64 / t);
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let payload = [7u8; MSG];

    // /dev/mpmc, two processes.
    let (tx, rx) = mpmc::Channel::new().unwrap().split().unwrap();
    let t0 = Instant::now();
    let pid = fork_child(|| {
        rt().block_on(async {
            let tx = mpmc::Async::new(tx.try_clone().unwrap()).unwrap();
            for _ in 0..n {
                tx.send(&payload).await.unwrap();
            }
        })
    });
    drop(tx);
    let got = rt().block_on(async {
        let rx = mpmc::Async::new(rx).unwrap();
        let mut got = 0u64;
        while let Ok(m) = rx.recv().await {
            assert_eq!(m.len(), MSG);
            got += 1;
        }
        got
    });
    let t = t0.elapsed().as_secs_f64();
    wait(pid);
    assert_eq!(got, n);
    report("mpmc-2proc", n, t);

    // tokio::sync::mpsc, one process.
    let t = rt().block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
        let t0 = Instant::now();
        tokio::spawn(async move {
            for _ in 0..n {
                tx.send(payload.to_vec()).await.unwrap();
            }
        });
        let mut got = 0u64;
        while let Some(m) = rx.recv().await {
            assert_eq!(m.len(), MSG);
            got += 1;
        }
        assert_eq!(got, n);
        t0.elapsed().as_secs_f64()
    });
    report("tokio-mpsc-1proc", n, t);

    // UnixStream pair, two processes.
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let t0 = Instant::now();
    let pid = fork_child(|| {
        rt().block_on(async {
            let a = a.try_clone().unwrap();
            a.set_nonblocking(true).unwrap();
            let mut a = tokio::net::UnixStream::from_std(a).unwrap();
            for _ in 0..n {
                a.write_all(&payload).await.unwrap();
            }
        })
    });
    drop(a);
    let got = rt().block_on(async {
        b.set_nonblocking(true).unwrap();
        let mut b = tokio::net::UnixStream::from_std(b).unwrap();
        let mut buf = [0u8; MSG];
        let mut got = 0u64;
        while b.read_exact(&mut buf).await.is_ok() {
            got += 1;
        }
        got
    });
    let t = t0.elapsed().as_secs_f64();
    wait(pid);
    assert_eq!(got, n);
    report("unixstream-2proc", n, t);
}
