//! [`RedisStore`] (feature `redis`): tokens shared between machines. One key per partition, a
//! TTL from the newest token's expiry, updates as compare-and-set (a Lua script) retried on a
//! concurrent write; the connection is made on first use and re-made after the server
//! restarts.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::store::{Merge, TokenStore};
use crate::error::Error;

/// Sets `KEYS[1]` to `ARGV[2]` (with a TTL of `ARGV[1]` ms, 0 = none) if it still holds
/// `ARGV[3]`, or, without an `ARGV[3]`, if it does not exist.
const COMPARE_AND_SET: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[3] == nil then
  if current then return 0 end
elseif current ~= ARGV[3] then
  return 0
end
if tonumber(ARGV[1]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
";

/// How often a compare-and-set is retried after a concurrent write (with a short random
/// pause, so writers in lockstep fall out of it).
const CAS_ATTEMPTS: u32 = 32;

/// A [`TokenStore`] in Redis.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    manager: std::sync::Arc<tokio::sync::Mutex<Option<ConnectionManager>>>,
    prefix: String,
    timeout: Duration,
    script: std::sync::Arc<redis::Script>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.client.get_connection_info();
        f.debug_struct("RedisStore")
            .field("addr", &info.addr().to_string())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn store_error(what: &str, e: &redis::RedisError) -> Error {
    // The error's own text can carry the URL; keep its kind and category only.
    Error::Store(format!(
        "Redis {what} failed: {} ({:?})",
        e.category(),
        e.kind()
    ))
}

impl RedisStore {
    /// A store at `url` (`redis://host:port/db`, `rediss://` for TLS). Nothing is connected
    /// until first use, so a Redis that is down at start costs the first requests their L2,
    /// not the service its start-up.
    pub fn new(url: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::Configuration(format!("invalid Redis URL: {}", e.category())))?;
        Ok(Self {
            client,
            manager: Default::default(),
            prefix: "confidant:".to_owned(),
            timeout: Duration::from_secs(2),
            script: std::sync::Arc::new(redis::Script::new(COMPARE_AND_SET)),
        })
    }

    /// Prefixes every key (default `confidant:`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The connect and response timeout (default 2 s): a slow Redis costs a request at most
    /// this much before the network is used instead.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn key(&self, partition: &str) -> String {
        format!("{}{partition}", self.prefix)
    }

    /// `value`, unless it is not a cache document: then it is renamed aside
    /// (`{key}:corrupt:{time}`, kept a week), reported, and `None`.
    async fn checked(
        &self,
        connection: &mut ConnectionManager,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, Error> {
        match value {
            Some(bytes) if !super::store::looks_like_document(&bytes) => {
                let aside = format!(
                    "{key}:corrupt:{}",
                    crate::clock::unix_seconds(SystemTime::now())
                );
                let _: () = redis::pipe()
                    .atomic()
                    .rename(key, &aside)
                    .ignore()
                    .expire(&aside, 7 * 86_400)
                    .ignore()
                    .query_async(connection)
                    .await
                    .map_err(|e| store_error("RENAME", &e))?;
                tracing::warn!(key, moved_to = %aside, "token store value is not a cache document; set aside");
                Ok(None)
            }
            other => Ok(other),
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, Error> {
        let mut slot = self.manager.lock().await;
        if let Some(manager) = slot.as_ref() {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let manager = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(|e| store_error("connect", &e))?;
        *slot = Some(manager.clone());
        Ok(manager)
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn load(&self, partition: &str) -> Result<Option<Vec<u8>>, Error> {
        let mut connection = self.connection().await?;
        let key = self.key(partition);
        let value = connection
            .get::<_, Option<Vec<u8>>>(&key)
            .await
            .map_err(|e| store_error("GET", &e))?;
        self.checked(&mut connection, &key, value).await
    }

    async fn update(
        &self,
        partition: &str,
        merge: Merge,
        expires_at: Option<SystemTime>,
    ) -> Result<(), Error> {
        let key = self.key(partition);
        let ttl_ms: u64 = expires_at
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .map_or(0, |d| {
                d.as_millis().clamp(1_000, u128::from(u64::MAX)) as u64
            });
        let mut connection = self.connection().await?;
        for _ in 0..CAS_ATTEMPTS {
            let current: Option<Vec<u8>> = connection
                .get(&key)
                .await
                .map_err(|e| store_error("GET", &e))?;
            let current = self.checked(&mut connection, &key, current).await?;
            let document = merge(current.as_deref())?;
            let set: i64 = self
                .script
                .key(&key)
                .arg(ttl_ms)
                .arg(&document)
                // Absent when there is no current value (an Option adds no argument then).
                .arg(current.as_ref())
                .invoke_async(&mut connection)
                .await
                .map_err(|e| store_error("compare-and-set", &e))?;
            if set == 1 {
                return Ok(());
            }
            tracing::debug!(
                partition,
                "token store key changed meanwhile; merging again"
            );
            let mut byte = [0u8; 1];
            let pause = match crate::signer::fill_random(&mut byte) {
                Ok(()) => u64::from(byte[0] % 8) + 1,
                Err(_) => 4,
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Err(Error::Store(format!(
            "Redis: the partition kept changing; gave up after {CAS_ATTEMPTS} attempts"
        )))
    }
}
