//! Byte-class bitmaps for the anchorless detectors: 64 bytes at a time,
//! one bit per byte for each class the digit-run and colon candidates
//! need (digits, letters, separators...). Vector compares (SSE2 on x86_64,
//! simd128 in wasm) build them; a portable path builds the same bits.
//! `candidates` turns them into the few positions worth a scalar look, so
//! the digit runs inside hex digests, UUIDs and timestamps and the colons
//! of JSON syntax never reach a detector.

/// The classes of one 64-byte chunk; bit `i` is byte `i` of the chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Classes {
    pub digit: u64,
    /// Lower-case letters except `c` (a digit after `bc` may start bech32).
    pub lower_not_c: u64,
    pub upper: u64,
    /// ASCII letters, either case.
    pub letter: u64,
    /// ` ` or `-`: the separators inside a digit run.
    pub sep: u64,
    /// `(` or `+`: before a phone number.
    pub paren_plus: u64,
    pub dot: u64,
    /// `1` or `3`: the first digit of a base58 Bitcoin address.
    pub one_three: u64,
    pub colon: u64,
    /// `a-f` / `A-F`.
    pub hex_letter: u64,
}

// The portable path is what other targets run, and the reference the
// vector paths are tested against.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "wasm32"), allow(dead_code))]
#[inline]
fn class_of_byte(b: u8, i: usize, c: &mut Classes) {
    let bit = 1u64 << i;
    let set = |m: &mut u64, yes: bool| *m |= if yes { bit } else { 0 };
    set(&mut c.digit, b.is_ascii_digit());
    set(&mut c.lower_not_c, b.is_ascii_lowercase() && b != b'c');
    set(&mut c.upper, b.is_ascii_uppercase());
    set(&mut c.letter, b.is_ascii_alphabetic());
    set(&mut c.sep, b == b' ' || b == b'-');
    set(&mut c.paren_plus, b == b'(' || b == b'+');
    set(&mut c.dot, b == b'.');
    set(&mut c.one_three, b == b'1' || b == b'3');
    set(&mut c.colon, b == b':');
    set(&mut c.hex_letter, matches!(b | 0x20, b'a'..=b'f'));
}

#[cfg_attr(any(target_arch = "x86_64", target_arch = "wasm32"), allow(dead_code))]
fn classes_scalar(chunk: &[u8; 64]) -> Classes {
    let mut c = Classes::default();
    for (i, &b) in chunk.iter().enumerate() {
        class_of_byte(b, i, &mut c);
    }
    c
}

#[cfg(target_arch = "x86_64")]
fn classes_vector(chunk: &[u8; 64]) -> Classes {
    use std::arch::x86_64::*;
    let mut c = Classes::default();
    for part in 0..4 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads
        // chunk[part * 16..part * 16 + 16], inside the array, unaligned.
        unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().add(part * 16).cast());
            let splat = |b: u8| _mm_set1_epi8(b as i8);
            // x in [lo, lo + n) as a signed compare after biasing lo to -128.
            let range = |v: __m128i, lo: u8, n: u8| {
                _mm_cmplt_epi8(
                    _mm_add_epi8(v, splat(128u8.wrapping_sub(lo))),
                    splat(128u8.wrapping_add(n)),
                )
            };
            let eq = |b: u8| _mm_cmpeq_epi8(v, splat(b));
            let bits = |m: __m128i| u64::from(_mm_movemask_epi8(m) as u16) << (part * 16);
            c.digit |= bits(range(v, b'0', 10));
            c.lower_not_c |= bits(_mm_andnot_si128(eq(b'c'), range(v, b'a', 26)));
            c.upper |= bits(range(v, b'A', 26));
            c.letter |= bits(range(_mm_or_si128(v, splat(0x20)), b'a', 26));
            c.sep |= bits(_mm_or_si128(eq(b' '), eq(b'-')));
            c.paren_plus |= bits(_mm_or_si128(eq(b'('), eq(b'+')));
            c.dot |= bits(eq(b'.'));
            c.one_three |= bits(_mm_or_si128(eq(b'1'), eq(b'3')));
            c.colon |= bits(eq(b':'));
            c.hex_letter |= bits(range(_mm_or_si128(v, splat(0x20)), b'a', 6));
        }
    }
    c
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn classes_vector(chunk: &[u8; 64]) -> Classes {
    use core::arch::wasm32::*;
    let mut c = Classes::default();
    for part in 0..4 {
        // SAFETY: part * 16 + 16 <= 64; v128_load has no alignment
        // requirement.
        let v = unsafe { v128_load(chunk.as_ptr().add(part * 16).cast()) };
        let range =
            |v: v128, lo: u8, n: u8| u8x16_lt(u8x16_sub(v, u8x16_splat(lo)), u8x16_splat(n));
        let eq = |b: u8| u8x16_eq(v, u8x16_splat(b));
        let bits = |m: v128| u64::from(u8x16_bitmask(m)) << (part * 16);
        c.digit |= bits(range(v, b'0', 10));
        c.lower_not_c |= bits(v128_andnot(range(v, b'a', 26), eq(b'c')));
        c.upper |= bits(range(v, b'A', 26));
        c.letter |= bits(range(v128_or(v, u8x16_splat(0x20)), b'a', 26));
        c.sep |= bits(v128_or(eq(b' '), eq(b'-')));
        c.paren_plus |= bits(v128_or(eq(b'('), eq(b'+')));
        c.dot |= bits(eq(b'.'));
        c.one_three |= bits(v128_or(eq(b'1'), eq(b'3')));
        c.colon |= bits(eq(b':'));
        c.hex_letter |= bits(range(v128_or(v, u8x16_splat(0x20)), b'a', 6));
    }
    c
}

#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
)))]
fn classes_vector(chunk: &[u8; 64]) -> Classes {
    classes_scalar(chunk)
}

/// Classes of the 64 bytes at `base` (zero bytes, in no class, past the
/// end).
fn classes_at(hay: &[u8], base: usize) -> Classes {
    match hay.get(base..base + 64) {
        Some(chunk) => {
            let chunk: &[u8; 64] = chunk.try_into().unwrap_or(&[0; 64]);
            classes_vector(chunk)
        }
        None => {
            let mut chunk = [0u8; 64];
            if let Some(rest) = hay.get(base..) {
                chunk[..rest.len()].copy_from_slice(rest);
            }
            classes_vector(&chunk)
        }
    }
}

/// A position worth a scalar look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Candidate {
    /// The first digit of a digit run some numeric detector might accept.
    DigitRun(usize),
    /// A `:` next to a hex digit or another `:`, with another `:` at most
    /// five bytes after it (IPv6).
    Colon(usize),
}

/// Calls `f` for every candidate, in order of position. Every digit run
/// that `super::digits::run_may_matter` accepts and that is not glued to a
/// lower-case letter other than `c` is reported by its first digit; every
/// `:` with a hex digit or `:` on either side and another `:` within five
/// bytes after it is reported.
pub(crate) fn candidates(hay: &[u8], digits: bool, colons: bool, mut f: impl FnMut(Candidate)) {
    if hay.is_empty() || !(digits || colons) {
        return;
    }
    let mut prev = Classes::default();
    let mut cur = classes_at(hay, 0);
    let mut base = 0;
    while base < hay.len() {
        let next = classes_at(hay, base + 64);
        // Shifts across chunk borders: `p(x, j)` is "the byte j before",
        // `n(x, j)` "the byte j after".
        let p = |c: u64, pc: u64, j: u32| c << j | pc >> (64 - j);
        let n = |c: u64, nc: u64, j: u32| c >> j | nc << (64 - j);
        if digits {
            let d = cur.digit;
            let pd = p(d, prev.digit, 1);
            let psep = p(cur.sep, prev.sep, 1);
            let starts = d & !pd & !(psep & p(d, prev.digit, 2));
            let glued = p(cur.lower_not_c, prev.lower_not_c, 1);
            let starts = starts & !glued;
            if starts != 0 {
                // Bytes of a run: digits, and single separators between
                // digits. The next chunk's last byte is counted as one
                // (its successor is unknown), which only lets more through.
                let run = d | (cur.sep & pd & n(d, next.digit, 1));
                let next_run =
                    next.digit | (next.sep & p(next.digit, d, 1) & (next.digit >> 1 | 1 << 63));
                let mut long = run;
                for j in 1..6 {
                    long &= n(run, next_run, j);
                }
                let pu = p(cur.upper, prev.upper, 1);
                let pu2 = p(cur.upper, prev.upper, 2);
                let pu3 = p(cur.upper, prev.upper, 3);
                let alnum = d | cur.letter;
                let prev_alnum = prev.digit | prev.letter;
                let pa = |j: u32| p(alnum, prev_alnum, j);
                let dot_digit = cur.dot & n(d, next.digit, 1);
                let next_dot_digit = next.dot & (next.digit >> 1 | 1 << 63);
                let ip = n(dot_digit, next_dot_digit, 1)
                    | n(dot_digit, next_dot_digit, 2)
                    | n(dot_digit, next_dot_digit, 3);
                // Base58 "1…"/"3…" at a word start, bech32 "bc1…" (the `c`
                // is the only lower-case letter not already excluded):
                // letters follow within the first six bytes.
                let c_only = cur.letter & !cur.lower_not_c & !cur.upper;
                let prev_c_only = prev.letter & !prev.lower_not_c & !prev.upper;
                let mut letter_soon = 0;
                for j in 1..7 {
                    letter_soon |= n(cur.letter, next.letter, j);
                }
                let btc = cur.one_three & letter_soon & (!pa(1) | p(c_only, prev_c_only, 1));
                let gate = long
                    | p(cur.paren_plus, prev.paren_plus, 1)
                    // IBAN / NINO: two capitals at a word start.
                    | (pu & pu2 & !pa(3))
                    | (psep & pu2 & pu3 & !pa(4))
                    | btc
                    | ip;
                let mut m = starts & gate;
                while m != 0 {
                    let i = base + m.trailing_zeros() as usize;
                    m &= m - 1;
                    if i < hay.len() {
                        f(Candidate::DigitRun(i));
                    }
                }
            }
        }
        if colons && cur.colon != 0 {
            let hexish = cur.digit | cur.hex_letter | cur.colon;
            let prev_hexish = prev.digit | prev.hex_letter | prev.colon;
            let next_hexish = next.digit | next.hex_letter | next.colon;
            // The first colon of an IPv6 address (the only one
            // `network::ipv6` starts from) has the next one at most a
            // four-digit group away; JSON's `"total":12.5` has none.
            let mut colon_soon = 0;
            for j in 1..6 {
                colon_soon |= n(cur.colon, next.colon, j);
            }
            let mut m =
                cur.colon & colon_soon & (p(hexish, prev_hexish, 1) | n(hexish, next_hexish, 1));
            while m != 0 {
                let i = base + m.trailing_zeros() as usize;
                m &= m - 1;
                if i < hay.len() {
                    f(Candidate::Colon(i));
                }
            }
        }
        prev = cur;
        cur = next;
        base += 64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_and_scalar_classes_agree_on_every_byte() {
        let mut chunk = [0u8; 64];
        for start in (0..256).step_by(64) {
            for (i, b) in chunk.iter_mut().enumerate() {
                *b = (start + i) as u8;
            }
            assert_eq!(
                classes_vector(&chunk),
                classes_scalar(&chunk),
                "bytes {start}.."
            );
        }
    }

    #[test]
    fn colons_next_to_hex_only() {
        let hay = br#"{"a":"b","ip":"fe80::1","t":"12:30:05","n":1,"x":"q:z","v6":"2001:db8:0:0:0:0:2:1"}"#;
        let mut got = Vec::new();
        candidates(hay, false, true, |c| got.push(c));
        let want: Vec<Candidate> = hay
            .iter()
            .enumerate()
            .filter(|&(i, &b)| {
                let ok = |j: Option<usize>| {
                    j.and_then(|j| hay.get(j))
                        .is_some_and(|b| b.is_ascii_hexdigit() || *b == b':')
                };
                let colon_soon = (i + 1..i + 6).any(|j| hay.get(j) == Some(&b':'));
                b == b':' && colon_soon && (ok(i.checked_sub(1)) || ok(Some(i + 1)))
            })
            .map(|(i, _)| Candidate::Colon(i))
            .collect();
        assert_eq!(got, want);
    }
}
