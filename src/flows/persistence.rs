//! The client's tokens in MSAL's unified cache schema (WIRE.md section 7): what msal-python's
//! `SerializableTokenCache`, MSAL.NET, Go and JS read and write. Keys are msal-python's exactly;
//! sections, entries and fields this client does not own are kept as they were.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::auth_code::{Account, UserRecord};
use super::{ConfidentialClient, Inner, environment, realm};
use crate::authority::AzureCloud;
use crate::cache::{CacheKey, CachedToken};
use crate::error::Error;
use crate::secret::AccessToken;

const ACCESS_TOKEN: &str = "AccessToken";
const REFRESH_TOKEN: &str = "RefreshToken";
const ID_TOKEN: &str = "IdToken";
const ACCOUNT: &str = "Account";
const APP_METADATA: &str = "AppMetadata";

fn unix(time: SystemTime) -> String {
    crate::clock::unix_seconds(time).to_string()
}

fn time_of(value: Option<&Value>) -> Option<SystemTime> {
    let seconds = match value? {
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

fn text<'a>(entry: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    entry.get(name).and_then(Value::as_str)
}

/// The cache environment of a stored `environment`: a cloud's aliases are one.
fn canonical_environment(environment: &str) -> String {
    let lower = environment.to_ascii_lowercase();
    match AzureCloud::from_host(&lower) {
        Some(cloud) => cloud.login_host().to_owned(),
        None => lower,
    }
}

/// msal-python's keys (lower-cased, `-`-joined).
fn access_token_key(home: &str, env: &str, client: &str, realm: &str, target: &str) -> String {
    format!("{home}-{env}-accesstoken-{client}-{realm}-{target}").to_ascii_lowercase()
}

fn refresh_token_key(home: &str, env: &str, client: &str) -> String {
    format!("{home}-{env}-refreshtoken-{client}--").to_ascii_lowercase()
}

fn id_token_key(home: &str, env: &str, client: &str, realm: &str) -> String {
    format!("{home}-{env}-idtoken-{client}-{realm}-").to_ascii_lowercase()
}

fn account_key(home: &str, env: &str, realm: &str) -> String {
    format!("{home}-{env}-{realm}").to_ascii_lowercase()
}

/// Parses a cache document: a JSON object whose known sections are objects.
fn parse(document: &str) -> Result<Map<String, Value>, Error> {
    let invalid = |what: &str| Error::InvalidResponse(format!("the token cache {what}"));
    if document.trim().is_empty() {
        return Ok(Map::new());
    }
    let Value::Object(root) =
        serde_json::from_str::<Value>(document).map_err(|_| invalid("is not JSON"))?
    else {
        return Err(invalid("is not a JSON object"));
    };
    for section in [ACCESS_TOKEN, REFRESH_TOKEN, ID_TOKEN, ACCOUNT, APP_METADATA] {
        if root.get(section).is_some_and(|s| !s.is_object()) {
            return Err(invalid(&format!("section {section} is not an object")));
        }
    }
    Ok(root)
}

/// Merges `fields` into the entry at `key` of `section` (unknown fields of an existing entry
/// stay).
fn upsert(root: &mut Map<String, Value>, section: &str, key: String, fields: Value) {
    let section = root
        .entry(section.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(section) = section else {
        return;
    };
    let entry = section
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if let (Value::Object(entry), Value::Object(fields)) = (entry, fields) {
        for (name, value) in fields {
            entry.insert(name, value);
        }
    }
}

/// Which of a client's entries a document holds: all, or one L2 partition's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope<'a> {
    All,
    /// App tokens (client credentials).
    App,
    /// One signed-in user: access tokens, account, refresh and ID tokens.
    User(&'a str),
    /// On-behalf-of tokens for one incoming assertion (its hash).
    Obo(&'a str),
}

impl Scope<'_> {
    fn holds(self, suffix: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::App => suffix.is_empty(),
            Scope::User(home) => suffix.eq_ignore_ascii_case(home),
            Scope::Obo(hash) => suffix.strip_prefix("obo:") == Some(hash),
        }
    }
}

/// Writes `inner`'s entries of `scope` over `root`.
pub(crate) fn write_entries(inner: &Inner, root: &mut Map<String, Value>, scope: Scope<'_>) {
    let env = environment(&inner.authority);
    let realm = realm(&inner.authority);
    let client = inner.client_id.to_ascii_lowercase();
    let prefix = format!("{env}|{realm}|{client}|");
    let now = inner.clock.now();
    // Partitions hold home account ids lower-cased; entries carry them as the account does.
    let homes: std::collections::HashMap<String, String> = inner
        .users
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .keys()
        .map(|home| (home.to_ascii_lowercase(), home.clone()))
        .collect();
    for (key, token) in inner.cache.entries(|p| {
        p.strip_prefix(prefix.as_str())
            .is_some_and(|suffix| scope.holds(suffix))
    }) {
        if token.expires_on() <= now {
            continue;
        }
        let suffix = &key.partition()[prefix.len()..];
        let (home, assertion_hash) = match suffix.strip_prefix("obo:") {
            Some(hash) => (None, Some(hash)),
            None if suffix.is_empty() => (None, None),
            None => (Some(homes.get(suffix).map_or(suffix, String::as_str)), None),
        };
        let mut scopes = token.scopes().to_vec();
        scopes.sort();
        let target = scopes.join(" ");
        let mut fields = json!({
            "credential_type": ACCESS_TOKEN,
            "secret": token.access_token().expose_secret(),
            "home_account_id": home,
            "environment": env,
            "client_id": inner.client_id,
            "target": target,
            "realm": realm,
            "token_type": token.token_type(),
            "cached_at": unix(token.cached_at()),
            "expires_on": unix(token.expires_on()),
            "extended_expires_on": unix(token.extended_expires_on()),
        });
        if let Some(refresh_on) = token.refresh_on() {
            fields["refresh_on"] = json!(unix(refresh_on));
        }
        if let Some(hash) = assertion_hash {
            fields["user_assertion_hash"] = json!(hash);
        }
        let key = access_token_key(home.unwrap_or_default(), &env, &client, &realm, &target);
        upsert(root, ACCESS_TOKEN, key, fields);
    }
    let users = inner.users.lock().unwrap_or_else(|p| p.into_inner());
    for user in users.values() {
        let account = &user.account;
        let home = account.home_account_id.as_str();
        if !matches!(scope, Scope::All) && scope != Scope::User(home) {
            continue;
        }
        upsert(
            root,
            ACCOUNT,
            account_key(home, &env, &account.tenant_id),
            json!({
                "home_account_id": home,
                "environment": env,
                "realm": account.tenant_id,
                "local_account_id": account.local_account_id,
                "username": account.username,
                "authority_type": "MSSTS",
            }),
        );
        if let Some(refresh_token) = &user.refresh_token {
            // msal-python keys a refresh token with the scopes it was granted for: update the
            // entry the loaded document has, rather than writing a second one.
            let existing = root
                .get(REFRESH_TOKEN)
                .and_then(Value::as_object)
                .and_then(|section| {
                    section.iter().find_map(|(key, entry)| {
                        let entry = entry.as_object()?;
                        let same = text(entry, "home_account_id")
                            .is_some_and(|h| h.eq_ignore_ascii_case(home))
                            && text(entry, "client_id")
                                .is_some_and(|c| c.eq_ignore_ascii_case(&inner.client_id))
                            && text(entry, "environment")
                                .is_some_and(|e| canonical_environment(e) == env);
                        same.then(|| key.clone())
                    })
                });
            let key = existing.unwrap_or_else(|| refresh_token_key(home, &env, &client));
            let target_kept = root
                .get(REFRESH_TOKEN)
                .and_then(|s| s.get(&key))
                .and_then(|e| e.get("target"))
                .cloned()
                .unwrap_or_else(|| json!(""));
            upsert(
                root,
                REFRESH_TOKEN,
                key,
                json!({
                    "credential_type": REFRESH_TOKEN,
                    "secret": refresh_token.as_str(),
                    "home_account_id": home,
                    "environment": env,
                    "client_id": inner.client_id,
                    "target": target_kept,
                    "last_modification_time": unix(now),
                }),
            );
        }
        if let Some(id_token) = &user.id_token {
            upsert(
                root,
                ID_TOKEN,
                id_token_key(home, &env, &client, &account.tenant_id),
                json!({
                    "credential_type": ID_TOKEN,
                    "secret": id_token.as_str(),
                    "home_account_id": home,
                    "environment": env,
                    "realm": account.tenant_id,
                    "client_id": inner.client_id,
                }),
            );
        }
    }
    upsert(
        root,
        APP_METADATA,
        format!("appmetadata-{env}-{}", inner.client_id),
        json!({"client_id": inner.client_id, "environment": env}),
    );
}

/// Loads `inner`'s entries from `root`: unexpired `Bearer` access tokens and signed-in
/// accounts with their refresh and ID tokens. Returns how many access tokens were loaded.
pub(crate) fn load_entries(inner: &Inner, root: &Map<String, Value>) -> usize {
    let env = environment(&inner.authority);
    let realm = realm(&inner.authority);
    let now = inner.clock.now();
    let ours = |entry: &Map<String, Value>, with_realm: bool| {
        text(entry, "client_id").is_some_and(|c| c.eq_ignore_ascii_case(&inner.client_id))
            && text(entry, "environment").is_some_and(|e| canonical_environment(e) == env)
            && (!with_realm || text(entry, "realm").is_some_and(|r| r.eq_ignore_ascii_case(&realm)))
    };
    let section = |name: &str| root.get(name).and_then(Value::as_object);

    let mut loaded = 0;
    for entry in section(ACCESS_TOKEN).into_iter().flat_map(|s| s.values()) {
        let Some(entry) = entry.as_object() else {
            continue;
        };
        let bearer = text(entry, "token_type").is_none_or(|t| t.eq_ignore_ascii_case("bearer"));
        if !ours(entry, true) || !bearer {
            continue;
        }
        let (Some(secret), Some(expires_on)) =
            (text(entry, "secret"), time_of(entry.get("expires_on")))
        else {
            continue;
        };
        if expires_on <= now || secret.is_empty() {
            continue;
        }
        let target = text(entry, "target").unwrap_or_default();
        let scopes: Vec<String> = target.split_whitespace().map(str::to_owned).collect();
        if scopes.is_empty() {
            continue;
        }
        let home = text(entry, "home_account_id").unwrap_or_default();
        let (suffix, user_token) = match text(entry, "user_assertion_hash") {
            Some(hash) if !hash.is_empty() => (format!("obo:{hash}"), false),
            _ => (home.to_ascii_lowercase(), !home.is_empty()),
        };
        let partition: Arc<str> = format!(
            "{env}|{realm}|{}|{suffix}",
            inner.client_id.to_ascii_lowercase()
        )
        .into();
        let requested: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let key = CacheKey::new(partition, &requested);
        // A token the cache already has that lives at least as long wins.
        if inner
            .cache
            .get(&key)
            .is_some_and(|held| held.expires_on() >= expires_on)
        {
            continue;
        }
        let token = CachedToken::from_parts(
            AccessToken::new(secret),
            "Bearer".to_owned(),
            time_of(entry.get("cached_at")).unwrap_or(now),
            expires_on,
            time_of(entry.get("extended_expires_on")).unwrap_or(expires_on),
            time_of(entry.get("refresh_on")),
            scopes.clone(),
        );
        if user_token {
            super::auth_code::remember_scope_set(inner, &key);
        }
        inner.cache.insert(key, Arc::new(token));
        loaded += 1;
    }

    let refresh_tokens = section(REFRESH_TOKEN);
    let id_tokens = section(ID_TOKEN);
    let mut users = inner.users.lock().unwrap_or_else(|p| p.into_inner());
    for entry in section(ACCOUNT).into_iter().flat_map(|s| s.values()) {
        let Some(entry) = entry.as_object() else {
            continue;
        };
        let home = text(entry, "home_account_id").unwrap_or_default();
        let account_env = text(entry, "environment").map(canonical_environment);
        if home.is_empty() || account_env.as_deref() != Some(env.as_str()) {
            continue;
        }
        let account_realm = text(entry, "realm").unwrap_or_default();
        let secret_of = |section: Option<&Map<String, Value>>, with_realm: bool| {
            section?
                .values()
                .filter_map(Value::as_object)
                .find(|e| {
                    ours(e, false)
                        && text(e, "home_account_id").is_some_and(|h| h.eq_ignore_ascii_case(home))
                        && (!with_realm
                            || text(e, "realm")
                                .is_some_and(|r| r.eq_ignore_ascii_case(account_realm)))
                })
                .and_then(|e| text(e, "secret"))
                .filter(|s| !s.is_empty())
                .map(|s| Zeroizing::new(s.to_owned()))
        };
        let refresh_token = secret_of(refresh_tokens, false);
        let id_token = secret_of(id_tokens, true);
        if refresh_token.is_none() && id_token.is_none() {
            // Another client's user.
            continue;
        }
        let account = Account {
            home_account_id: home.to_owned(),
            environment: env.clone(),
            tenant_id: account_realm.to_owned(),
            username: text(entry, "username").unwrap_or_default().to_owned(),
            name: text(entry, "name").map(str::to_owned),
            local_account_id: text(entry, "local_account_id")
                .unwrap_or_default()
                .to_owned(),
        };
        let record = users.entry(home.to_owned()).or_insert_with(|| UserRecord {
            account: account.clone(),
            refresh_token: None,
            id_token: None,
        });
        record.account = account;
        // This process's own newer refresh token is kept over the stored one.
        if record.refresh_token.is_none() {
            record.refresh_token = refresh_token;
        }
        if record.id_token.is_none() {
            record.id_token = id_token;
        }
    }
    loaded
}

/// Parses a stored document; a malformed one is an error.
pub(crate) fn parse_document(document: &[u8]) -> Result<Map<String, Value>, Error> {
    let text = std::str::from_utf8(document)
        .map_err(|_| Error::InvalidResponse("the token cache is not UTF-8".into()))?;
    parse(text)
}

/// `root` as the JSON a store keeps.
pub(crate) fn render(root: Map<String, Value>) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(&Value::Object(root))
        .map_err(|e| Error::Configuration(format!("cannot serialize the token cache: {e}")))
}

/// The L2 partition of a scope: MSAL.NET's and Go's names.
pub(crate) fn partition_name(inner: &Inner, scope: Scope<'_>) -> String {
    match scope {
        Scope::All | Scope::App => format!(
            "{}_{}_AppTokenCache",
            inner.client_id,
            realm(&inner.authority)
        ),
        Scope::User(home) => home.to_owned(),
        Scope::Obo(hash) => hash.to_owned(),
    }
}

fn elapsed_ms(started: std::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Scope<'_> {
    /// The kind of partition, for logs (a user's id or an assertion's hash never is logged).
    fn kind(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::App => "app",
            Scope::User(_) => "user",
            Scope::Obo(_) => "on-behalf-of",
        }
    }
}

/// Loads the scope's L2 partition into the L1 (and the users); a store failure is reported and
/// the caller goes on to the network. Whether anything was loaded.
pub(crate) async fn l2_load(inner: &Inner, scope: Scope<'_>) -> bool {
    let Some(store) = &inner.store else {
        return false;
    };
    let partition = partition_name(inner, scope);
    let started = std::time::Instant::now();
    let loaded = store.load(&partition).await;
    tracing::debug!(
        partition = scope.kind(),
        found = matches!(loaded, Ok(Some(_))),
        duration_ms = elapsed_ms(started),
        "token store load"
    );
    let document = match loaded {
        Ok(Some(document)) => document,
        Ok(None) => return false,
        Err(e) => {
            inner.cache.count_l2_error();
            tracing::warn!(error = %e, kind = "store", "token store load failed; using the network");
            return false;
        }
    };
    match parse_document(&document) {
        Ok(root) => {
            load_entries(inner, &root);
            true
        }
        Err(e) => {
            inner.cache.count_l2_error();
            tracing::warn!(error = %e, kind = "store", "token store document unreadable; using the network");
            false
        }
    }
}

/// The token for `key` from the scope's L2 partition, when it is usable and not due for
/// refresh (the caller then skips the network).
pub(crate) async fn l2_cached(
    inner: &Inner,
    scope: Scope<'_>,
    key: &CacheKey,
) -> Option<Arc<CachedToken>> {
    if !l2_load(inner, scope).await {
        return None;
    }
    let now = inner.clock.now();
    inner
        .cache
        .get(key)
        .filter(|t| t.is_usable(now) && !t.needs_refresh(now))
}

/// Writes the scope's entries into its L2 partition, merged with what other processes wrote;
/// a store failure is reported, the token is still returned.
pub(crate) async fn l2_save(inner: &Inner, scope: Scope<'_>) {
    let Some(store) = &inner.store else {
        return;
    };
    let mut ours = Map::new();
    write_entries(inner, &mut ours, scope);
    let expires_at = ours
        .get(ACCESS_TOKEN)
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|section| section.values())
        .filter_map(|entry| time_of(entry.get("expires_on")))
        .max();
    let ours = Arc::new(ours);
    let merge: crate::cache::Merge = Arc::new(move |current: Option<&[u8]>| {
        let mut root = match current {
            Some(bytes) => parse_document(bytes)?,
            None => Map::new(),
        };
        for (section, entries) in ours.iter() {
            let Some(entries) = entries.as_object() else {
                continue;
            };
            for (key, fields) in entries {
                upsert(&mut root, section, key.clone(), fields.clone());
            }
        }
        render(root)
    });
    let partition = partition_name(inner, scope);
    let started = std::time::Instant::now();
    let updated = store.update(&partition, merge, expires_at).await;
    tracing::debug!(
        partition = scope.kind(),
        ok = updated.is_ok(),
        duration_ms = elapsed_ms(started),
        "token store update"
    );
    if let Err(e) = updated {
        inner.cache.count_l2_error();
        tracing::warn!(error = %e, kind = "store", "token store write failed; the token is kept in memory");
    }
}

impl ConfidentialClient {
    /// This client's tokens (app tokens, signed-in users' access, refresh and ID tokens and
    /// accounts, on-behalf-of tokens) in MSAL's unified cache schema, written over the last
    /// document this client loaded, so entries and fields it does not own are kept.
    pub fn serialize_cache(&self) -> Result<String, Error> {
        let inner = &self.inner;
        let mut root = inner
            .persisted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        write_entries(inner, &mut root, Scope::All);
        String::from_utf8(render(root)?)
            .map_err(|_| Error::Configuration("the token cache is not UTF-8".into()))
    }

    /// Loads a cache document (MSAL's unified schema, from confidant, msal-python, MSAL.NET,
    /// ...): this client's unexpired `Bearer` access tokens, and its signed-in accounts with
    /// their refresh and ID tokens. The document is kept, so a later
    /// [`serialize_cache`](Self::serialize_cache) preserves what this client does not own.
    /// Returns how many access tokens were loaded.
    pub fn deserialize_cache(&self, document: &str) -> Result<usize, Error> {
        let root = parse(document)?;
        let loaded = load_entries(&self.inner, &root);
        *self
            .inner
            .persisted
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = root;
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_msal_pythons() {
        assert_eq!(
            access_token_key(
                "",
                "login.microsoftonline.com",
                "C",
                "T",
                "https://vault.azure.net/.default"
            ),
            "-login.microsoftonline.com-accesstoken-c-t-https://vault.azure.net/.default"
        );
        assert_eq!(
            refresh_token_key("uid.utid", "login.microsoftonline.com", "c"),
            "uid.utid-login.microsoftonline.com-refreshtoken-c--"
        );
        assert_eq!(id_token_key("u.t", "env", "c", "t"), "u.t-env-idtoken-c-t-");
        assert_eq!(account_key("u.t", "env", "t"), "u.t-env-t");
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(parse("").expect("empty is an empty cache").is_empty());
        for bad in ["[]", "{", "{\"AccessToken\": []}", "null", "\"x\""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_are_strings_or_numbers() {
        let at = |v: Value| time_of(Some(&v)).map(crate::clock::unix_seconds);
        assert_eq!(at(json!("1700000000")), Some(1_700_000_000));
        assert_eq!(at(json!(1_700_000_000u64)), Some(1_700_000_000));
        assert_eq!(at(json!("soon")), None);
        assert_eq!(at(json!(-5)), None);
        assert_eq!(
            canonical_environment("LOGIN.windows.net"),
            "login.microsoftonline.com"
        );
    }
}
