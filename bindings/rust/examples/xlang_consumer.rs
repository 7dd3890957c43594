// SPDX-License-Identifier: LGPL-2.1 OR MIT
//! xlang_consumer SOCKFD: the Rust member of the cross-language demo
//! (bindings/demo/xlang.py). Receives a receive endpoint over the Unix
//! socket SOCKFD (SCM_RIGHTS), then messages on tokio until end of file;
//! prints each on a line.
use std::io::Write;
use std::os::unix::io::FromRawFd;
use std::os::unix::net::UnixStream;

#[tokio::main(flavor = "current_thread")]
async fn main() -> mpmc::Result<()> {
    let sock: i32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).expect("usage: xlang_consumer SOCKFD");
    // SAFETY: the parent passed this fd to us for this purpose.
    let sock = unsafe { UnixStream::from_raw_fd(sock) };
    let rx = mpmc::Async::new(<mpmc::Receiver as mpmc::Endpoint>::from_fd(mpmc::recv_fd(&sock)?))?;
    let mut out = std::io::stdout().lock();
    let mut got = 0u64;
    loop {
        match rx.recv().await {
            Ok(m) => {
                out.write_all(&m).and_then(|_| out.write_all(b"\n"))?;
                got += 1;
            }
            Err(mpmc::Error::Closed) => break,
            Err(e) => return Err(e),
        }
    }
    out.flush()?;
    eprintln!("xlang_consumer: {got} messages, then end of file");
    Ok(())
}
