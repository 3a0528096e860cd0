//! Language tags (Lexicon `language` format, <https://atproto.com/specs/lexicon>): BCP 47
//! (RFC 5646) tags such as `en`, `pt-BR` or `zh-Hant`.
//!
//! Owns: [`Language`]. Must not: consult the IANA subtag registry or canonicalise tags.
//!
//! Two levels, decided here once:
//! - [`Language::check_syntax`] checks well-formedness (RFC 5646 §2.1) as atproto profiles
//!   it: one of the 26 grandfathered tags exactly as registered; or a private-use tag
//!   (`x-…`, singleton in either case); or a `langtag` whose primary language subtag is 2
//!   or 3 lowercase ASCII letters (atproto does not accept uppercase primary subtags nor
//!   the reserved 4-letter and registered 5-8-letter forms), followed in order by up to
//!   three 3-letter extlangs, a 4-letter script, a region (2 letters or 3 digits),
//!   variants (5-8 alphanumerics, or a digit and 3 alphanumerics), extensions (a singleton
//!   other than `x` and one or more 2-8 alphanumeric subtags) and a private-use part. At
//!   most [`LANGUAGE_LENGTH_BYTES_MAX`] bytes.
//! - [`Language::parse`] also applies the validity rules of RFC 5646 §2.2.5/§2.2.6 that are
//!   registry-free: no variant subtag and no extension singleton appears twice (compared
//!   case-insensitively).
//!
//! Does not check: that subtags are registered, or the case conventions of script and
//! region subtags.

use super::SyntaxError;
use crate::config::limits::LANGUAGE_LENGTH_BYTES_MAX;

/// The grandfathered tags of RFC 5646 §2.2.8, irregular then regular.
const GRANDFATHERED: [&str; 26] = [
    "en-GB-oed",
    "i-ami",
    "i-bnn",
    "i-default",
    "i-enochian",
    "i-hak",
    "i-klingon",
    "i-lux",
    "i-mingo",
    "i-navajo",
    "i-pwn",
    "i-tao",
    "i-tay",
    "i-tsu",
    "sgn-BE-FR",
    "sgn-BE-NL",
    "sgn-CH-DE",
    "art-lojban",
    "cel-gaulish",
    "no-bok",
    "no-nyn",
    "zh-guoyu",
    "zh-hakka",
    "zh-min",
    "zh-min-nan",
    "zh-xiang",
];

/// A valid BCP 47 language tag, kept as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Language(String);

impl Language {
    /// Checks well-formedness and the no-duplicate rules, and keeps an owned copy.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        let shape = check_well_formed(s).map_err(SyntaxError::Language)?;
        if let Shape::LangTag {
            duplicate: Some(detail),
        } = shape
        {
            return Err(SyntaxError::Language(detail));
        }
        Ok(Self(s.to_owned()))
    }

    /// Checks well-formedness only: `de-DE-1901-1901` passes.
    pub fn check_syntax(s: &str) -> Result<(), SyntaxError> {
        check_well_formed(s)
            .map(|_| ())
            .map_err(SyntaxError::Language)
    }

    /// The tag as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first subtag: the primary language (`pt` in `pt-BR`), or `i` / `x` for
    /// grandfathered and private-use tags.
    pub fn primary_subtag(&self) -> &str {
        self.0.split('-').next().unwrap_or_default()
    }
}

impl_string_traits!(Language);

/// Which production of the grammar a well-formed tag matched.
#[derive(Clone, Copy)]
enum Shape {
    Grandfathered,
    PrivateUse,
    /// A `langtag`, with the first repeated variant or singleton found, if any: well-formed
    /// but not valid.
    LangTag {
        duplicate: Option<&'static str>,
    },
}

fn check_well_formed(s: &str) -> Result<Shape, &'static str> {
    if s.len() > LANGUAGE_LENGTH_BYTES_MAX {
        return Err("too long");
    }
    if GRANDFATHERED.contains(&s) {
        return Ok(Shape::Grandfathered);
    }
    let subtags: Vec<&str> = s.split('-').collect();
    if subtags.iter().any(|t| t.is_empty()) {
        return Err("empty subtag");
    }
    let (first, rest) = subtags.split_first().ok_or("empty")?;
    if first.eq_ignore_ascii_case("x") {
        return check_private_use(rest).map(|()| Shape::PrivateUse);
    }
    if !(2..=3).contains(&first.len()) || !first.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err("primary language is not 2-3 lowercase letters");
    }
    check_langtag_tail(rest)
}

/// Checks the subtags after the primary language, in grammar order, noting duplicates.
fn check_langtag_tail(tail: &[&str]) -> Result<Shape, &'static str> {
    let at = |i: usize| tail.get(i).copied();
    let mut duplicate = None;
    let mut i = 0;
    while i < 3 && at(i).is_some_and(|t| is_alpha(t, 3, 3)) {
        i += 1;
    }
    if at(i).is_some_and(|t| is_alpha(t, 4, 4)) {
        i += 1;
    }
    if at(i).is_some_and(is_region) {
        i += 1;
    }
    let variants_from = i;
    while let Some(variant) = at(i).filter(|t| is_variant(t)) {
        let earlier = tail.get(variants_from..i).unwrap_or_default();
        if earlier.iter().any(|v| v.eq_ignore_ascii_case(variant)) {
            duplicate = duplicate.or(Some("duplicate variant subtag"));
        }
        i += 1;
    }
    let mut singletons_seen: Vec<&str> = Vec::new();
    while let Some(singleton) = at(i).filter(|t| is_extension_singleton(t)) {
        if singletons_seen
            .iter()
            .any(|s| s.eq_ignore_ascii_case(singleton))
        {
            duplicate = duplicate.or(Some("duplicate extension singleton"));
        }
        singletons_seen.push(singleton);
        i += 1;
        let first_extension_subtag = i;
        while at(i).is_some_and(|t| is_alnum(t, 2, 8)) {
            i += 1;
        }
        if i == first_extension_subtag {
            return Err("extension without subtags");
        }
    }
    match tail.get(i..).unwrap_or_default() {
        [] => Ok(Shape::LangTag { duplicate }),
        [x, private @ ..] if x.eq_ignore_ascii_case("x") => {
            check_private_use(private).map(|()| Shape::LangTag { duplicate })
        }
        _ => Err("subtag out of place"),
    }
}

/// The subtags after an `x` singleton: one or more of 1-8 alphanumerics.
fn check_private_use(subtags: &[&str]) -> Result<(), &'static str> {
    if subtags.is_empty() {
        return Err("private use without subtags");
    }
    if !subtags.iter().all(|t| is_alnum(t, 1, 8)) {
        return Err("bad private-use subtag");
    }
    Ok(())
}

fn is_alpha(t: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_alnum(t: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_region(t: &str) -> bool {
    is_alpha(t, 2, 2) || (t.len() == 3 && t.bytes().all(|b| b.is_ascii_digit()))
}

fn is_variant(t: &str) -> bool {
    is_alnum(t, 5, 8) || (is_alnum(t, 4, 4) && t.starts_with(|c: char| c.is_ascii_digit()))
}

fn is_extension_singleton(t: &str) -> bool {
    is_alnum(t, 1, 1) && !t.eq_ignore_ascii_case("x")
}
