//! Just enough PEM and DER to recognise a public key: its type, its curve and
//! the size of an RSA modulus, read with maintained parsers (`pem` for the
//! armour; RustCrypto's `der`, `spki` and `pkcs1` for the structures; see
//! docs/decisions/0002-pem-der-parsers.md). The key bytes themselves are
//! parsed and checked again by aws-lc when the verification key is built.

use ::der::asn1::ObjectIdentifier;
use ::der::{Reader, SliceReader, Tag, TagNumber};
use pkcs1::RsaPublicKeyRef;
use spki::SubjectPublicKeyInfoRef;

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

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

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
    let key = RsaPublicKeyRef::try_from(der).map_err(|e| format!("RSAPublicKey: {e}"))?;
    Ok((key.modulus.as_bytes(), key.public_exponent.as_bytes()))
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
    let spki =
        SubjectPublicKeyInfoRef::try_from(der).map_err(|e| format!("SubjectPublicKeyInfo: {e}"))?;
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or("public key BIT STRING has unused bits")?;
    match spki.algorithm.oid {
        OID_RSA => Ok(PublicKeyInfo::Rsa {
            bits: rsa_public_key_bits(key)?,
        }),
        OID_EC => {
            let curve = match spki.algorithm.parameters_oid() {
                Ok(OID_P256) => Curve::P256,
                Ok(OID_P384) => Curve::P384,
                Ok(OID_P521) => Curve::P521,
                _ => {
                    return Err(
                        "EC key on an unsupported curve (supported: P-256, P-384, P-521)".into(),
                    );
                }
            };
            Ok(PublicKeyInfo::Ec(curve))
        }
        OID_ED25519 => Ok(PublicKeyInfo::Ed25519),
        _ => Err("unsupported public key type (supported: RSA, EC P-256/384/521, Ed25519)".into()),
    }
}

/// Extracts the `SubjectPublicKeyInfo` from an X.509 certificate. The
/// certificate itself is not validated: it is only a container for the
/// key, so only the DER framing up to the key is read.
pub(crate) fn certificate_spki(der: &[u8]) -> Result<&[u8], String> {
    let read = || -> ::der::Result<&[u8]> {
        let mut reader = SliceReader::new(der)?;
        let spki = reader.sequence(|cert| {
            let spki = cert.sequence(|tbs| {
                // [0] version (optional), serialNumber, signature, issuer,
                // validity, subject, subjectPublicKeyInfo, then optional
                // fields this does not need.
                if let Tag::ContextSpecific {
                    number: TagNumber(0),
                    ..
                } = Tag::peek(tbs)?
                {
                    tbs.tlv_bytes()?;
                }
                for _ in 0..5 {
                    tbs.tlv_bytes()?;
                }
                let spki = tbs.tlv_bytes()?;
                while !tbs.is_finished() {
                    tbs.tlv_bytes()?;
                }
                Ok::<_, ::der::Error>(spki)
            })?;
            // signatureAlgorithm, signatureValue
            while !cert.is_finished() {
                cert.tlv_bytes()?;
            }
            Ok::<_, ::der::Error>(spki)
        })?;
        reader.finish()?;
        Ok(spki)
    };
    read().map_err(|e| format!("certificate: {e}"))
}

/// A decoded PEM block.
pub(crate) struct Pem {
    pub(crate) label: String,
    pub(crate) der: Vec<u8>,
}

/// Decodes the first PEM block in `input` (text around it is ignored).
pub(crate) fn parse_pem(input: &[u8]) -> Result<Pem, String> {
    match pem::parse(input) {
        Ok(pem) => Ok(Pem {
            label: pem.tag().to_owned(),
            der: pem.into_contents(),
        }),
        Err(pem::PemError::MalformedFraming | pem::PemError::MissingBeginTag) => {
            Err("no `-----BEGIN` line; expected a PEM encoded public key".into())
        }
        Err(e) => Err(format!("PEM: {e}")),
    }
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
    fn truncations_are_errors_and_bit_flips_never_panic() {
        let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keys/");
        let read = |name: &str| {
            let pem = std::fs::read(format!("{keys}{name}")).unwrap();
            parse_pem(&pem).unwrap().der
        };
        let cert = read("rsa.crt");
        let spki = read("p256.pub");
        let pkcs1 = read("rsa.pkcs1.pub");
        assert!(certificate_spki(&cert).is_ok());
        for len in 0..cert.len() {
            assert!(certificate_spki(&cert[..len]).is_err(), "{len}");
        }
        for len in 0..spki.len() {
            assert!(spki_info(&spki[..len]).is_err(), "{len}");
        }
        for len in 0..pkcs1.len() {
            assert!(rsa_public_key_components(&pkcs1[..len]).is_err(), "{len}");
        }
        for input in [&cert, &spki, &pkcs1] {
            for i in 0..input.len() {
                for bit in 0..8 {
                    let mut m = input.clone();
                    m[i] ^= 1 << bit;
                    let _ = spki_info(&m);
                    let _ = rsa_public_key_components(&m);
                    if let Ok(inner) = certificate_spki(&m) {
                        assert!(inner.len() < m.len());
                    }
                }
            }
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
