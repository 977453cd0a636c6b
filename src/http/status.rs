//! The statuses Floe answers with, as a type, and the one way a refusal
//! becomes a response.
//!
//! Only statuses Floe really sends are listed, so a handler cannot answer
//! with a code it has no reason phrase, access-log class or test for; what
//! upstreams answer Floe (relays, URL auth, directories) is a plain `u16` in
//! `crate::client`, since any number may come back from outside.

use std::fmt;

use super::response::Response;

/// An HTTP status Floe sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Status {
    Continue = 100,
    Ok = 200,
    NoContent = 204,
    NotModified = 304,
    BadRequest = 400,
    Unauthorized = 401,
    Forbidden = 403,
    NotFound = 404,
    MethodNotAllowed = 405,
    RequestTimeout = 408,
    Conflict = 409,
    PayloadTooLarge = 413,
    UnsupportedMediaType = 415,
    TooManyRequests = 429,
    HeaderFieldsTooLarge = 431,
    InternalServerError = 500,
    NotImplemented = 501,
    ServiceUnavailable = 503,
}

impl Status {
    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn reason(self) -> &'static str {
        match self {
            Status::Continue => "Continue",
            Status::Ok => "OK",
            Status::NoContent => "No Content",
            Status::NotModified => "Not Modified",
            Status::BadRequest => "Bad Request",
            Status::Unauthorized => "Unauthorized",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::Conflict => "Conflict",
            Status::PayloadTooLarge => "Payload Too Large",
            Status::UnsupportedMediaType => "Unsupported Media Type",
            Status::TooManyRequests => "Too Many Requests",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::InternalServerError => "Internal Server Error",
            Status::NotImplemented => "Not Implemented",
            Status::ServiceUnavailable => "Service Unavailable",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// An error a client is told about. Every refusal (a bad head, a source or
/// admin login, an access rule, a full server) implements this, and
/// [`Refusal::response`] is the one place that turns it into an answer, so
/// the same kind of refusal always carries the same status and headers.
pub trait Refusal: fmt::Display {
    fn status(&self) -> Status;

    /// The realm of the Basic challenge a 401 carries.
    fn realm(&self) -> &'static str {
        "Floe"
    }

    /// Seconds the client should wait before retrying (sent as `Retry-After`).
    fn retry_after(&self) -> Option<u64> {
        None
    }

    /// The answer: the status, the message as plain text, a Basic challenge
    /// on 401 (libshout waits for it before it sends credentials) and
    /// `Retry-After` when there is a wait to tell.
    /// An error with a body of its own (Icecast's HTML error page) overrides
    /// this and keeps the headers with [`Response::with_refusal_headers`].
    fn response(&self) -> Response {
        Response::text(self.status(), &self.to_string()).with_refusal_headers(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Busy;
    impl fmt::Display for Busy {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("busy")
        }
    }
    impl Refusal for Busy {
        fn status(&self) -> Status {
            Status::TooManyRequests
        }
        fn retry_after(&self) -> Option<u64> {
            Some(7)
        }
    }

    struct Login;
    impl fmt::Display for Login {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("authentication required")
        }
    }
    impl Refusal for Login {
        fn status(&self) -> Status {
            Status::Unauthorized
        }
        fn realm(&self) -> &'static str {
            "Floe admin"
        }
    }

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn refusals_carry_their_status_message_and_headers() {
        let busy = Busy.response();
        assert_eq!(busy.status, Status::TooManyRequests);
        assert_eq!(&busy.body[..], b"busy\n");
        assert_eq!(header(&busy, "Retry-After"), Some("7"));
        assert_eq!(header(&busy, "WWW-Authenticate"), None);

        let login = Login.response();
        assert_eq!(login.status.code(), 401);
        assert_eq!(header(&login, "WWW-Authenticate"), Some("Basic realm=\"Floe admin\""));
        assert_eq!(header(&login, "Retry-After"), None);
    }

    #[test]
    fn codes_and_reasons() {
        assert_eq!(Status::HeaderFieldsTooLarge.code(), 431);
        assert_eq!(Status::HeaderFieldsTooLarge.reason(), "Request Header Fields Too Large");
        assert_eq!(Status::NotModified.to_string(), "304");
    }
}
