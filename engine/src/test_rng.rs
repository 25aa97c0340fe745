//! The pseudo-random generator the engine's tests build their inputs with
//! (xorshift64): deterministic, so a failing input comes back from its
//! seed, and no dependency for it.

/// Advances `state` one xorshift64 step and returns the new state. A zero
/// state stays zero: seed with a non-zero value.
pub(crate) fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
