//! Pass-through framing for formats Floe does not understand: every read is
//! relayed as it came and is a sync point.

use bytes::Bytes;

use super::{Framer, Unit};

/// Relays each push as one `Data { sync: true }` unit; never skips anything.
///
/// Not a unit struct: callers build it with `default()`, which clippy
/// rejects for unit structs.
#[derive(Debug, Default)]
pub struct OpaqueFramer {
    _private: (),
}

impl Framer for OpaqueFramer {
    fn push(&mut self, input: &[u8], out: &mut Vec<Unit>) {
        if !input.is_empty() {
            out.push(Unit::Data { bytes: Bytes::copy_from_slice(input), sync: true });
        }
    }

    fn skipped_bytes(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_push_is_one_sync_unit() {
        let mut f = OpaqueFramer::default();
        let mut out = Vec::new();
        f.push(b"abc", &mut out);
        f.push(b"", &mut out);
        f.push(b"\xff", &mut out);
        assert_eq!(
            out,
            vec![
                Unit::Data { bytes: Bytes::from_static(b"abc"), sync: true },
                Unit::Data { bytes: Bytes::from_static(b"\xff"), sync: true },
            ]
        );
        assert_eq!(f.skipped_bytes(), 0);
        assert_eq!(f.audio_info(), None);
    }
}
