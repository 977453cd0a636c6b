//! Writing a batch of shared `Bytes` to a socket with vectored writes, so a
//! batch of chunks (and ICY blocks between them) costs one syscall, not one
//! per piece, and no byte is copied into a per-listener buffer; or, for a
//! listener on a kept-alive or HTTP/2 connection, handing the pieces to
//! hyper's body channel (no copy either).

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::body::BodySender;

/// Where a listener's bytes go.
pub enum Sink {
    /// The connection's own socket (a connection opened for the stream).
    Socket(TcpStream),
    /// A response body hyper writes (HTTP/1.1 chunked, or an HTTP/2 stream).
    Body(BodySender),
}

impl Sink {
    /// Take the socket out to lend it to the mount: a plain socket, out of
    /// the runtime's reactor (nothing waits on it while parked). `None` if
    /// there is no socket or it cannot be taken out.
    pub fn lend(self) -> Option<std::net::TcpStream> {
        let Sink::Socket(sock) = self else {
            return None;
        };
        sock.into_std().ok()
    }

    /// Write what fits right now, without waiting, adding the bytes
    /// written to `written` (also those written before an error).
    pub fn try_write(&self, pieces: &mut VecDeque<Bytes>, written: &mut u64) -> std::io::Result<()> {
        match self {
            Sink::Socket(sock) => try_write_pieces(sock, pieces, written),
            Sink::Body(body) => {
                while let Some(piece) = pieces.front() {
                    match body.try_send(piece.clone()) {
                        Ok(true) => *written += pieces.pop_front().map_or(0, |p| p.len() as u64),
                        Ok(false) => break,
                        Err(_) => return Err(std::io::ErrorKind::BrokenPipe.into()),
                    }
                }
                Ok(())
            }
        }
    }

    /// Write every piece, waiting while the client is behind, adding the
    /// bytes written to `written` (also those written before an error or
    /// before the write is dropped).
    pub async fn write_all(&mut self, pieces: &mut VecDeque<Bytes>, written: &mut u64) -> std::io::Result<()> {
        match self {
            Sink::Socket(sock) => write_all_pieces(sock, pieces, written).await,
            Sink::Body(body) => {
                while let Some(piece) = pieces.front() {
                    body.send(piece.clone()).await.map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
                    *written += pieces.pop_front().map_or(0, |p| p.len() as u64);
                }
                Ok(())
            }
        }
    }
}

/// Most slices handed to one `writev` (well under Linux's IOV_MAX of 1024).
const MAX_SLICES: usize = 64;

/// Write every piece, in order. On return `pieces` is empty (or holds what
/// was not written when an error occurred). Adds the bytes written to
/// `written` as they go, so a write cut short still counts what went out.
async fn write_all_pieces<W: AsyncWrite + Unpin>(
    out: &mut W,
    pieces: &mut VecDeque<Bytes>,
    written: &mut u64,
) -> std::io::Result<()> {
    while !pieces.is_empty() {
        let n = {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = fill_slices(pieces, &mut slices);
            out.write_vectored(&slices[..count]).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        *written += n as u64;
        advance(pieces, n);
    }
    Ok(())
}

/// Write what the socket takes right now, without waiting. Most batches fit
/// in the socket buffer, so this usually finishes the batch with no timer,
/// no select and no extra wake-up. Adds the bytes written to `written`.
fn try_write_pieces(sock: &TcpStream, pieces: &mut VecDeque<Bytes>, written: &mut u64) -> std::io::Result<()> {
    while !pieces.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let count = fill_slices(pieces, &mut slices);
        match sock.try_write_vectored(&slices[..count]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                *written += n as u64;
                advance(pieces, n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Point `slices` (a stack array: this runs per listener per batch, so no
/// allocation) at the first pieces; returns how many are set.
fn fill_slices<'a>(pieces: &'a VecDeque<Bytes>, slices: &mut [IoSlice<'a>; MAX_SLICES]) -> usize {
    let mut count = 0;
    for (slot, piece) in slices.iter_mut().zip(pieces.iter()) {
        *slot = IoSlice::new(piece);
        count += 1;
    }
    count
}

/// Drop `n` written bytes from the front of `pieces`.
fn advance(pieces: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = pieces.front_mut() else {
            return;
        };
        if front.len() <= n {
            n -= front.len();
            pieces.pop_front();
        } else {
            front.advance(n);
            n = 0;
        }
    }
    while pieces.front().is_some_and(Bytes::is_empty) {
        pieces.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_splits_partial_pieces() {
        let mut pieces: VecDeque<Bytes> =
            [&b"abc"[..], b"de", b"fgh"].iter().map(|s| Bytes::copy_from_slice(s)).collect();
        advance(&mut pieces, 4);
        assert_eq!(pieces, [Bytes::from_static(b"e"), Bytes::from_static(b"fgh")]);
        advance(&mut pieces, 4);
        assert!(pieces.is_empty());
    }

    #[tokio::test]
    async fn writes_everything_in_order() {
        let mut pieces: VecDeque<Bytes> = (0..200u8).map(|i| Bytes::from(vec![i; 3])).collect();
        let mut sink = Vec::new();
        let mut n = 0;
        write_all_pieces(&mut sink, &mut pieces, &mut n).await.unwrap();
        assert_eq!(n, 600);
        assert_eq!(sink.len(), 600);
        assert_eq!(&sink[597..], &[199, 199, 199]);
    }
}
