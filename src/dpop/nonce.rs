//! Server nonces (RFC 9449 §8): stateless, rotating. A nonce names a time
//! slot and carries an HMAC of it; the current and the previous slot are
//! accepted, so servers sharing the secret accept each other's nonces.
//!
//! No store: nothing is remembered per nonce or per client, so there is
//! nothing to fill or to forget; a nonce is checked by recomputing its HMAC.

use aws_lc_rs::hmac;

#[derive(Clone)]
pub(crate) struct Nonces {
    key: hmac::Key,
    period: u64,
}

impl Nonces {
    pub(crate) fn new(secret: &[u8], period: u64) -> Self {
        Nonces {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            period: period.max(1),
        }
    }

    fn for_slot(&self, slot: u64) -> String {
        let tag = hmac::sign(&self.key, &slot.to_be_bytes());
        let mut bytes = slot.to_be_bytes().to_vec();
        bytes.extend_from_slice(&tag.as_ref()[..16]);
        crate::b64::encode(bytes)
    }

    fn slot(&self, now: f64) -> u64 {
        (now.max(0.0) as u64) / self.period
    }

    /// The nonce to hand out now.
    pub(crate) fn current(&self, now: f64) -> String {
        self.for_slot(self.slot(now))
    }

    /// Whether `nonce` is the current or the previous slot's.
    pub(crate) fn accepts(&self, nonce: &str, now: f64) -> bool {
        let slot = self.slot(now);
        let Some(bytes) = crate::b64::decode(nonce.as_bytes()) else {
            return false;
        };
        if bytes.len() != 24 {
            return false;
        }
        let mut given = [0u8; 8];
        given.copy_from_slice(&bytes[..8]);
        let given = u64::from_be_bytes(given);
        if given != slot && given.checked_add(1) != Some(slot) {
            return false;
        }
        let tag = hmac::sign(&self.key, &given.to_be_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(&tag.as_ref()[..16], &bytes[8..]).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_and_previous_slot() {
        let n = Nonces::new(b"secret", 60);
        let now = 6_000.0;
        let nonce = n.current(now);
        assert!(n.accepts(&nonce, now));
        assert!(n.accepts(&nonce, now + 60.0));
        assert!(!n.accepts(&nonce, now + 120.0));
        assert!(!n.accepts(&nonce, now - 60.0), "a nonce from the future");
        assert!(!Nonces::new(b"other", 60).accepts(&nonce, now));
        assert!(!n.accepts("garbage", now));
    }
}
