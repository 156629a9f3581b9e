//! Claiming the daemon's socket path safely: a daemon runs as root, and its `socket` comes
//! from a config file, so it must never remove or replace anything but its own stale socket.
//!
//! [`claim`] does, in order:
//!
//! 1. resolves `socket_group` (an unknown group is [`DaemonError::UnknownGroup`]);
//! 2. creates the socket's directory if missing (mode 0755, never world-writable);
//! 3. takes an exclusive `flock` on the lock file `<socket>.lock` beside the socket, held for
//!    the daemon's whole life; a daemon holding it already makes this one fail with
//!    [`DaemonError::InUse`], naming the lock and the holder's pid. Whether a live daemon
//!    answers fast enough plays no part, so a busy daemon never loses its socket;
//! 4. looks at what sits at the socket path: nothing is fine; a socket nobody listens on
//!    (connect refused) is stale and removed; a socket that answers, or does not answer
//!    because its listen queue is full, is [`DaemonError::InUse`]; anything else (a regular
//!    file, a directory, a symbolic link, a FIFO) is [`DaemonError::NotASocket`] and is left
//!    alone;
//! 5. binds the socket in a fresh private (0700) directory beside the path, sets its mode to
//!    0660 and its group, and only then renames it into place (refusing to replace anything
//!    that appeared meanwhile). No client can connect before the mode is right, whatever the
//!    umask.
//!
//! The lock file is left in place on exit: removing it would let two daemons lock two
//! different files of the same name. A lock file that is a symbolic link, not a regular file,
//! hard-linked elsewhere, or owned by another user is [`DaemonError::BadLockFile`].

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg, RenameFlags, renameat2};
use nix::unistd::{Gid, Group};
use tokio::net::UnixListener;

use crate::membership::daemon::DaemonError;

/// The socket's permission bits: owner (root) and group may connect, nobody else.
pub const SOCKET_MODE: u32 = 0o660;

/// A socket path claimed by [`claim`]: the listener, and the lock that keeps other daemons off
/// the path. Dropping it removes the socket (if it is still this one) and releases the lock.
#[derive(Debug)]
pub struct ClaimedSocket {
    path: PathBuf,
    listener: Option<UnixListener>,
    /// Device and inode of the socket file created, so only that file is ever removed.
    identity: (u64, u64),
    lock: Option<Flock<File>>,
}

impl ClaimedSocket {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file beside the socket.
    pub fn lock_path(&self) -> PathBuf {
        lock_path(&self.path)
    }

    /// Takes the listener out (the caller serves it; the claim still owns path and lock).
    pub(crate) fn take_listener(&mut self) -> Option<UnixListener> {
        self.listener.take()
    }
}

impl Drop for ClaimedSocket {
    fn drop(&mut self) {
        drop(self.listener.take());
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.identity
        {
            let _ = std::fs::remove_file(&self.path);
        }
        drop(self.lock.take());
    }
}

/// Connects to the node daemon's socket at `path`, retrying while its listen queue is full
/// (a busy daemon, not a dead one) with a pause doubling from 5 to 200 ms; the caller's
/// deadline bounds the retries. Every client of the socket (membership, fencer, executor)
/// connects through this.
pub async fn connect(path: &Path) -> std::io::Result<tokio::net::UnixStream> {
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match tokio::net::UnixStream::connect(path).await {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// The lock file of the socket at `socket`: `<socket>.lock`.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Claims `path` for a daemon's socket, as the module documentation describes, with mode
/// [`SOCKET_MODE`] and group `group` (the daemon's own group when `None`). Must run inside a
/// tokio runtime.
pub async fn claim(path: &Path, group: Option<&str>) -> Result<ClaimedSocket, DaemonError> {
    let socket_err = |source: std::io::Error| DaemonError::Socket {
        path: path.to_owned(),
        source,
    };
    let gid = group.map(resolve_group).transpose()?;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(socket_err)?;
    }
    // Refuse a path that can never be ours before creating a lock file beside it.
    refuse_non_socket(path)?;
    let lock = lock(path)?;
    clear_stale(path).await?;
    let (listener, identity) = bind_private(path, gid)?;
    Ok(ClaimedSocket {
        path: path.to_owned(),
        listener: Some(listener),
        identity,
        lock: Some(lock),
    })
}

fn resolve_group(name: &str) -> Result<Gid, DaemonError> {
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(DaemonError::UnknownGroup {
            group: name.to_owned(),
            reason: "no such group".to_owned(),
        }),
        Err(e) => Err(DaemonError::UnknownGroup {
            group: name.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Opens `<socket>.lock` (never through a symbolic link) and locks it, or names the holder.
fn lock(socket: &Path) -> Result<Flock<File>, DaemonError> {
    let lock = lock_path(socket);
    let lock_err = |source: std::io::Error| DaemonError::Socket {
        path: lock.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&lock)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                DaemonError::BadLockFile {
                    path: lock.clone(),
                    problem: "is a symbolic link",
                }
            } else {
                lock_err(e)
            }
        })?;
    let meta = file.metadata().map_err(lock_err)?;
    // The pid is written into this file: never into a device, a FIFO, or (through a hard
    // link) somebody else's file.
    let problem = if !meta.file_type().is_file() {
        Some("is not a regular file")
    } else if meta.nlink() != 1 {
        Some("has other hard links")
    } else if meta.uid() != nix::unistd::geteuid().as_raw() {
        Some("belongs to another user")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(DaemonError::BadLockFile {
            path: lock.clone(),
            problem,
        });
    }
    let mut locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((mut file, errno)) if errno == nix::errno::Errno::EWOULDBLOCK => {
            return Err(DaemonError::InUse {
                path: socket.to_owned(),
                lock: lock.clone(),
                holder: read_pid(&mut file),
            });
        }
        Err((_, errno)) => return Err(lock_err(std::io::Error::from(errno))),
    };
    // Name this process as the holder, for the error a second daemon prints.
    let write_pid = |f: &mut File| -> std::io::Result<()> {
        f.set_len(0)?;
        f.rewind()?;
        writeln!(f, "{}", std::process::id())
    };
    if let Err(e) = write_pid(&mut locked) {
        tracing::debug!(lock = %lock.display(), error = %e, "cannot record the daemon's pid");
    }
    Ok(locked)
}

/// The pid a lock file names, if it names one.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Refuses anything but nothing or a socket at `path`.
fn refuse_non_socket(path: &Path) -> Result<(), DaemonError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => Err(DaemonError::NotASocket {
            path: path.to_owned(),
            what: describe(meta.file_type()),
        }),
        _ => Ok(()),
    }
}

/// Removes a stale socket at `path`; refuses anything else there.
async fn clear_stale(path: &Path) -> Result<(), DaemonError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(DaemonError::Socket {
                path: path.to_owned(),
                source,
            });
        }
    };
    let kind = meta.file_type();
    if !kind.is_socket() {
        return Err(DaemonError::NotASocket {
            path: path.to_owned(),
            what: describe(kind),
        });
    }
    // We hold the lock, so no ocf daemon owns this socket; still, only a socket nobody
    // listens on is stale. A full listen queue (EAGAIN) means a live, busy owner.
    match tokio::net::UnixStream::connect(path).await {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
            .map_err(|source| DaemonError::Socket {
                path: path.to_owned(),
                source,
            }),
        _ => Err(DaemonError::InUse {
            path: path.to_owned(),
            lock: lock_path(path),
            holder: None,
        }),
    }
}

fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_file() {
        "a regular file"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "a special file"
    }
}

/// Removes the private directory (and the socket left in it) on every exit path.
struct PrivateDir(PathBuf);

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Binds the socket in a private directory, sets mode and group, renames it to `path`.
fn bind_private(path: &Path, gid: Option<Gid>) -> Result<(UnixListener, (u64, u64)), DaemonError> {
    let socket_err = |source: std::io::Error| DaemonError::Socket {
        path: path.to_owned(),
        source,
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let private = private_dir(&parent).map_err(socket_err)?;
    let temp = private.0.join("s");
    let std_listener = std::os::unix::net::UnixListener::bind(&temp).map_err(socket_err)?;
    std::fs::set_permissions(
        &temp,
        std::os::unix::fs::PermissionsExt::from_mode(SOCKET_MODE),
    )
    .map_err(socket_err)?;
    if let Some(gid) = gid {
        nix::unistd::chown(&temp, None, Some(gid))
            .map_err(|e| socket_err(std::io::Error::from(e)))?;
    }
    renameat2(None, &temp, None, path, RenameFlags::RENAME_NOREPLACE).map_err(|e| {
        if e == nix::errno::Errno::EEXIST {
            // Something appeared at the path after it was checked: leave it alone.
            DaemonError::NotASocket {
                path: path.to_owned(),
                what: "a file created by someone else while the daemon started",
            }
        } else {
            socket_err(std::io::Error::from(e))
        }
    })?;
    let meta = std::fs::symlink_metadata(path).map_err(socket_err)?;
    std_listener.set_nonblocking(true).map_err(socket_err)?;
    let listener = UnixListener::from_std(std_listener).map_err(socket_err)?;
    Ok((listener, (meta.dev(), meta.ino())))
}

/// A new directory `<parent>/.ocf-XXXXXX` with mode 0700 (the umask can only narrow it).
fn private_dir(parent: &Path) -> std::io::Result<PrivateDir> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut last = None;
    for _ in 0..16 {
        let name: String = (0..6)
            .map(|_| char::from(rng.sample(rand::distributions::Alphanumeric)))
            .collect();
        let dir = parent.join(format!(".ocf-{name}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(PrivateDir(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free private directory name")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lock_file_that_is_not_ours_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("api.sock");
        let precious = dir.path().join("precious");
        std::fs::write(&precious, "keep me").unwrap();
        std::fs::hard_link(&precious, lock_path(&socket)).unwrap();
        let e = claim(&socket, None).await.unwrap_err();
        assert!(e.to_string().contains("has other hard links"), "{e}");
        std::fs::remove_file(lock_path(&socket)).unwrap();
        std::os::unix::fs::symlink(&precious, lock_path(&socket)).unwrap();
        let e = claim(&socket, None).await.unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
        assert!(!socket.exists());
        std::fs::remove_file(lock_path(&socket)).unwrap();
        let claimed = claim(&socket, None).await.unwrap();
        assert!(socket.exists());
        drop(claimed);
        assert!(!socket.exists(), "the socket goes with its claim");
        assert!(lock_path(&socket).exists(), "the lock file stays");
    }

    #[test]
    fn the_lock_sits_beside_the_socket() {
        assert_eq!(
            lock_path(Path::new("/run/ocf/c1-1.sock")),
            PathBuf::from("/run/ocf/c1-1.sock.lock")
        );
    }
}
