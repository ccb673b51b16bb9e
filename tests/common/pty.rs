//! A pseudo-terminal of a given size for the client's tests, with a terminal emulator
//! (`vt100`) reading everything the program writes, so a test can assert both the exact
//! bytes (the classic line mode) and the screen a person would see (the full-screen client).
//! Unlike rexpect's, this terminal echoes what is typed, as a real one does, so a test of
//! "the password is not echoed" can fail.

use std::io::{Read, Write};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};

/// How long any wait lasts before the test fails.
pub const PTY_TIMEOUT: Duration = Duration::from_secs(20);

/// What the program wrote: the raw bytes and the screen they draw.
struct Seen {
    raw: Vec<u8>,
    screen: vt100::Parser,
}

/// A program running in a pseudo-terminal.
pub struct Pty {
    /// Kept open while the program runs, as a terminal window would.
    _master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    seen: Arc<Mutex<Seen>>,
}

impl Pty {
    /// Starts `cmd` on a new terminal of `rows` by `cols`, as its controlling terminal.
    pub fn spawn(cmd: Command, rows: u16, cols: u16) -> Pty {
        // portable-pty (wezterm's) opens the terminal, makes it the child's controlling
        // terminal in a session of its own, and keeps the `unsafe` of doing so.
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut builder = CommandBuilder::new(cmd.get_program());
        builder.args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => builder.env(key, value),
                None => builder.env_remove(key),
            }
        }
        builder.cwd(match cmd.get_current_dir() {
            Some(dir) => dir.to_path_buf(),
            None => std::env::current_dir().expect("the current folder"),
        });
        let child = pair.slave.spawn_command(builder).expect("spawn in a pty");
        drop(pair.slave);
        let seen = Arc::new(Mutex::new(Seen {
            raw: Vec::new(),
            screen: vt100::Parser::new(
                std::num::NonZeroU16::new(rows).expect("rows"),
                std::num::NonZeroU16::new(cols).expect("columns"),
                0,
            ),
        }));
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let sink = Arc::clone(&seen);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the program and its children have closed the terminal.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut seen = sink.lock().unwrap();
                seen.raw.extend_from_slice(&buf[..n]);
                seen.screen.process(&buf[..n]);
            }
        });
        Pty {
            _master: pair.master,
            writer,
            child,
            seen,
        }
    }

    /// Types `text` (a line end is `\r`, as a terminal sends Enter).
    pub fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// The program's process id.
    pub fn pid(&self) -> u32 {
        self.child.process_id().expect("a running program's id")
    }

    /// Pastes `lines` as a terminal does in bracketed-paste mode: marked as one paste.
    pub fn paste(&mut self, lines: &[&str]) {
        self.send(&format!("\u{1b}[200~{}\u{1b}[201~", lines.join("\n")));
    }

    /// Types `line` and Enter.
    pub fn line(&mut self, line: &str) {
        self.send(line);
        self.send("\r");
    }

    /// Everything written so far, as text.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap().raw).into_owned()
    }

    /// The screen as a person sees it, row by row.
    pub fn screen(&self) -> String {
        self.seen.lock().unwrap().screen.screen().contents()
    }

    /// One row of the screen.
    pub fn row(&self, row: u16) -> String {
        let seen = self.seen.lock().unwrap();
        let (_, cols) = seen.screen.screen().size();
        seen.screen
            .screen()
            .contents_between(row, 0, row, cols.get())
    }

    /// The colour of the text on the first row that holds `text`, at its first character
    /// (`None` when no row holds it).
    #[allow(dead_code)]
    pub fn color_of(&self, text: &str) -> Option<vt100::Color> {
        let seen = self.seen.lock().unwrap();
        let screen = seen.screen.screen();
        let (rows, cols) = screen.size();
        (0..rows.get()).find_map(|row| {
            let line = screen.contents_between(row, 0, row, cols.get());
            let at = line.find(text)?;
            // Columns, not bytes: the screen's text here is ASCII up to the match.
            let col = u16::try_from(line[..at].chars().count()).ok()?;
            screen.cell(row, col).map(|c| c.fgcolor())
        })
    }

    /// Waits until `cond` holds for the raw output and the screen; fails the test with
    /// both when it never does.
    #[track_caller]
    pub fn wait(&self, what: &str, cond: impl Fn(&str, &str) -> bool) {
        let deadline = Instant::now() + PTY_TIMEOUT;
        loop {
            let (raw, screen) = (self.raw(), self.screen());
            if cond(&raw, &screen) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {what}\n--- screen ---\n{screen}\n--- raw ---\n{raw:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `text` on the screen.
    #[track_caller]
    pub fn wait_screen(&self, text: &str) {
        self.wait(text, |_, screen| screen.contains(text));
    }

    /// Waits for `text` in the raw output.
    #[track_caller]
    pub fn wait_raw(&self, text: &str) {
        self.wait(text, |raw, _| raw.contains(text));
    }

    /// Types `/quit` and checks that the client exits with success.
    #[track_caller]
    pub fn quit(&mut self) {
        self.line("/quit");
        assert_eq!(self.exit_code(), Some(0), "{}", self.screen());
    }

    /// Waits for the program to exit; its status code.
    #[track_caller]
    pub fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + PTY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // A program killed by a signal has no exit code.
                return match status.signal() {
                    Some(_) => None,
                    None => i32::try_from(status.exit_code()).ok(),
                };
            }
            assert!(Instant::now() < deadline, "the program did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // A test that failed half-way leaves no client behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
