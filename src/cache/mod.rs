//! The token cache: an in-memory L1 indexed by what the caller asks for, so a lookup is one hash
//! probe at any size; bounded, with single-flight so that N callers on one miss cause one
//! token request.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use std::future::Future;

use crate::error::Error;
use crate::secret::AccessToken;

#[cfg(feature = "aws-lc")]
mod encrypted;
#[cfg(feature = "redis")]
mod redis_store;
pub(crate) mod single_flight;
mod store;

#[cfg(feature = "aws-lc")]
pub use self::encrypted::EncryptedStore;
#[cfg(feature = "redis")]
pub use self::redis_store::RedisStore;
pub use self::store::{FileStore, Merge, TokenStore};

pub(crate) use self::single_flight::SingleFlight;
use self::single_flight::{FlightResult, Joined};

/// The least time between two proactive refreshes of one token.
const REFRESH_RETRY_INTERVAL: Duration = Duration::from_secs(60);

/// Tokens are not handed out when less than this remains (MSAL's buffer).
pub const EXPIRY_BUFFER: Duration = Duration::from_secs(300);

/// Lifetimes from this long get a proactive refresh at half-life when the authority sends no
/// `refresh_in`.
const LONG_LIFETIME: Duration = Duration::from_secs(7200);

const SHARDS: usize = 16;

/// What a cached token is filed under: the partition (authority environment, tenant, client,
/// account) and the normalized scopes (lower-cased, sorted, space-joined).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    partition: Arc<str>,
    target: Box<str>,
}

impl CacheKey {
    pub(crate) fn new(partition: Arc<str>, scopes: &[&str]) -> Self {
        let mut scopes: Vec<String> = scopes
            .iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        Self {
            partition,
            target: scopes.join(" ").into_boxed_str(),
        }
    }
}

impl CacheKey {
    /// The partition: `{environment}|{realm}|{client_id}|{account or obo:hash or empty}`.
    pub(crate) fn partition(&self) -> &str {
        &self.partition
    }

    /// Whether a token filed under `self` also answers `other`: the same partition, and every
    /// scope of `other` among `self`'s (MSAL serves a request from a token with more scopes).
    pub(crate) fn covers(&self, other: &CacheKey) -> bool {
        self.partition == other.partition
            && other
                .target
                .split(' ')
                .all(|scope| self.target.split(' ').any(|held| held == scope))
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}|{}", self.partition, self.target)
    }
}

/// An access token with its times, as cached and as returned to callers.
#[derive(Debug)]
pub struct CachedToken {
    access_token: AccessToken,
    token_type: String,
    expires_on: SystemTime,
    extended_expires_on: SystemTime,
    refresh_on: Option<SystemTime>,
    cached_at: SystemTime,
    scopes: Vec<String>,
}

impl CachedToken {
    /// A token received at `now` valid for `expires_in`, with the authority's `refresh_in` if
    /// it sent one (else half-life for lifetimes of two hours or more).
    pub(crate) fn new(
        access_token: AccessToken,
        token_type: String,
        now: SystemTime,
        expires_in: Duration,
        ext_expires_in: Option<Duration>,
        refresh_in: Option<Duration>,
        scopes: Vec<String>,
    ) -> Self {
        let refresh_in =
            refresh_in.or_else(|| (expires_in >= LONG_LIFETIME).then(|| expires_in / 2));
        Self {
            access_token,
            token_type,
            expires_on: now + expires_in,
            extended_expires_on: now + ext_expires_in.unwrap_or(expires_in),
            refresh_on: refresh_in.map(|r| now + r),
            cached_at: now,
            scopes,
        }
    }

    /// A token with its absolute times, as a persisted cache holds it.
    pub(crate) fn from_parts(
        access_token: AccessToken,
        token_type: String,
        cached_at: SystemTime,
        expires_on: SystemTime,
        extended_expires_on: SystemTime,
        refresh_on: Option<SystemTime>,
        scopes: Vec<String>,
    ) -> Self {
        Self {
            access_token,
            token_type,
            expires_on,
            extended_expires_on,
            refresh_on,
            cached_at,
            scopes,
        }
    }

    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// `Bearer`.
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// When the token expires.
    pub fn expires_on(&self) -> SystemTime {
        self.expires_on
    }

    /// When the authority's outage extension ends (`ext_expires_in`).
    pub fn extended_expires_on(&self) -> SystemTime {
        self.extended_expires_on
    }

    /// When a proactive refresh is due, if one is.
    pub fn refresh_on(&self) -> Option<SystemTime> {
        self.refresh_on
    }

    /// When the token was received.
    pub fn cached_at(&self) -> SystemTime {
        self.cached_at
    }

    /// The scopes granted (the response's `scope`, else those requested).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether it may be handed out at `now`: more than the 300 s buffer remains.
    pub(crate) fn is_usable(&self, now: SystemTime) -> bool {
        now + EXPIRY_BUFFER < self.expires_on
    }

    /// Whether a proactive refresh is due at `now`.
    pub(crate) fn needs_refresh(&self, now: SystemTime) -> bool {
        self.refresh_on.is_some_and(|r| r <= now)
    }

    /// [`needs_refresh`](Self::needs_refresh) up to `spread`/100 of the time before
    /// `refresh_on` earlier (a per-key constant, so tokens cached together do not all refresh
    /// at once).
    pub(crate) fn refresh_due(&self, now: SystemTime, spread: u32) -> bool {
        self.refresh_on.is_some_and(|r| {
            let window = r.duration_since(self.cached_at).unwrap_or_default();
            let early = window.mul_f64(f64::from(spread.min(100)) / 100.0);
            r.checked_sub(early).unwrap_or(r) <= now
        })
    }

    /// Approximate heap bytes held for this token (for the byte bound).
    fn approximate_bytes(&self) -> usize {
        self.access_token.expose_secret().len()
            + self.token_type.len()
            + self.scopes.iter().map(|s| s.len() + 24).sum::<usize>()
            + std::mem::size_of::<Self>()
    }
}

/// What the cache did, since it was made: for dashboards and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Tokens served from memory.
    pub hits: u64,
    /// Lookups that had to go to a store or the network.
    pub misses: u64,
    /// Proactive refreshes started in the background.
    pub refreshes: u64,
    /// Refreshes not started because the bound on concurrent ones was reached.
    pub refreshes_deferred: u64,
    /// Tokens evicted to respect the bounds.
    pub evictions: u64,
    /// Token-store (L2) failures, after which the network was used.
    pub l2_errors: u64,
    /// Tokens held now.
    pub entries: usize,
}

/// Sizing for the in-memory cache.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheOptions {
    /// The most tokens kept; the oldest inserted are evicted first (default 100 000).
    pub max_entries: usize,
    /// The most bytes (approximate: tokens, scopes, bookkeeping) kept; none by default.
    pub max_bytes: Option<usize>,
    /// The most proactive refreshes running at once (default 32); more wait for a later hit,
    /// their tokens still valid.
    pub max_background_refreshes: usize,
    /// How much earlier than `refresh_on` a token may be refreshed, in percent of the time
    /// from caching to `refresh_on` (default 10): spreads the refreshes of tokens cached
    /// together.
    pub refresh_jitter_percent: u32,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_bytes: None,
            max_background_refreshes: 32,
            refresh_jitter_percent: 10,
        }
    }
}

impl CacheOptions {
    /// Keeps at most `max_entries` tokens.
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }

    /// Keeps at most about `max_bytes` bytes of tokens.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = Some(max_bytes.max(1));
        self
    }

    /// Runs at most `max` proactive refreshes at once.
    pub fn with_max_background_refreshes(mut self, max: usize) -> Self {
        self.max_background_refreshes = max.max(1);
        self
    }

    /// Refreshes up to `percent` % of the refresh window early (0 turns the spread off).
    pub fn with_refresh_jitter_percent(mut self, percent: u32) -> Self {
        self.refresh_jitter_percent = percent.min(50);
        self
    }
}

struct Entry {
    token: Arc<CachedToken>,
    /// Insertion number, to tell a live entry from a stale eviction-queue slot.
    seq: u64,
    /// Approximate bytes, counted in the shard's total.
    bytes: usize,
}

#[derive(Default)]
struct Shard {
    map: HashMap<CacheKey, Entry>,
    order: VecDeque<(CacheKey, u64)>,
    next_seq: u64,
    bytes: usize,
}

/// The in-memory token cache (L1). Share one between clients with `Arc`; keys keep tenants,
/// clients and scopes apart.
pub struct TokenCache {
    shards: Box<[RwLock<Shard>]>,
    per_shard: usize,
    per_shard_bytes: Option<usize>,
    max_background_refreshes: usize,
    refresh_jitter_percent: u32,
    background_refreshes: Arc<std::sync::atomic::AtomicUsize>,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
    refreshes: std::sync::atomic::AtomicU64,
    refreshes_deferred: std::sync::atomic::AtomicU64,
    hasher: std::collections::hash_map::RandomState,
    pub(crate) flights: SingleFlight,
    /// When each key's last proactive refresh started, so a failing refresh is not retried on
    /// every hit.
    refresh_started: Mutex<HashMap<CacheKey, SystemTime>>,
    evictions: Mutex<u64>,
    l2_errors: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("len", &self.len())
            .field("per_shard", &self.per_shard)
            .finish()
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(CacheOptions::default())
    }
}

impl TokenCache {
    /// An empty cache.
    pub fn new(options: CacheOptions) -> Self {
        let per_shard = options.max_entries.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            per_shard,
            per_shard_bytes: options.max_bytes.map(|b| b.div_ceil(SHARDS).max(1)),
            max_background_refreshes: options.max_background_refreshes.max(1),
            refresh_jitter_percent: options.refresh_jitter_percent,
            background_refreshes: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            hits: Default::default(),
            misses: Default::default(),
            refreshes: Default::default(),
            refreshes_deferred: Default::default(),
            hasher: std::collections::hash_map::RandomState::new(),
            flights: SingleFlight::default(),
            refresh_started: Mutex::new(HashMap::new()),
            evictions: Mutex::new(0),
            l2_errors: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &CacheKey) -> &RwLock<Shard> {
        // The map hashes again with its own state; the shard choice only needs spread.
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// The token filed under `key`, whatever its expiry.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<Arc<CachedToken>> {
        let shard = self.shard(key).read().unwrap_or_else(|p| p.into_inner());
        shard.map.get(key).map(|e| Arc::clone(&e.token))
    }

    /// Files `token` under `key`, evicting the oldest insertions beyond the bound.
    pub(crate) fn insert(&self, key: CacheKey, token: Arc<CachedToken>) {
        let mut evicted = 0;
        {
            let mut shard = self.shard(&key).write().unwrap_or_else(|p| p.into_inner());
            let seq = shard.next_seq;
            shard.next_seq += 1;
            shard.order.push_back((key.clone(), seq));
            let bytes =
                token.approximate_bytes() + std::mem::size_of::<CacheKey>() + key.target.len();
            shard.bytes += bytes;
            if let Some(replaced) = shard.map.insert(key, Entry { token, seq, bytes }) {
                shard.bytes = shard.bytes.saturating_sub(replaced.bytes);
            }
            let over = |shard: &Shard| {
                shard.map.len() > self.per_shard
                    || self
                        .per_shard_bytes
                        .is_some_and(|max| shard.bytes > max && shard.map.len() > 1)
            };
            while over(&shard) {
                let Some((old, old_seq)) = shard.order.pop_front() else {
                    break;
                };
                if shard.map.get(&old).is_some_and(|e| e.seq == old_seq)
                    && let Some(removed) = shard.map.remove(&old)
                {
                    shard.bytes = shard.bytes.saturating_sub(removed.bytes);
                    evicted += 1;
                }
            }
            // Re-inserted keys leave stale slots behind; drop them once they dominate.
            if shard.order.len() > 2 * shard.map.len() + 64 {
                let Shard { map, order, .. } = &mut *shard;
                order.retain(|(k, s)| map.get(k).is_some_and(|e| e.seq == *s));
            }
        }
        if evicted > 0 {
            *self.evictions.lock().unwrap_or_else(|p| p.into_inner()) += evicted;
            tracing::debug!(evicted, "token cache evicted entries");
        }
    }

    /// The token for `key`: from the cache while usable at `now` (starting a background
    /// refresh when one is due), else from one `fetch` shared by every caller that misses at
    /// once. `fetch` must file its token before it returns. The flag says "from the cache".
    pub(crate) async fn get_or_fetch<F, Fut>(
        &self,
        key: &CacheKey,
        now: SystemTime,
        fetch: F,
    ) -> Result<(Arc<CachedToken>, bool), Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = FlightResult> + Send + 'static,
    {
        if let Some(token) = self.get(key).filter(|t| t.is_usable(now)) {
            self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if token.refresh_on().is_some() && token.refresh_due(now, self.spread(key)) {
                self.refresh_in_background(key, now, &fetch);
            }
            tracing::trace!(cache_hit = true, "token from cache");
            return Ok((token, true));
        }
        self.misses
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let joined =
            self.flights
                .join(key, || self.get(key).filter(|t| t.is_usable(now)), &fetch)?;
        match joined {
            Joined::Cached(token) => {
                tracing::trace!(cache_hit = true, "token filed while this caller arrived");
                Ok((token, true))
            }
            Joined::Waiting(rx) => {
                tracing::debug!(cache_hit = false, scopes = %key.target, "token cache miss; one request for every caller");
                Ok((SingleFlight::wait(rx).await?, false))
            }
        }
    }

    /// Starts `fetch` for `key` unless one is in flight or one started less than a minute ago
    /// (a refresh that failed is not retried on every hit); callers keep the valid token.
    fn refresh_in_background<F, Fut>(&self, key: &CacheKey, now: SystemTime, fetch: &F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = FlightResult> + Send + 'static,
    {
        if self.flights.is_in_flight(key) {
            return;
        }
        let running = Arc::clone(&self.background_refreshes);
        if running.load(std::sync::atomic::Ordering::Acquire) >= self.max_background_refreshes {
            self.refreshes_deferred
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        {
            let mut started = self
                .refresh_started
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if started
                .get(key)
                .is_some_and(|at| now < *at + REFRESH_RETRY_INTERVAL)
            {
                return;
            }
            started.retain(|_, at| now < *at + REFRESH_RETRY_INTERVAL);
            started.insert(key.clone(), now);
        }
        running.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let bounded = || {
            let request = fetch();
            let running = Arc::clone(&running);
            async move {
                // Counted down however the refresh ends (the task runs to completion).
                let result = request.await;
                running.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                result
            }
        };
        match self.flights.join(key, || None, bounded) {
            Err(e) => {
                running.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                tracing::warn!(error = %e, "could not start a proactive token refresh");
            }
            Ok(_) => {
                self.refreshes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!("proactive token refresh started");
            }
        }
    }

    /// The per-key refresh spread, 0 to the configured percent.
    fn spread(&self, key: &CacheKey) -> u32 {
        if self.refresh_jitter_percent == 0 {
            return 0;
        }
        (self.hasher.hash_one(key) % u64::from(self.refresh_jitter_percent + 1)) as u32
    }

    /// Counts a hit served outside [`get_or_fetch`](Self::get_or_fetch) (a broader token).
    pub(crate) fn record_hit(&self) {
        self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// What the cache did.
    pub fn stats(&self) -> CacheStats {
        use std::sync::atomic::Ordering::Relaxed;
        CacheStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            refreshes: self.refreshes.load(Relaxed),
            refreshes_deferred: self.refreshes_deferred.load(Relaxed),
            evictions: self.evictions(),
            l2_errors: self.l2_errors(),
            entries: self.len(),
        }
    }

    /// Every entry whose partition satisfies `wanted` (for serialization; O(n)).
    pub(crate) fn entries(
        &self,
        wanted: impl Fn(&str) -> bool,
    ) -> Vec<(CacheKey, Arc<CachedToken>)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|p| p.into_inner());
            out.extend(
                shard
                    .map
                    .iter()
                    .filter(|(key, _)| wanted(&key.partition))
                    .map(|(key, entry)| (key.clone(), Arc::clone(&entry.token))),
            );
        }
        out
    }

    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).map.len())
            .sum()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many tokens were evicted to respect the bound.
    pub fn evictions(&self) -> u64 {
        *self.evictions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many times a token store (L2) failed and the network was used instead.
    pub fn l2_errors(&self) -> u64 {
        self.l2_errors.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn count_l2_error(&self) {
        self.l2_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Drops every token.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            *shard.write().unwrap_or_else(|p| p.into_inner()) = Shard::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_covers_fewer_scopes_of_its_own_partition_only() {
        let alice: Arc<str> = Arc::from("env|t|c|alice");
        let bob: Arc<str> = Arc::from("env|t|c|bob");
        let broad = CacheKey::new(Arc::clone(&alice), &["api://a/Read", "api://a/Write"]);
        assert!(broad.covers(&CacheKey::new(Arc::clone(&alice), &["API://A/write"])));
        assert!(broad.covers(&broad));
        assert!(!broad.covers(&CacheKey::new(Arc::clone(&alice), &["api://a/Re"])));
        assert!(!broad.covers(&CacheKey::new(
            Arc::clone(&alice),
            &["api://a/Read", "api://a/Delete"]
        )));
        assert!(!broad.covers(&CacheKey::new(bob, &["api://a/Read"])));
    }

    fn token(now: SystemTime, secs: u64) -> Arc<CachedToken> {
        Arc::new(CachedToken::new(
            AccessToken::new("t"),
            "Bearer".into(),
            now,
            Duration::from_secs(secs),
            None,
            None,
            Vec::new(),
        ))
    }

    #[test]
    fn keys_normalize_scopes() {
        let p: Arc<str> = "env|tid|client|".into();
        assert!(
            CacheKey::new(p.clone(), &["B/.default", "a"])
                == CacheKey::new(p.clone(), &["A", "b/.default"])
        );
        assert!(
            CacheKey::new(p.clone(), &["a"]) != CacheKey::new("env|other|client|".into(), &["a"])
        );
    }

    #[test]
    fn expiry_buffer_and_half_life_refresh() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t = token(now, 3600);
        assert!(t.is_usable(now + Duration::from_secs(3299)));
        assert!(!t.is_usable(now + Duration::from_secs(3300)));
        assert_eq!(t.refresh_on(), None);
        let long = token(now, 86_400);
        assert_eq!(long.refresh_on(), Some(now + Duration::from_secs(43_200)));
        assert!(long.needs_refresh(now + Duration::from_secs(43_200)));
    }

    #[test]
    fn refresh_spread_is_early_never_late() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t = token(now, 86_400);
        let half = now + Duration::from_secs(43_200);
        assert!(!t.refresh_due(half - Duration::from_secs(1), 0));
        assert!(t.refresh_due(half, 0));
        // 10 % of the 12 h window early at most.
        assert!(t.refresh_due(half - Duration::from_secs(4_320), 10));
        assert!(!t.refresh_due(half - Duration::from_secs(4_321), 10));
        assert!(!token(now, 3600).refresh_due(now + Duration::from_secs(3_000), 10));
    }

    #[test]
    fn byte_bound_evicts_and_stats_count() {
        let now = SystemTime::now();
        let cache = TokenCache::new(CacheOptions::default().with_max_bytes(SHARDS * 4_096));
        let p: Arc<str> = "p".into();
        let big = |n: usize| {
            Arc::new(CachedToken::new(
                AccessToken::new("x".repeat(n)),
                "Bearer".into(),
                now,
                Duration::from_secs(3600),
                None,
                None,
                Vec::new(),
            ))
        };
        for i in 0..2_000 {
            cache.insert(CacheKey::new(p.clone(), &[&format!("s{i}")]), big(1_000));
        }
        let stats = cache.stats();
        assert!(stats.entries <= SHARDS * 4, "{stats:?}");
        assert!(stats.evictions >= 2_000 - (SHARDS as u64 * 4));
        assert_eq!(stats.hits, 0);
    }

    #[test]
    fn bounded_with_oldest_evicted_first() {
        let now = SystemTime::now();
        let cache = TokenCache::new(CacheOptions::default().with_max_entries(SHARDS * 2));
        let p: Arc<str> = "p".into();
        for i in 0..1000 {
            cache.insert(
                CacheKey::new(p.clone(), &[&format!("s{i}")]),
                token(now, 3600),
            );
        }
        assert!(cache.len() <= SHARDS * 2, "{}", cache.len());
        assert!(cache.evictions() >= 1000 - (SHARDS as u64 * 2));
        assert!(
            cache.get(&CacheKey::new(p.clone(), &["s999"])).is_some(),
            "newest kept"
        );
        assert!(
            cache.get(&CacheKey::new(p, &["s0"])).is_none(),
            "oldest evicted"
        );
    }
}
