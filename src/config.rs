//! The channel list: the five classic channels by default, or a TOML file given with
//! `--channels`. A bad file is an error that names its line, so the server does not start.
//!
//! The file holds one `[[channel]]` table per channel:
//!
//! ```toml
//! [[channel]]
//! title = "Rust"
//! description = "All things Rust"
//!
//! [[channel]]
//! title = "Trading"
//! description = "Kept off the multicast groups"
//! multicast = false
//! ```
//!
//! `multicast` (default `true`) only matters on a server started with `--multicast`: a
//! channel that says `false` gets no group, and its events always go by unicast.
//!
//! The configuration file ([`crate::settings`]) holds the same tables and is read the same
//! way (`TomlFile`), so both kinds of file are refused with the same [`ConfigError`].

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// The longest channel title accepted, in bytes.
pub const MAX_TITLE_LEN: usize = 64;
/// The longest channel description accepted, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 256;
/// The most channels a server may be configured with.
pub const MAX_CHANNELS: usize = 10_000;

/// One configured channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    /// One word, looked up without regard to case and reported as configured.
    pub title: String,
    /// Free text shown in channel lists.
    pub description: String,
    /// Whether the channel gets a multicast group when the server has a multicast range
    /// (`multicast = false` in the file keeps it on unicast).
    pub multicast: bool,
}

/// Why one of the server's TOML files (the configuration, a channels file) was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {what} file {path}: {source}")]
    Read {
        /// Which file: `config` or `channels`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, a missing field, or a value of the wrong type.
    #[error("{what} file {path}: {message}")]
    Syntax {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parser's message, which names line and column.
        message: String,
    },
    /// A value breaks a rule (out of range, a channel title of two words, ...).
    #[error("{what} file {path}, line {line}: {message}")]
    Invalid {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A TOML file being read: its name for messages, its text for the line of a value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TomlFile<'a> {
    /// `config` or `channels`, as messages call it.
    pub what: &'static str,
    /// Where it is; relative paths in it are taken from its folder.
    pub path: &'a Path,
    /// What it says.
    pub text: &'a str,
}

impl<'a> TomlFile<'a> {
    /// The text of the file at `path`.
    pub fn read(what: &'static str, path: &Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            what,
            path: path.to_owned(),
            source,
        })
    }

    /// The file as serde reads it into `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(self.text).map_err(|e| ConfigError::Syntax {
            what: self.what,
            path: self.path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })
    }

    /// The error for the value at byte `offset`.
    pub fn invalid(&self, offset: usize, message: String) -> ConfigError {
        ConfigError::Invalid {
            what: self.what,
            path: self.path.to_owned(),
            line: line_of(self.text, offset),
            message,
        }
    }

    /// `path` as written in the file, taken from the file's folder when relative.
    pub fn here(&self, path: &Path) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(path)
    }
}

/// The five channels of the classic server.
pub fn classic_channels() -> Vec<ChannelSpec> {
    [
        ("CurrentEvents", "Discussion of current events"),
        ("Weather", "Talk about the weather"),
        ("Gardening", "For those with the green thumb"),
        ("Hobbies", "For hobbyists of all types"),
        ("Pets", "For our furry and feathered friends"),
    ]
    .into_iter()
    .map(|(title, description)| ChannelSpec {
        title: title.into(),
        description: description.into(),
        multicast: true,
    })
    .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    channel: Vec<Entry>,
}

/// One `[[channel]]` table as read, with the places of its values.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    title: Spanned<String>,
    description: Spanned<String>,
    #[serde(default = "yes")]
    multicast: bool,
}

fn yes() -> bool {
    true
}

/// Reads and checks a channels file.
///
/// # Errors
/// [`ConfigError`] when the file can't be read, isn't valid TOML, has no channel, or has a
/// channel with an empty, multi-word, over-long or duplicate title or an over-long
/// description (with the line of the offending value).
pub fn load_channels(path: &Path) -> Result<Vec<ChannelSpec>, ConfigError> {
    parse_channels(&TomlFile::read("channels", path)?, path)
}

/// Parses the text of a channels file; `path` is only used in messages.
///
/// # Errors
/// As [`load_channels`].
pub fn parse_channels(text: &str, path: &Path) -> Result<Vec<ChannelSpec>, ConfigError> {
    let toml = TomlFile {
        what: "channels",
        path,
        text,
    };
    let file: File = toml.parse()?;
    if file.channel.is_empty() {
        return Err(toml.invalid(
            text.len(),
            "no [[channel]] tables; a server needs at least one channel".into(),
        ));
    }
    check_entries(file.channel, &toml)
}

/// Checks `[[channel]]` tables read from `file` (a channels file or the server's
/// configuration file).
///
/// # Errors
/// [`ConfigError::Invalid`], naming the line of the offending value and what is wrong.
pub(crate) fn check_entries(
    entries: Vec<Entry>,
    file: &TomlFile<'_>,
) -> Result<Vec<ChannelSpec>, ConfigError> {
    let invalid = |at: usize, message: String| file.invalid(at, message);
    if entries.len() > MAX_CHANNELS {
        return Err(invalid(
            0,
            format!("more than {MAX_CHANNELS} channels configured"),
        ));
    }
    let mut seen = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let title = entry.title.get_ref();
        let at = entry.title.span().start;
        if title.is_empty() {
            return Err(invalid(at, "channel title is empty".into()));
        }
        if title.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                at,
                format!("channel title {title:?} must be one word without control characters"),
            ));
        }
        if title.len() > MAX_TITLE_LEN {
            return Err(invalid(
                at,
                format!("channel title {title:?} is longer than {MAX_TITLE_LEN} bytes"),
            ));
        }
        if let Some(first) = seen.insert(title.to_lowercase(), at) {
            return Err(invalid(
                at,
                format!(
                    "channel title {title:?} repeats the one on line {} (titles ignore case)",
                    line_of(file.text, first)
                ),
            ));
        }
        let description = entry.description.get_ref();
        if description.len() > MAX_DESCRIPTION_LEN {
            return Err(invalid(
                entry.description.span().start,
                format!("description is longer than {MAX_DESCRIPTION_LEN} bytes"),
            ));
        }
        if description.chars().any(char::is_control) {
            return Err(invalid(
                entry.description.span().start,
                "description holds control characters".into(),
            ));
        }
        out.push(ChannelSpec {
            title: entry.title.into_inner(),
            description: entry.description.into_inner(),
            multicast: entry.multicast,
        });
    }
    Ok(out)
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<ChannelSpec>, ConfigError> {
        parse_channels(text, Path::new("chan.toml"))
    }

    /// The message a file is refused with.
    fn refusal(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_channels_in_order() {
        let c = parse(
            "[[channel]]\ntitle = \"Rust\"\ndescription = \"All things Rust\"\n\
             [[channel]]\ntitle = \"Go\"\ndescription = \"\"\n",
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].title, "Rust");
        assert_eq!(c[1].description, "");
        assert!(c[0].multicast && c[1].multicast);
    }

    #[test]
    fn a_channel_may_stay_off_multicast() {
        let c = parse(
            "[[channel]]\ntitle = \"Rust\"\ndescription = \"x\"\nmulticast = false\n\
             [[channel]]\ntitle = \"Go\"\ndescription = \"y\"\nmulticast = true\n",
        )
        .unwrap();
        assert!(!c[0].multicast && c[1].multicast);
        let err =
            refusal("[[channel]]\ntitle = \"Rust\"\ndescription = \"x\"\nmulticast = \"no\"\n");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn multi_word_title_names_its_line() {
        let err = refusal(
            "[[channel]]\ntitle = \"Ok\"\ndescription = \"x\"\n\n[[channel]]\ntitle = \"two words\"\ndescription = \"y\"\n",
        );
        assert!(err.contains("line 6"), "{err}");
        assert!(err.contains("one word"), "{err}");
    }

    #[test]
    fn duplicate_title_ignoring_case_is_refused() {
        let err = refusal(
            "[[channel]]\ntitle = \"Pets\"\ndescription = \"x\"\n[[channel]]\ntitle = \"pets\"\ndescription = \"y\"\n",
        );
        assert!(err.contains("line 5") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = refusal("[[channel]]\ntitle = \"Pets\"\ndescription = oops\n");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn missing_field_and_empty_file_are_refused() {
        assert!(parse("[[channel]]\ntitle = \"Pets\"\n").is_err());
        assert!(parse("").is_err());
    }
}
