//! A small backtracking matcher for the confirming patterns of token
//! detectors (`ghp_[A-Za-z0-9]{36}`, `xoxb-[0-9]{10,13}-...`).
//!
//! Those patterns are literals, byte classes, counted repetitions, a few
//! alternations and at most one capture group, always matched anchored on
//! a window of a few hundred bytes. The general regex engine pays for
//! generality twice there: building its automata costs milliseconds per
//! pattern (180 ms for the catalogue on the first scan in wasm), and each
//! anchored search walks a lazy DFA through per-byte state lookups. This
//! matcher is built from the parsed pattern (`regex-syntax`, microseconds)
//! and runs a repeated class as one tight loop over a 256-bit set.
//!
//! Semantics are the regex crate's leftmost-first ones, which are exactly
//! those of a backtracking matcher that tries greedy repetitions longest
//! first and alternatives left to right. Work is bounded by a step budget;
//! a search that would exceed it says so (`GaveUp`) and the caller asks
//! the regex engine instead, so results never depend on the budget.

use regex_syntax::hir::{Class, Hir, HirKind};

/// A 256-bit byte set.
type Set = [u64; 4];

fn set_has(set: &Set, b: u8) -> bool {
    set[usize::from(b >> 6)] >> (b & 63) & 1 == 1
}

fn disjoint(a: &Set, b: &Set) -> bool {
    a.iter().zip(b).all(|(x, y)| x & y == 0)
}

#[derive(Debug, Clone, Copy)]
enum Inst {
    Byte(u8),
    /// Bytes `lits[at..at + len]`, one instruction for a literal run of
    /// the pattern (`xoxb-`), not one per byte.
    Lit {
        at: u32,
        len: u32,
    },
    Class(u16),
    /// A greedy repetition of one byte class, `min..=max` times.
    /// `possessive`: what follows cannot start with a byte of the class,
    /// so only the longest run can be followed by a match.
    Repeat {
        class: u16,
        min: u32,
        max: u32,
        possessive: bool,
    },
    /// Try the first target, then the second.
    Split(u32, u32),
    /// A `Split` whose targets start with disjoint bytes and cannot match
    /// empty: only the one whose first bytes (class `first`, those of `a`)
    /// hold the next byte can match, so a linear walk picks it by that
    /// byte. The backtracking matcher treats it as the `Split`.
    Pick {
        a: u32,
        b: u32,
        first: u16,
    },
    Jump(u32),
    Save(u16),
    Match,
}

/// A search ran out of its step budget; ask the regex engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GaveUp;

/// Most backtracking steps per search: a few thousand covers every
/// catalogue pattern on any window; a hostile window gives up instead.
const BUDGET: u32 = 20_000;

/// Counted repetitions of anything but one byte class are unrolled; more
/// copies than this and the pattern is left to the regex engine.
const MAX_UNROLL: u32 = 8;

/// Capacities of a built matcher: the catalogue's largest pattern has 16
/// instructions, 3 classes, 46 literal bytes and 2 groups. A pattern that
/// needs more is left to the regex engine.
const MAX_PROG: usize = 32;
const MAX_CLASSES: usize = 8;
const MAX_LITS: usize = 64;
const MAX_SLOTS: usize = 8;

/// A matcher as one contiguous block (no heap parts): a confirmation
/// touches a detector's matcher once per hit, mostly cold, and the first
/// instruction's load was a quarter of the matcher's time when the
/// program, its classes and its literal bytes sat in separate heap
/// blocks behind the matcher; in one block they share cache lines and
/// the loads do not wait on each other's pointers.
pub(crate) struct Shape {
    /// The program; unused entries jump out of it (no match).
    prog: [Inst; MAX_PROG],
    /// The bytes of `Inst::Lit`s.
    lits: [u8; MAX_LITS],
    classes: [Set; MAX_CLASSES],
    /// Per class, the nibble table of the vector run counter (`Nibbles`),
    /// when the class is ASCII only.
    nibbles: [Option<Nibbles>; MAX_CLASSES],
    slots: usize,
    /// No alternative is ever tried: every alternation is a `Pick`, and
    /// each repetition is exact (`{n}`), followed by bytes outside its
    /// class, or followed by what always matches (`={0,2}`, the end), so
    /// its longest run is the only one that can be followed by a match.
    /// `find` then walks the program once (`find_linear`) without a step
    /// budget or recursion; all but a few catalogue patterns are of this
    /// form.
    linear: bool,
}

/// A matcher being built from the parsed pattern.
struct Builder {
    prog: Vec<Inst>,
    classes: Vec<Set>,
    lits: Vec<u8>,
    slots: usize,
}

impl Shape {
    /// The matcher for `pattern` (regex syntax, bytes, no Unicode), or
    /// `None` when it uses something this matcher does not do (look-around
    /// other than the implicit start anchor, lazy or unbounded complex
    /// repetitions, non-ASCII classes) or exceeds its capacities.
    pub(crate) fn new(pattern: &str) -> Option<Shape> {
        let hir = super::parse_byte_pattern(pattern)?;
        let mut b = Builder {
            prog: Vec::new(),
            classes: Vec::new(),
            lits: Vec::new(),
            slots: 2,
        };
        b.emit(&hir)?;
        b.prog.push(Inst::Match);
        b.mark_possessive();
        b.mark_picks();
        if b.prog.len() > MAX_PROG
            || b.classes.len() > MAX_CLASSES
            || b.lits.len() > MAX_LITS
            || b.slots > MAX_SLOTS
        {
            return None;
        }
        let mut s = Shape {
            prog: [Inst::Jump(u32::MAX); MAX_PROG],
            lits: [0; MAX_LITS],
            classes: [[0; 4]; MAX_CLASSES],
            nibbles: [None; MAX_CLASSES],
            slots: b.slots,
            linear: b.linear(),
        };
        s.prog[..b.prog.len()].copy_from_slice(&b.prog);
        s.lits[..b.lits.len()].copy_from_slice(&b.lits);
        s.classes[..b.classes.len()].copy_from_slice(&b.classes);
        for (n, c) in s.nibbles.iter_mut().zip(&b.classes) {
            *n = Nibbles::of(c);
        }
        Some(s)
    }
}

impl Builder {
    fn class_of(&mut self, hir: &Hir) -> Option<u16> {
        let mut set: Set = [0; 4];
        let mut add = |lo: u32, hi: u32| -> Option<()> {
            if hi > 0xFF {
                return None;
            }
            for b in lo..=hi {
                set[(b >> 6) as usize] |= 1 << (b & 63);
            }
            Some(())
        };
        match hir.kind() {
            HirKind::Class(Class::Bytes(c)) => {
                for r in c.ranges() {
                    add(u32::from(r.start()), u32::from(r.end()))?;
                }
            }
            HirKind::Class(Class::Unicode(c)) => {
                for r in c.ranges() {
                    if u32::from(r.end()) > 0x7F {
                        return None;
                    }
                    add(u32::from(r.start()), u32::from(r.end()))?;
                }
            }
            HirKind::Literal(l) if l.0.len() == 1 => add(u32::from(l.0[0]), u32::from(l.0[0]))?,
            _ => return None,
        }
        let at = match self.classes.iter().position(|c| *c == set) {
            Some(i) => i,
            None => {
                self.classes.push(set);
                self.classes.len() - 1
            }
        };
        u16::try_from(at).ok()
    }

    fn here(&self) -> Option<u32> {
        u32::try_from(self.prog.len()).ok()
    }

    fn emit(&mut self, hir: &Hir) -> Option<()> {
        match hir.kind() {
            HirKind::Empty => {}
            HirKind::Literal(l) => match *l.0 {
                [b] => self.prog.push(Inst::Byte(b)),
                _ => {
                    let at = u32::try_from(self.lits.len()).ok()?;
                    let len = u32::try_from(l.0.len()).ok()?;
                    self.lits.extend_from_slice(&l.0);
                    self.prog.push(Inst::Lit { at, len });
                }
            },
            HirKind::Class(_) => {
                let c = self.class_of(hir)?;
                self.prog.push(Inst::Class(c));
            }
            HirKind::Look(_) => return None,
            HirKind::Capture(c) => {
                let slot = usize::try_from(c.index).ok()? * 2;
                self.slots = self.slots.max(slot + 2);
                self.prog.push(Inst::Save(u16::try_from(slot).ok()?));
                self.emit(&c.sub)?;
                self.prog.push(Inst::Save(u16::try_from(slot + 1).ok()?));
            }
            HirKind::Concat(parts) => {
                for p in parts {
                    self.emit(p)?;
                }
            }
            HirKind::Alternation(alts) => {
                let mut jumps = Vec::new();
                for (i, alt) in alts.iter().enumerate() {
                    if i + 1 < alts.len() {
                        let split = self.prog.len();
                        self.prog.push(Inst::Split(0, 0));
                        self.emit(alt)?;
                        jumps.push(self.prog.len());
                        self.prog.push(Inst::Jump(0));
                        let next = self.here()?;
                        self.prog[split] = Inst::Split(u32::try_from(split + 1).ok()?, next);
                    } else {
                        self.emit(alt)?;
                    }
                }
                let end = self.here()?;
                for j in jumps {
                    self.prog[j] = Inst::Jump(end);
                }
            }
            HirKind::Repetition(r) => {
                if !r.greedy {
                    return None;
                }
                if let Some(class) = self.class_of(&r.sub) {
                    self.prog.push(Inst::Repeat {
                        class,
                        min: r.min,
                        max: r.max.unwrap_or(u32::MAX),
                        possessive: false,
                    });
                    return Some(());
                }
                let max = r.max?;
                if max > MAX_UNROLL {
                    return None;
                }
                for _ in 0..r.min {
                    self.emit(&r.sub)?;
                }
                // `x{0,2}` as `(?:x(?:x)?)?`: each optional copy may stop.
                let mut splits = Vec::new();
                for _ in r.min..max {
                    splits.push(self.prog.len());
                    self.prog.push(Inst::Split(0, 0));
                    self.emit(&r.sub)?;
                }
                let end = self.here()?;
                for s in splits {
                    self.prog[s] = Inst::Split(u32::try_from(s + 1).ok()?, end);
                }
            }
        }
        Some(())
    }

    /// See `Shape::linear`. Called after `mark_picks`.
    fn linear(&self) -> bool {
        self.prog.iter().enumerate().all(|(pc, inst)| match *inst {
            Inst::Split(..) => false,
            Inst::Repeat {
                class,
                min,
                max,
                possessive,
            } => {
                possessive
                    || min == max
                    || self.always_matches(pc + 1)
                    || match self.first(pc + 1) {
                        (set, false) => disjoint(&set, &self.classes[usize::from(class)]),
                        (_, true) => false,
                    }
            }
            _ => true,
        })
    }

    /// The bytes a match from `pc` can start with, and whether it can be
    /// empty. Targets only go forward, so the recursion ends.
    fn first(&self, pc: usize) -> (Set, bool) {
        let one = |b: u8| {
            let mut set: Set = [0; 4];
            set[usize::from(b >> 6)] |= 1 << (b & 63);
            set
        };
        let union = |a: Set, b: Set| -> Set { std::array::from_fn(|i| a[i] | b[i]) };
        match self.prog.get(pc) {
            None | Some(Inst::Match) => ([0; 4], true),
            Some(&Inst::Byte(b)) => (one(b), false),
            Some(&Inst::Lit { at, .. }) => match self.lits.get(at as usize) {
                Some(&b) => (one(b), false),
                None => ([0; 4], true),
            },
            Some(&Inst::Class(c)) => (self.classes[usize::from(c)], false),
            Some(&Inst::Repeat { class, min, .. }) => {
                let set = self.classes[usize::from(class)];
                if min >= 1 {
                    (set, false)
                } else {
                    let (rest, empty) = self.first(pc + 1);
                    (union(set, rest), empty)
                }
            }
            Some(&(Inst::Split(a, b) | Inst::Pick { a, b, .. })) => {
                let (x, xe) = self.first(a as usize);
                let (y, ye) = self.first(b as usize);
                (union(x, y), xe || ye)
            }
            Some(&Inst::Jump(t)) => self.first(t as usize),
            Some(Inst::Save(_)) => self.first(pc + 1),
        }
    }

    /// Every position matches from `pc` on (what is left is optional).
    fn always_matches(&self, pc: usize) -> bool {
        match self.prog.get(pc) {
            Some(Inst::Match) => true,
            Some(Inst::Save(_)) | Some(Inst::Repeat { min: 0, .. }) => self.always_matches(pc + 1),
            Some(&Inst::Jump(t)) => self.always_matches(t as usize),
            _ => false,
        }
    }

    /// Turns the `Split`s whose targets start with disjoint bytes and
    /// cannot match empty into `Pick`s (while there is room for the first
    /// bytes' class).
    fn mark_picks(&mut self) {
        for pc in 0..self.prog.len() {
            let Inst::Split(a, b) = self.prog[pc] else {
                continue;
            };
            let ((x, false), (y, false)) = (self.first(a as usize), self.first(b as usize)) else {
                continue;
            };
            if !disjoint(&x, &y) {
                continue;
            }
            let first = match self.classes.iter().position(|c| *c == x) {
                Some(i) => i,
                None if self.classes.len() < MAX_CLASSES => {
                    self.classes.push(x);
                    self.classes.len() - 1
                }
                None => continue,
            };
            if let Ok(first) = u16::try_from(first) {
                self.prog[pc] = Inst::Pick { a, b, first };
            }
        }
    }

    /// A repetition followed by something that must start with a byte
    /// outside its class can only be followed by a match after its longest
    /// run.
    fn mark_possessive(&mut self) {
        for pc in 0..self.prog.len() {
            let Inst::Repeat { class, .. } = self.prog[pc] else {
                continue;
            };
            let set = self.classes[usize::from(class)];
            let follow_ok = match self.prog.get(pc + 1) {
                Some(Inst::Byte(b)) => !set_has(&set, *b),
                Some(Inst::Lit { at, .. }) => self
                    .lits
                    .get(*at as usize)
                    .is_some_and(|b| !set_has(&set, *b)),
                Some(Inst::Class(c)) => disjoint(&set, &self.classes[usize::from(*c)]),
                Some(Inst::Repeat { class: c, min, .. }) => {
                    *min >= 1 && disjoint(&set, &self.classes[usize::from(*c)])
                }
                _ => false,
            };
            if let Some(Inst::Repeat { possessive, .. }) = self.prog.get_mut(pc) {
                *possessive = follow_ok;
            }
        }
    }
}

impl Shape {
    /// The end of the leftmost-first match anchored at `hay[0]`.
    pub(crate) fn find(&self, hay: &[u8]) -> Result<Option<usize>, GaveUp> {
        if self.linear {
            return Ok(self.find_linear(hay));
        }
        self.find_backtracking(hay)
    }

    /// `find` by the general matcher (what `find_linear` is held to).
    fn find_backtracking(&self, hay: &[u8]) -> Result<Option<usize>, GaveUp> {
        let mut slots = [usize::MAX; 0];
        let mut run = Run {
            shape: self,
            hay,
            steps: 0,
            slots: &mut slots,
        };
        run.at(0, 0)
    }

    /// The span of capture group `group` of the leftmost-first match
    /// anchored at `hay[0]` (`None` when there is no match or the group
    /// did not take part).
    pub(crate) fn group(&self, hay: &[u8], group: usize) -> Result<Option<(usize, usize)>, GaveUp> {
        let mut all = [usize::MAX; MAX_SLOTS];
        let slots = &mut all[..self.slots.min(MAX_SLOTS)];
        let mut run = Run {
            shape: self,
            hay,
            steps: 0,
            slots,
        };
        if run.at(0, 0)?.is_none() {
            return Ok(None);
        }
        let (s, e) = (
            slots.get(group * 2).copied(),
            slots.get(group * 2 + 1).copied(),
        );
        Ok(match (s, e) {
            (Some(s), Some(e)) if s != usize::MAX && e != usize::MAX => Some((s, e)),
            _ => None,
        })
    }
}

impl Shape {
    /// `find` for a linear program (`Shape::linear`): each instruction
    /// once, in order, each repetition taking its longest run.
    fn find_linear(&self, hay: &[u8]) -> Option<usize> {
        let (mut pc, mut pos) = (0, 0);
        // Targets only go forward: the walk ends.
        while let Some(&inst) = self.prog.get(pc) {
            pc += 1;
            match inst {
                Inst::Match => return Some(pos),
                Inst::Byte(_) | Inst::Lit { .. } | Inst::Class(_) => {
                    pos = self.fixed_step(inst, hay, pos)?;
                }
                Inst::Repeat {
                    class, min, max, ..
                } => {
                    let run = self.run_of(class, hay.get(pos..).unwrap_or(&[]), max);
                    if run < usize::try_from(min).unwrap_or(usize::MAX) {
                        return None;
                    }
                    pos += run;
                }
                Inst::Pick { a, b, first } => {
                    let set = &self.classes[usize::from(first)];
                    let take_a = hay.get(pos).is_some_and(|&x| set_has(set, x));
                    pc = if take_a { a } else { b } as usize;
                }
                Inst::Jump(t) => pc = t as usize,
                Inst::Save(_) => {}
                Inst::Split(..) => return None,
            }
        }
        None
    }

    /// Where the fixed-width instruction `inst` (`Byte`, `Lit`, `Class`)
    /// matched at `pos` ends, `None` when it does not match there (or is
    /// another instruction): the step both matchers take alike.
    #[inline(always)]
    fn fixed_step(&self, inst: Inst, hay: &[u8], pos: usize) -> Option<usize> {
        match inst {
            Inst::Byte(b) => (hay.get(pos) == Some(&b)).then_some(pos + 1),
            Inst::Lit { at, len } => {
                let (at, len) = (at as usize, len as usize);
                let lit = self.lits.get(at..at + len)?;
                let h = hay.get(pos..pos + len)?;
                super::same_bytes(lit, h).then_some(pos + len)
            }
            Inst::Class(c) => hay
                .get(pos)
                .is_some_and(|&b| set_has(&self.classes[usize::from(c)], b))
                .then_some(pos + 1),
            _ => None,
        }
    }

    /// The longest run of at most `max` leading bytes of `rest` in class
    /// `class`. The vector counter reads whole blocks: a bound below 16
    /// (`[0-9]{10,13}`) clamps its answer instead of cutting the bytes it
    /// may read, which would leave them to the byte-by-byte loop.
    #[inline]
    fn run_of(&self, class: u16, rest: &[u8], max: u32) -> usize {
        let c = usize::from(class);
        let limit = usize::try_from(max).unwrap_or(usize::MAX);
        match self.nibbles.get(c) {
            Some(Some(t)) => {
                let read = rest.len().min(limit.max(16));
                t.run(&rest[..read]).min(limit)
            }
            _ => run_scalar(&self.classes[c], &rest[..rest.len().min(limit)]),
        }
    }
}

struct Run<'a> {
    shape: &'a Shape,
    hay: &'a [u8],
    steps: u32,
    /// Capture positions; empty when the caller wants only the end.
    slots: &'a mut [usize],
}

impl Run<'_> {
    fn at(&mut self, mut pc: usize, mut pos: usize) -> Result<Option<usize>, GaveUp> {
        loop {
            self.steps += 1;
            if self.steps > BUDGET {
                return Err(GaveUp);
            }
            let Some(&inst) = self.shape.prog.get(pc) else {
                return Ok(None);
            };
            match inst {
                Inst::Match => return Ok(Some(pos)),
                Inst::Byte(_) | Inst::Lit { .. } | Inst::Class(_) => {
                    let Some(next) = self.shape.fixed_step(inst, self.hay, pos) else {
                        return Ok(None);
                    };
                    pos = next;
                    pc += 1;
                }
                Inst::Repeat {
                    class,
                    min,
                    max,
                    possessive,
                } => {
                    let rest = self.hay.get(pos..).unwrap_or(&[]);
                    let run = self.shape.run_of(class, rest, max);
                    let min = usize::try_from(min).unwrap_or(usize::MAX);
                    if run < min {
                        return Ok(None);
                    }
                    if possessive || run == min {
                        pos += run;
                        pc += 1;
                        continue;
                    }
                    for k in (min..=run).rev() {
                        if let Some(end) = self.at(pc + 1, pos + k)? {
                            return Ok(Some(end));
                        }
                    }
                    return Ok(None);
                }
                Inst::Split(a, b) | Inst::Pick { a, b, .. } => {
                    if let Some(end) = self.at(a as usize, pos)? {
                        return Ok(Some(end));
                    }
                    pc = b as usize;
                }
                Inst::Jump(a) => pc = a as usize,
                Inst::Save(slot) => {
                    let slot = usize::from(slot);
                    let Some(&old) = self.slots.get(slot) else {
                        pc += 1;
                        continue;
                    };
                    self.slots[slot] = pos;
                    let r = self.at(pc + 1, pos)?;
                    if r.is_none() {
                        self.slots[slot] = old;
                    }
                    return Ok(r);
                }
            }
        }
    }
}

/// The leading bytes of `hay` in `set`, one at a time.
fn run_scalar(set: &Set, hay: &[u8]) -> usize {
    hay.iter().take_while(|&&b| set_has(set, b)).count()
}

/// An ASCII byte class as one 16-byte table for a vector membership
/// test: bit `h` of `lo[n]` says byte `h << 4 | n` is in the class
/// (`h < 8`). A byte is in it when `lo[b & 15] & (1 << (b >> 4))` is not
/// zero, where `1 << (b >> 4)` is 0 for `b >= 0x80`. Token runs are a few
/// dozen bytes, so a class repetition counts 16 bytes per step instead of
/// testing a bitmap byte by byte (it was the largest cost of confirming a
/// token).
#[derive(Debug, Clone, Copy)]
struct Nibbles {
    lo: [u8; 16],
}

/// `1 << h` for the high nibbles of ASCII bytes, 0 for the others.
const HIGH_BITS: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 0, 0, 0, 0, 0, 0, 0, 0];

impl Nibbles {
    fn of(set: &Set) -> Option<Nibbles> {
        if set[2] | set[3] != 0 {
            return None;
        }
        let mut lo = [0u8; 16];
        for b in 0..128u8 {
            if set_has(set, b) {
                lo[usize::from(b & 15)] |= 1 << (b >> 4);
            }
        }
        Some(Nibbles { lo })
    }

    /// The leading bytes of `hay` in the class.
    fn run(&self, hay: &[u8]) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("ssse3") {
                // SAFETY: the CPU supports SSSE3 (checked just above).
                return unsafe { x86::run(self, hay) };
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            return wasm::run(self, hay);
        }
        #[allow(unreachable_code)]
        self.run_scalar(hay)
    }

    /// `run` over 16-byte blocks, given `outside(block)`: bit k set when
    /// byte k of the block is outside the class. The vector paths differ
    /// only in that function; a partial last block is read as the last 16
    /// bytes, overlapping the block before.
    #[inline(always)]
    fn run_blocks(&self, hay: &[u8], outside: impl Fn(&[u8; 16]) -> u32) -> usize {
        let mut i = 0;
        while let Some(block) = hay[i..].first_chunk::<16>() {
            let out = outside(block);
            if out != 0 {
                return i + out.trailing_zeros() as usize;
            }
            i += 16;
        }
        if i == hay.len() {
            return i;
        }
        let Some(block) = hay
            .len()
            .checked_sub(16)
            .and_then(|l| hay[l..].first_chunk::<16>())
        else {
            return self.run_scalar(hay);
        };
        // Positions before `i` are in the class already.
        let out = outside(block) >> (i + 16 - hay.len());
        if out != 0 {
            i + out.trailing_zeros() as usize
        } else {
            hay.len()
        }
    }

    /// `run` byte by byte through the table (the tail of a vector run,
    /// and the reference the tests hold the vector paths to).
    fn run_scalar(&self, hay: &[u8]) -> usize {
        hay.iter()
            .take_while(|&&b| self.lo[usize::from(b & 15)] & HIGH_BITS[usize::from(b >> 4)] != 0)
            .count()
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Nibbles, HIGH_BITS};
    use std::arch::x86_64::*;

    /// Bit k set: byte k of the 16 at `p` is outside the class.
    #[target_feature(enable = "ssse3")]
    #[inline]
    unsafe fn outside(lo: __m128i, hi: __m128i, p: *const u8) -> u32 {
        let nib = _mm_set1_epi8(0x0f);
        let v = _mm_loadu_si128(p.cast());
        let m = _mm_and_si128(
            _mm_shuffle_epi8(lo, _mm_and_si128(v, nib)),
            _mm_shuffle_epi8(hi, _mm_and_si128(_mm_srli_epi16(v, 4), nib)),
        );
        _mm_movemask_epi8(_mm_cmpeq_epi8(m, _mm_setzero_si128())) as u32
    }

    #[target_feature(enable = "ssse3")]
    pub(super) unsafe fn run(t: &Nibbles, hay: &[u8]) -> usize {
        let lo = _mm_loadu_si128(t.lo.as_ptr().cast());
        let hi = _mm_loadu_si128(HIGH_BITS.as_ptr().cast());
        // SAFETY: `outside` reads the 16 bytes of `block`; SSSE3 is
        // available (this function's contract).
        t.run_blocks(hay, |block| unsafe { outside(lo, hi, block.as_ptr()) })
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::{Nibbles, HIGH_BITS};
    use core::arch::wasm32::*;

    fn load(t: &[u8; 16]) -> v128 {
        u8x16(
            t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13],
            t[14], t[15],
        )
    }

    pub(super) fn run(t: &Nibbles, hay: &[u8]) -> usize {
        let lo = load(&t.lo);
        let hi = load(&HIGH_BITS);
        let nib = u8x16_splat(0x0f);
        t.run_blocks(hay, |block| {
            // SAFETY: `block` has 16 bytes; v128_load has no alignment
            // requirement.
            let v = unsafe { v128_load(block.as_ptr().cast()) };
            let m = v128_and(
                u8x16_swizzle(lo, v128_and(v, nib)),
                u8x16_swizzle(hi, u8x16_shr(v, 4)),
            );
            u32::from(i8x16_bitmask(i8x16_eq(m, u8x16_splat(0))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::bytes::RegexBuilder;

    fn regex(p: &str) -> regex::bytes::Regex {
        RegexBuilder::new(&format!("^(?:{p})"))
            .unicode(false)
            .build()
            .unwrap()
    }

    /// Inputs built from the pattern's own bytes, so most of them get far
    /// into the pattern before they match or fail.
    fn inputs(alphabet: &[u8], seed: u64) -> Vec<Vec<u8>> {
        let mut state = seed | 1;
        let mut next = move || crate::test_rng::xorshift(&mut state);
        let mut out = Vec::new();
        for len in [0usize, 1, 3, 8, 20, 40, 60, 90, 130, 200] {
            for _ in 0..40 {
                out.push(
                    (0..len)
                        .map(|_| alphabet[next() as usize % alphabet.len()])
                        .collect(),
                );
            }
        }
        out
    }

    #[test]
    fn agrees_with_the_regex_engine() {
        let patterns = [
            r"gh[pousr]_[A-Za-z0-9]{6}",
            r"ab(?:cd|c)d",
            r"x[0-9]{2,4}[0-9]y",
            r"(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{4,8}={0,2})",
            r"sk-(?:(?:proj|svcacct)-)?[A-Za-z0-9_-]{2,6}T3B[A-Za-z0-9_-]{2,6}",
            r"eyJ[A-Za-z0-9_-]{2,}\.ey[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*",
            r"dapi[a-f0-9]{4}(?:-[0-9])?",
            r"glpat-(?:[A-Za-z0-9_-]{5,}\.[0-9a-z]{2}\.[0-9a-z]{2,3}|[A-Za-z0-9_-]{4})",
            r"[0-9]{2,4}:AA[A-Za-z0-9_-]{3}",
            r"a(?:b|bc){0,3}c",
            r"x[0-9]{2,4}y-[a-f]{1,20}",
            r"x(?:ab|cd|e)[0-9]{2,}={0,2}",
            r"FL(?:_T)?-[a-f]{3}-X",
            r"(?:gl-|GR13)[a-z0-9_-]{2}",
            r"p(?:tk|p|oa)_[a-z_=-]{3,6}",
        ];
        for p in patterns {
            let shape = Shape::new(p).unwrap_or_else(|| panic!("{p} has no shape"));
            let re = regex(p);
            let mut alphabet: Vec<u8> = p.bytes().filter(|b| b.is_ascii_alphanumeric()).collect();
            alphabet.extend_from_slice(b"-_.=+/:~ AAT3B");
            for hay in inputs(&alphabet, p.len() as u64) {
                let want = re.find(&hay).map(|m| m.end());
                assert_eq!(shape.find_backtracking(&hay), Ok(want), "{p} backtracking");
                assert_eq!(
                    shape.find(&hay),
                    Ok(want),
                    "{p} on {:?}",
                    String::from_utf8_lossy(&hay)
                );
                let want_group = re
                    .captures(&hay)
                    .and_then(|c| c.get(1))
                    .map(|m| (m.start(), m.end()));
                assert_eq!(shape.group(&hay, 1), Ok(want_group), "{p} group on {hay:?}");
            }
        }
    }

    #[test]
    fn linear_programs_are_told_apart() {
        for p in [
            r"gh[pousr]_[A-Za-z0-9]{6}",
            r"xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}",
            r"x[0-9]{2,4}y",
            r"[a-z]{3}[0-9]Q~[a-z.-]{31,34}",
            r"eyJ[A-Za-z0-9_-]{8,}\.ey[A-Za-z0-9_-]*",
            r"(?:glrt-|GR1348941)[A-Za-z0-9_-]{20}",
            r"glc_[A-Za-z0-9+/]{32,}={0,2}",
            r"FLWSECK(?:_TEST)?-[a-f0-9]{32}-X",
            r"x(?:ab|cd|e)[0-9]{2,}={0,2}",
            r"(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{42,86}={0,2})",
        ] {
            assert!(Shape::new(p).is_some_and(|s| s.linear), "{p}");
        }
        for p in [
            r"x[0-9]{2,4}[0-9]y",
            r"ab(?:cd|c)d",
            r"dapi[a-f0-9]{4}(?:-[0-9])?",
            r"[a-z]{2,}[a-z0-9]{2}",
        ] {
            assert!(Shape::new(p).is_some_and(|s| !s.linear), "{p}");
        }
    }

    #[test]
    fn vector_run_counter_agrees_with_the_bitmap() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || crate::test_rng::xorshift(&mut state);
        let mut runs = [0usize; 3];
        for round in 0..400 {
            // A random ASCII class; the bytes come mostly from it.
            let mut set: Set = [next(), next(), 0, 0];
            if round % 7 == 0 {
                set[1] = !0;
            }
            let members: Vec<u8> = (0..128u8).filter(|&b| set_has(&set, b)).collect();
            let t = Nibbles::of(&set).expect("ASCII class");
            for len in [0usize, 1, 5, 15, 16, 17, 31, 32, 33, 47, 70, 200] {
                let hay: Vec<u8> = (0..len)
                    .map(|_| {
                        let r = next();
                        if r % 41 == 0 || members.is_empty() {
                            (r >> 8) as u8
                        } else {
                            members[(r >> 16) as usize % members.len()]
                        }
                    })
                    .collect();
                let want = run_scalar(&set, &hay);
                assert_eq!(t.run(&hay), want, "{set:x?} {hay:?}");
                assert_eq!(t.run_scalar(&hay), want);
                runs[usize::from(want > 0) + usize::from(want == len && len > 16)] += 1;
            }
        }
        assert!(runs.iter().all(|&n| n > 100), "{runs:?}");
        assert!(Nibbles::of(&[0, 0, 1, 0]).is_none());
    }

    #[test]
    fn exotic_patterns_are_left_to_the_regex_engine() {
        assert!(Shape::new(r"\bab").is_none());
        assert!(Shape::new(r"a+?").is_none());
        assert!(Shape::new(r"(?:ab)+").is_none());
        assert!(Shape::new(r"(?:ab){2,20}").is_none());
    }

    #[test]
    fn hostile_windows_give_up_instead_of_spinning() {
        let shape = Shape::new(r"[a-z]{1,}[a-z]{1,}[a-z]{1,}[a-z]{1,}0").unwrap();
        let hay = vec![b'a'; 3000];
        assert_eq!(shape.find(&hay), Err(GaveUp));
    }
}
