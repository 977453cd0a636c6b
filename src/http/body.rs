//! Response bodies as hyper sends them: a whole buffer, or a stream fed
//! through a bounded channel by the task that produces it (a segment still
//! being written, a listener's stream). The channel holds a few pieces, so
//! a client that stops reading makes its producer wait instead of making
//! Floe buffer for it.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;

/// Pieces a streamed body may hold between its producer and the socket.
pub const CHANNEL_PIECES: usize = 32;

pub enum Body {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Bytes>),
}

impl Body {
    pub fn full(bytes: Bytes) -> Body {
        Body::Full((!bytes.is_empty()).then_some(bytes))
    }

    /// A streamed body and the handle its producer sends into.
    pub fn channel() -> (BodySender, Body) {
        let (tx, rx) = mpsc::channel(CHANNEL_PIECES);
        (BodySender(tx), Body::Channel(rx))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Channel(rx) => rx.poll_recv(cx).map(|piece| piece.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Channel(_) => SizeHint::default(),
        }
    }
}

/// The producer's end of a streamed body.
pub struct BodySender(mpsc::Sender<Bytes>);

/// The client went away (hyper dropped the body).
#[derive(Debug)]
pub struct Closed;

impl BodySender {
    /// Send a piece, waiting while the client is behind.
    pub async fn send(&self, piece: Bytes) -> Result<(), Closed> {
        self.0.send(piece).await.map_err(|_| Closed)
    }

    /// Send a piece if there is room now; `Ok(false)` when the channel is full.
    pub fn try_send(&self, piece: Bytes) -> Result<bool, Closed> {
        match self.0.try_send(piece) {
            Ok(()) => Ok(true),
            Err(mpsc::error::TrySendError::Full(_)) => Ok(false),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Closed),
        }
    }
}
