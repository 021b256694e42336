//! Strict base64url (RFC 4648 §5) without padding, as JWS requires: no `=`,
//! no whitespace, no characters outside the alphabet, no non-zero trailing bits.

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

/// Base64url (unpadded) of the SHA-256 of `bytes`: DPoP's `ath` and
/// thumbprints, and the token id of a token without `jti`.
#[cfg_attr(not(any(feature = "dpop", feature = "revocation")), allow(dead_code))]
pub(crate) fn sha256(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    URL_SAFE_NO_PAD.encode(digest.as_ref())
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
        let mut buf = [0u8; 3];
        assert_eq!(decode_into(b"YWI", &mut buf), Some(2));
        assert_eq!(decode_into(b"YWJjZA", &mut buf), None);
    }
}
