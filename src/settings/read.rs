//! How each kind of value in the configuration file is read: what serde reads it as (with
//! its place, so a message can name its line) and how it is checked. The table of settings
//! names one of these readers for every key.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use toml::Spanned;

use crate::config::{check_entries, ChannelSpec, ConfigError, Entry, TomlFile};
use crate::multicast::GroupRange;

/// The longest message of the day, in bytes.
pub const MAX_MOTD: usize = 8192;
/// The most server operators.
pub const MAX_OPERATORS: usize = 256;

/// One kind of value in the file.
pub(crate) trait Read {
    /// What serde reads the value as.
    type Raw;
    /// What the check makes of it.
    type Value;
    /// Checks `raw`, the value read `at` its key.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`], naming the key, the line and what is wrong.
    fn read(&self, raw: Self::Raw, at: &At<'_>) -> Result<Self::Value, ConfigError>;
}

/// Where a value is read: its key (as the file spells it), in its file.
pub(crate) struct At<'a> {
    /// The key, `max-users`.
    pub key: &'a str,
    /// The file.
    pub file: &'a TomlFile<'a>,
}

impl At<'_> {
    /// The error for the value at byte `offset` of the file.
    fn invalid(&self, offset: usize, message: String) -> ConfigError {
        self.file.invalid(offset, message)
    }
}

/// A whole number from `.0` to `.1`.
pub(crate) struct Int(pub i64, pub i64);

impl Read for Int {
    type Raw = Spanned<i64>;
    type Value = i64;
    fn read(&self, raw: Self::Raw, at: &At<'_>) -> Result<i64, ConfigError> {
        let (&Int(lo, hi), n) = (self, *raw.get_ref());
        if (lo..=hi).contains(&n) {
            return Ok(n);
        }
        Err(at.invalid(
            raw.span().start,
            format!("{} must be from {lo} to {hi}, not {n}", at.key),
        ))
    }
}

/// A number of at least 0.
pub(crate) struct Float;

impl Read for Float {
    type Raw = Spanned<f64>;
    type Value = f64;
    fn read(&self, raw: Self::Raw, at: &At<'_>) -> Result<f64, ConfigError> {
        let x = *raw.get_ref();
        if x.is_finite() && x >= 0.0 {
            return Ok(x);
        }
        Err(at.invalid(
            raw.span().start,
            format!("{} must be a number of at least 0", at.key),
        ))
    }
}

/// Readers of values taken as written: serde has checked their type.
macro_rules! as_written {
    ($($(#[$doc:meta])* $reader:ident: $t:ty;)*) => {$(
        $(#[$doc])*
        pub(crate) struct $reader;

        impl Read for $reader {
            type Raw = $t;
            type Value = $t;
            fn read(&self, raw: $t, _: &At<'_>) -> Result<$t, ConfigError> {
                Ok(raw)
            }
        }
    )*};
}

as_written! {
    /// `true` or `false`.
    Bool: bool;
    /// Text.
    Text: String;
}

/// A file or folder, taken from the configuration file's folder when relative.
pub(crate) struct Relative;

impl Read for Relative {
    type Raw = PathBuf;
    type Value = PathBuf;
    fn read(&self, raw: PathBuf, at: &At<'_>) -> Result<PathBuf, ConfigError> {
        Ok(at.file.here(&raw))
    }
}

/// Readers of values parsed from their text, each saying what the text should be.
macro_rules! parsed {
    ($($(#[$doc:meta])* $reader:ident: $t:ty, $what:literal;)*) => {$(
        $(#[$doc])*
        pub(crate) struct $reader;

        impl Read for $reader {
            type Raw = Spanned<String>;
            type Value = $t;
            fn read(&self, raw: Self::Raw, at: &At<'_>) -> Result<$t, ConfigError> {
                raw.get_ref().parse().map_err(|e| {
                    at.invalid(
                        raw.span().start,
                        format!("{} {:?} is not {} ({e})", at.key, raw.get_ref(), $what),
                    )
                })
            }
        }
    )*};
}

parsed! {
    /// An IP address.
    Ip: IpAddr, "an IP address";
    /// A range of multicast groups.
    Groups: GroupRange, "a multicast range such as 239.77.0.0/24";
}

/// Where to serve metrics: a port (on loopback) or an address, as [`metrics_addr`] reads.
pub(crate) struct Metrics;

impl Read for Metrics {
    type Raw = Spanned<toml::Value>;
    type Value = SocketAddr;
    fn read(&self, raw: Self::Raw, at: &At<'_>) -> Result<SocketAddr, ConfigError> {
        let offset = raw.span().start;
        let text = match raw.into_inner() {
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::String(t) => t,
            _ => {
                let message = format!("{} must be a port or an address", at.key);
                return Err(at.invalid(offset, message));
            }
        };
        metrics_addr(&text).map_err(|m| at.invalid(offset, m))
    }
}

/// Parses a metrics address as `--metrics` takes it: a port alone means loopback.
///
/// # Errors
/// A message when it is neither a port nor an address.
pub fn metrics_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("{s:?} is neither a port nor an address like 127.0.0.1:9027"))
}

/// The message of the day: text of at most [`MAX_MOTD`] bytes, one entry per line, control
/// characters made spaces.
pub(crate) struct Motd;

impl Read for Motd {
    type Raw = Spanned<String>;
    type Value = Vec<String>;
    fn read(&self, raw: Self::Raw, at: &At<'_>) -> Result<Vec<String>, ConfigError> {
        let text = raw.get_ref();
        if text.len() > MAX_MOTD {
            return Err(at.invalid(
                raw.span().start,
                format!("{} is longer than {MAX_MOTD} bytes", at.key),
            ));
        }
        if text.is_empty() {
            return Ok(Vec::new());
        }
        Ok(text
            .trim_end_matches('\n')
            .split('\n')
            .map(|l| {
                l.trim_end_matches('\r')
                    .replace(|c: char| c.is_control(), " ")
            })
            .collect())
    }
}

/// Server operators: at most [`MAX_OPERATORS`] nicknames, kept as their keys.
pub(crate) struct Operators;

impl Read for Operators {
    type Raw = Spanned<Vec<Spanned<String>>>;
    type Value = Vec<String>;
    fn read(&self, raw: Self::Raw, at: &At<'_>) -> Result<Vec<String>, ConfigError> {
        if raw.get_ref().len() > MAX_OPERATORS {
            return Err(at.invalid(
                raw.span().start,
                format!("more than {MAX_OPERATORS} operators"),
            ));
        }
        raw.get_ref()
            .iter()
            .map(|op| match proto::valid_nick(op.get_ref()) {
                true => Ok(proto::nick::key(op.get_ref())),
                false => Err(at.invalid(
                    op.span().start,
                    format!("operator {:?} is not a nickname", op.get_ref()),
                )),
            })
            .collect()
    }
}

/// `[[channel]]` tables, checked as a channels file's are.
pub(crate) struct Channels;

impl Read for Channels {
    type Raw = Vec<Entry>;
    type Value = Vec<ChannelSpec>;
    fn read(&self, raw: Vec<Entry>, at: &At<'_>) -> Result<Vec<ChannelSpec>, ConfigError> {
        check_entries(raw, at.file)
    }
}

/// How a value read from the file becomes its setting: as itself, as `Some` of itself for a
/// flag without a default, or, for a number already checked against its range, cast to the
/// setting's type.
pub(crate) trait Fill<V> {
    /// The setting holding `v`.
    fn fill(v: V) -> Self;
}

impl<V> Fill<V> for V {
    fn fill(v: V) -> Self {
        v
    }
}

impl<V> Fill<V> for Option<V> {
    fn fill(v: V) -> Self {
        Some(v)
    }
}

/// Numbers: [`Int`] has checked the range, which the table keeps within the type.
macro_rules! fill_int {
    ($($t:ty),*) => {$(
        impl Fill<i64> for $t {
            fn fill(n: i64) -> Self {
                n as $t
            }
        }
    )*};
}
fill_int!(u8, u16, u32, u64, usize);

impl Fill<i64> for Option<u16> {
    fn fill(n: i64) -> Self {
        Some(n as u16)
    }
}
