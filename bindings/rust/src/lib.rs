// SPDX-License-Identifier: LGPL-2.1 OR MIT
//! Bindings for `/dev/mpmc`: bounded multi-producer multi-consumer message
//! channels that are file descriptors, shared between threads and processes.
//!
//! Every [`Channel::new`] opens `/dev/mpmc`, which creates a new channel.
//! [`Sender`] and [`Receiver`] are single-role endpoints
//! (`MPMC_IOC_NEW_ENDPOINT`); a [`Channel`] has both roles. Every call is
//! one system call, as in libmpmc; any `/dev/mpmc` fd can be wrapped
//! ([`Receiver::from_fd`]), from `fork`, inheritance or `SCM_RIGHTS`
//! ([`send_fd`], [`recv_fd`]).
//!
//! ```no_run
//! use mpmc::prelude::*;
//! let (tx, rx) = mpmc::Channel::new()?.split()?;
//! std::thread::spawn(move || {
//!     for i in 0..3 {
//!         tx.send(format!("job {i}").as_bytes()).unwrap();
//!     }
//!     // tx dropped: the last sender is gone, the receivers get end of file
//! });
//! let got: Vec<Vec<u8>> = rx.iter().collect();
//! assert_eq!(got, [b"job 0", b"job 1", b"job 2"]);
//! # Ok::<(), mpmc::Error>(())
//! ```
//! (`no_run`: the examples need the device; `examples/` holds them as
//! programs, which `make check` runs in its guest.)
//!
//! With the `tokio` feature (default), [`Async`] wraps an endpoint in
//! tokio's `AsyncFd`: `send(..).await`, `recv().await`, `recv_many`, a
//! `Stream` of messages and a `Sink` of messages.
//!
//! Differences from in-process channels (tokio `mpsc`, crossbeam): messages
//! are bytes (at most `max_msg_size`, 4096 by default); capacity counts
//! messages; receivers get end of file when every file with the send role
//! is closed, in any process, or after [`Endpoint::shutdown`]; and
//! [`Error::Closed`] is what `recv` returns then (not `None`).

#![warn(missing_docs)]

use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub mod sys;

mod pass;
pub use pass::{recv_fd, send_fd};

#[cfg(feature = "tokio")]
mod asyncfd;
#[cfg(feature = "tokio")]
pub use asyncfd::Async;

/// `use mpmc::prelude::*;` brings the endpoint traits into scope.
pub mod prelude {
    pub use crate::{Endpoint, Receives, Sends};
}

/// What a channel call can fail with.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A non-blocking send found no room (`EAGAIN`).
    Full,
    /// A non-blocking receive found nothing queued (`EAGAIN`).
    Empty,
    /// The channel is shut down: a send got `EPIPE`, or a receive found it
    /// shut down and drained (end of file).
    Closed,
    /// A `*_timeout` call waited the whole time (`ETIMEDOUT`).
    Timeout,
    /// Any other error (`EBADF` for a role the fd lacks, `EMSGSIZE` for a
    /// message over `max_msg_size`, ...).
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Full => f.write_str("channel full"),
            Error::Empty => f.write_str("channel empty"),
            Error::Closed => f.write_str("channel closed"),
            Error::Timeout => f.write_str("timed out"),
            Error::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl Error {
    /// The raw errno of an [`Error::Io`].
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

/// Results of channel calls.
pub type Result<T> = std::result::Result<T, Error>;

/// `struct mpmc_config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Maximum queued messages (0: a rendezvous channel).
    pub capacity: u32,
    /// Largest message in bytes.
    pub max_msg_size: u32,
    /// `sys::MPMC_CONFIG_OVERWRITE`, `sys::MPMC_CONFIG_THROUGHPUT` and
    /// `sys::MPMC_CONFIG_RING` bits. `MPMC_CONFIG_RING` (a mappable ring,
    /// Documentation/ring-mode.rst) wants a power-of-two capacity and an
    /// empty channel, excludes `MPMC_CONFIG_OVERWRITE` and is for the life
    /// of the channel. This crate does not map the ring (the C library's
    /// `mpmc_ring_*` calls do; the ABI is in [`sys`]), but a ring channel
    /// works with its calls: reads, writes and batches go through the
    /// system calls. Only what ring mode rejects fails, with `EINVAL`: a
    /// priority other than 0 and peeking.
    pub flags: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            capacity: sys::MPMC_DEFAULT_CAPACITY,
            max_msg_size: sys::MPMC_DEFAULT_MSG_SIZE,
            flags: 0,
        }
    }
}

/// `struct mpmc_stats`: a consistent snapshot of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Stats {
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
}

/// The `how` of [`Endpoint::shutdown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// `MPMC_SHUT_RD`: discard the queue; sends fail, receives get end of file.
    Read,
    /// `MPMC_SHUT_WR` (Go's `close(ch)`): sends fail, receivers drain then
    /// get end of file.
    Write,
    /// Both.
    Both,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn timeout_ns(t: Option<Duration>) -> i64 {
    match t {
        None => -1,
        Some(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
    }
}

/// A channel file descriptor and a hint for receive buffers.
#[derive(Debug)]
struct Fd {
    fd: OwnedFd,
    // The size receives allocate; grown on EMSGSIZE (max_msg_size may grow).
    size_hint: AtomicU32,
}

impl Fd {
    fn new(fd: OwnedFd) -> Fd {
        Fd {
            fd,
            size_hint: AtomicU32::new(0),
        }
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn ioctl<T>(&self, req: u64, arg: *mut T) -> io::Result<libc::c_int> {
        loop {
            // SAFETY: arg points to the struct the request names (or is
            // the by-value argument of MPMC_IOC_SHUTDOWN).
            match cvt(unsafe { libc::ioctl(self.raw(), req as _, arg) }) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    fn config(&self) -> io::Result<Config> {
        let mut c = sys::mpmc_config::default();
        self.ioctl(sys::MPMC_IOC_GET_CONFIG, &mut c)?;
        Ok(Config {
            capacity: c.capacity,
            max_msg_size: c.max_msg_size,
            flags: c.flags,
        })
    }

    fn set_config(&self, cfg: &Config) -> io::Result<()> {
        let mut c = sys::mpmc_config {
            capacity: cfg.capacity,
            max_msg_size: cfg.max_msg_size,
            flags: cfg.flags,
            reserved: [0; 5],
        };
        self.ioctl(sys::MPMC_IOC_SET_CONFIG, &mut c)?;
        Ok(())
    }

    fn stats(&self) -> io::Result<Stats> {
        let mut s = sys::mpmc_stats::default();
        self.ioctl(sys::MPMC_IOC_GET_STATS, &mut s)?;
        Ok(Stats {
            capacity: s.capacity,
            max_msg_size: s.max_msg_size,
            queued_msgs: s.queued_msgs,
            shutdown: s.shutdown,
            queued_bytes: s.queued_bytes,
            send_files: s.send_files,
            recv_files: s.recv_files,
            blocked_senders: s.blocked_senders,
            blocked_receivers: s.blocked_receivers,
            total_sent: s.total_sent,
            total_received: s.total_received,
            total_dropped: s.total_dropped,
        })
    }

    fn new_endpoint(&self, roles: u32) -> io::Result<OwnedFd> {
        let mut ep = sys::mpmc_endpoint {
            roles,
            flags: libc::O_CLOEXEC as u32,
            reserved: 0,
        };
        let fd = self.ioctl(sys::MPMC_IOC_NEW_ENDPOINT, &mut ep)?;
        // SAFETY: the ioctl returned a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn batch(&self, req: u64, vec: &mut [sys::mpmc_msgvec], flags: u32, t: i64) -> io::Result<usize> {
        let mut b = sys::mpmc_batch {
            vec: vec.as_mut_ptr() as u64,
            count: vec.len() as u32,
            flags,
            timeout_ns: t,
        };
        // A signal: the call moved nothing. Made again, with the time left
        // when there is a timeout (it then ends in ETIMEDOUT as due).
        let start = std::time::Instant::now();
        loop {
            // SAFETY: b and the entries point to live memory of the sizes given.
            match cvt(unsafe { libc::ioctl(self.raw(), req as _, &mut b) }) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if t > 0 {
                        let spent = i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX);
                        b.timeout_ns = (t - spent).max(0);
                    }
                }
                r => return r.map(|n| n as usize),
            }
        }
    }

    // ------------------------------------------------------------ sending
    fn send_batch(&self, msgs: &[&[u8]], prio: u32, t: i64) -> Result<usize> {
        let n = msgs.len().min(sys::MPMC_BATCH_MAX as usize);
        if n == 0 {
            return Ok(0);
        }
        let mut vec: Vec<sys::mpmc_msgvec> = msgs[..n]
            .iter()
            .map(|m| sys::mpmc_msgvec {
                buf: m.as_ptr() as u64,
                len: m.len() as u32,
                prio,
            })
            .collect();
        self.batch(sys::MPMC_IOC_SEND, &mut vec, 0, t).map_err(send_err)
    }

    fn send_one(&self, msg: &[u8], prio: u32, t: i64) -> Result<()> {
        if msg.is_empty() {
            return Ok(()); // a 0-byte send enqueues nothing, in every state
        }
        self.send_batch(&[msg], prio, t).map(|_| ())
    }

    fn send(&self, msg: &[u8]) -> Result<()> {
        if msg.is_empty() {
            return Ok(());
        }
        loop {
            // SAFETY: msg is a live buffer of msg.len() bytes.
            let r = unsafe { libc::write(self.raw(), msg.as_ptr().cast(), msg.len()) };
            if r >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(send_err(e));
            }
        }
    }

    // ---------------------------------------------------------- receiving
    fn hint(&self) -> io::Result<u32> {
        let h = self.size_hint.load(Ordering::Relaxed);
        if h != 0 {
            return Ok(h);
        }
        let h = self.config()?.max_msg_size;
        self.size_hint.store(h, Ordering::Relaxed);
        Ok(h)
    }

    // EMSGSIZE: the message is bigger than the hint (max_msg_size grew).
    fn grow(&self, old: u32) -> io::Result<u32> {
        let mut next: libc::c_int = 0;
        self.ioctl(libc::FIONREAD as u64, &mut next)?;
        let h = (old.saturating_mul(2)).max(next as u32).max(self.config()?.max_msg_size);
        self.size_hint.store(h, Ordering::Relaxed);
        Ok(h)
    }

    /// One MPMC_IOC_RECV of up to n messages; empty at end of file.
    fn recv_batch(&self, n: usize, flags: u32, t: i64) -> Result<Vec<(Vec<u8>, u32)>> {
        let n = n.clamp(1, sys::MPMC_BATCH_MAX as usize);
        let mut size = self.hint()?;
        loop {
            let mut bufs: Vec<Vec<u8>> = (0..n).map(|_| vec![0u8; size as usize]).collect();
            let mut vec: Vec<sys::mpmc_msgvec> = bufs
                .iter_mut()
                .map(|b| sys::mpmc_msgvec {
                    buf: b.as_mut_ptr() as u64,
                    len: size,
                    prio: 0,
                })
                .collect();
            match self.batch(sys::MPMC_IOC_RECV, &mut vec, flags, t) {
                Ok(got) => {
                    return Ok(bufs
                        .into_iter()
                        .zip(vec)
                        .take(got)
                        .map(|(mut b, v)| {
                            b.truncate(v.len as usize);
                            (b, v.prio)
                        })
                        .collect())
                }
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => size = self.grow(size)?,
                Err(e) => return Err(recv_err(e)),
            }
        }
    }

    fn recv_one(&self, t: i64) -> Result<(Vec<u8>, u32)> {
        self.recv_batch(1, 0, t)?.pop().ok_or(Error::Closed)
    }

    fn recv(&self) -> Result<Vec<u8>> {
        let mut size = self.hint()?;
        loop {
            let mut buf = vec![0u8; size as usize];
            // SAFETY: buf is a live buffer of buf.len() bytes.
            let r = unsafe { libc::read(self.raw(), buf.as_mut_ptr().cast(), buf.len()) };
            if r > 0 {
                buf.truncate(r as usize);
                return Ok(buf);
            }
            if r == 0 {
                return Err(Error::Closed);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EMSGSIZE) => size = self.grow(size)?,
                _ => return Err(recv_err(e)),
            }
        }
    }
}

fn send_err(e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EPIPE) => Error::Closed,
        Some(libc::EAGAIN) => Error::Full,
        Some(libc::ETIMEDOUT) => Error::Timeout,
        _ => Error::Io(e),
    }
}

fn recv_err(e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EAGAIN) => Error::Empty,
        Some(libc::ETIMEDOUT) => Error::Timeout,
        _ => Error::Io(e),
    }
}

/// What every endpoint can do: configuration, statistics, shutdown.
pub trait Endpoint: AsRawFd + AsFd + Sized {
    /// The `MPMC_ROLE_*` bits of this endpoint type.
    const ROLES: u32;

    #[doc(hidden)]
    fn inner(&self) -> &FdRef;

    /// Wrap `fd`, a `/dev/mpmc` file descriptor (inherited, passed with
    /// `SCM_RIGHTS`, ...). The kernel checks the roles on every call.
    fn from_fd(fd: OwnedFd) -> Self;

    /// The channel's configuration.
    fn config(&self) -> Result<Config> {
        Ok(self.inner().0.config()?)
    }

    /// Change the configuration (capacity at any time, not below the
    /// queued count: `EBUSY`; `max_msg_size` only while empty).
    fn set_config(&self, cfg: &Config) -> Result<()> {
        Ok(self.inner().0.set_config(cfg)?)
    }

    /// A snapshot of the channel (`MPMC_IOC_GET_STATS`).
    fn stats(&self) -> Result<Stats> {
        Ok(self.inner().0.stats()?)
    }

    /// The capacity in messages.
    fn capacity(&self) -> Result<u32> {
        Ok(self.config()?.capacity)
    }

    /// Messages queued now.
    fn len(&self) -> Result<usize> {
        Ok(self.stats()?.queued_msgs as usize)
    }

    /// Whether nothing is queued now.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Whether the channel is shut down in either direction (by
    /// [`Endpoint::shutdown`] or by the last sender or receiver leaving).
    fn is_closed(&self) -> Result<bool> {
        Ok(self.stats()?.shutdown != 0)
    }

    /// `MPMC_IOC_SHUTDOWN`; any endpoint may call it, repeating is a no-op.
    fn shutdown(&self, how: Shutdown) -> Result<()> {
        let how = match how {
            Shutdown::Read => sys::MPMC_SHUT_RD,
            Shutdown::Write => sys::MPMC_SHUT_WR,
            Shutdown::Both => sys::MPMC_SHUT_RDWR,
        };
        // SAFETY: MPMC_IOC_SHUTDOWN takes its argument by value.
        cvt(unsafe { libc::ioctl(self.as_raw_fd(), sys::MPMC_IOC_SHUTDOWN as _, how as libc::c_ulong) })?;
        Ok(())
    }

    /// Another fd with this endpoint's roles (`MPMC_IOC_NEW_ENDPOINT`): one
    /// more sender/receiver file of the channel.
    fn try_clone(&self) -> Result<Self> {
        Ok(Self::from_fd(self.inner().0.new_endpoint(Self::ROLES)?))
    }
}

#[doc(hidden)]
#[derive(Debug)]
pub struct FdRef(Fd);

macro_rules! endpoint {
    ($(#[$m:meta])* $name:ident, $roles:expr) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name(FdRef);

        impl Endpoint for $name {
            const ROLES: u32 = $roles;
            fn inner(&self) -> &FdRef {
                &self.0
            }
            fn from_fd(fd: OwnedFd) -> Self {
                $name(FdRef(Fd::new(fd)))
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.0 .0.raw()
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0 .0.fd.as_fd()
            }
        }

        impl IntoRawFd for $name {
            fn into_raw_fd(self) -> RawFd {
                self.0 .0.fd.into_raw_fd()
            }
        }

        impl From<$name> for OwnedFd {
            fn from(e: $name) -> OwnedFd {
                e.0 .0.fd
            }
        }

        impl From<OwnedFd> for $name {
            fn from(fd: OwnedFd) -> $name {
                <$name as Endpoint>::from_fd(fd)
            }
        }

        /// Another endpoint with the same roles.
        ///
        /// # Panics
        /// When the kernel refuses a new fd (`EMFILE`, `ENFILE`): use
        /// [`Endpoint::try_clone`] to handle that.
        impl Clone for $name {
            fn clone(&self) -> Self {
                self.try_clone().expect("MPMC_IOC_NEW_ENDPOINT")
            }
        }
    };
}

endpoint!(
    /// A send-only endpoint. Dropping the last file with the send role (in
    /// every process) gives the receivers end of file.
    Sender,
    sys::MPMC_ROLE_SEND
);
endpoint!(
    /// A receive-only endpoint. Dropping the last file with the receive role
    /// discards the queue and fails later sends.
    Receiver,
    sys::MPMC_ROLE_RECV
);
endpoint!(
    /// A channel fd with both roles (what `open("/dev/mpmc", O_RDWR)` gives).
    Channel,
    sys::MPMC_ROLE_SEND | sys::MPMC_ROLE_RECV
);

/// The sending calls, for [`Sender`] and [`Channel`].
pub trait Sends: Endpoint {
    /// Send one message (one `write(2)`), waiting while the channel is
    /// full. [`Error::Closed`] once it is shut down for sending.
    fn send(&self, msg: &[u8]) -> Result<()> {
        self.inner().0.send(msg)
    }

    /// Send one message at priority `prio` (0..31, higher first).
    fn send_prio(&self, msg: &[u8], prio: u32) -> Result<()> {
        self.inner().0.send_one(msg, prio, -1)
    }

    /// Send without waiting: [`Error::Full`] or [`Error::Closed`].
    fn try_send(&self, msg: &[u8]) -> Result<()> {
        self.inner().0.send_one(msg, 0, 0)
    }

    /// Send, waiting at most `t`: [`Error::Timeout`].
    fn send_timeout(&self, msg: &[u8], t: Duration) -> Result<()> {
        self.inner().0.send_one(msg, 0, timeout_ns(Some(t)))
    }

    /// One `MPMC_IOC_SEND`: wait (up to `timeout`, `None` = forever)
    /// until one message fits, then send as many of `msgs` (at most 1024)
    /// as fit without waiting further; returns how many (the first ones).
    fn send_batch(&self, msgs: &[&[u8]], timeout: Option<Duration>) -> Result<usize> {
        self.inner().0.send_batch(msgs, 0, timeout_ns(timeout))
    }
}

/// The receiving calls, for [`Receiver`] and [`Channel`].
pub trait Receives: Endpoint {
    /// Receive one message (one `read(2)`), waiting while the channel is
    /// empty. [`Error::Closed`] once it is shut down and drained.
    fn recv(&self) -> Result<Vec<u8>> {
        self.inner().0.recv()
    }

    /// Receive one message and its priority.
    fn recv_prio(&self) -> Result<(Vec<u8>, u32)> {
        self.inner().0.recv_one(-1)
    }

    /// Receive without waiting: [`Error::Empty`] or [`Error::Closed`].
    fn try_recv(&self) -> Result<Vec<u8>> {
        self.inner().0.recv_one(0).map(|(m, _)| m)
    }

    /// Receive, waiting at most `t`: [`Error::Timeout`].
    fn recv_timeout(&self, t: Duration) -> Result<Vec<u8>> {
        self.inner().0.recv_one(timeout_ns(Some(t))).map(|(m, _)| m)
    }

    /// One `MPMC_IOC_RECV`: wait (up to `timeout`) for one message, then
    /// take up to `max` (at most 1024) without waiting further.
    /// [`Error::Closed`] at end of file.
    fn recv_batch(&self, max: usize, timeout: Option<Duration>) -> Result<Vec<Vec<u8>>> {
        let got = self.inner().0.recv_batch(max, 0, timeout_ns(timeout))?;
        if got.is_empty() {
            return Err(Error::Closed);
        }
        Ok(got.into_iter().map(|(m, _)| m).collect())
    }

    /// Copy up to `max` messages from the head without removing them
    /// (`MPMC_RECV_PEEK`), without waiting; empty if nothing is queued.
    fn peek(&self, max: usize) -> Result<Vec<Vec<u8>>> {
        match self.inner().0.recv_batch(max, sys::MPMC_RECV_PEEK, 0) {
            Ok(v) => Ok(v.into_iter().map(|(m, _)| m).collect()),
            Err(Error::Empty) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// A blocking iterator of messages, ending at end of file (and at the
    /// first error, which it drops: use [`Receives::recv`] to see errors).
    fn iter(&self) -> Iter<'_, Self> {
        Iter(self)
    }
}

impl Sends for Sender {}
impl Sends for Channel {}
impl Receives for Receiver {}
impl Receives for Channel {}

/// See [`Receives::iter`].
#[derive(Debug)]
pub struct Iter<'a, R: Receives>(&'a R);

impl<R: Receives> Iterator for Iter<'_, R> {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        self.0.recv().ok()
    }
}

impl Channel {
    /// Open a new channel (64 messages of up to 4096 bytes).
    pub fn new() -> Result<Channel> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(sys::DEVICE)?;
        Ok(Channel::from_fd(OwnedFd::from(f)))
    }

    /// Open a new channel with `cfg`.
    pub fn with_config(cfg: Config) -> Result<Channel> {
        let ch = Channel::new()?;
        ch.set_config(&cfg)?;
        Ok(ch)
    }

    /// A new send-only endpoint.
    pub fn sender(&self) -> Result<Sender> {
        Ok(Sender::from_fd(self.0 .0.new_endpoint(sys::MPMC_ROLE_SEND)?))
    }

    /// A new receive-only endpoint.
    pub fn receiver(&self) -> Result<Receiver> {
        Ok(Receiver::from_fd(self.0 .0.new_endpoint(sys::MPMC_ROLE_RECV)?))
    }

    /// A sender and a receiver, closing this fd: dropping every sender
    /// then gives the receivers end of file.
    pub fn split(self) -> Result<(Sender, Receiver)> {
        Ok((self.sender()?, self.receiver()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_map_to_the_abi() {
        assert_eq!(timeout_ns(None), -1);
        assert_eq!(timeout_ns(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ns(Some(Duration::from_millis(3))), 3_000_000);
        assert_eq!(timeout_ns(Some(Duration::MAX)), i64::MAX);
    }

    #[test]
    fn errnos_map_to_errors() {
        let e = io::Error::from_raw_os_error;
        assert!(matches!(send_err(e(libc::EPIPE)), Error::Closed));
        assert!(matches!(send_err(e(libc::EAGAIN)), Error::Full));
        assert!(matches!(recv_err(e(libc::EAGAIN)), Error::Empty));
        assert!(matches!(recv_err(e(libc::ETIMEDOUT)), Error::Timeout));
        assert_eq!(recv_err(e(libc::EBADF)).raw_os_error(), Some(libc::EBADF));
    }
}
