//! Byte-class bitmaps for the anchorless detectors: 64 bytes at a time,
//! one bit per byte for each class the digit-run and colon candidates
//! need (digits, letters, separators...). Vector compares (SSE2, AVX2 or
//! AVX-512 on x86_64, simd128 in wasm) build them, or on AVX-512 with GFNI
//! a table lookup and a bit transpose; a portable path builds the same bits.
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
    pub dot: u64,
    /// `.`, `(` or `)`: where a phone number goes on past its first run.
    pub punct: u64,
    /// `1` or `3`: the first digit of a base58 Bitcoin address.
    pub one_three: u64,
    pub colon: u64,
    /// `b` or `c`: a digit after `bc` may start bech32, the one case a
    /// run glued to a lower-case letter matters. One class for both (one
    /// compare after an `or`, one mask less to store and shift): the gates
    /// let `cb1`, `bb1` and `cc1` through too, which `wanted` drops.
    pub bc: u64,
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
    set(&mut c.dot, b == b'.');
    set(&mut c.punct, matches!(b, b'.' | b'(' | b')'));
    set(&mut c.one_three, b == b'1' || b == b'3');
    set(&mut c.colon, b == b':');
    set(&mut c.bc, b == b'b' || b == b'c');
}

#[cfg_attr(any(target_arch = "x86_64", target_arch = "wasm32"), allow(dead_code))]
fn classes_scalar(chunk: &[u8; 64]) -> Classes {
    let mut c = Classes::default();
    for (i, &b) in chunk.iter().enumerate() {
        class_of_byte(b, i, &mut c);
    }
    c
}

/// Stores in `window` (slots `from..from + count`) the classes of the 64
/// bytes at `base + 64 * k` (zero bytes, in no class, past the end). A
/// macro rather than a function taking the class function, so that each
/// vector path's loop is compiled with its target features and the class
/// code inlined into it.
macro_rules! fill_body {
    ($hay:expr, $base:expr, $window:expr, $from:expr, $count:expr, |$c:ident| $classes:expr) => {{
        let (hay, base, window, from, count): (&[u8], usize, &mut Window, usize, usize) =
            ($hay, $base, $window, $from, $count);
        for k in 0..count {
            let at = base + 64 * k;
            let classes = match hay.get(at..at + 64) {
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
            window.set(from + k, &classes);
        }
    }};
    // `$store` puts the classes of chunk `$c` in slot `$j` of `$w` itself:
    // the AVX-512 path stores its mask registers straight to the window.
    // The arm above is not written through this one on purpose: with one
    // store per match arm, V8 ran the simd128 fill 2-4% slower.
    ($hay:expr, $base:expr, $window:expr, $from:expr, $count:expr, |$c:ident, $w:ident, $j:ident| $store:expr) => {{
        let (hay, base, window, from, count): (&[u8], usize, &mut Window, usize, usize) =
            ($hay, $base, $window, $from, $count);
        for k in 0..count {
            let at = base + 64 * k;
            let ($w, $j) = (&mut *window, from + k);
            match hay.get(at..at + 64) {
                Some(chunk) => {
                    let $c: &[u8; 64] = chunk.try_into().unwrap_or(&[0; 64]);
                    $store
                }
                None if at < hay.len() => {
                    let mut chunk = [0u8; 64];
                    chunk[..hay.len() - at].copy_from_slice(&hay[at..]);
                    let $c = &chunk;
                    $store
                }
                None => $w.set($j, &Classes::default()),
            }
        }
    }};
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Classes, Window};
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
                c.dot |= bits(dot);
                c.punct |= bits(_mm_or_si128(_mm_or_si128(open, eq(b')')), dot));
                c.one_three |= bits(_mm_or_si128(eq(b'1'), eq(b'3')));
                c.colon |= bits(eq(b':'));
                c.bc |= bits(_mm_or_si128(eq(b'b'), eq(b'c')));
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
                c.dot |= bits(dot);
                c.punct |= bits(_mm256_or_si256(_mm256_or_si256(open, eq(b')')), dot));
                c.one_three |= bits(_mm256_or_si256(eq(b'1'), eq(b'3')));
                c.colon |= bits(eq(b':'));
                c.bc |= bits(_mm256_or_si256(eq(b'b'), eq(b'c')));
            }
        }
        c
    }

    /// The classes with AVX-512BW into slot `j` of `w` (if any): one load
    /// and one compare into a mask register per class, stored from there
    /// (a move to a general register first costs a port-0 uop per class,
    /// which the compares' port 5 does not need). Sets whose bytes differ
    /// in one bit take one compare after an `or`: `1`/`3`, `(`/`)`.
    ///
    /// # Safety
    /// The CPU must support AVX-512BW.
    #[target_feature(enable = "avx512bw")]
    #[inline]
    pub(super) unsafe fn classes_avx512(chunk: &[u8; 64], w: &mut Window, j: usize) {
        if j >= super::SLOTS {
            return;
        }
        // SAFETY: AVX-512BW is enabled for this function (its caller
        // checked the CPU); the load reads the 64 bytes of the array,
        // unaligned.
        unsafe {
            let v = _mm512_loadu_si512(chunk.as_ptr().cast());
            let splat = |b: u8| _mm512_set1_epi8(b as i8);
            let range =
                |lo: u8, n: u8| _mm512_cmplt_epu8_mask(_mm512_sub_epi8(v, splat(lo)), splat(n));
            let eq = |b: u8| _mm512_cmpeq_epi8_mask(v, splat(b));
            let eq_or =
                |bit: u8, b: u8| _mm512_cmpeq_epi8_mask(_mm512_or_si512(v, splat(bit)), splat(b));
            let dot = eq(b'.');
            w.digit[j] = range(b'0', 10);
            w.lower[j] = range(b'a', 26);
            w.upper[j] = range(b'A', 26);
            w.sep[j] = eq(b' ') | eq(b'-');
            w.dot[j] = dot;
            w.punct[j] = eq_or(1, b')') | dot;
            w.one_three[j] = eq_or(2, b'3');
            w.colon[j] = eq(b':');
            w.bc[j] = eq_or(1, b'c');
        }
    }

    /// `super::fill` with the AVX-512BW classes.
    ///
    /// # Safety
    /// The CPU must support AVX-512BW.
    #[target_feature(enable = "avx512bw")]
    pub(super) unsafe fn fill_avx512(
        hay: &[u8],
        base: usize,
        window: &mut Window,
        from: usize,
        count: usize,
    ) {
        // SAFETY: this function only runs where AVX-512BW is available.
        fill_body!(hay, base, window, from, count, |c, w, j| unsafe {
            classes_avx512(c, w, j)
        });
    }

    /// Bit `k` of entry `b`: byte `b` is in class `k` of `PLANES`, for the
    /// table lookup of `fill_avx512_gfni` (bytes 0x80 and up are in none).
    const fn plane_bits(b: u8) -> u8 {
        let mut bits = 0;
        let classes = [
            b.is_ascii_digit(),
            b.is_ascii_lowercase(),
            b.is_ascii_uppercase(),
            b == b' ' || b == b'-',
            b == b'.',
            matches!(b, b'.' | b'(' | b')'),
            b == b'1' || b == b'3',
            b == b'b' || b == b'c',
        ];
        let mut k = 0;
        while k < 8 {
            if classes[k] {
                bits |= 1 << k;
            }
            k += 1;
        }
        bits
    }

    const fn plane_table(from: u8) -> [u8; 64] {
        let mut t = [0; 64];
        let mut i = 0;
        while i < 64 {
            t[i] = plane_bits(from + i as u8);
            i += 1;
        }
        t
    }

    /// The lookup's two halves: bytes 0x00..0x40 and 0x40..0x80.
    static PLANE_LOW: [u8; 64] = plane_table(0);
    static PLANE_HIGH: [u8; 64] = plane_table(64);

    /// `super::fill` for whole groups of eight chunks with one table
    /// lookup per chunk for eight of the classes instead of a compare
    /// each (the compares all issue on one port): the lookup gives each
    /// byte its eight class bits, a GF(2) affine transform turns each
    /// eight bytes' bits into eight bytes of one class each, a byte
    /// permute gathers each class's eight bytes into one `u64`, and an
    /// 8x8 transpose of the eight chunks' `u64`s gives each class's eight
    /// slots, stored at once. `:` is compared as before. Chunks the
    /// groups leave (fewer than eight, or past the end of `hay`) go
    /// through `fill_avx512`.
    ///
    /// # Safety
    /// The CPU must support AVX-512BW, AVX-512VBMI and GFNI.
    #[target_feature(enable = "avx512bw,avx512vbmi,gfni")]
    pub(super) unsafe fn fill_avx512_gfni(
        hay: &[u8],
        base: usize,
        window: &mut Window,
        from: usize,
        count: usize,
    ) {
        let mut k = 0;
        while k + 8 <= count && from + k + 8 <= super::SLOTS {
            let at = base + 64 * k;
            let Some(bytes) = hay.get(at..at + 512) else {
                break;
            };
            // SAFETY: the features are enabled for this function; the
            // loads read `bytes` (512 bytes) and the tables (64 bytes
            // each); the stores write slots `from + k..from + k + 8` of
            // arrays of `SLOTS`, in bounds by the loop condition.
            unsafe {
                let low = _mm512_loadu_si512(PLANE_LOW.as_ptr().cast());
                let high = _mm512_loadu_si512(PLANE_HIGH.as_ptr().cast());
                // Byte j of each u64: 1 << j, selecting class j.
                let select = _mm512_set1_epi64(0x8040_2010_0804_0201u64 as i64);
                // Reverses a byte's bits: the transform's bit i comes
                // from byte 7 - i of its u64.
                let reverse = _mm512_set1_epi64(0x8040_2010_0804_0201u64 as i64);
                // Byte 8c + q of the result is byte 8q + c of the input.
                let gather = _mm512_set_epi8(
                    63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37,
                    29, 21, 13, 5, 60, 52, 44, 36, 28, 20, 12, 4, 59, 51, 43, 35, 27, 19, 11, 3,
                    58, 50, 42, 34, 26, 18, 10, 2, 57, 49, 41, 33, 25, 17, 9, 1, 56, 48, 40, 32,
                    24, 16, 8, 0,
                );
                let colon = _mm512_set1_epi8(b':' as i8);
                let mut rows = [_mm512_setzero_si512(); 8];
                for (c, row) in rows.iter_mut().enumerate() {
                    let v = _mm512_loadu_si512(bytes.as_ptr().add(64 * c).cast());
                    let ascii = !_mm512_movepi8_mask(v);
                    let bits = _mm512_maskz_permutex2var_epi8(ascii, low, v, high);
                    let planes = _mm512_gf2p8affine_epi64_epi8::<0>(select, bits);
                    let planes = _mm512_gf2p8affine_epi64_epi8::<0>(planes, reverse);
                    *row = _mm512_permutexvar_epi8(gather, planes);
                    window.colon[from + k + c] = _mm512_cmpeq_epi8_mask(v, colon);
                }
                let rows = transpose_8x8(rows);
                let j = from + k;
                let outs: [&mut [u64; super::SLOTS]; 8] = [
                    &mut window.digit,
                    &mut window.lower,
                    &mut window.upper,
                    &mut window.sep,
                    &mut window.dot,
                    &mut window.punct,
                    &mut window.one_three,
                    &mut window.bc,
                ];
                for (out, row) in outs.into_iter().zip(rows) {
                    let s = &mut out[j..j + 8];
                    _mm512_storeu_si512(s.as_mut_ptr().cast(), row);
                }
            }
            k += 8;
        }
        if k < count {
            // SAFETY: AVX-512BW is enabled for this function.
            unsafe { fill_avx512(hay, base + 64 * k, window, from + k, count - k) };
        }
    }

    /// Lane indices of `transpose_8x8`'s rounds: for the block size d,
    /// x' takes x's lanes c with c & d == 0 and y's lanes c - d elsewhere
    /// (y is lanes 8..16), y' takes x's lanes c + d and y's own elsewhere.
    const SWAPS: [([i64; 8], [i64; 8]); 3] = [
        ([0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]),
        ([0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]),
        ([0, 8, 2, 10, 4, 12, 6, 14], [1, 9, 3, 11, 5, 13, 7, 15]),
    ];

    /// `u64` c of row k becomes `u64` k of row c: three rounds of swapping
    /// the off-diagonal blocks of 4, 2 and 1 lanes between rows 4, 2 and
    /// 1 apart.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn transpose_8x8(mut r: [__m512i; 8]) -> [__m512i; 8] {
        for (round, d) in SWAPS.iter().zip([4, 2, 1]) {
            // SAFETY: AVX-512F is enabled; the loads read the constant
            // arrays.
            unsafe {
                let ix = _mm512_loadu_si512(round.0.as_ptr().cast());
                let iy = _mm512_loadu_si512(round.1.as_ptr().cast());
                for k in 0..8 {
                    if k & d == 0 {
                        let (x, y) = (r[k], r[k + d]);
                        r[k] = _mm512_permutex2var_epi64(x, ix, y);
                        r[k + d] = _mm512_permutex2var_epi64(x, iy, y);
                    }
                }
            }
        }
        r
    }

    /// `super::gates` compiled for AVX-512, eight chunks to a vector, the
    /// shifts across chunk edges one funnel shift each (VBMI2): 512-bit
    /// shifts issue on one port, and they are most of the gates.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX-512VBMI2.
    #[target_feature(enable = "avx512f,avx512vbmi2")]
    pub(super) unsafe fn gates_avx512(w: &Window, here: usize, g: &mut super::Gates) {
        super::gates::<Avx512>(w, here, g)
    }

    /// Eight chunks' masks.
    #[derive(Clone, Copy)]
    pub(super) struct Avx512(__m512i);

    // SAFETY (every method): only reached from `gates_avx512`, which runs
    // where AVX-512F and VBMI2 are available; loads and stores go through
    // a bounds-checked slice of eight slots.
    impl super::Lanes for Avx512 {
        const N: usize = 8;
        #[inline(always)]
        fn at(a: &[u64; super::SLOTS], j: usize) -> Self {
            let s = &a[j..j + 8];
            Avx512(unsafe { _mm512_loadu_si512(s.as_ptr().cast()) })
        }
        #[inline(always)]
        fn put(self, a: &mut [u64; super::SLOTS], j: usize) {
            let s = &mut a[j..j + 8];
            unsafe { _mm512_storeu_si512(s.as_mut_ptr().cast(), self.0) }
        }
        #[inline(always)]
        fn splat(x: u64) -> Self {
            Avx512(unsafe { _mm512_set1_epi64(x as i64) })
        }
        #[inline(always)]
        fn and(self, o: Self) -> Self {
            Avx512(unsafe { _mm512_and_si512(self.0, o.0) })
        }
        #[inline(always)]
        fn or(self, o: Self) -> Self {
            Avx512(unsafe { _mm512_or_si512(self.0, o.0) })
        }
        #[inline(always)]
        fn and_not(self, o: Self) -> Self {
            Avx512(unsafe { _mm512_andnot_si512(o.0, self.0) })
        }
        #[inline(always)]
        fn shl(self, k: u32) -> Self {
            Avx512(unsafe { _mm512_sll_epi64(self.0, _mm_cvtsi32_si128(k as i32)) })
        }
        #[inline(always)]
        fn shr(self, k: u32) -> Self {
            Avx512(unsafe { _mm512_srl_epi64(self.0, _mm_cvtsi32_si128(k as i32)) })
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Avx512(unsafe { _mm512_add_epi64(self.0, o.0) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            Avx512(unsafe { _mm512_sub_epi64(self.0, o.0) })
        }
        #[inline(always)]
        fn nonzero(self) -> u64 {
            u64::from(unsafe { _mm512_test_epi64_mask(self.0, self.0) })
        }
        #[inline(always)]
        fn shl_from(self, prev: Self, k: u32) -> Self {
            Avx512(unsafe { _mm512_shldv_epi64(self.0, prev.0, _mm512_set1_epi64(i64::from(k))) })
        }
        #[inline(always)]
        fn shr_from(self, next: Self, k: u32) -> Self {
            Avx512(unsafe { _mm512_shrdv_epi64(self.0, next.0, _mm512_set1_epi64(i64::from(k))) })
        }
    }

    /// `super::fill` with the AVX2 classes.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn fill_avx2(
        hay: &[u8],
        base: usize,
        window: &mut Window,
        from: usize,
        count: usize,
    ) {
        // SAFETY: this function only runs where AVX2 is available.
        fill_body!(hay, base, window, from, count, |c| unsafe {
            classes_avx2(c)
        });
    }

    /// `super::gates` compiled for AVX2, four chunks to a vector.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn gates_avx2(w: &Window, here: usize, g: &mut super::Gates) {
        super::gates::<Avx2>(w, here, g)
    }

    /// Four chunks' masks.
    #[derive(Clone, Copy)]
    pub(super) struct Avx2(__m256i);

    // SAFETY (every method): only reached from `gates_avx2`, which runs
    // where AVX2 is available; loads and stores go through a bounds-checked
    // slice of four slots.
    impl super::Lanes for Avx2 {
        const N: usize = 4;
        #[inline(always)]
        fn at(a: &[u64; super::SLOTS], j: usize) -> Self {
            let s = &a[j..j + 4];
            Avx2(unsafe { _mm256_loadu_si256(s.as_ptr().cast()) })
        }
        #[inline(always)]
        fn put(self, a: &mut [u64; super::SLOTS], j: usize) {
            let s = &mut a[j..j + 4];
            unsafe { _mm256_storeu_si256(s.as_mut_ptr().cast(), self.0) }
        }
        #[inline(always)]
        fn splat(x: u64) -> Self {
            Avx2(unsafe { _mm256_set1_epi64x(x as i64) })
        }
        #[inline(always)]
        fn and(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_and_si256(self.0, o.0) })
        }
        #[inline(always)]
        fn or(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_or_si256(self.0, o.0) })
        }
        #[inline(always)]
        fn and_not(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_andnot_si256(o.0, self.0) })
        }
        #[inline(always)]
        fn shl(self, k: u32) -> Self {
            Avx2(unsafe { _mm256_sll_epi64(self.0, _mm_cvtsi32_si128(k as i32)) })
        }
        #[inline(always)]
        fn shr(self, k: u32) -> Self {
            Avx2(unsafe { _mm256_srl_epi64(self.0, _mm_cvtsi32_si128(k as i32)) })
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_add_epi64(self.0, o.0) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_sub_epi64(self.0, o.0) })
        }
        #[inline(always)]
        fn nonzero(self) -> u64 {
            unsafe {
                let zero = _mm256_cmpeq_epi64(self.0, _mm256_setzero_si256());
                u64::from(!_mm256_movemask_pd(_mm256_castsi256_pd(zero)) as u8 & 0xf)
            }
        }
    }
}

/// The punctuation the classes need has one byte per low nibble, so a
/// lookup by low nibble and one compare find all of it: the byte each
/// nibble would have to be (0 where none: no byte with that nibble is 0).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
const PUNCT_BY_NIBBLE: [u8; 16] = [
    b' ', 0, 0, 0, 0, 0, 0, 0, b'(', b')', b':', 0, 0, b'-', b'.', 0,
];

/// Which punctuation, and which digit is `1` or `3`, as three bit planes
/// by low nibble (bits 7, 6, 5 of the byte: `X`, `Y`, `Z`), read only for
/// the punctuation above and digits. `(` and `)` share their nibbles with
/// `8` and `9`, and ` ` with `0`: the digit plane tells them apart.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
const CODE_BY_NIBBLE: [u8; 16] = {
    const X: u8 = 0x80; // `.`, `(`, `)`: punct
    const Y: u8 = 0x40; // with Z: ` `, `-` (sep)
    const Z: u8 = 0x20; // `:`; `1`, `3` among digits; with X: `.`
    [
        Y | Z, // ' ' (and '0')
        Z,     // '1'
        0,
        Z, // '3'
        0,
        0,
        0,
        0,
        X, // '(' (and '8')
        X, // ')' (and '9')
        Z, // ':'
        0,
        0,
        Y | Z, // '-'
        X | Z, // '.'
        0,
    ]
};

/// The classes in simd128 from seven bitmasks per 16 bytes instead of one
/// per class: `i8x16.bitmask` issues on one port in V8 on x64, and
/// it was most of the pass. The planes are digits, letters, the case bit,
/// `b`/`c`, and the three code planes of `CODE_BY_NIBBLE` (zero outside
/// digits and the punctuation); scalar ands over the 64-bit planes then
/// give the nine classes.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn classes_vector(chunk: &[u8; 64]) -> Classes {
    use crate::detectors::nibble_lookup;
    use core::arch::wasm32::*;
    #[inline(always)]
    fn table(t: [u8; 16]) -> v128 {
        u8x16(
            t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13],
            t[14], t[15],
        )
    }
    // `v - lo` in [0, n) as a signed compare after biasing lo to -128
    // (`i8x16.gt_s` is one `pcmpgtb`); a mask, not just a top bit, since
    // the digits also select the code planes.
    #[inline(always)]
    fn range(v: v128, lo: u8, n: u8) -> v128 {
        i8x16_gt(
            u8x16_splat(n.wrapping_sub(128)),
            u8x16_add(v, u8x16_splat(128u8.wrapping_sub(lo))),
        )
    }
    let (punct_t, code_t) = (table(PUNCT_BY_NIBBLE), table(CODE_BY_NIBBLE));
    let (mut x, mut y, mut z) = (0u64, 0u64, 0u64);
    let (mut digit, mut alpha, mut case, mut bc) = (0u64, 0u64, 0u64, 0u64);
    for part in 0..4 {
        // SAFETY: part * 16 + 16 <= 64; v128_load has no alignment
        // requirement.
        let v = unsafe { v128_load(chunk.as_ptr().add(part * 16).cast()) };
        let bits = |m: v128| u64::from(u8x16_bitmask(m)) << (part * 16);
        let lo = v128_and(v, u8x16_splat(0x0f));
        let punct = u8x16_eq(nibble_lookup(punct_t, lo), v);
        let d = range(v, b'0', 10);
        let code = v128_and(nibble_lookup(code_t, lo), v128_or(punct, d));
        // Bits 6 and 5 moved to bit 7 by 16-bit shifts (one `psllw`
        // each; the byte shifts LLVM makes of `code + code` take a mask
        // in V8): the bits crossing into the next byte land below bit 7.
        x |= bits(code);
        y |= bits(u16x8_shl(code, 1));
        z |= bits(u16x8_shl(code, 2));
        digit |= bits(d);
        alpha |= bits(range(v128_or(v, u8x16_splat(0x20)), b'a', 26));
        // Bit 5, lower case for a letter, moved to bit 7 the same way.
        case |= bits(u16x8_shl(v, 2));
        // Bytes that differ in one bit: one compare after an `or`.
        bc |= bits(u8x16_eq(v128_or(v, u8x16_splat(1)), u8x16_splat(b'c')));
    }
    let other = !digit;
    Classes {
        digit,
        lower: alpha & case,
        upper: alpha & !case,
        sep: y & z & other,
        dot: x & z & other,
        punct: x & other,
        one_three: digit & z & !y,
        colon: z & !x & !y & other,
        bc,
    }
}

/// Two chunks' masks in a simd128 vector, for the gates in wasm.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[derive(Clone, Copy)]
struct Simd128(core::arch::wasm32::v128);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Lanes for Simd128 {
    const N: usize = 2;
    #[inline(always)]
    fn at(a: &[u64; SLOTS], j: usize) -> Self {
        let s = &a[j..j + 2];
        // SAFETY: `s` is two u64 in bounds; v128_load has no alignment
        // requirement.
        Simd128(unsafe { core::arch::wasm32::v128_load(s.as_ptr().cast()) })
    }
    #[inline(always)]
    fn put(self, a: &mut [u64; SLOTS], j: usize) {
        let s = &mut a[j..j + 2];
        // SAFETY: as in `at`, for the store.
        unsafe { core::arch::wasm32::v128_store(s.as_mut_ptr().cast(), self.0) }
    }
    #[inline(always)]
    fn splat(x: u64) -> Self {
        Simd128(core::arch::wasm32::u64x2_splat(x))
    }
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        Simd128(core::arch::wasm32::v128_and(self.0, o.0))
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        Simd128(core::arch::wasm32::v128_or(self.0, o.0))
    }
    #[inline(always)]
    fn and_not(self, o: Self) -> Self {
        Simd128(core::arch::wasm32::v128_andnot(self.0, o.0))
    }
    #[inline(always)]
    fn shl(self, k: u32) -> Self {
        Simd128(core::arch::wasm32::u64x2_shl(self.0, k))
    }
    #[inline(always)]
    fn shr(self, k: u32) -> Self {
        Simd128(core::arch::wasm32::u64x2_shr(self.0, k))
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Simd128(core::arch::wasm32::i64x2_add(self.0, o.0))
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Simd128(core::arch::wasm32::i64x2_sub(self.0, o.0))
    }
    #[inline(always)]
    fn nonzero(self) -> u64 {
        use core::arch::wasm32::*;
        u64::from(i64x2_bitmask(i64x2_ne(self.0, u64x2_splat(0))))
    }
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
/// measures the run), except runs after two capitals that do not start
/// with two digits and runs after `bc` that start with neither `1` nor
/// `3`: `wanted` offers those to IBAN, NINO or bech32, whose own checks
/// reject them. Every `:` with a hex digit or `:` on either side and
/// another `:` within five bytes after it is reported.
pub(crate) fn candidates(hay: &[u8], digits: bool, colons: bool, mut f: impl FnMut(Candidate)) {
    if hay.is_empty() || !(digits || colons) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    let (avx512, vbmi2, avx2) = (
        std::is_x86_feature_detected!("avx512bw"),
        std::is_x86_feature_detected!("avx512vbmi2"),
        std::is_x86_feature_detected!("avx2"),
    );
    #[cfg(not(target_arch = "x86_64"))]
    let (avx512, vbmi2, avx2) = (false, false, false);
    #[cfg(target_arch = "x86_64")]
    let gfni = avx512
        && std::is_x86_feature_detected!("avx512vbmi")
        && std::is_x86_feature_detected!("gfni");
    let fill = |base: usize, w: &mut Window, from: usize, count: usize| {
        #[cfg(target_arch = "x86_64")]
        if gfni {
            // SAFETY: AVX-512BW, VBMI and GFNI were detected above.
            unsafe { x86::fill_avx512_gfni(hay, base, w, from, count) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if avx512 {
            // SAFETY: AVX-512BW was detected above.
            unsafe { x86::fill_avx512(hay, base, w, from, count) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: AVX2 was detected above.
            unsafe { x86::fill_avx2(hay, base, w, from, count) };
            return;
        }
        let _ = (avx512, vbmi2, avx2);
        fill_body!(hay, base, w, from, count, |c| classes_vector(c));
    };
    let run_gates = |w: &Window, here: usize, g: &mut Gates| {
        #[cfg(target_arch = "x86_64")]
        if avx512 && vbmi2 {
            // SAFETY: AVX-512BW (which implies AVX-512F) and VBMI2 were
            // detected above.
            unsafe { x86::gates_avx512(w, here, g) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: AVX2 was detected above.
            unsafe { x86::gates_avx2(w, here, g) };
            return;
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        gates::<Simd128>(w, here, g);
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        gates::<u64>(w, here, g);
    };
    // `w` holds the classes of chunks `first - 1 ..= first + BATCH`;
    // chunks are classed, then gated, a batch at a time.
    let mut w = Window::default();
    let mut g = Gates::default();
    let chunks = hay.len().div_ceil(64);
    let mut first = 0;
    // Chunks at or past `chunks` stay zero (no byte in any class).
    fill(0, &mut w, 1, chunks.min(BATCH + 1));
    loop {
        let here = (chunks - first).min(BATCH);
        run_gates(&w, here, &mut g);
        if digits {
            for_each_bit(g.runs, 0, SLOTS, |j| {
                let base = (first + j - 1) * 64;
                let m = g.out[j] | long_runs(&w, j, g.long[j]);
                for_each_bit(m, base, hay.len(), |i| f(Candidate::DigitRun(i)));
            });
        }
        if colons {
            for_each_bit(g.colons, 0, SLOTS, |j| {
                colon_gate(
                    hay,
                    (first + j - 1) * 64,
                    g.colon[j],
                    (w.colon[j], w.colon[j + 1]),
                    &mut f,
                );
            });
        }
        first += BATCH;
        if first >= chunks {
            break;
        }
        let real = (chunks - first - 1).min(BATCH);
        w.shift_down(BATCH);
        fill((first + 1) * 64, &mut w, 2, real);
        w.clear(2 + real);
    }
}

/// Chunks classed and gated at a time.
const BATCH: usize = 32;
/// Window slots: the chunk before the batch, the batch, the chunk after,
/// and room for a vector of four to read past it.
const SLOTS: usize = BATCH + 6;

/// The classes of a window of chunks, one array per class, so that the
/// gates below run across chunks in vector lanes.
#[derive(Clone)]
struct Window {
    digit: [u64; SLOTS],
    lower: [u64; SLOTS],
    upper: [u64; SLOTS],
    sep: [u64; SLOTS],
    dot: [u64; SLOTS],
    punct: [u64; SLOTS],
    one_three: [u64; SLOTS],
    colon: [u64; SLOTS],
    bc: [u64; SLOTS],
}

impl Default for Window {
    fn default() -> Self {
        let z = [0; SLOTS];
        Window {
            digit: z,
            lower: z,
            upper: z,
            sep: z,
            dot: z,
            punct: z,
            one_three: z,
            colon: z,
            bc: z,
        }
    }
}

macro_rules! each_class {
    ($w:ident, |$a:ident| $body:expr) => {{
        {
            let $a = &mut $w.digit;
            $body
        }
        {
            let $a = &mut $w.lower;
            $body
        }
        {
            let $a = &mut $w.upper;
            $body
        }
        {
            let $a = &mut $w.sep;
            $body
        }
        {
            let $a = &mut $w.dot;
            $body
        }
        {
            let $a = &mut $w.punct;
            $body
        }
        {
            let $a = &mut $w.one_three;
            $body
        }
        {
            let $a = &mut $w.colon;
            $body
        }
        {
            let $a = &mut $w.bc;
            $body
        }
    }};
}

impl Window {
    #[inline(always)]
    fn set(&mut self, j: usize, c: &Classes) {
        if j < SLOTS {
            self.digit[j] = c.digit;
            self.lower[j] = c.lower;
            self.upper[j] = c.upper;
            self.sep[j] = c.sep;
            self.dot[j] = c.dot;
            self.punct[j] = c.punct;
            self.one_three[j] = c.one_three;
            self.colon[j] = c.colon;
            self.bc[j] = c.bc;
        }
    }

    #[cfg(all(test, target_arch = "x86_64"))]
    fn get(&self, j: usize) -> Classes {
        Classes {
            digit: self.digit[j],
            lower: self.lower[j],
            upper: self.upper[j],
            sep: self.sep[j],
            dot: self.dot[j],
            punct: self.punct[j],
            one_three: self.one_three[j],
            colon: self.colon[j],
            bc: self.bc[j],
        }
    }

    /// Slots `by` and `by + 1` become slots 0 and 1.
    fn shift_down(&mut self, by: usize) {
        each_class!(self, |a| {
            a[0] = a[by];
            a[1] = a[by + 1];
        });
    }

    /// Zeroes slot `j` (if any): the chunk past the end.
    fn clear(&mut self, j: usize) {
        if j < SLOTS {
            each_class!(self, |a| a[j] = 0);
        }
    }
}

/// What `gates` leaves per slot: candidates, and run starts that need one
/// more look (long runs to count).
struct Gates {
    out: [u64; SLOTS],
    long: [u64; SLOTS],
    /// Colons with another `:` at most five bytes after.
    colon: [u64; SLOTS],
    /// Bit `j` set when slot `j` has a start in `out` or `long`, and in
    /// `colon`: the loops after visit only those slots, most have none.
    runs: u64,
    colons: u64,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            out: [0; SLOTS],
            long: [0; SLOTS],
            colon: [0; SLOTS],
            runs: 0,
            colons: 0,
        }
    }
}

/// The colons in `soon` (slot bits with another `:` at most five bytes
/// after, see `gate`) that may start an IPv6 address: `network::ipv6`
/// parses at most 46 bytes from its first colon, and an address has `::`
/// or at least six colons (eight groups, or six and a dotted IPv4 tail),
/// which the `12:30:05` of a timestamp and JSON's `":` never have. The
/// same neighbour test as `ipv6` last.
#[inline(always)]
fn colon_gate(
    hay: &[u8],
    base: usize,
    soon: u64,
    (c, next): (u64, u64),
    f: &mut impl FnMut(Candidate),
) {
    for_each_bit(soon, 0, 64, |k| {
        // The colons from bit `k` on, in a u64 (a u128 shift is a library
        // call in wasm); `may_start_ipv6` reads only 46 of them.
        let from_k = match k {
            0 => c,
            _ => c >> k | next << (64 - k),
        };
        if !may_start_ipv6(from_k) {
            return;
        }
        let i = base + k;
        let hexish = |j: Option<usize>| {
            j.and_then(|j| hay.get(j))
                .is_some_and(|b| b.is_ascii_hexdigit() || *b == b':')
        };
        if i < hay.len() && (hexish(i.checked_sub(1)) || hexish(Some(i + 1))) {
            f(Candidate::Colon(i));
        }
    });
}

/// `colons` holds the colons from a candidate on (bit 0): `::`, or six
/// colons, within the 46 bytes `network::ipv6` reads.
#[inline(always)]
fn may_start_ipv6(colons: u64) -> bool {
    let w = colons & ((1 << IPV6_SPAN) - 1);
    w.count_ones() >= 6 || w & (w >> 1) != 0
}

/// The longest text `network::ipv6` parses, from its first colon on.
const IPV6_SPAN: u32 = 46;

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

/// A few chunks' masks side by side (one per vector lane), so that the
/// gates are written once and run four chunks at a time with AVX2, two
/// with simd128, one in plain u64.
pub(crate) trait Lanes: Copy {
    const N: usize;
    /// Slots `j..j + N` of `a`.
    fn at(a: &[u64; SLOTS], j: usize) -> Self;
    fn put(self, a: &mut [u64; SLOTS], j: usize);
    fn splat(x: u64) -> Self;
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    /// `self & !o`.
    fn and_not(self, o: Self) -> Self;
    fn shl(self, k: u32) -> Self;
    fn shr(self, k: u32) -> Self;
    /// Lane-wise wrapping `self + o` and `self - o`, for the carry tricks
    /// of `run_of` and `within_18` (an add is not a shift: it issues on
    /// more ports).
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    /// Bit `k` set when lane `k` is not zero.
    fn nonzero(self) -> u64;
    /// `self << k | prev >> (64 - k)`: "the byte k before", the first k
    /// bits from the chunk before.
    #[inline(always)]
    fn shl_from(self, prev: Self, k: u32) -> Self {
        self.shl(k).or(prev.shr(64 - k))
    }
    /// `self >> k | next << (64 - k)`: "the byte k after".
    #[inline(always)]
    fn shr_from(self, next: Self, k: u32) -> Self {
        self.shr(k).or(next.shl(64 - k))
    }
}

impl Lanes for u64 {
    const N: usize = 1;
    #[inline(always)]
    fn at(a: &[u64; SLOTS], j: usize) -> Self {
        a[j]
    }
    #[inline(always)]
    fn put(self, a: &mut [u64; SLOTS], j: usize) {
        a[j] = self;
    }
    #[inline(always)]
    fn splat(x: u64) -> Self {
        x
    }
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        self & o
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        self | o
    }
    #[inline(always)]
    fn and_not(self, o: Self) -> Self {
        self & !o
    }
    #[inline(always)]
    fn shl(self, k: u32) -> Self {
        self << k
    }
    #[inline(always)]
    fn shr(self, k: u32) -> Self {
        self >> k
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.wrapping_sub(o)
    }
    #[inline(always)]
    fn nonzero(self) -> u64 {
        u64::from(self != 0)
    }
}

/// Slot `j` of `a` shifted to "the byte k before": `p`, and `n` for
/// "the byte k after", taking the bits from the neighbouring slot.
#[inline(always)]
fn lp<L: Lanes>(a: &[u64; SLOTS], j: usize, k: u32) -> L {
    L::at(a, j).shl_from(L::at(a, j - 1), k)
}

#[inline(always)]
fn ln<L: Lanes>(a: &[u64; SLOTS], j: usize, k: u32) -> L {
    L::at(a, j).shr_from(L::at(a, j + 1), k)
}

#[inline(always)]
fn pair_n<L: Lanes>(x: L, nx: L, k: u32) -> L {
    x.shr_from(nx, k)
}

/// Bit i is set when some bit of `x` (then `nx`, the next chunk) is set
/// at i + 1 ..= i + 18. Within the lane by doubling; `nx` only reaches
/// bits 46.., and only its lowest set bit matters there (bit p sets
/// 46 + p ..= 63): moved up, `u | -u` sets every bit from it on. Seven
/// shifts where doubling on the pair takes ten.
#[inline(always)]
fn within_18<L: Lanes>(x: L, nx: L) -> L {
    let y = x.shr(1); // offset 1
    let a = y.or(y.shr(1)); // 1..=2
    let b = a.or(a.shr(2)); // 1..=4
    let c = b.or(b.shr(4)); // 1..=8
    let d = c.or(c.shr(8)); // 1..=16
    let lo = d.or(a.shr(16)); // 1..=18
    let u = nx.shl(46);
    lo.or(u).or(L::splat(0).sub(u))
}

/// Bit i is set when every bit of `x` (then `nx`) at i ..= i + n - 1 is
/// set (n <= 64). Within the lane by halving with ones shifted in from
/// above (`shr_from` a constant: one funnel shift, or a shift and an or
/// of a constant); from `nx`, bit i needs its i + n - 64 lowest bits
/// set: its trailing ones (`nx & !(nx + 1)`) moved up past the bits that
/// need none.
#[inline(always)]
fn run_of<L: Lanes>(x: L, nx: L, n: u32, steps: &[u32]) -> L {
    let ones = L::splat(u64::MAX);
    let mut lo = x;
    for &k in steps {
        lo = lo.and(lo.shr_from(ones, k));
    }
    let trailing = nx.and_not(nx.add(L::splat(1)));
    let free = 65 - n;
    lo.and(trailing.shl(free).or(L::splat((1 << free) - 1)))
}

/// Bit i is set when every bit of `x` (then `nx`) at i ..= i + 25 is set:
/// a base58 address's 26 characters at least.
#[inline(always)]
fn run_of_26<L: Lanes>(x: L, nx: L) -> L {
    run_of(x, nx, 26, &[1, 2, 4, 8, 10]) // 0..=1, 3, 7, 15, 25
}

/// Bit i is set when every bit of `x` (then `nx`) at i ..= i + 35 is set:
/// a word too long for a base58 address (at most 35 characters), which
/// `network::bitcoin` rejects whatever the word holds.
#[inline(always)]
fn run_of_36<L: Lanes>(x: L, nx: L) -> L {
    run_of(x, nx, 36, &[1, 2, 4, 8, 16, 4]) // 0..=1, 3, 7, 15, 31, 35
}

/// Bit i is set when every bit of `x` (then `nx`) at i ..= i + 8 is set:
/// nine run bytes, every one of them (a UUID's `1600-46d5` has them at
/// every other offset).
#[inline(always)]
fn run_of_9<L: Lanes>(x: L, nx: L) -> L {
    run_of(x, nx, 9, &[1, 2, 4, 1]) // 0..=1, 3, 7, 8
}

/// Bytes of a digit run in slots `j..`: digits, and single separators
/// between digits; and the same for the slots after. The last byte of the
/// slot after is counted as one (its successor is unknown), which only
/// lets more through.
#[inline(always)]
fn run_bytes<L: Lanes>(w: &Window, j: usize) -> (L, L) {
    let d = L::at(&w.digit, j);
    let nd = L::at(&w.digit, j + 1);
    let run = d.or(L::at(&w.sep, j)
        .and(lp(&w.digit, j, 1))
        .and(ln(&w.digit, j, 1)));
    let next_run = nd.or(L::at(&w.sep, j + 1)
        .and(lp(&w.digit, j + 1, 1))
        .and(nd.shr(1).or(L::splat(1 << 63))));
    (run, next_run)
}

/// The run starts of every slot `1..=here` that pass the gate of some
/// numeric detector (see `super::digits::wanted`, whose conditions these
/// over-approximate with whole-mask shifts). Branch-free and across
/// slots, in vector lanes; whether a chunk has a start is as good as
/// random, and a mispredicted branch costs more than the shifts.
#[inline(always)]
fn gates<L: Lanes>(w: &Window, here: usize, g: &mut Gates) {
    let mut j = 1;
    let (mut runs, mut colons) = (0, 0);
    while j <= here.min(BATCH) {
        let (o, l) = gate::<L>(w, j);
        o.put(&mut g.out, j);
        l.put(&mut g.long, j);
        let c = colon_soon::<L>(w, j);
        c.put(&mut g.colon, j);
        runs |= o.or(l).nonzero() << j;
        colons |= c.nonzero() << j;
        j += L::N;
    }
    // Lanes past `here` hold whatever the window's stale slots gave.
    let upto = (2u64 << here.min(BATCH)) - 2;
    g.runs = runs & upto;
    g.colons = colons & upto;
}

#[inline(always)]
fn gate<L: Lanes>(w: &Window, j: usize) -> (L, L) {
    let pr = |x: &[u64; SLOTS], k: u32| lp::<L>(x, j, k);
    let d = L::at(&w.digit, j);
    let pd2 = pr(&w.digit, 2);
    let psep = pr(&w.sep, 1);
    // After `bc` (bech32; `cb`, `bb`, `cc` as well, see `Classes::bc`);
    // every other lower-case letter glues the run into a word, which
    // every numeric detector rejects.
    let bc = pr(&w.bc, 1).and(pr(&w.bc, 2));
    let starts = d
        .and_not(pr(&w.digit, 1))
        .and_not(psep.and(pd2))
        .and_not(pr(&w.lower, 1).and_not(bc));
    let alnum = |k: usize| {
        L::at(&w.digit, k)
            .or(L::at(&w.lower, k))
            .or(L::at(&w.upper, k))
    };
    let (a_prev, a, a_next) = (alnum(j - 1), alnum(j), alnum(j + 1));
    let pa = |k: u32| a.shl(k).or(a_prev.shr(64 - k));
    let pu2 = pr(&w.upper, 2);
    // IBAN and NINO runs start with two digits (check digits, or the
    // NINO's six): a SKU's `DM8B9…` starts no run either wants.
    let two = d.and(ln::<L>(&w.digit, j, 1));
    // Runs that skip the gates after them. A `(` or `+` before a run
    // needs no entry here: what follows one and matters is a phone
    // number (ten digits or more, or punctuation within 18 bytes), a
    // card or id (nine digits), an IPv4 address or a base58 address, and
    // each of those has its own gate below (base64's `+` glues many
    // runs that none of them wants).
    // IBAN "DE89…", NINO "AB123456C": two capitals at a word start.
    let sure = (pr(&w.upper, 1).and(pu2).and_not(pa(3)).and(two))
        // NINO "AB 12 34 56 C".
        .or(psep.and(pu2).and(pr(&w.upper, 3)).and_not(pa(4)).and(two))
        // Bech32 "bc1…" at a word start (`1` or `3`: one class).
        .or(bc.and_not(pa(3)).and(L::at(&w.one_three, j)));
    // Nine or more digits (cards, SSN, ITIN, SIN, Aadhaar, long phone
    // runs) take at least nine run bytes; the few runs that long (dates
    // and times among them) have their digits counted after.
    let (run, next_run) = run_bytes::<L>(w, j);
    // An ISO date `2025-07-05` (a separator at 4 and 7, the run over by
    // 10) has eight digits: every JSON timestamp, so dropped here rather
    // than counted after.
    let (seps, next_seps) = (run.and_not(d), next_run.and_not(L::at(&w.digit, j + 1)));
    let date = pair_n(seps, next_seps, 4)
        .and(pair_n(seps, next_seps, 7))
        .and_not(pair_n(run, next_run, 10));
    let long = starts
        .and_not(sure)
        .and_not(date)
        .and(run_of_9(run, next_run));
    // Runs with too few digits for `long` may still be phone numbers or
    // the like, so `rest` keeps them.
    let rest = starts.and_not(sure).and_not(pa(1));
    // Base58 "1…"/"3…" at a word start, 26 to 35 letters or digits: the
    // hex digests (SHA-1, SHA-256) that start with `1` or `3` are longer.
    let btc = rest
        .and(L::at(&w.one_three, j))
        .and(run_of_26(a, a_next))
        .and_not(run_of_36(a, a_next));
    // A phone number whose first run is short goes on past a `.`, `(` or
    // `)` within its first 18 bytes; never after `:` or a decimal point.
    let pdot = pr(&w.dot, 1);
    let phone = rest
        .and_not(pr(&w.colon, 1))
        .and_not(pdot.and(pd2))
        .and(within_18(L::at(&w.punct, j), L::at(&w.punct, j + 1)));
    // IPv4: a dot within the first four bytes, and a third one within
    // twelve.
    let nd = |k: u32| ln::<L>(&w.dot, j, k);
    let ip = rest
        .and_not(pdot)
        .and(nd(1).or(nd(2)).or(nd(3)))
        .and(dot_5_to_12(L::at(&w.dot, j), L::at(&w.dot, j + 1)));
    let out = starts.and(sure).or(btc).or(phone).or(ip);
    (out, long.and_not(out))
}

/// Bit i is set when some bit of `x` (then `nx`) is set at i + 5 ..= i + 12.
#[inline(always)]
fn dot_5_to_12<L: Lanes>(x: L, nx: L) -> L {
    let (lo, hi) = (pair_n(x, nx, 5), nx.shr(5)); // offset 5
    let (lo, hi) = (lo.or(pair_n(lo, hi, 1)), hi.or(hi.shr(1))); // 5..=6
    let (lo, hi) = (lo.or(pair_n(lo, hi, 2)), hi.or(hi.shr(2))); // 5..=8
    lo.or(pair_n(lo, hi, 4)) // 5..=12
}

/// The first colon of an IPv6 address (the only one `network::ipv6`
/// starts from) has the next one at most a four-digit group away; JSON's
/// `"total":12.5` has none.
#[inline(always)]
fn colon_soon<L: Lanes>(w: &Window, j: usize) -> L {
    let nc = |k: u32| ln::<L>(&w.colon, j, k);
    L::at(&w.colon, j).and(nc(1).or(nc(2)).or(nc(3)).or(nc(4)).or(nc(5)))
}

/// The starts in `long` (slot `j`) whose runs have nine digits or more.
#[inline(always)]
fn long_runs(w: &Window, j: usize, long: u64) -> u64 {
    if long == 0 {
        return 0;
    }
    let (run, next_run) = run_bytes::<u64>(w, j);
    let runs = u128::from(run) | u128::from(next_run) << 64;
    let digits = u128::from(w.digit[j]) | u128::from(w.digit[j + 1]) << 64;
    let mut out = 0;
    for_each_bit(long, 0, 64, |i| {
        let len = (!(runs >> i)).trailing_zeros();
        let mask = if len >= 64 { u64::MAX } else { (1 << len) - 1 };
        // A run reaching past the next chunk is long enough anyway.
        if len >= 64 || ((digits >> i) as u64 & mask).count_ones() >= 9 {
            out |= 1 << i;
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tuning aid, run by hand: how many digit-run and colon candidates
    /// the gates let through, and how many runs some numeric detector
    /// may accept, over the files named in `VEIL_CLASS_STATS`
    /// (colon-separated; the throughput corpus is written by
    /// `cargo run --release -p veil-eval -- corpus clean >clean.json`):
    /// `VEIL_CLASS_STATS=clean.json cargo test --release -p veil-engine
    /// class_stats -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn class_stats() {
        let files = std::env::var("VEIL_CLASS_STATS").unwrap_or_default();
        for name in files.split(':').filter(|n| !n.is_empty()) {
            let hay = std::fs::read(name).expect("corpus");
            let (mut runs, mut offered, mut colons) = (0, 0, 0);
            candidates(&hay, true, true, |c| match c {
                Candidate::DigitRun(i) => {
                    runs += 1;
                    let run = crate::detectors::measure_run(&hay, i);
                    if crate::detectors::wanted(&hay, &run) != 0 {
                        offered += 1;
                    }
                }
                Candidate::Colon(_) => colons += 1,
            });
            println!(
                "{name}: {runs} digit-run candidates, {offered} offered to a detector, \
                 {colons} colon candidates"
            );
        }
    }

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

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_and_scalar_classes_agree_on_every_byte() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut chunk = [0u8; 64];
        for start in (0..256).step_by(64) {
            for (i, b) in chunk.iter_mut().enumerate() {
                *b = (start + i) as u8;
            }
            // SAFETY: AVX2 was detected above.
            let avx2 = unsafe { x86::classes_avx2(&chunk) };
            assert_eq!(avx2, classes_scalar(&chunk), "bytes {start}..");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_and_scalar_classes_agree_on_every_byte() {
        if !std::is_x86_feature_detected!("avx512bw") {
            return;
        }
        let mut chunk = [0u8; 64];
        for start in (0..256).step_by(64) {
            for (i, b) in chunk.iter_mut().enumerate() {
                *b = (start + i) as u8;
            }
            let mut w = Window::default();
            // SAFETY: AVX-512BW was detected above.
            unsafe { x86::classes_avx512(&chunk, &mut w, 3) };
            assert_eq!(w.get(3), classes_scalar(&chunk), "bytes {start}..");
        }
    }

    /// The GFNI fill against the scalar classes, slot by slot, over
    /// random bytes (every byte value, and runs of the classed ones) with
    /// group edges and short ends at every offset.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn gfni_fill_and_scalar_classes_agree() {
        if !(std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vbmi")
            && std::is_x86_feature_detected!("gfni"))
        {
            return;
        }
        let mut seed = 0x5851_f42d_4c95_7f2d;
        const CLASSED: &[u8] = b"0123456789abcxyzABCXYZ -.():13b";
        for round in 0..200 {
            let len = crate::test_rng::xorshift(&mut seed) as usize % (64 * 40);
            let hay: Vec<u8> = (0..len)
                .map(|_| {
                    let r = crate::test_rng::xorshift(&mut seed);
                    match r % 3 {
                        0 => r as u8 >> 1 ^ (r >> 40) as u8,
                        _ => CLASSED[(r >> 8) as usize % CLASSED.len()],
                    }
                })
                .collect();
            let from = 1 + round % 2;
            let count = (len.div_ceil(64) + round % 3).min(SLOTS - from);
            let mut w = random_window(&mut seed);
            // SAFETY: the features were detected above.
            unsafe { x86::fill_avx512_gfni(&hay, 0, &mut w, from, count) };
            for k in 0..count {
                let mut chunk = [0u8; 64];
                let part = hay.get(64 * k..).unwrap_or_default();
                let n = part.len().min(64);
                chunk[..n].copy_from_slice(&part[..n]);
                assert_eq!(
                    w.get(from + k),
                    classes_scalar(&chunk),
                    "round {round} chunk {k}"
                );
            }
        }
    }

    /// A window of pseudo-random masks, dense enough that every gate fires.
    fn random_window(seed: &mut u64) -> Window {
        let mut w = Window::default();
        let mut next = || crate::test_rng::xorshift(seed);
        each_class!(w, |a| {
            for x in a.iter_mut() {
                // Sparse and dense masks both.
                *x = next() & next() | next() & next() & next();
            }
        });
        w
    }

    /// `runs` and `colons` name exactly the slots with something in them.
    fn summaries_hold(g: &Gates, here: usize) {
        for j in 0..64 {
            let inside = (1..=here).contains(&j);
            let bit = |m: u64| m >> j & 1 == 1;
            assert_eq!(bit(g.runs), inside && g.out[j] | g.long[j] != 0, "runs {j}");
            assert_eq!(bit(g.colons), inside && g.colon[j] != 0, "colons {j}");
        }
    }

    #[test]
    fn u64_gates_summaries_hold() {
        let mut seed = 0x2545_f491_4f6c_dd1d;
        for here in [1, 2, 3, 5, 9, 31, 32] {
            for _ in 0..200 {
                let mut w = random_window(&mut seed);
                // Empty slots (no byte in any class) now and then, so that
                // both answers of every summary bit occur.
                let empty = crate::test_rng::xorshift(&mut seed);
                each_class!(w, |a| {
                    for (j, x) in a.iter_mut().enumerate() {
                        if empty >> j & 1 == 1 {
                            *x = 0;
                        }
                    }
                });
                let mut g = Gates::default();
                gates::<u64>(&w, here, &mut g);
                summaries_hold(&g, here);
            }
        }
    }

    /// The vector gates against the u64 ones over random windows.
    #[cfg(target_arch = "x86_64")]
    fn gates_agree(vector: unsafe fn(&Window, usize, &mut Gates)) {
        let mut seed = 0x2545_f491_4f6c_dd1d;
        for here in [1, 2, 3, 5, 9, 31, 32] {
            for _ in 0..200 {
                let w = random_window(&mut seed);
                let (mut a, mut b) = (Gates::default(), Gates::default());
                gates::<u64>(&w, here, &mut a);
                // SAFETY: the callers checked the CPU for `vector`'s features.
                unsafe { vector(&w, here, &mut b) };
                assert_eq!(a.out[1..=here], b.out[1..=here]);
                assert_eq!(a.long[1..=here], b.long[1..=here]);
                assert_eq!(a.colon[1..=here], b.colon[1..=here]);
                assert_eq!((a.runs, a.colons), (b.runs, b.colons));
                summaries_hold(&a, here);
            }
        }
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[test]
    fn simd128_and_scalar_gates_agree() {
        let mut seed = 0x2545_f491_4f6c_dd1d;
        for here in [1, 2, 3, 5, 9, 31, 32] {
            for _ in 0..200 {
                let w = random_window(&mut seed);
                let (mut a, mut b) = (Gates::default(), Gates::default());
                gates::<u64>(&w, here, &mut a);
                gates::<Simd128>(&w, here, &mut b);
                assert_eq!(a.out[1..=here], b.out[1..=here]);
                assert_eq!(a.long[1..=here], b.long[1..=here]);
                assert_eq!(a.colon[1..=here], b.colon[1..=here]);
                assert_eq!((a.runs, a.colons), (b.runs, b.colons));
                summaries_hold(&a, here);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_and_scalar_gates_agree() {
        if std::is_x86_feature_detected!("avx2") {
            gates_agree(x86::gates_avx2);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_and_scalar_gates_agree() {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vbmi2")
        {
            gates_agree(x86::gates_avx512);
        }
    }

    /// The u64 gates against byte-by-byte definitions, for one slot.
    #[test]
    fn lane_helpers_mean_what_they_say() {
        let mut seed = 0x1234_5678_9abc_def1;
        for _ in 0..500 {
            let w = random_window(&mut seed);
            // Sparse masks for the `any` helpers, dense ones (runs of
            // ones long enough for `all`) too.
            let dense = crate::test_rng::xorshift(&mut seed) & 1 == 1;
            let (x, nx) = match dense {
                false => (w.punct[3], w.punct[4]),
                true => (
                    !(w.punct[3] & w.dot[3] & w.digit[3]),
                    !(w.punct[4] & w.dot[4] & w.digit[4]),
                ),
            };
            let bit = |i: usize| -> bool {
                if i < 64 {
                    x >> i & 1 == 1
                } else if i < 128 {
                    nx >> (i - 64) & 1 == 1
                } else {
                    false
                }
            };
            let within = within_18::<u64>(x, nx);
            let all26 = run_of_26::<u64>(x, nx);
            let dots = dot_5_to_12::<u64>(x, nx);
            let all9 = run_of_9::<u64>(x, nx);
            let all36 = run_of_36::<u64>(x, nx);
            for i in 0..64 {
                assert_eq!(
                    within >> i & 1 == 1,
                    (i + 1..=i + 18).any(bit),
                    "within {i}"
                );
                assert_eq!(all26 >> i & 1 == 1, (i..=i + 25).all(bit), "all26 {i}");
                assert_eq!(dots >> i & 1 == 1, (i + 5..=i + 12).any(bit), "dots {i}");
                assert_eq!(all9 >> i & 1 == 1, (i..=i + 8).all(bit), "all9 {i}");
                assert_eq!(all36 >> i & 1 == 1, (i..=i + 35).all(bit), "all36 {i}");
            }
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
                let colon_at = |j: usize| hay.get(j) == Some(&b':');
                let colon_soon = (i + 1..i + 6).any(colon_at);
                let span = i..i + IPV6_SPAN as usize;
                let shaped = span.clone().filter(|&j| colon_at(j)).count() >= 6
                    || span
                        .take(IPV6_SPAN as usize - 1)
                        .any(|j| colon_at(j) && colon_at(j + 1));
                b == b':' && colon_soon && shaped && (ok(i.checked_sub(1)) || ok(Some(i + 1)))
            })
            .map(|(i, _)| Candidate::Colon(i))
            .collect();
        assert_eq!(got, want);
        // A timestamp's colons are not an address's.
        let hay = br#"{"t":"2025-07-05T20:36:07Z","note":"no address in the words that follow"}"#;
        let mut got = Vec::new();
        candidates(hay, false, true, |c| got.push(c));
        assert_eq!(got, []);
    }

    /// Every colon `network::ipv6` accepts is a candidate, over text made
    /// of address pieces, timestamps and JSON around chunk edges.
    #[test]
    fn every_ipv6_start_is_a_candidate() {
        const PIECES: &[&str] = &[
            "fe80::1",
            "::1",
            "2001:db8::8a2e:370:7334",
            "1:2:3:4:5:6:7:8",
            "::ffff:192.0.2.1",
            "1:2:3:4:5:6:1.2.3.4",
            "a:b:c:d:e:f:0:1",
            "12:30:05",
            "\":\"",
            ":",
            "::",
            "ff",
            "0",
            "1.2",
            ".",
            " ",
            "\"",
            "Z",
            "g",
            "2025-07-05T",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for round in 0..400 {
            let mut hay = vec![b' '; round % 64];
            while hay.len() < 300 {
                let k = crate::test_rng::xorshift(&mut seed) as usize % PIECES.len();
                hay.extend_from_slice(PIECES[k].as_bytes());
            }
            let mut got = Vec::new();
            candidates(&hay, false, true, |c| got.push(c));
            let cx = crate::detectors::Cx {
                hay: &hay,
                field: b"",
                keywords: &[],
                firsts: None,
            };
            for (i, _) in hay.iter().enumerate().filter(|&(_, &b)| b == b':') {
                if crate::detectors::network::ipv6(&cx, i).is_some() {
                    assert!(
                        got.contains(&Candidate::Colon(i)),
                        "{i} in {:?}",
                        String::from_utf8_lossy(&hay)
                    );
                }
            }
        }
    }
}
