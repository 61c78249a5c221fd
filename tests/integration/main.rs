//! confidant's integration tests: one binary, modules by area.

mod assertion;
#[cfg(feature = "azure-core")]
mod azure_sdk;
mod client_credentials;
mod http;
mod key_vault;
mod managed_identity;
mod parsers;
mod protected_api;
mod signers;
mod support;
mod testkit;
mod user_flows;
mod validator;
mod workload_identity;
