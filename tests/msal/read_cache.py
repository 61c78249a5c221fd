"""Reads a cache confidant wrote, with msal-python's own SerializableTokenCache, and prints what
it finds as JSON: the app token, the user's account, refresh token and access token.

argv: cache_file client_id environment realm app_scope user_scope
"""
import json
import sys

import msal

path, client_id, environment, realm, app_scope, user_scope = sys.argv[1:7]
cache = msal.SerializableTokenCache()
with open(path) as f:
    cache.deserialize(f.read())
AT = msal.TokenCache.CredentialType.ACCESS_TOKEN
RT = msal.TokenCache.CredentialType.REFRESH_TOKEN
ACCOUNT = msal.TokenCache.CredentialType.ACCOUNT
base = {"client_id": client_id, "environment": environment, "realm": realm}
app = [e for e in cache.search(AT, target=[app_scope], query=base) if not e.get("home_account_id")]
accounts = list(cache.search(ACCOUNT, query={"environment": environment}))
user = []
refresh = []
if accounts:
    home = accounts[0]["home_account_id"]
    user = list(cache.search(AT, target=[user_scope], query=dict(base, home_account_id=home)))
    refresh = list(cache.search(RT, query={"client_id": client_id, "home_account_id": home}))
# The keys msal-python would compute for these entries must be the ones confidant wrote.
section = json.loads(cache.serialize())
keys_match = all(
    cache.key_makers[kind](**entry) in section[kind]
    for kind, entries in ((AT, app + user), (RT, refresh), (ACCOUNT, accounts))
    for entry in entries
)
print(json.dumps({
    "app_token": [e["secret"] for e in app],
    "user_token": [e["secret"] for e in user],
    "refresh_token": [e["secret"] for e in refresh],
    "usernames": [a["username"] for a in accounts],
    "keys_match": keys_match,
}))
