//! The error codes of spec §13, one [`BundleError`] variant per row.
//!
//! Every problem the bundle code reports about a bundle, a bag or a staged export is a
//! [`BundleError`]. Its variant is the spec's failure class, its `subject` names the object
//! (an entry, a file, a record), and its message shows the code, e.g.
//! `entry data/a.py: digest mismatch [E206]`. A test keeps this table and the spec in sync.

use crate::hints::Hint;
use serde::Serialize;
use std::fmt;

macro_rules! error_codes {
    ($( $code:literal $variant:ident $summary:literal $hint:expr ;)*) => {
        /// A stable error code of spec §13.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( #[doc = $summary] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The code as printed, e.g. `E206`.
            pub fn code(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// The code's name in the spec table, e.g. `DigestMismatch`.
            pub fn name(self) -> &'static str {
                match self { $( ErrorCode::$variant => stringify!($variant), )* }
            }

            /// A one-line summary of what the code means.
            pub fn summary(self) -> &'static str {
                match self { $( ErrorCode::$variant => $summary, )* }
            }

            /// The catalogue entry that says what the user can do about it, when there is
            /// something to do.
            pub fn hint_id(self) -> Option<Hint> {
                match self { $( ErrorCode::$variant => $hint, )* }
            }

            /// What the user can do about it, when there is something to do.
            pub fn hint(self) -> Option<&'static str> {
                self.hint_id().map(Hint::text)
            }
        }

        /// A problem with a bundle, a bag or a staged export; one variant per spec §13 row.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum BundleError {
            $(
                #[doc = $summary]
                $variant {
                    /// What the problem is about: an entry, a file, a record.
                    subject: String,
                    /// What is wrong with it.
                    detail: String,
                },
            )*
        }

        impl BundleError {
            /// Builds the error of `code` about `subject`.
            pub fn new(code: ErrorCode, subject: impl Into<String>, detail: impl Into<String>) -> Self {
                let (subject, detail) = (subject.into(), detail.into());
                match code { $( ErrorCode::$variant => BundleError::$variant { subject, detail }, )* }
            }

            /// The spec code of this error.
            pub fn code(&self) -> ErrorCode {
                match self { $( BundleError::$variant { .. } => ErrorCode::$variant, )* }
            }

            /// What the error is about.
            pub fn subject(&self) -> &str {
                match self { $( BundleError::$variant { subject, .. } => subject, )* }
            }

            /// What is wrong.
            pub fn detail(&self) -> &str {
                match self { $( BundleError::$variant { detail, .. } => detail, )* }
            }
        }
    };
}

error_codes! {
    "E100" NotAZip "not a readable zip archive" Some(Hint::NotAZip);
    "E101" UnsafeName "unsafe entry name" None;
    "E102" NotRegular "entry is a link or special file" None;
    "E103" DuplicateName "duplicate entry name" None;
    "E104" NameCollision "names collide under case folding or Unicode normalization" None;
    "E105" Overlap "entries overlap, leave gaps, or disagree with the central directory" None;
    "E106" UnsupportedMethod "unsupported compression method" None;
    "E107" Encrypted "zip-level encryption is not allowed" None;
    "E108" NotOneFolder "entries are not inside one valid bag folder" None;
    "E109" SizeExceeded "entry data exceeds its declared size" None;
    "E110" RatioExceeded "compression ratio beyond the allowed bound" None;
    "E111" CorruptData "entry data is corrupt" None;
    "E112" DirectoryWithData "directory entry has data" None;
    "E200" BagitDeclaration "bagit.txt is missing or invalid" None;
    "E201" BagInfo "bag-info.txt is missing or invalid" None;
    "E202" PayloadOxum "Payload-Oxum disagrees with the payload" None;
    "E203" Manifest "manifest-sha256.txt is missing or invalid" None;
    "E204" Unlisted "entry is not listed in its manifest" None;
    "E205" Missing "manifest names a file that is not there" None;
    "E206" DigestMismatch "payload digest mismatch" None;
    "E207" TagManifest "tagmanifest-sha256.txt is missing or invalid" None;
    "E208" TagDigestMismatch "tag file digest mismatch" None;
    "E209" FetchFile "fetch.txt is not allowed" None;
    "E300" InventorySyntax "dbxport.json is missing or invalid" None;
    "E301" FormatName "not a dbxport bundle" None;
    "E302" UnsupportedVersion "unsupported format major version" Some(Hint::UnsupportedVersion);
    "E303" RecordMismatch "record disagrees with the stored file" None;
    "E304" Unclaimed "payload not claimed by exactly one record" None;
    "E305" IdentityMismatch "bag-info.txt and dbxport.json disagree" None;
    "E306" UnsafeStoredName "stored name breaks the safe-name rules" None;
    "E307" RecordInvalid "record breaks the rules of its kind" Some(Hint::RecordInvalid);
    "E400" IdentityRequired "an identity is needed to open this" Some(Hint::IdentityRequired);
    "E401" NoMatchingIdentity "no given identity opens this" Some(Hint::NoMatchingIdentity);
    "E402" SealedCorrupt "sealed file is invalid" None;
    "E403" PlaintextDigest "opened value differs from its sealed digest" None;
    "E404" SealedIndex "sealed digest index is missing or inconsistent" None;
    "E500" TargetNotEmpty "output already exists" Some(Hint::TargetNotEmpty);
    "E501" NotABag "not a bag folder" Some(Hint::NotABag);
    "E502" Io "input/output error" Some(Hint::Io);
    "E503" Staging "staged export is inconsistent or misused" None;
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject().is_empty() {
            write!(f, "{} [{}]", self.detail(), self.code().code())
        } else {
            write!(
                f,
                "{}: {} [{}]",
                self.subject(),
                self.detail(),
                self.code().code()
            )
        }
    }
}

impl std::error::Error for BundleError {}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for BundleError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("BundleError", 5)?;
        st.serialize_field("code", self.code().code())?;
        st.serialize_field("name", self.code().name())?;
        st.serialize_field("subject", self.subject())?;
        st.serialize_field("message", self.detail())?;
        st.serialize_field("hint", &self.hint())?;
        st.end()
    }
}

impl BundleError {
    /// What the user can do about this problem: the code's hint, or a more specific one where
    /// the code's would mislead (a passphrase work factor above the limit is E401, but no
    /// other identity or passphrase opens it).
    pub fn hint(&self) -> Option<&'static str> {
        self.hint_id().map(Hint::text)
    }

    /// The catalogue entry of [`BundleError::hint`].
    pub fn hint_id(&self) -> Option<Hint> {
        crate::bundle::seal::specific_hint(self)
            .or_else(|| self.is_no_room().then_some(Hint::NoRoom))
            .or_else(|| crate::bundle::unpack::specific_hint(self))
            .or(self.code().hint_id())
    }

    /// An I/O failure (E502) about `subject`. A full disk says so first ([`NO_ROOM`]), so that
    /// the message and the hint name the remedy.
    pub fn io(subject: impl Into<String>, err: &std::io::Error) -> Self {
        let detail = if no_room(err) {
            format!("{NO_ROOM}: {err}")
        } else {
            err.to_string()
        };
        BundleError::new(ErrorCode::Io, subject, detail)
    }

    /// True for an I/O failure (E502) because the disk, the quota or the largest file allowed
    /// was full.
    pub fn is_no_room(&self) -> bool {
        self.code() == ErrorCode::Io && self.detail().starts_with(NO_ROOM)
    }
}

/// How the detail of an I/O failure on a full disk starts.
pub const NO_ROOM: &str = "no room left";

/// True when a write failed for want of room: the disk is full (ENOSPC), the user's quota is
/// used up (EDQUOT), or the file would pass the largest size the file system (FAT32: 4 GiB) or
/// the process's limit (`ulimit -f`) allows (EFBIG).
pub fn no_room(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::StorageFull | ErrorKind::FileTooLarge | ErrorKind::QuotaExceeded
    )
}

impl BundleError {}

/// Shorthand for results in the bundle module.
pub type Result<T, E = BundleError> = std::result::Result<T, E>;

/// Adds an I/O subject to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    /// Maps an I/O error to E502 about `subject`.
    fn ctx(self, subject: impl fmt::Display) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, subject: impl fmt::Display) -> Result<T> {
        self.map_err(|e| {
            // A writer rendering from a source that failed (a staged record that no longer
            // reads) carries the source's error through `io::Write`: that error, not E502.
            if e.get_ref().is_some_and(|i| i.is::<BundleError>()) {
                if let Ok(inner) = e.into_inner().expect("checked").downcast::<BundleError>() {
                    return *inner;
                }
                unreachable!("checked to be a BundleError");
            }
            BundleError::io(subject.to_string(), &e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's §13 table and this enum list the same codes with the same names, in order.
    #[test]
    fn spec_table_matches_enum() {
        let spec = include_str!("../../spec/bundle-format.md");
        let start = spec.find("## 13. Error codes").expect("spec has §13");
        let end = spec[start..].find("## 14.").map(|e| start + e).unwrap();
        let rows: Vec<(String, String)> = spec[start..end]
            .lines()
            .filter(|l| l.starts_with("| E"))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].to_string(), cells[2].to_string())
            })
            .collect();
        let ours: Vec<(String, String)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.code().to_string(), c.name().to_string()))
            .collect();
        assert_eq!(rows, ours, "spec §13 and ErrorCode disagree");
    }

    // /dev/full answers every write with ENOSPC: a full disk, through the normal write path.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_says_so_and_hints_at_making_room() {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let err = f
            .write_all(&[0u8; 4096])
            .and_then(|_| f.flush())
            .unwrap_err();
        let e = BundleError::io("file out.zip", &err);
        assert!(e.is_no_room(), "{e}");
        assert!(
            e.to_string().starts_with("file out.zip: no room left: "),
            "{e}"
        );
        assert_eq!(e.hint_id(), Some(Hint::NoRoom));
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let other = BundleError::io("file out.zip", &denied);
        assert!(!other.is_no_room());
        assert_eq!(other.hint_id(), Some(Hint::Io));
        let unpack = BundleError::new(
            ErrorCode::Io,
            "folder out",
            format!(
                "{}: the bundle expands to 9 bytes",
                crate::bundle::unpack::NO_SPACE
            ),
        );
        assert_eq!(unpack.hint_id(), Some(Hint::UnpackNoSpace));
    }

    #[test]
    fn message_names_subject_and_code() {
        let e = BundleError::new(
            ErrorCode::DigestMismatch,
            "entry data/a.py",
            "digest mismatch",
        );
        assert_eq!(e.to_string(), "entry data/a.py: digest mismatch [E206]");
        assert_eq!(e.code(), ErrorCode::DigestMismatch);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "E206");
    }
}

/// Several problems at once: what `pack` and `unpack` return, naming every difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<BundleError>);

impl Problems {
    /// The first problem's code, if any.
    pub fn first_code(&self) -> Option<ErrorCode> {
        self.0.first().map(BundleError::code)
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl From<BundleError> for Problems {
    fn from(e: BundleError) -> Self {
        Problems(vec![e])
    }
}

/// Problems as a check collects them, within the bound of spec §10.3: the first
/// [`ProblemList::MAX_KEPT`] distinct problems (and at most [`ProblemList::MAX_TEXT`] bytes of
/// their text) are kept in order; past that, problems are only counted per code. A hostile
/// bundle can hold a million broken records, and naming each (with its path, again) would cost
/// more memory than the records themselves.
#[derive(Debug, Default)]
pub struct ProblemList {
    kept: Vec<BundleError>,
    seen: std::collections::HashSet<(ErrorCode, String, String)>,
    text: usize,
    more: std::collections::BTreeMap<ErrorCode, u64>,
}

impl ProblemList {
    /// Most problems kept with their text.
    pub const MAX_KEPT: usize = 1000;
    /// Most bytes of subject and message kept, over all kept problems.
    pub const MAX_TEXT: usize = 4 << 20;

    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `e`, unless the same problem (code, subject, message) is already listed; past the
    /// bound it is only counted.
    pub fn push(&mut self, e: BundleError) {
        let size = e.subject().len() + e.detail().len();
        if self.kept.len() >= Self::MAX_KEPT || self.text + size > Self::MAX_TEXT {
            *self.more.entry(e.code()).or_default() += 1;
            return;
        }
        let key = (e.code(), e.subject().to_string(), e.detail().to_string());
        if self.seen.insert(key) {
            self.text += size;
            self.kept.push(e);
        }
    }

    /// True when no problem was found.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.more.is_empty()
    }

    /// The first problem found, if any.
    pub fn first(&self) -> Option<&BundleError> {
        self.kept.first()
    }

    /// Adds every problem of `other` (kept ones as [`ProblemList::push`] would, counted ones
    /// to the counts).
    pub fn append(&mut self, other: ProblemList) {
        for e in other.kept {
            self.push(e);
        }
        for (code, n) in other.more {
            *self.more.entry(code).or_default() += n;
        }
    }

    /// The kept problems, then one line per code for those only counted.
    pub fn into_vec(self) -> Vec<BundleError> {
        let mut v = self.kept;
        for (code, n) in self.more {
            v.push(BundleError::new(
                code,
                "bundle",
                format!(
                    "{n} more problem(s) with this code not listed (a report names the first {} problems, spec §10.3)",
                    Self::MAX_KEPT
                ),
            ));
        }
        v
    }
}

impl Extend<BundleError> for ProblemList {
    fn extend<I: IntoIterator<Item = BundleError>>(&mut self, iter: I) {
        for e in iter {
            self.push(e);
        }
    }
}

#[cfg(test)]
mod problem_list_tests {
    use super::*;

    #[test]
    fn keeps_the_first_and_counts_the_rest_per_code() {
        let mut l = ProblemList::new();
        for i in 0..ProblemList::MAX_KEPT + 5 {
            l.push(BundleError::new(
                ErrorCode::RecordMismatch,
                format!("record {i}"),
                "x",
            ));
        }
        l.push(BundleError::new(ErrorCode::Unclaimed, "entry a", "x"));
        let v = l.into_vec();
        assert_eq!(v.len(), ProblemList::MAX_KEPT + 2);
        assert!(v[ProblemList::MAX_KEPT].detail().starts_with("5 more"));
        assert_eq!(v[ProblemList::MAX_KEPT + 1].code(), ErrorCode::Unclaimed);
    }

    #[test]
    fn bounds_text_and_drops_repeats() {
        let mut l = ProblemList::new();
        let long = "p".repeat(1 << 20);
        for i in 0..10 {
            l.push(BundleError::new(
                ErrorCode::RecordMismatch,
                format!("r{i}"),
                &long,
            ));
        }
        l.push(BundleError::new(ErrorCode::RecordMismatch, "r0", &long));
        let v = l.into_vec();
        assert_eq!(v.len(), 4, "three fit in 4 MiB, the rest counted");
        // Past the bound nothing is compared: the repeat of r0 is counted too.
        assert!(v[3].detail().starts_with("8 more"), "{}", v[3].detail());
        let mut l = ProblemList::new();
        l.push(BundleError::new(ErrorCode::Unclaimed, "a", "x"));
        l.push(BundleError::new(ErrorCode::Unclaimed, "a", "x"));
        assert_eq!(l.into_vec().len(), 1);
    }
}
