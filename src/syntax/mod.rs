//! AT Protocol string syntax primitives: DIDs, handles, NSIDs, TIDs, record keys, AT-URIs,
//! datetimes, CID strings, language tags, generic URIs and at-identifiers.
//!
//! Owns: one newtype per Lexicon string format, each buildable only through a checking
//! `parse`, and the module's single error type [`SyntaxError`].
//!
//! Must not: resolve anything (DNS, DID documents, PLC), decode CIDs to bytes (that is
//! the frame module's job), allocate beyond the one owned copy of the input, or keep any
//! global state.
//!
//! Always checks: the syntax rules of the atproto specs (did, handle, nsid, tid,
//! record-key, at-uri-scheme, lexicon datetime/language/uri, data-model CID string), byte
//! for byte, with no trimming or normalisation of the input. Every length bound is a named
//! constant in [`crate::config::limits`].
//!
//! Does not check: whether an identifier exists or is allowed by policy (reserved TLDs,
//! blessed DID methods, registered language subtags), percent-encoding inside DIDs, or
//! whether a CID string decodes. Each type's file says what else it leaves out.

use std::fmt;

/// `Display`, `FromStr`, `TryFrom<&str>` and `AsRef<str>` for a type with
/// `parse(&str) -> Result<Self, SyntaxError>` and `as_str(&self) -> &str`.
macro_rules! impl_string_traits {
    ($ty:ident) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::syntax::SyntaxError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = $crate::syntax::SyntaxError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    };
}

mod at_identifier;
mod at_uri;
mod cid_string;
mod datetime;
mod did;
mod handle;
mod language;
mod nsid;
mod record_key;
mod tid;
mod uri;

pub use at_identifier::AtIdentifier;
pub use at_uri::AtUri;
pub use cid_string::CidString;
pub use datetime::Datetime;
pub use did::Did;
pub use handle::Handle;
pub use language::Language;
pub use nsid::Nsid;
pub use record_key::RecordKey;
pub use tid::Tid;
pub use uri::Uri;

/// A string that is not a valid instance of the format it was parsed as. The variant names
/// the format; the payload is a short fixed description of the first rule broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyntaxError {
    /// Not a valid DID.
    Did(&'static str),
    /// Not a valid handle.
    Handle(&'static str),
    /// Not a valid NSID.
    Nsid(&'static str),
    /// Not a valid TID, or TID parts out of range.
    Tid(&'static str),
    /// Not a valid record key.
    RecordKey(&'static str),
    /// Not a valid (Lexicon-restricted) AT-URI.
    AtUri(&'static str),
    /// Not a valid datetime, by syntax or by calendar.
    Datetime(&'static str),
    /// Not a valid CID string.
    CidString(&'static str),
    /// Not a well-formed (or not a valid) BCP 47 language tag.
    Language(&'static str),
    /// Not a valid generic URI.
    Uri(&'static str),
    /// Neither a valid DID nor a valid handle.
    AtIdentifier(&'static str),
}

impl SyntaxError {
    /// A short snake_case label naming the format that was rejected, bounded for use as a
    /// metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Did(_) => "did_invalid",
            Self::Handle(_) => "handle_invalid",
            Self::Nsid(_) => "nsid_invalid",
            Self::Tid(_) => "tid_invalid",
            Self::RecordKey(_) => "record_key_invalid",
            Self::AtUri(_) => "at_uri_invalid",
            Self::Datetime(_) => "datetime_invalid",
            Self::CidString(_) => "cid_string_invalid",
            Self::Language(_) => "language_invalid",
            Self::Uri(_) => "uri_invalid",
            Self::AtIdentifier(_) => "at_identifier_invalid",
        }
    }

    /// The fixed description of the rule that was broken.
    pub fn detail(&self) -> &'static str {
        match self {
            Self::Did(d)
            | Self::Handle(d)
            | Self::Nsid(d)
            | Self::Tid(d)
            | Self::RecordKey(d)
            | Self::AtUri(d)
            | Self::Datetime(d)
            | Self::CidString(d)
            | Self::Language(d)
            | Self::Uri(d)
            | Self::AtIdentifier(d) => d,
        }
    }

    fn format_name(&self) -> &'static str {
        match self {
            Self::Did(_) => "DID",
            Self::Handle(_) => "handle",
            Self::Nsid(_) => "NSID",
            Self::Tid(_) => "TID",
            Self::RecordKey(_) => "record key",
            Self::AtUri(_) => "AT-URI",
            Self::Datetime(_) => "datetime",
            Self::CidString(_) => "CID string",
            Self::Language(_) => "language tag",
            Self::Uri(_) => "URI",
            Self::AtIdentifier(_) => "at-identifier",
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.format_name(), self.detail())
    }
}

impl std::error::Error for SyntaxError {}

/// Checks one DNS-style label shared by handles and NSID authorities: 1 to 63 ASCII
/// letters, digits and hyphens, not starting or ending with a hyphen. The caller has
/// already rejected characters outside `[A-Za-z0-9.-]`.
fn check_domain_label(label: &str) -> Result<(), &'static str> {
    if label.is_empty() {
        return Err("empty label");
    }
    if label.len() > crate::config::limits::DOMAIN_LABEL_LENGTH_BYTES_MAX {
        return Err("label too long");
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("label starts or ends with a hyphen");
    }
    Ok(())
}

/// True when every byte is an ASCII letter, digit, `.` or `-` (the handle/NSID alphabet).
fn is_domain_alphabet(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}
