//! Issue 20, the operator's side: who is a server operator (findings 2 and 11), what
//! reaches the logs (finding 8: no credentials; finding 9: no terminal escapes, the audit
//! log private). Each test performs the attack — a guest or a registration taking a
//! listed operator nickname first, a forged login of it, an account deleted while its
//! session runs, reasons and notices carrying ESC/OSC/BEL as raw datagrams, a password in
//! the Redis and PostgreSQL URLs — and shows the attacker gains nothing while the real
//! operator and the users keep what is theirs.

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{operator_account, part5, password_login, protected, registered, spoof, Peer, QUIET};
use proto::{code, Request};
use udpchat::accounts::StoreKind;
use udpchat::server::{RunningServer, Server, ServerConfig};

const BIN: &str = env!("CARGO_BIN_EXE_chat-server");

/// A server keeping its accounts in `data` (SQLite, as `--data` does), with `operators`.
fn config(data: &Path, operators: &[&str]) -> ServerConfig {
    let mut c = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        store: StoreKind::Sqlite(data.to_owned()),
        ..ServerConfig::default()
    };
    c.live.operators = operators.iter().map(|o| o.to_string()).collect();
    c
}

/// Runs `chat-server accounts ARGS --data DATA` with `stdin` as its standard input.
fn run_accounts(data: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .arg("accounts")
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `chat-server accounts ARGS --data DATA`, with `stdin` as its standard input; its
/// standard output, after checking it succeeded.
#[track_caller]
fn accounts_cli(data: &Path, args: &[&str], stdin: &str) -> String {
    let out = run_accounts(data, args, stdin);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "accounts {args:?}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// What a guest login of `nick` from a fresh socket gets: `LOGIN_ACK` or the error text.
/// Retried as a client would: a stranger's short request may be answered only once it
/// has sent enough bytes.
fn guest_login(s: &RunningServer, nick: &str) -> (u16, String) {
    let p = Peer::new(s);
    let ((c, text), _) = p.retry_until_answered(&Request::Login { nick }.to_bytes());
    if c == code::LOGIN_ACK {
        p.send(Request::Logoff);
        common::wait_until(|| s.state().address_of(nick).is_none());
    }
    (c, text)
}

/// Waits until a guest login of `nick` gets `want` (an error text, or `"ok"` for
/// `LOGIN_ACK`), for a change made with `chat-server accounts` to reach the server;
/// how long it took.
#[track_caller]
fn wait_guest_login(s: &RunningServer, nick: &str, want: &str) -> Duration {
    let start = Instant::now();
    loop {
        let (c, text) = guest_login(s, nick);
        let got = if c == code::LOGIN_ACK { "ok" } else { &text };
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "guest login of {nick}: still {got:?}, not {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `p` has server operator rights now: its `OPER_STATUS` is answered with the
/// status, not refused (what arrives is read to the end either way).
fn is_operator(p: &Peer) -> bool {
    p.send(Request::OperStatus);
    let (c, text) = p.recv();
    match c {
        code::STATUS_ITEM => {
            while p.recv_within(Duration::from_millis(150)).is_some() {}
            true
        }
        code::ERROR if text == "you are not a server operator" => false,
        other => panic!("OPER_STATUS answered with {other} {text}"),
    }
}

/// Waits until `p`'s operator rights are `want`: a change made with `chat-server
/// accounts` reaches the server within a second.
#[track_caller]
fn wait_rights(p: &Peer, want: bool) -> Duration {
    let start = Instant::now();
    while is_operator(p) != want {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "rights still {}",
            !want
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

// ---- finding 2: operators are bound to credentials, their nicknames reserved ----

#[test]
fn a_listed_operator_nickname_can_not_be_taken_by_a_guest_a_forger_or_a_registration() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::bind(config(&data, &["root"])).unwrap();
    // Nobody has made root's account yet: the server says so at start.
    let warnings = s.operator_warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("operator root has no account")),
        "{warnings:?}"
    );
    let s = s.spawn();

    // The attack of the README's old recipe: be first to take the listed name. As a
    // guest, in any case, or as a look-alike (Cyrillic о):
    for nick in ["root", "ROOT", "r\u{43e}\u{43e}t"] {
        assert_eq!(
            guest_login(&s, nick),
            (code::ERROR, "nickname is reserved".into()),
            "{nick}"
        );
    }
    // ... from a forged address (the refusal goes to the victim, nothing is kept) ...
    let forged: SocketAddr = "127.0.0.9:4000".parse().unwrap();
    let login = Request::Login { nick: "root" }.to_bytes();
    if spoof(forged, s.addr(), &login) {
        std::thread::sleep(QUIET);
        assert_eq!(s.state().address_of("root"), None);
    }
    // ... or by registering it: a guest can only register the nickname it holds, and it
    // can't hold this one. No account was made.
    let mallory = part5(&s, "mallory");
    assert!(!is_operator(&mallory));
    assert!(udpchat::accounts::SqliteStore::open_dir(&data)
        .map(|st| udpchat::accounts::AccountStore::get(&st, "root"))
        .unwrap()
        .unwrap()
        .is_none());

    // The real operator makes the account on the server's machine (here while the
    // server runs; before it starts works the same), the password on standard input.
    let out = accounts_cli(&data, &["add", "root", "--operator"], "hunter2 long\n");
    assert!(
        out.contains("made a server operator's account root"),
        "{out}"
    );
    wait_guest_login(&s, "root", "nickname is registered; log in with a password");
    let root = protected(&s, "root", "hunter2 long");
    root.hello();
    assert!(
        is_operator(&root),
        "the account the operator made has the rights"
    );
    // The rights work: mallory is killed.
    root.send(common::req::kill("mallory", "squatting"));
    root.expect(code::OPER_ACK, "kill mallory squatting");
    mallory.expect_error("you were disconnected by root: squatting");
    // The attacker, knowing the nickname, can't log in to it without the password.
    let guess = Peer::new(&s);
    let start = proto::auth::login_start("root", "hunter2");
    let (c, challenge) = common::auth_req(&guess, &start);
    assert_eq!(c, code::AUTH_CHALLENGE);
    assert!(start.finish("hunter2", &challenge).is_err());
}

#[test]
fn an_account_registered_before_its_name_was_listed_gets_no_rights() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = config(&data, &[]);
    let (channels, max_users, mut live) = (cfg.channels.clone(), cfg.max_users, cfg.live.clone());
    let s = Server::bind(cfg).unwrap();
    let reloader = s.reloader();
    let s = s.spawn();
    // Mallory registers `admin` while nobody has listed it, and a guest holds `boss`.
    registered(&s, "admin", "mallory's");
    let boss = part5(&s, "boss");
    // Then the operator lists both names and reloads (SIGHUP does this).
    live.operators = vec!["admin".into(), "boss".into()];
    reloader.apply(live, &channels, max_users);
    let warnings = reloader.operator_warnings();
    for want in [
        "operator admin's account is not marked as an operator's",
        "operator boss has no account",
        "operator nickname boss is held by a guest at",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(want)),
            "{want:?} not in {warnings:?}"
        );
    }
    // Mallory's password works (the account is hers) but makes her no operator.
    let admin = protected(&s, "admin", "mallory's");
    admin.hello();
    assert!(!is_operator(&admin));
    // The guest holding `boss` has no rights, and can't register it now.
    assert!(!is_operator(&boss));
    let start = proto::auth::register_start("pw");
    boss.send_raw(&start.datagram);
    boss.expect_error("nickname is reserved");
    // Once the operator says `admin` is theirs, it is an operator (live).
    accounts_cli(&data, &["set", "admin", "--operator"], "");
    wait_rights(&admin, true);
    // The real boss makes its account; its first password login finds the name held,
    // which disconnects the guest, and the next one gets the name and the rights.
    accounts_cli(&data, &["add", "boss", "--operator"], "the boss\n");
    wait_guest_login(&s, "boss", "nickname is registered; log in with a password");
    let real = Peer::new(&s);
    let start = proto::auth::login_start("boss", "the boss");
    let (c, challenge) = common::auth_req(&real, &start);
    assert_eq!(c, code::AUTH_CHALLENGE, "{challenge}");
    let (finish, _) = start.finish("the boss", &challenge).unwrap();
    real.send_raw(&finish);
    real.expect_error("nickname already in use");
    boss.expect_error(
        "you were disconnected by the server: nickname is reserved for a server operator",
    );
    common::wait_until(|| s.state().address_of("boss").is_none());
    let real = protected(&s, "boss", "the boss");
    real.hello();
    assert!(is_operator(&real));
    assert_eq!(reloader.operator_warnings(), Vec::<String>::new());
}

#[test]
fn deleting_or_demoting_an_operator_account_ends_its_rights_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Made before the server starts, as the README says.
    accounts_cli(&data, &["add", "root", "--operator"], "s3cret pass\n");
    let s = Server::bind(config(&data, &["root"])).unwrap();
    assert_eq!(s.operator_warnings(), Vec::<String>::new());
    let s = s.spawn();
    let root = protected(&s, "root", "s3cret pass");
    root.hello();
    assert!(is_operator(&root));

    // Demoted while logged in: the next request has no rights; promoted again: back.
    accounts_cli(&data, &["set", "root", "--no-operator"], "");
    let took = wait_rights(&root, false);
    assert!(took < Duration::from_secs(2), "{took:?}");
    accounts_cli(&data, &["set", "root", "--operator"], "");
    wait_rights(&root, true);

    // Deleted while logged in: the live session keeps its nickname but no rights, and
    // the name stays reserved (it is still listed): nobody else takes it meanwhile.
    let out = accounts_cli(&data, &["delete", "root"], "");
    assert!(out.contains("deleted root"), "{out}");
    let took = wait_rights(&root, false);
    assert!(took < Duration::from_secs(2), "{took:?}");
    root.send(Request::Logoff);
    common::wait_until(|| s.state().address_of("root").is_none());
    wait_guest_login(&s, "root", "nickname is reserved");
    // A new account with the old password is not the old one: the operator makes it
    // again to be an operator again.
    accounts_cli(&data, &["add", "root"], "s3cret pass\n");
    wait_guest_login(&s, "root", "nickname is registered; log in with a password");
    let root = protected(&s, "root", "s3cret pass");
    root.hello();
    assert!(!is_operator(&root), "an ordinary account is no operator's");
}

// ---- finding 11: `chat-server accounts delete` on a running server ----

#[test]
fn an_account_deleted_or_made_on_the_command_line_counts_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::bind(config(&data, &[])).unwrap().spawn();
    registered(&s, "bob", "pw");
    assert_eq!(
        guest_login(&s, "bob"),
        (
            code::ERROR,
            "nickname is registered; log in with a password".into()
        )
    );
    // Deleted while the server runs: a guest may be bob within a second, no restart.
    accounts_cli(&data, &["delete", "BOB"], "");
    let took = wait_guest_login(&s, "bob", "ok");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let p = Peer::new(&s);
    let start = proto::auth::login_start("bob", "pw");
    p.send_raw(&start.datagram);
    assert_eq!(
        p.recv(),
        (code::ERROR, "no account with that nickname".into())
    );
    // Made again on the command line: guests are refused, the new password works.
    accounts_cli(&data, &["add", "bob"], "new pw\n");
    let took = wait_guest_login(&s, "bob", "nickname is registered; log in with a password");
    assert!(took < Duration::from_secs(2), "{took:?}");
    password_login(&Peer::new(&s), "bob", "new pw");
    // A guest that registered meanwhile over the network can't take over an account
    // the command line made (creating never overwrites).
    let cid = common::user(&s, "cid");
    accounts_cli(&data, &["add", "cid", "--operator"], "theirs\n");
    let start = proto::auth::register_start("mine");
    cid.send_raw(&start.datagram);
    let (c, answer) = cid.recv();
    let refused = if c == code::REGISTER_RESP {
        // The server had not yet heard of the new account: the upload is refused, by
        // the store if not before, and the operator's account stays.
        cid.send_raw(&start.finish("mine", &answer).unwrap());
        cid.recv()
    } else {
        (c, answer)
    };
    assert_eq!(refused.0, code::ERROR);
    assert!(
        [
            "log in with your password first",
            "account storage failed; try again later"
        ]
        .contains(&refused.1.as_str()),
        "{refused:?}"
    );
    cid.send(Request::Logoff);
    wait_guest_login(&s, "cid", "nickname is registered; log in with a password");
    password_login(&Peer::new(&s), "cid", "theirs");
}

// ---- finding 9: control characters from users; the audit log is private ----

#[test]
fn reasons_and_notices_with_terminal_escapes_are_refused_and_the_audit_log_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let audit = dir.path().join("audit.log");
    operator_account(&data, "root", "pw");
    let mut cfg = config(&data, &["root"]);
    cfg.audit_log = Some(audit.clone());
    let s = Server::bind(cfg).unwrap().spawn();
    let root = protected(&s, "root", "pw");
    root.hello();
    let bob = part5(&s, "bob");
    bob.join("Pets");
    common::wait_until(|| audit.exists());
    assert_eq!(common::file_mode(&audit), 0o600);
    // Raw datagrams with OSC (retitle the terminal, or write to its clipboard), CSI
    // (clear the screen), BEL, and CR LF (a forged audit line).
    let escapes = [
        "\u{1b}]0;owned\u{7}",
        "\u{1b}]52;c;cm0gLXJmIH4=\u{7}",
        "x\u{1b}[2J",
        "ok\r\n2030-01-01 00:00:00 UTC root oper-kill everyone",
        "\u{9b}31m",
    ];
    for bad in escapes {
        for (c, payload) in [
            (code::CHAN_KICK, format!("Pets bob {bad}")),
            (code::CHAN_BAN, format!("Pets 60 bob {bad}")),
            (code::OPER_KILL, format!("bob {bad}")),
            (code::OPER_BAN, format!("60 192.0.2.0/24 {bad}")),
        ] {
            root.send_code(c, &payload);
            root.expect_error("invalid reason");
        }
        root.send_code(code::OPER_NOTICE, bad);
        root.expect_error("invalid notice");
        root.send_code(code::CHAN_TOPIC, &format!("Pets {bad}"));
        root.expect_error("invalid topic");
        // The same from an ordinary user, unsealed: refused before anything else.
        let mut d = Vec::new();
        proto::encode_raw(code::CHAN_KICK, &format!("Pets root {bad}"), &mut d);
        bob.send_raw(&d);
        bob.expect_error("invalid reason");
    }
    // Bob is still there, heard nothing, and no address is banned.
    bob.expect_nothing();
    assert!(s.state().address_of("bob").is_some());
    assert!(s.state().addr_bans().list().is_empty());
    // A plain reason works, and is the only thing in the audit log.
    root.send(common::req::kick("Pets", "bob", "rules"));
    root.expect(code::CHAN_NOTICE, "Pets root kick bob rules");
    let log = || std::fs::read_to_string(&audit).unwrap_or_default();
    common::wait_until(|| log().contains("root kick Pets bob rules"));
    let text = log();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(!text.trim_end().chars().any(char::is_control), "{text:?}");
}

#[test]
fn an_audit_log_the_operator_made_keeps_its_mode() {
    // A file made before the start (by log rotation, say) stays as the operator set it,
    // with a warning if others may read it. (That every field written is defused is
    // unit-tested beside the writer, `server::community`.)
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    common::write_with_mode(&audit, "", 0o640);
    let data = dir.path().join("data");
    let mut cfg = config(&data, &[]);
    cfg.audit_log = Some(audit.clone());
    let _s = Server::bind(cfg).unwrap().spawn();
    std::thread::sleep(QUIET);
    assert_eq!(common::file_mode(&audit), 0o640);
}

// ---- finding 8: no credentials in logs ----

/// The server binary on a port of its choosing on 127.0.0.1, logging at `level`.
fn server_command(level: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--bind", "127.0.0.1", "--port", "0"])
        .env("RUST_LOG", level);
    c
}

/// Starts the binary with `args` and `RUST_LOG=debug`; everything it logged within
/// `for_` (or until it exited), and whether it was still running.
fn log_of(args: &[&str], for_: Duration) -> (String, bool) {
    let mut child = common::KillOnDrop(
        server_command("debug")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let err = common::script::lines(child.0.stderr.take().unwrap());
    let out = common::script::lines(child.0.stdout.take().unwrap());
    let deadline = Instant::now() + for_;
    let mut log = String::new();
    let take_lines = |log: &mut String| {
        for line in err.try_iter().chain(out.try_iter()) {
            log.push_str(&line);
            log.push('\n');
        }
    };
    let mut running = true;
    while Instant::now() < deadline {
        take_lines(&mut log);
        if child.0.try_wait().unwrap().is_some() {
            running = false;
            std::thread::sleep(Duration::from_millis(100));
            take_lines(&mut log);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (log, running)
}

#[test]
fn passwords_in_the_redis_and_postgres_urls_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("cluster.secret");
    common::write_with_mode(&secret, "0123456789abcdef0123456789abcdef", 0o600);
    // Redis on a port nobody listens on: the server starts, logs its cluster line and
    // that Redis is unreachable, and keeps retrying.
    let redis = "redis://chat:Redis-Pa55word@127.0.0.1:1/0";
    let (log, running) = log_of(
        &[
            "--accounts-off",
            "--redis",
            redis,
            "--server-id",
            "s1",
            "--cluster-secret-file",
            secret.to_str().unwrap(),
        ],
        Duration::from_secs(2),
    );
    assert!(running, "{log}");
    assert!(
        log.contains("redis://chat:***@127.0.0.1:1/0"),
        "the line still says where: {log}"
    );
    assert!(log.contains("Redis unreachable"), "{log}");
    assert!(!log.contains("Pa55word"), "{log}");

    // PostgreSQL that refuses: the server does not start, and says why without the
    // password, and so does `accounts list`.
    let pg = "postgres://chat:Pg-Pa55word@127.0.0.1:1/chat?sslmode=disable";
    let (log, running) = log_of(&["--database", pg], Duration::from_secs(10));
    assert!(!running, "{log}");
    assert!(log.contains("PostgreSQL"), "{log}");
    assert!(!log.contains("Pa55word"), "{log}");
    let out = Command::new(BIN)
        .args(["accounts", "list", "--database", pg])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PostgreSQL") && !text.contains("Pa55word"),
        "{text}"
    );
}

// ---- operators' warnings at start and at reload, from the binary ----

#[test]
fn the_binary_warns_of_operators_without_an_account_at_start_and_at_reload() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("server.toml");
    std::fs::write(&file, "operators = [\"root\"]\n").unwrap();
    let mut child = common::KillOnDrop(
        server_command("info")
            .arg("--data")
            .arg(&data)
            .arg("--config")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let log = common::script::lines(child.0.stderr.take().unwrap());
    let wait_log = |what: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match log.recv_deadline(deadline) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {what:?}"),
            }
        }
    };
    let line = wait_log("operator root has no account");
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("chat-server accounts add root --operator"),
        "{line}"
    );
    // The operator adds a second name and reloads: warned again, for both.
    std::fs::write(&file, "operators = [\"root\", \"Boss\"]\n").unwrap();
    common::signal(child.0.id(), common::Signal::SIGHUP);
    wait_log("configuration reloaded");
    wait_log("operator root has no account");
    wait_log("operator boss has no account");
}

/// `chat-server accounts add` reads the password from standard input when it is not a
/// terminal, and refuses an empty one; `list` says which accounts are operators'.
#[test]
fn the_accounts_command_makes_lists_and_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let add = |args: &[&str], stdin: &str| run_accounts(&data, args, stdin);
    let out = add(&["add", "root"], "\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must not be empty"));
    assert!(add(&["add", "root", "--operator"], "pw\n").status.success());
    let again = add(&["add", "ROOT"], "pw\n");
    assert!(String::from_utf8_lossy(&again.stderr).contains("has an account already"));
    let list = accounts_cli(&data, &["list"], "");
    assert!(list.contains("root") && list.contains("operator"), "{list}");
}
