//! Sealing with age (spec §8): a [`Sealer`] encrypts to the bundle's recipients (X25519 and SSH
//! public keys, or one passphrase), an [`Opener`] holds identities that decrypt. Also key
//! generation for `dbxport keygen`.
//!
//! Secret material lives only in age's `SecretString`/identity types and in [`Zeroizing`]
//! buffers; nothing here implements `Debug` in a way that could print it.

use super::error::{BundleError, ErrorCode};
use super::inventory::Sealing;
use age::secrecy::{ExposeSecret, SecretString};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::str::FromStr;
use zeroize::Zeroizing;

/// The scrypt work factor (log2 N) used to seal each file with a passphrase (§8.1).
pub const SCRYPT_LOG_N: u8 = 16;
/// The highest scrypt work factor accepted when opening (§10.3).
pub const MAX_SCRYPT_LOG_N: u8 = 22;
/// The largest sealed file opened into memory (§10.3).
pub const MAX_SEALED_IN_MEMORY: u64 = 64 << 20;
/// The first line of every binary age file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";
const MAX_KEY_FILE: u64 = 16 << 20;

/// A problem with a key, a recipient or a passphrase given by the user.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A recipient string that is not an age or SSH public key.
    #[error("recipient {0:?}: not an age (age1…) or SSH (ssh-ed25519/ssh-rsa) public key")]
    BadRecipient(String),
    /// An identity file that holds no usable identity.
    #[error("identity file {path}: {detail}")]
    BadIdentity {
        /// The file.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No recipients were given.
    #[error("no recipients given")]
    NoRecipients,
    /// A passphrase cannot be combined with public-key recipients (age's scrypt rule).
    #[error("a passphrase cannot be combined with public-key recipients")]
    PassphraseWithRecipients,
    /// An empty passphrase.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// Reading a key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// age refused to encrypt.
    #[error("sealing failed: {0}")]
    Encrypt(String),
}

enum Target {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl Target {
    fn as_recipient(&self) -> &dyn age::Recipient {
        match self {
            Target::X25519(r) => r,
            Target::Ssh(r) => r,
        }
    }
    fn type_name(&self, text: &str) -> String {
        match self {
            Target::X25519(_) => "X25519".into(),
            Target::Ssh(_) => text.split_whitespace().next().unwrap_or("ssh").into(),
        }
    }
}

enum SealMode {
    Recipients(Vec<(Target, String)>),
    Passphrase(SecretString),
}

/// Encrypts to a bundle's recipient set.
pub struct Sealer {
    mode: SealMode,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("sealing", &self.sealing())
            .finish()
    }
}

/// Parses one recipient (`age1…`, `ssh-ed25519 …`, `ssh-rsa …`).
fn parse_recipient(s: &str) -> Result<Target, KeyError> {
    let t = s.trim();
    if t.starts_with("age1") {
        return age::x25519::Recipient::from_str(t)
            .map(Target::X25519)
            .map_err(|_| KeyError::BadRecipient(t.into()));
    }
    if t.starts_with("ssh-") {
        return age::ssh::Recipient::from_str(t)
            .map(Target::Ssh)
            .map_err(|_| KeyError::BadRecipient(t.into()));
    }
    Err(KeyError::BadRecipient(t.into()))
}

/// Reads a recipients file: one recipient per line; blank lines and `#` comments skipped.
pub fn read_recipients_file(path: &Path) -> Result<Vec<String>, KeyError> {
    let text = read_small(path)?;
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

fn read_small(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let io_err = |e| KeyError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let f = std::fs::File::open(path).map_err(io_err)?;
    let mut buf = Zeroizing::new(Vec::new());
    f.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(io_err)?;
    if buf.len() as u64 > MAX_KEY_FILE {
        return Err(KeyError::BadIdentity {
            path: path.display().to_string(),
            detail: "larger than 16 MiB".into(),
        });
    }
    Ok(buf)
}

impl Sealer {
    /// Seals to public keys (`age1…`, `ssh-ed25519 …`, `ssh-rsa …`).
    pub fn to_recipients<S: AsRef<str>>(recipients: &[S]) -> Result<Sealer, KeyError> {
        if recipients.is_empty() {
            return Err(KeyError::NoRecipients);
        }
        let mut v = Vec::new();
        for r in recipients {
            let text = r.as_ref().trim().to_string();
            v.push((parse_recipient(&text)?, text));
        }
        Ok(Sealer {
            mode: SealMode::Recipients(v),
        })
    }

    /// Seals with one passphrase (scrypt, work factor [`SCRYPT_LOG_N`]).
    pub fn with_passphrase(passphrase: SecretString) -> Result<Sealer, KeyError> {
        if passphrase.expose_secret().is_empty() {
            return Err(KeyError::EmptyPassphrase);
        }
        Ok(Sealer {
            mode: SealMode::Passphrase(passphrase),
        })
    }

    /// The public recipient strings (empty for a passphrase), for persisting and re-creating.
    pub fn recipient_strings(&self) -> Vec<String> {
        match &self.mode {
            SealMode::Recipients(v) => v.iter().map(|(_, s)| s.clone()).collect(),
            SealMode::Passphrase(_) => Vec::new(),
        }
    }

    /// The inventory's summary of this recipient set (§8.3).
    pub fn sealing(&self) -> Sealing {
        match &self.mode {
            SealMode::Recipients(v) => {
                let mut types: Vec<String> = v.iter().map(|(t, s)| t.type_name(s)).collect();
                types.sort();
                types.dedup();
                Sealing {
                    recipients: v.len() as u32,
                    recipient_types: types,
                    passphrase: false,
                }
            }
            SealMode::Passphrase(_) => Sealing {
                recipients: 1,
                recipient_types: vec!["scrypt".into()],
                passphrase: true,
            },
        }
    }

    fn encryptor(&self) -> Result<age::Encryptor, KeyError> {
        match &self.mode {
            SealMode::Recipients(v) => {
                age::Encryptor::with_recipients(v.iter().map(|(t, _)| t.as_recipient()))
                    .map_err(|e| KeyError::Encrypt(e.to_string()))
            }
            SealMode::Passphrase(p) => {
                let mut r = age::scrypt::Recipient::new(p.clone());
                r.set_work_factor(SCRYPT_LOG_N);
                age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
                    .map_err(|e| KeyError::Encrypt(e.to_string()))
            }
        }
    }

    /// Seals a small plaintext into a binary age file.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut out = Vec::with_capacity(plaintext.len() + 512);
        let mut w = self
            .encryptor()?
            .wrap_output(&mut out)
            .map_err(|e| KeyError::Encrypt(e.to_string()))?;
        w.write_all(plaintext)
            .and_then(|_| w.finish().map(|_| ()))
            .map_err(|e| KeyError::Encrypt(e.to_string()))?;
        Ok(out)
    }

    /// Wraps a writer so that what is written to it is sealed (for the envelope, §8.4).
    /// Call `finish()` on the result.
    pub fn wrap<W: Write>(&self, out: W) -> Result<age::stream::StreamWriter<W>, KeyError> {
        self.encryptor()?
            .wrap_output(out)
            .map_err(|e| KeyError::Encrypt(e.to_string()))
    }
}

/// Identities that open sealed files.
#[derive(Default)]
pub struct Opener {
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Opener({} identities)", self.identities.len())
    }
}

impl Opener {
    /// No identities yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no identity has been added.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// Adds the identities of a file: an age identity file (`AGE-SECRET-KEY-1…` lines) or an
    /// unencrypted OpenSSH private key.
    pub fn add_identity_file(&mut self, path: &Path) -> Result<(), KeyError> {
        let bytes = read_small(path)?;
        let bad = |d: &str| KeyError::BadIdentity {
            path: path.display().to_string(),
            detail: d.into(),
        };
        let text = String::from_utf8_lossy(&bytes);
        if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----")
            || text.contains("-----BEGIN RSA PRIVATE KEY-----")
        {
            let id = age::ssh::Identity::from_buffer(
                BufReader::new(&bytes[..]),
                Some(path.display().to_string()),
            )
            .map_err(|e| bad(&e.to_string()))?;
            match id {
                age::ssh::Identity::Unencrypted(_) => self.identities.push(Box::new(id)),
                age::ssh::Identity::Encrypted(_) => {
                    return Err(bad(
                        "the SSH key is protected by a passphrase; use an age identity, or a copy of the key without one",
                    ))
                }
                age::ssh::Identity::Unsupported(_) => {
                    return Err(bad("this SSH key type is not supported by age"))
                }
            }
            return Ok(());
        }
        let file = age::IdentityFile::from_buffer(BufReader::new(&bytes[..]))
            .map_err(|e| bad(&format!("not an age identity file: {e}")))?;
        let ids = file.into_identities().map_err(|e| bad(&e.to_string()))?;
        if ids.is_empty() {
            return Err(bad("holds no identity"));
        }
        self.identities.extend(ids);
        Ok(())
    }

    /// Adds an X25519 identity held in memory.
    pub fn add_x25519(&mut self, identity: age::x25519::Identity) {
        self.identities.push(Box::new(identity));
    }

    /// Adds a passphrase identity (accepting work factors up to [`MAX_SCRYPT_LOG_N`]).
    pub fn add_passphrase(&mut self, passphrase: SecretString) {
        let mut id = age::scrypt::Identity::new(passphrase);
        id.set_max_work_factor(MAX_SCRYPT_LOG_N);
        self.identities.push(Box::new(id));
    }

    /// Starts decrypting an age stream; `subject` names it in errors.
    pub fn decrypt<R: Read>(
        &self,
        input: R,
        subject: &str,
    ) -> Result<age::stream::StreamReader<R>, BundleError> {
        if self.identities.is_empty() {
            return Err(BundleError::new(
                ErrorCode::IdentityRequired,
                subject,
                "sealed, and no identity was given",
            ));
        }
        let d = age::Decryptor::new(input).map_err(|e| map_decrypt(subject, e))?;
        d.decrypt(
            self.identities
                .iter()
                .map(|i| i.as_ref() as &dyn age::Identity),
        )
        .map_err(|e| map_decrypt(subject, e))
    }

    /// Opens a small sealed file into memory (at most [`MAX_SEALED_IN_MEMORY`] bytes).
    pub fn open(&self, sealed: &[u8], subject: &str) -> Result<Zeroizing<Vec<u8>>, BundleError> {
        let r = self.decrypt(sealed, subject)?;
        let mut out = Zeroizing::new(Vec::new());
        r.take(MAX_SEALED_IN_MEMORY + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                BundleError::new(
                    ErrorCode::SealedCorrupt,
                    subject,
                    format!("decryption failed: {e}"),
                )
            })?;
        if out.len() as u64 > MAX_SEALED_IN_MEMORY {
            return Err(BundleError::new(
                ErrorCode::SealedCorrupt,
                subject,
                "plaintext larger than 64 MiB",
            ));
        }
        Ok(out)
    }
}

fn map_decrypt(subject: &str, e: age::DecryptError) -> BundleError {
    match e {
        age::DecryptError::NoMatchingKeys => BundleError::new(
            ErrorCode::NoMatchingIdentity,
            subject,
            "no given identity opens it",
        ),
        age::DecryptError::ExcessiveWork { required, target } => BundleError::new(
            ErrorCode::NoMatchingIdentity,
            subject,
            format!("passphrase work factor {required} is above the accepted {target}"),
        ),
        age::DecryptError::DecryptionFailed => BundleError::new(
            ErrorCode::NoMatchingIdentity,
            subject,
            "decryption failed (wrong passphrase or damaged file)",
        ),
        other => BundleError::new(
            ErrorCode::SealedCorrupt,
            subject,
            format!("not a valid age file: {other}"),
        ),
    }
}

/// A new X25519 identity: `(identity file text, recipient)`. The text is what `age-keygen`
/// writes: comment lines with the creation time and public key, then the secret key.
pub fn generate_identity(created: &str) -> (Zeroizing<String>, String) {
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let text = Zeroizing::new(format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        id.to_string().expose_secret()
    ));
    (text, recipient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_with_a_generated_key() {
        let (text, recipient) = generate_identity("2026-01-01T00:00:00Z");
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.txt");
        std::fs::write(&key, text.as_bytes()).unwrap();
        let sealer = Sealer::to_recipients(std::slice::from_ref(&recipient)).unwrap();
        assert_eq!(sealer.sealing().recipient_types, vec!["X25519"]);
        let sealed = sealer.seal(b"s3cret").unwrap();
        assert!(sealed.starts_with(AGE_MAGIC));
        let mut opener = Opener::new();
        opener.add_identity_file(&key).unwrap();
        assert_eq!(&opener.open(&sealed, "v").unwrap()[..], b"s3cret");
        let other = Opener::new();
        assert_eq!(
            other.open(&sealed, "v").unwrap_err().code(),
            ErrorCode::IdentityRequired
        );
        let mut wrong = Opener::new();
        wrong.add_passphrase(SecretString::from("nope".to_string()));
        assert_eq!(
            wrong.open(&sealed, "v").unwrap_err().code(),
            ErrorCode::NoMatchingIdentity
        );
    }

    #[test]
    fn passphrase_round_trip() {
        let s = Sealer::with_passphrase(SecretString::from("correct horse".to_string())).unwrap();
        assert!(s.sealing().passphrase);
        let sealed = s.seal(b"v").unwrap();
        let mut o = Opener::new();
        o.add_passphrase(SecretString::from("correct horse".to_string()));
        assert_eq!(&o.open(&sealed, "v").unwrap()[..], b"v");
    }

    #[test]
    fn bad_recipients() {
        assert!(Sealer::to_recipients(&["nope"]).is_err());
        assert!(Sealer::to_recipients::<&str>(&[]).is_err());
    }
}
