//! Ogg page syntax: capture pattern search, header fields, lacing values and
//! the page CRC.

/// Fixed part of a page header; the segment table follows.
pub(super) const HEADER_LEN: usize = 27;
/// Header type flag of a page whose first segment continues a packet.
pub const FLAG_CONTINUED: u8 = 0x01;
/// Header type flag of a stream's first page.
pub const FLAG_BOS: u8 = 0x02;
/// Header type flag of a stream's last page.
pub const FLAG_EOS: u8 = 0x04;

/// The fields of a page header the framer acts on.
pub(super) struct Page {
    /// Whole page length: header, segment table and body.
    pub len: usize,
    /// Header type flags (continued, BOS, EOS).
    pub flags: u8,
    /// Granule position; -1 (all ones) when no packet ends on the page.
    pub granule: u64,
    /// Bitstream serial number: which logical stream the page belongs to.
    pub serial: u32,
    /// Page sequence number within its logical stream.
    pub sequence: u32,
    /// Number of lacing values in the segment table.
    pub segments: usize,
}

/// Outcome of parsing the page at the start of a buffer.
pub(super) enum Parse {
    NeedMore,
    Invalid,
    Page(Page),
}

/// Bytes before the next possible page start ("OggS", or a prefix of it at
/// the very end of `buf`, which may complete with the next read).
pub(super) fn garbage_len(buf: &[u8]) -> usize {
    const MAGIC: &[u8; 4] = b"OggS";
    if let Some(at) = buf.windows(4).position(|w| w == MAGIC) {
        return at;
    }
    let tail = (1..4).rev().find(|&k| buf.ends_with(&MAGIC[..k])).unwrap_or(0);
    buf.len().saturating_sub(tail)
}

/// Parse and check the page at the start of `buf` (which starts with "OggS").
pub(super) fn parse_page(buf: &[u8]) -> Parse {
    let parse = read_header(buf);
    if let Parse::Page(page) = &parse {
        let stored = u32::from_le_bytes([buf[22], buf[23], buf[24], buf[25]]);
        if page_crc(&buf[..page.len]) != stored {
            return Parse::Invalid;
        }
    }
    parse
}

/// The header of the complete page at the start of `buf`, its CRC not
/// checked.
fn read_header(buf: &[u8]) -> Parse {
    let Some(Ok(head)) = buf.get(..HEADER_LEN).map(<&[u8; HEADER_LEN]>::try_from) else {
        return Parse::NeedMore;
    };
    // Version 0 is the only one; flags above EOS are undefined.
    if !head.starts_with(b"OggS") || head[4] != 0 || head[5] & !0x07 != 0 {
        return Parse::Invalid;
    }
    let segments = usize::from(head[26]);
    let Some(table) = buf.get(HEADER_LEN..HEADER_LEN + segments) else {
        return Parse::NeedMore;
    };
    let len = HEADER_LEN + segments + table.iter().map(|&l| usize::from(l)).sum::<usize>();
    if buf.len() < len {
        return Parse::NeedMore;
    }
    let mut granule = [0; 8];
    granule.copy_from_slice(&head[6..14]);
    Parse::Page(Page {
        len,
        flags: head[5],
        granule: u64::from_le_bytes(granule),
        serial: u32::from_le_bytes([head[14], head[15], head[16], head[17]]),
        sequence: u32::from_le_bytes([head[18], head[19], head[20], head[21]]),
        segments,
    })
}

/// A page of a unit the framer made, as the transcoder reads it.
#[derive(Clone, Copy)]
pub struct PageRef<'a> {
    pub serial: u32,
    /// Header type flags ([`FLAG_BOS`] marks a stream's first page,
    /// [`FLAG_EOS`] its last, [`FLAG_CONTINUED`] a page whose first segment
    /// continues a packet).
    pub flags: u8,
    /// Position of the codec's sample clock at the end of the last packet
    /// completed on the page; all ones when none is.
    pub granule: u64,
    /// Page sequence number: a gap means pages were lost between.
    pub sequence: u32,
    /// The lacing values.
    pub table: &'a [u8],
    pub body: &'a [u8],
}

/// The pages of `unit` (a data page, or a run of header pages) as the
/// framer cut and checked them; `None` if it is not made of whole pages.
pub fn pages_of(mut unit: &[u8]) -> Option<Vec<PageRef<'_>>> {
    let mut pages = Vec::new();
    while !unit.is_empty() {
        let Parse::Page(page) = read_header(unit) else { return None };
        let (bytes, rest) = unit.split_at(page.len);
        let (table, body) = bytes[HEADER_LEN..].split_at(page.segments);
        pages.push(PageRef {
            serial: page.serial,
            flags: page.flags,
            granule: page.granule,
            sequence: page.sequence,
            table,
            body,
        });
        unit = rest;
    }
    Some(pages)
}

/// The lacing values of a parsed page.
pub(super) fn segment_table<'a>(page: &Page, bytes: &'a [u8]) -> &'a [u8] {
    bytes.get(HEADER_LEN..HEADER_LEN + page.segments).unwrap_or(&[])
}

/// Packets ending on a page: a lacing value below 255 ends a packet.
pub(super) fn complete_packets(table: &[u8]) -> u32 {
    table.iter().filter(|&&l| l < 255).count() as u32
}

/// Whether the page's last packet continues on the next page.
pub(super) fn ends_open(table: &[u8]) -> bool {
    table.last() == Some(&255)
}

/// Ogg CRC-32: polynomial 0x04c11db7, MSB first, initial value 0, no final
/// xor, computed with the page's CRC field zeroed.
pub(super) fn page_crc(page: &[u8]) -> u32 {
    let (before, rest) = page.split_at(22.min(page.len()));
    let after = rest.get(4..).unwrap_or(&[]);
    crc_update(crc_update(crc_update(0, before), &[0; 4]), after)
}

/// Feed `data` into a running Ogg CRC.
pub(super) fn crc_update(crc: u32, data: &[u8]) -> u32 {
    data.iter().fold(crc, |c, &b| c << 8 ^ CRC_TABLE[usize::from((c >> 24) as u8 ^ b)])
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 { r << 1 ^ 0x04c1_1db7 } else { r << 1 };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
}
