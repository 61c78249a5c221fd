// panva/oidc-provider (OpenID Certified) configured like Entra ID, for confidant's interop tests:
// path-based tenants on one HTTPS port, `private_key_jwt` clients each pinned to one algorithm,
// client credentials, authorization code with PKCE (S256 required) and rotating refresh tokens,
// JWT access tokens (RFC 9068) for one API, and a sign-in that completes without a UI.
//
// Usage: node server.mjs CONFIG.json. The configuration (written by the Rust test) names the TLS
// certificate and key, the tenants, the clients with their certificates, the API and the user.
// The server prints one JSON line when ready: {"ready":true,"base_url":...,"issuers":{...}}.

import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

/** The public JWK of a certificate (PEM), for a client's `jwks`. */
function certificateJwk(path, alg) {
  const jwk = createPublicKey(readFileSync(path)).export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig' };
}

/** A fresh RSA signing key for one tenant's tokens. */
function signingJwk() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function tenantProvider(tenant, issuer) {
  const clients = config.clients
    .filter((c) => c.tenant === tenant)
    .map((c) => ({
      client_id: c.client_id,
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: c.alg,
      jwks: { keys: [certificateJwk(c.certificate, c.alg)] },
      grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: c.redirect_uris,
      scope: `openid offline_access profile ${config.api_scope}`,
    }));
  const provider = new Provider(issuer, {
    clients,
    clientAuthMethods: ['private_key_jwt'],
    enabledJWA: {
      clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256'],
    },
    jwks: { keys: [signingJwk()] },
    cookies: { keys: [randomUUID()] },
    scopes: ['openid', 'offline_access', 'profile', config.api_scope],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'] },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => config.api,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: config.api_scope,
          audience: config.api,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    // Refresh tokens (for `offline_access`, which OpenID Connect grants only with
    // `prompt=consent`), rotated on every use.
    rotateRefreshToken: true,
    findAccount: async (ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, name: config.user.name, preferred_username: config.user.username }),
    }),
    interactions: { url: (ctx, interaction) => `/${tenant}/interaction/${interaction.uid}` },
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  // The test's sign-in: the configured user, consenting to what the client asked for.
  provider.signIn = async (req, res) => {
    const details = await provider.interactionDetails(req, res);
    const grant = new provider.Grant({ accountId: config.user.sub, clientId: details.params.client_id });
    // Everything asked for: the OpenID scopes and the API's scope.
    grant.addOIDCScope(details.params.scope);
    grant.addResourceScope(config.api, config.api_scope);
    const grantId = await grant.save();
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: config.user.sub }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  };
  return provider;
}

const providers = new Map();
const server = createServer(
  { cert: readFileSync(config.tls_certificate), key: readFileSync(config.tls_key) },
  async (req, res) => {
    const [, tenant, ...rest] = req.url.split('/');
    const provider = providers.get(tenant);
    if (!provider) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'not_found', error_description: `no tenant ${tenant}` }));
      return;
    }
    try {
      if (rest[0] === 'interaction') {
        await provider.signIn(req, res);
        return;
      }
      // Mounted under /{tenant}: the provider sees the rest, and the prefix through originalUrl.
      req.originalUrl = req.url;
      req.url = req.url.slice(tenant.length + 1) || '/';
      provider.callback()(req, res);
    } catch (error) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'server_error', error_description: String(error) }));
    }
  },
);

server.listen(config.port ?? 0, '127.0.0.1', () => {
  const { port } = server.address();
  const base = `https://127.0.0.1:${port}`;
  const issuers = {};
  for (const tenant of config.tenants) {
    issuers[tenant] = `${base}/${tenant}`;
    providers.set(tenant, tenantProvider(tenant, issuers[tenant]));
  }
  process.stdout.write(`${JSON.stringify({ ready: true, base_url: base, issuers })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
