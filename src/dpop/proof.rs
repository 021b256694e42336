//! The DPoP proof itself (RFC 9449 §4.2, §4.3): a compact JWS with
//! `typ: dpop+jwt`, an asymmetric `alg` from the allow-list and the
//! public key that signed it in its `jwk` header; and the RFC 7638
//! thumbprint of that key.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::algorithm::Algorithm;
use crate::b64;
use crate::claims::{NumericDate, Text};
use crate::error::AuthError;
use crate::key::Key;
use crate::token::{Present, is_json_object, typ_matches};

/// The longest proof read: real ones are well under 2 KiB (an RSA-4096
/// `jwk` included).
pub(crate) const MAX_PROOF_LEN: usize = 8 * 1024;
/// The longest `jti` accepted (it is stored for the replay check).
pub(crate) const MAX_JTI_LEN: usize = 256;

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    typ: Option<Text<'a>>,
    #[serde(borrow)]
    alg: Option<Text<'a>>,
    jwk: Option<Value>,
    #[serde(default)]
    crit: Present,
    #[serde(default)]
    jku: Present,
    #[serde(default)]
    x5u: Present,
    #[serde(default)]
    x5c: Present,
    #[serde(default)]
    b64: Option<bool>,
}

#[derive(Deserialize)]
struct RawClaims<'a> {
    #[serde(borrow)]
    jti: Option<Text<'a>>,
    #[serde(borrow)]
    htm: Option<Text<'a>>,
    #[serde(borrow)]
    htu: Option<Text<'a>>,
    iat: Option<NumericDate>,
    #[serde(borrow)]
    ath: Option<Text<'a>>,
    #[serde(borrow)]
    nonce: Option<Text<'a>>,
}

/// A proof whose signature verified with its own `jwk`.
#[derive(Debug)]
pub(crate) struct Proof {
    pub(crate) jkt: String,
    pub(crate) jti: String,
    pub(crate) htm: String,
    pub(crate) htu: String,
    pub(crate) iat: f64,
    pub(crate) ath: Option<String>,
    pub(crate) nonce: Option<String>,
}

const fn bad(why: &'static str) -> AuthError {
    AuthError::InvalidDpopProof(why)
}

/// Parses a proof, checks its header and its signature by its own `jwk`,
/// and reads its claims (their values are checked by the caller).
pub(crate) fn verify(proof: &str, allowed: &[Algorithm]) -> Result<Proof, AuthError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(bad("the proof is too large"));
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("a proof is a JWS of three dot-separated parts"));
    };
    if header_b64.is_empty() || payload_b64.is_empty() || signature_b64.is_empty() {
        return Err(bad("empty header, payload or signature"));
    }
    let header_json =
        b64::decode(header_b64.as_bytes()).ok_or(bad("the header is not strict base64url"))?;
    if !is_json_object(&header_json) {
        return Err(bad("the header is not a JSON object"));
    }
    let header: RawHeader<'_> = serde_json::from_slice(&header_json)
        .map_err(|_| bad("the header is not a valid JOSE header"))?;
    if header.crit.0 || header.b64.is_some() {
        return Err(bad("the header has critical extensions"));
    }
    if header.jku.0 || header.x5u.0 || header.x5c.0 {
        return Err(bad("the key must be given as `jwk`, nothing else"));
    }
    // §4.3 (4): typ is dpop+jwt.
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| typ_matches(t, "dpop+jwt"))
    {
        return Err(bad("`typ` is not dpop+jwt"));
    }
    // §4.3 (5): an asymmetric algorithm from the allow-list.
    let alg_name = header.alg.ok_or(bad("the header has no `alg`"))?;
    let alg = Algorithm::from_header(&alg_name)
        .filter(|a| allowed.contains(a))
        .ok_or(bad("the proof algorithm is not allowed"))?;
    // §4.3 (6): a public key, signature by that key.
    let jwk = header.jwk.ok_or(bad("the header has no `jwk`"))?;
    if !jwk.is_object() {
        return Err(bad("`jwk` is not a JSON object"));
    }
    let key = Key::from_jwk_for(alg, &jwk.to_string())
        .map_err(|_| bad("`jwk` is not a public key for the proof algorithm"))?;
    let signature =
        b64::decode(signature_b64.as_bytes()).ok_or(bad("the signature is not base64url"))?;
    let signing_input = &proof[..header_b64.len() + 1 + payload_b64.len()];
    if !key.verify(signing_input.as_bytes(), &signature) {
        return Err(bad("the proof signature does not verify with its `jwk`"));
    }
    let jkt = thumbprint(&jwk).ok_or(bad("`jwk` lacks a member its thumbprint needs"))?;

    let payload =
        b64::decode(payload_b64.as_bytes()).ok_or(bad("the payload is not strict base64url"))?;
    if !is_json_object(&payload) {
        return Err(bad("the payload is not a JSON object"));
    }
    let claims: RawClaims<'_> = serde_json::from_slice(&payload)
        .map_err(|_| bad("the payload is not valid (bad JSON, wrong types or a repeated claim)"))?;
    let jti = claims.jti.ok_or(bad("the proof has no `jti`"))?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(bad("the proof `jti` is empty or too long"));
    }
    Ok(Proof {
        jkt,
        jti: jti.0.into_owned(),
        htm: claims
            .htm
            .ok_or(bad("the proof has no `htm`"))?
            .0
            .into_owned(),
        htu: claims
            .htu
            .ok_or(bad("the proof has no `htu`"))?
            .0
            .into_owned(),
        iat: claims.iat.ok_or(bad("the proof has no `iat`"))?.0,
        ath: claims.ath.map(|t| t.0.into_owned()),
        nonce: claims.nonce.map(|t| t.0.into_owned()),
    })
}

/// The RFC 7638 thumbprint of a public JWK: base64url(SHA-256) of its
/// required members, in lexicographic order, without whitespace.
pub(crate) fn thumbprint(jwk: &Value) -> Option<String> {
    let names: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut members = BTreeMap::new();
    for name in names {
        members.insert(*name, jwk.get(*name)?.as_str()?);
    }
    let canonical = serde_json::to_string(&members).ok()?;
    Some(b64::sha256(canonical.as_bytes()))
}

/// `htu` without query and fragment, with the scheme and host lowercased
/// and a default port dropped (RFC 9449 §4.3 (9), RFC 3986 §6.2.2-6.2.3).
/// `None` when it is not an absolute `http(s)` URI.
pub(crate) fn normalize_htu(htu: &str) -> Option<String> {
    let end = htu.find(['?', '#']).unwrap_or(htu.len());
    let uri: http::Uri = htu[..end].parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    let port = match authority.port_u16() {
        Some(p) if p != default_port => format!(":{p}"),
        _ => String::new(),
    };
    let path = match uri.path() {
        "" => "/",
        p => p,
    };
    Some(format!("{scheme}://{host}{port}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk: Value = serde_json::from_str(r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#).unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let no_y: Value = serde_json::from_str(r#"{"kty":"EC","crv":"P-256","x":"a"}"#).unwrap();
        assert!(thumbprint(&no_y).is_none());
    }

    #[test]
    fn htu_normalization() {
        assert_eq!(
            normalize_htu("HTTPS://Api.Example.com:443/r?x=1#f").as_deref(),
            Some("https://api.example.com/r")
        );
        assert_eq!(
            normalize_htu("http://h:8080").as_deref(),
            Some("http://h:8080/")
        );
        assert!(normalize_htu("/relative").is_none());
        assert!(normalize_htu("ftp://h/x").is_none());
        assert!(normalize_htu("https://u@h/x").is_none());
    }

    #[test]
    fn shapes_are_refused() {
        for p in ["", "a.b", "a.b.c.d", "a..c", &"a".repeat(MAX_PROOF_LEN + 1)] {
            assert!(verify(p, &[Algorithm::ES256]).is_err(), "{p}");
        }
    }
}
