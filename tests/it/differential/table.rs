//! The table of intended differences: every way our verifier may answer
//! otherwise than jsonwebtoken 11 or jose 6 for the same token, key set and
//! settings, each with its reason and the RFC clause. Any disagreement no
//! row explains fails the suite. docs/decisions/0001-own-compact-jws-parser.md
//! renders this table for readers; this is the one the suite enforces.
//!
//! Shared with the cargo-fuzz target `fuzz/fuzz_targets/differential.rs`
//! (included by path).
#![allow(dead_code)]

use super::facts::{Facts, Json};
use super::oracles::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Jsonwebtoken,
    Jose,
}

impl Peer {
    pub fn name(self) -> &'static str {
        match self {
            Peer::Jsonwebtoken => "jsonwebtoken",
            Peer::Jose => "jose",
        }
    }
}

/// Where a difference shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A token through the whole verifier (shown by `row_examples` in main.rs).
    Jwt,
    /// A public vector's signature with the vector's own key (shown by
    /// `public_vectors_agree`): key import and key sets.
    Signature,
}

/// One intended difference.
pub struct Difference {
    pub id: &'static str,
    pub level: Level,
    /// The verifiers that answer otherwise than ours.
    pub peers: &'static [Peer],
    /// `true`: ours accepts and the peers refuse; `false`: the other way round.
    pub ours_accepts: bool,
    /// When ours refuses: the refusal reasons (`AuthError::reason`) that
    /// this row accounts for.
    pub ours_reasons: &'static [&'static str],
    /// Whether the row applies to a token.
    pub applies: fn(&Facts) -> bool,
    pub what: &'static str,
    pub why: &'static str,
    pub rfc: &'static str,
}

use Peer::{Jose, Jsonwebtoken};

const BOTH: &[Peer] = &[Jsonwebtoken, Jose];

/// Header members whose duplicates our header reader refuses.
const READ_HEADER: [&str; 10] = [
    "alg", "kid", "typ", "cty", "crit", "b64", "jwk", "jku", "x5u", "x5c",
];
/// Registered claims, whose duplicates our claims reader refuses.
const REGISTERED: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

fn h(f: &Facts) -> &Json {
    static EMPTY: Json = Json::Null;
    f.h().unwrap_or(&EMPTY)
}

fn p(f: &Facts) -> &Json {
    static EMPTY: Json = Json::Null;
    f.p().unwrap_or(&EMPTY)
}

pub static DIFFERENCES: &[Difference] = &[
    // ------------------------------------------------ the header: we refuse
    Difference {
        id: "crit",
        level: Level::Jwt,
        peers: &[Jsonwebtoken],
        ours_accepts: false,
        ours_reasons: &["unsupported_crit", "malformed"],
        applies: |f| f.header_has("crit"),
        what: "a `crit` header member, whatever it lists",
        why: "we implement no JWS extension, so any `crit` names one we do not \
              understand; jsonwebtoken ignores `crit` altogether",
        rfc: "RFC 7515 §4.1.11 (recipients MUST reject unknown critical extensions)",
    },
    Difference {
        id: "crit-b64",
        level: Level::Jwt,
        peers: &[Jose],
        ours_accepts: false,
        ours_reasons: &["unsupported_crit"],
        applies: |f| {
            matches!(h(f).get("crit"), Some(Json::Arr(c)) if c.len() == 1 && c[0].as_str() == Some("b64"))
                && h(f).get("b64") == Some(&Json::Bool(true))
        },
        what: "`crit: [\"b64\"]` with `b64: true`",
        why: "jose implements RFC 7797 and accepts this no-op use of it; a JWT \
              never needs the extension, so we refuse every `crit`",
        rfc: "RFC 7797 §6, §7; RFC 7515 §4.1.11",
    },
    Difference {
        id: "b64",
        level: Level::Jwt,
        peers: BOTH,
        ours_accepts: false,
        // `malformed` when it is repeated (jsonwebtoken keeps it untyped).
        ours_reasons: &["unsupported_crit", "malformed"],
        applies: |f| f.header_has("b64"),
        what: "a `b64` header member (any value) without `crit`",
        why: "without `crit` the member is meaningless, and a JWT never uses an \
              unencoded payload; the others ignore it",
        rfc: "RFC 7797 §3, §6 (b64 MUST be listed in crit), §7 (JWTs use b64 = true)",
    },
    Difference {
        id: "key-reference",
        level: Level::Jwt,
        peers: BOTH,
        ours_accepts: false,
        ours_reasons: &["forbidden_header"],
        applies: |f| ["jwk", "jku", "x5u", "x5c"].iter().any(|m| f.header_has(m)),
        what: "a `jwk`, `jku`, `x5u` or `x5c` header member",
        why: "the header must not be able to choose the key; the others ignore \
              these members when keys are configured (jsonwebtoken refuses them \
              only when they do not fit its types)",
        rfc: "RFC 8725 §3.10; RFC 7515 §4.1.2-4.1.6 (their use is optional), §10.3",
    },
    Difference {
        id: "nested-jwt",
        level: Level::Jwt,
        peers: BOTH,
        ours_accepts: false,
        ours_reasons: &["malformed"],
        applies: |f| {
            h(f).get("cty").and_then(Json::as_str).is_some_and(|c| {
                c.eq_ignore_ascii_case("JWT") || c.eq_ignore_ascii_case("application/jwt")
            })
        },
        what: "`cty: JWT` or `application/jwt` (a nested token)",
        why: "the payload of a nested token is another token, not claims; we \
              refuse rather than read the outer payload as claims",
        rfc: "RFC 7519 §5.2, §7.2 step 8",
    },
    Difference {
        id: "duplicate-header-member",
        level: Level::Jwt,
        peers: &[Jose],
        ours_accepts: false,
        ours_reasons: &["malformed"],
        applies: |f| READ_HEADER.iter().any(|m| h(f).repeated(m)),
        what: "a header member we read (`alg`, `kid`, `typ`, `cty`, `crit`, `b64`, key references) twice",
        why: "we refuse instead of keeping the last: two readers of one token \
              must never see two headers. jose (JSON.parse) keeps the last; \
              jsonwebtoken refuses as we do",
        rfc: "RFC 7515 §4 (MUST reject, or keep the lexically last); RFC 8725 §3.1",
    },
    Difference {
        id: "header-member-types",
        level: Level::Jwt,
        peers: &[Jose],
        ours_accepts: false,
        ours_reasons: &["malformed"],
        applies: |f| h(f).non_string("typ") || h(f).non_string("cty"),
        what: "`typ` or `cty` that is not a string (`null` included)",
        why: "a header member of the wrong type is a malformed header; jose reads \
              `typ` only when a type is required and never reads `cty`",
        rfc: "RFC 7515 §4.1.9, §4.1.10 (values are strings)",
    },
    Difference {
        id: "null-header-member",
        level: Level::Jwt,
        peers: &[Jsonwebtoken],
        ours_accepts: false,
        ours_reasons: &["malformed"],
        applies: |f| ["kid", "typ", "cty"].iter().any(|m| h(f).null(m)),
        what: "`kid`, `typ` or `cty` given as `null`",
        why: "`null` is not a string; jsonwebtoken's `Option<String>` fields read \
              it as an absent member",
        rfc: "RFC 7515 §4.1.4, §4.1.9, §4.1.10",
    },
    // ------------------------------------------------ the encoding: we refuse
    Difference {
        id: "strict-base64url",
        level: Level::Jwt,
        peers: &[Jose],
        ours_accepts: false,
        ours_reasons: &["malformed", "bad_signature"],
        applies: |f| f.noncanonical_b64(),
        what: "base64url with `=` padding, whitespace (also around the token) or non-zero stray bits",
        why: "one token, one spelling: a lenient decoder accepts many texts for \
              the same signed bytes. jsonwebtoken decodes as strictly as we do; \
              jose on Node.js 20 decodes with `atob`, which forgives all three",
        rfc: "RFC 7515 §2 and §7.1 (base64url, no padding, no whitespace); RFC 4648 §3.3, §3.5",
    },
    Difference {
        id: "byte-order-mark",
        level: Level::Jwt,
        peers: &[Jose],
        ours_accepts: false,
        ours_reasons: &["malformed"],
        applies: |f| f.header.bom || f.payload.bom,
        what: "a UTF-8 byte-order mark before the header or payload JSON",
        why: "JSON text in a token has no BOM; jose's TextDecoder drops it silently",
        rfc: "RFC 8259 §8.1 (MUST NOT add a BOM); RFC 7515 §7.1",
    },
    // ------------------------------------------------ the claims: we refuse
    Difference {
        id: "duplicate-claim",
        level: Level::Jwt,
        peers: &[Jose],
        ours_accepts: false,
        ours_reasons: &["invalid_claim"],
        applies: |f| REGISTERED.iter().any(|m| p(f).repeated(m)),
        what: "a registered claim (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`) twice",
        why: "as for header members: jose keeps the last",
        rfc: "RFC 7519 §4 (MUST reject, or keep the lexically last)",
    },
    Difference {
        id: "duplicate-unvalidated-claim",
        level: Level::Jwt,
        peers: &[Jsonwebtoken],
        ours_accepts: false,
        ours_reasons: &["invalid_claim"],
        applies: |f| p(f).repeated("iat") || p(f).repeated("jti"),
        what: "`iat` or `jti` twice",
        why: "jsonwebtoken refuses duplicates only of the claims it validates \
              (`exp`, `nbf`, `sub`, `iss`, `aud`), as we do",
        rfc: "RFC 7519 §4",
    },
    Difference {
        id: "claim-types",
        level: Level::Jwt,
        peers: BOTH,
        ours_accepts: false,
        ours_reasons: &["invalid_claim"],
        applies: |f| p(f).non_string("sub") || p(f).non_string("jti"),
        what: "`sub` or `jti` that is not a string (`null` included)",
        why: "every registered claim must have its registered type, whether or \
              not a rule reads it (the application will); jsonwebtoken reads \
              `sub` only when a subject is required and never reads `jti`, jose \
              reads neither",
        rfc: "RFC 7519 §4.1.2, §4.1.7 (StringOrURI, case-sensitive string)",
    },
    Difference {
        id: "iat-type",
        level: Level::Jwt,
        peers: &[Jsonwebtoken],
        ours_accepts: false,
        ours_reasons: &["invalid_claim"],
        applies: |f| p(f).non_number("iat") || p(f).get("iat").is_some_and(Json::beyond_serde),
        what: "`iat` that is not a number (`null` included)",
        why: "jsonwebtoken never reads `iat`; jose refuses it as we do",
        rfc: "RFC 7519 §4.1.6 (NumericDate)",
    },
    Difference {
        id: "iss-array",
        level: Level::Jwt,
        peers: &[Jsonwebtoken],
        ours_accepts: false,
        ours_reasons: &["invalid_claim"],
        applies: |f| matches!(p(f).get("iss"), Some(Json::Arr(_))),
        what: "`iss` as an array of strings",
        why: "`iss` is one StringOrURI; jsonwebtoken accepts an array holding the \
              expected issuer",
        rfc: "RFC 7519 §4.1.1",
    },
    Difference {
        id: "aud-member-types",
        level: Level::Jwt,
        peers: &[Jose],
        ours_accepts: false,
        ours_reasons: &["invalid_claim"],
        applies: |f| match p(f).get("aud") {
            Some(Json::Arr(items)) => items.iter().any(|v| !matches!(v, Json::Str(..))),
            _ => false,
        },
        what: "`aud` as an array with a member that is not a string",
        why: "`aud` is a string or an array of strings; jose accepts any array \
              that holds the expected audience",
        rfc: "RFC 7519 §4.1.3",
    },
    Difference {
        id: "beyond-serde-claims",
        level: Level::Jwt,
        peers: &[Jose],
        ours_accepts: false,
        ours_reasons: &["invalid_claim", "claims_shape", "malformed"],
        applies: |f| {
            f.p()
                .is_some_and(|p| p.beyond_serde() || p.depth() >= SERDE_DEPTH)
        },
        what: "claims with a number beyond the double range (`1e400`), a lone surrogate (`\"\\ud800\"`) or nesting deeper than 127",
        why: "JSON that a standard parser refuses is not a claims set; JSON.parse \
              reads 1e400 as Infinity (jose then takes `exp: 1e400` as never \
              expiring), keeps lone surrogates and nests much deeper. \
              jsonwebtoken refuses as we do",
        rfc: "RFC 7493 §2.1, §2.2 (I-JSON); RFC 8259 §9 (parsers may limit depth); RFC 7519 §7.2 step 10",
    },
    Difference {
        id: "exp-edge",
        level: Level::Jwt,
        peers: &[Jsonwebtoken],
        ours_accepts: false,
        ours_reasons: &["expired"],
        applies: |f| {
            let edge = (f.now - f.leeway) as f64;
            f.time("exp")
                .is_some_and(|e| e <= edge && e.round() >= edge)
        },
        what: "`exp + leeway` equal to the current second (or `exp` within half a second below that)",
        why: "the current time must be before `exp`; jsonwebtoken accepts at \
              `now == exp + leeway` and rounds fractional times. jose decides as we do",
        rfc: "RFC 7519 §4.1.4 (\"MUST be before\")",
    },
    Difference {
        id: "iat-in-future",
        level: Level::Jwt,
        peers: BOTH,
        ours_accepts: false,
        ours_reasons: &["issued_in_future"],
        applies: |f| {
            f.time("iat")
                .is_some_and(|iat| iat > (f.now + f.leeway) as f64)
        },
        what: "`iat` more than the leeway in the future",
        why: "a token cannot have been issued after now; one that says so comes \
              from a wrong clock or is built to outlive a revocation by subject \
              and issue time (`revoke_subject`). PyJWT refuses it too; \
              jsonwebtoken never reads `iat`, jose only with `maxTokenAge`",
        rfc: "RFC 7519 §4.1.6 (policy: the RFC defines iat, not its check)",
    },
    // ------------------------------------------------ we accept, by design
    Difference {
        id: "es512",
        level: Level::Jwt,
        peers: &[Jsonwebtoken],
        ours_accepts: true,
        ours_reasons: &[],
        applies: |f| f.alg() == Some("ES512"),
        what: "ES512 (ECDSA P-521)",
        why: "jsonwebtoken 11 does not implement ES512",
        rfc: "RFC 7518 §3.1, §3.4",
    },
    Difference {
        id: "numeric-date-range",
        level: Level::Jwt,
        peers: &[Jsonwebtoken],
        ours_accepts: true,
        ours_reasons: &[],
        applies: |f| {
            ["exp", "nbf"].iter().any(|m| match p(f).get(m) {
                Some(Json::Num(_, text)) => !jsonwebtoken_reads_numeric_date(text),
                _ => false,
            })
        },
        what: "`exp` / `nbf` negative (also `-0`) or at least 2^64",
        why: "a NumericDate is any JSON number; jsonwebtoken reads them into a \
              u64 and refuses the rest. jose accepts them as we do",
        rfc: "RFC 7519 §2 (NumericDate), §4.1.4, §4.1.5",
    },
    Difference {
        id: "jsonwebtoken-header-struct",
        level: Level::Jwt,
        peers: &[Jsonwebtoken],
        ours_accepts: true,
        ours_reasons: &[],
        applies: |f| {
            TYPED_BY_JSONWEBTOKEN.iter().any(|m| {
                h(f).repeated(m)
                    || h(f)
                        .get(m)
                        .is_some_and(|v| !matches!(v, Json::Str(..) | Json::Null))
            })
        },
        what: "`x5t`, `x5t#S256`, `enc`, `zip`, `url` or `nonce` not a string, or twice",
        why: "members we do not use are ignored; jsonwebtoken reads them into \
              typed fields and refuses the token when one does not fit. jose \
              ignores them as we do",
        rfc: "RFC 7515 §4 (ignore Header Parameters not understood)",
    },
    Difference {
        id: "ignored-header-members",
        level: Level::Jwt,
        peers: &[Jsonwebtoken],
        ours_accepts: true,
        ours_reasons: &[],
        applies: |f| {
            f.h()
                .is_some_and(|h| h.beyond_serde() || h.depth() >= SERDE_DEPTH)
        },
        what: "a header member we do not read holding `1e400`, a lone surrogate or nesting deeper than 127",
        why: "members we do not read are skipped without recursion, not parsed, \
              so no reader of ours can see them two ways; jsonwebtoken parses \
              every member into a serde_json::Value and refuses. jose accepts as \
              we do",
        rfc: "RFC 7515 §4 (ignore Header Parameters not understood)",
    },
    // ------------------------------------------------ public vectors: keys and signatures
    Difference {
        id: "empty-payload",
        level: Level::Signature,
        peers: BOTH,
        ours_accepts: false,
        ours_reasons: &["malformed"],
        applies: |f| f.vector.is_some() && f.segments == 3 && f.payload.text.is_empty(),
        what: "an empty payload (Wycheproof emptyPayload vectors)",
        why: "a JWS may sign nothing, a JWT may not: its payload is a claims \
              object, so the parser refuses before any key is used. As JWTs, \
              all three refuse them",
        rfc: "RFC 7519 §7.2 steps 9-10",
    },
    Difference {
        id: "jwk-not-for-verification",
        level: Level::Signature,
        peers: BOTH,
        ours_accepts: false,
        ours_reasons: &["key"],
        applies: |f| {
            vector_jwks(f).any(|k| {
                k.get("use").is_some_and(|u| u != "sig")
                    || k.get("key_ops").is_some_and(|ops| {
                        !ops.as_array()
                            .is_some_and(|ops| ops.iter().any(|o| o == "verify"))
                    })
            })
        },
        what: "a JWK whose `use` is not `sig`, or whose `key_ops` lack `verify`",
        why: "a key published for encryption is not a verification key; \
              jsonwebtoken ignores both members, jose's importJWK ignores `use` \
              (its key sets honour it) and WebCrypto enforces `key_ops`",
        rfc: "RFC 7517 §4.2, §4.3",
    },
    Difference {
        id: "symmetric-key-in-set",
        level: Level::Signature,
        peers: &[Jsonwebtoken],
        ours_accepts: false,
        ours_reasons: &["key", "alg_not_allowed"],
        applies: |f| {
            f.vector.as_ref().is_some_and(|v| v.set.is_some())
                && vector_jwks(f).any(|k| k["kty"] == "oct")
        },
        what: "an `oct` (HMAC) member in a key set",
        why: "a published key set never holds a shared secret; using one turns \
              a public document into a forging key. jose refuses as we do; \
              jsonwebtoken's JwkSet hands it out",
        rfc: "RFC 8725 §3.1, §3.2; RFC 7517 §8.1",
    },
    Difference {
        id: "jwk-curve",
        level: Level::Signature,
        peers: &[Jsonwebtoken],
        ours_accepts: false,
        ours_reasons: &["key"],
        applies: |f| {
            vector_jwks(f).any(|k| {
                let fits = match k["alg"].as_str() {
                    Some("ES256") => "P-256",
                    Some("ES384") => "P-384",
                    Some("ES512") => "P-521",
                    _ => return false,
                };
                k["crv"].as_str() != Some(fits)
            })
        },
        what: "an EC JWK whose `crv` does not fit its `alg`",
        why: "the key is not what it says; jsonwebtoken ignores `crv` and uses \
              the coordinates as they come, jose refuses as we do",
        rfc: "RFC 7518 §6.2.1.1, §3.4",
    },
    Difference {
        id: "rsa-exponent-one",
        level: Level::Signature,
        peers: &[Jose],
        ours_accepts: false,
        ours_reasons: &["key"],
        applies: |f| vector_jwks(f).any(|k| k["kty"] == "RSA" && k["e"] == "AQ"),
        what: "an RSA key with public exponent 1 (Wycheproof rejectsPublicExponent1)",
        why: "with e = 1 a signature is the padded message itself: anyone can \
              forge one. Node.js WebCrypto (under jose) imports the key and \
              accepts the forged signature, a bug on their side; jsonwebtoken's \
              aws-lc refuses the signature, we refuse the key",
        rfc: "RFC 8017 §3.1 (e in [3, n-1]); RFC 7518 §3.3",
    },
];

/// The JWKs a public vector is verified with (the key, or the set's members).
fn vector_jwks(f: &Facts) -> impl Iterator<Item = &serde_json::Value> {
    let v = f.vector.as_ref();
    let one = v.and_then(|v| v.jwk.as_ref());
    let set = v
        .and_then(|v| v.set.as_ref())
        .and_then(|s| s["keys"].as_array())
        .into_iter()
        .flatten();
    one.into_iter().chain(set)
}

/// serde_json's nesting limit: 128 levels refuse.
const SERDE_DEPTH: usize = 128;

/// Header members jsonwebtoken's `Header` types although we never read them.
const TYPED_BY_JSONWEBTOKEN: [&str; 6] = ["x5t", "x5t#S256", "enc", "zip", "url", "nonce"];

/// Whether jsonwebtoken 11 reads this number as a NumericDate: an integer
/// that fits a u64 (not negative: `-0` is an i64), or a float in `[0, 2^64)`.
fn jsonwebtoken_reads_numeric_date(text: &str) -> bool {
    if text.starts_with('-') && !text.contains(['.', 'e', 'E']) {
        return false;
    }
    if !text.contains(['.', 'e', 'E']) && text.parse::<u64>().is_ok() {
        return true;
    }
    text.parse::<f64>()
        .is_ok_and(|v| v.is_finite() && v >= 0.0 && v < u64::MAX as f64)
}

/// The row that explains `peer` answering otherwise than ours, if any.
pub fn explain(f: &Facts, peer: Peer, ours: &Verdict) -> Option<&'static Difference> {
    DIFFERENCES.iter().find(|d| {
        d.peers.contains(&peer)
            && d.ours_accepts == ours.accepted()
            && match ours {
                Verdict::Accept => true,
                Verdict::Refuse(why) => d
                    .ours_reasons
                    .iter()
                    .any(|r| why.starts_with(&format!("{r}:"))),
            }
            && (d.applies)(f)
    })
}
