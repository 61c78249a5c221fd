//! The API of the banking scenario: an axum service protected by confidant's bearer validator.
//!
//! ```sh
//! cargo run --example protected_api -- --listen 127.0.0.1:8080 \
//!     --authority https://login.microsoftonline.com/<tenant-id>/v2.0 --audience <api-client-id>
//! ```
//!
//! Options: `--tenant <TID>` (repeatable; required for `common`/`organizations`),
//! `--clock-skew <S>`, `--ca-file <PEM>` (extra trusted roots, e.g. the testkit's TLS mode),
//! `--jwks-min-refresh <S>` (the least time between unknown-`kid` refreshes).
//!
//! | route | needs |
//! |---|---|
//! | `GET /me` | any valid token |
//! | `GET /accounts` | a delegated token with scope `Accounts.Read` |
//! | `POST /accounts/beneficiary` | scope `Accounts.Write` and step-up (`acrs` has `c1` or `amr` has `mfa`) |
//! | `GET /admin` | app role `Admin` |
//! | `GET /service` | an app-only token of a certificate-authenticated client (`azpacr` = `2`) |
//!
//! Failures are RFC 6750: the status and `WWW-Authenticate` challenge (`insufficient_claims` with
//! a `claims` request for step-up), and a JSON body `{"error": "...", "kind": "..."}`. It prints
//! `listening on <addr>` once it serves.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use confidant::Authority;
use confidant::http::ReqwestClient;
use confidant::validator::{
    BearerLayer, BearerValidator, ClientAuthStrength, Requirements, ValidatedToken,
};
use serde_json::{Value, json};

#[derive(Default)]
struct Options {
    listen: Option<String>,
    authority: Option<String>,
    audiences: Vec<String>,
    tenants: Vec<String>,
    clock_skew: Option<u64>,
    ca_file: Option<String>,
    jwks_min_refresh: Option<u64>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => options.listen = Some(value()?),
            "--authority" => options.authority = Some(value()?),
            "--audience" => options.audiences.push(value()?),
            "--tenant" => options.tenants.push(value()?),
            "--clock-skew" => {
                options.clock_skew = Some(value()?.parse().map_err(|_| "--clock-skew: seconds")?)
            }
            "--ca-file" => options.ca_file = Some(value()?),
            "--jwks-min-refresh" => {
                options.jwks_min_refresh = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--jwks-min-refresh: seconds")?,
                )
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

/// The claims `/me` shows: the stable identity and the permissions, not the whole token.
fn summary(token: &ValidatedToken) -> Value {
    let (a, b) = token.identity();
    json!({
        "identity": [a, b],
        "sub": token.subject(),
        "tid": token.tenant_id(),
        "oid": token.object_id(),
        "name": token.claim_str("name"),
        "client_id": token.client_id(),
        "app_only": token.is_app_only(),
        "scopes": token.scopes().collect::<Vec<_>>(),
        "roles": token.roles().collect::<Vec<_>>(),
    })
}

async fn me(token: ValidatedToken) -> axum::Json<Value> {
    axum::Json(summary(&token))
}

async fn accounts(token: ValidatedToken) -> axum::Json<Value> {
    axum::Json(json!({
        "owner": token.identity().1,
        "accounts": [{"id": "acc-001", "balance": "1250.00", "currency": "EUR"}],
    }))
}

async fn add_beneficiary(token: ValidatedToken) -> axum::Json<Value> {
    axum::Json(json!({"added": true, "by": token.identity().1}))
}

async fn admin(token: ValidatedToken) -> axum::Json<Value> {
    axum::Json(json!({"admin": true, "client_id": token.client_id()}))
}

async fn service(token: ValidatedToken) -> axum::Json<Value> {
    axum::Json(json!({"service": true, "client_id": token.client_id()}))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let options = parse_args().map_err(|e| format!("{e}\nusage: protected_api --listen <ADDR> --authority <URL> --audience <AUD> [--tenant <TID> ...] [--clock-skew <S>] [--ca-file <PEM>] [--jwks-min-refresh <S>]"))?;
    let listen = options.listen.ok_or("--listen is required")?;
    let authority_url = options.authority.ok_or("--authority is required")?;

    let mut http = ReqwestClient::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    if let Some(path) = &options.ca_file {
        http = http.add_root_certificates_pem(&std::fs::read(path)?);
    }
    let http = Arc::new(http.build()?);
    let authority = Authority::resolve(http.as_ref(), &authority_url).await?;

    let mut builder = BearerValidator::builder(authority).http_client(http);
    for audience in options.audiences {
        builder = builder.audience(audience);
    }
    if !options.tenants.is_empty() {
        builder = builder.allowed_tenants(options.tenants);
    }
    if let Some(seconds) = options.clock_skew {
        builder = builder.clock_skew(Duration::from_secs(seconds));
    }
    if let Some(seconds) = options.jwks_min_refresh {
        builder = builder.unknown_kid_cooldown(Duration::from_secs(seconds));
    }
    let validator = builder.build()?;
    // Keys before the first request; a failure here is reported, and retried on demand.
    if let Err(error) = validator.prefetch().await {
        eprintln!("warning: signing keys not loaded yet: {error}");
    }

    let guard =
        |requirements: Requirements| BearerLayer::new(validator.clone()).require(requirements);
    let app = Router::new()
        .route("/me", get(me).route_layer(guard(Requirements::new())))
        .route(
            "/accounts",
            get(accounts).route_layer(guard(
                Requirements::new()
                    .delegated()
                    .all_scopes(["Accounts.Read"]),
            )),
        )
        .route(
            "/accounts/beneficiary",
            post(add_beneficiary).route_layer(guard(
                Requirements::new()
                    .delegated()
                    .all_scopes(["Accounts.Write"])
                    .auth_context("c1")
                    .or_amr("mfa"),
            )),
        )
        .route(
            "/admin",
            get(admin).route_layer(guard(Requirements::new().any_role(["Admin"]))),
        )
        .route(
            "/service",
            get(service).route_layer(guard(
                Requirements::new()
                    .app_only()
                    .min_client_auth(ClientAuthStrength::Certificate),
            )),
        );

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
