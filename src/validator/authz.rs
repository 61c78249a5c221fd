//! The validated token and the per-route authorization helpers (VALIDATION.md §7, C8).

use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::error::{Remedy, ValidationError, ValidationErrorKind};
use super::object::Object;

/// A token that passed every rule: its verified claims, read-only.
///
/// `Debug` shows the identity and permissions, never the token itself (the token string is not
/// kept).
#[derive(Clone)]
pub struct ValidatedToken {
    claims: Object,
    kid: String,
    /// The claims as a JSON map, built on first use: validation itself reads them in place.
    map: OnceLock<Map<String, Value>>,
}

impl ValidatedToken {
    pub(crate) fn new(claims: Object, kid: String) -> Self {
        Self {
            claims,
            kid,
            map: OnceLock::new(),
        }
    }

    /// Every claim, as verified (the map is built on the first call).
    pub fn claims(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| {
            // Already parsed strictly once: this cannot fail.
            serde_json::from_slice(self.claims.as_bytes()).unwrap_or_default()
        })
    }

    /// One string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get_str(name)
    }

    /// Whether the claim `name` is present, whatever its value.
    pub fn has_claim(&self, name: &str) -> bool {
        self.claims.contains(name)
    }

    /// The `kid` of the key that verified the signature.
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// `iss`.
    pub fn issuer(&self) -> &str {
        self.claim_str("iss").unwrap_or_default()
    }

    /// `sub`.
    pub fn subject(&self) -> Option<&str> {
        self.claim_str("sub")
    }

    /// `tid`: the Entra tenant.
    pub fn tenant_id(&self) -> Option<&str> {
        self.claim_str("tid")
    }

    /// `oid`: the Entra object id of the user or service principal.
    pub fn object_id(&self) -> Option<&str> {
        self.claim_str("oid")
    }

    /// The stable identity of C8: (`tid`, `oid`) for Entra tokens, else (`iss`, `sub`). Never a
    /// mutable claim such as `email`, `upn` or `preferred_username`.
    pub fn identity(&self) -> (&str, &str) {
        match (self.tenant_id(), self.object_id()) {
            (Some(tid), Some(oid)) => (tid, oid),
            _ => (self.issuer(), self.subject().unwrap_or_default()),
        }
    }

    /// The calling application: `azp` (Entra v2, B2C), `appid` (Entra v1) or `client_id`
    /// (RFC 9068).
    pub fn client_id(&self) -> Option<&str> {
        self.claim_str("azp")
            .or_else(|| self.claim_str("appid"))
            .or_else(|| self.claim_str("client_id"))
    }

    /// How the client authenticated: `azpacr`/`appidacr` (`"0"` public, `"1"` secret, `"2"`
    /// certificate or assertion).
    pub fn client_auth(&self) -> Option<&str> {
        self.claim_str("azpacr")
            .or_else(|| self.claim_str("appidacr"))
    }

    /// The delegated scopes (`scp`, or RFC 9068 `scope`), split on spaces.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.claim_str("scp")
            .or_else(|| self.claim_str("scope"))
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    /// The app roles (`roles`).
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.string_array("roles")
    }

    fn string_array(&self, name: &str) -> impl Iterator<Item = &str> {
        self.claims
            .strings(name)
            .ok()
            .flatten()
            .into_iter()
            .flatten()
    }

    fn has_scopes(&self) -> bool {
        self.claims.contains("scp") || self.claims.contains("scope")
    }

    /// Whether the token is app-only (client credentials, managed identity): no `scp`, `roles`
    /// present, `idtyp` absent or `app` (Z3).
    pub fn is_app_only(&self) -> bool {
        !self.has_scopes()
            && self.claims.contains("roles")
            && matches!(self.claim_str("idtyp"), None | Some("app"))
    }

    /// Whether the token is delegated (a user signed in): `scp` present, `idtyp` absent or `user`
    /// (Z3).
    pub fn is_delegated(&self) -> bool {
        self.has_scopes() && matches!(self.claim_str("idtyp"), None | Some("user"))
    }

    /// Checks `requirements` (§7): `forbidden` or `step_up_required` with what the client needs.
    pub fn check(&self, requirements: &Requirements) -> Result<(), ValidationError> {
        requirements.check(self)
    }
}

#[cfg(test)]
impl ValidatedToken {
    /// A token with these claims, as if validated.
    pub(crate) fn for_tests(claims: &Value) -> Self {
        let object =
            Object::parse(claims.to_string().into_bytes(), 32).unwrap_or_else(|e| panic!("{e}"));
        Self::new(object, "k".into())
    }
}

impl fmt::Debug for ValidatedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.identity();
        f.debug_struct("ValidatedToken")
            .field("identity", &(a, b))
            .field("client_id", &self.client_id())
            .field("scopes", &self.scopes().collect::<Vec<_>>())
            .field("roles", &self.roles().collect::<Vec<_>>())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Whether any or all of a list must be present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Any,
    All,
}

#[derive(Debug, Clone)]
struct List {
    how: Match,
    items: Vec<String>,
}

impl List {
    fn new<I, S>(how: Match, items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            how,
            items: items.into_iter().map(Into::into).collect(),
        }
    }

    fn satisfied_by<'a>(
        &self,
        mut present: impl FnMut() -> Box<dyn Iterator<Item = &'a str> + 'a>,
    ) -> bool {
        match self.how {
            Match::Any => self.items.iter().any(|i| present().any(|p| p == i)),
            Match::All => self.items.iter().all(|i| present().any(|p| p == i)),
        }
    }
}

/// Who may call: a user through a client, or an application on its own (Z3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CallerKind {
    /// Either.
    #[default]
    Any,
    /// Delegated tokens only.
    Delegated,
    /// App-only tokens only.
    AppOnly,
}

/// How strongly the client authenticated (`azpacr`/`appidacr`, Z5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ClientAuthStrength {
    /// `"0"`: a public client, no client authentication.
    Public,
    /// `"1"`: a client secret.
    Secret,
    /// `"2"`: a certificate or signed assertion (federated and managed identity included).
    Certificate,
}

impl ClientAuthStrength {
    fn from_claim(value: &str) -> Option<Self> {
        match value {
            "0" => Some(Self::Public),
            "1" => Some(Self::Secret),
            "2" => Some(Self::Certificate),
            _ => None,
        }
    }
}

/// What a route demands of a validated token (VALIDATION.md §7). Empty by default: any valid
/// token passes.
///
/// ```
/// use confidant::validator::{ClientAuthStrength, Requirements};
///
/// let write = Requirements::new()
///     .all_scopes(["Accounts.Write"])
///     .auth_context("c1")
///     .or_amr("mfa");
/// let service = Requirements::new()
///     .app_only()
///     .min_client_auth(ClientAuthStrength::Certificate);
/// # let _ = (write, service);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    scopes: Option<List>,
    roles: Option<List>,
    scope_or_role: bool,
    caller: CallerKind,
    clients: Option<Vec<String>>,
    min_client_auth: Option<ClientAuthStrength>,
    auth_context: Option<String>,
    amr: Option<String>,
    acr: Option<String>,
}

impl Requirements {
    /// No requirement beyond a valid token.
    pub fn new() -> Self {
        Self::default()
    }

    /// At least one of `scopes` (Z1: whole, case-sensitive items of `scp`).
    pub fn any_scope<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(List::new(Match::Any, scopes));
        self
    }

    /// Every one of `scopes` (Z1).
    pub fn all_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(List::new(Match::All, scopes));
        self
    }

    /// At least one of the app `roles` (Z2, exact).
    pub fn any_role<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = Some(List::new(Match::Any, roles));
        self
    }

    /// Every one of the app `roles` (Z2).
    pub fn all_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = Some(List::new(Match::All, roles));
        self
    }

    /// With both scopes and roles required: either one satisfies the route (Z2). Without this,
    /// both must hold.
    pub fn scope_or_role(mut self) -> Self {
        self.scope_or_role = true;
        self
    }

    /// Delegated tokens only (Z3).
    pub fn delegated(mut self) -> Self {
        self.caller = CallerKind::Delegated;
        self
    }

    /// App-only tokens only (Z3).
    pub fn app_only(mut self) -> Self {
        self.caller = CallerKind::AppOnly;
        self
    }

    /// Only these calling applications (`azp`, `appid` or `client_id`; Z4).
    pub fn clients<I, S>(mut self, clients: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.clients = Some(clients.into_iter().map(Into::into).collect());
        self
    }

    /// The client must have authenticated at least this strongly (Z5).
    pub fn min_client_auth(mut self, strength: ClientAuthStrength) -> Self {
        self.min_client_auth = Some(strength);
        self
    }

    /// A Conditional Access authentication context (`acrs` contains `id`, e.g. `c1`; Z6).
    pub fn auth_context(mut self, id: impl Into<String>) -> Self {
        self.auth_context = Some(id.into());
        self
    }

    /// With [`auth_context`](Self::auth_context): an authentication method in `amr` (e.g. `mfa`)
    /// that satisfies the step-up too. Alone: the method is required.
    pub fn or_amr(mut self, method: impl Into<String>) -> Self {
        self.amr = Some(method.into());
        self
    }

    /// `acr` must equal `value` (for B2C, the policy, compared case-insensitively; Z6).
    pub fn acr(mut self, value: impl Into<String>) -> Self {
        self.acr = Some(value.into());
        self
    }

    fn check(&self, token: &ValidatedToken) -> Result<(), ValidationError> {
        let forbidden = |detail| ValidationError::new(ValidationErrorKind::Forbidden, detail);
        match self.caller {
            CallerKind::Any => {}
            CallerKind::Delegated if !token.is_delegated() => {
                return Err(forbidden("the route needs a delegated token"));
            }
            CallerKind::AppOnly if !token.is_app_only() => {
                return Err(forbidden("the route needs an app-only token"));
            }
            CallerKind::Delegated | CallerKind::AppOnly => {}
        }
        if let Some(clients) = &self.clients
            && !token
                .client_id()
                .is_some_and(|c| clients.iter().any(|a| a == c))
        {
            return Err(forbidden("the calling client is not allowed"));
        }
        if let Some(min) = self.min_client_auth
            && token
                .client_auth()
                .and_then(ClientAuthStrength::from_claim)
                .is_none_or(|s| s < min)
        {
            return Err(forbidden("the client authenticated too weakly"));
        }
        let scopes_ok = self
            .scopes
            .as_ref()
            .map(|l| l.satisfied_by(|| Box::new(token.scopes())));
        let roles_ok = self
            .roles
            .as_ref()
            .map(|l| l.satisfied_by(|| Box::new(token.roles())));
        let permitted = match (scopes_ok, roles_ok) {
            (None, None) => true,
            (Some(s), None) => s,
            (None, Some(r)) => r,
            (Some(s), Some(r)) if self.scope_or_role => s || r,
            (Some(s), Some(r)) => s && r,
        };
        if !permitted {
            let error = forbidden("a required scope or role is missing");
            // `scope` belongs in the challenge only when scopes are what is missing.
            return Err(match (&self.scopes, scopes_ok) {
                (Some(list), Some(false)) => error.with_remedy(Remedy::Scope(list.items.join(" "))),
                _ => error,
            });
        }
        self.check_step_up(token)
    }

    fn check_step_up(&self, token: &ValidatedToken) -> Result<(), ValidationError> {
        let has_amr = |m: &str| token.string_array("amr").any(|a| a == m);
        if let Some(context) = &self.auth_context {
            let in_acrs = token.string_array("acrs").any(|a| a == context);
            if !in_acrs && !self.amr.as_deref().is_some_and(has_amr) {
                return Err(step_up(
                    serde_json::json!({"access_token": {"acrs": {"essential": true, "value": context}}}),
                    context,
                ));
            }
        } else if let Some(method) = &self.amr
            && !has_amr(method)
        {
            return Err(step_up(
                serde_json::json!({"access_token": {"amr": {"essential": true, "values": [method]}}}),
                method,
            ));
        }
        if let Some(acr) = &self.acr {
            let actual = token.claim_str("acr").or_else(|| token.claim_str("tfp"));
            if !actual.is_some_and(|a| a.eq_ignore_ascii_case(acr)) {
                let value = acr.to_ascii_lowercase();
                return Err(step_up(
                    serde_json::json!({"access_token": {"acr": {"essential": true, "value": value}}}),
                    &value,
                ));
            }
        }
        Ok(())
    }
}

fn step_up(request: Value, acr_values: &str) -> ValidationError {
    ValidationError::new(
        ValidationErrorKind::StepUpRequired,
        "a stronger authentication is required",
    )
    .with_remedy(Remedy::Claims {
        request: request.to_string(),
        acr_values: acr_values.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn token(claims: Value) -> ValidatedToken {
        ValidatedToken::for_tests(&claims)
    }

    fn delegated() -> ValidatedToken {
        token(json!({
            "iss": "i", "sub": "s", "tid": "t", "oid": "o", "azp": "web", "azpacr": "1",
            "scp": "Accounts.Read  Files.Read", "amr": ["pwd"],
        }))
    }

    fn app() -> ValidatedToken {
        token(json!({
            "iss": "i", "sub": "s", "azp": "svc", "azpacr": "2", "roles": ["Admin"], "idtyp": "app",
        }))
    }

    fn kind(t: &ValidatedToken, r: Requirements) -> Result<(), ValidationErrorKind> {
        t.check(&r).map_err(|e| e.kind())
    }

    #[test]
    fn scopes_and_roles() {
        use ValidationErrorKind::Forbidden;
        let t = delegated();
        assert_eq!(kind(&t, Requirements::new()), Ok(()));
        assert_eq!(
            kind(&t, Requirements::new().any_scope(["x", "Files.Read"])),
            Ok(())
        );
        assert_eq!(
            kind(
                &t,
                Requirements::new().all_scopes(["Accounts.Read", "Files.Read"])
            ),
            Ok(())
        );
        for needed in ["Accounts", "accounts.read", "Files.Read Accounts.Read", ""] {
            assert_eq!(
                kind(&t, Requirements::new().all_scopes([needed])),
                Err(Forbidden),
                "{needed:?}"
            );
        }
        let err = t
            .check(&Requirements::new().all_scopes(["Accounts.Write"]))
            .expect_err("missing scope");
        assert_eq!(err.required_scope(), Some("Accounts.Write"));
        // Roles never satisfy scopes, nor the reverse, unless said so.
        let a = app();
        assert_eq!(
            kind(&a, Requirements::new().any_scope(["Admin"])),
            Err(Forbidden)
        );
        assert_eq!(
            kind(&t, Requirements::new().any_role(["Accounts.Read"])),
            Err(Forbidden)
        );
        let either = Requirements::new()
            .any_scope(["Accounts.Read"])
            .any_role(["Admin"])
            .scope_or_role();
        assert_eq!(kind(&a, either.clone()), Ok(()));
        assert_eq!(kind(&t, either), Ok(()));
        let role_err = a
            .check(&Requirements::new().any_role(["Writer"]))
            .expect_err("role");
        assert_eq!(role_err.required_scope(), None, "no scope for role rules");
    }

    #[test]
    fn caller_client_and_strength() {
        use ValidationErrorKind::Forbidden;
        let (t, a) = (delegated(), app());
        assert!(t.is_delegated() && !t.is_app_only());
        assert!(a.is_app_only() && !a.is_delegated());
        assert_eq!(kind(&t, Requirements::new().app_only()), Err(Forbidden));
        assert_eq!(kind(&a, Requirements::new().delegated()), Err(Forbidden));
        let contradictory = token(json!({"scp": "a", "roles": ["b"], "idtyp": "app"}));
        assert!(!contradictory.is_app_only() && !contradictory.is_delegated());
        assert_eq!(kind(&a, Requirements::new().clients(["svc"])), Ok(()));
        assert_eq!(
            kind(&t, Requirements::new().clients(["svc"])),
            Err(Forbidden)
        );
        let strong = Requirements::new().min_client_auth(ClientAuthStrength::Certificate);
        assert_eq!(kind(&a, strong.clone()), Ok(()));
        assert_eq!(kind(&t, strong), Err(Forbidden));
        assert_eq!(
            kind(
                &t,
                Requirements::new().min_client_auth(ClientAuthStrength::Secret)
            ),
            Ok(())
        );
    }

    #[test]
    fn step_up() {
        use ValidationErrorKind::StepUpRequired;
        let t = delegated();
        let need = Requirements::new().auth_context("c1").or_amr("mfa");
        let err = t.check(&need).expect_err("step-up");
        assert_eq!(err.kind(), StepUpRequired);
        assert_eq!(
            err.claims_challenge(),
            Some(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#)
        );
        assert_eq!(err.acr_values(), Some("c1"));
        let with_acrs = token(json!({"scp": "a", "acrs": ["c1"]}));
        assert_eq!(kind(&with_acrs, need.clone()), Ok(()));
        let with_mfa = token(json!({"scp": "a", "amr": ["pwd", "mfa"]}));
        assert_eq!(kind(&with_mfa, need), Ok(()));
        let b2c = token(json!({"scp": "a", "tfp": "B2C_1_signin"}));
        let err = b2c
            .check(&Requirements::new().acr("B2C_1_MFA"))
            .expect_err("policy");
        assert_eq!(
            err.claims_challenge(),
            Some(r#"{"access_token":{"acr":{"essential":true,"value":"b2c_1_mfa"}}}"#)
        );
        assert_eq!(kind(&b2c, Requirements::new().acr("b2c_1_SIGNIN")), Ok(()));
    }
}
