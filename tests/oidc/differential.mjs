// The jose side of the differential suite (tests/differential/): one
// long-lived process that answers one JSON line on stdout for each JSON line
// on stdin, in order. Started by tests/differential/jose.rs.
//
//   {"op":"init","keys":[{"kid","alg","secret"|"spki"}],"issuer","audience"}
//       -> {"ok":true,"version":"6.x.y","node":"v20..."}
//   {"op":"jwt","token","now","leeway"}
//       -> jwtVerify with the key set, issuer, audience, `exp` required,
//          clockTolerance = leeway, currentDate = now (seconds)
//   {"op":"jws","token","jwk"|"jwks","alg"?}
//       -> compactVerify: the signature level only (for the public vectors,
//          whose payloads are not claims sets)
//   {"op":"raw","alg":"ES256"|"EdDSA","jwk","msg","sig"}  (msg, sig in hex)
//       -> WebCrypto verify of a raw signature, the engine jose uses
//   {"op":"encrypt","plaintext","spki","alg","enc","kid"?,"cty"?}
//       -> {"ok":true,"jwe"}: CompactEncrypt to the public key (tests/it/jwe.rs)
//   {"op":"decrypt","jwe","pkcs8","alg"}
//       -> {"ok":true,"plaintext"}: compactDecrypt, jose's verdict on a JWE
// Every answer is {"ok":true} or {"ok":false,"err":"<code>: <message>"}.
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import * as jose from 'jose';

const joseVersion = JSON.parse(
  readFileSync(new URL('./node_modules/jose/package.json', import.meta.url), 'utf8'),
).version;

let config = null;

// The same key selection as tower-jwt-auth's KeySet (src/key/mod.rs) and the
// jsonwebtoken glue in tests/differential/oracles.rs: a `kid` picks the keys
// with that kid (none: unknown kid), then those bound to the token's `alg`;
// without a `kid`, the keys bound to the `alg`. Like jose's own JWKS
// selection, a `kid` that is not a string matches nothing.
function selectKey(header) {
  const { alg, kid } = header;
  let named = config.keys;
  if (kid !== undefined) {
    if (typeof kid !== 'string') throw new jose.errors.JWKSNoMatchingKey();
    named = named.filter((k) => k.kid === kid);
    if (named.length === 0) throw new jose.errors.JWKSNoMatchingKey('unknown kid');
  }
  const fitting = named.filter((k) => k.alg === alg);
  if (fitting.length === 0) throw new jose.errors.JWKSNoMatchingKey('no key for the alg');
  return fitting[0].key;
}

async function init(req) {
  const keys = [];
  for (const k of req.keys) {
    const key = k.secret !== undefined
      ? Buffer.from(k.secret, 'base64')
      : await jose.importSPKI(k.spki, k.alg);
    keys.push({ kid: k.kid, alg: k.alg, key });
  }
  config = {
    keys,
    algorithms: [...new Set(req.keys.map((k) => k.alg))],
    issuer: req.issuer,
    audience: req.audience,
  };
  return { ok: true, version: joseVersion, node: process.version };
}

async function jwt(req) {
  await jose.jwtVerify(req.token, async (header) => selectKey(header), {
    algorithms: config.algorithms,
    issuer: config.issuer,
    audience: config.audience,
    requiredClaims: ['exp'],
    clockTolerance: req.leeway,
    currentDate: new Date(req.now * 1000),
  });
  return { ok: true };
}

async function jws(req) {
  let key;
  if (req.jwks !== undefined) {
    key = jose.createLocalJWKSet(req.jwks);
  } else {
    // A JWK's own `alg` binds it; without one, the token's (as the Rust side does).
    key = async (header) => jose.importJWK(req.jwk, req.jwk.alg ?? header.alg);
  }
  await jose.compactVerify(req.token, key, req.alg ? { algorithms: [req.alg] } : undefined);
  return { ok: true };
}

async function raw(req) {
  const algorithm = req.alg === 'ES256'
    ? { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
    : { name: 'Ed25519' };
  const key = await crypto.subtle.importKey('jwk', req.jwk, algorithm, false, ['verify']);
  const ok = await crypto.subtle.verify(
    algorithm,
    key,
    Buffer.from(req.sig, 'hex'),
    Buffer.from(req.msg, 'hex'),
  );
  return ok ? { ok: true } : { ok: false, err: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED: raw' };
}

async function encrypt(req) {
  const key = await jose.importSPKI(req.spki, req.alg);
  const header = { alg: req.alg, enc: req.enc };
  if (req.kid !== undefined) header.kid = req.kid;
  if (req.cty !== undefined) header.cty = req.cty;
  const jwe = await new jose.CompactEncrypt(new TextEncoder().encode(req.plaintext))
    .setProtectedHeader(header)
    .encrypt(key);
  return { ok: true, jwe };
}

async function decrypt(req) {
  const key = await jose.importPKCS8(req.pkcs8, req.alg);
  const { plaintext } = await jose.compactDecrypt(req.jwe, key);
  return { ok: true, plaintext: new TextDecoder().decode(plaintext) };
}

const ops = { init, jwt, jws, raw, encrypt, decrypt };

async function answer(line) {
  try {
    const req = JSON.parse(line);
    const op = ops[req.op];
    if (!op) return { ok: false, err: `bad_request: unknown op ${req.op}` };
    if (req.op !== 'init' && config === null && req.op === 'jwt') {
      return { ok: false, err: 'bad_request: init first' };
    }
    return await op(req);
  } catch (e) {
    return { ok: false, err: `${e.code ?? e.name}: ${e.message}` };
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (line.length === 0) continue;
  process.stdout.write(`${JSON.stringify(await answer(line))}\n`);
}
