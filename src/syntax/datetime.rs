//! Datetimes (<https://atproto.com/specs/lexicon#datetime>): the profile of RFC 3339 that
//! is also valid ISO 8601, such as `1985-04-12T23:20:50.123Z`.
//!
//! Owns: [`Datetime`] and its conversion to UNIX microseconds. Must not: read the clock,
//! reformat or normalise the string (a datetime is kept byte for byte as written).
//!
//! Two levels, decided here once:
//! - [`Datetime::check_syntax`] checks the shape only: `YYYY-MM-DDTHH:MM:SS`, an optional
//!   `.` with one or more digits, then `Z` or `+HH:MM` / `-HH:MM`; uppercase `T` and `Z`;
//!   `-00:00` refused (ISO 8601 does not allow it); at most [`DATETIME_LENGTH_BYTES_MAX`]
//!   bytes. Every field is a run of digits of the exact width; values are not judged.
//! - [`Datetime::parse`] does the syntax check and then the calendar: month 1-12, a day
//!   that exists in that month (leap years included), hour 0-23, minute 0-59, second 0-59,
//!   offset hours 0-23 and minutes 0-59; and the instant, normalised to UTC, must fall in
//!   years 0000 to 9999 (so `0000-01-01T00:00:00+01:00`, which is in year -1, is refused).
//!
//! Does not accept: leap seconds (`:60`), which neither reference implementation (the
//! JavaScript `Date` and Go `time` parsers) accepts either. Fractional seconds beyond the
//! microsecond are kept in the string but truncated in [`Datetime::unix_micros`].

use std::cmp::Ordering;

use super::SyntaxError;
use crate::config::limits::DATETIME_LENGTH_BYTES_MAX;

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
/// Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar.
const DAYS_FROM_YEAR_ZERO_MARCH_TO_EPOCH: i64 = 719_468;
/// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z as UNIX seconds: the accepted range.
const UNIX_SECONDS_YEAR_0: i64 = -62_167_219_200;
const UNIX_SECONDS_YEAR_10000: i64 = 253_402_300_800;

/// A valid datetime, kept as written, with its instant precomputed. Equality and hashing
/// are on the string; ordering is chronological (ties broken by the string).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Datetime {
    text: String,
    unix_micros: i64,
}

/// The numeric fields of a syntactically valid datetime, not yet range-checked.
struct Fields {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// Fractional seconds truncated to microseconds.
    micros: u32,
    /// Offset east of UTC, in minutes, and its hour/minute fields for range checks.
    offset_minutes: i64,
    offset_hour: u32,
    offset_minute: u32,
}

impl Datetime {
    /// Checks syntax and calendar (see the module documentation) and keeps an owned copy.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        let fields = parse_fields(s).map_err(SyntaxError::Datetime)?;
        let unix_micros = to_unix_micros(&fields).map_err(SyntaxError::Datetime)?;
        Ok(Self {
            text: s.to_owned(),
            unix_micros,
        })
    }

    /// Checks the syntax only: impossible dates such as month 13 pass.
    pub fn check_syntax(s: &str) -> Result<(), SyntaxError> {
        parse_fields(s).map(|_| ()).map_err(SyntaxError::Datetime)
    }

    /// The datetime as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Microseconds since 1970-01-01T00:00:00Z (negative before), fraction truncated.
    pub fn unix_micros(&self) -> i64 {
        self.unix_micros
    }
}

impl_string_traits!(Datetime);

impl Ord for Datetime {
    fn cmp(&self, other: &Self) -> Ordering {
        self.unix_micros
            .cmp(&other.unix_micros)
            .then_with(|| self.text.cmp(&other.text))
    }
}

impl PartialOrd for Datetime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A cursor over the bytes of a candidate datetime.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    /// Consumes exactly `width` ASCII digits and returns their value.
    fn digits(&mut self, width: usize) -> Result<u32, &'static str> {
        let (run, rest) = self.rest.split_at_checked(width).ok_or("truncated field")?;
        if !run.iter().all(u8::is_ascii_digit) {
            return Err("field is not zero-padded digits");
        }
        self.rest = rest;
        Ok(run.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), &'static str> {
        match self.rest.split_first() {
            Some((&b, rest)) if b == byte => {
                self.rest = rest;
                Ok(())
            }
            _ => Err(what),
        }
    }

    fn take_if(&mut self, byte: u8) -> bool {
        self.expect(byte, "").is_ok()
    }

    /// Consumes one or more digits (the fraction) and returns them truncated to micros.
    fn fraction_micros(&mut self) -> Result<u32, &'static str> {
        let len = self.rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 {
            return Err("empty fractional seconds");
        }
        let (run, rest) = self.rest.split_at_checked(len).ok_or("truncated field")?;
        self.rest = rest;
        let mut micros = 0u32;
        for i in 0..6 {
            let digit = run.get(i).map_or(0, |d| u32::from(d - b'0'));
            micros = micros * 10 + digit;
        }
        Ok(micros)
    }
}

fn parse_fields(s: &str) -> Result<Fields, &'static str> {
    if s.len() > DATETIME_LENGTH_BYTES_MAX {
        return Err("too long");
    }
    let mut c = Cursor { rest: s.as_bytes() };
    let year = c.digits(4)?;
    c.expect(b'-', "expected '-' after year")?;
    let month = c.digits(2)?;
    c.expect(b'-', "expected '-' after month")?;
    let day = c.digits(2)?;
    c.expect(b'T', "expected uppercase 'T'")?;
    let hour = c.digits(2)?;
    c.expect(b':', "expected ':' after hour")?;
    let minute = c.digits(2)?;
    c.expect(b':', "expected ':' after minute")?;
    let second = c.digits(2)?;
    let micros = if c.take_if(b'.') {
        c.fraction_micros()?
    } else {
        0
    };
    let (offset_minutes, offset_hour, offset_minute) = parse_offset(&mut c)?;
    if !c.rest.is_empty() {
        return Err("trailing characters");
    }
    Ok(Fields {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micros,
        offset_minutes,
        offset_hour,
        offset_minute,
    })
}

/// Parses `Z` or `±HH:MM`; returns the signed offset in minutes and its two fields.
fn parse_offset(c: &mut Cursor<'_>) -> Result<(i64, u32, u32), &'static str> {
    if c.take_if(b'Z') {
        return Ok((0, 0, 0));
    }
    let sign = if c.take_if(b'+') {
        1
    } else if c.take_if(b'-') {
        -1
    } else {
        return Err("missing timezone ('Z' or an offset)");
    };
    let hour = c.digits(2)?;
    c.expect(b':', "expected ':' in offset")?;
    let minute = c.digits(2)?;
    if sign < 0 && hour == 0 && minute == 0 {
        return Err("-00:00 offset is not ISO 8601");
    }
    Ok((sign * i64::from(hour * 60 + minute), hour, minute))
}

fn to_unix_micros(f: &Fields) -> Result<i64, &'static str> {
    if !(1..=12).contains(&f.month) {
        return Err("month out of range");
    }
    if f.day < 1 || f.day > days_in_month(f.year, f.month) {
        return Err("day out of range");
    }
    if f.hour > 23 || f.minute > 59 || f.second > 59 {
        return Err("time out of range");
    }
    if f.offset_hour > 23 || f.offset_minute > 59 {
        return Err("offset out of range");
    }
    let days = days_from_civil(i64::from(f.year), i64::from(f.month), i64::from(f.day));
    let local_seconds =
        days * SECONDS_PER_DAY + i64::from(f.hour * 3600 + f.minute * 60 + f.second);
    let utc_seconds = local_seconds - f.offset_minutes * 60;
    if utc_seconds < UNIX_SECONDS_YEAR_0 {
        return Err("normalizes to a negative year");
    }
    if utc_seconds >= UNIX_SECONDS_YEAR_10000 {
        return Err("normalizes to a year after 9999");
    }
    Ok(utc_seconds * MICROS_PER_SECOND + i64::from(f.micros))
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date, counting years from March so the
/// leap day falls at the end of the counted year (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - DAYS_FROM_YEAR_ZERO_MARCH_TO_EPOCH
}
