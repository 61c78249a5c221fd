//! The tower layer and axum extractor (feature `axum`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, Request, StatusCode, header};

use super::authz::{Requirements, ValidatedToken};
use super::bearer::BearerValidator;
use super::challenge::{BearerChallenge, ChallengeContext, StepUpForm, bearer_token};

/// A tower [`Layer`](tower_layer::Layer) that lets through only requests with a valid bearer
/// token meeting its [`Requirements`], and puts the [`ValidatedToken`] in the request's
/// extensions for handlers (extract it as an argument). Failures become RFC 6750 responses
/// ([`Rejection`]); the token is never echoed.
///
/// ```no_run
/// # fn app(validator: confidant::validator::BearerValidator) -> axum::Router {
/// use axum::{Router, routing::get};
/// use confidant::validator::{BearerLayer, Requirements, ValidatedToken};
///
/// async fn me(token: ValidatedToken) -> String {
///     token.subject().unwrap_or_default().to_owned()
/// }
///
/// Router::new()
///     .route("/me", get(me))
///     .route_layer(BearerLayer::new(validator).require(Requirements::new().any_scope(["User.Read"])))
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BearerLayer {
    validator: BearerValidator,
    requirements: Arc<Requirements>,
    step_up: StepUpForm,
}

impl BearerLayer {
    /// Any valid token passes.
    pub fn new(validator: BearerValidator) -> Self {
        Self {
            validator,
            requirements: Arc::new(Requirements::new()),
            step_up: StepUpForm::default(),
        }
    }

    /// Requests must also meet `requirements`.
    pub fn require(mut self, requirements: Requirements) -> Self {
        self.requirements = Arc::new(requirements);
        self
    }

    /// Asks for step-up in RFC 9470's form instead of Entra's `insufficient_claims`.
    pub fn rfc9470_step_up(mut self) -> Self {
        self.step_up = StepUpForm::Rfc9470;
        self
    }

    fn context(&self) -> ChallengeContext<'_> {
        ChallengeContext::new(
            self.validator.realm(),
            self.validator.authorization_endpoint(),
        )
        .step_up(self.step_up)
    }
}

impl<S> tower_layer::Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`BearerLayer`] wraps around a route.
#[derive(Debug, Clone)]
pub struct BearerService<S> {
    inner: S,
    layer: BearerLayer,
}

impl<S, B> tower_service::Service<Request<B>> for BearerService<S>
where
    S: tower_service::Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let token = match bearer_token(request.headers()) {
                Ok(token) => token,
                Err(problem) => {
                    let challenge = BearerChallenge::for_header(problem, &layer.context());
                    return Ok(Rejection(challenge).into_response());
                }
            };
            match layer
                .validator
                .validate_with(token, &layer.requirements)
                .await
            {
                Ok(validated) => {
                    request.extensions_mut().insert(validated);
                    inner.call(request).await
                }
                Err(error) => {
                    let challenge = BearerChallenge::for_error(&error, &layer.context());
                    Ok(Rejection(challenge).into_response())
                }
            }
        })
    }
}

/// A refused request: the RFC 6750 status and `WWW-Authenticate`, and a JSON body
/// `{"error": "<RFC 6750 code>", "kind": "<error kind>"}` (`missing_token` for both when no
/// token was sent).
#[derive(Debug, Clone)]
pub struct Rejection(BearerChallenge);

impl Rejection {
    /// The challenge this response carries.
    pub fn challenge(&self) -> &BearerChallenge {
        &self.0
    }
}

impl From<BearerChallenge> for Rejection {
    fn from(challenge: BearerChallenge) -> Self {
        Self(challenge)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let challenge = self.0;
        let kind = match (challenge.kind(), challenge.error_code()) {
            (Some(kind), _) => kind.as_str(),
            (None, Some(_)) => "malformed_request",
            (None, None) => "missing_token",
        };
        let body = serde_json::json!({
            "error": challenge.error_code().unwrap_or("missing_token"),
            "kind": kind,
        });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = challenge.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(value) = HeaderValue::from_str(challenge.www_authenticate()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// A handler argument: the token [`BearerLayer`] validated. Without the layer in front of the
/// route, the request fails with 500 (a server bug, not the client's).
impl<S: Send + Sync> FromRequestParts<S> for ValidatedToken {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ValidatedToken>()
            .cloned()
            .ok_or_else(|| {
                tracing::error!("ValidatedToken extracted on a route without BearerLayer");
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error").into_response()
            })
    }
}
