//! Protected members (`--protected N`): before the run, each registers its nickname and
//! logs in with a password on its own socket, so that from then on everything it sends is
//! sealed and everything the server sends it must be opened; the run then measures what
//! sealing costs the server next to guests.
//!
//! The handshake is blocking and runs before the receiver threads start reading the
//! sockets, spread over a few threads (each registration and login stretches a password
//! with Argon2 on the client side, tens of milliseconds). Protected members bind addresses
//! of their own ([`super::names::protected_ip`]), so that the server's per-network limits on
//! registrations and password logins do not throttle the set-up.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context};
use proto::auth;
use proto::session::ClientSession;
use proto::{code, Event, Request};

use super::names::nickname;
use crate::options::Protection;

/// The password of every protected member.
const PASSWORD: &str = "load tester password";

/// Registers and logs in, with a password, every protected member among `globals` (their
/// `sockets`, talking to `servers`), on a few threads; the sockets are blocking meanwhile.
/// The session of each member, `None` for the guests.
pub(super) fn protect_all(
    sockets: &[UdpSocket],
    globals: &[usize],
    servers: &[SocketAddr],
    p: Protection,
) -> anyhow::Result<Vec<Option<Mutex<ClientSession>>>> {
    let todo: Vec<usize> = (0..sockets.len())
        .filter(|&i| globals[i] >= p.from)
        .collect();
    let threads = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
        * 2;
    let results: Vec<anyhow::Result<(usize, ClientSession)>> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<usize> = todo.iter().copied().skip(t).step_by(threads).collect();
                s.spawn(move || {
                    mine.into_iter()
                        .map(|i| {
                            sockets[i].set_nonblocking(false)?;
                            let nick = nickname(p.run_id, globals[i]);
                            let session = protect(&sockets[i], servers[i], &nick)?;
                            sockets[i].set_nonblocking(true)?;
                            Ok((i, session))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut sessions: Vec<Option<Mutex<ClientSession>>> =
        (0..sockets.len()).map(|_| None).collect();
    for r in results {
        let (i, session) = r?;
        sessions[i] = Some(Mutex::new(session));
    }
    Ok(sessions)
}

/// Waits for the next datagram on `sock` whose (opened) code is one of `want`, skipping
/// others, for up to `within`.
fn wait_for(
    sock: &UdpSocket,
    session: Option<&mut ClientSession>,
    want: &[u16],
    within: Duration,
) -> Option<(u16, String)> {
    let deadline = std::time::Instant::now() + within;
    let mut buf = vec![0u8; 65536];
    let mut session = session;
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(_) => return None,
        };
        let bytes = match session.as_deref_mut() {
            Some(s) => match s.open(&buf[..n]) {
                Some(b) => b.into_owned(),
                None => continue,
            },
            None => buf[..n].to_vec(),
        };
        let Ok(event) = Event::decode(&bytes) else {
            continue;
        };
        let c = event.code();
        if want.contains(&c) {
            let text = String::from_utf8_lossy(&bytes[2..]).into_owned();
            return Some((c, text));
        }
    }
}

/// Sends `datagram` and waits for one of `want`, up to 10 tries.
fn ask(
    sock: &UdpSocket,
    datagram: &[u8],
    want: &[u16],
    session: Option<&mut ClientSession>,
) -> anyhow::Result<(u16, String)> {
    let mut session = session;
    for _ in 0..10 {
        sock.send(datagram)?;
        if let Some(got) = wait_for(sock, session.as_deref_mut(), want, Duration::from_secs(2)) {
            return Ok(got);
        }
    }
    bail!("no answer")
}

/// Logs `nick` in on `sock` (connected to the server), registers it and logs in with the
/// password; returns the protected session.
///
/// # Errors
/// When the server does not answer, or refuses a step.
fn protect(sock: &UdpSocket, server: SocketAddr, nick: &str) -> anyhow::Result<ClientSession> {
    sock.connect(server)?;
    let errs = [code::ERROR];
    let (c, t) = ask(
        sock,
        &Request::Login { nick }.to_bytes(),
        &[code::LOGIN_ACK, code::ERROR],
        None,
    )?;
    anyhow::ensure!(c == code::LOGIN_ACK, "login of {nick}: {t}");
    let reg = auth::register_start(PASSWORD);
    let (c, resp) = ask(sock, &reg.datagram, &[code::REGISTER_RESP, errs[0]], None)?;
    anyhow::ensure!(c == code::REGISTER_RESP, "registering {nick}: {resp}");
    let upload = reg.finish(PASSWORD, &resp).context("registration answer")?;
    let (c, t) = ask(sock, &upload, &[code::ACCOUNT_ACK, code::ERROR], None)?;
    anyhow::ensure!(c == code::ACCOUNT_ACK, "registering {nick}: {t}");
    let login = auth::login_start(nick, PASSWORD);
    let (c, token) = ask(
        sock,
        &login.datagram,
        &[code::AUTH_RETRY, code::ERROR],
        None,
    )?;
    anyhow::ensure!(c == code::AUTH_RETRY, "password login of {nick}: {token}");
    let (c, challenge) = ask(
        sock,
        &login.with_token(&token),
        &[code::AUTH_CHALLENGE, code::ERROR],
        None,
    )?;
    anyhow::ensure!(
        c == code::AUTH_CHALLENGE,
        "password login of {nick}: {challenge}"
    );
    let (finish, keys) = login
        .finish(PASSWORD, &challenge)
        .map_err(|e| anyhow::anyhow!("password login of {nick}: {e}"))?;
    let mut session = ClientSession::new(keys);
    sock.send(&finish)?;
    if wait_for(
        sock,
        Some(&mut session),
        &[code::LOGIN_ACK],
        Duration::from_secs(2),
    )
    .is_none()
    {
        // Lost: ask again, sealed.
        let again = session.seal(&Request::Login { nick }.to_bytes());
        ask(sock, &again, &[code::LOGIN_ACK], Some(&mut session))?;
    }
    // The socket stays connected to the server, the only peer it talks to; the receivers
    // read it with `recv` and the drivers send with `send_to` the same address.
    Ok(session)
}
