//! The shared literal prefilter: finds every occurrence of every anchor and
//! context-keyword spelling of the catalogue in one pass.
//!
//! aho-corasick with a few hundred patterns has no vector prefilter (and
//! none at all in wasm), so it walks its DFA byte by byte. This is a
//! Teddy-style fingerprint matcher instead: every anchor is represented by
//! one window of up to 4 bytes (the rarest inside it by an English-bigram
//! and JSON byte model, see `choose_windows`), the windows are packed into
//! 24 buckets (`SETS` of 8), and for each bucket and window position the
//! tables say which bytes may occur there. Keyword spellings (password,
//! Password, PASSWORD, dbPassword ...) are fingerprinted case-folded, in a
//! window inside one word, so all spellings of a keyword share one window
//! in the folded set; exact anchors (`ghp_`, `AKIA`) keep their case.
//!
//! Two table forms, tested against the same per-position rule:
//! - nibble tables, two 16-entry lookups per byte (`pshufb` with
//!   SSSE3/AVX2/AVX-512BW, `i8x16.swizzle` in wasm simd128), which let
//!   through a nibble rectangle around each bucket's bytes;
//! - whole-byte tables, one 128-entry lookup per byte (`vpermi2b`,
//!   AVX-512 VBMI; 64 entries, `vpermb`, for the folded set), exact per
//!   byte (up to the 0x80 bit), with windows packed into the buckets by
//!   their own exact-byte cost (`assign_byte_buckets`). At three of the
//!   four window positions the exact sets are looked up without case in
//!   64 entries (`vpermb`, half the shuffle-port work of `vpermi2b`):
//!   positions through per MiB 2,232 -> 2,849 on clean (4,362 -> 5,226
//!   on mixed), but the pass is bound by that port.
//!
//! Only positions whose bucket bits survive all window bytes are verified:
//! exact 2-byte bitmaps of the window's first and last two bytes, then a
//! hash of the exact window bytes that names the anchors spelled with
//! them, compared in full (first 8 bytes as one word). Portable scalar paths compute the
//! same masks from the same tables; tests check every path against them
//! and the matches against a naive search.

/// Number of window bytes per fingerprint. On the 1 MiB clean corpus of
/// `veil-eval` with the whole catalogue (3 sets), 3-byte windows let
/// 21,204 positions through the nibble tables, 4-byte ones 8,540; the
/// fourth lookup costs less than the verifications it saves.
const WIDTH: usize = 4;

/// Table sets of 8 buckets each. Each set costs two shuffles (nibbles) or
/// one lookup (whole bytes) per window byte and block; more buckets let
/// fewer positions through to the scalar verification. Clean corpus, full
/// catalogue, 4-byte windows: 2 sets (one exact, one folded) let 93,735
/// positions through, 3 sets (two exact) 8,540 (4,427 after the local
/// search of `assign_buckets`; whole-byte tables: 5,258
/// packed like the nibble tables, 2,232 packed by exact-byte cost). With 3-byte windows and no folded set, 2 sets let 50,115
/// through.
const SETS: usize = 3;

/// The last `FOLDED_SETS` table sets hold the keyword buckets, whose
/// windows are matched against case-folded bytes (see `fold`): all
/// spellings of a keyword (password, Password, PASSWORD) are one window.
const FOLDED_SETS: usize = 1;

/// Index of byte `b` in `AnchorSet::folded_bytes`: bits 0-4 of `b` and,
/// as bit 5, bit 6 inverted; the same for `b` and `fold(b)`, different for
/// any two folded ASCII bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
const fn folded_index(b: u8) -> usize {
    ((b & 0x1f) | (!b >> 1 & 0x20)) as usize
}

/// Window positions where the VBMI pass looks the exact sets up without
/// case (`AnchorSet::caseless_bytes`).
#[cfg(target_arch = "x86_64")]
const CASELESS: [bool; WIDTH] = [true, false, true, true];

/// Whether table set `s` matches folded bytes.
#[inline]
const fn folded_set(s: usize) -> bool {
    s >= SETS - FOLDED_SETS
}

/// Letter frequencies of English text (percent), from Peter Norvig,
/// "English Letter Frequency Counts: Mayzner Revisited" (2013, Google
/// Books n-grams).
#[allow(clippy::approx_constant)] // 6.28 is the share of `r`, not tau
const LETTER_PERCENT: [(u8, f64); 26] = [
    (b'e', 12.49),
    (b't', 9.28),
    (b'a', 8.04),
    (b'o', 7.64),
    (b'i', 7.57),
    (b'n', 7.23),
    (b's', 6.51),
    (b'r', 6.28),
    (b'h', 5.05),
    (b'l', 4.07),
    (b'd', 3.82),
    (b'c', 3.34),
    (b'u', 2.73),
    (b'm', 2.51),
    (b'f', 2.40),
    (b'p', 2.14),
    (b'g', 1.87),
    (b'w', 1.68),
    (b'y', 1.66),
    (b'b', 1.48),
    (b'v', 1.05),
    (b'k', 0.54),
    (b'x', 0.23),
    (b'j', 0.16),
    (b'q', 0.12),
    (b'z', 0.09),
];

/// The commonest English bigrams (percent of all bigrams), same source.
/// A window containing one of these is much likelier than its letters
/// alone suggest (`ver`, `cre`, `ent` ...).
const BIGRAM_PERCENT: [(&[u8; 2], f64); 50] = [
    (b"th", 3.56),
    (b"he", 3.07),
    (b"in", 2.43),
    (b"er", 2.05),
    (b"an", 1.99),
    (b"re", 1.85),
    (b"on", 1.76),
    (b"at", 1.49),
    (b"en", 1.45),
    (b"nd", 1.35),
    (b"ti", 1.34),
    (b"es", 1.34),
    (b"or", 1.28),
    (b"te", 1.20),
    (b"of", 1.17),
    (b"ed", 1.17),
    (b"is", 1.13),
    (b"it", 1.12),
    (b"al", 1.09),
    (b"ar", 1.07),
    (b"st", 1.05),
    (b"to", 1.04),
    (b"nt", 1.04),
    (b"ng", 0.95),
    (b"se", 0.93),
    (b"ha", 0.93),
    (b"as", 0.87),
    (b"ou", 0.87),
    (b"io", 0.83),
    (b"le", 0.83),
    (b"ve", 0.83),
    (b"co", 0.79),
    (b"me", 0.79),
    (b"de", 0.76),
    (b"hi", 0.76),
    (b"ri", 0.73),
    (b"ro", 0.73),
    (b"ic", 0.70),
    (b"ne", 0.69),
    (b"ea", 0.69),
    (b"ra", 0.69),
    (b"ce", 0.65),
    (b"li", 0.62),
    (b"ch", 0.60),
    (b"ll", 0.58),
    (b"be", 0.58),
    (b"ma", 0.57),
    (b"si", 0.55),
    (b"om", 0.55),
    (b"ur", 0.54),
];

/// Expected share (percent) of a byte in JSON bodies: about two thirds
/// English-like text (letter shares above), the rest JSON syntax, digits,
/// hex and base64 identifiers, `_`/`-` in keys, UUIDs and dates. Only the
/// ranking matters: it picks each anchor's rarest window and groups
/// windows into buckets.
fn typical_frequency(b: u8) -> f64 {
    if let Some(&(_, p)) = LETTER_PERCENT.iter().find(|(c, _)| *c == b) {
        return 0.6 * p + if b"abcdef".contains(&b) { 0.8 } else { 0.0 };
    }
    if let Some(&(_, p)) = LETTER_PERCENT
        .iter()
        .find(|(c, _)| *c == b.to_ascii_lowercase())
    {
        // Capitals: sentence starts, names, upper-case codes, base64.
        return 0.06 * p + 0.3;
    }
    match b {
        b'0'..=b'9' => 2.5,
        b' ' => 8.0,
        b'"' => 6.0,
        b':' | b',' => 2.0,
        b'-' | b'.' | b'_' => 1.0,
        b'/' | b'{' | b'}' => 0.4,
        b'=' | b'+' | b'[' | b']' => 0.2,
        _ => 0.05,
    }
}

/// How much likelier the pair `a b` is than its bytes apart (1 when the
/// pair is not among the commonest English bigrams).
fn pair_lift(a: u8, b: u8) -> f64 {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    let letter = |c: u8| LETTER_PERCENT.iter().find(|(l, _)| *l == c).map(|x| x.1);
    match BIGRAM_PERCENT.iter().find(|(g, _)| **g == [a, b]) {
        Some(&(_, p)) => match (letter(a), letter(b)) {
            // Share of the pair over the share independent letters would
            // have (letter percents sum to 100).
            (Some(x), Some(y)) => (p * 100.0 / (x * y)).max(1.0),
            _ => 1.0,
        },
        None => 1.0,
    }
}

/// `typical_frequency` and `pair_lift` as tables, computed once per
/// process (`Model::get`): window choice and bucket packing ask for them
/// thousands of times per `AnchorSet::new`.
struct Model {
    frequency: [f64; 256],
    /// `pair_lift` of two small letters, `[a - b'a'][b - b'a']`.
    lift: [[f64; 26]; 26],
}

impl Model {
    fn get() -> &'static Model {
        static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
        MODEL.get_or_init(Model::new)
    }

    fn new() -> Model {
        let mut lift = [[1.0; 26]; 26];
        for &(g, _) in &BIGRAM_PERCENT {
            lift[usize::from(g[0] - b'a')][usize::from(g[1] - b'a')] = pair_lift(g[0], g[1]);
        }
        Model {
            frequency: std::array::from_fn(|b| typical_frequency(b as u8)),
            lift,
        }
    }

    fn pair_lift(&self, a: u8, b: u8) -> f64 {
        let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
        if a.is_ascii_lowercase() && b.is_ascii_lowercase() {
            self.lift[usize::from(a - b'a')][usize::from(b - b'a')]
        } else {
            1.0
        }
    }

    /// Expected rate of `window`, with both cases of each letter when
    /// `fold_case`: the product of the bytes' frequencies (both cases
    /// summed) and the lifts of neighbouring pairs (case-blind).
    fn window_cost(&self, window: &[u8], fold_case: bool) -> f64 {
        let mut unigram = 1.0;
        for &b in window {
            unigram *= if fold_case && b.is_ascii_alphabetic() {
                self.frequency[usize::from(b.to_ascii_lowercase())]
                    + self.frequency[usize::from(b.to_ascii_uppercase())]
            } else {
                self.frequency[usize::from(b)]
            };
        }
        let mut lift = 1.0;
        for w in window.windows(2) {
            lift *= self.pair_lift(w[0], w[1]);
        }
        unigram * lift
    }
}

/// One anchor to find, and how it is fingerprinted.
pub struct AnchorSpec<'a> {
    pub bytes: &'a [u8],
    /// Letters may occur in either case in traffic that should match this
    /// anchor's siblings (keyword spellings): fingerprint both cases so all
    /// spellings share one window.
    pub fold_case: bool,
}

/// Case folding of the vector pass for keyword buckets and of their
/// windows: sets bit 5, which maps ASCII capitals to small letters (and some
/// punctuation onto other punctuation, which only widens the prefilter).
#[inline]
fn fold(b: u8) -> u8 {
    b | 0x20
}

/// One anchor's window: its bytes (folded when `folded`) and offset.
struct Choice {
    window: Vec<u8>,
    offset: usize,
    folded: bool,
}

/// Whether `bytes[o..o + w]` lies inside one word of a keyword spelling:
/// no separator, no lower-to-upper (camelCase) step, so that the snake,
/// camel, upper and capitalised spellings of a keyword can share it.
fn inside_word(bytes: &[u8], o: usize, w: usize) -> bool {
    let part = &bytes[o..o + w];
    part.iter()
        .all(|b| b.is_ascii_alphanumeric() || !b.is_ascii())
        && part
            .windows(2)
            .all(|p| !(p[0].is_ascii_lowercase() && p[1].is_ascii_uppercase()))
}

/// Picks every anchor's window: the rarest by the English/JSON model among
/// the allowed ones; keyword spellings are folded and keep to one word.
/// A second round moves anchors onto windows other anchors already use
/// when they contain one, so fewer distinct windows share the buckets.
fn choose_windows(anchors: &[AnchorSpec]) -> Vec<Option<Choice>> {
    let model = Model::get();
    let view = |a: &AnchorSpec| -> Vec<u8> {
        if a.fold_case {
            a.bytes.iter().map(|&b| fold(b)).collect()
        } else {
            a.bytes.to_vec()
        }
    };
    let offsets = |a: &AnchorSpec| -> Vec<usize> {
        let width = a.bytes.len().min(WIDTH);
        let all: Vec<usize> = (0..=a.bytes.len() - width).collect();
        if !a.fold_case {
            return all;
        }
        let words: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&o| inside_word(a.bytes, o, width))
            .collect();
        if words.is_empty() {
            all
        } else {
            words
        }
    };
    let cost = |a: &AnchorSpec, o: usize| -> f64 {
        let width = a.bytes.len().min(WIDTH);
        model.window_cost(&a.bytes[o..o + width], a.fold_case)
    };
    // The first offset of least cost, as `Iterator::min_by` picks it.
    let cheapest = |a: &AnchorSpec, offsets: &mut dyn Iterator<Item = usize>| {
        let mut best: Option<(usize, f64)> = None;
        for o in offsets {
            let c = cost(a, o);
            if best.is_none_or(|(_, b)| c.total_cmp(&b).is_lt()) {
                best = Some((o, c));
            }
        }
        best.map(|(o, _)| o)
    };
    // A window of up to `WIDTH` bytes and whether it is folded, as one word.
    let window_id = |w: &[u8], folded: bool| -> u64 {
        let mut id = (w.len() as u64) << 40 | u64::from(folded) << 32;
        for (i, &b) in w.iter().enumerate() {
            id |= u64::from(b) << (8 * i);
        }
        id
    };
    let first: Vec<Option<usize>> = anchors
        .iter()
        .map(|a| {
            if a.bytes.len() < 2 {
                return None;
            }
            cheapest(a, &mut offsets(a).into_iter())
        })
        .collect();
    let used: std::collections::HashSet<u64> = anchors
        .iter()
        .zip(&first)
        .filter_map(|(a, o)| {
            let o = (*o)?;
            let width = a.bytes.len().min(WIDTH);
            Some(window_id(&view(a)[o..o + width], a.fold_case))
        })
        .collect();
    anchors
        .iter()
        .zip(&first)
        .map(|(a, o)| {
            let own = (*o)?;
            let width = a.bytes.len().min(WIDTH);
            let v = view(a);
            let shared = cheapest(
                a,
                &mut offsets(a)
                    .into_iter()
                    .filter(|&x| used.contains(&window_id(&v[x..x + width], a.fold_case))),
            );
            let offset = shared.unwrap_or(own);
            Some(Choice {
                window: v[offset..offset + width].to_vec(),
                offset,
                folded: a.fold_case,
            })
        })
        .collect()
}

/// A compiled set of anchors. Immutable, shared by all scans.
#[derive(Debug, Clone)]
pub struct AnchorSet {
    patterns: Vec<Box<[u8]>>,
    /// Nibble tables: `[position][set]`, set `s` holds buckets `8s..8s+8`.
    lo: [[[u8; 16]; SETS]; WIDTH],
    hi: [[[u8; 16]; SETS]; WIDTH],
    /// Whole-byte tables `[position][set][byte & 0x7f]`, for CPUs with a
    /// 128-entry byte lookup (AVX-512 VBMI): exact per byte, where the
    /// nibble tables let through every byte of a nibble rectangle. Only
    /// x86_64 has such a lookup; elsewhere the tests still hold the byte
    /// rule to a naive search.
    #[cfg(any(test, target_arch = "x86_64"))]
    bytes: Box<[[[u8; 128]; SETS]; WIDTH]>,
    /// The folded sets' whole-byte tables in 64 entries, indexed by
    /// `folded_index` (one-table `vpermb` instead of two-table
    /// `vpermi2b`): a folded byte has bit 5 set, so 6 bits tell the
    /// folded ASCII bytes apart and the lookup is the same. Only the VBMI
    /// pass reads it.
    #[cfg(target_arch = "x86_64")]
    folded_bytes: Box<[[[u8; 64]; FOLDED_SETS]; WIDTH]>,
    /// The exact sets' whole-byte tables at the `CASELESS` window
    /// positions in 64 entries by `folded_index`, both cases of a letter
    /// in one entry: one `vpermb` instead of a `vpermi2b` (one shuffle-port
    /// step instead of two); the pair filters are exact again.
    #[cfg(target_arch = "x86_64")]
    caseless_bytes: Box<[[[u8; 64]; SETS - FOLDED_SETS]; WIDTH]>,
    /// Exact filter on the first two window bytes.
    pairs: Box<[u64; 1024]>,
    /// Exact filter on the last two bytes of the full-width windows.
    tail_pairs: Box<[u64; 1024]>,
    /// Exact filter on the first two bytes of the shorter windows.
    short_pairs: Box<[u64; 1024]>,
    /// Open-addressed table: window key -> range of `entries`.
    slots: Vec<(u64, u32, u32)>,
    slot_mask: usize,
    /// The anchors of each window group.
    entries: Vec<Entry>,
    /// Bit `w` set: some anchor is `w < WIDTH` bytes long (so is its
    /// window).
    short_lens: u32,
}

/// One anchor behind a window: which, where its window starts, and its
/// first 16 bytes as two masked words, so most anchors are compared
/// without a call to `memcmp` (`credential`, `sk_live_` and
/// `aws_secret_access_key`'s first 16 bytes alike).
#[derive(Debug, Clone)]
struct Entry {
    pattern: u32,
    offset: u32,
    len: u32,
    head: [u64; 2],
    head_mask: [u64; 2],
}

impl Entry {
    fn new(pattern: u32, offset: u32, bytes: &[u8]) -> Entry {
        let n = bytes.len().min(16);
        let mut head = [0u8; 16];
        head[..n].copy_from_slice(&bytes[..n]);
        let mut mask = [0u8; 16];
        mask[..n].fill(0xff);
        let word = |b: &[u8; 16], i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[8 * i..8 * i + 8]);
            u64::from_le_bytes(w)
        };
        Entry {
            pattern,
            offset,
            len: bytes.len() as u32,
            head: [word(&head, 0), word(&head, 1)],
            head_mask: [word(&mask, 0), word(&mask, 1)],
        }
    }
}

/// Window key: the window bytes and their count, so 2- and 3-byte windows
/// never collide.
#[inline]
fn key(window: &[u8]) -> u64 {
    let mut k = (window.len() as u64) << 56;
    for (i, &b) in window.iter().enumerate() {
        k |= u64::from(b) << (8 * i);
    }
    k
}

#[inline]
fn slot_of(k: u64, mask: usize) -> usize {
    (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & mask
}

impl AnchorSet {
    /// Builds the set. Anchors shorter than 2 bytes are not supported
    /// (callers have none); empty ones are ignored.
    pub fn new(anchors: &[AnchorSpec]) -> AnchorSet {
        let patterns: Vec<Box<[u8]>> = anchors.iter().map(|a| a.bytes.into()).collect();
        let choices = choose_windows(anchors);
        // Fingerprints: per window position the set of bytes, as 256 bits,
        // and whether the window is matched case-folded.
        let mut fingerprints: Vec<([[u64; 4]; WIDTH], bool)> = Vec::new();
        // A fingerprint is its window and whether it is folded.
        let mut seen: std::collections::HashSet<(Vec<u8>, bool)> = Default::default();
        let mut keyed: Vec<(u64, u32, u32)> = Vec::new(); // (key, pattern, offset)
        let mut pairs = Box::new([0u64; 1024]);
        let mut tail_pairs = Box::new([0u64; 1024]);
        let mut short_pairs = Box::new([0u64; 1024]);
        let mut short_lens = 0u32;
        for (id, choice) in choices.iter().enumerate() {
            let Some(Choice {
                window,
                offset,
                folded,
            }) = choice
            else {
                continue;
            };

            // Verification looks a window up by its exact bytes, so a
            // lookup lands only on the spellings that share them (`secr`
            // names 12 anchors, not the 28 of its folded window).
            let exact = &patterns[id][*offset..*offset + window.len()];
            keyed.push((key(exact), id as u32, *offset as u32));
            let pair = usize::from(exact[0]) << 8 | usize::from(exact[1]);
            pairs[pair / 64] |= 1 << (pair % 64);
            if exact.len() == WIDTH {
                let tail = usize::from(exact[WIDTH - 2]) << 8 | usize::from(exact[WIDTH - 1]);
                tail_pairs[tail / 64] |= 1 << (tail % 64);
            } else {
                short_lens |= 1 << exact.len();
                short_pairs[pair / 64] |= 1 << (pair % 64);
            }
            let mut fp = [[u64::MAX; 4]; WIDTH];
            for (set, &b) in fp.iter_mut().zip(window.iter()) {
                *set = [0; 4];
                set[usize::from(b) / 64] |= 1 << (b % 64);
            }
            if seen.insert((window.clone(), *folded)) {
                fingerprints.push((fp, *folded));
            }
        }
        let (lo, hi, _) = assign_buckets(&fingerprints);
        #[cfg(any(test, target_arch = "x86_64"))]
        let bytes = byte_tables(&fingerprints);
        #[cfg(target_arch = "x86_64")]
        let mut folded_bytes = Box::new([[[0u8; 64]; FOLDED_SETS]; WIDTH]);
        #[cfg(target_arch = "x86_64")]
        for (k, sets) in folded_bytes.iter_mut().enumerate() {
            for (f, table) in sets.iter_mut().enumerate() {
                for b in (0..128u8).filter(|&b| b == fold(b)) {
                    table[folded_index(b)] = bytes[k][SETS - FOLDED_SETS + f][usize::from(b)];
                }
            }
        }

        #[cfg(target_arch = "x86_64")]
        let mut caseless_bytes = Box::new([[[0u8; 64]; SETS - FOLDED_SETS]; WIDTH]);
        #[cfg(target_arch = "x86_64")]
        for (k, sets) in caseless_bytes.iter_mut().enumerate() {
            for (s, table) in sets.iter_mut().enumerate() {
                for b in 0..128u8 {
                    table[folded_index(b)] |= bytes[k][s][usize::from(b)];
                }
            }
        }

        keyed.sort_unstable();
        let mut entries = Vec::with_capacity(keyed.len());
        let mut groups: Vec<(u64, u32, u32)> = Vec::new();
        for (k, id, off) in keyed {
            match groups.last_mut() {
                Some(g) if g.0 == k => g.2 += 1,
                _ => groups.push((k, entries.len() as u32, 1)),
            }
            entries.push(Entry::new(id, off, &patterns[id as usize]));
        }
        let size = (groups.len() * 2).next_power_of_two().max(16);
        let slot_mask = size - 1;
        let mut slots = vec![(0u64, 0u32, 0u32); size];
        for g in groups {
            let mut s = slot_of(g.0, slot_mask);
            while slots[s].2 != 0 {
                s = (s + 1) & slot_mask;
            }
            slots[s] = g;
        }
        AnchorSet {
            patterns,
            lo,
            hi,
            #[cfg(any(test, target_arch = "x86_64"))]
            bytes,
            #[cfg(target_arch = "x86_64")]
            folded_bytes,
            #[cfg(target_arch = "x86_64")]
            caseless_bytes,
            pairs,
            tail_pairs,
            short_pairs,
            slots,
            slot_mask,
            entries,
            short_lens,
        }
    }

    /// The anchors, by pattern id.
    #[cfg(test)]
    pub(crate) fn patterns(&self) -> &[Box<[u8]>] {
        &self.patterns
    }

    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Calls `f(pattern, start, end)` for every occurrence of every anchor
    /// (overlapping ones included), in no particular order.
    pub fn for_each_match(&self, hay: &[u8], mut f: impl FnMut(usize, usize, usize)) {
        self.candidate_masks(hay, |base, mut mask| {
            while mask != 0 {
                let p = base + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                self.verify(hay, p, &mut f);
            }
        });
    }

    #[inline]
    fn verify(&self, hay: &[u8], p: usize, f: &mut impl FnMut(usize, usize, usize)) {
        if p + 2 > hay.len() {
            return;
        }
        let pair = usize::from(hay[p]) << 8 | usize::from(hay[p + 1]);
        if self.pairs[pair / 64] >> (pair % 64) & 1 == 0 {
            return;
        }
        if let Some(w) = hay.get(p..p + WIDTH) {
            let tail = usize::from(w[WIDTH - 2]) << 8 | usize::from(w[WIDTH - 1]);
            if self.tail_pairs[tail / 64] >> (tail % 64) & 1 == 1 {
                self.verify_window(hay, p, key(w), f);
            }
        }
        if self.short_lens != 0 && self.short_pairs[pair / 64] >> (pair % 64) & 1 == 1 {
            self.verify_short(hay, p, f);
        }
    }

    fn verify_short(&self, hay: &[u8], p: usize, f: &mut impl FnMut(usize, usize, usize)) {
        for w in 2..WIDTH {
            if self.short_lens >> w & 1 == 1 {
                if let Some(window) = hay.get(p..p + w) {
                    self.verify_window(hay, p, key(window), f);
                }
            }
        }
    }

    /// Whether entry `e`'s pattern occurs at `start`: its first (up to)
    /// 16 bytes as two masked words, the rest as a slice.
    #[inline]
    fn matches_at(&self, hay: &[u8], start: usize, e: &Entry) -> bool {
        let len = e.len as usize;
        match hay.get(start..start + 16) {
            Some(bytes) if len <= hay.len() - start => {
                let word = |i: usize| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&bytes[8 * i..8 * i + 8]);
                    u64::from_le_bytes(w)
                };
                let differ =
                    (word(0) & e.head_mask[0] ^ e.head[0]) | (word(1) & e.head_mask[1] ^ e.head[1]);
                differ == 0
                    && (len <= 16
                        || super::same_bytes(
                            &hay[start + 16..start + len],
                            &self.patterns[e.pattern as usize][16..],
                        ))
            }
            _ => hay.get(start..start + len) == Some(&self.patterns[e.pattern as usize][..]),
        }
    }

    #[inline]
    fn verify_window(&self, hay: &[u8], p: usize, k: u64, f: &mut impl FnMut(usize, usize, usize)) {
        let mut s = slot_of(k, self.slot_mask);
        loop {
            let (sk, from, count) = self.slots[s];
            if count == 0 {
                return;
            }
            if sk == k {
                let from = from as usize;
                for e in &self.entries[from..from + count as usize] {
                    let Some(start) = p.checked_sub(e.offset as usize) else {
                        continue;
                    };
                    if self.matches_at(hay, start, e) {
                        f(e.pattern as usize, start, start + e.len as usize);
                    }
                }
                return;
            }
            s = (s + 1) & self.slot_mask;
        }
    }

    /// Tuning aid for `eval/examples/anchorbench.rs`: the number of
    /// positions the mask pass of this build lets through to verification.
    #[doc(hidden)]
    pub fn marked_positions(&self, hay: &[u8]) -> usize {
        let mut n = 0;
        self.candidate_masks(hay, |_, m| n += m.count_ones() as usize);
        n
    }

    /// Diagnostic counts for tuning (tests only): patterns, positions that
    /// pass the shuffles, the pair filters, the hash, and exact matches.
    #[cfg(test)]
    pub(crate) fn stats(&self, hay: &[u8]) -> String {
        let mut shuffled = 0usize;
        let mut paired = 0usize;
        let mut per_window: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        self.candidate_masks(hay, |base, mut mask| {
            while mask != 0 {
                let p = base + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                shuffled += 1;
                if p + 2 > hay.len() {
                    continue;
                }
                let pair = usize::from(hay[p]) << 8 | usize::from(hay[p + 1]);
                if self.pairs[pair / 64] >> (pair % 64) & 1 == 1 {
                    paired += 1;
                    *per_window
                        .entry(hay[p..(p + 3).min(hay.len())].to_vec())
                        .or_default() += 1;
                }
            }
        });
        let mut per_bucket = [0usize; 8 * SETS];
        for p in 0..hay.len() {
            let mut m = u32::MAX;
            for k in 0..WIDTH {
                m &= self.bucket_bits(k, hay.get(p + k).copied().unwrap_or(0));
            }
            for (b, n) in per_bucket.iter_mut().enumerate() {
                *n += (m >> b & 1) as usize;
            }
        }
        let nibble_marked = positions_marked(|f| self.masks_scalar(hay, 0, &mut |b, m| f(b, m)));
        let byte_marked =
            positions_marked(|f| self.masks_scalar_bytes(hay, 0, &mut |b, m| f(b, m)));
        println!(
            "positions marked: nibble tables {nibble_marked}, whole-byte tables {byte_marked}"
        );
        println!("nibble-table marks per bucket {per_bucket:?}");
        for b in 0..8 * SETS {
            let mut ws = Vec::new();
            for &(k, _, count) in &self.slots {
                if count == 0 {
                    continue;
                }
                let len = (k >> 56) as usize;
                let w: Vec<u8> = (0..len).map(|i| (k >> (8 * i)) as u8).collect();
                let m = w
                    .iter()
                    .enumerate()
                    .fold(u32::MAX, |m, (kk, &c)| m & self.bucket_bits(kk, c));
                if m >> b & 1 == 1 {
                    ws.push(String::from_utf8_lossy(&w).to_string());
                }
            }
            println!("bucket {b} windows: {ws:?}");
        }
        for b in 0..8 * SETS {
            let (set, bit) = (b / 8, 1u8 << (b % 8));
            let mut desc = String::new();
            for k in 0..WIDTH {
                let bytes: String = (0..=255u8)
                    .filter(|&c| {
                        self.lo[k][set][usize::from(c & 15)]
                            & self.hi[k][set][usize::from(c >> 4)]
                            & bit
                            != 0
                    })
                    .map(|c| if c.is_ascii_graphic() { c as char } else { '?' })
                    .collect();
                desc += &format!(" [{bytes}]");
            }
            println!("bucket {b}:{desc}");
        }
        let mut matches = vec![0usize; self.patterns.len()];
        self.for_each_match(hay, |id, _, _| matches[id] += 1);
        let mut w: Vec<_> = per_window.into_iter().collect();
        w.sort_by_key(|x| std::cmp::Reverse(x.1));
        let top: Vec<String> = w
            .iter()
            .take(25)
            .map(|(k, n)| format!("{:?}:{n}", String::from_utf8_lossy(k)))
            .collect();
        let mut m: Vec<_> = matches.iter().enumerate().filter(|x| *x.1 > 0).collect();
        m.sort_by_key(|x| std::cmp::Reverse(*x.1));
        let topm: Vec<String> = m
            .iter()
            .take(25)
            .map(|(i, n)| format!("{:?}:{n}", String::from_utf8_lossy(&self.patterns[*i])))
            .collect();
        format!(
            "patterns {} windows {} marked {shuffled} paired {paired} matches {}\ntop windows after pairs {}\ntop matches {}",
            self.patterns.len(),
            self.slots.iter().filter(|s| s.2 != 0).count(),
            matches.iter().sum::<usize>(),
            top.join(" "),
            topm.join(" ")
        )
    }

    /// Calls `f(base, mask)` where bit `i` of `mask` marks position
    /// `base + i` as a possible window start; every real window start is
    /// marked.
    fn candidate_masks(&self, hay: &[u8], mut f: impl FnMut(usize, u64)) {
        let done = self.vector_masks(hay, &mut f);
        self.masks_scalar(hay, done, &mut f);
    }

    /// The vector path where the CPU has one: marks positions up to the
    /// returned offset; the scalar path does the rest.
    #[cfg(target_arch = "x86_64")]
    fn vector_masks(&self, hay: &[u8], f: &mut impl FnMut(usize, u64)) -> usize {
        if std::is_x86_feature_detected!("avx512vbmi") && std::is_x86_feature_detected!("avx512bw")
        {
            // SAFETY: the CPU supports AVX-512 VBMI and BW (checked just
            // above). Whole-byte tables: the rest is finished by the scalar
            // whole-byte path, so one scan marks by one rule.
            unsafe {
                let done = x86::masks_vbmi(self, hay, f);
                self.masks_scalar_bytes(hay, done, f);
                hay.len()
            }
        } else if std::is_x86_feature_detected!("avx512bw") && std::is_x86_feature_detected!("avx2")
        {
            // SAFETY: the CPU supports AVX-512BW and AVX2 (checked just
            // above); 64 positions a step, then 32 for the rest.
            unsafe {
                let done = x86::masks_avx512(self, hay, f);
                x86::masks_avx2(self, hay, done, f)
            }
        } else if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { x86::masks_avx2(self, hay, 0, f) }
        } else if std::is_x86_feature_detected!("ssse3") {
            // SAFETY: the CPU supports SSSE3 (checked just above).
            unsafe { x86::masks_ssse3(self, hay, f) }
        } else {
            0
        }
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn vector_masks(&self, hay: &[u8], f: &mut impl FnMut(usize, u64)) -> usize {
        wasm::masks(self, hay, f)
    }

    #[cfg(not(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    )))]
    fn vector_masks(&self, _hay: &[u8], _f: &mut impl FnMut(usize, u64)) -> usize {
        0
    }

    #[inline]
    fn bucket_bits(&self, k: usize, b: u8) -> u32 {
        let lo = usize::from(b & 15);
        (0..SETS).fold(0, |bits, s| {
            let hi = usize::from(b >> 4);
            bits | u32::from(self.lo[k][s][lo] & self.hi[k][s][hi]) << (8 * s)
        })
    }

    /// Exact set `s`'s whole-byte table entry for byte `b` at window
    /// position `k`, as the VBMI pass looks it up.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn exact_byte_entry(&self, k: usize, s: usize, b: u8) -> u8 {
        if CASELESS[k] {
            self.caseless_bytes[k][s][folded_index(b)]
        } else {
            self.bytes[k][s][usize::from(b & 0x7f)]
        }
    }

    #[cfg(all(test, not(target_arch = "x86_64")))]
    #[inline]
    fn exact_byte_entry(&self, k: usize, s: usize, b: u8) -> u8 {
        self.bytes[k][s][usize::from(b & 0x7f)]
    }

    /// What the whole-byte tables mark, from `from` to the end; bytes
    /// past the end count as 0.
    #[cfg(any(test, target_arch = "x86_64"))]
    fn masks_scalar_bytes(&self, hay: &[u8], from: usize, f: &mut impl FnMut(usize, u64)) {
        let mut base = from;
        while base < hay.len() {
            let mut mask = 0u64;
            for i in 0..64.min(hay.len() - base) {
                let p = base + i;
                let mut m = u32::MAX;
                for k in 0..WIDTH {
                    let b = hay.get(p + k).copied().unwrap_or(0);
                    m &= (0..SETS).fold(0, |bits, s| {
                        let entry = if folded_set(s) {
                            self.bytes[k][s][usize::from(fold(b) & 0x7f)]
                        } else {
                            self.exact_byte_entry(k, s, b)
                        };
                        bits | u32::from(entry) << (8 * s)
                    });
                }
                if m != 0 {
                    mask |= 1 << i;
                }
            }
            if mask != 0 {
                f(base, mask);
            }
            base += 64;
        }
    }

    /// The portable path, from `from` to the end; bytes past the end count
    /// as 0.
    fn masks_scalar(&self, hay: &[u8], from: usize, f: &mut impl FnMut(usize, u64)) {
        let mut base = from;
        while base < hay.len() {
            let mut mask = 0u64;
            for i in 0..64.min(hay.len() - base) {
                let p = base + i;
                let mut m = u32::MAX;
                for k in 0..WIDTH {
                    m &= self.bucket_bits(k, hay.get(p + k).copied().unwrap_or(0));
                }
                if m != 0 {
                    mask |= 1 << i;
                }
            }
            if mask != 0 {
                f(base, mask);
            }
            base += 64;
        }
    }
}

/// The number of positions a mask pass marks (tests only).
#[cfg(test)]
fn positions_marked(pass: impl FnOnce(&mut dyn FnMut(usize, u64))) -> usize {
    let mut n = 0;
    pass(&mut |_, m| n += m.count_ones() as usize);
    n
}

/// Whole-byte tables for 128-entry lookups (`AnchorSet::bytes`), packed
/// by their own (exact) cost: a byte and the byte 0x80 apart share an
/// entry, which only widens the filter.
#[cfg(any(test, target_arch = "x86_64"))]
fn byte_tables(fingerprints: &[([[u64; 4]; WIDTH], bool)]) -> Box<[[[u8; 128]; SETS]; WIDTH]> {
    let assignment = assign_byte_buckets(fingerprints);
    let mut bytes = Box::new([[[0u8; 128]; SETS]; WIDTH]);
    for ((fp, _), &bucket) in fingerprints.iter().zip(&assignment) {
        let (set, bit) = (bucket / 8, 1u8 << (bucket % 8));
        for (k, members) in fp.iter().enumerate() {
            for (w, &word) in members.iter().enumerate() {
                let mut word = word;
                while word != 0 {
                    let b = w * 64 + word.trailing_zeros() as usize;
                    word &= word - 1;
                    bytes[k][set][b & 0x7f] |= bit;
                }
            }
        }
    }
    bytes
}

/// Greedy bucket packing for the whole-byte tables, as `assign_buckets`
/// does it for the nibble tables, with a bucket's hit rate the product
/// over window positions of the frequency of exactly the bytes it lets
/// through (both cases of a letter in a folded set). Returns each
/// fingerprint's bucket.
#[cfg(any(test, target_arch = "x86_64"))]
fn assign_byte_buckets(fingerprints: &[([[u64; 4]; WIDTH], bool)]) -> Vec<usize> {
    const BUCKETS: usize = 8 * SETS;
    let model = Model::get();
    let freq = |b: usize, folded: bool| -> f64 {
        let c = b as u8;
        let f = model.frequency[b];
        if folded && c.is_ascii_lowercase() {
            f + model.frequency[usize::from(c.to_ascii_uppercase())]
        } else {
            f
        }
    };
    // The frequency of the bytes in `s` and not in `except`.
    let cost_of = |s: &[u64; 4], except: &[u64; 4], folded: bool| -> f64 {
        let mut sum = 0.0;
        for w in 0..4 {
            let mut bits = s[w] & !except[w];
            while bits != 0 {
                sum += freq(w * 64 + bits.trailing_zeros() as usize, folded);
                bits &= bits - 1;
            }
        }
        sum
    };
    let mut order: Vec<(f64, usize)> = fingerprints
        .iter()
        .enumerate()
        .map(|(i, (fp, folded))| {
            let rate = fp.iter().map(|s| cost_of(s, &[0; 4], *folded)).product();
            (rate, i)
        })
        .collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut buckets = [[[0u64; 4]; WIDTH]; BUCKETS];
    let mut position_costs = [[0f64; WIDTH]; BUCKETS];
    let mut costs = [0f64; BUCKETS];
    let mut used = [false; BUCKETS];
    let mut assignment = vec![0; fingerprints.len()];
    for (_, idx) in order {
        let (fp, folded) = &fingerprints[idx];
        let mut best = (f64::MAX, 0, [0f64; WIDTH]);
        for i in 0..BUCKETS {
            if folded_set(i / 8) != *folded {
                continue;
            }
            let grown: [f64; WIDTH] = std::array::from_fn(|k| {
                position_costs[i][k] + cost_of(&fp[k], &buckets[i][k], *folded)
            });
            let increase = grown.iter().product::<f64>() - if used[i] { costs[i] } else { 0.0 };
            if increase < best.0 {
                best = (increase, i, grown);
            }
        }
        let (_, i, grown) = best;
        for (b, f) in buckets[i].iter_mut().zip(fp) {
            for (w, &word) in b.iter_mut().zip(f) {
                *w |= word;
            }
        }
        position_costs[i] = grown;
        costs[i] = grown.iter().product();
        used[i] = true;
        assignment[idx] = i;
    }
    assignment
}

const LOCAL_PASSES: usize = 2;

/// Passes of the nibble packing's local search: on the clean corpus
/// (full catalogue) the nibble tables let 8,540 positions through after
/// the greedy packing, 7,084 after one pass, 4,427 after two, 4,225 after
/// eight (mixed: 12,332, 10,435, 6,975, 6,685); two passes add about
/// 0.15 ms to the 0.7 ms build of the catalogue's set natively.
/// On x86_64 CPUs with AVX-512 VBMI no pass reads the nibble tables (the
/// whole-byte tables serve), so they keep the greedy packing there.
fn local_passes() -> usize {
    #[cfg(all(target_arch = "x86_64", not(test)))]
    if std::is_x86_feature_detected!("avx512vbmi") && std::is_x86_feature_detected!("avx512bw") {
        return 0;
    }
    LOCAL_PASSES
}

/// Nibble tables (lo, hi) and the bucket of each fingerprint.
type Tables = (
    [[[u8; 16]; SETS]; WIDTH],
    [[[u8; 16]; SETS]; WIDTH],
    Vec<usize>,
);

/// Greedy bucket packing: each fingerprint (commonest first) joins the
/// bucket whose estimated hit rate grows least. A bucket's hit rate is the
/// product over window positions of the frequency of the bytes its nibble
/// tables let through.
fn assign_buckets(fingerprints: &[([[u64; 4]; WIDTH], bool)]) -> Tables {
    const BUCKETS: usize = 8 * SETS;
    let freq: Vec<f64> = Model::get().frequency.iter().map(|f| f / 100.0).collect();
    // row_sums[h][half][bits]: the frequency of bytes with high nibble `h`
    // and a low nibble among `bits` (low or high half of the 16 nibbles),
    // so a nibble rectangle costs at most 32 lookups.
    // Each sum is the one without its highest nibble plus that nibble's
    // share: the same additions, in the same order, as summing the
    // nibbles in ascending order.
    let mut row_sums = vec![[[0f64; 256]; 2]; 16];
    for (h, row) in row_sums.iter_mut().enumerate() {
        for (half, sums) in row.iter_mut().enumerate() {
            for bits in 1..256usize {
                let top = usize::BITS - 1 - bits.leading_zeros();
                sums[bits] = sums[bits ^ 1 << top] + freq[h << 4 | (half * 8 + top as usize)];
            }
        }
    }
    let rect_cost = |lo: u16, hi: u16| -> f64 {
        let (low, high) = (usize::from(lo & 0xff), usize::from(lo >> 8));
        let mut sum = 0.0;
        let mut rows = hi;
        while rows != 0 {
            let row = &row_sums[rows.trailing_zeros() as usize];
            rows &= rows - 1;
            sum += row[0][low] + row[1][high];
        }
        sum
    };
    let nibbles = |s: &[u64; 4]| -> (u16, u16) {
        let (mut lo, mut hi) = (0u16, 0u16);
        for (w, &word) in s.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let b = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                lo |= 1 << (b & 15);
                hi |= 1 << (b >> 4);
            }
        }
        (lo, hi)
    };
    let set_cost = |s: &[u64; 4]| -> f64 {
        let mut sum = 0.0;
        for (w, &word) in s.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                sum += freq[w * 64 + bits.trailing_zeros() as usize];
                bits &= bits - 1;
            }
        }
        sum
    };
    // Commonest fingerprints first, so they spread over the buckets.
    // (expected rate, nibble sets per position, folded, fingerprint index)
    type Ranked = (f64, [(u16, u16); WIDTH], bool, usize);
    let mut order: Vec<Ranked> = fingerprints
        .iter()
        .enumerate()
        .map(|(idx, (fp, folded))| {
            (
                fp.iter().map(set_cost).product::<f64>(),
                std::array::from_fn(|k| nibbles(&fp[k])),
                *folded,
                idx,
            )
        })
        .collect();
    let mut assignment = vec![0; fingerprints.len()];
    order.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut buckets = [[(0u16, 0u16); WIDTH]; BUCKETS];
    let mut costs = [0f64; BUCKETS];
    // Each bucket's rectangle cost per window position: a fingerprint
    // that leaves a position's rectangle as it is reuses it.
    let mut position_costs = [[0f64; WIDTH]; BUCKETS];
    let mut used = [false; BUCKETS];
    for (_, parts, folded, idx) in order {
        let alone: [f64; WIDTH] = std::array::from_fn(|k| rect_cost(parts[k].0, parts[k].1));
        let mut best = (f64::MAX, 0, [(0u16, 0u16); WIDTH], 0.0, [0f64; WIDTH]);
        for (i, b) in buckets.iter().enumerate() {
            if folded_set(i / 8) != folded {
                continue;
            }
            let mut grown = *b;
            for (g, p) in grown.iter_mut().zip(&parts) {
                g.0 |= p.0;
                g.1 |= p.1;
            }
            let (grown_cost, per_position) = if grown == *b && used[i] {
                (costs[i], position_costs[i])
            } else {
                let per_position: [f64; WIDTH] = std::array::from_fn(|k| {
                    if !used[i] {
                        alone[k]
                    } else if grown[k] == b[k] {
                        position_costs[i][k]
                    } else {
                        rect_cost(grown[k].0, grown[k].1)
                    }
                });
                (per_position.iter().product::<f64>(), per_position)
            };
            let increase = grown_cost - if used[i] { costs[i] } else { 0.0 };
            if increase < best.0 {
                best = (increase, i, grown, grown_cost, per_position);
            }
        }
        assignment[idx] = best.1;
        buckets[best.1] = best.2;
        costs[best.1] = best.3;
        position_costs[best.1] = best.4;
        used[best.1] = true;
    }
    // Local search: moves single fingerprints to the bucket where the
    // summed rate falls most, until no move pays (or `LOCAL_PASSES`).
    let parts_of: Vec<[(u16, u16); WIDTH]> = fingerprints
        .iter()
        .map(|(fp, _)| std::array::from_fn(|k| nibbles(&fp[k])))
        .collect();
    let alone_of: Vec<[f64; WIDTH]> = parts_of
        .iter()
        .map(|parts| std::array::from_fn(|k| rect_cost(parts[k].0, parts[k].1)))
        .collect();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); BUCKETS];
    for (idx, &b) in assignment.iter().enumerate() {
        members[b].push(idx);
    }
    for _ in 0..local_passes() {
        let mut moved = false;
        for idx in 0..fingerprints.len() {
            let a = assignment[idx];
            let folded = fingerprints[idx].1;
            let mut rest = [(0u16, 0u16); WIDTH];
            for &m in members[a].iter().filter(|&&m| m != idx) {
                for (g, p) in rest.iter_mut().zip(&parts_of[m]) {
                    g.0 |= p.0;
                    g.1 |= p.1;
                }
            }
            let rest_costs: [f64; WIDTH] = std::array::from_fn(|k| {
                if rest[k] == buckets[a][k] {
                    position_costs[a][k]
                } else {
                    rect_cost(rest[k].0, rest[k].1)
                }
            });
            let without = if members[a].len() > 1 {
                rest_costs.iter().product::<f64>()
            } else {
                0.0
            };
            let saved = costs[a] - without;
            let mut best = (saved, a, [(0u16, 0u16); WIDTH], [0f64; WIDTH]);
            for b in 0..BUCKETS {
                if b == a || folded_set(b / 8) != folded {
                    continue;
                }
                // A rectangle costs no less than any rectangle inside it:
                // skip buckets where even that bound does not pay.
                let used_cost = if used[b] { costs[b] } else { 0.0 };
                let bound: f64 = (0..WIDTH)
                    .map(|k| {
                        let here = if used[b] { position_costs[b][k] } else { 0.0 };
                        here.max(alone_of[idx][k])
                    })
                    .product();
                if bound - used_cost >= best.0 {
                    continue;
                }
                let mut grown = buckets[b];
                for (g, p) in grown.iter_mut().zip(&parts_of[idx]) {
                    g.0 |= p.0;
                    g.1 |= p.1;
                }
                let mut per_position = [0f64; WIDTH];
                let mut product = 1.0;
                for k in 0..WIDTH {
                    per_position[k] = if used[b] && grown[k] == buckets[b][k] {
                        position_costs[b][k]
                    } else {
                        rect_cost(grown[k].0, grown[k].1)
                    };
                    product *= per_position[k];
                }
                let increase = product - if used[b] { costs[b] } else { 0.0 };
                if increase < best.0 {
                    best = (increase, b, grown, per_position);
                }
            }
            let (_, b, grown, per_position) = best;
            if b == a {
                continue;
            }
            members[a].retain(|&m| m != idx);
            members[b].push(idx);
            assignment[idx] = b;
            buckets[a] = rest;
            position_costs[a] = rest_costs;
            costs[a] = without;
            used[a] = !members[a].is_empty();
            buckets[b] = grown;
            position_costs[b] = per_position;
            costs[b] = per_position.iter().product();
            used[b] = true;
            moved = true;
        }
        if !moved {
            break;
        }
    }
    let mut lo = [[[0u8; 16]; SETS]; WIDTH];
    let mut hi = [[[0u8; 16]; SETS]; WIDTH];
    for (i, b) in buckets.iter().enumerate() {
        if !used[i] {
            continue;
        }
        let (set, bit) = (i / 8, 1u8 << (i % 8));
        for (k, &(l, h)) in b.iter().enumerate() {
            for n in 0..16 {
                if l >> n & 1 == 1 {
                    lo[k][set][n] |= bit;
                }
                if h >> n & 1 == 1 {
                    hi[k][set][n] |= bit;
                }
            }
        }
    }
    // Folded sets match `fold(b)`, whose high nibble is `b >> 4 | 2`: the
    // entries of high nibbles without bit 1 repeat those with it, so every
    // set is looked up with `b >> 4` and the passes need no fold.
    for per_position in hi.iter_mut() {
        for (s, table) in per_position.iter_mut().enumerate() {
            if folded_set(s) {
                for n in 0..16 {
                    table[n] = table[n | 2];
                }
            }
        }
    }
    (lo, hi, assignment)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{AnchorSet, CASELESS, FOLDED_SETS, SETS, WIDTH};
    use std::arch::x86_64::*;

    /// Positions `[0, returned)` are covered; the caller does the rest.
    #[target_feature(enable = "ssse3")]
    pub(super) unsafe fn masks_ssse3(
        set: &AnchorSet,
        hay: &[u8],
        f: &mut impl FnMut(usize, u64),
    ) -> usize {
        let load = |t: &[u8; 16]| _mm_loadu_si128(t.as_ptr().cast());
        let lo: [[__m128i; SETS]; WIDTH] =
            std::array::from_fn(|k| std::array::from_fn(|s| load(&set.lo[k][s])));
        let hi: [[__m128i; SETS]; WIDTH] =
            std::array::from_fn(|k| std::array::from_fn(|s| load(&set.hi[k][s])));
        let nib = _mm_set1_epi8(0x0f);
        let zero = _mm_setzero_si128();
        let mut i = 0;
        while i + 16 + WIDTH - 1 <= hay.len() {
            let mut acc = [_mm_set1_epi8(-1); SETS];
            for k in 0..WIDTH {
                // SAFETY: i + k + 16 <= hay.len() by the loop condition.
                let v = _mm_loadu_si128(hay.as_ptr().add(i + k).cast());
                let l = _mm_and_si128(v, nib);
                let h = _mm_and_si128(_mm_srli_epi16(v, 4), nib);
                for s in 0..SETS {
                    let m =
                        _mm_and_si128(_mm_shuffle_epi8(lo[k][s], l), _mm_shuffle_epi8(hi[k][s], h));
                    acc[s] = _mm_and_si128(acc[s], m);
                }
            }
            let any = acc
                .iter()
                .fold(_mm_setzero_si128(), |a, &b| _mm_or_si128(a, b));
            let mask = !(_mm_movemask_epi8(_mm_cmpeq_epi8(any, zero)) as u32) & 0xffff;
            if mask != 0 {
                f(i, u64::from(mask));
            }
            i += 16;
        }
        i
    }

    /// Blocks a `*_batch` pass covers before its marks are handed on.
    const BATCH: usize = 64;

    /// The loop around a `*_batch` vector pass: runs it from `from` while a
    /// block of `step` positions and its window fit in `hay`, and hands
    /// each marked block to `f` between batches, outside the vector loop.
    fn hand_on(
        hay: &[u8],
        from: usize,
        step: usize,
        f: &mut impl FnMut(usize, u64),
        mut batch: impl FnMut(usize, &mut [(usize, u64); BATCH]) -> (usize, usize),
    ) -> usize {
        let mut marks = [(0usize, 0u64); BATCH];
        let mut i = from;
        while i + step + WIDTH - 1 <= hay.len() {
            let (next, n) = batch(i, &mut marks);
            i = next;
            for &(base, mask) in marks.get(..n).unwrap_or_default() {
                f(base, mask);
            }
        }
        i
    }

    /// The whole-byte tables with one 128-entry lookup (`vpermi2b`) per
    /// window byte and exact table set and one 64-entry lookup (`vpermb`,
    /// half the work) per folded set; marks what `masks_scalar_bytes`
    /// marks.
    ///
    /// Not itself compiled with the target features: the vector loop is
    /// `masks_vbmi_batch`, which cannot be inlined here, so the calls to
    /// `f` stay out of it. With them in the same function every table
    /// lived on the stack (a call clobbers every vector register) and was
    /// read from memory at each lookup, which cost about a third more
    /// than the pass with its tables in registers.
    ///
    /// # Safety
    /// The CPU must support AVX-512 VBMI and BW.
    pub(super) unsafe fn masks_vbmi(
        set: &AnchorSet,
        hay: &[u8],
        f: &mut impl FnMut(usize, u64),
    ) -> usize {
        hand_on(hay, 0, 64, f, |i, marks| {
            // SAFETY: the caller guarantees AVX-512 VBMI and BW.
            unsafe { masks_vbmi_batch(set, hay, i, marks) }
        })
    }

    /// Up to `BATCH` blocks from `i`: the blocks with marks go to
    /// `marks`; returns where the next batch starts and how many blocks
    /// had marks. No call and no branch per block on whether it has
    /// marks, so the tables stay in registers.
    #[target_feature(enable = "avx512bw,avx512vbmi")]
    #[inline(never)]
    unsafe fn masks_vbmi_batch(
        set: &AnchorSet,
        hay: &[u8],
        mut i: usize,
        marks: &mut [(usize, u64); BATCH],
    ) -> (usize, usize) {
        const EXACT: usize = SETS - FOLDED_SETS;
        let load = |t: &[u8; 128], half: usize| _mm512_loadu_si512(t[64 * half..].as_ptr().cast());
        let low: [[__m512i; EXACT]; WIDTH] =
            std::array::from_fn(|k| std::array::from_fn(|s| load(&set.bytes[k][s], 0)));
        let high: [[__m512i; EXACT]; WIDTH] =
            std::array::from_fn(|k| std::array::from_fn(|s| load(&set.bytes[k][s], 1)));
        let folded: [[__m512i; FOLDED_SETS]; WIDTH] = std::array::from_fn(|k| {
            std::array::from_fn(|s| _mm512_loadu_si512(set.folded_bytes[k][s].as_ptr().cast()))
        });
        let caseless: [[__m512i; EXACT]; WIDTH] = std::array::from_fn(|k| {
            std::array::from_fn(|s| _mm512_loadu_si512(set.caseless_bytes[k][s].as_ptr().cast()))
        });
        let bit5 = _mm512_set1_epi8(0x20);
        let mut n = 0;
        while n < BATCH && i + 64 + WIDTH - 1 <= hay.len() {
            let mut acc = [_mm512_set1_epi8(-1); SETS];
            for k in 0..WIDTH {
                // SAFETY: i + k + 64 <= hay.len() by the loop condition.
                let v = _mm512_loadu_si512(hay.as_ptr().add(i + k).cast());
                // `folded_index` of every byte (vpermb reads bits 0-5):
                // bit 5 becomes bit 6 inverted, taken from v >> 1.
                let shifted = _mm512_srli_epi16(v, 1);
                let index = _mm512_ternarylogic_epi32(v, shifted, bit5, 0x72);
                for s in 0..EXACT {
                    let m = if CASELESS[k] {
                        _mm512_permutexvar_epi8(index, caseless[k][s])
                    } else {
                        _mm512_permutex2var_epi8(low[k][s], v, high[k][s])
                    };
                    acc[s] = _mm512_and_si512(acc[s], m);
                }
                for s in 0..FOLDED_SETS {
                    let m = _mm512_permutexvar_epi8(index, folded[k][s]);
                    acc[EXACT + s] = _mm512_and_si512(acc[EXACT + s], m);
                }
            }
            let any = acc
                .iter()
                .fold(_mm512_setzero_si512(), |a, &b| _mm512_or_si512(a, b));
            let mask = _mm512_test_epi8_mask(any, any);
            marks[n] = (i, mask);
            n += usize::from(mask != 0);
            i += 64;
        }
        (i, n)
    }

    /// The nibble tables 64 positions a step, marks handed on after each
    /// batch as in `masks_vbmi` (with the calls in the vector loop, the 24
    /// tables were read from the stack at each shuffle).
    ///
    /// # Safety
    /// The CPU must support AVX-512BW.
    pub(super) unsafe fn masks_avx512(
        set: &AnchorSet,
        hay: &[u8],
        f: &mut impl FnMut(usize, u64),
    ) -> usize {
        hand_on(hay, 0, 64, f, |i, marks| {
            // SAFETY: the caller guarantees AVX-512BW.
            unsafe { masks_avx512_batch(set, hay, i, marks) }
        })
    }

    /// Up to `BATCH` blocks from `i`, as `masks_vbmi_batch`.
    #[target_feature(enable = "avx512bw")]
    #[inline(never)]
    unsafe fn masks_avx512_batch(
        set: &AnchorSet,
        hay: &[u8],
        mut i: usize,
        marks: &mut [(usize, u64); BATCH],
    ) -> (usize, usize) {
        let load = |t: &[u8; 16]| _mm512_broadcast_i32x4(_mm_loadu_si128(t.as_ptr().cast()));
        let lo: [[__m512i; SETS]; WIDTH] =
            std::array::from_fn(|k| std::array::from_fn(|s| load(&set.lo[k][s])));
        let hi: [[__m512i; SETS]; WIDTH] =
            std::array::from_fn(|k| std::array::from_fn(|s| load(&set.hi[k][s])));
        let nib = _mm512_set1_epi8(0x0f);
        let mut n = 0;
        while n < BATCH && i + 64 + WIDTH - 1 <= hay.len() {
            let mut acc = [_mm512_set1_epi8(-1); SETS];
            for k in 0..WIDTH {
                // SAFETY: i + k + 64 <= hay.len() by the loop condition.
                let v = _mm512_loadu_si512(hay.as_ptr().add(i + k).cast());
                let l = _mm512_and_si512(v, nib);
                let h = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
                for s in 0..SETS {
                    let m = _mm512_and_si512(
                        _mm512_shuffle_epi8(lo[k][s], l),
                        _mm512_shuffle_epi8(hi[k][s], h),
                    );
                    acc[s] = _mm512_and_si512(acc[s], m);
                }
            }
            let any = acc
                .iter()
                .fold(_mm512_setzero_si512(), |a, &b| _mm512_or_si512(a, b));
            let mask = _mm512_test_epi8_mask(any, any);
            marks[n] = (i, mask);
            n += usize::from(mask != 0);
            i += 64;
        }
        (i, n)
    }

    /// Positions `[from, returned)` are covered; the caller does the rest.
    /// Marks are handed on after each batch, as in `masks_vbmi`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    pub(super) unsafe fn masks_avx2(
        set: &AnchorSet,
        hay: &[u8],
        from: usize,
        f: &mut impl FnMut(usize, u64),
    ) -> usize {
        hand_on(hay, from, 32, f, |i, marks| {
            // SAFETY: the caller guarantees AVX2.
            unsafe { masks_avx2_batch(set, hay, i, marks) }
        })
    }

    /// Up to `BATCH` blocks of 32 positions from `i`, as
    /// `masks_vbmi_batch`.
    #[target_feature(enable = "avx2")]
    #[inline(never)]
    unsafe fn masks_avx2_batch(
        set: &AnchorSet,
        hay: &[u8],
        mut i: usize,
        marks: &mut [(usize, u64); BATCH],
    ) -> (usize, usize) {
        let load = |t: &[u8; 16]| _mm256_broadcastsi128_si256(_mm_loadu_si128(t.as_ptr().cast()));
        let lo: [[__m256i; SETS]; WIDTH] =
            std::array::from_fn(|k| std::array::from_fn(|s| load(&set.lo[k][s])));
        let hi: [[__m256i; SETS]; WIDTH] =
            std::array::from_fn(|k| std::array::from_fn(|s| load(&set.hi[k][s])));
        let nib = _mm256_set1_epi8(0x0f);
        let zero = _mm256_setzero_si256();
        let mut n = 0;
        while n < BATCH && i + 32 + WIDTH - 1 <= hay.len() {
            let mut acc = [_mm256_set1_epi8(-1); SETS];
            for k in 0..WIDTH {
                // SAFETY: i + k + 32 <= hay.len() by the loop condition.
                let v = _mm256_loadu_si256(hay.as_ptr().add(i + k).cast());
                let l = _mm256_and_si256(v, nib);
                let h = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
                for s in 0..SETS {
                    let m = _mm256_and_si256(
                        _mm256_shuffle_epi8(lo[k][s], l),
                        _mm256_shuffle_epi8(hi[k][s], h),
                    );
                    acc[s] = _mm256_and_si256(acc[s], m);
                }
            }
            let any = acc
                .iter()
                .fold(_mm256_setzero_si256(), |a, &b| _mm256_or_si256(a, b));
            let mask = !(_mm256_movemask_epi8(_mm256_cmpeq_epi8(any, zero)) as u32);
            marks[n] = (i, u64::from(mask));
            n += usize::from(mask != 0);
            i += 32;
        }
        (i, n)
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::{AnchorSet, SETS, WIDTH};
    use crate::detectors::nibble_lookup;
    use core::arch::wasm32::*;

    /// Positions `[0, returned)` are covered; the caller does the rest.
    pub(super) fn masks(set: &AnchorSet, hay: &[u8], f: &mut impl FnMut(usize, u64)) -> usize {
        let load = |t: &[u8; 16]| {
            u8x16(
                t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12],
                t[13], t[14], t[15],
            )
        };
        let lo: [[v128; SETS]; WIDTH] =
            std::array::from_fn(|k| std::array::from_fn(|s| load(&set.lo[k][s])));
        let hi: [[v128; SETS]; WIDTH] =
            std::array::from_fn(|k| std::array::from_fn(|s| load(&set.hi[k][s])));
        let nib = u8x16_splat(0x0f);
        let zero = u8x16_splat(0);
        // Marks are gathered for up to `BATCH` blocks and handed on after
        // the vector loop, as in the VBMI pass: V8 does not inline `f`, and
        // with the call in the loop it reloaded spilled tables at every
        // block.
        const BATCH: usize = 64;
        let mut marks = [(0usize, 0u16); BATCH];
        let mut i = 0;
        while i + 16 + WIDTH - 1 <= hay.len() {
            let mut n = 0;
            while n < BATCH && i + 16 + WIDTH - 1 <= hay.len() {
                let mut acc = [u8x16_splat(0xff); SETS];
                for k in 0..WIDTH {
                    // SAFETY: i + k + 16 <= hay.len() by the loop condition;
                    // v128_load has no alignment requirement.
                    let v = unsafe { v128_load(hay.as_ptr().add(i + k).cast()) };
                    let l = v128_and(v, nib);
                    // A 16-bit shift and a mask: V8 expands the 8-bit
                    // shift into five instructions.
                    let h = v128_and(u16x8_shr(v, 4), nib);
                    for s in 0..SETS {
                        let m = v128_and(nibble_lookup(lo[k][s], l), nibble_lookup(hi[k][s], h));
                        acc[s] = v128_and(acc[s], m);
                    }
                }
                let any = acc.iter().fold(u8x16_splat(0), |a, &b| v128_or(a, b));
                // Equal-to-zero and a scalar not: `ne` is three instructions.
                let mask = !u8x16_bitmask(u8x16_eq(any, zero));
                marks[n] = (i, mask);
                n += usize::from(mask != 0);
                i += 16;
            }
            for &(base, mask) in &marks[..n] {
                f(base, u64::from(mask));
            }
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(anchors: &[&str], hay: &[u8]) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for (id, a) in anchors.iter().enumerate() {
            let a = a.as_bytes();
            for s in 0..hay.len() {
                if hay[s..].starts_with(a) {
                    out.push((id, s, s + a.len()));
                }
            }
        }
        out.sort_unstable();
        out
    }

    fn found(set: &AnchorSet, hay: &[u8]) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        set.for_each_match(hay, |id, s, e| out.push((id, s, e)));
        out.sort_unstable();
        out
    }

    fn positions(masks: impl FnOnce(&mut dyn FnMut(usize, u64))) -> Vec<usize> {
        let mut out = Vec::new();
        masks(&mut |base, mut m| {
            while m != 0 {
                out.push(base + m.trailing_zeros() as usize);
                m &= m - 1;
            }
        });
        out.sort_unstable();
        out
    }

    /// Every x86 vector path this CPU has, each finished by the scalar
    /// path, so that all of them are held to the scalar marks.
    #[cfg(target_arch = "x86_64")]
    fn x86_paths(set: &AnchorSet, hay: &[u8]) -> Vec<(&'static str, Vec<usize>)> {
        let mut out = Vec::new();
        type Path<'a> = &'a dyn Fn(&mut dyn FnMut(usize, u64)) -> usize;
        let mut run = |name, path: Path| {
            out.push((
                name,
                positions(|f| {
                    let done = path(&mut *f);
                    set.masks_scalar(hay, done, &mut |b, m| f(b, m));
                }),
            ));
        };
        if std::is_x86_feature_detected!("ssse3") {
            // SAFETY: the CPU supports SSSE3 (checked just above).
            run("ssse3", &|f| unsafe {
                x86::masks_ssse3(set, hay, &mut |b, m| f(b, m))
            });
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            run("avx2", &|f| unsafe {
                x86::masks_avx2(set, hay, 0, &mut |b, m| f(b, m))
            });
        }
        if std::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU supports AVX-512BW (checked just above).
            run("avx512", &|f| unsafe {
                x86::masks_avx512(set, hay, &mut |b, m| f(b, m))
            });
        }
        out
    }

    /// The whole-byte vector path where the CPU has it, held to the
    /// scalar whole-byte marks.
    #[cfg(target_arch = "x86_64")]
    fn check_vbmi(set: &AnchorSet, hay: &[u8]) {
        if !std::is_x86_feature_detected!("avx512vbmi") {
            return;
        }
        let vector = positions(|f| {
            // SAFETY: the CPU supports AVX-512 VBMI (checked above; it
            // implies AVX-512BW on every CPU that has it).
            let done = unsafe { x86::masks_vbmi(set, hay, &mut |b, m| f(b, m)) };
            set.masks_scalar_bytes(hay, done, &mut |b, m| f(b, m));
        });
        let scalar = positions(|f| set.masks_scalar_bytes(hay, 0, &mut |b, m| f(b, m)));
        assert_eq!(vector, scalar, "vbmi");
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn check_vbmi(_set: &AnchorSet, _hay: &[u8]) {}

    /// Whether `candidate_masks` takes the whole-byte (VBMI) path.
    fn vbmi() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::is_x86_feature_detected!("avx512vbmi")
            && std::is_x86_feature_detected!("avx512bw");
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn x86_paths(_set: &AnchorSet, _hay: &[u8]) -> Vec<(&'static str, Vec<usize>)> {
        Vec::new()
    }

    #[test]
    fn finds_exactly_what_a_naive_search_finds() {
        let anchors = [
            "ghp_",
            "gho_",
            "AKIA",
            "xoxb-",
            "SK",
            "0x",
            "Q~",
            "password",
            "Password",
            "PASSWORD",
            "pass",
            "sk_live_",
            "live_",
            "://",
            "-----BEGIN ",
            "dob",
        ];
        let specs: Vec<AnchorSpec> = anchors
            .iter()
            .map(|a| AnchorSpec {
                bytes: a.as_bytes(),
                fold_case: a.eq_ignore_ascii_case("password") || *a == "pass" || *a == "dob",
            })
            .collect();
        let set = AnchorSet::new(&specs);
        let alphabet = b"ghpoAKIxb-SK0Q~passwordPASSWORDsk_live_:/BEGIN d\"{}\xc3\xa9";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        // The long ones span several batches of every vector path (64
        // blocks of 32 or 64 positions).
        for len in [
            0usize, 1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 200, 1000, 2051, 4099, 8300,
        ] {
            for _ in 0..40 {
                let hay: Vec<u8> = (0..len)
                    .map(|_| {
                        crate::test_rng::xorshift(&mut state);
                        alphabet[(state >> 11) as usize % alphabet.len()]
                    })
                    .collect();
                assert_eq!(
                    found(&set, &hay),
                    naive(&anchors, &hay),
                    "{:?}",
                    String::from_utf8_lossy(&hay)
                );
                // The vector path (where the CPU has one) marks exactly
                // the positions the scalar path of its rule marks: the
                // whole-byte rule with VBMI, the nibble rule otherwise.
                let vector = positions(|f| set.candidate_masks(&hay, f));
                let scalar = positions(|f| set.masks_scalar(&hay, 0, &mut |b, m| f(b, m)));
                if vbmi() {
                    let bytes = positions(|f| set.masks_scalar_bytes(&hay, 0, &mut |b, m| f(b, m)));
                    assert_eq!(vector, bytes);
                } else {
                    assert_eq!(vector, scalar);
                }
                for (name, path) in x86_paths(&set, &hay) {
                    assert_eq!(path, scalar, "{name}");
                }
                check_vbmi(&set, &hay);
                // The nibble marks (scalar, and so every nibble vector
                // path) cover every real window too.
                let mut from_nibbles = Vec::new();
                for &p in &scalar {
                    set.verify(&hay, p, &mut |id, s, e| from_nibbles.push((id, s, e)));
                }
                from_nibbles.sort_unstable();
                assert_eq!(from_nibbles, naive(&anchors, &hay));
                // The whole-byte tables (packed into buckets on their
                // own) cover every real window too.
                let bytes = positions(|f| set.masks_scalar_bytes(&hay, 0, &mut |b, m| f(b, m)));
                let mut from_bytes = Vec::new();
                for &p in &bytes {
                    set.verify(&hay, p, &mut |id, s, e| from_bytes.push((id, s, e)));
                }
                from_bytes.sort_unstable();
                assert_eq!(from_bytes, naive(&anchors, &hay));
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn folded_index_tells_folded_ascii_apart() {
        let mut seen = [None; 64];
        for b in 0..128u8 {
            assert_eq!(folded_index(b), folded_index(fold(b)), "{b}");
            if b == fold(b) {
                assert_eq!(seen[folded_index(b)].replace(b), None, "{b}");
            }
        }
    }

    #[test]
    fn anchors_at_both_ends_and_overlapping() {
        let anchors = ["ab", "abc", "bcd", "cd"];
        let specs: Vec<AnchorSpec> = anchors
            .iter()
            .map(|a| AnchorSpec {
                bytes: a.as_bytes(),
                fold_case: false,
            })
            .collect();
        let set = AnchorSet::new(&specs);
        let hay = b"abcd xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx abcd";
        assert_eq!(found(&set, hay), naive(&anchors, hay));
    }
}
