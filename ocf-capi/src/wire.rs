//! A blocking connection to the node daemon's socket: one JSON request line out, reply lines
//! in, each bounded by [`MAX_LINE`] and every wait by a deadline. The membership events use it
//! non-blocking ([`Conn::read_ready`]) under the host's own poll loop.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use ocf_ref::membership::daemon::local_api::MAX_LINE;

use crate::Located;

/// How long connecting, sending, and the answer to a short request may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong talking to the daemon; the text names the socket and how it was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The socket could not be connected to.
    #[error("no ocf node answers at {at}: {source}; is `ocf node` running there?")]
    Connect {
        /// The socket and how it was found.
        at: Located,
        /// The OS's reason.
        source: io::Error,
    },
    /// Sending or reading broke, or a deadline passed.
    #[error("the ocf node at {at}: {what}")]
    Io {
        /// The socket and how it was found.
        at: Located,
        /// What broke.
        what: String,
    },
    /// The daemon closed the connection.
    #[error("the ocf node at {at} closed the connection (it stopped, or crashed)")]
    Closed {
        /// The socket and how it was found.
        at: Located,
    },
}

impl WireError {
    /// True when the deadline passed (as opposed to a refusal or a broken connection).
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Io { what, .. } => what.contains("did not answer within"),
            Self::Connect { source, .. } => source.kind() == io::ErrorKind::TimedOut,
            Self::Closed { .. } => false,
        }
    }
}

/// One connection to the daemon.
#[derive(Debug)]
pub struct Conn {
    at: Located,
    stream: UnixStream,
    /// Bytes read and not yet returned as lines.
    pending: Vec<u8>,
}

impl Conn {
    /// Connects to the socket `at` within [`DEFAULT_TIMEOUT`]: a daemon whose listen queue
    /// is full (busy, or paused) is retried until then, never waited on for ever. The
    /// descriptor is close-on-exec, so a host that forks and execs does not leak it.
    pub fn connect(at: &Located) -> Result<Self, WireError> {
        Self::connect_within(at, DEFAULT_TIMEOUT)
    }

    /// [`Conn::connect`] with its own deadline.
    pub fn connect_within(at: &Located, timeout: Duration) -> Result<Self, WireError> {
        let failed = |source: io::Error| WireError::Connect {
            at: at.clone(),
            source,
        };
        let stream = connect_nonblocking(&at.path, timeout).map_err(failed)?;
        Ok(Self {
            at: at.clone(),
            stream,
            pending: Vec::new(),
        })
    }

    /// Where this connection goes.
    pub fn at(&self) -> &Located {
        &self.at
    }

    /// The descriptor, for the host's poll loop.
    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    fn io(&self, what: impl std::fmt::Display) -> WireError {
        WireError::Io {
            at: self.at.clone(),
            what: what.to_string(),
        }
    }

    /// Sends `request` as one line, within `timeout`. (std sends on a Unix socket with
    /// `MSG_NOSIGNAL`: a daemon that hung up is an `EPIPE` error, never a `SIGPIPE` that would
    /// kill a C host, which keeps the signal's default action.)
    pub fn send(&mut self, request: &impl Serialize, timeout: Duration) -> Result<(), WireError> {
        let mut line =
            serde_json::to_vec(request).map_err(|e| self.io(format!("cannot encode: {e}")))?;
        line.push(b'\n');
        self.stream
            .set_nonblocking(false)
            .and_then(|()| self.stream.set_write_timeout(Some(timeout.max(MIN_WAIT))))
            .map_err(|e| self.io(format!("cannot set up the connection: {e}")))?;
        self.stream
            .write_all(&line)
            .map_err(|e| self.io(format!("cannot send the request: {e}")))
    }

    /// The next reply line (without its newline), waiting at most `timeout`.
    pub fn read_line(&mut self, timeout: Duration) -> Result<Vec<u8>, WireError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.take_line()? {
                return Ok(line);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.io(format!("did not answer within {} ms", timeout.as_millis())));
            }
            self.stream
                .set_nonblocking(false)
                .and_then(|()| self.stream.set_read_timeout(Some(left.max(MIN_WAIT))))
                .map_err(|e| self.io(format!("cannot set up the connection: {e}")))?;
            match self.fill() {
                Ok(0) => {
                    return Err(WireError::Closed {
                        at: self.at.clone(),
                    });
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(format!("connection broke: {e}"))),
            }
        }
    }

    /// The reply to one request: sends it and reads one line, parsed as `T`.
    pub fn ask<T: serde::de::DeserializeOwned>(
        &mut self,
        request: &impl Serialize,
        timeout: Duration,
    ) -> Result<T, WireError> {
        self.send(request, timeout)?;
        let line = self.read_line(timeout)?;
        serde_json::from_slice(&line).map_err(|e| self.io(format!("unreadable reply: {e}")))
    }

    /// Reads what is there without waiting (the descriptor is switched to non-blocking) and
    /// returns the complete lines, and whether the daemon closed the connection.
    pub fn read_ready(&mut self) -> Result<(Vec<Vec<u8>>, bool), WireError> {
        self.stream
            .set_nonblocking(true)
            .map_err(|e| self.io(format!("cannot set up the connection: {e}")))?;
        let mut closed = false;
        loop {
            match self.fill() {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => {
                    // Stop reading once a lot is buffered: the rest waits for the next call.
                    if self.pending.len() > MAX_LINE {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(format!("connection broke: {e}"))),
            }
        }
        let mut lines = Vec::new();
        while let Some(line) = self.take_line()? {
            lines.push(line);
        }
        Ok((lines, closed))
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.pending.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// A complete line out of `pending`, if there is one; a line longer than [`MAX_LINE`] is
    /// an error (the daemon never writes one).
    fn take_line(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        match self.pending.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                Ok(Some(line))
            }
            None if self.pending.len() > MAX_LINE => {
                Err(self.io(format!("a reply line is longer than {MAX_LINE} bytes")))
            }
            None => Ok(None),
        }
    }
}

/// Connects without blocking, retrying while the listen queue is full (`EAGAIN`) until
/// `timeout` has passed (then `TimedOut`).
fn connect_nonblocking(path: &std::path::Path, timeout: Duration) -> io::Result<UnixStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    let addr = UnixAddr::new(path).map_err(io::Error::from)?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(io::Error::from)?;
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => {
                let stream = UnixStream::from(fd);
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(nix::errno::Errno::EAGAIN) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(nix::errno::Errno::EAGAIN) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "its listen queue stayed full for {} ms (busy or paused)",
                        timeout.as_millis()
                    ),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The shortest wait handed to the OS (a zero timeout means "for ever" to it).
const MIN_WAIT: Duration = Duration::from_millis(1);

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;
    use std::path::Path;

    use super::*;

    fn at(p: &Path) -> Located {
        Located {
            path: p.to_owned(),
            source: "test".into(),
        }
    }

    #[test]
    fn lines_arrive_whole_and_a_hang_up_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"{\"ok\":true}\n{\"ok\":").unwrap();
            s.write_all(b"false}\n").unwrap();
        });
        let mut c = Conn::connect(&at(&path)).unwrap();
        let r: serde_json::Value = c
            .ask(&serde_json::json!({"op":"x"}), Duration::from_secs(5))
            .unwrap();
        assert_eq!(r["ok"], true);
        assert_eq!(
            c.read_line(Duration::from_secs(5)).unwrap(),
            b"{\"ok\":false}"
        );
        server.join().unwrap();
        assert!(matches!(
            c.read_line(Duration::from_secs(5)),
            Err(WireError::Closed { .. })
        ));
    }

    #[test]
    fn a_full_listen_queue_is_a_timely_error_not_a_hang() {
        use nix::sys::socket::{
            AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, listen, socket,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.sock");
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        bind(fd.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        listen(&fd, Backlog::new(0).unwrap()).unwrap();
        // Nobody accepts: the queue fills after a connection or two.
        let mut held = Vec::new();
        let e = loop {
            match Conn::connect_within(&at(&path), Duration::from_millis(100)) {
                Ok(c) => held.push(c),
                Err(e) => break e,
            }
            assert!(held.len() < 100, "the queue never filled");
        };
        assert!(e.to_string().contains("listen queue stayed full"), "{e}");
        assert!(e.is_timeout());
        assert!(e.to_string().contains("full.sock"), "{e}");
    }

    #[test]
    fn a_silent_daemon_times_out_and_a_missing_one_names_its_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut c = Conn::connect(&at(&path)).unwrap();
        let e = c.read_line(Duration::from_millis(50)).unwrap_err();
        assert!(e.is_timeout(), "{e}");
        drop(listener);
        let e = Conn::connect(&at(&dir.path().join("none.sock"))).unwrap_err();
        assert!(e.to_string().contains("none.sock"), "{e}");
    }
}
