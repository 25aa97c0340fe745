//! `content-encoding` bodies: decoding with a hard cap on the decoded size
//! (a 1 GB bomb from 1 MB of input stops at the cap and never allocates
//! past it), and re-encoding a rewritten body in the same encoding.
//!
//! gzip framing (header, CRC32, size, concatenated members) is parsed here
//! rather than by flate2's readers so truncation and corruption are always
//! reported (a reader would report a clean end on a cut stream) and output
//! is produced in bounded steps. Inflate/deflate is flate2 on its
//! pure-Rust miniz_oxide backend, which builds for `wasm32-wasip1`.
//! HTTP `deflate` is zlib (RFC 1950); raw deflate, which some servers
//! send, is recognised by its first two bytes.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::io::Write;

/// Output is produced in steps of this many bytes.
const STEP: usize = 16 * 1024;
/// A gzip header (with name, comment, extra field) longer than this is
/// refused as corrupt.
const MAX_GZIP_HEADER: usize = 64 * 1024;

/// An encoding veil can decode and re-encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gzip,
    Deflate,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }
}

/// What a `content-encoding` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentEncoding {
    /// None, or `identity`.
    Identity,
    Known(Encoding),
    /// Anything else (`br`, `zstd`, stacked codings such as `gzip, gzip`).
    Unsupported(String),
}

impl ContentEncoding {
    pub fn parse(value: Option<&str>) -> ContentEncoding {
        let Some(value) = value else {
            return ContentEncoding::Identity;
        };
        let codings: Vec<String> = value
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty() && c != "identity")
            .collect();
        match codings.as_slice() {
            [] => ContentEncoding::Identity,
            [one] if one == "gzip" || one == "x-gzip" => ContentEncoding::Known(Encoding::Gzip),
            [one] if one == "deflate" => ContentEncoding::Known(Encoding::Deflate),
            _ => ContentEncoding::Unsupported(value.trim().to_string()),
        }
    }
}

/// Restricts an `accept-encoding` value to `allowed` codings (and
/// `identity`), so a response comes back in a form veil can inspect.
/// Returns `None` when nothing is left (the header should go: the response
/// is then identity).
pub fn restrict_accept_encoding(value: &str, allowed: &[&str]) -> Option<String> {
    let kept: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|item| {
            let coding = item.split(';').next().unwrap_or("").trim();
            let gzip_alias = coding.eq_ignore_ascii_case("x-gzip") && allowed.contains(&"gzip");
            gzip_alias
                || allowed
                    .iter()
                    .chain(&["identity"])
                    .any(|s| s.eq_ignore_ascii_case(coding))
        })
        .collect();
    if kept.is_empty() {
        None
    } else {
        Some(kept.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("decoded body exceeds the {cap} byte limit")]
    TooLarge { cap: usize },
    #[error("corrupt {encoding} data: {detail}")]
    Corrupt {
        encoding: &'static str,
        detail: String,
    },
    #[error("truncated {encoding} data")]
    Truncated { encoding: &'static str },
}

/// The deflate container of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Gzip,
    Zlib,
    Raw,
}

#[derive(Debug)]
enum Stage {
    /// Waiting for the gzip header, or the two bytes that tell zlib from raw.
    Header,
    Body,
    /// gzip: waiting for the 8-byte trailer.
    Trailer,
    /// A member ended; more input may start another one (gzip only).
    Done,
}

/// A streaming decoder: push compressed chunks, get decoded bytes.
pub struct Decoder {
    encoding: Encoding,
    flavor: Option<Flavor>,
    stage: Stage,
    inflate: Decompress,
    /// Header or trailer bytes collected so far.
    held: Vec<u8>,
    crc: crc32fast::Hasher,
    member_size: u32,
    total: usize,
    cap: usize,
    failed: Option<DecodeError>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("encoding", &self.encoding)
            .field("flavor", &self.flavor)
            .field("stage", &self.stage)
            .field("total", &self.total)
            .field("cap", &self.cap)
            .finish()
    }
}

impl Decoder {
    /// A decoder that refuses to produce more than `cap` bytes.
    pub fn new(encoding: Encoding, cap: usize) -> Decoder {
        Decoder {
            encoding,
            flavor: None,
            stage: Stage::Header,
            inflate: Decompress::new(false),
            held: Vec::new(),
            crc: crc32fast::Hasher::new(),
            member_size: 0,
            total: 0,
            cap,
            failed: None,
        }
    }

    /// Decoded bytes since the start (or the last `refill`).
    pub fn decoded(&self) -> usize {
        self.total
    }

    /// Starts a new budget of `cap` decoded bytes. A stream calls this per
    /// chunk: its memory is bounded per step, so the cap there limits what
    /// one chunk may expand to, not the length of the whole stream.
    pub fn refill(&mut self) {
        self.total = 0;
    }

    fn corrupt(&self, detail: impl Into<String>) -> DecodeError {
        DecodeError::Corrupt {
            encoding: self.encoding.as_str(),
            detail: detail.into(),
        }
    }

    /// Decodes `input`, appending to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.push_inner(input, out);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn push_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        while !input.is_empty() {
            match self.stage {
                Stage::Header => {
                    let old = self.held.len();
                    self.held.extend_from_slice(input);
                    let decided = match self.encoding {
                        Encoding::Gzip => gzip_header_len(&self.held)
                            .map_err(|d| self.corrupt(d))?
                            .map(|n| (Flavor::Gzip, n)),
                        Encoding::Deflate if self.held.len() >= 2 => {
                            let (a, b) = (self.held[0], self.held[1]);
                            let zlib =
                                a & 0x0f == 8 && ((u16::from(a) << 8) | u16::from(b)) % 31 == 0;
                            Some((if zlib { Flavor::Zlib } else { Flavor::Raw }, 0))
                        }
                        Encoding::Deflate => None,
                    };
                    let Some((flavor, n)) = decided else {
                        if self.held.len() > MAX_GZIP_HEADER {
                            return Err(self.corrupt("header too long"));
                        }
                        return Ok(());
                    };
                    self.inflate = Decompress::new(flavor == Flavor::Zlib);
                    self.flavor = Some(flavor);
                    self.stage = Stage::Body;
                    if n >= old {
                        // The header ends inside `input` (the rest is body).
                        self.held.clear();
                        input = &input[n - old..];
                    } else {
                        // deflate: the byte held back to tell zlib from raw
                        // is body input, followed by all of `input`.
                        let mut pre = std::mem::take(&mut self.held);
                        pre.truncate(old);
                        let used = self.inflate_some(&pre, out)?;
                        if used < pre.len() {
                            return Err(self.corrupt("stream ended in its first bytes"));
                        }
                    }
                }
                Stage::Body => {
                    let used = self.inflate_some(input, out)?;
                    input = &input[used..];
                }
                Stage::Trailer => {
                    let want = 8 - self.held.len();
                    let take = want.min(input.len());
                    self.held.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if self.held.len() == 8 {
                        let crc = u32::from_le_bytes([
                            self.held[0],
                            self.held[1],
                            self.held[2],
                            self.held[3],
                        ]);
                        let size = u32::from_le_bytes([
                            self.held[4],
                            self.held[5],
                            self.held[6],
                            self.held[7],
                        ]);
                        let actual = std::mem::take(&mut self.crc).finalize();
                        if crc != actual || size != self.member_size {
                            return Err(self.corrupt("checksum mismatch"));
                        }
                        self.held.clear();
                        self.stage = Stage::Done;
                    }
                }
                Stage::Done => {
                    if self.flavor != Some(Flavor::Gzip) {
                        return Err(self.corrupt("data after the end of the stream"));
                    }
                    // Another gzip member.
                    self.stage = Stage::Header;
                    self.member_size = 0;
                }
            }
        }
        Ok(())
    }

    /// Inflates from `input` until it is used up or the member ends;
    /// returns how many input bytes were used.
    fn inflate_some(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, DecodeError> {
        let mut used = 0;
        let mut scratch = [0u8; STEP];
        loop {
            let before_in = self.inflate.total_in();
            let before_out = self.inflate.total_out();
            let status = self
                .inflate
                .decompress(&input[used..], &mut scratch, FlushDecompress::None)
                .map_err(|e| self.corrupt(e.to_string()))?;
            let consumed = (self.inflate.total_in() - before_in) as usize;
            let produced = (self.inflate.total_out() - before_out) as usize;
            used += consumed;
            if produced > 0 {
                if self.total + produced > self.cap {
                    return Err(DecodeError::TooLarge { cap: self.cap });
                }
                let piece = &scratch[..produced];
                self.total += produced;
                if out.capacity() - out.len() < produced {
                    // Grow by doubling, but never past what the cap allows,
                    // so a bomb costs at most the cap (plus one step).
                    let room = self.cap - self.total + produced;
                    out.reserve_exact(out.len().max(STEP).min(room).max(produced));
                }
                self.member_size = self.member_size.wrapping_add(produced as u32);
                if self.flavor == Some(Flavor::Gzip) {
                    self.crc.update(piece);
                }
                out.extend_from_slice(piece);
            }
            match status {
                Status::StreamEnd => {
                    self.stage = match self.flavor {
                        Some(Flavor::Gzip) => Stage::Trailer,
                        _ => Stage::Done,
                    };
                    return Ok(used);
                }
                Status::Ok | Status::BufError => {
                    if consumed == 0 && produced == 0 {
                        return Ok(used);
                    }
                    if used >= input.len() && produced < STEP {
                        return Ok(used);
                    }
                }
            }
        }
    }

    /// The compressed body ended: anything but a complete stream is an
    /// error.
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match (&self.stage, self.flavor) {
            (Stage::Done, _) => Ok(()),
            // An empty body is a valid (empty) message.
            (Stage::Header, None) if self.held.is_empty() => Ok(()),
            // Raw deflate has no end marker beyond the final block, which
            // inflate reports as StreamEnd; anything else is cut short.
            _ => Err(DecodeError::Truncated {
                encoding: self.encoding.as_str(),
            }),
        }
    }

    /// The container of the decoded stream, for re-encoding alike.
    fn flavor(&self) -> Flavor {
        self.flavor.unwrap_or(match self.encoding {
            Encoding::Gzip => Flavor::Gzip,
            Encoding::Deflate => Flavor::Zlib,
        })
    }

    /// An encoder producing the same encoding (and container) as the input.
    pub fn encoder(&self) -> Encoder {
        Encoder::new(self.flavor())
    }
}

/// Length of the gzip header at the start of `buf`, `None` if incomplete.
fn gzip_header_len(buf: &[u8]) -> Result<Option<usize>, &'static str> {
    if buf.len() < 10 {
        if buf.first().is_some_and(|&b| b != 0x1f) || buf.get(1).is_some_and(|&b| b != 0x8b) {
            return Err("not gzip (bad magic)");
        }
        return Ok(None);
    }
    if buf[0] != 0x1f || buf[1] != 0x8b {
        return Err("not gzip (bad magic)");
    }
    if buf[2] != 8 {
        return Err("unknown compression method");
    }
    let flags = buf[3];
    if flags & 0xe0 != 0 {
        return Err("reserved header flags set");
    }
    let mut pos = 10;
    if flags & 0x04 != 0 {
        let Some(len) = buf.get(pos..pos + 2) else {
            return Ok(None);
        };
        pos += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            let Some(rest) = buf.get(pos..) else {
                return Ok(None);
            };
            match memchr::memchr(0, rest) {
                Some(z) => pos += z + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        pos += 2;
    }
    Ok((buf.len() >= pos).then_some(pos))
}

/// Decodes a whole body.
pub fn decode(encoding: Encoding, data: &[u8], cap: usize) -> Result<Vec<u8>, DecodeError> {
    let mut d = Decoder::new(encoding, cap);
    let mut out = Vec::new();
    d.push(data, &mut out)?;
    d.finish()?;
    Ok(out)
}

/// A streaming encoder; each `push` returns bytes a client can decode up
/// to that point (sync flush), so streamed bodies stay live.
pub struct Encoder {
    flavor: Flavor,
    deflate: Compress,
    crc: crc32fast::Hasher,
    size: u32,
    started: bool,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("flavor", &self.flavor)
            .finish()
    }
}

impl Encoder {
    fn new(flavor: Flavor) -> Encoder {
        // Level 1: rewritten bodies are re-encoded on the request path;
        // speed matters more than the last few percent of size.
        let level = Compression::fast();
        Encoder {
            flavor,
            deflate: Compress::new(level, flavor == Flavor::Zlib),
            crc: crc32fast::Hasher::new(),
            size: 0,
            started: false,
        }
    }

    /// An encoder for `encoding` (zlib container for `deflate`).
    pub fn for_encoding(encoding: Encoding) -> Encoder {
        Encoder::new(match encoding {
            Encoding::Gzip => Flavor::Gzip,
            Encoding::Deflate => Flavor::Zlib,
        })
    }

    fn run(&mut self, mut input: &[u8], flush: FlushCompress, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            if self.flavor == Flavor::Gzip {
                // Magic, deflate, no flags, no mtime, fast, unknown OS.
                out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff]);
            }
        }
        self.crc.update(input);
        self.size = self.size.wrapping_add(input.len() as u32);
        let mut scratch = [0u8; STEP];
        loop {
            let before_in = self.deflate.total_in();
            let before_out = self.deflate.total_out();
            // Writing into a buffer cannot fail; a status error would be a
            // flate2 bug, and stopping then only shortens the output.
            let Ok(status) = self.deflate.compress(input, &mut scratch, flush) else {
                return;
            };
            let consumed = (self.deflate.total_in() - before_in) as usize;
            let produced = (self.deflate.total_out() - before_out) as usize;
            input = &input[consumed..];
            out.extend_from_slice(&scratch[..produced]);
            let finished = matches!(status, Status::StreamEnd);
            if finished || (input.is_empty() && produced < scratch.len()) {
                return;
            }
        }
    }

    /// Encodes `input`; the returned bytes end on a flush point.
    pub fn push(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.run(input, FlushCompress::Sync, &mut out);
        out
    }

    /// Ends the stream (final block and, for gzip, the trailer).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.finish_into(&[], &mut out);
        out
    }

    fn finish_into(&mut self, last: &[u8], out: &mut Vec<u8>) {
        self.run(last, FlushCompress::Finish, out);
        if self.flavor == Flavor::Gzip {
            let crc = std::mem::take(&mut self.crc).finalize();
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&self.size.to_le_bytes());
        }
    }
}

/// Encodes a whole body.
pub fn encode(encoding: Encoding, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::for_encoding(encoding).finish_into(data, &mut out);
    out
}

/// Encodes a whole body in the same container as `decoder` read.
pub fn encode_like(decoder: &Decoder, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    decoder.encoder().finish_into(data, &mut out);
    out
}

/// For tests and tools: gzip with flate2's own writer (an independent
/// encoder to check ours against).
pub fn gzip_reference(data: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = w.write_all(data);
    w.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip_reference(data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
        Ok(out)
    }

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..5000 {
            v.extend_from_slice(
                format!("{{\"i\":{i},\"email\":\"u{i}@example.com\"}}\n").as_bytes(),
            );
        }
        v
    }

    #[test]
    fn gzip_round_trips_through_both_implementations() {
        let data = sample();
        let ours = encode(Encoding::Gzip, &data);
        assert_eq!(gunzip_reference(&ours).unwrap(), data);
        let theirs = gzip_reference(&data);
        assert_eq!(decode(Encoding::Gzip, &theirs, 1 << 20).unwrap(), data);
    }

    #[test]
    fn decoding_in_any_chunking_gives_the_same_bytes() {
        let data = sample();
        let gz = gzip_reference(&data);
        for size in [1, 3, 9, 10, 11, 4096] {
            let mut d = Decoder::new(Encoding::Gzip, 1 << 20);
            let mut out = Vec::new();
            for c in gz.chunks(size) {
                d.push(c, &mut out).unwrap();
            }
            d.finish().unwrap();
            assert!(out == data, "chunk size {size}");
        }
    }

    #[test]
    fn deflate_accepts_zlib_and_raw() {
        let data = sample();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&data).unwrap();
        let zlib = z.finish().unwrap();
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        r.write_all(&data).unwrap();
        let raw = r.finish().unwrap();
        for (name, body) in [("zlib", &zlib), ("raw", &raw)] {
            let mut d = Decoder::new(Encoding::Deflate, 1 << 20);
            let mut out = Vec::new();
            d.push(body, &mut out).unwrap();
            d.finish().unwrap();
            assert!(out == data, "{name}");
            // Re-encoded in the same container.
            let again = encode_like(&d, &out);
            assert_eq!(again[0] == 0x78, name == "zlib", "{name} container kept");
            assert_eq!(decode(Encoding::Deflate, &again, 1 << 20).unwrap(), data);
        }
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        // 1 GiB of zeros as 1024 concatenated gzip members of 1 MiB each:
        // about 1 MB on the wire.
        let member = gzip_reference(&vec![0u8; 1 << 20]);
        let bomb: Vec<u8> = member.repeat(1024);
        assert!(bomb.len() < 2 << 20, "{}", bomb.len());
        let cap = 8 << 20;
        let mut d = Decoder::new(Encoding::Gzip, cap);
        let mut out = Vec::new();
        let err = d.push(&bomb, &mut out).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { cap });
        assert!(out.len() <= cap);
        assert!(out.capacity() <= cap + STEP, "grew to {}", out.capacity());
        // Once failed, always failed.
        assert!(d.push(b"", &mut out).is_err() || d.finish().is_err());
    }

    #[test]
    fn refill_caps_each_step_not_the_whole_stream() {
        // Incompressible bytes: each small input chunk decodes to little.
        let mut x = 0x9E37_79B9u32;
        let data: Vec<u8> = (0..3000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let gz = gzip_reference(&data);
        let mut d = Decoder::new(Encoding::Gzip, 1000);
        let mut out = Vec::new();
        for c in gz.chunks(4) {
            d.refill();
            d.push(c, &mut out).unwrap();
        }
        d.finish().unwrap();
        assert_eq!(out, data);
        assert!(decode(Encoding::Gzip, &gz, 1000).is_err());
    }

    #[test]
    fn truncated_and_corrupt_input_are_errors() {
        let gz = gzip_reference(&sample());
        for cut in [1, 5, 10, 100, gz.len() - 4, gz.len() - 1] {
            let r = decode(Encoding::Gzip, &gz[..cut], 1 << 20);
            assert!(
                matches!(r, Err(DecodeError::Truncated { .. })),
                "cut at {cut}: {r:?}"
            );
        }
        let mut bad = gz.clone();
        let n = bad.len();
        bad[n - 6] ^= 0xff; // CRC
        assert!(matches!(
            decode(Encoding::Gzip, &bad, 1 << 20),
            Err(DecodeError::Corrupt { .. })
        ));
        assert!(matches!(
            decode(Encoding::Gzip, b"hello world, not gzip", 1 << 20),
            Err(DecodeError::Corrupt { .. })
        ));
        let mut garbage = gz.clone();
        garbage.extend_from_slice(b"trailing junk");
        assert!(decode(Encoding::Gzip, &garbage, 1 << 20).is_err());
        assert!(decode(Encoding::Deflate, &[0x78, 0x9c, 0xff, 0xff, 0xff], 1 << 20).is_err());
        assert_eq!(decode(Encoding::Gzip, b"", 10).unwrap(), b"");
    }

    #[test]
    fn streamed_encoding_is_decodable_at_every_flush() {
        let mut e = Encoder::for_encoding(Encoding::Gzip);
        let mut wire = e.push(b"data: first event\n\n");
        // A client can decode the first event before the stream ends.
        let mut d = Decoder::new(Encoding::Gzip, 1 << 20);
        let mut out = Vec::new();
        d.push(&wire, &mut out).unwrap();
        assert_eq!(out, b"data: first event\n\n");
        let more = e.push(b"data: second\n\n");
        wire.extend_from_slice(&more);
        wire.extend(e.finish());
        assert_eq!(
            gunzip_reference(&wire).unwrap(),
            b"data: first event\n\ndata: second\n\n"
        );
    }

    #[test]
    fn header_parsing() {
        assert_eq!(ContentEncoding::parse(None), ContentEncoding::Identity);
        assert_eq!(
            ContentEncoding::parse(Some(" GZIP ")),
            ContentEncoding::Known(Encoding::Gzip)
        );
        assert_eq!(
            ContentEncoding::parse(Some("identity")),
            ContentEncoding::Identity
        );
        assert_eq!(
            ContentEncoding::parse(Some("br")),
            ContentEncoding::Unsupported("br".into())
        );
        assert!(matches!(
            ContentEncoding::parse(Some("gzip, gzip")),
            ContentEncoding::Unsupported(_)
        ));
        assert_eq!(
            restrict_accept_encoding("gzip, deflate, br;q=0.9, zstd", &["gzip", "deflate"])
                .as_deref(),
            Some("gzip, deflate")
        );
        assert_eq!(restrict_accept_encoding("br, zstd", &["gzip"]), None);
        assert_eq!(
            restrict_accept_encoding("identity;q=1", &["gzip"]).as_deref(),
            Some("identity;q=1")
        );
    }
}
