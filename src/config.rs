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

/// Why the channels file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read channels file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not valid TOML or lacks a field.
    #[error("channels file {path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names line and column.
        message: String,
    },
    /// A channel breaks a rule.
    #[error("channels file {path}, line {line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// What is wrong.
        message: String,
    },
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
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_channels(&text, path)
}

/// Parses the text of a channels file; `path` is only used in messages.
///
/// # Errors
/// As [`load_channels`].
pub fn parse_channels(text: &str, path: &Path) -> Result<Vec<ChannelSpec>, ConfigError> {
    let file: File = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let invalid = |offset: usize, message: String| ConfigError::Invalid {
        path: path.to_owned(),
        line: line_of(text, offset),
        message,
    };
    if file.channel.is_empty() {
        return Err(invalid(
            text.len(),
            "no [[channel]] tables; a server needs at least one channel".into(),
        ));
    }
    check_entries(file.channel, text).map_err(|(at, message)| invalid(at, message))
}

/// Checks `[[channel]]` tables read from `text` (a channels file or the server's
/// configuration file).
///
/// # Errors
/// The byte offset of the offending value and what is wrong with it.
pub(crate) fn check_entries(
    entries: Vec<Entry>,
    text: &str,
) -> Result<Vec<ChannelSpec>, (usize, String)> {
    let invalid = |at: usize, message: String| (at, message);
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
                    line_of(text, first)
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
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
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
        let err = parse("[[channel]]\ntitle = \"Rust\"\ndescription = \"x\"\nmulticast = \"no\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn multi_word_title_names_its_line() {
        let err = parse(
            "[[channel]]\ntitle = \"Ok\"\ndescription = \"x\"\n\n[[channel]]\ntitle = \"two words\"\ndescription = \"y\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 6"), "{err}");
        assert!(err.contains("one word"), "{err}");
    }

    #[test]
    fn duplicate_title_ignoring_case_is_refused() {
        let err = parse(
            "[[channel]]\ntitle = \"Pets\"\ndescription = \"x\"\n[[channel]]\ntitle = \"pets\"\ndescription = \"y\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 5") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = parse("[[channel]]\ntitle = \"Pets\"\ndescription = oops\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn missing_field_and_empty_file_are_refused() {
        assert!(parse("[[channel]]\ntitle = \"Pets\"\n").is_err());
        assert!(parse("").is_err());
    }
}
