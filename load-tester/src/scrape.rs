//! The server's metrics page (Prometheus text over HTTP), read with a plain HTTP/1.0
//! request: a handful of lines on loopback need no HTTP client crate.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context;

/// The address behind `--metrics` (a URL or HOST:PORT).
pub(crate) fn metrics_addr(m: &str) -> anyhow::Result<SocketAddr> {
    let rest = m.strip_prefix("http://").unwrap_or(m);
    let host = rest.split('/').next().unwrap_or(rest);
    host.to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("no address for {host}"))
}

/// The samples of a Prometheus text page, by metric name with labels.
pub(crate) fn scrape(addr: SocketAddr) -> Option<HashMap<String, u64>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    Some(
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, v) = l.rsplit_once(' ')?;
                Some((name.to_string(), v.parse::<f64>().ok()? as u64))
            })
            .collect(),
    )
}

/// The sum of the samples whose name (labels included) starts with `prefix`.
pub(crate) fn sum_prefix(m: &HashMap<String, u64>, prefix: &str) -> u64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_address_from_url_or_address() {
        let want: SocketAddr = "127.0.0.1:9027".parse().unwrap();
        assert_eq!(metrics_addr("http://127.0.0.1:9027/metrics").unwrap(), want);
        assert_eq!(metrics_addr("127.0.0.1:9027").unwrap(), want);
    }
}
