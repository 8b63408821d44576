//! Device cookies (OWASP's scheme against account lockout): a browser that signed in to an
//! account gets a signed cookie naming the account and a random nonce. A later sign-in to
//! that account presenting it is counted under the device, not under the account, so the
//! failures strangers cause, which hold the account for every other client, do not hold its
//! owner. Signed with a key derived from the encryption secret: every process accepts it,
//! nothing is stored, and a new secret voids them all.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::RngCore;

use super::cookie::DEVICE_MAX_AGE_SECONDS;
use crate::db::models::UserId;
use crate::settings::SettingsCipher;

/// What the signature is for (kept apart from other signatures of the same key).
const PURPOSE: &str = "device-cookie-v1";
/// Version prefix of the cookie's value.
const VERSION: &str = "v1";

/// A device cookie that verified: the account it was issued for and its nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The account that signed in from this device.
    pub user: String,
    /// The device's random nonce: what its failures are counted under.
    pub nonce: String,
}

/// Issues and reads device cookies.
#[derive(Clone)]
pub struct DeviceCookies {
    cipher: Arc<SettingsCipher>,
}

impl DeviceCookies {
    /// Signed with `cipher`'s signing key.
    pub fn new(cipher: Arc<SettingsCipher>) -> Self {
        Self { cipher }
    }

    /// A new cookie value for `user`, issued now.
    pub fn issue(&self, user: &UserId) -> String {
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        self.issue_at(user.as_str(), &hex::encode(nonce), Utc::now())
    }

    fn issue_at(&self, user: &str, nonce: &str, at: DateTime<Utc>) -> String {
        let body = format!("{VERSION}.{user}.{nonce}.{}", at.timestamp());
        let tag = self.cipher.sign(PURPOSE, body.as_bytes());
        format!("{body}.{}", hex::encode(tag))
    }

    /// The device of a cookie `value`, when its signature verifies and it is less than a
    /// year old.
    pub fn read(&self, value: &str) -> Option<Device> {
        self.read_at(value, Utc::now())
    }

    fn read_at(&self, value: &str, now: DateTime<Utc>) -> Option<Device> {
        let (body, tag) = value.rsplit_once('.')?;
        let tag = hex::decode(tag).ok()?;
        if !self.cipher.verify(PURPOSE, body.as_bytes(), &tag) {
            return None;
        }
        // Ids hold no dot; split from both ends all the same.
        let rest = body.strip_prefix(VERSION)?.strip_prefix('.')?;
        let (rest, issued) = rest.rsplit_once('.')?;
        let (user, nonce) = rest.rsplit_once('.')?;
        let issued = DateTime::from_timestamp(issued.parse().ok()?, 0)?;
        let age = now.signed_duration_since(issued).num_seconds();
        let max_age = i64::try_from(DEVICE_MAX_AGE_SECONDS).unwrap_or(i64::MAX);
        (0..max_age).contains(&age).then(|| Device {
            user: user.to_owned(),
            nonce: nonce.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn cookies(secret: &str) -> DeviceCookies {
        let cipher = SettingsCipher::derive(&SecretString::from(secret.to_owned())).expect("key");
        DeviceCookies::new(Arc::new(cipher))
    }

    #[test]
    fn a_cookie_reads_back_only_as_issued_and_while_young() {
        let c = cookies("s");
        let user = UserId::from("user_1-x");
        let value = c.issue(&user);
        let device = c.read(&value).expect("verifies");
        assert_eq!(device.user, "user_1-x");
        assert_eq!(device.nonce.len(), 32);
        assert_ne!(c.read(&c.issue(&user)), Some(device), "a nonce each time");
        // Another secret, another account, a changed byte: none verifies.
        assert_eq!(cookies("t").read(&value), None);
        let forged = value.replacen("user_1-x", "admin", 1);
        assert_eq!(c.read(&forged), None);
        let mut flipped = value.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(c.read(&String::from_utf8(flipped).expect("ascii")), None);
        for junk in ["", "v1", "v1.a.b", "x.y.z.w.00", "v1.a.b.c.zz"] {
            assert_eq!(c.read(junk), None, "{junk}");
        }
        // A year old, or from the future: refused.
        let now = Utc::now();
        let old = c.issue_at("u", "n", now - chrono::Duration::days(365));
        assert_eq!(c.read_at(&old, now), None);
        let young = c.issue_at("u", "n", now - chrono::Duration::days(364));
        assert!(c.read_at(&young, now).is_some());
        let future = c.issue_at("u", "n", now + chrono::Duration::seconds(5));
        assert_eq!(c.read_at(&future, now), None);
        // A signed body in another version's shape is refused too.
        let tag = hex::encode(c.cipher.sign(PURPOSE, b"v2.u.n.1"));
        assert_eq!(c.read(&format!("v2.u.n.1.{tag}")), None);
    }
}
