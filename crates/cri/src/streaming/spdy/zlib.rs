//! SPDY/3 header compression: every header block of a session is one zlib stream per
//! direction, primed with the SPDY/3 dictionary and sync-flushed at the end of each block.
//! Peers (Go's spdystream) compress with the dictionary, so inflating needs it in the window;
//! miniz_oxide has no preset-dictionary call, so the dictionary is laid in the output buffer
//! before the first byte and the buffer is used non-wrapping: back-references then reach into
//! it exactly as zlib's `inflateSetDictionary` would. Our own blocks are deflated without
//! referring to the dictionary (valid for any peer) under a zlib header that names it.

use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};
use miniz_oxide::inflate::core::inflate_flags::{
    TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
};
use miniz_oxide::inflate::core::{decompress, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// The SPDY/3 header compression dictionary (1423 bytes, from the SPDY/3 specification).
pub static DICTIONARY: &[u8] = include_bytes!("dictionary.bin");

const WINDOW: usize = 32 * 1024;

pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZlibError {
    #[error("spdy header block: bad zlib header")]
    Header,
    #[error("spdy header block: zlib stream names an unknown dictionary")]
    Dictionary,
    #[error("spdy header block: corrupt deflate data ({0})")]
    Data(String),
}

/// Inflates the header blocks one direction of a session sends.
pub struct Inflater {
    state: Box<DecompressorOxide>,
    /// Output history: the dictionary, then every byte inflated, trimmed to the last window.
    buf: Vec<u8>,
    pos: usize,
    /// zlib header bytes still to read (2, plus 4 when it names a dictionary).
    header: Vec<u8>,
    header_done: bool,
}

impl Default for Inflater {
    fn default() -> Self {
        let mut buf = DICTIONARY.to_vec();
        let pos = buf.len();
        buf.resize(pos + 16 * 1024, 0);
        Inflater {
            state: Box::default(),
            buf,
            pos,
            header: Vec::new(),
            header_done: false,
        }
    }
}

impl Inflater {
    /// Consumes the zlib header at the start of the stream; answers the rest of `input`.
    fn skip_header<'a>(&mut self, mut input: &'a [u8]) -> Result<&'a [u8], ZlibError> {
        while !self.header_done && !input.is_empty() {
            self.header.push(input[0]);
            input = &input[1..];
            if self.header.len() == 2 {
                let (cmf, flg) = (self.header[0], self.header[1]);
                if cmf & 0x0f != 8 || (u16::from(cmf) * 256 + u16::from(flg)) % 31 != 0 {
                    return Err(ZlibError::Header);
                }
                self.header_done = flg & 0x20 == 0;
            } else if self.header.len() == 6 {
                let id = u32::from_be_bytes([
                    self.header[2],
                    self.header[3],
                    self.header[4],
                    self.header[5],
                ]);
                if id != adler32(DICTIONARY) {
                    return Err(ZlibError::Dictionary);
                }
                self.header_done = true;
            }
        }
        Ok(input)
    }

    /// Inflates one (sync-flushed) header block.
    pub fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, ZlibError> {
        let mut input = self.skip_header(block)?;
        let mut out = Vec::new();
        loop {
            if self.buf.len() - self.pos < 4096 {
                let grow = self.buf.len();
                self.buf.resize(self.buf.len() + grow, 0);
            }
            let flags = TINFL_FLAG_HAS_MORE_INPUT | TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
            let (status, used, made) =
                decompress(&mut self.state, input, &mut self.buf, self.pos, flags);
            out.extend_from_slice(&self.buf[self.pos..self.pos + made]);
            self.pos += made;
            input = &input[used..];
            match status {
                TINFLStatus::NeedsMoreInput | TINFLStatus::Done if input.is_empty() => break,
                TINFLStatus::HasMoreOutput | TINFLStatus::NeedsMoreInput => continue,
                other => return Err(ZlibError::Data(format!("{other:?}"))),
            }
        }
        // Keep only the window back-references can reach.
        if self.pos > 4 * WINDOW {
            let cut = self.pos - WINDOW;
            self.buf.drain(..cut);
            self.pos -= cut;
        }
        Ok(out)
    }
}

/// Deflates the header blocks we send.
pub struct Deflater {
    state: Box<CompressorOxide>,
    started: bool,
}

impl Default for Deflater {
    fn default() -> Self {
        // Raw deflate (negative window bits): the zlib header is ours, naming the dictionary.
        let flags = create_comp_flags_from_zip_params(6, -15, 0);
        Deflater {
            state: Box::new(CompressorOxide::new(flags)),
            started: false,
        }
    }
}

impl Deflater {
    pub fn deflate(&mut self, block: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(block.len() + 16);
        if !self.started {
            // CMF 0x78 (deflate, 32K window), FLG 0xF9 (FDICT, best compression, check bits).
            out.extend_from_slice(&[0x78, 0xf9]);
            out.extend_from_slice(&adler32(DICTIONARY).to_be_bytes());
            self.started = true;
        }
        let (status, used) = compress_to_output(&mut self.state, block, TDEFLFlush::Sync, |c| {
            out.extend_from_slice(c);
            true
        });
        debug_assert!(matches!(status, TDEFLStatus::Okay) && used == block.len());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn dictionary_is_the_spdy3_one() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert_eq!(adler32(DICTIONARY), 0xe3c6_a7c2);
        assert!(DICTIONARY.ends_with(b"enq=0."));
    }

    /// Two consecutive blocks of one stream from zlib itself (Python's zlib, level 9, zdict =
    /// the dictionary, Z_SYNC_FLUSH after each), as a Go peer sends them.
    #[test]
    fn inflates_zlib_blocks_that_use_the_dictionary() {
        let b1 = unhex("78f9e3c6a7c202253a703a2b294a4dcc851625c0149b920f2e88d10b192e84ebb097bb3cc8ce01000000ffff");
        let b2 = unhex("02653d0cc359818667e6e1371b000000ffff");
        let mut inf = Inflater::default();
        let out1 = inf.inflate(&b1).unwrap();
        assert_eq!(out1.len(), 93);
        assert!(out1.windows(6).any(|w| w == b"stdout"));
        assert!(
            out1.windows(13).any(|w| w == b"gzip,deflate\0") || out1.ends_with(b"gzip,deflate")
        );
        let out2 = inf.inflate(&b2).unwrap();
        assert_eq!(out2.len(), 57);
        assert!(out2.windows(5).any(|w| w == b"stdin"));
    }

    #[test]
    fn round_trips_many_blocks() {
        let mut def = Deflater::default();
        let mut inf = Inflater::default();
        for i in 0..2000 {
            let block =
                format!("block {i} streamtype data port {} requestid {i}", i % 7).repeat(1 + i % 5);
            let z = def.deflate(block.as_bytes());
            assert_eq!(inf.inflate(&z).unwrap(), block.as_bytes(), "block {i}");
        }
    }

    #[test]
    fn rejects_other_dictionaries_and_garbage() {
        let mut inf = Inflater::default();
        assert_eq!(
            inf.inflate(&[0x78, 0xf9, 1, 2, 3, 4, 0]),
            Err(ZlibError::Dictionary)
        );
        let mut inf = Inflater::default();
        assert_eq!(inf.inflate(&[0x12, 0x34]), Err(ZlibError::Header));
    }
}
