//! Claim rules (VALIDATION.md C1–C6), read only after the signature verified (P10).

use std::time::{Duration, SystemTime};

use super::error::{ValidationError, ValidationErrorKind};
use super::object::{Kind, Object};

/// Largest time value accepted (9999-12-31T23:59:59Z).
const MAX_TIME: u64 = 253_402_300_799;

/// The token profile whose markers C6 requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// Entra ID: v2 (`ver` 2.0, `azp`, `azpacr`) or v1 (`ver` 1.0, `appid`, `appidacr`).
    Entra,
    /// Azure AD B2C: `azp`, `scp`.
    B2c,
    /// RFC 9068: `typ` `at+jwt`, `sub`, `client_id`, `iat`, `jti`.
    Generic,
}

/// An expected issuer: exact, or an Entra template with `{tenantid}` pre-split around it.
#[derive(Debug, Clone)]
pub(crate) enum IssuerRule {
    Exact(String),
    Template { prefix: String, suffix: String },
}

impl IssuerRule {
    pub(crate) fn new(issuer: &str) -> Self {
        match issuer.split_once("{tenantid}") {
            Some((prefix, suffix)) => IssuerRule::Template {
                prefix: prefix.to_owned(),
                suffix: suffix.to_owned(),
            },
            None => IssuerRule::Exact(issuer.to_owned()),
        }
    }

    /// Whether this is an Entra v2 issuer (ends with `/v2.0`).
    fn is_v2(&self) -> bool {
        match self {
            IssuerRule::Exact(e) => e.ends_with("/v2.0"),
            IssuerRule::Template { suffix, .. } => suffix.ends_with("/v2.0"),
        }
    }

    /// Whether `iss` matches, with the token's `tid` in a template (C3).
    fn matches(&self, iss: &str, tid: Option<&str>) -> bool {
        match self {
            IssuerRule::Exact(expected) => iss == expected,
            IssuerRule::Template { prefix, suffix } => tid.is_some_and(|tid| {
                iss.len() == prefix.len() + tid.len() + suffix.len()
                    && iss.starts_with(prefix.as_str())
                    && iss.ends_with(suffix.as_str())
                    && &iss[prefix.len()..prefix.len() + tid.len()] == tid
            }),
        }
    }
}

/// What the claims must satisfy.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) issuers: Vec<IssuerRule>,
    pub(crate) audiences: Vec<String>,
    /// Tenant ids accepted; `None` accepts any tenant the issuer rules admit.
    pub(crate) tenants: Option<Vec<String>>,
    /// `danger_accept_any_tenant`: templates without a tenant list.
    pub(crate) any_tenant: bool,
    pub(crate) skew: Duration,
    pub(crate) profile: Profile,
    /// B2C policies accepted in `tfp`/`acr` (C7), lowercase.
    pub(crate) policies: Vec<String>,
    /// Which token this is: an access token (C6) or an ID token with this nonce (C9).
    pub(crate) expect: Expect,
}

/// The token kind an entry point accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expect {
    AccessToken,
    IdToken { client_id: String, nonce: String },
}

/// What the verifying key says about itself (K5).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyFacts<'a> {
    /// The JWK's `issuer`, maybe a `{tenantid}` template.
    pub(crate) issuer: Option<&'a str>,
    /// The JWK's and the discovery document's `cloud_instance_name`, when both are known.
    pub(crate) clouds: Option<(&'a str, &'a str)>,
}

fn missing(detail: &'static str) -> ValidationError {
    ValidationError::new(ValidationErrorKind::MissingClaim, detail)
}

/// A string claim, or `missing_claim` if present with another type (C1).
fn string<'a>(claims: &'a Object, name: &str) -> Result<Option<&'a str>, ValidationError> {
    claims
        .str(name)
        .map_err(|_| missing("a claim has the wrong JSON type"))
}

fn time(claims: &Object, name: &str) -> Result<Option<u64>, ValidationError> {
    let Some(number) = claims
        .number(name)
        .map_err(|_| missing("a time claim is not a number"))?
    else {
        return Ok(None);
    };
    let value = match number {
        Ok(u) => Some(u),
        Err(f) => (f >= 0.0 && f.is_finite()).then_some(f as u64),
    };
    value
        .filter(|v| *v <= MAX_TIME)
        .map(Some)
        .ok_or_else(|| missing("a time claim is out of range"))
}

/// K5: a key's `issuer`, with the token's `tid` in `{tenantid}`, vouches for `iss` (or, for an
/// Entra v1 token, for the tenant's v2 issuer); clouds agree when both are named.
fn check_key_issuer(
    rules: &Rules,
    key: KeyFacts<'_>,
    iss: &str,
    tid: Option<&str>,
    claims: &Object,
) -> Result<(), ValidationError> {
    let bad = || {
        ValidationError::new(
            ValidationErrorKind::BadIssuer,
            "the signing key does not vouch for this issuer",
        )
    };
    if let Some((key_cloud, discovery_cloud)) = key.clouds
        && key_cloud != discovery_cloud
    {
        return Err(bad());
    }
    let Some(template) = key.issuer else {
        return Ok(());
    };
    let resolved = match (template.to_ascii_lowercase().find("{tenantid}"), tid) {
        (Some(at), Some(tid)) => {
            format!(
                "{}{tid}{}",
                &template[..at],
                &template[at + "{tenantid}".len()..]
            )
        }
        (Some(_), None) => return Err(bad()),
        (None, _) => template.to_owned(),
    };
    if resolved == iss {
        return Ok(());
    }
    let is_v1 = rules.profile == Profile::Entra && string(claims, "ver")? == Some("1.0");
    if is_v1
        && rules
            .issuers
            .iter()
            .any(|r| r.is_v2() && r.matches(&resolved, tid))
    {
        return Ok(());
    }
    Err(bad())
}

/// C9: OpenID Connect Core §3.1.3.7 for an ID token, after the shared rules.
fn check_id_token(
    claims: &Object,
    audiences: &[&str],
    client_id: &str,
    nonce: &str,
    is_at_jwt: bool,
) -> Result<(), ValidationError> {
    if !audiences.contains(&client_id) {
        return Err(ValidationError::new(
            ValidationErrorKind::BadAudience,
            "aud does not contain the client id",
        ));
    }
    let wrong_type = |detail| ValidationError::new(ValidationErrorKind::WrongTokenType, detail);
    if audiences.len() > 1 && string(claims, "azp")? != Some(client_id) {
        return Err(wrong_type(
            "azp must be the client id when aud has several values",
        ));
    }
    let access_markers = ["scp", "scope", "azpacr", "appidacr", "idtyp", "cnf"];
    if is_at_jwt || access_markers.iter().any(|m| claims.contains(m)) {
        return Err(wrong_type("an access token is not an ID token"));
    }
    match string(claims, "nonce")? {
        Some(n) if n == nonce => Ok(()),
        Some(_) => Err(wrong_type("nonce does not match the one sent")),
        None => Err(wrong_type("an ID token must carry the nonce")),
    }
}

/// Whether `s` is a lowercase canonical GUID.
fn is_lower_guid(s: &str) -> bool {
    crate::authority::is_guid(s) && !s.bytes().any(|b| b.is_ascii_uppercase())
}

/// Checks C1–C6 in the order of §8.2 (6)–(10).
pub(crate) fn check(
    claims: &Object,
    rules: &Rules,
    now: SystemTime,
    is_at_jwt: bool,
    key: KeyFacts<'_>,
) -> Result<(), ValidationError> {
    // (6) C1: types of every modelled claim, in one pass over the members.
    for (name, kind) in claims.kinds() {
        let fits = match name {
            b"exp" | b"nbf" | b"iat" => kind == Kind::Number,
            b"iss" | b"sub" | b"azp" | b"appid" | b"client_id" | b"tid" | b"oid" | b"ver"
            | b"idtyp" | b"tfp" | b"acr" | b"jti" | b"azpacr" | b"appidacr" | b"scp" | b"scope" => {
                kind == Kind::String
            }
            b"aud" => matches!(kind, Kind::String | Kind::Strings),
            b"roles" | b"acrs" | b"amr" => kind == Kind::Strings,
            _ => true,
        };
        if !fits {
            return Err(missing("a claim has the wrong JSON type"));
        }
    }
    let not_audience = || missing("aud is not a string or a non-empty array of strings");
    let mut audiences: Vec<&str> = Vec::new();
    match claims.str("aud") {
        Ok(Some(a)) => audiences.push(a),
        Ok(None) => return Err(missing("aud is required")),
        Err(_) => match claims.strings("aud") {
            Ok(Some(items)) => audiences.extend(items),
            _ => return Err(not_audience()),
        },
    }
    if audiences.is_empty() {
        return Err(not_audience());
    }
    let exp = time(claims, "exp")?.ok_or_else(|| missing("exp is required"))?;
    let nbf = time(claims, "nbf")?;
    let iat = time(claims, "iat")?;
    let iss = string(claims, "iss")?.ok_or_else(|| missing("iss is required"))?;

    // (7) C2.
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let skew = rules.skew.as_secs();
    if now >= exp.saturating_add(skew) {
        return Err(ValidationError::new(
            ValidationErrorKind::Expired,
            "now is past exp plus skew",
        ));
    }
    if let Some(nbf) = nbf
        && (nbf > now.saturating_add(skew) || nbf > exp)
    {
        return Err(ValidationError::new(
            ValidationErrorKind::NotYetValid,
            "nbf is in the future",
        ));
    }
    if iat.is_some_and(|iat| iat > now.saturating_add(skew)) {
        return Err(ValidationError::new(
            ValidationErrorKind::IssuedInFuture,
            "iat is in the future",
        ));
    }

    // (8) C3, C4.
    let bad_issuer = |detail| ValidationError::new(ValidationErrorKind::BadIssuer, detail);
    let tid = string(claims, "tid")?;
    if rules.profile == Profile::Entra {
        match tid {
            Some(t) if is_lower_guid(t) => {}
            _ => return Err(bad_issuer("tid must be a lowercase GUID")),
        }
    }
    let matched = rules
        .issuers
        .iter()
        .find(|rule| rule.matches(iss, tid))
        .ok_or_else(|| bad_issuer("iss is not an expected issuer"))?;
    if rules.profile == Profile::Entra {
        // v1 issuers end with '/', v2 with "/v2.0"; `ver` must agree.
        let is_v2 = iss.ends_with("/v2.0");
        let ver = string(claims, "ver")?;
        if ver != Some(if is_v2 { "2.0" } else { "1.0" }) {
            return Err(bad_issuer("ver does not fit the issuer's version"));
        }
    }
    let templated = matches!(matched, IssuerRule::Template { .. });
    match &rules.tenants {
        Some(allowed) if !tid.is_some_and(|t| allowed.iter().any(|a| a == t)) => {
            return Err(bad_issuer("the tenant is not allowed"));
        }
        Some(_) => {}
        None if templated && !rules.any_tenant => {
            return Err(bad_issuer("multi-tenant issuers need a tenant list"));
        }
        None => {}
    }
    check_key_issuer(rules, key, iss, tid, claims)?;
    if rules.profile == Profile::B2c {
        // C7: the policy in tfp or acr (equal if both) is a configured one.
        let policy = match (string(claims, "tfp")?, string(claims, "acr")?) {
            (Some(t), Some(a)) if !t.eq_ignore_ascii_case(a) => None,
            (Some(p), _) | (None, Some(p)) => Some(p),
            (None, None) => None,
        };
        if !policy.is_some_and(|p| rules.policies.iter().any(|c| c.eq_ignore_ascii_case(p))) {
            return Err(bad_issuer("the B2C policy is not accepted"));
        }
    }

    if let Expect::IdToken { client_id, nonce } = &rules.expect {
        return check_id_token(claims, &audiences, client_id, nonce, is_at_jwt);
    }

    // (9) C5.
    if !audiences
        .iter()
        .any(|a| !a.is_empty() && rules.audiences.iter().any(|r| r == a))
    {
        return Err(ValidationError::new(
            ValidationErrorKind::BadAudience,
            "aud is not an accepted audience",
        ));
    }

    // (10) C6.
    let wrong_type = |detail| ValidationError::new(ValidationErrorKind::WrongTokenType, detail);
    for marker in ["nonce", "at_hash", "c_hash", "cnf"] {
        if claims.contains(marker) {
            return Err(wrong_type(
                "an ID-token or sender-constrained claim is present",
            ));
        }
    }
    if string(claims, "idtyp")?.is_some_and(|t| t != "app" && t != "user") {
        return Err(wrong_type("idtyp is neither app nor user"));
    }
    let has = |name: &str| claims.contains(name);
    let markers = match rules.profile {
        Profile::Entra => match string(claims, "ver")? {
            Some("2.0") => has("azp") && has("azpacr"),
            Some("1.0") => has("appid") && has("appidacr"),
            _ => false,
        },
        Profile::B2c => has("azp") && has("scp"),
        Profile::Generic => {
            is_at_jwt && has("sub") && has("client_id") && iat.is_some() && has("jti")
        }
    };
    if !markers {
        return Err(wrong_type("the access-token markers are missing"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;

    fn obj(claims: &Map<String, Value>) -> Object {
        Object::parse(serde_json::to_vec(claims).expect("JSON"), 32).expect("object")
    }

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const API: &str = "22222222-2222-2222-2222-222222222222";
    const NOW: u64 = 1_800_000_000;

    fn rules() -> Rules {
        Rules {
            issuers: vec![
                IssuerRule::new(&format!("https://login.microsoftonline.com/{TID}/v2.0")),
                IssuerRule::new(&format!("https://sts.windows.net/{TID}/")),
            ],
            audiences: vec![API.to_owned(), format!("api://{API}")],
            tenants: None,
            any_tenant: false,
            skew: Duration::from_secs(300),
            profile: Profile::Entra,
            policies: Vec::new(),
            expect: Expect::AccessToken,
        }
    }

    fn v2() -> Map<String, Value> {
        json!({
            "iss": format!("https://login.microsoftonline.com/{TID}/v2.0"),
            "aud": API, "tid": TID, "ver": "2.0", "azp": "c", "azpacr": "2",
            "iat": NOW, "nbf": NOW, "exp": NOW + 3600, "sub": "s", "oid": "o", "roles": ["Read"],
        })
        .as_object()
        .cloned()
        .expect("object")
    }

    /// The v1 form of [`v2`]: `sts.windows.net` issuer, `appid`/`appidacr`, App ID URI audience.
    fn v1() -> Map<String, Value> {
        let mut v1 = v2();
        v1.remove("azp");
        v1.remove("azpacr");
        v1.insert(
            "iss".into(),
            json!(format!("https://sts.windows.net/{TID}/")),
        );
        v1.insert("ver".into(), json!("1.0"));
        v1.insert("appid".into(), json!("c"));
        v1.insert("appidacr".into(), json!("1"));
        v1.insert("aud".into(), json!(format!("api://{API}")));
        v1
    }

    fn at(now: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(now)
    }

    fn kind(claims: &Map<String, Value>, rules: &Rules) -> Result<(), ValidationErrorKind> {
        check(&obj(claims), rules, at(NOW), false, KeyFacts::default()).map_err(|e| e.kind())
    }

    fn with(member: &str, value: Value) -> Map<String, Value> {
        let mut c = v2();
        c.insert(member.to_owned(), value);
        c
    }

    fn without(member: &str) -> Map<String, Value> {
        let mut c = v2();
        c.remove(member);
        c
    }

    #[test]
    fn positive_controls() {
        assert_eq!(kind(&v2(), &rules()), Ok(()));
        assert_eq!(kind(&v1(), &rules()), Ok(()));
        assert_eq!(kind(&with("aud", json!(["other", API])), &rules()), Ok(()));
    }

    #[test]
    fn c1_types() {
        use ValidationErrorKind::MissingClaim;
        for (name, value) in [
            ("exp", json!("1800003600")),
            ("exp", json!(-1)),
            ("exp", json!(253_402_300_800u64)),
            ("iss", json!(5)),
            ("aud", json!([])),
            ("aud", json!([1])),
            ("roles", json!("Read")),
            ("scp", json!(["a"])),
            ("tid", json!(null)),
        ] {
            assert_eq!(
                kind(&with(name, value.clone()), &rules()),
                Err(MissingClaim),
                "{name}={value}"
            );
        }
        assert_eq!(kind(&without("exp"), &rules()), Err(MissingClaim));
        assert_eq!(kind(&without("aud"), &rules()), Err(MissingClaim));
        assert_eq!(kind(&without("iss"), &rules()), Err(MissingClaim));
    }

    #[test]
    fn c2_times() {
        use ValidationErrorKind::*;
        let c = v2();
        let r = rules();
        assert!(
            check(
                &obj(&c),
                &r,
                at(NOW + 3600 + 299),
                false,
                KeyFacts::default()
            )
            .is_ok(),
            "within skew"
        );
        assert_eq!(
            check(
                &obj(&c),
                &r,
                at(NOW + 3600 + 300),
                false,
                KeyFacts::default()
            )
            .map_err(|e| e.kind()),
            Err(Expired)
        );
        assert_eq!(kind(&with("nbf", json!(NOW + 301)), &r), Err(NotYetValid));
        assert_eq!(
            kind(&with("nbf", json!(NOW + 3601)), &r),
            Err(NotYetValid),
            "nbf after exp"
        );
        assert_eq!(
            kind(&with("iat", json!(NOW + 301)), &r),
            Err(IssuedInFuture)
        );
        assert_eq!(
            kind(&with("exp", json!(NOW as f64 + 3600.5)), &r),
            Ok(()),
            "fraction dropped"
        );
    }

    #[test]
    fn c3_c4_issuers_and_tenants() {
        use ValidationErrorKind::BadIssuer;
        let r = rules();
        for iss in [
            format!("https://login.microsoftonline.com/{TID}/v2.0/"),
            format!("https://LOGIN.microsoftonline.com/{TID}/v2.0"),
            format!("https://login.microsoftonline.com:443/{TID}/v2.0"),
            format!(
                "https://login.microsoftonline.com/{}/v2.0",
                TID.to_uppercase()
            ),
        ] {
            assert_eq!(kind(&with("iss", json!(iss)), &r), Err(BadIssuer), "{iss}");
        }
        assert_eq!(
            kind(&with("ver", json!("1.0")), &r),
            Err(BadIssuer),
            "ver must fit the issuer"
        );
        assert_eq!(
            kind(&with("tid", json!(TID.to_uppercase())), &r),
            Err(BadIssuer)
        );

        let other = "0b2c5e8a-1111-4222-8333-944445555666";
        let mut multi = rules();
        multi.issuers = vec![IssuerRule::new(
            "https://login.microsoftonline.com/{tenantid}/v2.0",
        )];
        let foreign = with("tid", json!(other));
        let mut foreign = foreign;
        foreign.insert(
            "iss".into(),
            json!(format!("https://login.microsoftonline.com/{other}/v2.0")),
        );
        assert_eq!(
            kind(&foreign, &multi),
            Err(BadIssuer),
            "templates need a tenant list"
        );
        multi.tenants = Some(vec![TID.to_owned()]);
        assert_eq!(kind(&foreign, &multi), Err(BadIssuer), "tenant not allowed");
        multi.tenants = Some(vec![TID.to_owned(), other.to_owned()]);
        assert_eq!(kind(&foreign, &multi), Ok(()));
        // The template takes the token's own tid: another tenant's iss does not pass.
        let mut mismatched = foreign.clone();
        mismatched.insert("tid".into(), json!(TID));
        assert_eq!(kind(&mismatched, &multi), Err(BadIssuer));
    }

    #[test]
    fn c5_audience() {
        use ValidationErrorKind::BadAudience;
        for aud in [
            json!(""),
            json!(format!("api://{API}").to_uppercase()),
            json!(format!("{API}/")),
            json!(["x", "y"]),
        ] {
            assert_eq!(
                kind(&with("aud", aud.clone()), &rules()),
                Err(BadAudience),
                "{aud}"
            );
        }
    }

    #[test]
    fn c6_token_types() {
        use ValidationErrorKind::WrongTokenType;
        for (name, value) in [
            ("nonce", json!("n")),
            ("at_hash", json!("h")),
            ("cnf", json!({})),
            ("idtyp", json!("device")),
        ] {
            assert_eq!(
                kind(&with(name, value), &rules()),
                Err(WrongTokenType),
                "{name}"
            );
        }
        assert_eq!(
            kind(&without("azpacr"), &rules()),
            Err(WrongTokenType),
            "an ID token lacks azpacr"
        );
        let mut generic = rules();
        generic.profile = Profile::Generic;
        generic.issuers = vec![IssuerRule::new("https://id.example.com")];
        let mut c = with("iss", json!("https://id.example.com"));
        c.insert("client_id".into(), json!("c"));
        c.insert("jti".into(), json!("j"));
        assert_eq!(
            check(&obj(&c), &generic, at(NOW), true, KeyFacts::default()).map_err(|e| e.kind()),
            Ok(())
        );
        assert_eq!(
            check(&obj(&c), &generic, at(NOW), false, KeyFacts::default()).map_err(|e| e.kind()),
            Err(WrongTokenType),
            "typ must be at+jwt"
        );
    }

    fn with_key(
        claims: &Map<String, Value>,
        rules: &Rules,
        key: KeyFacts<'_>,
    ) -> Result<(), ValidationErrorKind> {
        check(&obj(claims), rules, at(NOW), false, key).map_err(|e| e.kind())
    }

    #[test]
    fn k5_signing_key_issuer() {
        use ValidationErrorKind::BadIssuer;
        let r = rules();
        let key = |issuer| KeyFacts {
            issuer: Some(issuer),
            clouds: None,
        };
        let own = format!("https://login.microsoftonline.com/{TID}/v2.0");
        assert_eq!(with_key(&v2(), &r, key(&own)), Ok(()));
        assert_eq!(
            with_key(
                &v2(),
                &r,
                key("https://login.microsoftonline.com/{tenantid}/v2.0")
            ),
            Ok(()),
            "the template takes the token's tid"
        );
        assert_eq!(
            with_key(
                &v2(),
                &r,
                key("https://login.microsoftonline.com/{TenantId}/v2.0")
            ),
            Ok(()),
            "the placeholder is case-insensitive"
        );
        let other = "https://login.microsoftonline.com/0b2c5e8a-1111-4222-8333-944445555666/v2.0";
        assert_eq!(
            with_key(&v2(), &r, key(other)),
            Err(BadIssuer),
            "another tenant's key"
        );
        assert_eq!(
            with_key(
                &v2(),
                &r,
                key("https://login.microsoftonline.us/{tenantid}/v2.0")
            ),
            Err(BadIssuer),
            "another cloud's key"
        );
        // A v1 token is vouched for by the tenant's v2 issuer.
        assert_eq!(with_key(&v1(), &r, key(&own)), Ok(()));
        assert_eq!(with_key(&v1(), &r, key(other)), Err(BadIssuer));
        let clouds = KeyFacts {
            issuer: None,
            clouds: Some(("microsoftonline.us", "microsoftonline.com")),
        };
        assert_eq!(with_key(&v2(), &r, clouds), Err(BadIssuer));
    }

    #[test]
    fn c7_b2c_policy() {
        use ValidationErrorKind::BadIssuer;
        let iss = "https://contoso.b2clogin.com/0b2c5e8a-1111-4222-8333-944445555666/v2.0/";
        let b2c = Rules {
            issuers: vec![IssuerRule::new(iss)],
            profile: Profile::B2c,
            policies: vec!["b2c_1_signin".into()],
            tenants: None,
            ..rules()
        };
        let mut claims = with("iss", json!(iss));
        claims.insert("scp".into(), json!("read"));
        claims.insert("ver".into(), json!("1.0"));
        claims.insert("tfp".into(), json!("B2C_1_SignIn"));
        assert_eq!(with_key(&claims, &b2c, KeyFacts::default()), Ok(()));
        let mut other = claims.clone();
        other.insert("tfp".into(), json!("B2C_1_other"));
        assert_eq!(with_key(&other, &b2c, KeyFacts::default()), Err(BadIssuer));
        let mut disagree = claims.clone();
        disagree.insert("acr".into(), json!("b2c_1_other"));
        assert_eq!(
            with_key(&disagree, &b2c, KeyFacts::default()),
            Err(BadIssuer),
            "tfp and acr differ"
        );
        let mut by_acr = claims.clone();
        by_acr.remove("tfp");
        by_acr.insert("acr".into(), json!("b2c_1_signin"));
        assert_eq!(with_key(&by_acr, &b2c, KeyFacts::default()), Ok(()));
        let mut neither = claims;
        neither.remove("tfp");
        assert_eq!(
            with_key(&neither, &b2c, KeyFacts::default()),
            Err(BadIssuer)
        );
    }

    #[test]
    fn c9_id_tokens() {
        use ValidationErrorKind::*;
        let id_rules = |nonce: &str| Rules {
            expect: Expect::IdToken {
                client_id: "web".into(),
                nonce: nonce.into(),
            },
            audiences: vec!["web".into()],
            ..rules()
        };
        let mut id = v2();
        for access_only in ["azp", "azpacr", "roles"] {
            id.remove(access_only);
        }
        id.insert("aud".into(), json!("web"));
        id.insert("nonce".into(), json!("n1"));
        assert_eq!(with_key(&id, &id_rules("n1"), KeyFacts::default()), Ok(()));
        assert_eq!(
            with_key(&id, &id_rules("n2"), KeyFacts::default()),
            Err(WrongTokenType)
        );
        let mut no_nonce = id.clone();
        no_nonce.remove("nonce");
        assert_eq!(
            with_key(&no_nonce, &id_rules("n1"), KeyFacts::default()),
            Err(WrongTokenType)
        );
        let mut several = id.clone();
        several.insert("aud".into(), json!(["web", "other"]));
        assert_eq!(
            with_key(&several, &id_rules("n1"), KeyFacts::default()),
            Err(WrongTokenType),
            "azp must name the client when aud has several values"
        );
        several.insert("azp".into(), json!("web"));
        assert_eq!(
            with_key(&several, &id_rules("n1"), KeyFacts::default()),
            Ok(())
        );
        let mut access = id.clone();
        access.insert("scp".into(), json!("read"));
        assert_eq!(
            with_key(&access, &id_rules("n1"), KeyFacts::default()),
            Err(WrongTokenType)
        );
    }
}
