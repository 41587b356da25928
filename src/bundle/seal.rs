//! Sealing with age (spec §8): a [`Sealer`] encrypts to the bundle's recipients (X25519 and SSH
//! public keys, or one passphrase), an [`Opener`] holds identities that decrypt. Also key
//! generation for `dbxport keygen`.
//!
//! Secret material lives only in age's `SecretString`/identity types and in [`Zeroizing`]
//! buffers; nothing here implements `Debug` in a way that could print it.

use super::error::{BundleError, ErrorCode};
use super::inventory::Sealing;
use crate::hints::Hint;
use age::secrecy::{ExposeSecret, SecretString};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::str::FromStr;
use zeroize::Zeroizing;

/// The scrypt work factor (log2 N) used to seal each file with a passphrase (§8.1).
pub const SCRYPT_LOG_N: u8 = 16;
/// The highest scrypt work factor accepted when opening (§10.3): 2^18 needs 256 MiB of
/// memory. Work factor 22 would need 4 GiB, which a hostile file must not be able to demand.
pub const MAX_SCRYPT_LOG_N: u8 = 18;
/// The longest age header accepted when opening (§10.3), and the longest one a [`Sealer`]
/// writes: room for hundreds of X25519 or dozens of large RSA recipients.
pub const MAX_AGE_HEADER: usize = 64 << 10;
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
    #[error(
        "recipient {0:?}: not an age (age1…) or SSH (ssh-ed25519/ssh-rsa) public key\n{hint}",
        hint = Hint::MalformedRecipient
    )]
    BadRecipient(String),
    /// An identity file that holds no usable identity.
    #[error("identity file {path}: {detail}\n{}", Hint::MalformedIdentity)]
    BadIdentity {
        /// The file.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No recipients were given.
    #[error("no recipients given")]
    NoRecipients,
    /// A recipients file that names no recipient (empty, or only blank lines and comments).
    #[error(
        "recipients file {0}: holds no recipient (only blank lines or # comments)\n{hint}",
        hint = Hint::EmptyRecipientsFile
    )]
    EmptyRecipientsFile(String),
    /// So many recipients that the age header would be longer than a reader accepts.
    #[error("{count} recipients make an age header of {bytes} bytes, above the {max} bytes a reader accepts\n{}", Hint::TooManyRecipients, max = MAX_AGE_HEADER)]
    TooManyRecipients {
        /// Recipients given.
        count: usize,
        /// The header's length.
        bytes: usize,
    },
    /// A passphrase cannot be combined with public-key recipients (age's scrypt rule).
    #[error("a passphrase cannot be combined with public-key recipients")]
    PassphraseWithRecipients,
    /// An empty passphrase.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// Reading a key file failed.
    #[error("{what} {path}: {cause}\n{hint}", hint = Hint::KeyFileUnreadable)]
    Io {
        /// What the file was to hold: `identity file`, `recipients file`.
        what: &'static str,
        /// The file.
        path: String,
        /// The cause (said in the message, so not a `source` that would repeat it).
        cause: io::Error,
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
/// A file that names no recipient is refused: taking it for "no recipients" would export
/// without any secret value.
pub fn read_recipients_file(path: &Path) -> Result<Vec<String>, KeyError> {
    let text = read_small(path, "recipients file")?;
    let keys: Vec<String> = String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        return Err(KeyError::EmptyRecipientsFile(path.display().to_string()));
    }
    Ok(keys)
}

/// Reads a key file of at most [`MAX_KEY_FILE`] bytes; `what` names it in errors.
fn read_small(path: &Path, what: &'static str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let io_err = |cause| KeyError::Io {
        what,
        path: path.display().to_string(),
        cause,
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
        let sealer = Sealer {
            mode: SealMode::Recipients(v),
        };
        // Every file sealed to this set has a header of about this length; a reader refuses
        // one above MAX_AGE_HEADER, so never write one.
        let bytes = header_len(&sealer.seal(b"")?);
        if bytes > MAX_AGE_HEADER {
            return Err(KeyError::TooManyRecipients {
                count: recipients.len(),
                bytes,
            });
        }
        Ok(sealer)
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

    /// Identifies the recipient set without revealing a secret, to tell whether a resumed
    /// export seals to the same set: `sha256:<hex>` of the sorted, de-duplicated recipient
    /// strings, or `passphrase` (a marker only — nothing derived from the passphrase).
    pub fn fingerprint(&self) -> String {
        match &self.mode {
            SealMode::Recipients(v) => {
                let mut keys: Vec<&str> = v.iter().map(|(_, s)| s.as_str()).collect();
                keys.sort_unstable();
                keys.dedup();
                format!(
                    "sha256:{}",
                    super::digest::sha256_hex(keys.join("\n").as_bytes())
                )
            }
            SealMode::Passphrase(_) => "passphrase".into(),
        }
    }

    /// True when `sealed` (a file this kind of sealer wrote) opens with this sealer's
    /// passphrase; always false for public-key recipients, which cannot open anything.
    pub fn passphrase_opens(&self, sealed: &[u8]) -> bool {
        match &self.mode {
            SealMode::Passphrase(p) => {
                let mut o = Opener::new();
                o.add_passphrase(p.clone());
                o.open(sealed, "check").is_ok()
            }
            SealMode::Recipients(_) => false,
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
        let bytes = read_small(path, "identity file")?;
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

    /// Starts decrypting an age stream; `subject` names it in errors. The header is read
    /// first, bounded by [`MAX_AGE_HEADER`] and checked for an scrypt work factor above
    /// [`MAX_SCRYPT_LOG_N`] (E402, E401), and then handed to age whole, so that parsing it
    /// takes time linear in its length.
    pub fn decrypt<R: Read>(
        &self,
        input: R,
        subject: &str,
    ) -> Result<age::stream::StreamReader<HeaderFirst<BufReader<R>>>, BundleError> {
        if self.identities.is_empty() {
            return Err(BundleError::new(
                ErrorCode::IdentityRequired,
                subject,
                "sealed, and no identity was given",
            ));
        }
        let mut input = BufReader::new(input);
        let header = read_header(&mut input, subject)?;
        let input = HeaderFirst {
            header: Some((header, 0)),
            inner: input,
        };
        let d = age::Decryptor::new_buffered(input).map_err(|e| map_decrypt(subject, e))?;
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
        // age reports its own timing-based target here, not the cap it enforced.
        age::DecryptError::ExcessiveWork { required, .. } => excessive_work(subject, required),
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

/// How the detail of a work-factor refusal starts; [`specific_hint`] recognises it by this.
const WORK_FACTOR_DETAIL: &str = "passphrase work factor ";

/// The hint of a work-factor refusal: E401's own hint (check the identity or passphrase) does
/// not fit, since no passphrase would help.
pub const WORK_FACTOR_HINT: &str = Hint::WorkFactorTooHigh.text();

fn excessive_work(subject: &str, log_n: impl std::fmt::Display) -> BundleError {
    BundleError::new(
        ErrorCode::NoMatchingIdentity,
        subject,
        format!(
            "{WORK_FACTOR_DETAIL}{log_n} is above the accepted {MAX_SCRYPT_LOG_N} (log2 N; each step doubles the memory scrypt needs)"
        ),
    )
}

/// A hint more specific than the code's for a problem this module reported, if it has one.
pub(crate) fn specific_hint(e: &BundleError) -> Option<Hint> {
    (e.code() == ErrorCode::NoMatchingIdentity && e.detail().starts_with(WORK_FACTOR_DETAIL))
        .then_some(Hint::WorkFactorTooHigh)
}

/// The length of the header of an age file (through the MAC line), or of all of it when no
/// MAC line is found.
fn header_len(file: &[u8]) -> usize {
    let mut at = 0;
    for line in file.split_inclusive(|&b| b == b'\n') {
        at += line.len();
        if line.starts_with(b"---") {
            break;
        }
    }
    at
}

/// Reads an age header from `input`: the version line, the stanzas and the MAC line, at most
/// [`MAX_AGE_HEADER`] bytes (E402). A passphrase stanza above [`MAX_SCRYPT_LOG_N`] is refused
/// here (E401), before any scrypt memory is allocated. Whatever does not look like a v1 header
/// is returned as read, for age to reject with its own words.
fn read_header<R: BufRead>(input: &mut R, subject: &str) -> Result<Vec<u8>, BundleError> {
    let mut header = Vec::new();
    loop {
        let room = (MAX_AGE_HEADER - header.len()) as u64;
        let start = header.len();
        let n = input
            .by_ref()
            .take(room)
            .read_until(b'\n', &mut header)
            .map_err(|e| {
                BundleError::new(
                    ErrorCode::SealedCorrupt,
                    subject,
                    format!("reading the age header failed: {e}"),
                )
            })?;
        let line = &header[start..];
        if n == 0 || !line.ends_with(b"\n") {
            if header.len() >= MAX_AGE_HEADER {
                return Err(BundleError::new(
                    ErrorCode::SealedCorrupt,
                    subject,
                    format!(
                        "the age header is longer than {} KiB, the most a reader accepts",
                        MAX_AGE_HEADER >> 10
                    ),
                ));
            }
            // End of input inside the header: age says what is missing.
            return Ok(header);
        }
        if start == 0 {
            if line != AGE_MAGIC {
                return Ok(header);
            }
            continue;
        }
        if line.starts_with(b"---") {
            return Ok(header);
        }
        // `-> scrypt <salt> <log2 N>`: a malformed one is left for age to refuse.
        if let Some(args) = line.strip_prefix(b"-> scrypt ") {
            let args = String::from_utf8_lossy(args);
            let mut it = args.split_whitespace();
            if let (Some(_salt), Some(log_n), None) = (it.next(), it.next(), it.next()) {
                // All digits but too long for a u64 is far too much work, too.
                let too_much = match log_n.parse::<u64>() {
                    Ok(n) => n > u64::from(MAX_SCRYPT_LOG_N),
                    Err(_) => true,
                };
                if log_n.bytes().all(|b| b.is_ascii_digit()) && too_much {
                    return Err(excessive_work(subject, log_n));
                }
            }
        }
    }
}

/// An age file's input with its header already read: the header is handed out before the
/// rest, and — unlike an ordinary [`BufRead`] — in one piece on the first `read_until`, so age
/// parses it once instead of once per line (its buffered parser starts over after each line,
/// which costs time quadratic in the header's length).
pub struct HeaderFirst<R> {
    /// The header and how much of it was handed out, until all of it was.
    header: Option<(Vec<u8>, usize)>,
    inner: R,
}

impl<R> HeaderFirst<R> {
    fn pending(&self) -> &[u8] {
        self.header.as_ref().map_or(&[], |(h, at)| &h[*at..])
    }
    fn advance(&mut self, n: usize) {
        if let Some((h, at)) = &mut self.header {
            *at += n;
            if *at >= h.len() {
                self.header = None;
            }
        }
    }
}

impl<R: BufRead> Read for HeaderFirst<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.header.is_none() {
            return self.inner.read(buf);
        }
        let n = self.pending().len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending()[..n]);
        self.advance(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for HeaderFirst<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match &self.header {
            Some((h, at)) => Ok(&h[*at..]),
            None => self.inner.fill_buf(),
        }
    }
    fn consume(&mut self, amt: usize) {
        if self.header.is_some() {
            self.advance(amt);
        } else {
            self.inner.consume(amt);
        }
    }
    fn read_until(&mut self, byte: u8, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self.header.take() {
            // Deliberately all of it, not one line: age reads the header by `\n`-terminated
            // lines and would otherwise re-parse it after each one. It ends with `\n`.
            Some((h, at)) => {
                buf.extend_from_slice(&h[at..]);
                Ok(h.len() - at)
            }
            None => self.inner.read_until(byte, buf),
        }
    }
}

impl<R: BufRead + Seek> Seek for HeaderFirst<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let pending = self.pending().len() as u64;
        if pending > 0 && pos == SeekFrom::Current(0) {
            return Ok(self.inner.stream_position()? - pending);
        }
        let pos = match pos {
            SeekFrom::Current(off) => SeekFrom::Current(off - pending as i64),
            other => other,
        };
        self.header = None;
        self.inner.seek(pos)
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

    // E401's own hint ("check that --identity names the key…") sends the user after the wrong
    // key when the refusal is about the work factor; that case has its own hint.
    #[test]
    fn a_work_factor_refusal_has_its_own_hint() {
        let mut f = AGE_MAGIC.to_vec();
        f.extend_from_slice(b"-> scrypt c2FsdHNhbHRzYWx0c2FsdA 22\nAAAA\n--- AAAA\n");
        let mut opener = Opener::new();
        opener.add_passphrase(SecretString::from("p".to_string()));
        let e = opener.open(&f, "values/x").unwrap_err();
        assert_eq!(e.code(), ErrorCode::NoMatchingIdentity, "{e}");
        assert_eq!(e.hint(), Some(WORK_FACTOR_HINT));
        assert!(WORK_FACTOR_HINT.contains(&format!("at most {MAX_SCRYPT_LOG_N}")));
        assert_eq!(serde_json::to_value(&e).unwrap()["hint"], WORK_FACTOR_HINT);
        let other = BundleError::new(ErrorCode::NoMatchingIdentity, "values/x", "no identity");
        assert_eq!(other.hint(), ErrorCode::NoMatchingIdentity.hint());
    }

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
    fn a_long_header_of_many_recipients_opens_and_seeks() {
        let ids: Vec<age::x25519::Identity> = (0..300)
            .map(|_| age::x25519::Identity::generate())
            .collect();
        let keys: Vec<String> = ids.iter().map(|i| i.to_public().to_string()).collect();
        let sealer = Sealer::to_recipients(&keys).unwrap();
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut sealed = Vec::new();
        let mut w = sealer.wrap(&mut sealed).unwrap();
        w.write_all(&plain).unwrap();
        w.finish().unwrap();
        assert!(header_len(&sealed) > 25_000, "{}", header_len(&sealed));
        let mut o = Opener::new();
        o.add_x25519(ids.last().unwrap().clone());
        assert_eq!(&o.open(&sealed, "v").unwrap()[..], &plain[..]);
        // The envelope is read by seeking within the age stream.
        let mut r = o.decrypt(io::Cursor::new(&sealed), "v").unwrap();
        r.seek(SeekFrom::Start(150_000)).unwrap();
        let mut part = vec![0; 1000];
        r.read_exact(&mut part).unwrap();
        assert_eq!(part, &plain[150_000..151_000]);
        r.seek(SeekFrom::End(-10)).unwrap();
        let mut tail = Vec::new();
        r.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &plain[plain.len() - 10..]);
    }

    #[test]
    fn a_header_longer_than_the_limit_is_neither_written_nor_read() {
        let keys: Vec<String> = (0..700)
            .map(|_| age::x25519::Identity::generate().to_public().to_string())
            .collect();
        let e = Sealer::to_recipients(&keys).unwrap_err();
        assert!(
            matches!(e, KeyError::TooManyRecipients { count: 700, .. }),
            "{e}"
        );
        // A stanza of one megabyte is refused after reading the first 64 KiB of it.
        let mut f = AGE_MAGIC.to_vec();
        f.extend_from_slice(b"-> X25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
        for _ in 0..(1 << 20) / 65 {
            f.extend_from_slice(&[b'A'; 64]);
            f.push(b'\n');
        }
        f.extend_from_slice(b"\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
        let mut o = Opener::new();
        o.add_x25519(age::x25519::Identity::generate());
        let e = o.open(&f, "entry v").unwrap_err();
        assert_eq!(e.code(), ErrorCode::SealedCorrupt, "{e}");
        assert!(e.detail().contains("longer than 64 KiB"), "{e}");
        // A truncated or foreign header is still age's to describe.
        let e = o.open(&f[..1000], "entry v").unwrap_err();
        assert_eq!(e.code(), ErrorCode::SealedCorrupt, "{e}");
        let e = o
            .open(b"age-encryption.org/v2\nwhatever\n", "entry v")
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::SealedCorrupt, "{e}");
    }

    #[test]
    fn a_recipients_file_must_name_a_recipient() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.txt");
        std::fs::write(&f, "# nobody yet\n\n").unwrap();
        let e = read_recipients_file(&f).unwrap_err();
        assert!(matches!(e, KeyError::EmptyRecipientsFile(_)), "{e}");
        assert!(e.to_string().contains("r.txt") && e.to_string().contains("hint:"));
        let (_, r) = generate_identity("2026-01-01T00:00:00Z");
        std::fs::write(&f, format!("# one\n{r}\n")).unwrap();
        assert_eq!(read_recipients_file(&f).unwrap(), vec![r]);
    }

    #[test]
    fn fingerprints_name_the_set_not_its_order() {
        let (_, a) = generate_identity("x");
        let (_, b) = generate_identity("x");
        let ab = Sealer::to_recipients(&[&a, &b]).unwrap().fingerprint();
        assert_eq!(ab, Sealer::to_recipients(&[&b, &a]).unwrap().fingerprint());
        assert_ne!(ab, Sealer::to_recipients(&[&a]).unwrap().fingerprint());
        assert!(!ab.contains(&a));
        let p = Sealer::with_passphrase(SecretString::from("secret words".to_string())).unwrap();
        assert_eq!(p.fingerprint(), "passphrase");
    }

    #[test]
    fn bad_recipients() {
        assert!(Sealer::to_recipients(&["nope"]).is_err());
        assert!(Sealer::to_recipients::<&str>(&[]).is_err());
    }
}
