//! Just enough PEM and DER to recognise a public key: its type, its curve and
//! the size of an RSA modulus. The key bytes themselves are parsed and
//! checked again by aws-lc when the verification key is built.

use base64::Engine;

use crate::algorithm::Curve;

/// What a public key is, read from its encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKeyInfo {
    /// An RSA key with its modulus size in bits.
    Rsa {
        bits: usize,
    },
    /// An EC key on a supported curve.
    Ec(Curve),
    Ed25519,
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;

/// A reader over DER bytes that refuses anything it does not understand.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// Reads one TLV with the expected tag; returns its contents.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], String> {
        let (t, contents) = self.next_any()?;
        if t != tag {
            return Err(format!("expected DER tag {tag:#04x}, found {t:#04x}"));
        }
        Ok(contents)
    }

    fn next_any(&mut self) -> Result<(u8, &'a [u8]), String> {
        let input = self.0;
        let (&tag, rest) = input.split_first().ok_or("truncated DER")?;
        let (&first, rest) = rest.split_first().ok_or("truncated DER")?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return Err("unsupported DER length".into());
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err("truncated DER".into());
        }
        self.0 = &rest[len..];
        Ok((tag, &rest[..len]))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Bits in a big-endian unsigned integer (DER INTEGER contents, leading zero allowed).
pub(crate) fn integer_bits(bytes: &[u8]) -> usize {
    let trimmed = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => return 0,
    };
    (trimmed.len() - 1) * 8 + (8 - trimmed[0].leading_zeros() as usize)
}

/// Reads a PKCS#1 `RSAPublicKey` and returns the modulus size in bits.
pub(crate) fn rsa_public_key_bits(der: &[u8]) -> Result<usize, String> {
    let (n, e) = rsa_public_key_components(der)?;
    check_rsa_exponent(e)?;
    Ok(integer_bits(n))
}

/// The modulus `n` and exponent `e` of a PKCS#1 `RSAPublicKey`, as
/// big-endian integers without leading zeros.
pub(crate) fn rsa_public_key_components(der: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let mut outer = Der(der);
    let mut seq = Der(outer.read(SEQUENCE)?);
    if !outer.is_empty() {
        return Err("trailing bytes after RSAPublicKey".into());
    }
    let n = seq.read(INTEGER)?;
    let e = seq.read(INTEGER)?;
    if !seq.is_empty() {
        return Err("unexpected members in RSAPublicKey".into());
    }
    Ok((strip_zeros(n), strip_zeros(e)))
}

fn strip_zeros(int: &[u8]) -> &[u8] {
    let start = int.iter().position(|&b| b != 0).unwrap_or(int.len());
    &int[start..]
}

/// Refuses RSA public exponents that are even, 1, or absurdly large.
pub(crate) fn check_rsa_exponent(e: &[u8]) -> Result<(), String> {
    let bits = integer_bits(e);
    if !(2..=33).contains(&bits) || e.last().is_none_or(|b| b & 1 == 0) {
        return Err("RSA public exponent must be an odd number between 3 and 2^33".into());
    }
    Ok(())
}

/// Reads a `SubjectPublicKeyInfo` and tells what key it holds.
pub(crate) fn spki_info(der: &[u8]) -> Result<PublicKeyInfo, String> {
    let mut outer = Der(der);
    let mut spki = Der(outer.read(SEQUENCE)?);
    if !outer.is_empty() {
        return Err("trailing bytes after SubjectPublicKeyInfo".into());
    }
    let mut alg_id = Der(spki.read(SEQUENCE)?);
    let bits = spki.read(BIT_STRING)?;
    let oid = alg_id.read(OID)?;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err("public key BIT STRING has unused bits".into()),
    };
    if oid == OID_RSA {
        Ok(PublicKeyInfo::Rsa {
            bits: rsa_public_key_bits(key)?,
        })
    } else if oid == OID_EC {
        let curve = alg_id.read(OID)?;
        let curve = if curve == OID_P256 {
            Curve::P256
        } else if curve == OID_P384 {
            Curve::P384
        } else if curve == OID_P521 {
            Curve::P521
        } else {
            return Err("EC key on an unsupported curve (supported: P-256, P-384, P-521)".into());
        };
        Ok(PublicKeyInfo::Ec(curve))
    } else if oid == OID_ED25519 {
        Ok(PublicKeyInfo::Ed25519)
    } else {
        Err("unsupported public key type (supported: RSA, EC P-256/384/521, Ed25519)".into())
    }
}

/// Extracts the `SubjectPublicKeyInfo` from an X.509 certificate. The
/// certificate itself is not validated: it is only a container for the key.
pub(crate) fn certificate_spki(der: &[u8]) -> Result<&[u8], String> {
    let mut cert = Der(Der(der).read(SEQUENCE)?);
    let mut tbs = Der(cert.read(SEQUENCE)?);
    // [0] version (optional), serialNumber, signature, issuer, validity, subject, spki
    let mut skipped = 0;
    loop {
        let before = tbs.0;
        let (tag, _) = tbs.next_any()?;
        if tag == 0xa0 {
            continue;
        }
        skipped += 1;
        if skipped == 6 {
            // Re-read the element as a whole TLV.
            let consumed = before.len() - tbs.0.len();
            if tag != SEQUENCE {
                return Err("certificate has no SubjectPublicKeyInfo".into());
            }
            return Ok(&before[..consumed]);
        }
    }
}

/// A decoded PEM block.
pub(crate) struct Pem {
    pub(crate) label: String,
    pub(crate) der: Vec<u8>,
}

/// Decodes the first PEM block in `input`.
pub(crate) fn parse_pem(input: &[u8]) -> Result<Pem, String> {
    let text = std::str::from_utf8(input).map_err(|_| "PEM is not valid UTF-8".to_string())?;
    let begin = text
        .find("-----BEGIN ")
        .ok_or("no `-----BEGIN` line; expected a PEM encoded public key")?;
    let rest = &text[begin + 11..];
    let label_end = rest.find("-----").ok_or("unterminated PEM BEGIN line")?;
    let label = rest[..label_end].to_string();
    let body_and_end = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body_and_end
        .find(&end_marker)
        .ok_or_else(|| format!("no `{end_marker}` line"))?;
    let body: String = body_and_end[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("PEM body is not valid base64: {e}"))?;
    Ok(Pem { label, der })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_components_refuse_garbage() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x02],
            &[0x30, 0x80],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x02, 0x01, 0x01],
            &[0x30, 0x03, 0x02, 0x01, 0x01],
        ] {
            assert!(rsa_public_key_components(input).is_err(), "{input:?}");
        }
        let (n, e) = rsa_public_key_components(&[
            0x30, 0x08, 0x02, 0x03, 0x00, 0x80, 0x01, 0x02, 0x01, 0x03,
        ])
        .unwrap();
        assert_eq!((n, e), (&[0x80, 0x01][..], &[0x03][..]));
    }

    #[test]
    fn integer_bits_counts() {
        assert_eq!(integer_bits(&[0x00, 0x80]), 8);
        assert_eq!(integer_bits(&[0x01, 0x00, 0x01]), 17);
        assert_eq!(integer_bits(&[0, 0]), 0);
    }

    #[test]
    fn exponent_checks() {
        assert!(check_rsa_exponent(&[1, 0, 1]).is_ok());
        assert!(check_rsa_exponent(&[3]).is_ok());
        assert!(check_rsa_exponent(&[1]).is_err());
        assert!(check_rsa_exponent(&[2]).is_err());
        assert!(check_rsa_exponent(&[]).is_err());
    }

    #[test]
    fn garbage_is_refused_not_panicking() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x03, 0x30, 0x01],
            &[0x30, 0x82, 0xff, 0xff, 0x00],
        ] {
            assert!(spki_info(input).is_err());
            assert!(certificate_spki(input).is_err());
            assert!(rsa_public_key_bits(input).is_err());
        }
    }

    #[test]
    fn pem_errors() {
        assert!(parse_pem(b"nothing").is_err());
        assert!(parse_pem(b"-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----").is_err());
        assert!(parse_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n").is_err());
        let pem = parse_pem(b"-----BEGIN X-----\nAAEC\n-----END X-----\n").unwrap();
        assert_eq!(pem.label, "X");
        assert_eq!(pem.der, vec![0, 1, 2]);
    }
}
