//! The lingering close of a refused upload, off the connection's task.
//!
//! A request answered before its body was read (a 401 from the head, a 413, a 408) closes its
//! connection, and what the client still sends must be read and discarded for a moment, or the
//! close resets the connection before the client reads its answer. Lingering on the Pingora
//! session keeps all of the connection's state for that moment: the proxy's task and its future,
//! the session's header and body buffers, the socket's read and write buffers, about 60 KB per
//! connection, so 1,000 unauthenticated uploads held 60 MB for two seconds. [`hand_off`] lingers
//! on a duplicate of the socket in a task of its own instead (about 3 KB), and the session ends at
//! once: Pingora shuts the connection down for writing (the client reads the answer, then the
//! end of it) and drops its state, while the duplicate keeps the socket open for the linger.

use std::time::Duration;

#[cfg(unix)]
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::proxy::Session;
#[cfg(unix)]
use tokio::net::TcpStream;

/// Lingers on `session`'s connection in the background for `limit` at most: reads and discards
/// what the client sends until it closes its side, then closes the socket. Returns `false`,
/// having changed nothing, when the connection is not a plain socket (TLS, HTTP/2, an in-memory
/// stream) or its socket cannot be duplicated; the caller then lingers on the session itself.
///
/// The session must not be reused: its connection has to end with the request (no keep-alive),
/// so that nothing else reads from the socket.
#[cfg(unix)]
pub(super) fn hand_off(session: &Session, limit: Duration) -> bool {
    let Some(socket) = session
        .stream()
        .and_then(|stream| stream.as_any().downcast_ref::<L4Stream>())
        .and_then(|stream| duplicate(stream).ok())
    else {
        return false;
    };
    tokio::spawn(async move {
        let _ = tokio::time::timeout(limit, discard_until_closed(socket)).await;
    });
    true
}

/// Anywhere but Unix, the caller lingers on the session.
#[cfg(not(unix))]
pub(super) fn hand_off(_session: &Session, _limit: Duration) -> bool {
    false
}

/// A duplicate of `stream`'s socket, registered with the current runtime. Reading it works the
/// same for a Unix socket as for a TCP one.
#[cfg(unix)]
fn duplicate(stream: &L4Stream) -> std::io::Result<TcpStream> {
    use std::os::fd::{AsRawFd, BorrowedFd};

    let raw = stream.as_raw_fd();
    // A virtual stream has no descriptor (-1); `from_std` panics outside a runtime.
    if raw < 0 || tokio::runtime::Handle::try_current().is_err() {
        return Err(std::io::ErrorKind::Unsupported.into());
    }
    #[allow(unsafe_code)]
    // SAFETY: `raw` is the descriptor of `stream`'s socket, open for as long as `stream` is
    // borrowed; it is borrowed only for the duplication just below.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    let socket = std::net::TcpStream::from(borrowed.try_clone_to_owned()?);
    socket.set_nonblocking(true)?;
    TcpStream::from_std(socket)
}

/// Reads and discards until the client closes its side or the connection fails.
#[cfg(unix)]
async fn discard_until_closed(socket: TcpStream) {
    while socket.readable().await.is_ok() {
        match discard(&socket) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// One read into a buffer on the stack, not in the task: a lingering connection costs its socket
/// and a small task, never a buffer.
#[cfg(unix)]
fn discard(socket: &TcpStream) -> std::io::Result<usize> {
    let mut sink = [0u8; 4096];
    socket.try_read(&mut sink)
}
