//! The files the client writes for its user (the input history, the pinned server keys):
//! readable and writable by the user alone, as ssh keeps `~/.ssh/known_hosts` and shells
//! keep their history. A new file is made 0600, and the folders the client makes for it
//! 0700 (folders that exist already, such as `~/.config`, are left as they are). A file of
//! ours found open to others (made by an older client, or by hand) is tightened to 0600
//! when the client opens it, rather than warned about: a warning would flash by before the
//! full screen takes the terminal, and the history may hold private messages.
//!
//! The settings file is not among them: the client only reads it, and it holds no secret.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// A file of ours: the user reads and writes it, nobody else.
pub(crate) const FILE_MODE: u32 = 0o600;
/// A folder the client makes: the user's alone.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Makes `dir` and the folders above it that are missing, each [`DIR_MODE`].
///
/// # Errors
/// A folder can't be made.
pub(crate) fn make_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Opens `path` to append to it: made [`FILE_MODE`] when new (and its folder, as
/// [`make_dir`] does), tightened to it when open to others.
///
/// # Errors
/// The folder or the file can't be made or opened, or the file is open to others and its
/// mode can't be changed (someone else's file: nothing is written to it).
pub(crate) fn append(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        make_dir(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)?;
    tighten_open(&file)?;
    Ok(file)
}

/// Tightens the file at `path`, if there is one, to [`FILE_MODE`] when group or others may
/// read or write it.
///
/// # Errors
/// It exists and can't be opened, or its mode can't be changed.
pub(crate) fn tighten(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(file) => tighten_open(&file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// As [`tighten`], on the file opened (so a file swapped in meanwhile is not the one
/// changed).
fn tighten_open(file: &File) -> io::Result<()> {
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

/// Replaces the file at `path` with `lines`, one a line, as a whole: they are written to
/// a new file beside it, made [`FILE_MODE`], which then takes its place, so a crash
/// half-way leaves the old file or the new one, never a mix.
///
/// # Errors
/// The new file can't be written or moved into place.
pub(crate) fn replace<'a>(path: &Path, lines: impl IntoIterator<Item = &'a str>) -> io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    let new = path.with_file_name(name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&new)?;
        tighten_open(&file)?;
        let mut text = String::new();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&new, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&new);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
    }

    /// The file `name` in `dir`, written with `text` and given the mode `mode`.
    fn written(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let file = dir.join(name);
        fs::write(&file, text).unwrap();
        set_mode(&file, mode);
        file
    }

    #[test]
    fn files_and_the_folders_made_for_them_are_the_users_alone() {
        let dir = tempfile::tempdir().unwrap();
        set_mode(dir.path(), 0o755);
        let file = dir.path().join("a").join("b").join("history");
        writeln!(append(&file).unwrap(), "one").unwrap();
        assert_eq!(mode(&file), FILE_MODE);
        assert_eq!(mode(&dir.path().join("a")), DIR_MODE);
        assert_eq!(mode(&dir.path().join("a").join("b")), DIR_MODE);
        // A folder that was there stays as it was.
        assert_eq!(mode(dir.path()), 0o755);
    }

    #[test]
    fn a_file_open_to_others_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let file = written(dir.path(), "known", "x\n", 0o666);
        tighten(&file).unwrap();
        assert_eq!(mode(&file), FILE_MODE);
        set_mode(&file, 0o644);
        append(&file).unwrap();
        assert_eq!(mode(&file), FILE_MODE);
        // Nothing there: nothing to do.
        tighten(&dir.path().join("none")).unwrap();
    }

    #[test]
    fn a_replaced_file_holds_the_new_lines_only_and_is_the_users_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = written(dir.path(), "history", "old\n", 0o644);
        replace(&file, ["a", "b"]).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "a\nb\n");
        assert_eq!(mode(&file), FILE_MODE);
        assert!(!dir.path().join("history.new").exists());
    }
}
