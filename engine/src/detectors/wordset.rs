//! `WordSet`: a fixed list of lower-case words searched case-insensitively
//! in short values (placeholders, fillers, benign key suffixes).
//!
//! Confirmers ask it about every value they are about to report, so on a
//! body full of findings it reads every byte of every finding. A per-byte
//! scalar loop made it the largest single cost of confirming; here a
//! Teddy-style filter (SSSE3 `pshufb` on x86_64, `i8x16.swizzle` in wasm
//! simd128) looks at 16 positions at once through nibble tables of the
//! words' first three bytes (both cases), and only the few positions it
//! marks are compared exactly. Three bytes, not two: common pairs (`re`,
//! `in`, `00`) are everywhere in tokens, their continuations are not. The
//! scalar path (other targets, and the reference the tests hold the vector
//! path to) looks every position up in per-byte masks of the words' first
//! two bytes. Nothing is allocated.

/// Bucket bits per nibble: bit `k` of `table[n]` means some word of
/// bucket `k` has a byte with that nibble at that position.
type Nibbles = [u8; 16];

/// Leading bytes of each word the vector filter looks at.
const WIDTH: usize = 3;

/// Most words of one set (the catalogue's largest has 36): each has a
/// bit of a `u64`.
const MAX_WORDS: usize = 64;

pub(crate) struct WordSet {
    words: &'static [&'static [u8]],
    /// Bit `j` of `by_first[b]` (of `by_second[b]`): `words[j]` is
    /// longer than one byte and its first (second) byte is `b`. Their
    /// AND for a position's two bytes is exactly the words worth
    /// comparing there, usually none or one: two loads instead of a
    /// pair bitmap and a walk over every word's first two bytes.
    by_first: [u64; 256],
    by_second: [u64; 256],
    /// Exact bitmap of one-byte words.
    singles: [u64; 4],
    has_singles: bool,
    /// Vector filter: low and high nibble tables of byte `k` of the words
    /// (both cases; every byte past a word's end).
    lo: [Nibbles; WIDTH],
    hi: [Nibbles; WIDTH],
}

/// Marks byte `b` (and its other case) for `bucket` in a nibble table pair.
const fn mark(lo: &mut Nibbles, hi: &mut Nibbles, b: u8, bucket: u8) {
    let bit = 1u8 << bucket;
    lo[(b & 15) as usize] |= bit;
    hi[(b >> 4) as usize] |= bit;
    if b.is_ascii_lowercase() {
        let u = b.to_ascii_uppercase();
        lo[(u & 15) as usize] |= bit;
        hi[(u >> 4) as usize] |= bit;
    }
}

/// One-byte words have a bucket of their own: their second byte is any
/// byte, so sharing a bucket would let every byte follow the other words'
/// first bytes.
const SINGLES_BUCKET: u8 = 7;

/// The bucket of longer words starting with `b`: the distinct first bytes
/// in byte order, cut into 7 ranges, so a bucket holds neighbouring bytes
/// (mostly one high nibble) and its nibble tables admit few other bytes.
const fn pair_bucket(firsts: &[u64; 4], b: u8) -> u8 {
    let mut rank = 0u32;
    let mut total = 0u32;
    let mut w = 0;
    while w < 4 {
        total += firsts[w].count_ones();
        let base = w as u32 * 64;
        if (b as u32) >= base + 64 {
            rank += firsts[w].count_ones();
        } else if (b as u32) > base {
            rank += (firsts[w] & ((1u64 << (b as u32 - base)) - 1)).count_ones();
        }
        w += 1;
    }
    match (rank * SINGLES_BUCKET as u32).checked_div(total) {
        Some(q) => q as u8,
        None => 0,
    }
}

impl WordSet {
    pub(crate) const fn new(words: &'static [&'static [u8]]) -> WordSet {
        let mut by_first = [0u64; 256];
        let mut by_second = [0u64; 256];
        let mut singles = [0u64; 4];
        let mut lo = [[0u8; 16]; WIDTH];
        let mut hi = [[0u8; 16]; WIDTH];
        let mut firsts = [0u64; 4];
        assert!(words.len() <= MAX_WORDS, "WordSet: too many words");
        let mut i = 0;
        while i < words.len() {
            if words[i].len() > 1 {
                let b = words[i][0];
                firsts[(b / 64) as usize] |= 1 << (b % 64);
            }
            i += 1;
        }
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            let mut j = 0;
            while j < w.len() {
                // The exact checks compare the first bytes without folding.
                assert!(!w[j].is_ascii_uppercase(), "WordSet words are lower case");
                j += 1;
            }
            let bucket = match w.len() {
                0 => 0,
                1 => SINGLES_BUCKET,
                _ => pair_bucket(&firsts, w[0]),
            };
            if w.len() == 1 {
                singles[(w[0] / 64) as usize] |= 1 << (w[0] % 64);
            } else if w.len() > 1 {
                by_first[w[0] as usize] |= 1 << i;
                by_second[w[1] as usize] |= 1 << i;
            }
            let mut k = 0;
            while k < WIDTH && !w.is_empty() {
                if k < w.len() {
                    mark(&mut lo[k], &mut hi[k], w[k], bucket);
                } else {
                    // Any byte, including the zero padding past the end.
                    let mut n = 0;
                    while n < 16 {
                        lo[k][n] |= 1 << bucket;
                        hi[k][n] |= 1 << bucket;
                        n += 1;
                    }
                }
                k += 1;
            }
            i += 1;
        }
        WordSet {
            words,
            by_first,
            by_second,
            singles,
            has_singles: singles[0] | singles[1] | singles[2] | singles[3] != 0,
            lo,
            hi,
        }
    }

    /// Some word occurs in `hay`, ignoring ASCII case.
    #[inline]
    pub(crate) fn found_in(&self, hay: &[u8]) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                return unsafe { x86::found_in_avx2(self, hay) };
            }
            if std::is_x86_feature_detected!("ssse3") {
                // SAFETY: the CPU supports SSSE3 (checked just above).
                return unsafe { x86::found_in(self, hay) };
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            return wasm::found_in(self, hay);
        }
        #[allow(unreachable_code)]
        self.found_in_scalar(hay)
    }

    /// The portable path: every position through the exact pair bitmap.
    pub(crate) fn found_in_scalar(&self, hay: &[u8]) -> bool {
        (0..hay.len()).any(|i| self.word_at(hay, i))
    }

    /// Some word starts at `hay[i]` (`i < hay.len()`), ignoring ASCII case.
    #[inline]
    fn word_at(&self, hay: &[u8], i: usize) -> bool {
        let Some(&b) = hay.get(i) else { return false };
        let c = b.to_ascii_lowercase();
        if self.has_singles && self.singles[usize::from(c >> 6)] >> (c & 63) & 1 == 1 {
            return true;
        }
        let Some(&c2) = hay.get(i + 1) else {
            return false;
        };
        // Words are lower case: their first two bytes are looked up as
        // they are.
        let mut m =
            self.by_first[usize::from(c)] & self.by_second[usize::from(c2.to_ascii_lowercase())];
        let rest = &hay[i..];
        while m != 0 {
            let word = self.words.get(m.trailing_zeros() as usize);
            if word.is_some_and(|w| {
                rest.get(..w.len())
                    .is_some_and(|r| r.eq_ignore_ascii_case(w))
            }) {
                return true;
            }
            m &= m - 1;
        }
        false
    }

    /// Checks the positions from `i` to the end of `hay` (at least 16
    /// bytes; `i` at most 17 before the end) that the blocks before did
    /// not: `last16(at)` gives the marks of the 16 positions from `at =
    /// hay.len() - 16`, reading those 16 bytes and zeros past the end.
    /// Zeros are in no word (words are printable), and every byte past a
    /// word's end is in its tables, so the marks still admit every word
    /// that fits; the last positions need no scalar lookups, and the one
    /// position before the final 16 that a block may leave is checked on
    /// its own.
    #[inline(always)]
    fn tail(&self, hay: &[u8], i: usize, last16: impl FnOnce(usize) -> u32) -> bool {
        let Some(at) = hay.len().checked_sub(16) else {
            return self.found_in_scalar(hay);
        };
        if i < at && (i..at).any(|p| self.word_at(hay, p)) {
            return true;
        }
        let mask = last16(at) & (0xffff << (i.max(at) - at) & 0xffff);
        mask != 0 && self.any_marked(hay, at, mask)
    }

    /// Checks the positions `base + k` for the bits `k` of `mask` that
    /// the vector filter marked.
    #[inline]
    fn any_marked(&self, hay: &[u8], base: usize, mut mask: u32) -> bool {
        while mask != 0 {
            if self.word_at(hay, base + mask.trailing_zeros() as usize) {
                return true;
            }
            mask &= mask - 1;
        }
        false
    }
}

/// Bytes one block of 16 positions reads: the positions and the
/// `WIDTH - 1` bytes after them. Shorter values take the scalar path, and
/// the last `WIDTH - 1` positions of longer ones are checked one by one.
const BLOCK_READ: usize = 16 + WIDTH - 1;

/// Bytes two blocks read from the start of a padded short value.
const SHORT_READ: usize = 16 + BLOCK_READ;

/// A value shorter than one block's read, zero-padded to two blocks: the
/// vector filter reads it instead of the value, which spares values of a
/// few bytes (key suffixes, short settings) the scalar path's lookups in
/// the 8 KiB pair bitmap.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
#[inline]
fn padded(hay: &[u8]) -> [u8; SHORT_READ] {
    let mut buf = [0u8; SHORT_READ];
    let n = hay.len().min(BLOCK_READ - 1);
    buf[..n].copy_from_slice(&hay[..n]);
    buf
}

/// A value of 1 to 16 bytes as the two little-endian halves of one
/// zero-padded 16-byte vector, read with loads that stay inside the value
/// (two overlapping words a side). Built in registers: a copy into a stack
/// buffer followed by a vector load stalls on store forwarding (the load
/// spans several narrower stores), which was the largest single cost of a
/// short value's check.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
#[inline]
fn short_halves(hay: &[u8]) -> Option<(u64, u64)> {
    let n = hay.len();
    let word = |at: usize| -> u64 {
        hay.get(at..at + 8)
            .and_then(|s| s.first_chunk::<8>())
            .map_or(0, |b| u64::from_le_bytes(*b))
    };
    let half = |at: usize| -> u64 {
        hay.get(at..at + 4)
            .and_then(|s| s.first_chunk::<4>())
            .map_or(0, |b| u64::from(u32::from_le_bytes(*b)))
    };
    let byte = |at: usize| u64::from(hay.get(at).copied().unwrap_or(0));
    match n {
        0 => None,
        1..=3 => Some((
            byte(0) | byte(n / 2) << (n / 2 * 8) | byte(n - 1) << ((n - 1) * 8),
            0,
        )),
        4..=7 => Some((half(0) | half(n - 4) << ((n - 4) * 8), 0)),
        8 => Some((word(0), 0)),
        9..=16 => Some((word(0), word(n - 8) >> ((16 - n) * 8))),
        _ => None,
    }
}

/// The mask of a padded short value's own positions (the padding can
/// only add marks, and marks are checked exactly on the value itself).
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
#[inline]
fn short_positions(hay: &[u8]) -> u32 {
    (1u32 << hay.len().min(BLOCK_READ - 1)) - 1
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{padded, short_halves, short_positions, WordSet, BLOCK_READ, WIDTH};
    use std::arch::x86_64::*;

    /// The marks of the 16 positions from `p`, reading `p[0..BLOCK_READ]`.
    #[target_feature(enable = "ssse3")]
    #[inline]
    unsafe fn block(lo: &[__m128i; WIDTH], hi: &[__m128i; WIDTH], p: *const u8) -> u32 {
        let v: [__m128i; WIDTH] = std::array::from_fn(|k| _mm_loadu_si128(p.add(k).cast()));
        marks(lo, hi, &v)
    }

    /// The marks of 16 positions given the vectors at offsets 0..WIDTH.
    #[target_feature(enable = "ssse3")]
    #[inline]
    unsafe fn marks(lo: &[__m128i; WIDTH], hi: &[__m128i; WIDTH], vs: &[__m128i; WIDTH]) -> u32 {
        let nib = _mm_set1_epi8(0x0f);
        let mut m = _mm_set1_epi8(-1);
        for k in 0..WIDTH {
            let v = vs[k];
            m = _mm_and_si128(
                m,
                _mm_and_si128(
                    _mm_shuffle_epi8(lo[k], _mm_and_si128(v, nib)),
                    _mm_shuffle_epi8(hi[k], _mm_and_si128(_mm_srli_epi16(v, 4), nib)),
                ),
            );
        }
        !(_mm_movemask_epi8(_mm_cmpeq_epi8(m, _mm_setzero_si128())) as u32) & 0xffff
    }

    /// Bytes one AVX2 block of 32 positions reads.
    const WIDE_READ: usize = 32 + WIDTH - 1;

    /// `found_in` 32 positions a step while a whole wide block fits
    /// (tokens are mostly 30 to 100 bytes), the rest as the SSSE3 path
    /// does it, in the same function: compiled for AVX2, the 16-byte
    /// steps also take three-operand instructions, without the register
    /// copies of SSSE3 code. The nibble tables are the same in both
    /// 128-bit lanes (`vpshufb` looks up within a lane).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn found_in_avx2(set: &WordSet, hay: &[u8]) -> bool {
        let mut i = 0;
        if hay.len() >= WIDE_READ {
            let load =
                |t: &[u8; 16]| _mm256_broadcastsi128_si256(_mm_loadu_si128(t.as_ptr().cast()));
            let lo: [__m256i; WIDTH] = std::array::from_fn(|k| load(&set.lo[k]));
            let hi: [__m256i; WIDTH] = std::array::from_fn(|k| load(&set.hi[k]));
            let nib = _mm256_set1_epi8(0x0f);
            while i + WIDE_READ <= hay.len() {
                let mut m = _mm256_set1_epi8(-1);
                for k in 0..WIDTH {
                    // SAFETY: reads hay[i + k..i + k + 32], within
                    // hay[i..i + WIDE_READ], in bounds by the loop
                    // condition.
                    let v = _mm256_loadu_si256(hay.as_ptr().add(i + k).cast());
                    let lo_nib = _mm256_and_si256(v, nib);
                    let hi_nib = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
                    m = _mm256_and_si256(
                        m,
                        _mm256_and_si256(
                            _mm256_shuffle_epi8(lo[k], lo_nib),
                            _mm256_shuffle_epi8(hi[k], hi_nib),
                        ),
                    );
                }
                let zero = _mm256_cmpeq_epi8(m, _mm256_setzero_si256());
                let mask = !(_mm256_movemask_epi8(zero) as u32);
                if mask != 0 && set.any_marked(hay, i, mask) {
                    return true;
                }
                i += 32;
            }
        }
        found_in_from(set, hay, i)
    }

    #[target_feature(enable = "ssse3")]
    pub(super) unsafe fn found_in(set: &WordSet, hay: &[u8]) -> bool {
        found_in_from(set, hay, 0)
    }

    /// The SSSE3 steps of `found_in` from position `i`: 0, or one after
    /// which at least `WIDTH - 1` bytes remain and whose earlier positions
    /// were checked. Inlined into a caller compiled with SSSE3 or more.
    #[inline(always)]
    unsafe fn found_in_from(set: &WordSet, hay: &[u8], mut i: usize) -> bool {
        let load = |t: &[u8; 16]| _mm_loadu_si128(t.as_ptr().cast());
        let lo: [__m128i; WIDTH] = std::array::from_fn(|k| load(&set.lo[k]));
        let hi: [__m128i; WIDTH] = std::array::from_fn(|k| load(&set.hi[k]));
        while i + BLOCK_READ <= hay.len() {
            // SAFETY: `block` reads hay[i..i + BLOCK_READ], in bounds by
            // the loop condition.
            let mask = block(&lo, &hi, hay.as_ptr().add(i));
            if mask != 0 && set.any_marked(hay, i, mask) {
                return true;
            }
            i += 16;
        }
        if i >= hay.len() {
            return false;
        }
        if hay.len() < BLOCK_READ {
            if let Some((l, h)) = short_halves(hay) {
                let v0 = _mm_set_epi64x(h as i64, l as i64);
                let vs = [v0, _mm_srli_si128(v0, 1), _mm_srli_si128(v0, 2)];
                return set.any_marked(hay, 0, marks(&lo, &hi, &vs) & short_positions(hay));
            }
            let buf = padded(hay);
            // SAFETY: `block` reads buf[0..BLOCK_READ] and
            // buf[16..16 + BLOCK_READ], within its SHORT_READ bytes.
            let mask = block(&lo, &hi, buf.as_ptr()) | block(&lo, &hi, buf.as_ptr().add(16)) << 16;
            return set.any_marked(hay, 0, mask & short_positions(hay));
        }
        set.tail(hay, i, |at| {
            // SAFETY: `tail` passes `at = hay.len() - 16` (hay has at
            // least BLOCK_READ bytes here), so the load reads
            // hay[at..at + 16].
            let v0 = _mm_loadu_si128(hay.as_ptr().add(at).cast());
            marks(
                &lo,
                &hi,
                &[v0, _mm_srli_si128(v0, 1), _mm_srli_si128(v0, 2)],
            )
        })
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::{padded, short_halves, short_positions, WordSet, BLOCK_READ, WIDTH};
    use core::arch::wasm32::*;

    fn load(t: &[u8; 16]) -> v128 {
        u8x16(
            t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13],
            t[14], t[15],
        )
    }

    /// The marks of the 16 positions from `p[0]`, reading
    /// `p[0..BLOCK_READ]`.
    #[inline]
    fn block(lo: &[v128; WIDTH], hi: &[v128; WIDTH], p: &[u8]) -> u32 {
        if p.len() < BLOCK_READ {
            // Every position marked: the exact check decides.
            return 0xffff;
        }
        // SAFETY: p has at least BLOCK_READ = 16 + WIDTH - 1 bytes
        // (checked above), so p[k..k + 16] is in bounds; v128_load has
        // no alignment requirement.
        let vs: [v128; WIDTH] =
            std::array::from_fn(|k| unsafe { v128_load(p.as_ptr().add(k).cast()) });
        marks(lo, hi, &vs)
    }

    /// The first 16 bytes of `p`, if it has them.
    #[inline]
    fn block16(p: &[u8]) -> Option<v128> {
        // SAFETY: p has at least 16 bytes (checked by the filter);
        // v128_load has no alignment requirement.
        (p.len() >= 16).then(|| unsafe { v128_load(p.as_ptr().cast()) })
    }

    /// The marks of 16 positions given the vectors at offsets 0..WIDTH.
    #[inline]
    fn marks(lo: &[v128; WIDTH], hi: &[v128; WIDTH], vs: &[v128; WIDTH]) -> u32 {
        let nib = u8x16_splat(0x0f);
        let mut m = u8x16_splat(0xff);
        for k in 0..WIDTH {
            let v = vs[k];
            m = v128_and(
                m,
                v128_and(
                    u8x16_swizzle(lo[k], v128_and(v, nib)),
                    u8x16_swizzle(hi[k], u8x16_shr(v, 4)),
                ),
            );
        }
        u32::from(i8x16_bitmask(i8x16_ne(m, u8x16_splat(0))))
    }

    pub(super) fn found_in(set: &WordSet, hay: &[u8]) -> bool {
        let lo: [v128; WIDTH] = std::array::from_fn(|k| load(&set.lo[k]));
        let hi: [v128; WIDTH] = std::array::from_fn(|k| load(&set.hi[k]));
        let mut i = 0;
        while i + BLOCK_READ <= hay.len() {
            let mask = block(&lo, &hi, &hay[i..]);
            if mask != 0 && set.any_marked(hay, i, mask) {
                return true;
            }
            i += 16;
        }
        if i >= hay.len() {
            return false;
        }
        if hay.len() < BLOCK_READ {
            if let Some((l, h)) = short_halves(hay) {
                let v0 = u64x2(l, h);
                let z = u8x16_splat(0);
                let vs = [
                    v0,
                    i8x16_shuffle::<1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16>(v0, z),
                    i8x16_shuffle::<2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17>(v0, z),
                ];
                return set.any_marked(hay, 0, marks(&lo, &hi, &vs) & short_positions(hay));
            }
            let buf = padded(hay);
            let mask = block(&lo, &hi, &buf) | block(&lo, &hi, &buf[16..]) << 16;
            return set.any_marked(hay, 0, mask & short_positions(hay));
        }
        set.tail(hay, i, |at| {
            let Some(v0) = block16(&hay[at..]) else {
                // Every position marked: the exact check decides.
                return 0xffff;
            };
            let z = u8x16_splat(0);
            marks(
                &lo,
                &hi,
                &[
                    v0,
                    i8x16_shuffle::<1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16>(v0, z),
                    i8x16_shuffle::<2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17>(v0, z),
                ],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SET: WordSet = WordSet::new(&[
        b"${", b"<", b"xxxx", b"example", b"your_", b"0000", b"env(", b"id", b"~",
    ]);

    fn random_texts() -> Vec<Vec<u8>> {
        let alphabet = b"abcdeXYZxX0${<>(_-~ry\x00\x7f\xc3\xa9\xff";
        let words: &[&[u8]] = &[b"EXAMPLE", b"xXxX", b"YOUR_", b"$", b"0000", b"Env(", b"iD"];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || crate::test_rng::xorshift(&mut state);
        let mut out = Vec::new();
        for len in 0..80 {
            for _ in 0..60 {
                let mut t: Vec<u8> = (0..len)
                    .map(|_| alphabet[next() as usize % alphabet.len()])
                    .collect();
                if len > 0 && next().is_multiple_of(3) {
                    let w = words[next() as usize % words.len()];
                    let at = next() as usize % len;
                    for (k, &b) in w.iter().enumerate() {
                        if let Some(slot) = t.get_mut(at + k) {
                            *slot = b;
                        }
                    }
                }
                out.push(t);
            }
        }
        out
    }

    #[test]
    fn vector_path_agrees_with_scalar_path() {
        let texts = random_texts();
        let mut found = 0;
        for t in &texts {
            let want = SET.found_in_scalar(t);
            assert_eq!(SET.found_in(t), want, "{:?}", String::from_utf8_lossy(t));
            found += usize::from(want);
        }
        // Both outcomes are exercised.
        assert!(found > texts.len() / 10 && found < texts.len() * 9 / 10);
    }

    /// Every word at every position, compared the plain way: the
    /// reference the per-byte word masks are held to.
    fn found_naively(set: &WordSet, hay: &[u8]) -> bool {
        set.words.iter().any(|w| {
            hay.windows(w.len().max(1))
                .any(|at| at.len() == w.len() && at.eq_ignore_ascii_case(w))
        })
    }

    #[test]
    fn scalar_path_agrees_with_every_word_at_every_position() {
        let texts = random_texts();
        let mut found = 0;
        for t in &texts {
            let want = found_naively(&SET, t);
            assert_eq!(
                SET.found_in_scalar(t),
                want,
                "{:?}",
                String::from_utf8_lossy(t)
            );
            found += usize::from(want);
        }
        assert!(found > texts.len() / 10 && found < texts.len() * 9 / 10);
    }

    /// The SSSE3 path on its own (`found_in` takes the AVX2 one where the
    /// CPU has it).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn narrow_path_agrees_with_scalar_path() {
        if !std::is_x86_feature_detected!("ssse3") {
            return;
        }
        for t in &random_texts() {
            // SAFETY: the CPU supports SSSE3 (checked above).
            let narrow = unsafe { x86::found_in(&SET, t) };
            assert_eq!(
                narrow,
                SET.found_in_scalar(t),
                "{:?}",
                String::from_utf8_lossy(t)
            );
        }
    }

    #[test]
    fn a_word_is_found_at_every_position_of_every_length() {
        for w in [&b"<"[..], b"~", b"${", b"Id", b"ENV(", b"xXxX", b"Example"] {
            for len in w.len()..70 {
                for at in 0..=len - w.len() {
                    let mut t = vec![b'q'; len];
                    t[at..at + w.len()].copy_from_slice(w);
                    assert!(SET.found_in(&t), "{:?}", String::from_utf8_lossy(&t));
                    t[at + w.len() - 1] = b'q';
                    let want = SET.found_in_scalar(&t);
                    assert_eq!(SET.found_in(&t), want, "{:?}", String::from_utf8_lossy(&t));
                }
            }
        }
    }

    #[test]
    fn words_at_the_edges_and_in_any_case() {
        for t in [
            &b"ab<"[..],
            b"<",
            b"~",
            b"0123456789abcdef~",
            b"0123456789abcdef0~",
            b"0123456789abcdef01~",
            b"0123456789abcdefID",
            b"0123456789abcdeID",
            b"0123456789abcdefghijklmnopqrstuvwxyzEXAMPLE",
            b"YoUr_key",
        ] {
            assert!(SET.found_in(t), "{:?}", String::from_utf8_lossy(t));
            assert!(SET.found_in_scalar(t));
        }
        for t in [
            &b""[..],
            b"i",
            b"0123456789abcdefi",
            b"examplx",
            b"you_r",
            b"000",
        ] {
            assert!(!SET.found_in(t), "{:?}", String::from_utf8_lossy(t));
            assert!(!SET.found_in_scalar(t));
        }
    }
}
