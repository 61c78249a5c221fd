//! confidant's integration tests: one binary, modules by area.

mod assertion;
#[cfg(feature = "azure-core")]
mod azure_sdk;
mod b2c_webapp;
mod cache_at_scale;
mod client_credentials;
mod http;
#[path = "../../examples/b2c_webapp/journey.rs"]
mod journey;
mod key_vault;
mod managed_identity;
mod microsoft_clients;
mod msal_interop;
#[path = "../../examples/b2c_webapp/offline.rs"]
mod offline;
mod oidc_provider;
mod parsers;
mod protected_api;
#[cfg(feature = "redis")]
mod redis_store;
mod signers;
mod support;
mod testkit;
mod testkit_modes;
mod token_store;
mod user_flows;
mod validator;
#[path = "../../examples/b2c_webapp/webapp.rs"]
mod webapp;
mod workload_identity;
