//! Stage 1 of the JSON fast path: classifies 64 bytes at a time into
//! bitmasks (quotes, backslashes, whitespace, structural characters,
//! control and non-ASCII bytes), then resolves escapes and the in-string
//! mask with carries across blocks, so nothing later looks at string
//! content byte by byte. Three classifiers give identical masks: AVX2 (x86_64,
//! detected at run time), simd128 (wasm, enabled at build time) and a
//! portable scalar one that the tests hold the others equal to.

/// Raw byte classes of one 64-byte block, bit i = byte i.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(super) struct Classes {
    pub quote: u64,
    pub backslash: u64,
    /// ` `, `\t`, `\n`, `\r`.
    pub ws: u64,
    /// `{}[]:,`.
    pub op: u64,
    pub colon: u64,
    pub comma: u64,
    /// Bytes below 0x20.
    pub ctrl: u64,
    /// Bytes at or above 0x80.
    pub high: u64,
}

/// A way to classify a block; all implementations agree bit for bit.
pub(super) trait Classify {
    fn classify(block: &[u8; 64]) -> Classes;
    /// Bit i = xor of bits 0..=i.
    #[inline(always)]
    fn prefix_xor(x: u64) -> u64 {
        prefix_xor_ladder(x)
    }
    /// The 1st, 3rd, 5th... set bits of `x` (`x & prefix_xor(x)`).
    #[inline(always)]
    fn odd_bits(x: u64) -> u64 {
        x & Self::prefix_xor(x)
    }
    /// Lead bytes of two-byte UTF-8 sequences (0xc2..=0xdf) and
    /// continuation bytes (0x80..=0xbf); only asked for blocks holding
    /// non-ASCII bytes.
    #[inline(always)]
    fn utf8_pairs(block: &[u8; 64]) -> (u64, u64) {
        utf8_pairs_scalar(block)
    }
    /// Digits, `0`, `-` and `.`: the bytes of the numbers the validator
    /// checks with masks; only asked for blocks holding scalars.
    #[inline(always)]
    fn number_bytes(block: &[u8; 64]) -> [u64; 4] {
        number_bytes_scalar(block)
    }
}

#[inline]
pub(super) fn number_bytes_scalar(block: &[u8; 64]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (i, &b) in block.iter().enumerate() {
        out[0] |= u64::from(b.is_ascii_digit()) << i;
        out[1] |= u64::from(b == b'0') << i;
        out[2] |= u64::from(b == b'-') << i;
        out[3] |= u64::from(b == b'.') << i;
    }
    out
}

#[inline]
pub(super) fn utf8_pairs_scalar(block: &[u8; 64]) -> (u64, u64) {
    let (mut lead, mut cont) = (0, 0);
    for (i, &b) in block.iter().enumerate() {
        lead |= u64::from((0xc2..=0xdf).contains(&b)) << i;
        cont |= u64::from(b & 0xc0 == 0x80) << i;
    }
    (lead, cont)
}

#[inline(always)]
pub(super) fn prefix_xor_ladder(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

const Q: u8 = 1;
const BS: u8 = 2;
const WS: u8 = 4;
const OP: u8 = 8;
const COLON: u8 = 16;
const COMMA: u8 = 32;
const CTRL: u8 = 64;
const HIGH: u8 = 128;

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let mut c = 0;
        if b < 0x20 {
            c |= CTRL;
        }
        if b >= 0x80 {
            c |= HIGH;
        }
        match b as u8 {
            b'"' => c |= Q,
            b'\\' => c |= BS,
            b' ' | b'\t' | b'\n' | b'\r' => c |= WS,
            b':' => c |= OP | COLON,
            b',' => c |= OP | COMMA,
            b'{' | b'}' | b'[' | b']' => c |= OP,
            _ => {}
        }
        t[b] = c;
        b += 1;
    }
    t
}

static TABLE: [u8; 256] = class_table();

/// The portable classifier, and the reference the vector ones are tested
/// against.
pub(super) struct Scalar;

impl Classify for Scalar {
    #[inline]
    fn classify(block: &[u8; 64]) -> Classes {
        let mut c = Classes::default();
        for (i, &b) in block.iter().enumerate() {
            let k = TABLE[b as usize];
            let bit = 1u64 << i;
            let on = |f: u8| if k & f != 0 { bit } else { 0 };
            c.quote |= on(Q);
            c.backslash |= on(BS);
            c.ws |= on(WS);
            c.op |= on(OP);
            c.colon |= on(COLON);
            c.comma |= on(COMMA);
            c.ctrl |= on(CTRL);
            c.high |= on(HIGH);
        }
        c
    }
}

/// Low-nibble tables (simdjson's): a byte is whitespace when the table
/// entry at its low nibble equals it, and an operator when the operator
/// entry equals the byte with bit 0x20 set (`[` -> `{`, `]` -> `}`). Bytes
/// 0x0c and 0x1a (control bytes) also match the operator test; the vector
/// classifiers clear control bytes from `op` so the masks stay exact.
const WS_TABLE: [u8; 16] = [
    b' ', 100, 100, 100, 17, 100, 113, 2, 100, b'\t', b'\n', 112, 100, b'\r', 100, 100,
];
const OP_TABLE: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b':', b'{', b',', b'}', 0, 0];

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use super::{Classes, Classify, OP_TABLE, WS_TABLE};
    use std::arch::x86_64::*;

    pub(in crate::codec::json) struct Avx2;

    impl Classify for Avx2 {
        #[inline(always)]
        fn classify(block: &[u8; 64]) -> Classes {
            // SAFETY: `Avx2` is only used by code that runs after
            // `is_x86_feature_detected!("avx2")` (see `fast::validate`).
            unsafe { classify(block) }
        }
        #[inline(always)]
        fn prefix_xor(x: u64) -> u64 {
            // SAFETY: as above, pclmulqdq is detected with avx2.
            unsafe { clmul_prefix_xor(x) }
        }
        #[inline(always)]
        fn utf8_pairs(block: &[u8; 64]) -> (u64, u64) {
            // SAFETY: as above.
            unsafe { utf8_pairs(block) }
        }
        #[inline(always)]
        fn number_bytes(block: &[u8; 64]) -> [u64; 4] {
            // SAFETY: as above.
            unsafe { number_bytes(block) }
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn number_bytes(block: &[u8; 64]) -> [u64; 4] {
        let half = |p: *const u8| {
            let v = _mm256_loadu_si256(p.cast());
            let mask = |x: __m256i| _mm256_movemask_epi8(x) as u32 as u64;
            let eq = |c: u8| mask(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8)));
            let d = _mm256_sub_epi8(v, _mm256_set1_epi8(b'0' as i8));
            let digit = mask(_mm256_cmpeq_epi8(
                _mm256_min_epu8(d, _mm256_set1_epi8(9)),
                d,
            ));
            [digit, eq(b'0'), eq(b'-'), eq(b'.')]
        };
        let lo = half(block.as_ptr());
        let hi = half(block.as_ptr().add(32));
        std::array::from_fn(|k| lo[k] | hi[k] << 32)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn utf8_pairs(block: &[u8; 64]) -> (u64, u64) {
        let half = |p: *const u8| {
            let v = _mm256_loadu_si256(p.cast());
            let d = _mm256_sub_epi8(v, _mm256_set1_epi8(0xc2u8 as i8));
            let lead = _mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8(0x1d)), d);
            let top = _mm256_and_si256(v, _mm256_set1_epi8(0xc0u8 as i8));
            let cont = _mm256_cmpeq_epi8(top, _mm256_set1_epi8(0x80u8 as i8));
            (
                _mm256_movemask_epi8(lead) as u32 as u64,
                _mm256_movemask_epi8(cont) as u32 as u64,
            )
        };
        let (l0, c0) = half(block.as_ptr());
        let (l1, c1) = half(block.as_ptr().add(32));
        (l0 | l1 << 32, c0 | c1 << 32)
    }

    #[target_feature(enable = "pclmulqdq")]
    #[inline]
    unsafe fn clmul_prefix_xor(x: u64) -> u64 {
        let all = _mm_set1_epi8(-1);
        let v = _mm_set_epi64x(0, x as i64);
        _mm_cvtsi128_si64(_mm_clmulepi64_si128(v, all, 0)) as u64
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn classify(block: &[u8; 64]) -> Classes {
        let ws_t = _mm256_loadu_si256([WS_TABLE, WS_TABLE].as_ptr().cast());
        let op_t = _mm256_loadu_si256([OP_TABLE, OP_TABLE].as_ptr().cast());
        let mask = |v: __m256i| _mm256_movemask_epi8(v) as u32 as u64;
        let half = |p: *const u8| {
            let v = _mm256_loadu_si256(p.cast());
            let eq = |c: u8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8));
            let ctrl = _mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x1f)), v);
            let ws = _mm256_cmpeq_epi8(_mm256_shuffle_epi8(ws_t, v), v);
            let op = _mm256_cmpeq_epi8(
                _mm256_shuffle_epi8(op_t, v),
                _mm256_or_si256(v, _mm256_set1_epi8(0x20)),
            );
            let op = _mm256_andnot_si256(ctrl, op);
            Classes {
                quote: mask(eq(b'"')),
                backslash: mask(eq(b'\\')),
                ws: mask(ws),
                op: mask(op),
                colon: mask(eq(b':')),
                comma: mask(eq(b',')),
                ctrl: mask(ctrl),
                high: mask(v),
            }
        };
        let lo = half(block.as_ptr());
        let hi = half(block.as_ptr().add(32));
        super::join(lo, hi, 32)
    }

    /// The AVX-512 classifier: one 64-byte load, compares straight into
    /// bitmasks (half the instructions of AVX2's two halves and joins).
    pub(in crate::codec::json) struct Avx512;

    impl Classify for Avx512 {
        #[inline(always)]
        fn classify(block: &[u8; 64]) -> Classes {
            // SAFETY: `Avx512` is only used by code that runs after
            // `avx512_available()` (see `fast::validate`).
            unsafe { classify512(block) }
        }
        #[inline(always)]
        fn prefix_xor(x: u64) -> u64 {
            // SAFETY: as above, pclmulqdq is detected with avx512bw.
            unsafe { clmul_prefix_xor(x) }
        }
        #[inline(always)]
        fn odd_bits(x: u64) -> u64 {
            // SAFETY: as above, bmi2 is detected with avx512bw; one pdep
            // instead of a carry-less multiply and two vector moves.
            unsafe { _pdep_u64(0x5555_5555_5555_5555, x) }
        }
        #[inline(always)]
        fn utf8_pairs(block: &[u8; 64]) -> (u64, u64) {
            // SAFETY: as above.
            unsafe { utf8_pairs512(block) }
        }
        #[inline(always)]
        fn number_bytes(block: &[u8; 64]) -> [u64; 4] {
            // SAFETY: as above.
            unsafe { number_bytes512(block) }
        }
    }

    #[target_feature(enable = "avx512bw")]
    #[inline]
    unsafe fn number_bytes512(block: &[u8; 64]) -> [u64; 4] {
        let v = _mm512_loadu_si512(block.as_ptr().cast());
        let eq = |c: u8| _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(c as i8));
        let d = _mm512_sub_epi8(v, _mm512_set1_epi8(b'0' as i8));
        let digit = _mm512_cmple_epu8_mask(d, _mm512_set1_epi8(9));
        [digit, eq(b'0'), eq(b'-'), eq(b'.')]
    }

    #[target_feature(enable = "avx512bw")]
    #[inline]
    unsafe fn utf8_pairs512(block: &[u8; 64]) -> (u64, u64) {
        let v = _mm512_loadu_si512(block.as_ptr().cast());
        let d = _mm512_sub_epi8(v, _mm512_set1_epi8(0xc2u8 as i8));
        let lead = _mm512_cmple_epu8_mask(d, _mm512_set1_epi8(0x1d));
        let top = _mm512_and_si512(v, _mm512_set1_epi8(0xc0u8 as i8));
        let cont = _mm512_cmpeq_epi8_mask(top, _mm512_set1_epi8(0x80u8 as i8));
        (lead, cont)
    }

    #[target_feature(enable = "avx512bw")]
    #[inline]
    unsafe fn classify512(block: &[u8; 64]) -> Classes {
        let table = |t: &[u8; 16]| _mm512_broadcast_i32x4(_mm_loadu_si128(t.as_ptr().cast()));
        let v = _mm512_loadu_si512(block.as_ptr().cast());
        let eq = |c: u8| _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(c as i8));
        let ctrl = _mm512_cmplt_epu8_mask(v, _mm512_set1_epi8(0x20));
        let ws = _mm512_cmpeq_epi8_mask(_mm512_shuffle_epi8(table(&WS_TABLE), v), v);
        let op = _mm512_cmpeq_epi8_mask(
            _mm512_shuffle_epi8(table(&OP_TABLE), v),
            _mm512_or_si512(v, _mm512_set1_epi8(0x20)),
        );
        Classes {
            quote: eq(b'"'),
            backslash: eq(b'\\'),
            ws,
            op: op & !ctrl,
            colon: eq(b':'),
            comma: eq(b','),
            ctrl,
            high: _mm512_movepi8_mask(v),
        }
    }

    /// Whether this CPU runs the AVX-512 path.
    pub(in crate::codec::json) fn avx512_available() -> bool {
        std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("bmi2")
            && available()
    }

    /// Whether this CPU runs the AVX2 path (with the bit instructions the
    /// validator's mask work is compiled for).
    pub(in crate::codec::json) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("bmi1")
            && std::arch::is_x86_feature_detected!("lzcnt")
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) mod wasm {
    use super::{Classes, Classify, OP_TABLE, WS_TABLE};
    use crate::detectors::nibble_lookup;
    use core::arch::wasm32::*;

    pub(in crate::codec::json) struct Simd128;

    /// The bitmask of the lanes of `v` below `n` (`0 < n <= 0x80`), as the
    /// clear top bits of a saturating add: V8 lowers `i8x16.lt_u` to four
    /// instructions on x64, the saturating add to one (`paddusb`).
    #[inline(always)]
    fn below(v: v128, n: u8) -> u64 {
        !u64::from(u8x16_bitmask(u8x16_add_sat(v, u8x16_splat(0x80 - n)))) & 0xffff
    }

    /// Bytes 16k..16k+16 of `block` as a vector.
    #[inline(always)]
    fn load(block: &[u8; 64], k: usize) -> v128 {
        let mut w = [0u8; 16];
        w.copy_from_slice(&block[16 * k..16 * k + 16]);
        u8x16(
            w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11], w[12], w[13],
            w[14], w[15],
        )
    }

    /// Top bit set in the lanes below 0x20 or at or above 0x80: `v - 0x20`
    /// (wrapping) puts them at 0x60 and up, and the saturating add of 0x20
    /// lifts exactly those to 0x80 and up.
    #[inline(always)]
    fn outside_ascii_text(v: v128) -> v128 {
        u8x16_add_sat(u8x16_sub(v, u8x16_splat(0x20)), u8x16_splat(0x20))
    }

    /// The five classes every block needs (quotes, whitespace, operators,
    /// colons, commas) in three bitmasks instead of five: `[op, colon |
    /// quote, comma | ws]`, bit i = byte 16k + i. Quotes and whitespace are
    /// never operators, so [`Planes::classes`] separates them again. The
    /// operator plane still holds the control bytes 0x0c and 0x1a, which
    /// only a block with control bytes has to clear.
    #[derive(Clone, Copy, Default)]
    struct Planes([u64; 3]);

    /// Nibble tables whose entry at a byte's low nibble is the byte itself
    /// exactly for the bytes of a set: one lookup and one compare where
    /// each byte took a compare and an `or`. `:` and `"`, and `,` with
    /// the whitespace, have distinct low nibbles; every other entry has a
    /// low nibble other than its index, so no byte matches it.
    struct Tables {
        op: v128,
        colon_quote: v128,
        comma_ws: v128,
    }

    const COLON_QUOTE_TABLE: [u8; 16] = {
        let mut t = [0u8; 16];
        let mut n = 0;
        while n < 16 {
            t[n] = (n as u8 ^ 1) | 0x80;
            n += 1;
        }
        t[b'"' as usize & 15] = b'"';
        t[b':' as usize & 15] = b':';
        t
    };

    const COMMA_WS_TABLE: [u8; 16] = {
        let mut t = WS_TABLE;
        t[b',' as usize & 15] = b',';
        t
    };

    #[inline(always)]
    fn table(t: [u8; 16]) -> v128 {
        u8x16(
            t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13],
            t[14], t[15],
        )
    }

    impl Planes {
        #[inline(always)]
        fn add(self, v: v128, k: u32, t: &Tables) -> Planes {
            let m = |x: v128| u64::from(u8x16_bitmask(x)) << (16 * k);
            // A byte is in a table's set when the entry at its low nibble
            // is the byte itself. `nib` is below 16, so the relaxed
            // swizzle (one `pshufb` in V8, where the plain one adds a
            // saturating add) is exact.
            let nib = v128_and(v, u8x16_splat(0x0f));
            let is = |table: v128| u8x16_eq(nibble_lookup(table, nib), v);
            let op = u8x16_eq(nibble_lookup(t.op, nib), v128_or(v, u8x16_splat(0x20)));
            let [p, q, r] = self.0;
            Planes([p | m(op), q | m(is(t.colon_quote)), r | m(is(t.comma_ws))])
        }

        #[inline(always)]
        fn classes(self) -> Classes {
            let [op, colon_quote, comma_ws] = self.0;
            Classes {
                quote: colon_quote & !op,
                ws: comma_ws & !op,
                op,
                colon: colon_quote & op,
                comma: comma_ws & op,
                ..Classes::default()
            }
        }
    }

    impl Classify for Simd128 {
        #[inline(always)]
        fn classify(block: &[u8; 64]) -> Classes {
            let t = Tables {
                op: table(OP_TABLE),
                colon_quote: table(COLON_QUOTE_TABLE),
                comma_ws: table(COMMA_WS_TABLE),
            };
            let v = [
                load(block, 0),
                load(block, 1),
                load(block, 2),
                load(block, 3),
            ];
            // Backslashes, control and non-ASCII bytes are rare; one test
            // over the four vectors spares the hot blocks their three
            // bitmasks per vector (V8 lowers each `i8x16.bitmask` to one
            // `pmovmskb`, on a single port).
            let rare = |v: v128| v128_or(outside_ascii_text(v), u8x16_eq(v, u8x16_splat(b'\\')));
            let any_rare = v128_or(
                v128_or(rare(v[0]), rare(v[1])),
                v128_or(rare(v[2]), rare(v[3])),
            );
            let mut planes = Planes::default();
            for (k, &v) in v.iter().enumerate() {
                planes = planes.add(v, k as u32, &t);
            }
            let mut out = planes.classes();
            if u8x16_bitmask(any_rare) == 0 {
                return out;
            }
            for (k, &v) in v.iter().enumerate() {
                let at = 16 * k as u32;
                let m = |x: v128| u64::from(u8x16_bitmask(x)) << at;
                out.backslash |= m(u8x16_eq(v, u8x16_splat(b'\\')));
                out.ctrl |= below(v, 0x20) << at;
                out.high |= m(v);
            }
            out.op &= !out.ctrl;
            out
        }

        #[inline(always)]
        fn utf8_pairs(block: &[u8; 64]) -> (u64, u64) {
            let (mut lead, mut cont) = (0u64, 0u64);
            for (k, chunk) in block.chunks_exact(16).enumerate() {
                let mut w = [0u8; 16];
                w.copy_from_slice(chunk);
                let v = u8x16(
                    w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11],
                    w[12], w[13], w[14], w[15],
                );
                let l = below(u8x16_sub(v, u8x16_splat(0xc2)), 0x1e);
                let c = u8x16_eq(v128_and(v, u8x16_splat(0xc0)), u8x16_splat(0x80));
                lead |= l << (16 * k);
                cont |= u64::from(u8x16_bitmask(c)) << (16 * k);
            }
            (lead, cont)
        }

        #[inline(always)]
        fn number_bytes(block: &[u8; 64]) -> [u64; 4] {
            let mut out = [0u64; 4];
            for (k, chunk) in block.chunks_exact(16).enumerate() {
                let mut w = [0u8; 16];
                w.copy_from_slice(chunk);
                let v = u8x16(
                    w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11],
                    w[12], w[13], w[14], w[15],
                );
                let m = |x: v128| u64::from(u8x16_bitmask(x)) << (16 * k);
                let eq = |c: u8| m(u8x16_eq(v, u8x16_splat(c)));
                out[0] |= below(u8x16_sub(v, u8x16_splat(b'0')), 10) << (16 * k);
                out[1] |= eq(b'0');
                out[2] |= eq(b'-');
                out[3] |= eq(b'.');
            }
            out
        }
    }
}

/// `lo` with `hi` shifted in at bit `at`.
#[inline(always)]
#[cfg(target_arch = "x86_64")]
fn join(lo: Classes, hi: Classes, at: u32) -> Classes {
    Classes {
        quote: lo.quote | hi.quote << at,
        backslash: lo.backslash | hi.backslash << at,
        ws: lo.ws | hi.ws << at,
        op: lo.op | hi.op << at,
        colon: lo.colon | hi.colon << at,
        comma: lo.comma | hi.comma << at,
        ctrl: lo.ctrl | hi.ctrl << at,
        high: lo.high | hi.high << at,
    }
}

/// Bits of the characters escaped by a backslash (simdjson's odd-length
/// run rule); `prev` carries "the first byte of the next block is escaped".
#[inline(always)]
pub(super) fn escaped(backslash: u64, prev: &mut u64) -> u64 {
    if backslash == 0 && *prev == 0 {
        return 0;
    }
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslash = backslash & !*prev;
    let follows = backslash << 1 | *prev;
    let odd_starts = backslash & !EVEN & !follows;
    let (sum, carry) = odd_starts.overflowing_add(backslash);
    *prev = u64::from(carry);
    let invert = sum << 1;
    (EVEN ^ invert) & follows
}

/// Per-block masks after escapes and strings are resolved; every mask but
/// `in_str`, `qo` is outside strings.
#[derive(Clone, Copy, Default)]
pub(super) struct Masks {
    pub c: Classes,
    /// String content plus the opening quote.
    pub in_str: u64,
    pub qo: u64,
    pub qc: u64,
    pub ws: u64,
    pub op: u64,
    pub colon: u64,
    pub comma: u64,
    /// Bytes of scalars (anything else outside strings).
    pub scal: u64,
    /// Scalar bytes whose previous byte is a scalar byte.
    pub cont: u64,
    /// The bytes right after each scalar (where its token ends).
    pub scal_end: u64,
}

/// The carries of stage 1 across blocks.
#[derive(Default)]
pub(super) struct Stage1 {
    escaped: u64,
    in_str: u64,
    scal: u64,
}

impl Stage1 {
    /// `PLAIN`: the block has no backslash and the previous one ended
    /// outside an escape (no escape to resolve).
    #[inline(always)]
    pub fn block<C: Classify, const PLAIN: bool>(&mut self, c: Classes) -> Masks {
        let esc = if PLAIN {
            0
        } else {
            escaped(c.backslash, &mut self.escaped)
        };
        let quote = c.quote & !esc;
        let in_str = C::prefix_xor(quote) ^ self.in_str;
        self.in_str = ((in_str as i64) >> 63) as u64;
        let out = !in_str;
        let qc = quote & out;
        let ws = c.ws & out;
        let op = c.op & out;
        let scal = out & !qc & !op & !ws;
        let after_scal = scal << 1 | self.scal;
        let cont = scal & after_scal;
        self.scal = scal >> 63;
        Masks {
            c,
            in_str,
            qo: quote & in_str,
            qc,
            ws,
            op,
            colon: c.colon & out,
            comma: c.comma & out,
            scal,
            cont,
            scal_end: !scal & after_scal,
        }
    }

    /// Nonzero when the next block's first byte is escaped.
    pub fn escaped(&self) -> u64 {
        self.escaped
    }

    /// Whether the last block ended with a scalar byte.
    pub fn ends_in_scalar(&self) -> bool {
        self.scal != 0
    }

    /// Whether the input ended inside a string.
    pub fn open_string(&self) -> bool {
        self.in_str != 0
    }
}

/// Calls `f` with each 64-byte block of `doc`, the last one padded with
/// spaces (whitespace, so padding never adds a token).
#[inline(always)]
pub(super) fn blocks(doc: &[u8], mut f: impl FnMut(usize, &[u8; 64]) -> bool) -> bool {
    let mut chunks = doc.chunks_exact(64);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        let Ok(block) = <&[u8; 64]>::try_from(chunk) else {
            return false;
        };
        if !f(base, block) {
            return false;
        }
        base += 64;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut block = [b' '; 64];
        block[..rest.len()].copy_from_slice(rest);
        return f(base, &block);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_block(seed: &mut u64, alphabet: &[u8]) -> [u8; 64] {
        let mut b = [0u8; 64];
        for x in b.iter_mut() {
            crate::test_rng::xorshift(seed);
            *x = if alphabet.is_empty() {
                (*seed >> 24) as u8
            } else {
                alphabet[(*seed >> 24) as usize % alphabet.len()]
            };
        }
        b
    }

    #[test]
    fn vector_classifiers_equal_the_scalar_one() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut all = [0u8; 256];
        for (i, x) in all.iter_mut().enumerate() {
            *x = i as u8;
        }
        let mut blocks: Vec<[u8; 64]> = all
            .chunks_exact(64)
            .map(|c| c.try_into().unwrap())
            .collect();
        for _ in 0..2000 {
            blocks.push(random_block(&mut seed, b""));
            blocks.push(random_block(
                &mut seed,
                b"\"\\ \t\n\r{}[]:,ab\x0c\x1a\x1b\x1d\xe9\x80-.0189/:",
            ));
            // Printable ASCII only: the blocks the simd128 classifier
            // takes without its backslash, control and non-ASCII masks.
            blocks.push(random_block(&mut seed, b"\" {}[]:,ab-.0189/:z~|+*@["));
        }
        for b in &blocks {
            let want = Scalar::classify(b);
            #[cfg(target_arch = "x86_64")]
            if x86::avx512_available() {
                assert_eq!(x86::Avx512::utf8_pairs(b), utf8_pairs_scalar(b));
                assert_eq!(x86::Avx512::number_bytes(b), number_bytes_scalar(b));
                assert_eq!(x86::Avx512::classify(b), want, "{b:?}");
                for x in [want.quote, want.op, want.ws, !want.high] {
                    assert_eq!(x86::Avx512::odd_bits(x), Scalar::odd_bits(x));
                }
            }
            #[cfg(target_arch = "x86_64")]
            if x86::available() {
                assert_eq!(x86::Avx2::utf8_pairs(b), utf8_pairs_scalar(b));
                assert_eq!(x86::Avx2::number_bytes(b), number_bytes_scalar(b));
                assert_eq!(x86::Avx2::classify(b), want, "{b:?}");
                assert_eq!(
                    x86::Avx2::prefix_xor(want.quote),
                    prefix_xor_ladder(want.quote)
                );
            }
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            assert_eq!(wasm::Simd128::classify(b), want, "{b:?}");
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            assert_eq!(wasm::Simd128::utf8_pairs(b), utf8_pairs_scalar(b));
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            assert_eq!(wasm::Simd128::number_bytes(b), number_bytes_scalar(b));
            // The scalar table itself against the definitions.
            for (i, &x) in b.iter().enumerate() {
                let bit = |m: u64| m >> i & 1 == 1;
                assert_eq!(bit(want.quote), x == b'"');
                assert_eq!(bit(want.ws), matches!(x, b' ' | b'\t' | b'\n' | b'\r'));
                assert_eq!(bit(want.op), b"{}[]:,".contains(&x));
                assert_eq!(bit(want.ctrl), x < 0x20);
                assert_eq!(bit(want.high), x >= 0x80);
                let n = number_bytes_scalar(b);
                assert_eq!(bit(n[0]), x.is_ascii_digit());
                assert_eq!(
                    [bit(n[1]), bit(n[2]), bit(n[3])],
                    [x == b'0', x == b'-', x == b'.']
                );
            }
        }
    }

    #[test]
    fn escapes_follow_the_odd_run_rule() {
        // Byte-wise reference over several blocks.
        let mut seed = 99u64;
        for _ in 0..300 {
            let doc: Vec<u8> = (0..4)
                .flat_map(|_| random_block(&mut seed, b"\\\\\\a\""))
                .collect();
            let mut want = vec![false; doc.len()];
            let mut esc = false;
            for (i, &b) in doc.iter().enumerate() {
                want[i] = esc;
                esc = !esc && b == b'\\';
            }
            let mut prev = 0;
            for (k, chunk) in doc.chunks_exact(64).enumerate() {
                let bs = Scalar::classify(chunk.try_into().unwrap()).backslash;
                let got = escaped(bs, &mut prev);
                for i in 0..64 {
                    assert_eq!(got >> i & 1 == 1, want[k * 64 + i]);
                }
            }
        }
    }
}
