//! Discovery and the JWKS lifecycle (VALIDATION.md §5, L1–L10).
//!
//! The current key set is an immutable `Arc` swapped whole (L5). Validation reads it under a
//! short lock and awaits the network only to join a cold start (L9) or an unknown-`kid` refresh
//! (L8). Fetches run in a spawned task, one at a time (L10), so a caller that gives up does not
//! cancel the fetch the others wait for. Periodic refreshes are started by the first validation
//! after they fall due, and never awaited (L6).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::watch;
use url::Url;

use super::claims::Rules;
use super::error::{ValidationError, ValidationErrorKind};
use super::json;
use super::jwk::KeySet;
use crate::authority::same_key_domain;
use crate::clock::{Clock, unix_seconds};
use crate::http::{HttpClient, check_endpoint};
use crate::signer::Backend;

/// Discovery document cap (L4).
pub(crate) const MAX_DISCOVERY_BYTES: usize = 64 * 1024;
/// JWKS cap (L4).
pub(crate) const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Whole-response limit (L4), also enforced around a custom [`HttpClient`].
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect limit (L4) of the default client.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The timing rules of §5, all configurable within the contract's bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifecycle {
    /// L6: 12 h, within 5 min–24 h.
    pub(crate) refresh_interval: Duration,
    /// L8: 5 min, at least 1 s.
    pub(crate) unknown_kid_cooldown: Duration,
    /// L7: 24 h.
    pub(crate) stale_grace: Duration,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(12 * 3600),
            unknown_kid_cooldown: Duration::from_secs(300),
            stale_grace: Duration::from_secs(24 * 3600),
        }
    }
}

/// First retry delay after a failed refresh with keys in hand (L7), and its ceiling.
const RETRY_START: Duration = Duration::from_secs(30);
const RETRY_MAX: Duration = Duration::from_secs(15 * 60);
/// First retry delay after a failed cold start (L9), and its ceiling.
const COLD_RETRY_START: Duration = Duration::from_secs(1);
const COLD_RETRY_MAX: Duration = Duration::from_secs(5 * 60);

/// One loaded generation: the keys and what discovery pinned.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) keys: KeySet,
    /// The claim rules, with the issuers derived from the discovery document's `issuer` (L2).
    pub(crate) rules: Rules,
    /// The discovery document's `cloud_instance_name` (K5).
    pub(crate) cloud: Option<String>,
    /// When this set was fetched (L7's grace counts from here).
    pub(crate) loaded_at: SystemTime,
}

/// Turns the pinned discovery issuer into the claim rules tokens must meet.
pub(crate) type DeriveIssuers = Box<dyn Fn(&str) -> Rules + Send + Sync>;
/// Whether a discovery document's `issuer` is the expected one (L2).
pub(crate) type AcceptIssuer = Box<dyn Fn(&str) -> bool + Send + Sync>;

pub(crate) struct Remote {
    pub(crate) http: Arc<dyn HttpClient>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) discovery_url: Url,
    pub(crate) accept_issuer: AcceptIssuer,
    pub(crate) derive_issuers: DeriveIssuers,
    /// Hosts a `jwks_uri` may point to besides the discovery host's key domain (L3).
    pub(crate) allow_jwks_hosts: Vec<String>,
    /// Entra app-specific signing keys: `?appid=` on the `jwks_uri`.
    pub(crate) app_id: Option<String>,
    pub(crate) backend: Backend,
    pub(crate) lifecycle: Lifecycle,
    current: RwLock<Option<Arc<Loaded>>>,
    /// When the next background refresh (or retry) is due, in Unix seconds; `u64::MAX` for
    /// none. Read without the state lock, so a validation that finds it not due takes no mutex.
    next_refresh: AtomicU64,
    state: Mutex<State>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("discovery_url", &self.discovery_url.as_str())
            .field("allow_jwks_hosts", &self.allow_jwks_hosts)
            .field("app_id", &self.app_id)
            .field("lifecycle", &self.lifecycle)
            .finish_non_exhaustive()
    }
}

/// `Some(true)` once the fetch succeeded, `Some(false)` once it failed.
type Outcome = watch::Receiver<Option<bool>>;

#[derive(Default)]
struct State {
    in_flight: Option<Outcome>,
    retry_delay: Option<Duration>,
    /// A failed cold start: callers fail fast until then (L9).
    cold_retry_at: Option<SystemTime>,
    cold_delay: Option<Duration>,
    /// The last refresh started for an unknown `kid` (L8).
    last_kid_refresh: Option<SystemTime>,
}

fn metadata(detail: &'static str) -> ValidationError {
    ValidationError::new(ValidationErrorKind::Metadata, detail)
}

impl Remote {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        http: Arc<dyn HttpClient>,
        clock: Arc<dyn Clock>,
        discovery_url: Url,
        accept_issuer: AcceptIssuer,
        derive_issuers: DeriveIssuers,
        allow_jwks_hosts: Vec<String>,
        app_id: Option<String>,
        backend: Backend,
        lifecycle: Lifecycle,
    ) -> Self {
        Self {
            http,
            clock,
            discovery_url,
            accept_issuer,
            derive_issuers,
            allow_jwks_hosts,
            app_id,
            backend,
            lifecycle,
            current: RwLock::new(None),
            next_refresh: AtomicU64::new(u64::MAX),
            state: Mutex::new(State::default()),
        }
    }

    fn snapshot(&self) -> Option<Arc<Loaded>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fetches now unless a fetch is running, and waits for it (L9 `prefetch`).
    pub(crate) async fn prefetch(self: &Arc<Self>) -> Result<(), ValidationError> {
        let outcome = {
            let mut state = self.lock();
            self.join_or_start(&mut state)
        };
        if wait(outcome).await {
            Ok(())
        } else {
            Err(metadata(
                "the issuer's discovery document or keys could not be fetched",
            ))
        }
    }

    /// The key set to look `kid` up in, after joining a cold start or an unknown-`kid` refresh
    /// when the rules say so (§8.2 step 3).
    pub(crate) async fn keys_for(
        self: &Arc<Self>,
        kid: Option<&str>,
    ) -> Result<Arc<Loaded>, ValidationError> {
        let now = self.clock.now();
        let Some(loaded) = self.fresh_snapshot(now) else {
            return self.cold_start(now).await;
        };
        let unknown = kid.is_some_and(|k| loaded.keys.is_unknown(k));
        let outcome = if unknown {
            let mut state = self.lock();
            let joinable = state.in_flight.as_ref().is_some_and(alive);
            let cooling = state.last_kid_refresh.is_some_and(|at| {
                now.duration_since(at)
                    .is_ok_and(|d| d < self.lifecycle.unknown_kid_cooldown)
                    || now < at
            });
            if !joinable && cooling {
                // Throttled: answer from the current set at once, no await (L8).
                return Ok(loaded);
            }
            if !joinable {
                state.last_kid_refresh = Some(now);
            }
            Some(self.join_or_start(&mut state))
        } else {
            None
        };
        if outcome.is_none() && unix_seconds(now) >= self.next_refresh.load(Ordering::Relaxed) {
            let mut state = self.lock();
            if !state.in_flight.as_ref().is_some_and(alive) {
                // Due: refresh in the background, never awaited (L6, L7).
                let _ = self.join_or_start(&mut state);
            }
        }
        match outcome {
            Some(outcome) => {
                wait(outcome).await;
                // Look up once more in whatever set is current now.
                Ok(self.snapshot().unwrap_or(loaded))
            }
            None => Ok(loaded),
        }
    }

    /// The current set, unless `stale_grace` has passed since the refresh it missed (L7).
    fn fresh_snapshot(&self, now: SystemTime) -> Option<Arc<Loaded>> {
        let loaded = self.snapshot()?;
        let loaded_at = loaded.loaded_at;
        let limit = self.lifecycle.refresh_interval + self.lifecycle.stale_grace;
        if now.duration_since(loaded_at).is_ok_and(|age| age > limit) {
            tracing::warn!(
                discovery = %self.discovery_url,
                "the signing keys are past their stale grace after failed refreshes; dropping them"
            );
            let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
            if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &loaded)) {
                *current = None;
            }
            return None;
        }
        Some(loaded)
    }

    async fn cold_start(self: &Arc<Self>, now: SystemTime) -> Result<Arc<Loaded>, ValidationError> {
        let outcome = {
            let mut state = self.lock();
            let joinable = state.in_flight.as_ref().is_some_and(alive);
            if !joinable && state.cold_retry_at.is_some_and(|at| now < at) {
                return Err(metadata(
                    "the issuer's keys are unavailable; retrying later",
                ));
            }
            self.join_or_start(&mut state)
        };
        wait(outcome).await;
        self.snapshot()
            .ok_or_else(|| metadata("the issuer's discovery document or keys could not be fetched"))
    }

    /// Joins the running fetch, or starts one (L10: one at a time).
    fn join_or_start(self: &Arc<Self>, state: &mut State) -> Outcome {
        if let Some(outcome) = state.in_flight.as_ref().filter(|o| alive(o)) {
            return outcome.clone();
        }
        let (tx, rx) = watch::channel(None);
        state.in_flight = Some(rx.clone());
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let result = this.fetch().await;
            let ok = this.finish(result);
            let _ = tx.send(Some(ok));
        });
        rx
    }

    /// Installs a fetched set or schedules the retry; clears `in_flight`.
    fn finish(&self, result: Result<Loaded, String>) -> bool {
        let now = self.clock.now();
        let mut state = self.lock();
        state.in_flight = None;
        match result {
            Ok(mut loaded) => {
                loaded.loaded_at = now;
                let previous = self.snapshot();
                let changed = previous
                    .as_ref()
                    .is_none_or(|p| p.keys.kids() != loaded.keys.kids());
                if changed {
                    tracing::info!(
                        discovery = %self.discovery_url,
                        keys = loaded.keys.usable_count(),
                        "signing keys loaded"
                    );
                }
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(loaded));
                self.set_next_refresh(now + jittered(self.lifecycle.refresh_interval));
                state.retry_delay = None;
                state.cold_retry_at = None;
                state.cold_delay = None;
                true
            }
            Err(reason) => {
                if self.snapshot().is_some() {
                    let delay = state.retry_delay.unwrap_or(RETRY_START);
                    state.retry_delay = Some((delay * 2).min(RETRY_MAX));
                    self.set_next_refresh(now + jittered(delay));
                    tracing::warn!(
                        discovery = %self.discovery_url,
                        reason,
                        retry_in_s = delay.as_secs(),
                        "refreshing the signing keys failed; keeping the last good set"
                    );
                } else {
                    let delay = state.cold_delay.unwrap_or(COLD_RETRY_START);
                    state.cold_delay = Some((delay * 2).min(COLD_RETRY_MAX));
                    state.cold_retry_at = Some(now + delay);
                    tracing::warn!(
                        discovery = %self.discovery_url,
                        reason,
                        retry_in_s = delay.as_secs(),
                        "fetching the signing keys failed"
                    );
                }
                false
            }
        }
    }

    fn set_next_refresh(&self, at: SystemTime) {
        self.next_refresh.store(unix_seconds(at), Ordering::Relaxed);
    }

    /// One discovery + JWKS round (L1–L5). The error is a log line without secrets.
    async fn fetch(&self) -> Result<Loaded, String> {
        let body = self
            .get("discovery", &self.discovery_url, MAX_DISCOVERY_BYTES)
            .await?;
        let document = json::parse_object(&body)
            .map_err(|e| format!("the discovery document is not strict JSON: {e}"))?;
        let issuer = document
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or("the discovery document has no issuer")?;
        if !(self.accept_issuer)(issuer) {
            return Err("the discovery document names another issuer".into());
        }
        let jwks_text = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("the discovery document has no jwks_uri")?;
        let mut jwks_uri = check_endpoint(jwks_text).map_err(|e| e.to_string())?;
        let discovery_host = self.discovery_url.host_str().unwrap_or_default();
        let jwks_host = jwks_uri.host_str().unwrap_or_default();
        let allowed = same_key_domain(discovery_host, jwks_host)
            || self
                .allow_jwks_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(jwks_host));
        if !allowed || (self.discovery_url.scheme() == "https" && jwks_uri.scheme() != "https") {
            return Err("the jwks_uri is on a host not allowed for this issuer".into());
        }
        if let Some(app_id) = &self.app_id {
            jwks_uri.query_pairs_mut().append_pair("appid", app_id);
        }
        let cloud = match document.get("cloud_instance_name") {
            None => None,
            Some(Value::String(c)) => Some(c.clone()),
            Some(_) => return Err("cloud_instance_name is not a string".into()),
        };
        let rules = (self.derive_issuers)(issuer);
        let body = self.get("jwks", &jwks_uri, MAX_JWKS_BYTES).await?;
        let keys = KeySet::from_json(&body, self.backend)
            .map_err(|e| format!("the JWKS is not acceptable: {e}"))?;
        if keys.usable_count() == 0 {
            return Err("the JWKS has no usable key".into());
        }
        Ok(Loaded {
            keys,
            rules,
            cloud,
            loaded_at: SystemTime::UNIX_EPOCH,
        })
    }

    async fn get(&self, purpose: &'static str, url: &Url, cap: usize) -> Result<Vec<u8>, String> {
        let request = http::Request::get(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let fetch = crate::http::send_traced(self.http.as_ref(), purpose, request);
        let response = tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .map_err(|_| format!("{} took longer than 10 s", url.path()))?
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if status != http::StatusCode::OK {
            return Err(format!("{} answered HTTP {}", url.path(), status.as_u16()));
        }
        let body = response.into_body();
        if body.len() > cap {
            return Err(format!("{} is larger than {cap} bytes", url.path()));
        }
        Ok(body)
    }
}

/// Whether a fetch behind `outcome` is still running (its task not gone).
fn alive(outcome: &Outcome) -> bool {
    outcome.has_changed().is_ok()
}

/// Waits for a fetch; `false` when it failed or its task vanished.
async fn wait(mut outcome: Outcome) -> bool {
    match outcome.wait_for(Option::is_some).await {
        Ok(value) => value.unwrap_or(false),
        Err(_) => false,
    }
}

/// `base` plus up to 10 % (L6, L7).
fn jittered(base: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    let random = match crate::signer::fill_random(&mut bytes) {
        Ok(()) => u32::from_le_bytes(bytes),
        Err(_) => 0,
    };
    base + base.mul_f64(f64::from(random) / f64::from(u32::MAX) / 10.0)
}
