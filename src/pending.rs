//! The requests a translator has not answered yet, by frame address: what
//! fini answers if Python still keeps them (`Instance::answer_pending`).
//!
//! Every request is added when it arrives and removed when it is
//! answered, from whichever thread runs it: one map under one lock was a
//! lock every thread took twice per fop, and SipHash of a pointer showed in
//! the profile of each lookup. The registry is split in shards by address,
//! each under its own lock, hashed by a multiply (a frame's address is no
//! untrusted input).

use crate::frame::FrameState;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

const SHARDS: usize = 16;

/// Hashes a frame's address: a multiply by the golden ratio, its high half
/// folded into the low one (hashbrown picks buckets from the low bits, and
/// an address's low bits are its alignment, the same for every frame).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let h = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Shard = HashMap<usize, Weak<FrameState>, BuildHasherDefault<AddressHasher>>;

#[derive(Default)]
pub struct Pending {
    shards: [Mutex<Shard>; SHARDS],
}

impl Pending {
    fn shard(&self, address: usize) -> MutexGuard<'_, Shard> {
        // Frames come from GlusterFS's pools: 16-byte aligned at least.
        locked(&self.shards[(address >> 4) % SHARDS])
    }

    pub fn add(&self, address: usize, state: &Arc<FrameState>) {
        self.shard(address).insert(address, Arc::downgrade(state));
    }

    pub fn remove(&self, address: usize) {
        self.shard(address).remove(&address);
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| locked(s).len()).sum()
    }

    /// The requests still alive, at one moment per shard.
    pub fn alive(&self) -> Vec<Arc<FrameState>> {
        self.shards
            .iter()
            .flat_map(|s| {
                locked(s)
                    .values()
                    .filter_map(Weak::upgrade)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

fn locked(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn aligned_addresses_spread_over_the_low_bits() {
        let hasher = BuildHasherDefault::<AddressHasher>::default();
        let buckets: std::collections::HashSet<u64> = (0..64usize)
            .map(|i| hasher.hash_one(0x7f00_0000_0000 + i * 256) & 63)
            .collect();
        assert!(buckets.len() > 32, "{} of 64 buckets", buckets.len());
    }
}
