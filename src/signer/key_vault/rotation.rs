//! Following a Key Vault object's current version: a background check every interval (one at
//! a time, never on the signing path), or one on demand; the newest version is swapped in
//! atomically and handed out whole by [`Signer::snapshot`](crate::Signer::snapshot).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::VaultClient;
use crate::error::Error;

/// A signer that can be reloaded from the vault by name.
#[async_trait]
pub(super) trait Reload: Send + Sync + 'static {
    /// What is followed, for logs: "certificate", "secret".
    const WHAT: &'static str;

    /// The object's current version, loaded, when it is not `current`.
    async fn newer(
        vault: &VaultClient,
        name: &str,
        current: &str,
    ) -> Result<Option<(Arc<Self>, String)>, Error>;
}

/// The current version of object `name`, and when to look again.
pub(super) struct Rotation<T: ?Sized> {
    vault: VaultClient,
    name: String,
    /// `None`: only `refresh` checks.
    interval: Option<Duration>,
    current: RwLock<(Arc<T>, String)>,
    next_check: Mutex<Instant>,
    checking: AtomicBool,
}

impl<T: ?Sized> fmt::Debug for Rotation<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("Rotation")
            .field("name", &self.name)
            .field("interval", &self.interval)
            .field("version", &current.1)
            .finish_non_exhaustive()
    }
}

/// An instant no check reaches.
fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(100 * 365 * 86_400))
        .unwrap_or(now)
}

impl<T: Reload + ?Sized> Rotation<T> {
    pub(super) fn new(
        vault: VaultClient,
        name: String,
        interval: Option<Duration>,
        current: Arc<T>,
        version: String,
    ) -> Arc<Self> {
        let rotation = Self {
            vault,
            name,
            interval,
            current: RwLock::new((current, version)),
            next_check: Mutex::new(far_future()),
            checking: AtomicBool::new(false),
        };
        *rotation
            .next_check
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = rotation.next_after(Instant::now());
        Arc::new(rotation)
    }

    /// The version in use.
    pub(super) fn current(&self) -> Arc<T> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()).0)
    }

    /// The version string in use.
    pub(super) fn version(&self) -> String {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    fn next_after(&self, now: Instant) -> Instant {
        self.interval
            .and_then(|i| now.checked_add(i))
            .unwrap_or_else(far_future)
    }

    /// Starts a background check when one is due and none runs; never waits.
    pub(super) fn check_if_due(self: &Arc<Self>) {
        let now = Instant::now();
        {
            let mut next = self.next_check.lock().unwrap_or_else(|p| p.into_inner());
            if now < *next || self.checking.swap(true, Ordering::AcqRel) {
                return;
            }
            *next = self.next_after(now);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.checking.store(false, Ordering::Release);
            return;
        };
        let rotation = Arc::clone(self);
        runtime.spawn(async move {
            if let Err(e) = rotation.check().await {
                tracing::warn!(
                    error = %e,
                    name = %rotation.name,
                    what = T::WHAT,
                    "Key Vault rotation check failed; keeping the current version"
                );
            }
            rotation.checking.store(false, Ordering::Release);
        });
    }

    /// Checks now, and restarts the schedule.
    pub(super) async fn refresh(&self) -> Result<bool, Error> {
        *self.next_check.lock().unwrap_or_else(|p| p.into_inner()) =
            self.next_after(Instant::now());
        self.check().await
    }

    async fn check(&self) -> Result<bool, Error> {
        let version = self.version();
        let Some((next, next_version)) = T::newer(&self.vault, &self.name, &version).await? else {
            return Ok(false);
        };
        tracing::info!(
            name = %self.name,
            what = T::WHAT,
            version = %next_version,
            "Key Vault object rotated; signing with the new version"
        );
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (next, next_version);
        Ok(true)
    }
}
