//! Gathered writes to one consumer socket: the WebSocket headers and each frame's slices
//! (prefix, seq, suffix — still in their shared-memory segments) go out in one
//! non-blocking `sendmsg`, and whatever the socket does not take at once goes through the
//! stream's awaitable writes (which carry the write timeout).
//!
//! Owns: the iovec array on the stack for one call. Must not: copy frame bytes (the
//! kernel reads them from the segments), or block (`MSG_DONTWAIT`; a full socket buffer
//! means "write the rest later", never a wait on the executor).
//!
//! Why not the stream's writes alone: glommio's `TcpStream` has no vectored write, so a
//! frame took four `send` syscalls (header, prefix, seq, suffix). Here a caught-up
//! consumer costs one per frame and a lagging one one per batch.

use crate::config::limits::FANOUT_WRITE_BATCH_FRAMES_MAX;
use futures_lite::io::{AsyncWrite, AsyncWriteExt};
use std::io::{self, IoSlice};
use std::os::fd::RawFd;

/// Slices one gathered write holds: a header and three frame parts per frame.
pub(crate) const GATHER_PARTS_MAX: usize = FANOUT_WRITE_BATCH_FRAMES_MAX * 4;

/// Write `parts` in order: one `sendmsg` for what the socket takes now, then the rest
/// through `writer`. `fd` must be the socket `writer` writes to.
pub(crate) async fn write_gathered<W: AsyncWrite + Unpin>(
    fd: RawFd,
    writer: &mut W,
    parts: &[&[u8]],
) -> io::Result<()> {
    let mut sent = send_now(fd, parts)?;
    for part in parts {
        if sent >= part.len() {
            sent -= part.len();
            continue;
        }
        writer
            .write_all(part.get(sent..).unwrap_or_default())
            .await?;
        sent = 0;
    }
    Ok(())
}

/// Bytes the socket took at once (0 when its buffer is full).
fn send_now(fd: RawFd, parts: &[&[u8]]) -> io::Result<usize> {
    let mut iov = [IoSlice::new(&[]); GATHER_PARTS_MAX];
    let mut used = 0;
    for (slot, part) in iov.iter_mut().zip(parts.iter().filter(|p| !p.is_empty())) {
        *slot = IoSlice::new(part);
        used += 1;
    }
    if used == 0 {
        return Ok(0);
    }
    match sendmsg_dontwait(fd, iov.get(..used).unwrap_or_default()) {
        Ok(sent) => Ok(sent),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

#[allow(unsafe_code)]
fn sendmsg_dontwait(fd: RawFd, iov: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: a zeroed msghdr is valid (no address, no control data); `IoSlice` is
    // guaranteed ABI-compatible with `iovec` on Unix, and `iov` outlives the call, which
    // only reads it. `fd` is an open socket owned by the caller's stream.
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = iov.len() as _;
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn gathered_parts_arrive_in_order_and_whole() {
        let (mut client, server) = pair();
        let big = vec![7u8; 8 * 1024 * 1024];
        let parts: Vec<&[u8]> = vec![b"head", b"", b"seq", &big, b"tail"];
        let fd = server.as_raw_fd();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            client.read_to_end(&mut all).unwrap();
            all
        });
        let mut writer = futures_lite::io::AssertAsync::new(&server);
        futures_lite::future::block_on(write_gathered(fd, &mut writer, &parts)).unwrap();
        server.shutdown(std::net::Shutdown::Write).unwrap();
        let got = reader.join().unwrap();
        let want: Vec<u8> = parts.concat();
        assert_eq!(got.len(), want.len());
        assert!(got == want);
    }
}
