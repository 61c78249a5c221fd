"""Microsoft's own Python clients against one running testkit (`serve --tls --compat` with
testkit/example-config.json).

Each scenario drives msal or the Azure SDK for Python as an application would, checks what it can
check here (signatures verify with the vault key's public half, certificates and secrets parse,
errors have the SDK's type), and prints one JSON line. Lines with a "token" are checked by the
Rust side with confidant's bearer validator. Any failure raises: the exit status is non-zero.

Environment: TESTKIT_READY (the testkit's ready line), FIXTURES (tests/fixtures), and
REQUESTS_CA_BUNDLE (the testkit's CA file) so that requests-based clients trust it.
"""

import base64
import json
import os
import sys
import urllib.parse

import msal
import requests
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure.identity import (
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
)
from azure.keyvault.certificates import CertificateClient
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import pkcs12

READY = json.loads(os.environ["TESTKIT_READY"])
FIXTURES = os.environ["FIXTURES"]
CONFIG = json.load(open(os.environ["TESTKIT_CONFIG"]))

BASE = READY["base_url"]
VAULT = READY["key_vault_url"]
TENANT = CONFIG["tenants"][0]["id"]
API, DAEMON, SNI, WEB = (app["client_id"] for app in CONFIG["apps"])
DAEMON_SECRET = CONFIG["apps"][1]["secrets"][0]["value"]
WEB_SECRET = CONFIG["apps"][3]["secrets"][0]["value"]
REDIRECT = CONFIG["apps"][3]["redirect_uris"][0]
ALICE = CONFIG["users"][0]["username"]
UAMI = CONFIG["managed_identities"][1]["client_id"]
API_SCOPE = f"api://{API}/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"
PASSWORD = b"fixture-password"


def report(scenario, **fields):
    print(json.dumps({"scenario": scenario, **fields}), flush=True)


def fixture(name, mode="r"):
    with open(os.path.join(FIXTURES, name), mode) as f:
        return f.read()


def msal_app(client_id, credential):
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=f"{BASE}/{TENANT}",
        # The testkit is not a Microsoft cloud: no instance discovery against the real one.
        instance_discovery=False,
    )


def msal_token(scenario, app, scopes):
    result = app.acquire_token_for_client(scopes)
    assert "access_token" in result, f"{scenario}: {result.get('error_description', result)}"
    assert result["token_type"].lower() == "bearer"
    report(scenario, token=result["access_token"], audience=API, kind="app")
    return result


def sha1_hex(pem):
    cert = x509.load_pem_x509_certificate(pem.encode())
    return cert.fingerprint(hashes.SHA1()).hex()


def self_signed(name):
    """A new RSA key and self-signed certificate, PEM, that no app registered."""
    import datetime
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem.decode(), cert.public_bytes(serialization.Encoding.PEM).decode()


def msal_scenarios():
    msal_token("msal secret", msal_app(DAEMON, DAEMON_SECRET), [API_SCOPE])

    key, cert = fixture("rsa2048.pkcs8.key"), fixture("rsa2048.crt")
    # SHA-1: msal sends RS256 with a padded base64url `x5t`.
    app = msal_app(DAEMON, {"private_key": key, "thumbprint": sha1_hex(cert)})
    msal_token("msal certificate sha1 thumbprint", app, [API_SCOPE])
    # SHA-256: computed from the public certificate; PS256 with `x5t#S256`, and `x5c` (which an
    # app registered by thumbprint ignores).
    app = msal_app(DAEMON, {"private_key": key, "public_certificate": cert})
    msal_token("msal certificate sha256 thumbprint", app, [API_SCOPE])
    # PFX: SHA-256 thumbprint, no `x5c`.
    app = msal_app(DAEMON, {
        "private_key_pfx_path": os.path.join(FIXTURES, "rsa2048.aes.pfx"),
        "passphrase": PASSWORD.decode(),
    })
    msal_token("msal pfx", app, [API_SCOPE])
    # Subject name + issuer: the chain in `x5c`, from PEM and from a PFX.
    chain = fixture("leaf3072.crt") + fixture("ca.crt")
    app = msal_app(SNI, {"private_key": fixture("leaf3072.key"), "public_certificate": chain})
    msal_token("msal certificate with x5c (subject name + issuer)", app, [API_SCOPE])
    app = msal_app(SNI, {
        "private_key_pfx_path": os.path.join(FIXTURES, "leaf3072.chain.pfx"),
        "passphrase": PASSWORD.decode(),
        "public_certificate": True,
    })
    msal_token("msal pfx with x5c (subject name + issuer)", app, [API_SCOPE])

    # An unregistered certificate is refused with Entra's error.
    key, cert = self_signed("unregistered")
    app = msal_app(DAEMON, {"private_key": key, "public_certificate": cert})
    result = app.acquire_token_for_client([API_SCOPE])
    assert result.get("error") == "invalid_client", result
    assert 700027 in result.get("error_codes", []), result
    report("msal unregistered certificate", error=result["error"])


def auth_code_scenarios():
    app = msal_app(WEB, WEB_SECRET)
    scopes = [f"api://{API}/Accounts.Read"]
    flow = app.initiate_auth_code_flow(
        scopes, redirect_uri=REDIRECT, login_hint=ALICE, response_mode="query")
    assert flow["code_verifier"] and "code_challenge=" in flow["auth_uri"]
    # The testkit signs `login_hint` in without a UI and redirects to the app.
    response = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
    assert response.status_code in (302, 303), response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT), location
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert "code" in query, location
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert "access_token" in result, result.get("error_description", result)
    assert result["id_token_claims"]["preferred_username"] == ALICE
    # msal itself checks the ID token's nonce against the hash it sent.
    report("msal authorization code with PKCE", token=result["access_token"], audience=API, kind="user")

    accounts = app.get_accounts(username=ALICE)
    assert len(accounts) == 1, accounts
    cached = app.acquire_token_silent(scopes, account=accounts[0])
    assert cached["access_token"] == result["access_token"], "served from msal's cache"
    refreshed = app.acquire_token_silent_with_error(scopes, account=accounts[0], force_refresh=True)
    assert refreshed and "access_token" in refreshed, refreshed
    assert refreshed["access_token"] != result["access_token"], "a new token from the refresh token"
    report("msal silent refresh", token=refreshed["access_token"], audience=API, kind="user")


def multi_tenant_scenarios():
    """The web app is multi-tenant in the example configuration: msal signs Alice in at
    `organizations` (discovery with the `{tenantid}` issuer template, the code redeemed there),
    then refreshes there; an app token needs a tenant (AADSTS50059)."""
    app = msal.ConfidentialClientApplication(
        WEB, client_credential=WEB_SECRET, authority=f"{BASE}/organizations",
        instance_discovery=False)
    scopes = [f"api://{API}/Accounts.Read"]
    flow = app.initiate_auth_code_flow(
        scopes, redirect_uri=REDIRECT, login_hint=ALICE, response_mode="query")
    response = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
    assert response.status_code in (302, 303), response.text
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(response.headers["Location"]).query))
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert "access_token" in result, result.get("error_description", result)
    assert result["id_token_claims"]["tid"] == TENANT, result["id_token_claims"]
    report("msal sign-in at organizations", token=result["access_token"], audience=API, kind="user")
    account = app.get_accounts(username=ALICE)[0]
    refreshed = app.acquire_token_silent_with_error(scopes, account=account, force_refresh=True)
    assert refreshed and "access_token" in refreshed, refreshed
    report("msal refresh at organizations", token=refreshed["access_token"], audience=API, kind="user")

    single = msal.ConfidentialClientApplication(
        DAEMON, client_credential=DAEMON_SECRET, authority=f"{BASE}/organizations",
        instance_discovery=False)
    result = single.acquire_token_for_client([API_SCOPE])
    assert 50059 in result.get("error_codes", []), result
    report("msal app token at organizations refused", error=result["error"])


def identity_options():
    return {"authority": BASE, "disable_instance_discovery": True}


def azure_identity_scenarios():
    credential = ClientSecretCredential(TENANT, DAEMON, DAEMON_SECRET, **identity_options())
    token = credential.get_token(API_SCOPE)
    report("azure-identity ClientSecretCredential", token=token.token, audience=API, kind="app")

    pem = fixture("rsa2048.pkcs8.key") + fixture("rsa2048.crt")
    credential = CertificateCredential(TENANT, DAEMON, certificate_data=pem.encode(), **identity_options())
    token = credential.get_token(API_SCOPE)
    report("azure-identity CertificateCredential (PEM)", token=token.token, audience=API, kind="app")
    credential = CertificateCredential(
        TENANT, DAEMON,
        certificate_path=os.path.join(FIXTURES, "rsa2048.aes.pfx"),
        password=PASSWORD,
        **identity_options(),
    )
    token = credential.get_token(API_SCOPE)
    report("azure-identity CertificateCredential (PFX)", token=token.token, audience=API, kind="app")
    credential = CertificateCredential(
        TENANT, SNI,
        certificate_path=os.path.join(FIXTURES, "leaf3072.chain.pfx"),
        password=PASSWORD,
        send_certificate_chain=True,
        **identity_options(),
    )
    token = credential.get_token(API_SCOPE)
    report("azure-identity CertificateCredential (subject name + issuer)", token=token.token, audience=API, kind="app")

    wrong = ClientSecretCredential(TENANT, DAEMON, "not-the-secret", **identity_options())
    try:
        wrong.get_token(API_SCOPE)
        raise AssertionError("a wrong secret must fail")
    except ClientAuthenticationError as e:
        assert "AADSTS7000215" in str(e), e
    report("azure-identity wrong secret", error="ClientAuthenticationError")


def with_env(env, action):
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        return action()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def managed_identity_scenarios():
    imds_host = READY["imds_endpoint"].split("/metadata/")[0]
    for name, kwargs in [("system-assigned", {}), ("user-assigned", {"client_id": UAMI})]:
        token = with_env(
            {"AZURE_POD_IDENTITY_AUTHORITY_HOST": imds_host},
            lambda: ManagedIdentityCredential(**kwargs).get_token(VAULT_SCOPE),
        )
        report(f"azure-identity ManagedIdentityCredential IMDS {name}", token=token.token,
               audience="https://vault.azure.net", kind="managed identity", client_id=kwargs.get("client_id"))
    app_service = {
        "IDENTITY_ENDPOINT": READY["app_service_endpoint"],
        "IDENTITY_HEADER": READY["app_service_identity_header"],
    }
    for name, kwargs in [("system-assigned", {}), ("user-assigned", {"client_id": UAMI})]:
        token = with_env(app_service, lambda: ManagedIdentityCredential(**kwargs).get_token(VAULT_SCOPE))
        report(f"azure-identity ManagedIdentityCredential App Service {name}", token=token.token,
               audience="https://vault.azure.net", kind="managed identity", client_id=kwargs.get("client_id"))
    # The wrong App Service secret is refused.
    try:
        with_env(dict(app_service, IDENTITY_HEADER="wrong"),
                 lambda: ManagedIdentityCredential().get_token(VAULT_SCOPE))
        raise AssertionError("a wrong IDENTITY_HEADER must fail")
    except ClientAuthenticationError:
        report("azure-identity ManagedIdentityCredential App Service wrong header", error="ClientAuthenticationError")


def public_key(jwk):
    """The vault key's public half, from its JWK (checked here, not by the testkit)."""
    def number(b):
        return int.from_bytes(b, "big")
    if jwk.kty.startswith("RSA"):
        return rsa.RSAPublicNumbers(number(jwk.e), number(jwk.n)).public_key()
    return ec.EllipticCurvePublicNumbers(number(jwk.x), number(jwk.y), ec.SECP256R1()).public_key()


def key_vault_scenarios():
    credential = ClientSecretCredential(TENANT, DAEMON, DAEMON_SECRET, **identity_options())
    # The challenge names https://vault.azure.net while the vault is on 127.0.0.1: the SDK's
    # domain check has to be turned off for any local vault.
    options = {"verify_challenge_resource": False}
    keys = KeyClient(VAULT, credential, **options)
    message = b"confidant testkit interop"
    digest = hashes.Hash(hashes.SHA256())
    digest.update(message)
    digest = digest.finalize()
    for key_name, algorithm in [
        ("rsa-signing", SignatureAlgorithm.rs256),
        ("rsa-signing", SignatureAlgorithm.ps256),
        ("hsm-signing", SignatureAlgorithm.rs256),
        ("ec-signing", SignatureAlgorithm.es256),
    ]:
        key = keys.get_key(key_name)
        assert key.id.startswith(f"{VAULT}/keys/{key_name}/"), key.id
        crypto = CryptographyClient(key, credential, **options)
        signed = crypto.sign(algorithm, digest)
        assert signed.key_id == key.id
        verifier = public_key(key.key)
        if algorithm == SignatureAlgorithm.es256:
            assert len(signed.signature) == 64, "JWS form: r || s"
            r = int.from_bytes(signed.signature[:32], "big")
            s = int.from_bytes(signed.signature[32:], "big")
            verifier.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        elif algorithm == SignatureAlgorithm.ps256:
            verifier.verify(signed.signature, message,
                            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        else:
            verifier.verify(signed.signature, message, padding.PKCS1v15(), hashes.SHA256())
        report(f"azure-keyvault-keys sign {algorithm.value} with {key_name}", verified=True, kty=key.key_type)

    certificates = CertificateClient(VAULT, credential, **options)
    for name in ["daemon-pfx", "daemon-pem"]:
        cert = certificates.get_certificate(name)
        parsed = x509.load_der_x509_certificate(bytes(cert.cer))
        assert parsed.fingerprint(hashes.SHA1()) == cert.properties.x509_thumbprint
        assert parsed.subject.rfc4514_string() == f"CN={name}", parsed.subject
        report(f"azure-keyvault-certificates get {name}", subject=parsed.subject.rfc4514_string())

    secrets = SecretClient(VAULT, credential, **options)
    pfx = secrets.get_secret("daemon-pfx")
    assert pfx.properties.content_type == "application/x-pkcs12"
    key, cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(pfx.value), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert cert.fingerprint(hashes.SHA1()) == certificates.get_certificate("daemon-pfx").properties.x509_thumbprint
    report("azure-keyvault-secrets get certificate secret (PFX)", content_type=pfx.properties.content_type)
    pem = secrets.get_secret("daemon-pem")
    assert pem.properties.content_type == "application/x-pem-file"
    key = serialization.load_pem_private_key(pem.value.encode(), None)
    cert = x509.load_pem_x509_certificate(pem.value.encode())
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    report("azure-keyvault-secrets get certificate secret (PEM)", content_type=pem.properties.content_type)
    plain = secrets.get_secret("db-password")
    assert plain.value == CONFIG["key_vault"]["secrets"][0]["value"]
    report("azure-keyvault-secrets get secret", content_type=plain.properties.content_type)
    try:
        secrets.get_secret("no-such-secret")
        raise AssertionError("a missing secret must fail")
    except ResourceNotFoundError as e:
        assert e.status_code == 404
        report("azure-keyvault-secrets 404", error="ResourceNotFoundError")

    # The user-assigned identity may read secrets, and nothing else.
    imds_host = READY["imds_endpoint"].split("/metadata/")[0]

    def as_identity():
        identity = ManagedIdentityCredential(client_id=UAMI)
        value = SecretClient(VAULT, identity, **options).get_secret("db-password").value
        try:
            KeyClient(VAULT, identity, **options).get_key("rsa-signing")
            raise AssertionError("the identity has no key permission")
        except Exception as e:  # HttpResponseError: Forbidden
            assert getattr(e, "status_code", None) == 403, e
        return value

    value = with_env({"AZURE_POD_IDENTITY_AUTHORITY_HOST": imds_host}, as_identity)
    assert value == CONFIG["key_vault"]["secrets"][0]["value"]
    report("azure-keyvault-secrets with a managed identity; 403 beyond its policy", error="HttpResponseError 403")


def main():
    assert os.environ.get("REQUESTS_CA_BUNDLE"), "REQUESTS_CA_BUNDLE must name the testkit's CA"
    msal_scenarios()
    auth_code_scenarios()
    multi_tenant_scenarios()
    azure_identity_scenarios()
    managed_identity_scenarios()
    key_vault_scenarios()
    report("done")


if __name__ == "__main__":
    sys.exit(main())
