//! Scripted clients: the real `chat-client` (or any line-oriented program) driven through
//! pipes, as a script would drive it: text in on standard input, every line of standard
//! output kept, each wait bounded so a missing line fails the test instead of hanging it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

/// The longest any one wait lasts, unless [`Scripted::with_timeout`] says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The lines `reader` gives, on a channel, read by a thread of their own (so a wait for one
/// can have a deadline); the channel ends with the input.
pub fn lines(reader: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = crossbeam_channel::unbounded();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A program whose standard input and output are pipes; killed on drop, so a test that
/// failed half-way leaves nothing behind.
pub struct Scripted {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line read so far, in order.
    pub seen: Vec<String>,
    timeout: Duration,
    /// Where the client pins server keys (its own file: servers here come and go on
    /// recycled ports, with new keys).
    _pins: Option<tempfile::TempDir>,
}

impl Scripted {
    /// `chat-client 127.0.0.1 PORT ARGS`, with a known-servers file of its own.
    pub fn start(port: u16, args: &[&str]) -> Scripted {
        let pins = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(super::bin("chat-client"));
        cmd.arg("127.0.0.1")
            .arg(port.to_string())
            .args(args)
            .arg("--known-servers")
            .arg(pins.path().join("known_servers"));
        let mut client = Scripted::spawn(cmd);
        client._pins = Some(pins);
        client
    }

    /// Runs `cmd` with piped standard input and output (standard error goes where the
    /// test's goes).
    pub fn spawn(mut cmd: Command) -> Scripted {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
        let lines = lines(child.stdout.take().unwrap());
        let stdin = child.stdin.take();
        Scripted {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            timeout: TIMEOUT,
            _pins: None,
        }
    }

    /// The same, with waits of `timeout` each.
    pub fn with_timeout(mut self, timeout: Duration) -> Scripted {
        self.timeout = timeout;
        self
    }

    /// The program's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes `text` as it is (lines end where it has `\n`).
    pub fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Writes `line` and a line end.
    pub fn line(&mut self, line: &str) {
        self.send(&format!("{line}\n"));
    }

    /// Waits for a line that `pred` accepts, keeping every line seen on the way; returns
    /// it.
    #[track_caller]
    pub fn expect_match(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.lines.recv_deadline(deadline) {
                Ok(got) => {
                    self.seen.push(got.clone());
                    if pred(&got) {
                        return got;
                    }
                }
                Err(_) => panic!("no line {what}; got {:#?}", self.seen),
            }
        }
    }

    /// Waits for `line` exactly.
    #[track_caller]
    pub fn expect_line(&mut self, line: &str) {
        self.expect_match(&format!("{line:?}"), |l| l == line);
    }

    /// Waits for a line starting with `prefix`; returns it.
    #[track_caller]
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        self.expect_match(&format!("starting {prefix:?}"), |l| l.starts_with(prefix))
    }

    /// Closes standard input and waits for the exit; returns the status and every line.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>) {
        drop(self.stdin.take());
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the program did not exit; output so far {:#?}",
                self.seen
            );
            thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at end of output; collect what it has left.
        while let Ok(line) = self.lines.recv_timeout(self.timeout) {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen))
    }

    /// As [`finish`](Self::finish), for a program that must exit with success; every line.
    #[track_caller]
    pub fn finish_ok(self) -> Vec<String> {
        let (status, lines) = self.finish();
        assert!(status.success(), "{status:?}; output {lines:#?}");
        lines
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `chat-client 127.0.0.1 PORT ARGS` on `script` to its end; its status and output.
pub fn run_script(port: u16, args: &[&str], script: &str) -> (ExitStatus, Vec<String>) {
    let mut client = Scripted::start(port, args);
    client.send(script);
    client.finish()
}
