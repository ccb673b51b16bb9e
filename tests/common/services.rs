//! Test services started on free loopback ports and stopped on drop: `redis-server`, and
//! PostgreSQL made with `initdb` in a temporary folder. A missing program fails the test
//! with how to install it; nothing is skipped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A free TCP port on loopback (free when asked; the service binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free UDP port on loopback.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find(program: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(program);
        if p.is_file() {
            return Some(p);
        }
    }
    for pattern_dir in extra {
        // `/usr/lib/postgresql/<version>/bin`: take the highest version present.
        if let Some((base, rest)) = pattern_dir.split_once('*') {
            let mut found: Vec<PathBuf> = std::fs::read_dir(base)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join(rest.trim_start_matches('/')).join(program))
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            if let Some(p) = found.pop() {
                return Some(p);
            }
        }
    }
    None
}

/// Runs `cmd` to its end; fails the test with its standard error (and `log`, a file the
/// program writes instead) unless it succeeds.
#[track_caller]
fn run_ok(mut cmd: Command, log: Option<&Path>) {
    let out = cmd
        .stdout(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {} {}",
        String::from_utf8_lossy(&out.stderr),
        log.map(|l| std::fs::read_to_string(l).unwrap_or_default())
            .unwrap_or_default()
    );
}

/// Gives `path` (recursively) to the user `nobody` when we are root, for PostgreSQL.
fn chown_to_db_user(path: &Path) {
    if nix::unistd::geteuid().is_root() {
        let mut chown = Command::new("chown");
        chown.args(["-R", "nobody"]).arg(path);
        run_ok(chown, None);
    }
}

/// A `redis-server` of our own.
pub struct Redis {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one on a free port.
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir,
        };
        r.restart();
        r
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port, empty.
    pub fn restart(&mut self) {
        let bin = find("redis-server", &[]).unwrap_or_else(|| {
            panic!(
                "redis-server not found: install it (apt-get install redis-server, \
                 or run scripts/ci-services.sh)"
            )
        });
        let child = Command::new(bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let url = self.url();
        super::wait_for("redis-server starts", Duration::from_secs(10), || {
            redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok()
        });
    }

    /// Kills it (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A connection for inspecting it.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url().as_str())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL server of our own, in a temporary folder.
pub struct Postgres {
    dir: tempfile::TempDir,
    pg_ctl: PathBuf,
    /// Its port.
    pub port: u16,
}

/// Runs `program` as the user `nobody` when we are root (initdb refuses to run as root).
fn as_db_user(program: &Path) -> Command {
    if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// Makes a database cluster with `initdb` and starts it on a free port.
    pub fn start() -> Postgres {
        let dirs = ["/usr/lib/postgresql/*/bin"];
        let missing = "PostgreSQL's initdb/pg_ctl not found: install it (apt-get install \
                       postgresql, or run scripts/ci-services.sh)";
        let initdb = find("initdb", &dirs).unwrap_or_else(|| panic!("{missing}"));
        let pg_ctl = find("pg_ctl", &dirs).unwrap_or_else(|| panic!("{missing}"));
        let dir = tempfile::tempdir().unwrap();
        chown_to_db_user(dir.path());
        let data = dir.path().join("data");
        let mut initdb = as_db_user(&initdb);
        initdb
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data);
        run_ok(initdb, None);
        let port = free_port();
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            dir.path().display()
        );
        let log = dir.path().join("log");
        let mut start = as_db_user(&pg_ctl);
        start
            .args(["-w", "-t", "30", "-D"])
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(&log)
            .arg("start");
        run_ok(start, Some(&log));
        Postgres { dir, pg_ctl, port }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_db_user(&self.pg_ctl)
            .args(["-D"])
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A TCP proxy in front of a Redis that, while `slow` is set, holds every request that
/// runs a Lua script with `EVAL` (the nickname lease claims and releases) for `delay`
/// before passing it on. Everything else (subscriptions, renewals with `EVALSHA`,
/// publications) passes at once, so the cluster stays connected.
pub struct SlowRedis {
    /// The proxy's port.
    pub port: u16,
    /// Whether lease requests are held now.
    pub slow: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowRedis {
    /// A proxy to the Redis on `target` that holds lease requests for `delay` while slow.
    pub fn start(target: u16, delay: Duration) -> SlowRedis {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let slow = Arc::new(AtomicBool::new(false));
        let flag = slow.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let (mut c_read, mut u_write) =
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (mut u_read, mut c_write) = (upstream, client);
                let flag = flag.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let lease = buf[..n].windows(10).any(|w| w == b"$4\r\nEVAL\r\n");
                        if lease && flag.load(Ordering::Relaxed) {
                            std::thread::sleep(delay);
                        }
                        if u_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = u_write.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u_read, &mut c_write);
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        SlowRedis { port, slow }
    }

    /// `redis://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// A certificate authority of our own and a server certificate it signed for
/// `localhost` and `127.0.0.1`, as PEM files in a temporary folder.
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes the CA and the server's certificate and key.
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "udpchat test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        TestCa { dir }
    }

    /// The CA's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server's private key.
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

/// A `redis-server` that speaks only TLS (certificates of `ca`) and knows one ACL user,
/// `udpchat` with password `acl-password`; the default user is off.
pub struct TlsRedis {
    child: Child,
    /// Its TLS port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl TlsRedis {
    /// Starts one on a free port.
    pub fn start(ca: &TestCa) -> TlsRedis {
        let bin = find("redis-server", &[]).expect("redis-server not found");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(bin)
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--tls-cert-file")
            .arg(ca.cert())
            .arg("--tls-key-file")
            .arg(ca.key())
            .arg("--tls-ca-cert-file")
            .arg(ca.ca())
            .args(["--tls-auth-clients", "no"])
            .args(["--user", "default", "off"])
            .args([
                "--user",
                "udpchat",
                "on",
                ">acl-password",
                "~*",
                "&*",
                "+@all",
            ])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server with TLS");
        super::wait_for("redis-server (TLS) starts", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        TlsRedis {
            child,
            port,
            _dir: dir,
        }
    }

    /// `rediss://udpchat:PASSWORD@127.0.0.1:PORT`.
    pub fn url(&self, password: &str) -> String {
        format!("rediss://udpchat:{password}@127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Postgres {
    /// As [`start`](Self::start), but with TLS on (the certificate of `ca`) and every TCP
    /// connection required to use it (`hostssl` only in `pg_hba.conf`).
    pub fn start_tls(ca: &TestCa) -> Postgres {
        let pg = Postgres::start();
        let data = pg.dir.path().join("data");
        std::fs::copy(ca.cert(), data.join("server.crt")).unwrap();
        std::fs::copy(ca.key(), data.join("server.key")).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                data.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        chown_to_db_user(&data);
        let conf = data.join("postgresql.auto.conf");
        std::fs::write(&conf, "ssl = on\n").unwrap();
        let mut restart = as_db_user(&pg.pg_ctl);
        restart
            .args(["-w", "-t", "30", "-D"])
            .arg(&data)
            .args(["-m", "fast", "restart"]);
        run_ok(restart, None);
        pg
    }

    /// The URL of the database with `sslmode` as given.
    pub fn url_with(&self, sslmode: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode={sslmode}",
            self.port
        )
    }
}
