//! The injectable wall clock.

use std::fmt;
use std::time::SystemTime;

/// The source of wall-clock time for every `iat`/`nbf`/`exp` the crate writes or checks.
///
/// The default is [`SystemClock`]; tests and the testkit share a settable clock so that expiry
/// rules run in milliseconds instead of minutes.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Seconds since the Unix epoch, saturating at zero for times before it.
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
