//! A read-ahead buffer over a blocking reader, for the splitters in front of
//! the decoders (ADTS frames, Ogg pages): look at the next `n` bytes, then
//! consume some. Consumed bytes are dropped only when more must be read, so
//! scanning byte by byte for a sync word costs no copying.

use std::io::{self, Read};

pub(super) struct Lookahead<R> {
    reader: R,
    buf: Vec<u8>,
    /// Bytes before `start` are consumed.
    start: usize,
    eof: bool,
    /// How much to ask the reader for at a time.
    chunk: usize,
}

impl<R: Read> Lookahead<R> {
    pub(super) fn new(reader: R, chunk: usize) -> Self {
        Lookahead { reader, buf: Vec::with_capacity(4 * chunk), start: 0, eof: false, chunk }
    }

    /// The buffered, unconsumed bytes.
    pub(super) fn available(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Buffer at least `n` unconsumed bytes; false if the input ends first.
    pub(super) fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.available().len() < n {
            if self.eof {
                return Ok(false);
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let len = self.buf.len();
            self.buf.resize(len + self.chunk, 0);
            let read = self.reader.read(&mut self.buf[len..])?;
            self.buf.truncate(len + read);
            self.eof = read == 0;
        }
        Ok(true)
    }

    /// Mark `n` available bytes consumed.
    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_across_reads_and_consumes() {
        let data: Vec<u8> = (0..=255).collect();
        let mut la = Lookahead::new(&data[..], 10);
        assert!(la.fill(25).unwrap());
        assert_eq!(&la.available()[..3], &[0, 1, 2]);
        la.consume(20);
        assert!(la.fill(236).unwrap());
        assert_eq!(la.available()[0], 20);
        la.consume(230);
        assert_eq!(la.available(), &[250, 251, 252, 253, 254, 255]);
        assert!(!la.fill(7).unwrap(), "the input ends first");
        la.consume(100);
        assert!(la.available().is_empty());
    }
}
