//! Feature `azure-core`: confidant's token sources as `azure_core::credentials::TokenCredential`,
//! so the Azure SDK for Rust's clients can authenticate with a certificate, a Key Vault key, a
//! managed identity or a federated token through confidant.

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::time::OffsetDateTime;

use crate::credential::ManagedIdentity;
use crate::flows::{AuthenticationResult, ConfidentialClient};
use crate::token_source::{StaticToken, TokenSource};

/// The SDK's token: the same secret and expiry. Refused if the expiry is not representable.
fn to_sdk(result: Result<AuthenticationResult, crate::Error>) -> azure_core::Result<AccessToken> {
    let result = result.map_err(|e| azure_core::Error::new(ErrorKind::Credential, e))?;
    let unix = crate::clock::unix_seconds(result.expires_on());
    let expires_on = i64::try_from(unix)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| {
            azure_core::Error::with_message(ErrorKind::Credential, "token expiry out of range")
        })?;
    Ok(AccessToken::new(
        result.access_token().expose_secret().to_owned(),
        expires_on,
    ))
}

macro_rules! token_credential {
    ($($ty:ty),+) => {$(
        #[async_trait]
        impl TokenCredential for $ty {
            async fn get_token(
                &self,
                scopes: &[&str],
                _options: Option<TokenRequestOptions<'_>>,
            ) -> azure_core::Result<AccessToken> {
                to_sdk(TokenSource::get_token(self, scopes).await)
            }
        }
    )+};
}

token_credential!(ConfidentialClient, ManagedIdentity, StaticToken);
