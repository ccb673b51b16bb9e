//! The servers' pinned OPAQUE public keys: the first time the client registers at a
//! server it pins the key the server showed (trust on first use, as SSH does with host
//! keys), and a later change is caught. The sealing itself is `proto::session`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::files;
use proto::auth::ServerKey;

/// What the pinned key of a server says about the key it showed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// First time: the key is pinned now.
    New,
    /// The same key as pinned.
    Same,
    /// Another key than the one pinned (base64): someone may be impersonating the server.
    Changed(String),
}

/// The file of servers' pinned OPAQUE public keys: one `SERVER KEY` line each, `SERVER`
/// being `host:port` as the user gave them and `KEY` the key in base64.
#[derive(Debug, Clone)]
pub struct KnownServers {
    path: PathBuf,
}

impl KnownServers {
    /// The file at `path` (made 0600, in a folder made 0700, when a first key is pinned;
    /// see `crate::files`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        KnownServers { path: path.into() }
    }

    /// `$XDG_CONFIG_HOME/udpchat/known_servers`, else `$HOME/.config/udpchat/known_servers`,
    /// else `.udpchat_known_servers` in the current folder.
    pub fn default_path() -> PathBuf {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")));
        match base {
            Some(b) => b.join("udpchat").join("known_servers"),
            None => PathBuf::from(".udpchat_known_servers"),
        }
    }

    /// The key pinned for `server`, if any.
    fn get(&self, server: &str) -> Option<String> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        text.lines().find_map(|l| {
            let (s, k) = l.split_once(' ')?;
            (s == server).then(|| k.trim().to_owned())
        })
    }

    /// Compares `key` with the key pinned for `server`; pins it if there is none yet. A
    /// file open to others is made the user's alone first (0600): whoever may write it
    /// may pin a key of their own.
    ///
    /// # Errors
    /// When a new pin can't be written.
    pub fn check(&self, server: &str, key: &ServerKey) -> std::io::Result<Pin> {
        // Someone else's file read-only to us is still read; it is never written.
        let _ = files::tighten(&self.path);
        let shown = key.to_base64();
        match self.get(server) {
            Some(pinned) if pinned == shown => Ok(Pin::Same),
            Some(pinned) => Ok(Pin::Changed(pinned)),
            None => {
                let mut f = files::append(&self.path)?;
                writeln!(f, "{server} {shown}")?;
                Ok(Pin::New)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_key_is_pinned_on_first_use_and_a_change_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownServers::new(dir.path().join("sub").join("known"));
        let a = ServerKey(vec![1, 2, 3]);
        let b = ServerKey(vec![4, 5, 6]);
        assert_eq!(known.check("chat:2027", &a).unwrap(), Pin::New);
        assert_eq!(known.check("chat:2027", &a).unwrap(), Pin::Same);
        assert_eq!(
            known.check("chat:2027", &b).unwrap(),
            Pin::Changed(a.to_base64())
        );
        assert_eq!(known.check("other:2027", &b).unwrap(), Pin::New);
    }

    #[test]
    fn the_file_and_its_folder_are_the_users_alone() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("udpchat").join("known_servers");
        let known = KnownServers::new(&path);
        let key = ServerKey(vec![1, 2, 3]);
        assert_eq!(known.check("chat:2027", &key).unwrap(), Pin::New);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("udpchat")), 0o700);
        // Open to others (an older client's): tightened at the next check.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(known.check("chat:2027", &key).unwrap(), Pin::Same);
        assert_eq!(mode(&path), 0o600);
    }
}
