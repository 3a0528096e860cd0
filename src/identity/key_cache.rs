//! Per-core cache of parsed signing keys, so a key is parsed once per DID and never per
//! frame (parsing costs 5–12 µs, a fifth of a verification).
//!
//! Owns: a bounded map DID → `ParsedKey` with first-in-first-out eviction and purging.
//! Must not: resolve identities (the resolver fills it), be shared across cores (each
//! ingest core owns one: no locks on the hot path).

use crate::verify::signature::ParsedKey;
use std::collections::{HashMap, VecDeque};

/// A bounded DID → parsed key cache.
#[derive(Debug)]
pub struct KeyCache {
    entries: HashMap<String, (ParsedKey, u64)>,
    // Insertion order with the generation each entry had then: stale slots (purged or
    // replaced entries) are skipped at eviction instead of being searched for.
    order: VecDeque<(String, u64)>,
    entries_max: usize,
    generation: u64,
}

impl KeyCache {
    /// An empty cache holding at most `entries_max` keys (at least one).
    pub fn new(entries_max: usize) -> Self {
        KeyCache {
            entries: HashMap::new(),
            order: VecDeque::new(),
            entries_max: entries_max.max(1),
            generation: 0,
        }
    }

    /// The key cached for `did`.
    pub fn get(&self, did: &str) -> Option<&ParsedKey> {
        self.entries.get(did).map(|(key, _)| key)
    }

    /// Cache `key` for `did`, evicting the oldest entry when full.
    pub fn insert(&mut self, did: &str, key: ParsedKey) {
        self.generation += 1;
        if self
            .entries
            .insert(did.to_owned(), (key, self.generation))
            .is_none()
        {
            while self.entries.len() > self.entries_max {
                self.evict_oldest();
            }
        }
        self.order.push_back((did.to_owned(), self.generation));
        // Stale order slots are bounded too: compact when they outnumber live entries.
        if self.order.len() > 2 * self.entries_max {
            let entries = &self.entries;
            self.order
                .retain(|(did, generation)| entries.get(did).is_some_and(|(_, g)| g == generation));
        }
    }

    /// Forget `did` (an `#identity` event or a signature failure asks for a fresh look-up).
    pub fn purge(&mut self, did: &str) -> bool {
        self.entries.remove(did).is_some()
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict_oldest(&mut self) {
        while let Some((did, generation)) = self.order.pop_front() {
            if self
                .entries
                .get(&did)
                .is_some_and(|(_, g)| *g == generation)
            {
                self.entries.remove(&did);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::key::Curve;
    use crate::verify::signature::{Backend, SigningKey};

    fn key(seed: u8) -> ParsedKey {
        let signer = SigningKey::generate_from_seed(Curve::Secp256k1, [seed; 32]).unwrap();
        ParsedKey::with_backend(&signer.public_key(), Backend::Libsecp256k1).unwrap()
    }

    #[test]
    fn bounded_fifo_with_purge_and_replace() {
        let mut cache = KeyCache::new(2);
        cache.insert("did:plc:a", key(1));
        cache.insert("did:plc:b", key(2));
        cache.insert("did:plc:a", key(3)); // replacement keeps the size
        assert_eq!(cache.len(), 2);
        cache.insert("did:plc:c", key(4)); // evicts b (a was refreshed later)
        assert!(cache.get("did:plc:b").is_none());
        assert!(cache.get("did:plc:a").is_some() && cache.get("did:plc:c").is_some());
        assert!(cache.purge("did:plc:a"));
        assert!(!cache.purge("did:plc:a"));
        for i in 0..1000u32 {
            cache.insert(&format!("did:plc:{i}"), key(5));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.order.len() <= 4);
    }
}
