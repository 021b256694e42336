//! Base64 and SHA-256, each in one place: the only module that names the
//! `base64` crate or `aws_lc_rs::digest`.
//!
//! Decoding is strict base64url (RFC 4648 §5) without padding, as JWS
//! requires: no `=`, no whitespace, no characters outside the alphabet, no
//! non-zero trailing bits.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Decodes strict unpadded base64url, or `None`. The vector is exactly as
/// long as the data (no spare capacity), so turning it into a boxed
/// string does not reallocate.
pub(crate) fn decode(input: &[u8]) -> Option<Vec<u8>> {
    let len = match input.len() % 4 {
        0 => input.len() / 4 * 3,
        2 => input.len() / 4 * 3 + 1,
        3 => input.len() / 4 * 3 + 2,
        _ => return None,
    };
    let mut out = vec![0u8; len];
    let n = URL_SAFE_NO_PAD.decode_slice(input, &mut out).ok()?;
    (n == len).then_some(out)
}

/// Decodes into `out`, returning the decoded length, or `None` when the
/// input is not strict base64url or does not fit.
pub(crate) fn decode_into(input: &[u8], out: &mut [u8]) -> Option<usize> {
    if input.len().div_ceil(4) * 3 > out.len() {
        return None;
    }
    URL_SAFE_NO_PAD.decode_slice(input, out).ok()
}

/// Unpadded base64url of `bytes` (JWS segments, random ids, nonces).
pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Padded standard base64 of `bytes` (HTTP Basic credentials).
#[cfg(feature = "introspection")]
pub(crate) fn encode_standard(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The SHA-256 of the concatenation of `parts`: the one SHA-256 helper
/// (key fingerprints, introspection cache keys, and through
/// [`sha256`] thumbprints, `ath` and token ids).
pub(crate) fn sha256_digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Base64url (unpadded) of the SHA-256 of `bytes`: DPoP's `ath` and
/// thumbprints, and the token id of a token without `jti`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    encode(sha256_digest(&[bytes]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict() {
        assert_eq!(decode(b"YWI").unwrap(), b"ab");
        assert!(decode(b"YWI=").is_none(), "padding");
        assert!(decode(b"YW I").is_none(), "space");
        assert!(decode(b"YWJ").is_none(), "non-zero trailing bits");
        assert!(decode(b"YW+/").is_none(), "standard alphabet");
        assert!(decode(b"Y").is_none(), "impossible length");
        for (input, out) in [
            (&b""[..], &b""[..]),
            (b"YQ", b"a"),
            (b"YWJj", b"abc"),
            (b"YWJjZA", b"abcd"),
        ] {
            let v = decode(input).unwrap();
            assert_eq!(
                (v.as_slice(), v.capacity()),
                (out, out.len()),
                "exact length"
            );
        }
        assert_eq!(encode(b"ab"), "YWI");
        assert_eq!(encode_standard([0xfbu8, 0xff]), "+/8=");
        // FIPS 180-2 test vector, whole and in parts.
        assert_eq!(
            sha256(b"abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert_eq!(sha256_digest(&[b"a", b"", b"bc"]), sha256_digest(&[b"abc"]));
        let mut buf = [0u8; 3];
        assert_eq!(decode_into(b"YWI", &mut buf), Some(2));
        assert_eq!(decode_into(b"YWJjZA", &mut buf), None);
    }
}
