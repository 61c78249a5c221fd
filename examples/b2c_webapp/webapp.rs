//! The banking web app and, for offline runs, its API: sign-in (auth code + PKCE, form_post),
//! the accounts page, and adding a beneficiary with a step-up (B2C: the MFA user flow; Entra:
//! an `acrs` claims challenge). Sessions live on the server; the browser holds one signed,
//! http-only cookie with the session id. Tokens never reach a page or a log line.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::validator::{BearerLayer, BearerValidator, Requirements, ValidatedToken};
use confidant::{
    Account, AuthCodeFlow, AuthorizationRequest, AuthorizationResponse, Challenge,
    ConfidentialClient, ResponseMode, TokenRequest,
};
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;

/// How the API asks for the stronger sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepUp {
    /// Azure AD B2C: the token must come from the MFA user flow (`acr`/`tfp`).
    B2cUserFlow,
    /// Entra ID: the Conditional Access authentication context `c1` (`acrs`).
    EntraAuthContext,
}

/// The bank API: `GET /accounts` (`Accounts.Read`) and `POST /accounts/beneficiary`
/// (`Accounts.Write` plus the step-up), answering RFC 6750 challenges.
pub(crate) fn bank_api(validator: BearerValidator, step_up: StepUp, mfa_policy: &str) -> Router {
    let guard =
        |requirements: Requirements| BearerLayer::new(validator.clone()).require(requirements);
    let write = Requirements::new()
        .delegated()
        .all_scopes(["Accounts.Write"]);
    let write = match step_up {
        StepUp::B2cUserFlow => write.acr(mfa_policy),
        StepUp::EntraAuthContext => write.auth_context("c1").or_amr("mfa"),
    };
    Router::new()
        .route(
            "/accounts",
            get(|token: ValidatedToken| async move {
                axum::Json(json!({
                    "owner": token.claim_str("name"),
                    "accounts": [{"id": "acc-001", "balance": "1250.00", "currency": "EUR"}],
                }))
            })
            .route_layer(guard(
                Requirements::new()
                    .delegated()
                    .all_scopes(["Accounts.Read"]),
            )),
        )
        .route(
            "/accounts/beneficiary",
            post(|token: ValidatedToken| async move {
                axum::Json(json!({"added": true, "by": token.claim_str("name")}))
            })
            .route_layer(guard(write)),
        )
}

/// A sign-in in progress.
struct PendingFlow {
    flow: AuthCodeFlow,
    /// The B2C user flow it runs at, when it is not the sign-in client's.
    policy: Option<String>,
}

/// What the server keeps per browser.
#[derive(Default)]
struct Session {
    flows: HashMap<String, PendingFlow>,
    account: Option<Account>,
    /// After a step-up: the account (B2C: at the MFA user flow) whose tokens carry it.
    stepped_up: Option<(Account, Option<String>)>,
    /// A beneficiary to add once the step-up is done.
    pending_beneficiary: Option<String>,
    /// The last step-up claims (Entra), sent with later silent requests.
    step_up_claims: Option<String>,
}

/// The web app's configuration.
pub(crate) struct WebAppConfig {
    /// The client of the sign-in user flow (B2C) or of the tenant (Entra).
    pub(crate) client: ConfidentialClient,
    /// Where the API lives (`http://127.0.0.1:8081`).
    pub(crate) api_url: String,
    /// The API's scope prefix (`api://{id}`).
    pub(crate) api_scope_prefix: String,
    /// This app's callback URL.
    pub(crate) redirect_uri: String,
    /// Whether cookies get `Secure` (https deployments).
    pub(crate) secure_cookies: bool,
}

/// The web app's shared state.
pub(crate) struct WebApp {
    config: WebAppConfig,
    http: reqwest::Client,
    sessions: Mutex<HashMap<String, Session>>,
    policy_clients: Mutex<HashMap<String, ConfidentialClient>>,
    cookie_key: [u8; 32],
}

const COOKIE: &str = "bank_session";

/// An error page (the message is ours; no token or upstream body is echoed).
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>{body}<p><a href=\"/\">Home</a></p></body></html>"
        )),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// What calling the API gave.
enum ApiAnswer {
    Ok(Value),
    StepUp(Challenge),
    Failed(String),
}

impl WebApp {
    /// The app, with a fresh cookie-signing key.
    pub(crate) fn new(config: WebAppConfig) -> Result<Arc<Self>, Box<dyn std::error::Error>> {
        let mut cookie_key = [0u8; 32];
        for chunk in cookie_key.chunks_mut(16) {
            chunk.copy_from_slice(&uuid::Uuid::new_v4().into_bytes()[..chunk.len()]);
        }
        Ok(Arc::new(Self {
            config,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            sessions: Mutex::new(HashMap::new()),
            policy_clients: Mutex::new(HashMap::new()),
            cookie_key,
        }))
    }

    /// The routes.
    pub(crate) fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(home))
            .route("/signin", get(sign_in))
            .route("/callback", post(callback_form).get(callback_query))
            .route("/accounts", get(accounts))
            .route("/beneficiary", post(beneficiary))
            .route("/signout", get(sign_out))
            .with_state(Arc::clone(self))
    }

    fn scopes(&self) -> [String; 2] {
        let prefix = &self.config.api_scope_prefix;
        [
            format!("{prefix}/Accounts.Read"),
            format!("{prefix}/Accounts.Write"),
        ]
    }

    fn sign(&self, id: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.cookie_key).expect("any key length");
        mac.update(id.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The session id from a correctly signed cookie.
    fn session_id(&self, headers: &HeaderMap) -> Option<String> {
        let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
        let value = cookies.split(';').find_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })?;
        let (id, signature) = value.split_once('.')?;
        let expected = self.sign(id);
        let same = expected.len() == signature.len()
            && expected
                .bytes()
                .zip(signature.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        (same
            && self
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(id))
        .then(|| id.to_owned())
    }

    /// The session id, creating a session (and the cookie to set) when there is none.
    fn session(&self, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
        if let Some(id) = self.session_id(headers) {
            return (id, None);
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), Session::default());
        let secure = if self.config.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{COOKIE}={id}.{}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.sign(&id)
        );
        (id, HeaderValue::from_str(&cookie).ok())
    }

    fn with_session<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.get_mut(id).map(f)
    }

    /// The client of a B2C user flow (cached), or the sign-in client.
    fn client_for(&self, policy: Option<&str>) -> Result<ConfidentialClient, confidant::Error> {
        let Some(policy) = policy else {
            return Ok(self.config.client.clone());
        };
        let mut clients = self
            .policy_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(policy) {
            return Ok(client.clone());
        }
        let client = self.config.client.for_b2c_policy(policy)?;
        clients.insert(policy.to_owned(), client.clone());
        Ok(client)
    }

    /// Starts a sign-in (or a step-up) and answers with the redirect to the authority.
    fn start_flow(
        &self,
        session: &str,
        policy: Option<String>,
        claims: Option<String>,
        login_hint: Option<String>,
    ) -> Response {
        let client = match self.client_for(policy.as_deref()) {
            Ok(client) => client,
            Err(e) => {
                return page(
                    StatusCode::BAD_GATEWAY,
                    "Sign-in unavailable",
                    &escape(&e.to_string()),
                );
            }
        };
        let mut request = AuthorizationRequest::new(&self.config.redirect_uri, &self.scopes())
            .response_mode(ResponseMode::FormPost);
        if let Some(claims) = claims {
            request = request.claims(claims);
        }
        if let Some(hint) = login_hint {
            request = request.login_hint(hint);
        }
        match client.authorization_url(&request) {
            Ok((url, flow)) => {
                self.with_session(session, |s| {
                    s.flows
                        .insert(flow.state().to_owned(), PendingFlow { flow, policy });
                });
                redirect(url.as_str())
            }
            Err(e) => page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in failed",
                &escape(&e.to_string()),
            ),
        }
    }

    /// A token for the API: the stepped-up sign-in's when there is one, else the sign-in's.
    async fn api_token(&self, session: &str, scope: &str) -> Result<String, confidant::Error> {
        let (account, stepped_up, claims) = self
            .with_session(session, |s| {
                (
                    s.account.clone(),
                    s.stepped_up.clone(),
                    s.step_up_claims.clone(),
                )
            })
            .unwrap_or_default();
        let (client, account) = match (stepped_up, account) {
            (Some((account, policy)), _) => (self.client_for(policy.as_deref())?, account),
            (None, Some(account)) => (self.config.client.clone(), account),
            (None, None) => {
                return Err(confidant::Error::Configuration("not signed in".into()));
            }
        };
        let mut request = TokenRequest::new(&[scope]);
        if let Some(claims) = claims {
            request = request.claims(claims);
        }
        let token = client.acquire_token_silent_with(&account, &request).await?;
        Ok(token.access_token().expose_secret().to_owned())
    }

    async fn call_api(&self, method: reqwest::Method, path: &str, token: &str) -> ApiAnswer {
        let url = format!("{}{path}", self.config.api_url.trim_end_matches('/'));
        let response = match self
            .http
            .request(method, &url)
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(response) => response,
            Err(_) => return ApiAnswer::Failed("the API is unreachable".into()),
        };
        let status = response.status();
        if status.is_success() {
            let body = response.bytes().await.unwrap_or_default();
            return match serde_json::from_slice::<Value>(&body) {
                Ok(body) => ApiAnswer::Ok(body),
                Err(_) => ApiAnswer::Failed("the API answered something that is not JSON".into()),
            };
        }
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Challenge::parse_header(v).ok())
            .and_then(|c| c.into_iter().find(|c| c.is("Bearer")));
        match challenge {
            Some(c) if c.error() == Some("insufficient_claims") => ApiAnswer::StepUp(c),
            Some(c) => ApiAnswer::Failed(format!(
                "the API refused the call ({})",
                c.error().unwrap_or("no error code")
            )),
            None => ApiAnswer::Failed(format!("the API answered HTTP {}", status.as_u16())),
        }
    }

    /// Adds the beneficiary, or starts the step-up the API asks for.
    async fn add_beneficiary(&self, session: &str, name: &str) -> Response {
        let write = self.scopes()[1].clone();
        let token = match self.api_token(session, &write).await {
            Ok(token) => token,
            Err(e) if e.is_rejected() || e.is_configuration() => return redirect("/signin"),
            Err(e) => {
                return page(
                    StatusCode::BAD_GATEWAY,
                    "Could not add the beneficiary",
                    &escape(&e.to_string()),
                );
            }
        };
        match self
            .call_api(reqwest::Method::POST, "/accounts/beneficiary", &token)
            .await
        {
            ApiAnswer::Ok(_) => page(
                StatusCode::OK,
                "Beneficiary added",
                &format!("<p id=\"added\">{} was added.</p>", escape(name)),
            ),
            ApiAnswer::StepUp(challenge) => {
                let claims = challenge.claims().and_then(Result::ok);
                let username = self
                    .with_session(session, |s| {
                        s.pending_beneficiary = Some(name.to_owned());
                        s.account.as_ref().map(|a| a.username.clone())
                    })
                    .flatten();
                match challenge.b2c_policy() {
                    // B2C: the MFA user flow.
                    Some(policy) => self.start_flow(session, Some(policy), None, username),
                    // Entra: the same authority, asking for the claims.
                    None => {
                        self.with_session(session, |s| s.step_up_claims = claims.clone());
                        self.start_flow(session, None, claims, username)
                    }
                }
            }
            ApiAnswer::Failed(message) => page(
                StatusCode::BAD_GATEWAY,
                "Could not add the beneficiary",
                &escape(&message),
            ),
        }
    }

    async fn finish_sign_in(&self, headers: &HeaderMap, encoded: &str) -> Response {
        let Some(session) = self.session_id(headers) else {
            return page(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "<p>No session: start again.</p>",
            );
        };
        let response = AuthorizationResponse::from_form(encoded);
        let pending = response.state.as_deref().and_then(|state| {
            self.with_session(&session, |s| s.flows.remove(state))
                .flatten()
        });
        let Some(PendingFlow { flow, policy }) = pending else {
            return page(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "<p>Unknown or used sign-in.</p>",
            );
        };
        let client = match self.client_for(policy.as_deref()) {
            Ok(client) => client,
            Err(e) => {
                return page(
                    StatusCode::BAD_GATEWAY,
                    "Sign-in failed",
                    &escape(&e.to_string()),
                );
            }
        };
        let result = match client.acquire_token_by_auth_code(&flow, &response).await {
            Ok(result) => result,
            Err(e) => {
                return page(
                    StatusCode::UNAUTHORIZED,
                    "Sign-in failed",
                    &format!("<p>{}</p>", escape(e.kind().as_str())),
                );
            }
        };
        let Some(account) = result.account().cloned() else {
            return page(
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                "<p>No account.</p>",
            );
        };
        let (first, pending) = self
            .with_session(&session, |s| {
                let first = s.account.is_none();
                if first {
                    s.account = Some(account.clone());
                } else {
                    s.stepped_up = Some((account.clone(), policy.clone()));
                }
                (first, s.pending_beneficiary.take())
            })
            .unwrap_or((true, None));
        match (first, pending) {
            (false, Some(name)) => self.add_beneficiary(&session, &name).await,
            _ => redirect("/"),
        }
    }
}

async fn home(State(app): State<Arc<WebApp>>, headers: HeaderMap) -> Response {
    let user = app
        .session_id(&headers)
        .and_then(|id| app.with_session(&id, |s| s.account.clone()).flatten());
    match user {
        Some(account) => page(
            StatusCode::OK,
            "Bank",
            &format!(
                "<p id=\"user\">Signed in as {}</p><p><a href=\"/accounts\">Accounts</a></p><form method=\"post\" action=\"/beneficiary\"><input name=\"name\"/><button>Add beneficiary</button></form><p><a href=\"/signout\">Sign out</a></p>",
                escape(account.name.as_deref().unwrap_or(&account.username))
            ),
        ),
        None => page(
            StatusCode::OK,
            "Bank",
            "<p><a id=\"signin\" href=\"/signin\">Sign in</a></p>",
        ),
    }
}

async fn sign_in(
    State(app): State<Arc<WebApp>>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let (session, cookie) = app.session(&headers);
    let hint = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "login_hint")
            .map(|(_, v)| v.into_owned())
    });
    let mut response = app.start_flow(&session, None, None, hint);
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn callback_form(
    State(app): State<Arc<WebApp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let encoded = String::from_utf8_lossy(&body).into_owned();
    app.finish_sign_in(&headers, &encoded).await
}

async fn callback_query(
    State(app): State<Arc<WebApp>>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    app.finish_sign_in(&headers, query.as_deref().unwrap_or_default())
        .await
}

async fn accounts(State(app): State<Arc<WebApp>>, headers: HeaderMap) -> Response {
    let Some(session) = app.session_id(&headers) else {
        return redirect("/signin");
    };
    let read = app.scopes()[0].clone();
    let token = match app.api_token(&session, &read).await {
        Ok(token) => token,
        Err(_) => return redirect("/signin"),
    };
    match app
        .call_api(reqwest::Method::GET, "/accounts", &token)
        .await
    {
        ApiAnswer::Ok(body) => {
            let rows: String = body["accounts"]
                .as_array()
                .map(|accounts| {
                    accounts
                        .iter()
                        .map(|a| {
                            format!(
                                "<li class=\"account\">{} {} {}</li>",
                                escape(a["id"].as_str().unwrap_or_default()),
                                escape(a["balance"].as_str().unwrap_or_default()),
                                escape(a["currency"].as_str().unwrap_or_default())
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            page(StatusCode::OK, "Accounts", &format!("<ul>{rows}</ul>"))
        }
        ApiAnswer::StepUp(_) => page(
            StatusCode::FORBIDDEN,
            "Accounts",
            "<p>A stronger sign-in is needed.</p>",
        ),
        ApiAnswer::Failed(message) => page(StatusCode::BAD_GATEWAY, "Accounts", &escape(&message)),
    }
}

async fn beneficiary(State(app): State<Arc<WebApp>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(session) = app.session_id(&headers) else {
        return redirect("/signin");
    };
    let name = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 100);
    let Some(name) = name else {
        return page(
            StatusCode::BAD_REQUEST,
            "Add beneficiary",
            "<p>A name (1 to 100 characters) is needed.</p>",
        );
    };
    app.add_beneficiary(&session, &name).await
}

async fn sign_out(State(app): State<Arc<WebApp>>, headers: HeaderMap) -> Response {
    if let Some(id) = app.session_id(&headers) {
        let accounts = app
            .with_session(&id, |s| (s.account.take(), s.stepped_up.take()))
            .unwrap_or_default();
        if let Some(account) = accounts.0 {
            app.config.client.remove_account(&account);
        }
        if let Some((account, policy)) = accounts.1
            && let Ok(client) = app.client_for(policy.as_deref())
        {
            client.remove_account(&account);
        }
        app.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
    let mut response = redirect("/");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("bank_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}
