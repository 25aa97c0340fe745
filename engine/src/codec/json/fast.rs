//! The JSON fast path over stage 1's bitmasks: a validator that checks the
//! grammar with bit operations per 64-byte block (scalar work only per
//! bracket, per number or literal, per escape and per run of non-ASCII
//! blocks).
//!
//! The validator only answers yes or no; `tokenize` stays the reference
//! and gives the exact error (message and offset) when it says no. The
//! grammar, as bit tests, outside strings and across whitespace:
//! - after `:` or `,` (and at the start) comes a value: `"`, `{`, `[` or
//!   the start of a scalar;
//! - after a value (closing quote, scalar, `}`, `]`) comes `,`, `:`, `}`
//!   or `]`, and `:` only after a string;
//! - after `{` comes `"` or `}`, after `[` a value or `]` (checked per
//!   bracket);
//! - per container: arrays hold no `:`, objects alternate `:` and `,`
//!   (prefix-xor over the separators of each stretch between brackets), an
//!   object closes after a value or right after `{`; brackets match, depth
//!   at most `MAX_DEPTH`, no separator at the top level.
//!
//! Strings need no work unless their block has a backslash (each escape is
//! checked) or a non-ASCII byte (each run of such blocks is checked as
//! UTF-8); control bytes are rejected per block, numbers with masks.
//!
//! `validate_paths` also answers path queries in the same pass: per open
//! container its slot (an object's last `:`, an array's comma count, both
//! per separator stretch), and per query the first token end at or after
//! it; keys are read back from the document only for answers.

use super::stage1::{blocks, Classify, Masks, Scalar, Stage1};
use super::{escape, number, skip_ws, unescape_into, HitPaths, MAX_DEPTH};

/// Whether `doc` is one valid JSON document (exactly when `tokenize`
/// accepts it).
pub(super) fn validate(doc: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if super::stage1::x86::avx512_available() {
        // SAFETY: the CPU has AVX-512BW, AVX2, PCLMULQDQ, POPCNT, BMI1/2 and
        // LZCNT (just checked).
        return unsafe { validate_avx512(doc) };
    }
    #[cfg(target_arch = "x86_64")]
    if super::stage1::x86::available() {
        // SAFETY: the CPU has AVX2, PCLMULQDQ, POPCNT, BMI1 and LZCNT
        // (checked just above).
        return unsafe { validate_avx2(doc) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return validate_with::<super::stage1::wasm::Simd128>(doc);
    #[allow(unreachable_code)]
    validate_with::<Scalar>(doc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,pclmulqdq,popcnt,bmi1,lzcnt")]
unsafe fn validate_avx2(doc: &[u8]) -> bool {
    validate_with::<super::stage1::x86::Avx2>(doc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw,avx2,pclmulqdq,popcnt,bmi1,bmi2,lzcnt")]
unsafe fn validate_avx512(doc: &[u8]) -> bool {
    validate_with::<super::stage1::x86::Avx512>(doc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw,avx2,pclmulqdq,popcnt,bmi1,bmi2,lzcnt")]
unsafe fn validate_paths_avx512(doc: &[u8], starts: &[usize]) -> Option<Answers> {
    run::<super::stage1::x86::Avx512, true>(doc, starts)
}

/// The path of each token owning a query position, one answer per query.
pub(super) type Answers = HitPaths;

/// `validate`, answering in the same pass, for each position of `starts`
/// (sorted, offsets in `doc`), the path of the token that owns it: the
/// first key, string or scalar whose content ends at or after it (what
/// `walk` reports for that token), `None` after the last token. `None`
/// when `doc` is not valid.
pub(super) fn validate_paths(doc: &[u8], starts: &[usize]) -> Option<Answers> {
    #[cfg(target_arch = "x86_64")]
    if super::stage1::x86::avx512_available() {
        // SAFETY: the CPU has AVX-512BW, AVX2, PCLMULQDQ, POPCNT, BMI1/2 and
        // LZCNT (just checked).
        return unsafe { validate_paths_avx512(doc, starts) };
    }
    #[cfg(target_arch = "x86_64")]
    if super::stage1::x86::available() {
        // SAFETY: the CPU has AVX2, PCLMULQDQ, POPCNT, BMI1 and LZCNT
        // (checked just above).
        return unsafe { validate_paths_avx2(doc, starts) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return run::<super::stage1::wasm::Simd128, true>(doc, starts);
    #[allow(unreachable_code)]
    run::<Scalar, true>(doc, starts)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,pclmulqdq,popcnt,bmi1,lzcnt")]
unsafe fn validate_paths_avx2(doc: &[u8], starts: &[usize]) -> Option<Answers> {
    run::<super::stage1::x86::Avx2, true>(doc, starts)
}

/// Positions right after each bit of `x`, skipping whitespace runs `ws`:
/// where the token that follows `x` starts. `carry` is "a token after
/// `x` is still pending" across blocks (in and out).
#[inline(always)]
fn next_after(x: u64, ws: u64, carry: &mut u64) -> u64 {
    next_after_or(x, 0, ws, carry)
}

/// `next_after` of `x`, and also from the positions `at` (themselves
/// right after a token, such as stage 1's scalar ends).
#[inline(always)]
fn next_after_or(x: u64, at: u64, ws: u64, carry: &mut u64) -> u64 {
    let y = x << 1 | *carry | at;
    let (sum, over) = ws.overflowing_add(y & ws);
    *carry = x >> 63 | u64::from(over);
    (y | sum) & !ws
}

/// The bytes that may follow `[`: a value's first byte or `]`, as a bit
/// set over ASCII.
const AFTER_SQUARE: u128 = {
    let mut set = 0u128;
    let bytes = b"]\"{[-0123456789tfn";
    let mut i = 0;
    while i < bytes.len() {
        set |= 1 << bytes[i];
        i += 1;
    }
    set
};

/// Bits `lo..hi` (0 <= lo <= hi <= 64).
#[inline(always)]
fn span(lo: u32, hi: u32) -> u64 {
    let below = |n: u32| if n >= 64 { !0 } else { (1u64 << n) - 1 };
    below(hi) & !below(lo)
}

/// One open container of the validator.
#[derive(Clone, Copy, Default)]
struct Frame {
    object: bool,
    /// The next separator of this object must be `:`.
    want_colon: bool,
    /// The object closed right after it opened (`{}`).
    empty: bool,
}

/// What the validator tracks for path queries (`P`): per open container
/// its slot, and the queries not answered yet.
struct PathState<'q> {
    /// Sorted query positions, and the first one not answered.
    starts: &'q [usize],
    next: usize,
    /// `starts[next]`, `usize::MAX` when every query is answered: the one
    /// value each block compares against.
    due: usize,
    /// Per open container: an object's last `:` (`usize::MAX` before the
    /// first), an array's index so far (commas seen); the innermost one in
    /// `top_slot` (updated per block), the outer ones in `slots`.
    slots: Vec<usize>,
    top_slot: usize,
    out: Answers,
}

struct Grammar<'q, const P: bool> {
    paths: PathState<'q>,
    stack: [Frame; MAX_DEPTH],
    depth: usize,
    /// Carries of `next_after` for separators, values, non-string values.
    after_sep: u64,
    after_value: u64,
    after_plain: u64,
    /// Inside an escape that covers the next backslash (a surrogate pair).
    escape_end: usize,
    /// Current run of blocks with non-ASCII bytes: first and last such byte.
    utf8: Option<(usize, usize)>,
    /// The last block passed the two-byte check and ends with a lead byte.
    utf8_lead: u64,
    /// Nonzero while the next block must take the general path even
    /// without rare bytes: an escape, a lead byte or a UTF-8 run pending.
    cold: u64,
}

/// The open containers as `resolve` reads them: the outer ones' frames
/// and slots (outermost first), and the innermost one's.
struct Open<'a> {
    stack: &'a [Frame],
    slots: &'a [usize],
    top: Option<(Frame, usize)>,
}

impl Open<'_> {
    /// The path of the token whose content ends at bit `bit` of the block
    /// (in the stretch starting at `from`): every open container's slot,
    /// the innermost one as of that token.
    /// `seps` holds the block's colons and commas outside strings.
    fn path_at(
        &self,
        doc: &[u8],
        base: usize,
        from: u32,
        bit: u32,
        seps: [u64; 2],
        out: &mut HitPaths,
    ) {
        let [colon, comma] = seps;
        let Some((top, slot)) = self.top else {
            return;
        };
        for (frame, &slot) in self.stack.iter().zip(self.slots) {
            if frame.object {
                key_before_colon(doc, slot, out);
            } else {
                out.push_index(slot);
            }
        }
        let before = span(from, bit);
        if !top.object {
            out.push_index(slot + (comma & before).count_ones() as usize);
        } else if top.want_colon ^ (((colon | comma) & before).count_ones() & 1 == 1) {
            // Before this object's next `:`: the token is a key.
            key_ending_at(doc, base + bit as usize, out);
        } else {
            let colons = colon & before;
            let colon = if colons != 0 {
                base + 63 - colons.leading_zeros() as usize
            } else {
                slot
            };
            key_before_colon(doc, colon, out);
        }
    }
}

impl<const P: bool> Grammar<'_, P> {
    /// Separators `sep`/`colon` (bits of the block at `base`) of one
    /// stretch between brackets, all in the innermost container.
    #[inline(always)]
    fn stretch<C: Classify>(&mut self, base: usize, sep: u64, colon: u64) -> bool {
        // No early exit for a stretch without separators: whether one has
        // any is data-dependent and mispredicts; the work below is a few
        // bit operations either way.
        let Some(top) = self
            .depth
            .checked_sub(1)
            .and_then(|d| self.stack.get_mut(d))
        else {
            return sep == 0; // separators at the top level
        };
        if !top.object {
            if P {
                self.paths.top_slot += sep.count_ones() as usize;
            }
            return colon == 0;
        }
        let odd = C::odd_bits(sep);
        // `odd` when the next separator must be `:`, else the even ones.
        let want = odd ^ (sep & u64::from(top.want_colon).wrapping_sub(1));
        top.want_colon ^= sep.count_ones() & 1 == 1;
        if P && colon != 0 {
            self.paths.top_slot = base + 63 - colon.leading_zeros() as usize;
        }
        colon == want
    }

    /// Token ends of the block at `base` when a query may be answered in
    /// it, else 0: closing quotes (a string's content ends there) and the
    /// byte after each scalar, from the first pending query on.
    #[inline(always)]
    fn marks(&self, base: usize, m: &Masks) -> u64 {
        self.still_due(base, m.qc | m.scal_end)
    }

    /// The token ends `marks` of the block at `base` at or after the first
    /// pending query: one that ends before it answers nothing, and without
    /// the cut each stretch that holds one would call `resolve` for nothing
    /// (also after `resolve` answered the block's queries).
    #[inline(always)]
    fn still_due(&self, base: usize, marks: u64) -> u64 {
        let due = self.paths.due;
        if due < base + 64 {
            marks & (!0u64 << due.saturating_sub(base))
        } else {
            0
        }
    }

    /// Answers the queries owned by the token ends `marks` of the stretch
    /// that starts at bit `from` (before its separators are counted).
    #[cold]
    fn resolve(&mut self, doc: &[u8], base: usize, from: u32, marks: u64, seps: [u64; 2]) {
        self.answer(doc, base, from, marks, seps);
        let p = &mut self.paths;
        p.due = p.starts.get(p.next).copied().unwrap_or(usize::MAX);
    }

    #[inline(always)]
    fn answer(&mut self, doc: &[u8], base: usize, from: u32, marks: u64, seps: [u64; 2]) {
        // The answers are written while the open containers are read:
        // borrowed field by field, nothing is moved.
        let p = &mut self.paths;
        let outer = self.depth.saturating_sub(1);
        let open = Open {
            stack: self.stack.get(..outer).unwrap_or_default(),
            slots: &p.slots,
            top: self
                .depth
                .checked_sub(1)
                .and_then(|d| self.stack.get(d))
                .map(|&f| (f, p.top_slot)),
        };
        while let Some(&h) = p.starts.get(p.next) {
            if h >= base + 64 {
                return;
            }
            let owned = if h <= base {
                marks
            } else {
                marks & (!0u64 << (h - base))
            };
            if owned == 0 {
                return;
            }
            let bit = owned.trailing_zeros();
            let mark = p.out.mark();
            open.path_at(doc, base, from, bit, seps, &mut p.out);
            let end = base + bit as usize;
            let rest = p.starts.get(p.next..).unwrap_or_default();
            // At least the query `h` (the token ends at or after it);
            // rarely more than one; they share the answer.
            let owners = rest.iter().take_while(|&&h| h <= end).count();
            for q in p.next..p.next + owners {
                p.out.answer(q, mark);
            }
            p.next += owners.max(1);
        }
    }

    fn open(&mut self, doc: &[u8], pos: usize, object: bool) -> bool {
        // Bit tests, not a `match`: that compiles to a jump table, an
        // indirect branch per bracket.
        let next = doc.get(skip_ws(doc, pos + 1)).copied().unwrap_or(0);
        let empty = object && next == b'}';
        let ok = if object {
            next == b'"' || empty
        } else {
            next < 128 && AFTER_SQUARE >> next & 1 != 0
        };
        let Some(slot) = self.stack.get_mut(self.depth) else {
            return false; // deeper than MAX_DEPTH
        };
        *slot = Frame {
            object,
            want_colon: true,
            empty,
        };
        if P && self.depth > 0 {
            self.paths.slots.push(self.paths.top_slot);
        }
        if P {
            self.paths.top_slot = if object { usize::MAX } else { 0 };
        }
        self.depth += 1;
        ok
    }

    fn close(&mut self, object: bool) -> bool {
        let Some(d) = self.depth.checked_sub(1) else {
            return false;
        };
        let top = self.stack.get(d).copied().unwrap_or_default();
        self.depth = d;
        if P && d > 0 {
            self.paths.top_slot = self.paths.slots.pop().unwrap_or_default();
        }
        top.object == object && (!object || !top.want_colon || top.empty)
    }

    /// Brackets of the block in order, with the separator stretches
    /// between them; returns the masks of opening and closing brackets.
    #[inline(always)]
    fn brackets<C: Classify>(&mut self, doc: &[u8], base: usize, m: &Masks) -> Option<u64> {
        let sep = m.colon | m.comma;
        let mut brackets = m.op & !sep;
        let mut marks = if P { self.marks(base, m) } else { 0 };
        if brackets == 0 {
            // Most blocks: one stretch, the whole block.
            if P && marks != 0 {
                self.resolve(doc, base, 0, marks, [m.colon, m.comma]);
            }
            return self.stretch::<C>(base, sep, m.colon).then_some(0);
        }
        let mut close = 0;
        let mut from = 0;
        // The bits after the last bracket seen (from `from` on).
        let mut rest = !0u64;
        while brackets != 0 {
            let t = brackets.trailing_zeros();
            // The bits up to and including this bracket (`blsmsk`).
            let upto = brackets ^ (brackets - 1);
            let s = rest & upto >> 1;
            // A scalar right before the bracket ends at the bracket.
            let mine = marks & rest & upto;
            if P && mine != 0 {
                self.resolve(doc, base, from, mine, [m.colon, m.comma]);
                marks = self.still_due(base, marks);
            }
            if !self.stretch::<C>(base, sep & s, m.colon & s) {
                return None;
            }
            let pos = base + t as usize;
            let &b = doc.get(pos)?;
            // `b` is a bracket (`op` less separators): `{` 0x7b, `}` 0x7d,
            // `[` 0x5b, `]` 0x5d; bit 0x20 marks objects, 0x02 opening ones.
            let object = b & 0x20 != 0;
            let ok = if b & 0x02 != 0 {
                self.open(doc, pos, object)
            } else {
                close |= 1 << t;
                self.close(object)
            };
            if !ok {
                return None;
            }
            from = t + 1;
            rest = !upto;
            brackets &= brackets - 1;
        }
        let s = rest;
        if P && marks & s != 0 {
            self.resolve(doc, base, from, marks & s, [m.colon, m.comma]);
        }
        self.stretch::<C>(base, sep & s, m.colon & s)
            .then_some(close)
    }

    /// One block; `PLAIN` for a block without backslashes, control or
    /// non-ASCII bytes when nothing of the rare state is pending (`cold`
    /// is 0): a copy without their checks.
    #[inline(always)]
    fn block<C: Classify, const PLAIN: bool>(
        &mut self,
        doc: &[u8],
        base: usize,
        block: &[u8; 64],
        m: &Masks,
    ) -> bool {
        let c = &m.c;
        if self.inside_string::<PLAIN>(m) {
            return true;
        }
        // Control bytes: only whitespace, and never inside a string.
        if !PLAIN && c.ctrl & (m.in_str | !c.ws) != 0 {
            return false;
        }
        let Some(close) = self.brackets::<C>(doc, base, m) else {
            return false;
        };
        // Most API bodies are compact: without whitespace in the block the
        // token-follower tests reduce to shifts (a copy with `ws` zero).
        let follows = if m.ws == 0 {
            self.follows(m, 0, close)
        } else {
            self.follows(m, m.ws, close)
        };
        if !follows {
            return false;
        }
        let starts = m.scal & !m.cont;
        if starts != 0 && !simple_numbers::<C>(block, m, starts) {
            let mut s = starts;
            while s != 0 {
                if !scalar_ok(doc, base + s.trailing_zeros() as usize) {
                    return false;
                }
                s &= s - 1;
            }
        }
        if PLAIN {
            return true;
        }
        let mut e = c.backslash & m.in_str & !m.qo;
        while e != 0 {
            let pos = base + e.trailing_zeros() as usize;
            e &= e - 1;
            // Escaped backslashes are not in `e` only when they are the
            // second byte of `\\`; skip those too.
            if pos < self.escape_end {
                continue;
            }
            match escape(doc, pos) {
                Ok((len, _)) => self.escape_end = pos + len,
                Err(_) => return false,
            }
        }
        self.utf8_block::<C>(doc, base, block, c.high)
    }

    /// What may follow what, outside strings and across whitespace `ws`
    /// (the block's, or 0 for a copy specialised to compact blocks): a
    /// value after a separator (or the start), a separator or a closing
    /// bracket after a value, and `:` only after a string. (The token
    /// after a separator is not a separator or a closing bracket: the
    /// rest start a value, as the token after a value must not.)
    #[inline(always)]
    fn follows(&mut self, m: &Masks, ws: u64, close: u64) -> bool {
        let sep = m.colon | m.comma;
        let after_sep = next_after(sep, ws, &mut self.after_sep);
        // A scalar ends where stage 1 says (`scal_end`, carried across
        // blocks): no shift of its bytes, no mask of their continuations.
        let after_value = next_after_or(m.qc | close, m.scal_end, ws, &mut self.after_value);
        let after_plain = next_after_or(close, m.scal_end, ws, &mut self.after_plain);
        let ends = sep | close;
        (after_sep & ends) | (after_value & !ends) | (after_plain & m.colon) == 0
    }

    /// A block wholly inside one string, with no quote, backslash, control
    /// or non-ASCII byte, and nothing pending: no token starts or ends in
    /// it, so the grammar has nothing to check (its carries are all zero,
    /// and stay zero).
    #[inline(always)]
    fn inside_string<const PLAIN: bool>(&self, m: &Masks) -> bool {
        let c = &m.c;
        if PLAIN {
            return m.in_str == !0 && c.quote == 0 && self.after_sep | self.after_value == 0;
        }
        m.in_str == !0
            && c.quote | c.backslash | c.ctrl | c.high == 0
            && self.after_sep | self.after_value | self.utf8_lead == 0
            && self.utf8.is_none()
    }

    /// Non-ASCII bytes of one block. A block whose non-ASCII bytes are all
    /// two-byte sequences (Latin names: `é`, `ø`) is checked with two
    /// masks; otherwise runs of blocks holding non-ASCII bytes are checked
    /// as UTF-8 from their first to their last such byte when they end (the
    /// bytes around a run are ASCII, so that is exactly the document's
    /// validity).
    #[inline(always)]
    fn utf8_block<C: Classify>(
        &mut self,
        doc: &[u8],
        base: usize,
        block: &[u8; 64],
        high: u64,
    ) -> bool {
        if high == 0 {
            // A lead byte ending the previous block needs a continuation.
            return self.utf8_lead == 0 && self.utf8_end(doc);
        }
        let last = base + 63 - high.leading_zeros() as usize;
        if let Some((first, _)) = self.utf8 {
            self.utf8 = Some((first, last));
            return true;
        }
        let (lead, cont) = C::utf8_pairs(block);
        if lead | cont == high && cont == (lead << 1 | self.utf8_lead) {
            self.utf8_lead = lead >> 63;
            return true;
        }
        // Start a run, at the lead byte the previous block ended with if any.
        let first = if self.utf8_lead != 0 {
            base.saturating_sub(1)
        } else {
            base + high.trailing_zeros() as usize
        };
        self.utf8_lead = 0;
        self.utf8 = Some((first, last));
        true
    }

    fn utf8_end(&mut self, doc: &[u8]) -> bool {
        match self.utf8.take() {
            Some((f, l)) => doc
                .get(f..=l)
                .is_some_and(|s| std::str::from_utf8(s).is_ok()),
            None => true,
        }
    }
}

/// Whether every scalar run starting in the block (`starts`) is a number
/// of the form `-?(0|[1-9][0-9]*)(\.[0-9]+)?` inside the block, checked
/// with masks. False sends the block's runs to `scalar_ok`, which is exact:
/// exponents, literals, runs reaching the block's last byte, and invalid
/// scalars. (A run carried in from the previous block reached that
/// block's last byte, so `scalar_ok` checked it there.)
#[inline(always)]
fn simple_numbers<C: Classify>(block: &[u8; 64], m: &Masks, starts: u64) -> bool {
    let s = m.scal;
    let carried = if m.cont & 1 != 0 {
        s & !s.wrapping_add(1)
    } else {
        0
    };
    let own = s & !carried;
    if own >> 63 != 0 {
        return false;
    }
    let [digit, zero, minus, dot] = C::number_bytes(block).map(|x| x & own);
    // The first digit of each run, after an optional `-`.
    let first = (starts & digit) | (starts & minus) << 1;
    // Digits after a `.`, to the end of their run of digits: a run holds
    // no more scalar bytes after them (a second `.`).
    let frac = digit & !digit.wrapping_add(dot << 1 & digit);
    let bad = (own & !(digit | minus | dot))
        | (minus & !starts)
        | (minus & !(digit >> 1))
        | (first & zero & digit >> 1)
        | (dot & !(digit << 1))
        | (dot & !(digit >> 1))
        | (frac << 1 & !frac & own);
    bad == 0
}

/// A number or literal starting at `p` that fills its whole run of
/// scalar bytes.
#[inline]
fn scalar_ok(doc: &[u8], p: usize) -> bool {
    let end = match doc.get(p) {
        Some(b'-' | b'0'..=b'9') => number(doc, p).ok(),
        Some(&b) => {
            let lit: &[u8] = match b {
                b't' => b"true",
                b'f' => b"false",
                b'n' => b"null",
                _ => return false,
            };
            (doc.get(p..p + lit.len()) == Some(lit)).then_some(p + lit.len())
        }
        None => None,
    };
    end.is_some_and(|e| {
        doc.get(e).is_none_or(|b| {
            matches!(
                b,
                b' ' | b'\t' | b'\n' | b'\r' | b'"' | b',' | b':' | b'[' | b']' | b'{' | b'}'
            )
        })
    })
}

/// Adds the key whose closing quote is at `close`, decoded (empty if there
/// is none, which only an invalid document gives).
fn key_ending_at(doc: &[u8], close: usize, out: &mut HitPaths) {
    let Some(head) = doc.get(..close) else {
        return out.push_key(|_| ());
    };
    // The opening quote is the first `"` before that no backslash escapes
    // (an odd run of backslashes before a quote escapes it). Keys are
    // short: a plain loop beats a vector search here, and it notes whether
    // the key holds a backslash at all (most do not: copied as they are).
    let mut escaped = false;
    let mut i = head.len();
    let open = loop {
        let Some(q) = last_quote_or_backslash(&head[..i]) else {
            return out.push_key(|_| ());
        };
        if head[q] == b'\\' {
            escaped = true;
            i = q;
            continue;
        }
        let run = head[..q].iter().rev().take_while(|&&b| b == b'\\').count();
        if run % 2 == 0 {
            break q;
        }
        escaped = true;
        i = q - run;
    };
    let raw = head.get(open + 1..).unwrap_or_default();
    if escaped {
        out.push_key(|key| unescape_into(raw, key));
    } else {
        out.push_key(|key| key.extend_from_slice(raw));
    }
}

/// The last `"` or `\\` of `head`: eight bytes at a time from the end, with
/// exact per-byte equality masks (no carry crosses a byte, so the highest
/// flagged byte is a real match).
fn last_quote_or_backslash(head: &[u8]) -> Option<usize> {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let eq = |w: u64, c: u8| {
        let v = w ^ (ONES * u64::from(c));
        !(((v & LOW7) + LOW7) | v) & !LOW7
    };
    let mut end = head.len();
    while let Some(chunk) = end.checked_sub(8).and_then(|s| head.get(s..end)) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let m = eq(w, b'"') | eq(w, b'\\');
        if m != 0 {
            return Some(end - 8 + (63 - m.leading_zeros() as usize) / 8);
        }
        end -= 8;
    }
    head.get(..end)?
        .iter()
        .rposition(|&b| b == b'"' || b == b'\\')
}

/// Adds the key of the `:` at `colon` (whitespace may separate them).
fn key_before_colon(doc: &[u8], colon: usize, out: &mut HitPaths) {
    let head = doc.get(..colon).unwrap_or_default();
    let ws = head
        .iter()
        .rev()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    match (head.len() - ws).checked_sub(1) {
        Some(close) => key_ending_at(doc, close, out),
        None => out.push_key(|_| ()),
    }
}

/// Marks the branch that calls it as rarely taken, so the register
/// allocator keeps the plain path's state in registers and spills in the
/// general one (`std::hint::cold_path` is newer than the crate's MSRV).
#[cold]
#[inline(never)]
fn cold_path() {}

#[inline(always)]
pub(super) fn validate_with<C: Classify>(doc: &[u8]) -> bool {
    run::<C, false>(doc, &[]).is_some()
}

#[inline(always)]
fn run<C: Classify, const P: bool>(doc: &[u8], starts: &[usize]) -> Option<Answers> {
    let mut s1 = Stage1::default();
    let mut g = Grammar::<P> {
        paths: PathState {
            starts,
            next: 0,
            due: starts.first().copied().unwrap_or(usize::MAX),
            slots: Vec::new(),
            top_slot: 0,
            out: HitPaths::with_queries(if P { starts.len() } else { 0 }),
        },
        stack: [Frame::default(); MAX_DEPTH],
        depth: 0,
        // The start of the document wants a value, like a separator.
        after_sep: 1,
        after_value: 0,
        after_plain: 0,
        escape_end: 0,
        utf8: None,
        utf8_lead: 0,
        cold: 0,
    };
    let ok = blocks(
        doc,
        #[inline(always)]
        |base, block| {
            let c = C::classify(block);
            // Most blocks: no backslash, control or non-ASCII byte.
            if c.backslash | c.ctrl | c.high | g.cold == 0 {
                let m = s1.block::<C, true>(c);
                return g.block::<C, true>(doc, base, block, &m);
            }
            cold_path();
            let m = s1.block::<C, false>(c);
            let ok = g.block::<C, false>(doc, base, block, &m);
            g.cold = s1.escaped() | g.utf8_lead | u64::from(g.utf8.is_some());
            ok
        },
    );
    let valid = ok
        && !s1.open_string()
        && g.depth == 0
        && g.after_sep == 0
        && g.utf8_lead == 0
        && g.utf8_end(doc);
    if !valid {
        return None;
    }
    if P && s1.ends_in_scalar() {
        // A top-level scalar filling the last block ends with the document.
        let p = &mut g.paths;
        while let Some(&h) = p.starts.get(p.next) {
            if h > doc.len() {
                break;
            }
            let mark = p.out.mark();
            p.out.answer(p.next, mark);
            p.next += 1;
        }
    }
    Some(g.paths.out)
}

#[cfg(test)]
mod tests {
    use super::super::{tokenize, Segment, Visitor};
    use super::*;
    use std::ops::Range;

    #[derive(Debug, PartialEq, Eq)]
    enum Ev {
        Open(bool),
        Close,
        Key(Range<usize>, bool),
        Str(Range<usize>, bool),
        Scalar(Range<usize>, bool),
    }

    #[derive(Default)]
    struct Rec(Vec<Ev>);
    impl Visitor for Rec {
        fn open(&mut self, o: bool) {
            self.0.push(Ev::Open(o))
        }
        fn close(&mut self) {
            self.0.push(Ev::Close)
        }
        fn key(&mut self, r: Range<usize>, e: bool) {
            self.0.push(Ev::Key(r, e))
        }
        fn string(&mut self, r: Range<usize>, e: bool) {
            self.0.push(Ev::Str(r, e))
        }
        fn scalar(&mut self, r: Range<usize>, n: bool) {
            self.0.push(Ev::Scalar(r, n))
        }
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            crate::test_rng::xorshift(&mut self.0)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() >> 16) as usize % n.max(1)
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.below(xs.len())]
        }
    }

    fn ws(r: &mut Rng, out: &mut String) {
        if r.below(3) == 0 {
            out.push_str(r.pick(&[
                " ",
                "\n  ",
                "\t",
                "\r\n",
                "                                                                  ",
            ]));
        }
    }

    /// A random valid document (strings long enough to cross blocks).
    fn value(r: &mut Rng, depth: usize, out: &mut String) {
        ws(r, out);
        match if depth > 6 {
            2 + r.below(4)
        } else {
            r.below(6)
        } {
            0 => {
                out.push('{');
                for i in 0..r.below(5) {
                    if i > 0 {
                        out.push(',');
                    }
                    ws(r, out);
                    string(r, out);
                    ws(r, out);
                    out.push(':');
                    value(r, depth + 1, out);
                }
                ws(r, out);
                out.push('}');
            }
            1 => {
                out.push('[');
                for i in 0..r.below(5) {
                    if i > 0 {
                        out.push(',');
                    }
                    value(r, depth + 1, out);
                }
                ws(r, out);
                out.push(']');
            }
            2 | 3 => string(r, out),
            4 => out.push_str(r.pick(&["0", "-12.5e+3", "1e9", "123456789012345", "0.25", "-0"])),
            _ => out.push_str(r.pick(&["true", "false", "null"])),
        }
        ws(r, out);
    }

    fn string(r: &mut Rng, out: &mut String) {
        out.push('"');
        for _ in 0..r.below(40) {
            out.push_str(r.pick(&[
                "a",
                "b",
                "x y",
                "é",
                "😀",
                "\\\"",
                "\\\\",
                "\\n",
                "\\u00e9",
                "\\ud83d\\ude00",
                "\\/",
                "{",
                "]",
                ":",
                ",",
                "0123456789abcdef0123456789",
            ]));
        }
        out.push('"');
    }

    const NOISE: &[u8] =
        b"{}[]:,\"\\ \n\tabtrufalsenul0123456789-+.eE\xc3\xa9\x80\xff\x01\x1a\x0c\x7f";

    fn mutate(r: &mut Rng, doc: &mut Vec<u8>) {
        for _ in 0..1 + r.below(3) {
            let at = r.below(doc.len() + 1);
            let b = NOISE[r.below(NOISE.len())];
            match r.below(3) {
                0 if at < doc.len() => doc[at] = b,
                1 if at < doc.len() => {
                    doc.remove(at);
                }
                _ => doc.insert(at, b),
            }
        }
    }

    fn check(doc: &[u8]) {
        let mut want = Rec::default();
        let ok = tokenize(doc, &mut want).is_ok();
        assert_eq!(validate(doc), ok, "{:?}", String::from_utf8_lossy(doc));
        assert_eq!(
            validate_with::<Scalar>(doc),
            ok,
            "{:?}",
            String::from_utf8_lossy(doc)
        );
        #[cfg(target_arch = "x86_64")]
        if super::super::stage1::x86::available() {
            // SAFETY: the AVX2 path's features are present (just checked).
            let avx2 = unsafe { validate_avx2(doc) };
            assert_eq!(avx2, ok, "{:?}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn agrees_with_the_tokenizer_on_number_soup_at_every_offset() {
        let mut r = Rng(0x0bad_cafe);
        let alphabet = b"0123456789-+.eE";
        for _ in 0..3000 {
            let mut d = b"[".to_vec();
            d.extend(std::iter::repeat_n(b' ', r.below(64)));
            for i in 0..1 + r.below(6) {
                if i > 0 {
                    d.push(b',');
                }
                // Mostly plausible numbers, some soup.
                let n = 1 + r.below(9);
                for k in 0..n {
                    let b = match r.below(4) {
                        0 => alphabet[r.below(alphabet.len())],
                        _ if k == 0 && r.below(3) == 0 => b'-',
                        _ if k == 2 && r.below(2) == 0 => b'.',
                        _ => b'0' + r.below(10) as u8,
                    };
                    d.push(b);
                }
            }
            d.push(b']');
            check(&d);
        }
    }

    #[test]
    fn agrees_with_the_tokenizer_on_random_and_mutated_documents() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let mut s = String::new();
            value(&mut r, 0, &mut s);
            check(s.as_bytes());
            let mut doc = s.into_bytes();
            for _ in 0..4 {
                mutate(&mut r, &mut doc);
                check(&doc);
            }
        }
        for _ in 0..20000 {
            let doc: Vec<u8> = (0..r.below(150))
                .map(|_| NOISE[r.below(NOISE.len())])
                .collect();
            check(&doc);
        }
    }

    #[test]
    fn agrees_with_the_tokenizer_on_edge_cases() {
        let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
        let cases: Vec<Vec<u8>> = [
            "",
            " ",
            "{}",
            "[]",
            "{ }",
            "[ ]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1,]",
            "[,1]",
            "{,}",
            "{\"a\":1 \"b\":2}",
            "{\"a\":\"b\":\"c\"}",
            "{\"a\",1}",
            "[1:2]",
            "{1:2}",
            "{\"a\":1,2:3}",
            "{\"a\":{}:1}",
            "{\"a\":{\"b\":1}:2}",
            "[\"a\":1]",
            "\"a\" \"b\"",
            "1 2",
            "{} {}",
            "1,",
            ",",
            ":",
            "\"a\":1",
            "]",
            "}",
            "[}",
            "{]",
            "truex",
            "true1",
            "nulll",
            "01",
            "-",
            "1.",
            "1e",
            "1e+",
            "-01",
            "[-]",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\ud800\\u0041\"",
            "\"\\udc00\"",
            "\"\\x\"",
            "\"a\\",
            "\"a",
            "\u{feff}1",
            "[1]x",
            "[\"\\\\\"]",
            "[\"\\\\\\\"\"]",
            "{\"\\\"\":1}",
            "[\"a\t\"]",
            " [ 1 , 2 ] ",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([
            deep(MAX_DEPTH).into_bytes(),
            deep(MAX_DEPTH + 1).into_bytes(),
            b"[\"\xc3\"]".to_vec(),
            b"[\"\xc3\xa9\"]".to_vec(),
            b"[1\xc3\xa9]".to_vec(),
            b"[\"\xed\xa0\x80\"]".to_vec(),
            b"\x1a".to_vec(),
            b"[1\x1a2]".to_vec(),
            b"{\"a\"\x1a1}".to_vec(),
            b"[1\x0c2]".to_vec(),
        ])
        .collect();
        for c in &cases {
            check(c);
            // The same at every offset of a block, and split across blocks.
            for pad in [1, 30, 60, 62, 63, 64, 65] {
                let mut d = vec![b' '; pad];
                d.extend_from_slice(c);
                check(&d);
                let mut d = b"[".to_vec();
                d.extend(std::iter::repeat_n(b' ', pad));
                d.extend_from_slice(c);
                d.push(b']');
                check(&d);
                let mut d = format!("[\"{}\",", "x".repeat(pad)).into_bytes();
                d.extend_from_slice(c);
                d.push(b']');
                check(&d);
            }
        }
    }

    #[test]
    fn agrees_with_the_tokenizer_on_utf8_at_every_block_offset() {
        let pieces: &[&[u8]] = &[
            b"\xc3\xa9",
            b"\xc3",
            b"\xa9",
            b"\xc3\xc3\xa9",
            b"\xc3\xa9\xa9",
            b"\xf0\x9f\x98\x80",
            b"\xe2\x82\xac\xc3\xa9",
            b"\xc3\xa9\xe2\x82",
            b"\xc1\xbf",
            b"\xe0\x80\x80",
            b"\xff",
        ];
        for piece in pieces {
            for pad in 0..140 {
                let mut d = b"[\"".to_vec();
                d.extend(std::iter::repeat_n(b'a', pad));
                d.extend_from_slice(piece);
                d.extend_from_slice(b"\",\"\xc3\xb8\"]");
                check(&d);
                let mut d = b"\"".to_vec();
                d.extend(std::iter::repeat_n(b'a', pad));
                d.extend_from_slice(piece);
                check(&d);
                d.push(b'"');
                check(&d);
            }
        }
    }

    /// Every key and leaf `walk` reports: content end and path.
    struct Leaves(Vec<(usize, Vec<Segment>)>);
    impl super::super::LeafSink for Leaves {
        fn leaf(&mut self, leaf: super::super::Leaf<'_>) {
            self.0.push((leaf.raw.end, leaf.path()));
        }
    }

    /// `validate_paths` (vector and scalar) against `walk`, the way
    /// `PathSink` assigns paths: for every position of `doc`, then for a
    /// sparse subset (answers must not depend on the other queries).
    fn check_paths(doc: &[u8], r: &mut Rng) {
        let mut leaves = Leaves(Vec::new());
        let walked = super::super::walk(doc, 0..doc.len(), &mut leaves).is_ok();
        let all: Vec<usize> = (0..=doc.len()).collect();
        let mut some: Vec<usize> = all.iter().copied().filter(|_| r.below(9) == 0).collect();
        some.dedup();
        for starts in [all, some] {
            let want: Option<Vec<Option<Vec<Segment>>>> = walked.then(|| {
                starts
                    .iter()
                    .map(|&h| {
                        leaves
                            .0
                            .iter()
                            .find(|(end, _)| *end >= h)
                            .map(|(_, p)| p.clone())
                    })
                    .collect()
            });
            let show = String::from_utf8_lossy(doc);
            let got = |a: Option<Answers>| a.map(|a| a.all_segments());
            assert_eq!(got(validate_paths(doc, &starts)), want, "{show:?}");
            assert_eq!(got(run::<Scalar, true>(doc, &starts)), want, "{show:?}");
            #[cfg(target_arch = "x86_64")]
            if super::super::stage1::x86::available() {
                // SAFETY: the AVX2 path's features are present (just checked).
                let avx2 = unsafe { validate_paths_avx2(doc, &starts) };
                assert_eq!(got(avx2), want, "{show:?}");
            }
        }
    }

    #[test]
    fn the_backward_search_finds_the_last_quote_or_backslash() {
        let mut r = Rng(0x7e57);
        for _ in 0..5000 {
            let head: Vec<u8> = (0..r.below(40))
                .map(|_| b"ab\"\\\xa2\xdc\x22\x5c\x00\xff"[r.below(10)])
                .collect();
            let want = head.iter().rposition(|&b| b == b'"' || b == b'\\');
            assert_eq!(last_quote_or_backslash(&head), want, "{head:?}");
        }
    }

    /// Keys that stress the scan back from `:` to the opening quote.
    fn awkward_key(r: &mut Rng, out: &mut String) {
        out.push_str(r.pick(&[
            "\"\"",
            "\"a\\\\\"",
            "\"\\\"\"",
            "\"x\\\"y\\\\\"",
            "\"\\u0041b\"",
            "\"\\ud83d\\ude00\"",
            "\"é\"",
            "\"k:,{}[]\"",
        ]));
    }

    fn tricky(r: &mut Rng, depth: usize, out: &mut String) {
        ws(r, out);
        match if depth > 5 {
            3 + r.below(3)
        } else {
            r.below(6)
        } {
            0 => {
                out.push('{');
                for i in 0..r.below(4) {
                    if i > 0 {
                        out.push(',');
                    }
                    ws(r, out);
                    if r.below(2) == 0 {
                        awkward_key(r, out);
                    } else {
                        string(r, out);
                    }
                    ws(r, out);
                    out.push(':');
                    tricky(r, depth + 1, out);
                }
                ws(r, out);
                out.push('}');
            }
            1 | 2 => {
                out.push('[');
                for i in 0..r.below(5) {
                    if i > 0 {
                        out.push(',');
                    }
                    tricky(r, depth + 1, out);
                }
                ws(r, out);
                out.push(']');
            }
            3 => string(r, out),
            4 => out.push_str(r.pick(&["0", "-12.5e+3", "123456789012345", "[]", "{}", "[[]]"])),
            _ => out.push_str(r.pick(&["true", "null", "1"])),
        }
        ws(r, out);
    }

    #[test]
    fn hit_paths_equal_the_walk_on_random_documents() {
        let mut r = Rng(0x51ed_270b_1f3a_0c77);
        for i in 0..1500 {
            let mut s = " ".repeat(r.below(70));
            if i % 2 == 0 {
                value(&mut r, 0, &mut s);
            } else {
                tricky(&mut r, 0, &mut s);
            }
            check_paths(s.as_bytes(), &mut r);
            let mut doc = s.into_bytes();
            mutate(&mut r, &mut doc);
            check_paths(&doc, &mut r);
        }
    }

    #[test]
    fn hit_paths_equal_the_walk_at_block_edges() {
        let mut r = Rng(7);
        let cases = [
            "1",
            "\"ab\"",
            "{\"a\":1}",
            "[1,2]",
            "{\"a\":[1,{\"b\":true}],\"c\":\"x\"}",
            "{\"a\\\"\":{},\"b\":[]}",
            "{}",
            "[]",
        ];
        for c in cases {
            for pad in 0..140 {
                for d in [
                    format!("{}{c}", " ".repeat(pad)),
                    format!("{c}{}", " ".repeat(pad)),
                    format!("[{},{c}]", "7".repeat(pad + 1)),
                    format!("{{\"{}\":{c}}}", "k".repeat(pad)),
                    format!("[\"{}\",{c},{}]", "s".repeat(pad), "8".repeat(pad + 1)),
                ] {
                    check_paths(d.as_bytes(), &mut r);
                }
            }
        }
        // A top-level scalar that ends exactly at a block end.
        for n in [63, 64, 65, 128] {
            check_paths("9".repeat(n).as_bytes(), &mut r);
            check_paths(format!("{}1", " ".repeat(n - 1)).as_bytes(), &mut r);
        }
    }

    #[test]
    fn hit_paths_equal_the_walk_on_the_fuzz_corpus() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/json"));
        let mut r = Rng(11);
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                check_paths(&std::fs::read(&path).unwrap(), &mut r);
            }
        }
    }

    #[test]
    fn agrees_with_the_tokenizer_on_the_fuzz_corpus() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/json"));
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let doc = std::fs::read(&path).unwrap();
                check(&doc);
                let mut r = Rng(n as u64 + 1);
                for _ in 0..20 {
                    let mut d = doc.clone();
                    mutate(&mut r, &mut d);
                    check(&d);
                }
                n += 1;
            }
        }
        assert!(n >= 20);
    }
}
