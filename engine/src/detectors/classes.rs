//! Byte-class bitmaps for the anchorless detectors: 64 bytes at a time,
//! one bit per byte for each class the digit-run and colon candidates
//! need (digits, letters, separators...). Vector compares (SSE2 on x86_64,
//! simd128 in wasm) build them; a portable path builds the same bits.
//! `candidates` turns them into the few positions worth a scalar look, so
//! the digit runs inside hex digests, UUIDs and timestamps and the colons
//! of JSON syntax never reach a detector.

/// The classes of one 64-byte chunk; bit `i` is byte `i` of the chunk.
/// Only what the candidate gates below read: every class costs a compare
/// and a movemask per 16 or 32 bytes on every chunk of every body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Classes {
    pub digit: u64,
    pub lower: u64,
    pub upper: u64,
    /// ` ` or `-`: the separators inside a digit run.
    pub sep: u64,
    /// `(` or `+`: before a phone number.
    pub paren_plus: u64,
    pub dot: u64,
    /// `.`, `(` or `)`: where a phone number goes on past its first run.
    pub punct: u64,
    /// `1` or `3`: the first digit of a base58 Bitcoin address.
    pub one_three: u64,
    pub colon: u64,
    /// `b` and `c`: a digit after `bc` may start bech32, the one case a
    /// run glued to a lower-case letter matters.
    pub b: u64,
    pub c: u64,
}

// The portable path is what other targets run, and the reference the
// vector paths are tested against.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "wasm32"), allow(dead_code))]
#[inline]
fn class_of_byte(b: u8, i: usize, c: &mut Classes) {
    let bit = 1u64 << i;
    let set = |m: &mut u64, yes: bool| *m |= if yes { bit } else { 0 };
    set(&mut c.digit, b.is_ascii_digit());
    set(&mut c.lower, b.is_ascii_lowercase());
    set(&mut c.upper, b.is_ascii_uppercase());
    set(&mut c.sep, b == b' ' || b == b'-');
    set(&mut c.paren_plus, b == b'(' || b == b'+');
    set(&mut c.dot, b == b'.');
    set(&mut c.punct, matches!(b, b'.' | b'(' | b')'));
    set(&mut c.one_three, b == b'1' || b == b'3');
    set(&mut c.colon, b == b':');
    set(&mut c.b, b == b'b');
    set(&mut c.c, b == b'c');
}

#[cfg_attr(any(target_arch = "x86_64", target_arch = "wasm32"), allow(dead_code))]
fn classes_scalar(chunk: &[u8; 64]) -> Classes {
    let mut c = Classes::default();
    for (i, &b) in chunk.iter().enumerate() {
        class_of_byte(b, i, &mut c);
    }
    c
}

/// Fills `out[k]` with the classes of the 64 bytes at `base + 64 * k`
/// (zero bytes, in no class, past the end). A macro rather than a function
/// taking the class function, so that each vector path's loop is compiled
/// with its target features and the class code inlined into it.
macro_rules! fill_body {
    ($hay:expr, $base:expr, $out:expr, |$c:ident| $classes:expr) => {{
        let (hay, base, out): (&[u8], usize, &mut [Classes]) = ($hay, $base, $out);
        for (k, o) in out.iter_mut().enumerate() {
            let at = base + 64 * k;
            *o = match hay.get(at..at + 64) {
                Some(chunk) => {
                    let $c: &[u8; 64] = chunk.try_into().unwrap_or(&[0; 64]);
                    $classes
                }
                None if at < hay.len() => {
                    let mut chunk = [0u8; 64];
                    chunk[..hay.len() - at].copy_from_slice(&hay[at..]);
                    let $c = &chunk;
                    $classes
                }
                None => Classes::default(),
            };
        }
    }};
}
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Classes;
    use std::arch::x86_64::*;

    #[inline(always)]
    pub(super) fn classes_sse2(chunk: &[u8; 64]) -> Classes {
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
                let open = eq(b'(');
                let dot = eq(b'.');
                c.digit |= bits(range(v, b'0', 10));
                c.lower |= bits(range(v, b'a', 26));
                c.upper |= bits(range(v, b'A', 26));
                c.sep |= bits(_mm_or_si128(eq(b' '), eq(b'-')));
                c.paren_plus |= bits(_mm_or_si128(open, eq(b'+')));
                c.dot |= bits(dot);
                c.punct |= bits(_mm_or_si128(_mm_or_si128(open, eq(b')')), dot));
                c.one_three |= bits(_mm_or_si128(eq(b'1'), eq(b'3')));
                c.colon |= bits(eq(b':'));
                c.b |= bits(eq(b'b'));
                c.c |= bits(eq(b'c'));
            }
        }
        c
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn classes_avx2(chunk: &[u8; 64]) -> Classes {
        let mut c = Classes::default();
        for part in 0..2 {
            // SAFETY: AVX2 is enabled for this function (its caller checked
            // the CPU); the load reads chunk[part * 32..part * 32 + 32],
            // inside the array, unaligned.
            unsafe {
                let v = _mm256_loadu_si256(chunk.as_ptr().add(part * 32).cast());
                let splat = |b: u8| _mm256_set1_epi8(b as i8);
                // x in [lo, lo + n) as a signed compare after biasing lo to -128.
                let range = |lo: u8, n: u8| {
                    _mm256_cmpgt_epi8(
                        splat(128u8.wrapping_add(n)),
                        _mm256_add_epi8(v, splat(128u8.wrapping_sub(lo))),
                    )
                };
                let eq = |b: u8| _mm256_cmpeq_epi8(v, splat(b));
                let bits = |m: __m256i| u64::from(_mm256_movemask_epi8(m) as u32) << (part * 32);
                let open = eq(b'(');
                let dot = eq(b'.');
                c.digit |= bits(range(b'0', 10));
                c.lower |= bits(range(b'a', 26));
                c.upper |= bits(range(b'A', 26));
                c.sep |= bits(_mm256_or_si256(eq(b' '), eq(b'-')));
                c.paren_plus |= bits(_mm256_or_si256(open, eq(b'+')));
                c.dot |= bits(dot);
                c.punct |= bits(_mm256_or_si256(_mm256_or_si256(open, eq(b')')), dot));
                c.one_three |= bits(_mm256_or_si256(eq(b'1'), eq(b'3')));
                c.colon |= bits(eq(b':'));
                c.b |= bits(eq(b'b'));
                c.c |= bits(eq(b'c'));
            }
        }
        c
    }

    /// `super::fill` with the AVX2 classes.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn fill_avx2(hay: &[u8], base: usize, out: &mut [Classes]) {
        // SAFETY: this function only runs where AVX2 is available.
        fill_body!(hay, base, out, |c| unsafe { classes_avx2(c) });
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
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
        let open = eq(b'(');
        let dot = eq(b'.');
        c.digit |= bits(range(v, b'0', 10));
        c.lower |= bits(range(v, b'a', 26));
        c.upper |= bits(range(v, b'A', 26));
        c.sep |= bits(v128_or(eq(b' '), eq(b'-')));
        c.paren_plus |= bits(v128_or(open, eq(b'+')));
        c.dot |= bits(dot);
        c.punct |= bits(v128_or(v128_or(open, eq(b')')), dot));
        c.one_three |= bits(v128_or(eq(b'1'), eq(b'3')));
        c.colon |= bits(eq(b':'));
        c.b |= bits(eq(b'b'));
        c.c |= bits(eq(b'c'));
    }
    c
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn classes_vector(chunk: &[u8; 64]) -> Classes {
    x86::classes_sse2(chunk)
}

#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
)))]
#[inline(always)]
fn classes_vector(chunk: &[u8; 64]) -> Classes {
    classes_scalar(chunk)
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
/// that `super::digits::wanted` could accept is reported by its first
/// digit (and a few more: the gates are necessary conditions, the caller
/// measures the run); every `:` with a hex digit or `:` on either side and
/// another `:` within five bytes after it is reported.
pub(crate) fn candidates(hay: &[u8], digits: bool, colons: bool, mut f: impl FnMut(Candidate)) {
    if hay.is_empty() || !(digits || colons) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    let avx2 = std::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    let avx2 = false;
    let fill = |base: usize, out: &mut [Classes]| {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: AVX2 was detected above.
            unsafe { x86::fill_avx2(hay, base, out) };
            return;
        }
        let _ = avx2;
        fill_body!(hay, base, out, |c| classes_vector(c));
    };
    // `window[j]` holds the classes of chunk `first - 1 + j`; chunks are
    // classed a batch at a time, so the gates below read plain masks.
    const BATCH: usize = 32;
    let mut window = [Classes::default(); BATCH + 2];
    let chunks = hay.len().div_ceil(64);
    let mut first = 0;
    // Chunks at or past `chunks` stay default (no byte in any class).
    let real = chunks.min(BATCH + 1);
    fill(0, &mut window[1..1 + real]);
    while first < chunks {
        let here = (chunks - first).min(BATCH);
        for j in 1..=here {
            let base = (first + j - 1) * 64;
            let (prev, cur, next) = (&window[j - 1], &window[j], &window[j + 1]);
            if digits {
                let m = digit_gate(prev, cur, next);
                for_each_bit(m, base, hay.len(), |i| f(Candidate::DigitRun(i)));
            }
            if colons && cur.colon != 0 {
                colon_gate(hay, base, cur, next, &mut f);
            }
        }
        first += BATCH;
        if first >= chunks {
            break;
        }
        window[0] = window[BATCH];
        window[1] = window[BATCH + 1];
        let real = (chunks - first - 1).min(BATCH);
        fill((first + 1) * 64, &mut window[2..2 + real]);
        if let Some(w) = window.get_mut(2 + real) {
            *w = Classes::default();
        }
    }
}

/// The first colon of an IPv6 address (the only one `network::ipv6`
/// starts from) has the next one at most a four-digit group away; JSON's
/// `"total":12.5` has none.
#[inline(always)]
fn colon_gate(
    hay: &[u8],
    base: usize,
    cur: &Classes,
    next: &Classes,
    f: &mut impl FnMut(Candidate),
) {
    let c = cur.colon;
    let mut soon = c >> 1 | c >> 2;
    soon |= soon >> 2 | c >> 5;
    if c >> 59 != 0 {
        let w = u128::from(c) | u128::from(next.colon) << 64;
        soon |= any_within(w, 5);
    }
    let m = c & soon;
    if m == 0 {
        return;
    }
    for_each_bit(m, base, hay.len(), |i| {
        let hexish = |j: Option<usize>| {
            j.and_then(|j| hay.get(j))
                .is_some_and(|b| b.is_ascii_hexdigit() || *b == b':')
        };
        if hexish(i.checked_sub(1)) || hexish(Some(i + 1)) {
            f(Candidate::Colon(i));
        }
    });
}

/// Bits of `w >> j` / `w << j` across three chunks: `p(x, j)` is "the byte
/// j before", `n(x, j)` "the byte j after".
#[inline(always)]
fn p(c: u64, pc: u64, j: u32) -> u64 {
    c << j | pc >> (64 - j)
}

#[inline(always)]
fn n(c: u64, nc: u64, j: u32) -> u64 {
    c >> j | nc << (64 - j)
}

/// Bit i is set when some bit of `x` (a 128-bit window: this chunk, then
/// the next) is set at i + 1 ..= i + `span`, for span 1..=32.
#[inline(always)]
fn any_within(x: u128, span: u32) -> u64 {
    // Doubling: `a` covers offsets 1..=k.
    let mut a = x >> 1;
    let mut k = 1;
    while 2 * k <= span {
        a |= a >> k;
        k *= 2;
    }
    if k < span {
        a |= a >> (span - k);
    }
    a as u64
}

#[inline(always)]
fn for_each_bit(mut m: u64, base: usize, len: usize, mut f: impl FnMut(usize)) {
    while m != 0 {
        let i = base + m.trailing_zeros() as usize;
        m &= m - 1;
        if i < len {
            f(i);
        }
    }
}

/// The run starts of `cur` that pass the gate of some numeric detector
/// (see `super::digits::wanted`, whose conditions these over-approximate
/// with whole-mask shifts).
#[inline(always)]
fn digit_gate(prev: &Classes, cur: &Classes, next: &Classes) -> u64 {
    let d = cur.digit;
    let pd = p(d, prev.digit, 1);
    let pd2 = p(d, prev.digit, 2);
    let psep = p(cur.sep, prev.sep, 1);
    let pl = p(cur.lower, prev.lower, 1);
    // After `bc` (bech32); every other lower-case letter glues the run
    // into a word, which every numeric detector rejects.
    let bc = p(cur.c, prev.c, 1) & p(cur.b, prev.b, 2);
    let starts = d & !pd & !(psep & pd2) & !(pl & !bc);
    let pu = p(cur.upper, prev.upper, 1);
    let pu2 = p(cur.upper, prev.upper, 2);
    let letter = cur.lower | cur.upper;
    let alnum = d | letter;
    let prev_alnum = prev.digit | prev.lower | prev.upper;
    let pa = |j: u32| p(alnum, prev_alnum, j);
    let sure = p(cur.paren_plus, prev.paren_plus, 1)
        // IBAN "DE89…", NINO "AB123456C": two capitals at a word start.
        | (pu & pu2 & !pa(3))
        // NINO "AB 12 34 56 C".
        | (psep & pu2 & p(cur.upper, prev.upper, 3) & !pa(4))
        | bc;
    // Bytes of a run: digits, and single separators between digits. The
    // next chunk's last byte is counted as one (its successor is
    // unknown), which only lets more through.
    let run = d | (cur.sep & pd & n(d, next.digit, 1));
    let next_run = next.digit | (next.sep & p(next.digit, d, 1) & (next.digit >> 1 | 1 << 63));
    // Nine or more digits (cards, SSN, ITIN, SIN, Aadhaar, long phone
    // runs) take at least nine run bytes; the few runs that long (dates
    // and times among them) have their digits counted.
    let long = starts
        & !sure
        & run
        & n(run, next_run, 2)
        & n(run, next_run, 4)
        & n(run, next_run, 6)
        & n(run, next_run, 8);
    let mut out = starts & sure;
    if long != 0 {
        let runs = u128::from(run) | u128::from(next_run) << 64;
        let digits = u128::from(d) | u128::from(next.digit) << 64;
        for_each_bit(long, 0, 64, |i| {
            let len = (!(runs >> i)).trailing_zeros();
            let mask = if len >= 64 { u64::MAX } else { (1 << len) - 1 };
            // A run reaching the window's end is long enough anyway.
            if len >= 64 || ((digits >> i) as u64 & mask).count_ones() >= 9 {
                out |= 1 << i;
            }
        });
    }
    // The rest is computed without branches: whether a chunk has such
    // starts is as good as random, and a mispredicted branch costs more
    // than these few shifts.
    let rest = starts & !sure & !pa(1) & !out;
    // Base58 "1…"/"3…" at a word start, letters or digits after.
    out |= rest & cur.one_three & n(alnum, next.digit | next.lower | next.upper, 1);
    // A phone number whose first run is short goes on past a `.`, `(` or
    // `)` within its first 18 bytes; never after `:` or a decimal point.
    let pdot = p(cur.dot, prev.dot, 1);
    let punct = u128::from(cur.punct) | u128::from(next.punct) << 64;
    out |= rest & !p(cur.colon, prev.colon, 1) & !(pdot & pd2) & any_within(punct, 18);
    // IPv4: a dot within the first four bytes and the third one within
    // twelve (counted for the few left).
    let ip = rest
        & !pdot
        & (n(cur.dot, next.dot, 1) | n(cur.dot, next.dot, 2) | n(cur.dot, next.dot, 3));
    if ip != 0 {
        let dots = u128::from(cur.dot) | u128::from(next.dot) << 64;
        for_each_bit(ip, 0, 64, |i| {
            if (dots >> (i + 5)) as u32 & 0xff != 0 {
                out |= 1 << i;
            }
        });
    }
    out
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
#[cfg(test)]
mod dg_time {
    #[test]
    #[ignore]
    fn time_candidates() {
        for name in ["clean", "mixed"] {
            let hay = std::fs::read(format!("/tmp/dg/{name}.json")).unwrap();
            let mut best = f64::MAX;
            let mut n = 0;
            for _ in 0..200 {
                let t = std::time::Instant::now();
                n = 0;
                super::candidates(&hay, std::env::var_os("DG_NODIG").is_none(), true, |c| {
                    n += 1;
                    std::hint::black_box(c);
                });
                best = best.min(t.elapsed().as_secs_f64());
            }
            let mut best2 = f64::MAX;
            let mut m = 0;
            for _ in 0..200 {
                let t = std::time::Instant::now();
                m = 0;
                super::super::digits::candidate_digit_runs(&hay, |r| {
                    m += 1;
                    std::hint::black_box(r);
                });
                best2 = best2.min(t.elapsed().as_secs_f64());
            }
            println!(
                "{name}: candidates {n} in {:.3} ms; runs {m} in {:.3} ms",
                best * 1e3,
                best2 * 1e3
            );
        }
    }
}
