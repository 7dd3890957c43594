// SPDX-License-Identifier: LGPL-2.1 OR MIT
//! The tokio API: an endpoint in tokio's `AsyncFd`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::{sys, Endpoint, Error, Receives, Result, Sends};

/// An endpoint registered with tokio's reactor (`AsyncFd`, edge-triggered
/// epoll: the module wakes pollers on every enqueue and dequeue).
///
/// Every attempt is one non-blocking call (`MPMC_IOC_SEND`/`RECV` with
/// timeout 0, so the file needs no `O_NONBLOCK` and blocking users of the
/// same file are not disturbed), made inside `AsyncFd::try_io`: a message
/// is taken only in the poll that returns it, so dropping a `recv` future
/// (in `tokio::select!`, under `tokio::time::timeout`) loses nothing.
///
/// ```no_run
/// # async fn demo() -> mpmc::Result<()> {
/// use futures::{SinkExt, StreamExt};
/// let (tx, rx) = mpmc::Channel::new()?.split()?;
/// let (mut tx, mut rx) = (mpmc::Async::new(tx)?, mpmc::Async::new(rx)?);
/// tx.send(b"one").await?;                 // waits while full
/// SinkExt::send(&mut tx, b"two".to_vec()).await?; // the Sink
/// drop(tx);                               // the last sender: end of file
/// assert_eq!(rx.recv().await?, b"one");
/// assert_eq!(rx.next().await.unwrap()?, b"two"); // the Stream
/// assert!(rx.next().await.is_none());
/// # Ok(()) }
/// ```
///
/// Fairness: waiters in different processes are served by the kernel in
/// order only when they block; tokio waiters are pollers, woken for what
/// is left, and tokio wakes every task waiting on one `Async` at once
/// (whoever's `try_io` runs first wins). Two tokio processes on one
/// channel are both woken per message (mio never uses `EPOLLEXCLUSIVE`).
/// A rendezvous channel (capacity 0) needs one side to block: two tokio
/// sides never meet.
#[derive(Debug)]
pub struct Async<E: Endpoint> {
    fd: AsyncFd<E>,
    pending: Option<Vec<u8>>,
}

fn would_block<T>(r: Result<T>, empty: fn(&Error) -> bool) -> io::Result<Result<T>> {
    match r {
        Err(ref e) if empty(e) => Err(io::ErrorKind::WouldBlock.into()),
        r => Ok(r),
    }
}

fn is_full(e: &Error) -> bool {
    matches!(e, Error::Full)
}

fn is_empty(e: &Error) -> bool {
    matches!(e, Error::Empty)
}

impl<E: Endpoint> Async<E> {
    /// Register `endpoint` with the current tokio runtime (must be called
    /// inside one), for the directions of its roles.
    pub fn new(endpoint: E) -> io::Result<Self> {
        let send = E::ROLES & sys::MPMC_ROLE_SEND != 0;
        let recv = E::ROLES & sys::MPMC_ROLE_RECV != 0;
        let interest = match (send, recv) {
            (true, true) => Interest::READABLE | Interest::WRITABLE,
            (true, false) => Interest::WRITABLE,
            _ => Interest::READABLE,
        };
        Ok(Async {
            fd: AsyncFd::with_interest(endpoint, interest)?,
            pending: None,
        })
    }

    /// The endpoint, for its blocking and non-waiting calls.
    pub fn get_ref(&self) -> &E {
        self.fd.get_ref()
    }

    /// Deregister and give the endpoint back.
    pub fn into_inner(self) -> E {
        self.fd.into_inner()
    }
}

impl<E: Receives> Async<E> {
    async fn recv_with<T>(&self, attempt: impl Fn(&E) -> Result<T>) -> Result<T> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|e| would_block(attempt(e.get_ref()), is_empty)) {
                Ok(r) => return r?,
                Err(_would_block) => continue,
            }
        }
    }

    /// Receive one message, waiting on the reactor. [`Error::Closed`] at
    /// end of file. Cancel-safe.
    pub async fn recv(&self) -> Result<Vec<u8>> {
        self.recv_with(|e| e.try_recv()).await
    }

    /// Wait for one message, then take up to `max` at once (one ioctl).
    /// [`Error::Closed`] at end of file. Cancel-safe.
    pub async fn recv_many(&self, max: usize) -> Result<Vec<Vec<u8>>> {
        self.recv_with(|e| e.recv_batch(max, Some(Duration::ZERO))).await
    }
}

impl<E: Sends> Async<E> {
    async fn send_with<T>(&self, attempt: impl Fn(&E) -> Result<T>) -> Result<T> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|e| would_block(attempt(e.get_ref()), is_full)) {
                Ok(r) => return r?,
                Err(_would_block) => continue,
            }
        }
    }

    /// Send one message, waiting on the reactor while the channel is
    /// full. [`Error::Closed`] once shut down. A dropped future has sent
    /// nothing.
    pub async fn send(&self, msg: &[u8]) -> Result<()> {
        self.send_with(|e| e.try_send(msg)).await
    }

    /// Wait until one message fits, then send as many of `msgs` as fit;
    /// returns how many (the first ones).
    pub async fn send_batch(&self, msgs: &[&[u8]]) -> Result<usize> {
        self.send_with(|e| e.send_batch(msgs, Some(Duration::ZERO))).await
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        while let Some(msg) = self.pending.as_deref() {
            let mut guard = match self.fd.poll_write_ready(cx) {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return Poll::Pending,
            };
            match guard.try_io(|e| would_block(e.get_ref().try_send(msg), is_full)) {
                Ok(r) => {
                    self.pending = None;
                    if let Err(e) = r.map_err(Error::from).and_then(|r| r) {
                        return Poll::Ready(Err(e));
                    }
                }
                Err(_would_block) => continue,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Messages until end of file: `None` after [`Error::Closed`].
impl<E: Receives + Unpin> Stream for Async<E> {
    type Item = Result<Vec<u8>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Pending => return Poll::Pending,
            };
            match guard.try_io(|e| would_block(e.get_ref().try_recv(), is_empty)) {
                Ok(Ok(Ok(m))) => return Poll::Ready(Some(Ok(m))),
                Ok(Ok(Err(Error::Closed))) => return Poll::Ready(None),
                Ok(Ok(Err(e))) => return Poll::Ready(Some(Err(e))),
                Ok(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Err(_would_block) => continue,
            }
        }
    }
}

/// A sink of messages (`Vec<u8>`): `start_send` keeps one message, which is sent
/// before the sink is ready again (`poll_ready`, `poll_flush`). Closing
/// the sink sends what is pending; it does not shut the channel down
/// (drop the endpoint, or call [`Endpoint::shutdown`]).
impl<E: Sends + Unpin> Sink<Vec<u8>> for Async<E> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Vec<u8>) -> Result<()> {
        let this = self.get_mut();
        debug_assert!(this.pending.is_none(), "start_send without poll_ready");
        if !item.is_empty() {
            this.pending = Some(item);
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_pending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_pending(cx)
    }
}
