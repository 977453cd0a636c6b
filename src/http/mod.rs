//! HTTP vocabulary, below everything that speaks it: request heads parsed
//! within the server's limits, chunked request bodies, and complete
//! responses. No sockets and no routing here (that is `server`), so sources,
//! listeners, admin and the adaptive streams share one set of types without
//! importing the accept loop.

pub mod body;
pub mod chunked;
pub mod request;
pub mod response;
pub mod server_id;
pub mod status;
pub mod url;
