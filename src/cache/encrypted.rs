//! [`EncryptedStore`] (with the `aws-lc` backend): any [`TokenStore`] with its documents sealed
//! by AES-256-GCM under a caller-supplied key, each bound to its partition, so a file or a
//! Redis value read by someone without the key holds no token.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::store::{Merge, TokenStore};
use crate::error::Error;

/// What an encrypted document starts with (and the format's version).
const PREFIX: &[u8] = super::store::SEALED_PREFIX;

/// A [`TokenStore`] that seals what it hands to `inner` with AES-256-GCM (a random nonce per
/// write, the partition name as associated data). A document that does not open (another key,
/// tampering, an unencrypted value) is an error: it is never overwritten unseen, and the
/// client goes to the network.
pub struct EncryptedStore<S> {
    inner: S,
    key: Arc<LessSafeKey>,
}

impl<S: fmt::Debug> fmt::Debug for EncryptedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedStore")
            .field("inner", &self.inner)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl<S: TokenStore> EncryptedStore<S> {
    /// Wraps `inner`; `key` is 32 bytes (from a secret store, not from the code).
    pub fn new(inner: S, key: &[u8]) -> Result<Self, Error> {
        let key = Zeroizing::new(key.to_vec());
        let unbound = UnboundKey::new(&AES_256_GCM, &key).map_err(|_| {
            Error::Configuration("the token store key must be 32 bytes (AES-256)".into())
        })?;
        Ok(Self {
            inner,
            key: Arc::new(LessSafeKey::new(unbound)),
        })
    }
}

fn seal(key: &LessSafeKey, partition: &str, plain: &[u8]) -> Result<Vec<u8>, Error> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::signer::fill_random(&mut nonce)?;
    let mut sealed = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(partition.as_bytes()),
        &mut sealed,
    )
    .map_err(|_| Error::Store("cannot encrypt the token cache".into()))?;
    let mut framed = nonce.to_vec();
    framed.extend_from_slice(&sealed);
    let mut out = PREFIX.to_vec();
    out.extend_from_slice(STANDARD.encode(framed).as_bytes());
    Ok(out)
}

fn open(key: &LessSafeKey, partition: &str, stored: &[u8]) -> Result<Vec<u8>, Error> {
    let refused = || {
        Error::Store(format!(
            "the stored token cache of partition `{partition}` does not decrypt with this key"
        ))
    };
    let body = stored.strip_prefix(PREFIX).ok_or_else(refused)?;
    let framed = STANDARD.decode(body).map_err(|_| refused())?;
    if framed.len() < NONCE_LEN {
        return Err(refused());
    }
    let (nonce, sealed) = framed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
    let mut in_out = sealed.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(partition.as_bytes()), &mut in_out)
        .map_err(|_| refused())?;
    Ok(plain.to_vec())
}

#[async_trait]
impl<S: TokenStore> TokenStore for EncryptedStore<S> {
    async fn load(&self, partition: &str) -> Result<Option<Vec<u8>>, Error> {
        match self.inner.load(partition).await? {
            Some(stored) => open(&self.key, partition, &stored).map(Some),
            None => Ok(None),
        }
    }

    async fn update(
        &self,
        partition: &str,
        merge: Merge,
        expires_at: Option<SystemTime>,
    ) -> Result<(), Error> {
        let key = Arc::clone(&self.key);
        let name = partition.to_owned();
        let sealed: Merge = Arc::new(move |current: Option<&[u8]>| {
            let plain = current.map(|c| open(&key, &name, c)).transpose()?;
            let next = merge(plain.as_deref())?;
            seal(&key, &name, &next)
        });
        self.inner.update(partition, sealed, expires_at).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_documents_open_only_with_their_key_and_partition() {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("key"));
        let other = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[8u8; 32]).expect("key"));
        let sealed = seal(&key, "p", b"{\"AccessToken\":{}}").expect("seal");
        assert!(!String::from_utf8_lossy(&sealed).contains("AccessToken"));
        assert_eq!(
            open(&key, "p", &sealed).expect("open"),
            b"{\"AccessToken\":{}}"
        );
        assert!(open(&key, "q", &sealed).is_err(), "bound to its partition");
        assert!(open(&other, "p", &sealed).is_err(), "another key");
        assert!(
            open(&key, "p", b"{\"AccessToken\":{}}").is_err(),
            "plain text"
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 2;
        tampered[last] ^= 1;
        assert!(open(&key, "p", &tampered).is_err(), "tampered");
        assert!(open(&key, "p", PREFIX).is_err(), "truncated");
    }
}
