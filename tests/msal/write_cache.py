"""Writes a cache as msal-python does after a client-credentials and an authorization-code
token response (TokenCache.add, the call its applications make), and prints it.

argv: tenant_id client_id app_scope user_scope
"""
import base64
import json
import sys
import time

import msal

tenant, client_id, app_scope, user_scope = sys.argv[1:5]
endpoint = "https://login.microsoftonline.com/%s/oauth2/v2.0/token" % tenant


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


now = int(time.time())
cache = msal.SerializableTokenCache()
cache.add({
    "client_id": client_id,
    "scope": [app_scope],
    "token_endpoint": endpoint,
    "grant_type": "client_credentials",
    "response": {"token_type": "Bearer", "expires_in": 3599, "access_token": "msal-app-token"},
})
uid = "00000000-0000-0000-0000-00000000a11c"
id_claims = {"iss": "https://login.microsoftonline.com/%s/v2.0" % tenant, "aud": client_id,
             "sub": "s", "oid": uid, "tid": tenant, "preferred_username": "alice@contoso.com",
             "iat": now, "exp": now + 3600}
cache.add({
    "client_id": client_id,
    "scope": [user_scope],
    "token_endpoint": endpoint,
    "grant_type": "authorization_code",
    "response": {
        "token_type": "Bearer", "expires_in": 3599, "access_token": "msal-user-token",
        "refresh_token": "msal-refresh-token",
        "id_token": "%s.%s.sig" % (b64({"alg": "none"}), b64(id_claims)),
        "client_info": b64({"uid": uid, "utid": tenant}),
        "scope": user_scope,
    },
})
print(cache.serialize())
