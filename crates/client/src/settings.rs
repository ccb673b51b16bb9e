//! The client's settings file, `client.toml` in the user's configuration folder
//! (`~/.config/udpchat/client.toml` on Linux), and where the input history is kept.
//! Everything in the file is optional; the command line overrides it. The client only
//! reads it, never makes or writes it, and it holds nothing secret (no password goes in
//! it), so its mode is the user's choice; the files the client writes are the user's
//! alone (`crate::files`).
//!
//! ```toml
//! server = "chat.example.org"
//! port = 2027
//! nick = "ann"
//! channels = ["Weather", "Pets"]   # joined at start in this order; the last is current
//! timestamps = true                # full-screen client: the time before each line
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

/// What the settings file may hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The server's host name or address.
    pub server: Option<String>,
    /// The server's UDP port.
    pub port: Option<u16>,
    /// The nickname to log in with.
    pub nick: Option<String>,
    /// Channels to join after logging in, in this order.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Whether the full-screen client shows the time before each line (default on).
    pub timestamps: Option<bool>,
}

/// Where the settings file is looked for.
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("udpchat").join("client.toml"))
}

/// Where the raw-mode interfaces keep the lines typed, across runs (readable by the user
/// alone, and never a line holding a password: see `ui::input`).
pub fn history_path() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_dir)
        .map(|d| d.join("udpchat").join("history"))
}

/// Reads the settings at `path`. A missing file is no error unless `required` (the user
/// named it).
///
/// # Errors
/// The file can't be read, or is not valid TOML of the fields above.
pub fn load(path: &Path, required: bool) -> anyhow::Result<Settings> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Settings::default())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    toml::from_str(&text)
        .with_context(|| format!("{} is not a valid settings file", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_unknown_keys_are_refused() {
        let s: Settings = toml::from_str(
            "server = \"h\"\nport = 4000\nnick = \"ann\"\nchannels = [\"Pets\"]\ntimestamps = false\n",
        )
        .unwrap();
        assert_eq!(s.server.as_deref(), Some("h"));
        assert_eq!(s.port, Some(4000));
        assert_eq!(s.channels, ["Pets"]);
        assert_eq!(s.timestamps, Some(false));
        assert!(toml::from_str::<Settings>("sever = \"h\"").is_err());
        assert_eq!(toml::from_str::<Settings>("").unwrap(), Settings::default());
    }

    #[test]
    fn a_missing_file_is_empty_unless_named() {
        let path = Path::new("/nonexistent/udpchat/client.toml");
        assert_eq!(load(path, false).unwrap(), Settings::default());
        assert!(load(path, true).is_err());
    }
}
