//! Connection ids: unique within the process, not a visible counter.
//!
//! An id travels to the client (the `welcome` frame) and into logs. A plain
//! counter would tell every client how many connections came before it and
//! let it guess its neighbours' ids, so ids are a counter passed through a
//! permutation of `[0, 2^53)` drawn at random once per process. A
//! permutation maps distinct inputs to distinct outputs, so ids stay unique
//! for the first 2^53 connections, and every id is below 2^53, the largest
//! range of integers a JavaScript number holds exactly.
//!
//! The permutation hides the counter from casual view; it is not a
//! cipher. Ids are names, not secrets: nothing may be granted to whoever
//! knows one.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::component::ConnectionId;

/// Ids have this many bits: JavaScript numbers are exact below 2^53.
const ID_BITS: u32 = 53;
const ID_MASK: u64 = (1 << ID_BITS) - 1;

/// How many connections this process has numbered.
static COUNTER: AtomicU64 = AtomicU64::new(0);
/// This process's permutation, drawn on first use.
static PERMUTATION: OnceLock<Permutation> = OnceLock::new();

/// The next connection id of this process.
pub(crate) fn next() -> ConnectionId {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    PERMUTATION.get_or_init(Permutation::random).apply(n)
}

/// A bijection of `[0, 2^53)`: an offset, then xor-shifts and odd
/// multiplications. Each step is invertible on 53-bit words (adding modulo
/// 2^53; `x ^ (x >> k)` for `k >= 1`, whose top `k` bits give back the rest
/// a block at a time; multiplying by an odd number, which has an inverse
/// modulo 2^53), so the composition is one too.
#[derive(Debug, Clone, Copy)]
struct Permutation {
    offset: u64,
    multipliers: [u64; 2],
}

impl Permutation {
    /// A permutation drawn from `fastrand`, whose generator is seeded from
    /// the operating system's randomness.
    fn random() -> Self {
        Self {
            offset: fastrand::u64(..) & ID_MASK,
            multipliers: [
                (fastrand::u64(..) & ID_MASK) | 1,
                (fastrand::u64(..) & ID_MASK) | 1,
            ],
        }
    }

    fn apply(self, n: u64) -> u64 {
        let mut x = n.wrapping_add(self.offset) & ID_MASK;
        x ^= x >> 26;
        x = x.wrapping_mul(self.multipliers[0]) & ID_MASK;
        x ^= x >> 27;
        x = x.wrapping_mul(self.multipliers[1]) & ID_MASK;
        x ^= x >> 26;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_million_consecutive_counters_give_a_million_distinct_ids_below_2_pow_53() {
        for permutation in [
            Permutation::random(),
            Permutation {
                offset: 0,
                multipliers: [1, 1],
            },
            Permutation {
                offset: ID_MASK,
                multipliers: [ID_MASK, 3],
            },
        ] {
            let start = ID_MASK - 500_000;
            let ids: HashSet<u64> = (start..start + 1_000_000)
                .map(|n| permutation.apply(n))
                .collect();
            assert_eq!(ids.len(), 1_000_000, "{permutation:?}");
            assert!(ids.iter().all(|&id| id <= ID_MASK));
        }
    }

    #[test]
    fn the_process_ids_do_not_count_up() {
        let ids: Vec<_> = (0..100).map(|_| next()).collect();
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(ids.iter().all(|&id| id < 1 << 53));
        assert!(ids.windows(2).any(|w| w[1] != w[0] + 1));
    }
}
