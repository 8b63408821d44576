//! Encryption of setting values in upstream's exact format, so values written by an upstream
//! installation can be read here and the reverse: AES-256-GCM with a 16-byte random IV,
//! AAD `deploystack-global-settings`, key = scrypt(secret, "deploystack-global-settings-salt",
//! N=16384, r=8, p=1, 32 bytes), stored as lowercase hex `iv:tag:ciphertext`.

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce, Tag};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

/// scrypt salt used by upstream.
const SALT: &[u8] = b"deploystack-global-settings-salt";
/// Additional authenticated data used by upstream.
const AAD: &[u8] = b"deploystack-global-settings";
/// IV and tag length in bytes (upstream uses a 16-byte IV).
const IV_LEN: usize = 16;
const TAG_LEN: usize = 16;

type Cipher = AesGcm<Aes256, U16>;

/// Why a value could not be encrypted or decrypted. Never carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Not `iv:tag:ciphertext` in hex.
    #[error("Invalid encrypted data format. Expected format: iv:authTag:encryptedData")]
    Format,
    /// The tag does not verify: another secret was used, or the value was altered.
    #[error("the value cannot be decrypted: the encryption secret differs from the one that encrypted it, or the value was altered")]
    Authentication,
    /// Decrypted bytes are not UTF-8.
    #[error("the decrypted value is not UTF-8 text")]
    NotText,
    /// The key could not be derived (never happens with the fixed parameters).
    #[error("cannot derive the encryption key: {0}")]
    KeyDerivation(String),
}

/// The derived key, ready to encrypt and decrypt. Deriving costs tens of milliseconds by
/// design (scrypt), so it is done once per process.
pub struct SettingsCipher {
    /// Swappable so that a process can adopt the secret a sibling process sharing its folder
    /// generated and recorded first ([`SettingsCipher::adopt`]).
    cipher: arc_swap::ArcSwap<Cipher>,
    /// Key of [`SettingsCipher::sign`], derived from the same secret, swapped with it.
    signing: arc_swap::ArcSwap<zeroize::Zeroizing<[u8; 32]>>,
}

type Mac = hmac::Hmac<sha2::Sha256>;

/// Label the signing key is derived under: never the encryption key itself.
const SIGNING_LABEL: &[u8] = b"deploystack-signing-key-v1";

impl std::fmt::Debug for SettingsCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SettingsCipher")
    }
}

impl SettingsCipher {
    /// Derives the key from `secret` exactly as upstream does.
    pub fn derive(secret: &SecretString) -> Result<Self, CryptoError> {
        let params = scrypt::Params::new(14, 8, 1, 32)
            .map_err(|e| CryptoError::KeyDerivation(e.to_string()))?;
        // Wiped on drop with volatile writes the optimizer cannot remove (a plain `fill(0)`
        // of a buffer that is never read again may be dropped); the AES key schedule inside
        // `cipher` is wiped on drop too (aes-gcm's `zeroize` feature).
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        scrypt::scrypt(
            secret.expose_secret().as_bytes(),
            SALT,
            &params,
            key.as_mut_slice(),
        )
        .map_err(|e| CryptoError::KeyDerivation(e.to_string()))?;
        let cipher = Cipher::new_from_slice(key.as_slice())
            .map_err(|e| CryptoError::KeyDerivation(e.to_string()))?;
        let mut mac = <Mac as hmac::Mac>::new_from_slice(key.as_slice())
            .map_err(|e| CryptoError::KeyDerivation(e.to_string()))?;
        hmac::Mac::update(&mut mac, SIGNING_LABEL);
        let signing = zeroize::Zeroizing::new(hmac::Mac::finalize(mac).into_bytes().into());
        Ok(Self {
            cipher: arc_swap::ArcSwap::from_pointee(cipher),
            signing: arc_swap::ArcSwap::from_pointee(signing),
        })
    }

    /// [`SettingsCipher::derive`] on a blocking thread: scrypt is slow by design and must not
    /// hold up the async threads.
    pub async fn derive_off_thread(secret: SecretString) -> Result<Self, CryptoError> {
        tokio::task::spawn_blocking(move || Self::derive(&secret))
            .await
            .map_err(|e| CryptoError::KeyDerivation(e.to_string()))?
    }

    /// Uses `other`'s key from now on, everywhere this cipher is shared. Only for a key
    /// nothing was encrypted with yet in this process: the secret a sibling process sharing
    /// this process's folder generated and recorded while this one had generated its own.
    pub fn adopt(&self, other: &SettingsCipher) {
        self.cipher.store(other.cipher.load_full());
        self.signing.store(other.signing.load_full());
    }

    /// HMAC-SHA256 of `message` under a key derived from the secret (not the encryption key)
    /// and `purpose`: what signed cookies carry, so every process sharing the secret accepts
    /// them and a changed secret voids them.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        hmac::Mac::finalize(self.mac(purpose, message))
            .into_bytes()
            .into()
    }

    /// Whether `tag` is [`SettingsCipher::sign`] of `message` (compared in constant time).
    pub fn verify(&self, purpose: &str, message: &[u8], tag: &[u8]) -> bool {
        hmac::Mac::verify_slice(self.mac(purpose, message), tag).is_ok()
    }

    fn mac(&self, purpose: &str, message: &[u8]) -> Mac {
        let key = self.signing.load();
        let mut mac = <Mac as hmac::Mac>::new_from_slice(key.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        hmac::Mac::update(&mut mac, purpose.as_bytes());
        hmac::Mac::update(&mut mac, &[0]);
        hmac::Mac::update(&mut mac, message);
        mac
    }

    /// Encrypts `plaintext` with a fresh random IV.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let mut iv = [0u8; IV_LEN];
        rand::rng().fill_bytes(&mut iv);
        let mut buffer = plaintext.as_bytes().to_vec();
        let tag = self
            .cipher
            .load()
            .encrypt_in_place_detached(Nonce::<U16>::from_slice(&iv), AAD, &mut buffer)
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption only fails above 64 GiB"));
        format!(
            "{}:{}:{}",
            hex::encode(iv),
            hex::encode(tag),
            hex::encode(buffer)
        )
    }

    /// Decrypts a stored value.
    pub fn decrypt(&self, stored: &str) -> Result<SecretString, CryptoError> {
        let Parts { iv, tag, mut data } = split(stored)?;
        self.cipher
            .load()
            .decrypt_in_place_detached(
                Nonce::<U16>::from_slice(&iv),
                AAD,
                &mut data,
                Tag::<U16>::from_slice(&tag),
            )
            .map_err(|_| CryptoError::Authentication)?;
        String::from_utf8(data)
            .map(SecretString::from)
            .map_err(|e| {
                zeroize::Zeroize::zeroize(&mut e.into_bytes());
                CryptoError::NotText
            })
    }
}

/// The decoded parts of a stored value.
struct Parts {
    iv: Vec<u8>,
    tag: Vec<u8>,
    data: Vec<u8>,
}

fn split(stored: &str) -> Result<Parts, CryptoError> {
    let mut parts = stored.split(':');
    let (Some(iv), Some(tag), Some(data), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CryptoError::Format);
    };
    let decode = |part: &str| hex::decode(part).map_err(|_| CryptoError::Format);
    let (iv, tag, data) = (decode(iv)?, decode(tag)?, decode(data)?);
    if iv.len() != IV_LEN || tag.len() != TAG_LEN {
        return Err(CryptoError::Format);
    }
    Ok(Parts { iv, tag, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(secret: &str) -> SettingsCipher {
        SettingsCipher::derive(&SecretString::from(secret.to_owned())).expect("derive")
    }

    /// A stored value with one part of the wrong length is a format error, never a panic in
    /// `from_slice`, whichever part it is.
    #[test]
    fn parts_of_the_wrong_length_are_refused() {
        let c = cipher("k");
        let good = c.encrypt("v");
        let parts: Vec<&str> = good.split(':').collect();
        let (iv, tag, data) = (parts[0], parts[1], parts[2]);
        for stored in [
            format!("{}:{tag}:{data}", &iv[2..]),
            format!("{iv}00:{tag}:{data}"),
            format!("{iv}:{}:{data}", &tag[2..]),
            format!("{iv}:{tag}00:{data}"),
            format!("{iv}:{tag}"),
            format!("{iv}:{tag}:{data}:00"),
            format!("{iv}:zz{}:{data}", &tag[2..]),
        ] {
            assert!(
                matches!(c.decrypt(&stored), Err(CryptoError::Format)),
                "{stored}"
            );
        }
        assert_eq!(c.decrypt(&good).expect("good").expose_secret(), "v");
    }

    #[test]
    fn debug_shows_no_key_material() {
        assert_eq!(format!("{:?}", cipher("k")), "SettingsCipher");
    }

    /// After `adopt`, the cipher encrypts and decrypts with the other's key only.
    #[test]
    fn an_adopted_key_replaces_the_own_one() {
        let mine = cipher("mine");
        let theirs = cipher("theirs");
        let before = mine.encrypt("old");
        mine.adopt(&theirs);
        let after = mine.encrypt("new");
        assert_eq!(
            theirs.decrypt(&after).expect("theirs").expose_secret(),
            "new"
        );
        assert!(matches!(
            mine.decrypt(&before),
            Err(CryptoError::Authentication)
        ));
        let tampered = {
            let mut parts: Vec<String> = after.split(':').map(str::to_owned).collect();
            parts[2] = format!("{}00", parts[2]);
            parts.join(":")
        };
        assert!(matches!(
            mine.decrypt(&tampered),
            Err(CryptoError::Authentication)
        ));
    }

    /// Signatures depend on the secret, the purpose and the message, and a swapped key signs
    /// as the other process does.
    #[test]
    fn signatures_bind_secret_purpose_and_message() {
        let a = cipher("a");
        let b = cipher("b");
        let tag = a.sign("device", b"msg");
        assert!(a.verify("device", b"msg", &tag));
        assert!(!a.verify("device", b"msh", &tag));
        assert!(!a.verify("grant", b"msg", &tag));
        assert!(!b.verify("device", b"msg", &tag));
        assert!(!a.verify("device", b"msg", &tag[..31]));
        // The purpose and the message are kept apart: ("ab", "c") is not ("a", "bc").
        assert_ne!(a.sign("ab", b"c"), a.sign("a", b"bc"));
        b.adopt(&a);
        assert!(b.verify("device", b"msg", &tag));
    }
}
