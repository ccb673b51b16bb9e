//! The live settings while the server runs: shared by the handlers, replaced whole by a
//! reload.

use std::sync::Arc;

use parking_lot::RwLock;

use super::table::Live;

impl Live {
    /// Whether `key` (a nickname key) names a server operator.
    pub fn is_operator(&self, key: &str) -> bool {
        self.operators.iter().any(|o| o == key)
    }
}

/// The live settings, shared by the handlers and replaced whole by a reload: readers take
/// the current `Arc` and keep it for their request, so a reload never waits for them.
#[derive(Debug, Default)]
pub struct LiveSettings {
    current: RwLock<Arc<Live>>,
}

impl LiveSettings {
    /// Settings starting as `live`.
    pub fn new(live: Live) -> Self {
        LiveSettings {
            current: RwLock::new(Arc::new(live)),
        }
    }

    /// The settings now.
    pub fn get(&self) -> Arc<Live> {
        self.current.read().clone()
    }

    /// Replaces them.
    pub fn set(&self, live: Live) {
        *self.current.write() = Arc::new(live);
    }
}
