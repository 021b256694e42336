// oidc-provider (an OpenID Certified server this project did not write),
// started by tests/oidc_provider.rs: issues RFC 9068 JWT access tokens
// through the client_credentials grant with resource indicators, signed
// with RS256, PS256, ES256 or EdDSA (one client per algorithm). For the
// resource urn:tower-jwt-auth:opaque it issues opaque access tokens instead,
// which resource servers check at the introspection endpoint
// (/token/introspection, RFC 7662, as the client `api-introspector` with
// client_secret_basic or `api-introspector-post` with client_secret_post);
// the client a token was issued to can revoke it (/token/revocation).
// Introspection answers are signed (RFC 9701) when asked for with
// Accept: application/token-introspection+jwt. The client
// `api-introspector-jwt` authenticates with private_key_jwt: its ES256
// private key is generated at startup and printed in the READY line.
//
// Listens on 127.0.0.1, port 0, then prints one line to stdout:
//   READY {"issuer": "http://127.0.0.1:PORT", "kids": {"RS256": "...", ...},
//          "client_key": {"kid": "...", "pem": "-----BEGIN PRIVATE KEY-----..."}}
// The client `client-web` (authorization_code, refresh_token) holds refresh
// tokens: POST /__grant starts its grant as a code exchange with
// offline_access would (for the account `alice`, resources openid and
// urn:tower-jwt-auth:opaque) and answers {"refresh_token": "..."}; the
// refresh_token grant at /token then rotates it (a new refresh token each
// time) and issues opaque access tokens.
// Test-only admin endpoints on the same port:
//   POST /__grant             a refresh token of client-web, as above
//   POST /__rotate            new keys for every algorithm, signing from now on;
//                             the previous keys stay published
//   POST /__rotate?retire=1   the same, and every previous key is removed
// It answers {"kids": {...}} with the new signing kids. The provider is
// rebuilt with the new keystore under the same issuer.
//
// With OIDC_MCP=1 (tests/it/exchange.rs, tests/it/mcp.rs) it also knows
// MCP servers and token exchange, and nothing above changes:
//   - resources http://127.0.0.1:PORT/mcp (scopes mcp:tools mcp:admin) and
//     urn:tower-jwt-auth:downstream (scope downstream:read), JWT RS256;
//   - the client `mcp-client` (client_credentials, those scopes);
//   - the RFC 8693 token exchange grant
//     (urn:ietf:params:oauth:grant-type:token-exchange, registered with
//     registerGrantType) for the clients `exchanger` (client_secret_basic)
//     and `exchanger-jwt` (private_key_jwt, the key of the READY line): the
//     subject token must be an access token this provider signed; the new
//     token keeps its `sub` and carries `act: {sub: <client id>}` (nesting
//     the subject token's own `act`);
//   - GET /__exchanges answers {"count": N}, the exchanges granted so far.
//
// Exits when its standard input closes (the test is gone) and after
// 5 minutes whatever happens.

import { createServer } from 'node:http';
import { X509Certificate, createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import {
  generateKeyPair, exportJWK, exportPKCS8, createLocalJWKSet, jwtVerify,
} from 'jose';
import Provider, { errors } from 'oidc-provider';

const ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
// The resource servers the provider knows: the one the tests protect, and
// another one whose tokens the tests must refuse.
const RESOURCES = ['urn:tower-jwt-auth:api', 'urn:tower-jwt-auth:other'];
// A resource server that receives opaque tokens and introspects them.
const OPAQUE = 'urn:tower-jwt-auth:opaque';
const SCOPE = 'api:read';
// A resource server that receives encrypted JWT access tokens (JWE around
// the signed JWT, RSA-OAEP-256 + A256GCM to tests/data/keys/rsa.pub, kid "rsa").
const ENCRYPTED = 'urn:tower-jwt-auth:encrypted';
const ENCRYPTION_KEY = createPublicKey(readFileSync(new URL('../data/keys/rsa.pub', import.meta.url)));

/** client_id -> JWS algorithm of the access tokens issued to it. */
const clientAlg = Object.fromEntries(ALGS.map((alg) => [`client-${alg.toLowerCase()}`, alg]));
const clients = Object.keys(clientAlg).map((clientId) => ({
  client_id: clientId,
  client_secret: `secret-of-${clientId}`,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: SCOPE,
}));
// The resource server's own credentials, to call the introspection endpoint.
for (const method of ['client_secret_basic', 'client_secret_post']) {
  const clientId = method === 'client_secret_basic' ? 'api-introspector' : 'api-introspector-post';
  clients.push({
    client_id: clientId,
    client_secret: `secret-of-${clientId}`,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: method,
  });
}

// A web application that holds refresh tokens.
clients.push({
  client_id: 'client-web',
  client_secret: 'secret-of-client-web',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: ['https://rp.example/cb'],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: `openid offline_access ${SCOPE}`,
});

// A client whose access tokens are bound to its TLS client certificate
// (RFC 8705, cnf.x5t#S256). The provider listens on plain HTTP, so the test
// presents the certificate as a TLS-terminating proxy would: base64 DER in
// the header x-test-client-cert (read by features.mTLS.getCertificate).
clients.push({
  client_id: 'client-mtls',
  client_secret: 'secret-of-client-mtls',
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  tls_client_certificate_bound_access_tokens: true,
  scope: SCOPE,
});
clientAlg['client-mtls'] = 'ES256';

// The private_key_jwt client of the resource server.
const clientKey = await (async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  jwk.kid = `rs-${randomBytes(6).toString('hex')}`;
  jwk.alg = 'ES256';
  jwk.use = 'sig';
  return { jwk, pem: await exportPKCS8(privateKey) };
})();
clients.push({
  client_id: 'api-introspector-jwt',
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'private_key_jwt',
  jwks: { keys: [clientKey.jwk] },
});

// OIDC_MCP=1: MCP resources, their client, and token exchange.
const MCP = process.env.OIDC_MCP === '1';
const MCP_SCOPES = 'mcp:tools mcp:admin';
const DOWNSTREAM = 'urn:tower-jwt-auth:downstream';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
let exchanges = 0;
/** An MCP endpoint on this machine, as the MCP example serves it. */
const mcpResource = (r) => /^http:\/\/127\.0\.0\.1:\d+\/mcp$/.test(r);
if (MCP) {
  clients.push({
    client_id: 'mcp-client',
    client_secret: 'secret-of-mcp-client',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: `${MCP_SCOPES} downstream:read`,
  });
  clients.push({
    client_id: 'exchanger',
    client_secret: 'secret-of-exchanger',
    grant_types: [EXCHANGE, 'client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'downstream:read',
  });
  clients.push({
    client_id: 'exchanger-jwt',
    grant_types: [EXCHANGE],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [clientKey.jwk] },
    scope: 'downstream:read',
  });
}

/** The resource server info of an MCP-mode resource, or undefined. */
function mcpResourceInfo(resourceIndicator) {
  if (!MCP) return undefined;
  let scope;
  if (mcpResource(resourceIndicator)) scope = MCP_SCOPES;
  else if (resourceIndicator === DOWNSTREAM) scope = 'downstream:read';
  else return undefined;
  return {
    scope,
    audience: resourceIndicator,
    accessTokenTTL: 300,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  };
}

/**
 * RFC 8693 token exchange: an access token of this provider (the subject
 * token) for one to another resource, acting for the same subject.
 */
async function tokenExchange(ctx) {
  const { params, client } = ctx.oidc;
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest('subject_token_type must be an access token');
  }
  const publicKeys = keys.map(({ d, p, q, dp, dq, qi, ...pub }) => pub);
  let subject;
  try {
    ({ payload: subject } = await jwtVerify(params.subject_token, createLocalJWKSet({ keys: publicKeys }), {
      issuer: ctx.oidc.provider.issuer,
    }));
  } catch (err) {
    throw new errors.InvalidGrant(`subject_token refused: ${err.message}`);
  }
  const resource = params.resource || DOWNSTREAM;
  const info = mcpResourceInfo(resource);
  if (!info) throw new errors.InvalidTarget();
  const allowed = new Set(info.scope.split(' '));
  const wanted = (params.scope || info.scope).split(' ').filter(Boolean);
  if (!wanted.every((s) => allowed.has(s))) throw new errors.InvalidScope('scope not allowed', params.scope);
  const act = { sub: client.clientId };
  if (subject.act) act.act = subject.act;
  const token = new ctx.oidc.provider.AccessToken({
    accountId: subject.sub,
    client,
    gty: 'token_exchange',
    scope: wanted.join(' '),
  });
  // Read by extraTokenClaims below when the token is formatted.
  token.exchangeAct = act;
  token.resourceServer = new ctx.oidc.provider.ResourceServer(resource, info);
  const value = await token.save();
  exchanges += 1;
  ctx.body = {
    access_token: value,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: token.scope,
  };
}

let generation = 0;

/** One fresh private signing JWK per algorithm. */
async function newKeys() {
  generation += 1;
  const keys = [];
  for (const alg of ALGS) {
    const { privateKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = await exportJWK(privateKey);
    jwk.kid = `${alg.toLowerCase()}-g${generation}-${randomBytes(6).toString('hex')}`;
    jwk.alg = alg;
    jwk.use = 'sig';
    keys.push(jwk);
  }
  return keys;
}

function buildProvider(issuer, keys) {
  const built = new Provider(issuer, {
    clients,
    jwks: { keys },
    scopes: ['openid', 'offline_access', SCOPE, ...(MCP ? [...MCP_SCOPES.split(' '), 'downstream:read'] : [])],
    rotateRefreshToken: true,
    ...(MCP ? { extraTokenClaims: (ctx, token) => (token.exchangeAct ? { act: token.exchangeAct } : undefined) } : {}),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      jwtIntrospection: { enabled: true },
      revocation: { enabled: true },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        getCertificate(ctx) {
          const der = ctx.get('x-test-client-cert');
          return der ? new X509Certificate(Buffer.from(der, 'base64')) : undefined;
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCES[0],
        getResourceServerInfo(ctx, resourceIndicator, client) {
          const mcp = mcpResourceInfo(resourceIndicator);
          if (mcp) return mcp;
          if (resourceIndicator === OPAQUE) {
            return {
              scope: SCOPE,
              audience: OPAQUE,
              accessTokenTTL: 300,
              accessTokenFormat: 'opaque',
            };
          }
          if (resourceIndicator === ENCRYPTED) {
            return {
              scope: SCOPE,
              audience: ENCRYPTED,
              accessTokenTTL: 300,
              accessTokenFormat: 'jwt',
              jwt: {
                sign: { alg: clientAlg[client.clientId] },
                encrypt: { alg: 'RSA-OAEP-256', enc: 'A256GCM', key: ENCRYPTION_KEY, kid: 'rsa' },
              },
            };
          }
          if (!RESOURCES.includes(resourceIndicator)) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: SCOPE,
            audience: resourceIndicator,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: clientAlg[client.clientId] } },
          };
        },
      },
    },
  });
  if (MCP) {
    built.registerGrantType(EXCHANGE, tokenExchange, [
      'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type',
      'requested_token_type', 'resource', 'audience', 'scope',
    ]);
  }
  return built;
}

/**
 * A refresh token of client-web, stored as the authorization_code grant
 * stores the one it issues: a grant of openid offline_access and the
 * opaque resource's scope to the account alice.
 */
async function grantRefreshToken() {
  const client = await provider.Client.find('client-web');
  const grant = new provider.Grant({ accountId: 'alice', clientId: client.clientId });
  grant.addOIDCScope('openid offline_access');
  grant.addResourceScope(OPAQUE, SCOPE);
  const grantId = await grant.save();
  const token = new provider.RefreshToken({
    accountId: 'alice',
    authTime: Math.floor(Date.now() / 1000),
    client,
    grantId,
    gty: 'authorization_code',
    resource: OPAQUE,
    rotations: 0,
    scope: `openid offline_access ${SCOPE}`,
  });
  return token.save();
}

/** The kids that sign now: the first key of each algorithm. */
function signingKids(keys) {
  return Object.fromEntries(ALGS.map((alg) => [alg, keys.find((k) => k.alg === alg).kid]));
}

let keys = await newKeys();
let provider;
let handler;

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/__grant' && req.method === 'POST') {
    req.resume();
    grantRefreshToken().then((refreshToken) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ refresh_token: refreshToken }));
    }, (err) => {
      console.error(err);
      res.writeHead(500).end(String(err));
    });
    return;
  }
  if (MCP && url.pathname === '/__exchanges' && req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ count: exchanges }));
    return;
  }
  if (url.pathname === '/__rotate' && req.method === 'POST') {
    req.resume();
    newKeys().then((fresh) => {
      keys = url.searchParams.has('retire') ? fresh : [...fresh, ...keys];
      provider = buildProvider(provider.issuer, keys);
      handler = provider.callback();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kids: signingKids(keys) }));
    }, (err) => {
      console.error(err);
      res.writeHead(500).end(String(err));
    });
    return;
  }
  handler(req, res);
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  provider = buildProvider(issuer, keys);
  handler = provider.callback();
  const ready = {
    issuer,
    kids: signingKids(keys),
    client_key: { kid: clientKey.jwk.kid, pem: clientKey.pem },
  };
  process.stdout.write(`READY ${JSON.stringify(ready)}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
setTimeout(() => process.exit(0), 5 * 60 * 1000).unref();
