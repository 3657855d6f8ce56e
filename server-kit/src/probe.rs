//! The `healthcheck` subcommand: asks a running service's `/readyz` and exits 0 only
//! on `200`. Container images carry no curl, so the binary checks itself.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the whole probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The address to probe for a service listening on `listen`: a wildcard address
/// (`0.0.0.0`, `::`) is reached through loopback.
pub fn probe_addr(listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
    } else {
        listen
    }
}

/// Sends `GET /readyz` to the service at `listen` and returns the HTTP status code.
pub async fn readyz_status(listen: SocketAddr) -> Result<u16, String> {
    let addr = probe_addr(listen);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let request = format!("GET /readyz HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("cannot send to {addr}: {e}"))?;
        let mut head = Vec::with_capacity(256);
        // The status line fits in the first few hundred bytes; read no more than needed.
        let mut limited = stream.take(4096);
        limited
            .read_to_end(&mut head)
            .await
            .map_err(|e| format!("cannot read from {addr}: {e}"))?;
        parse_status(&head).ok_or_else(|| format!("{addr} did not answer HTTP"))
    };
    tokio::time::timeout(PROBE_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{addr} did not answer within {PROBE_TIMEOUT:?}"))?
}

/// Runs the probe and turns the answer into a process exit code, printing why on failure.
pub async fn run(listen: SocketAddr) -> std::process::ExitCode {
    match readyz_status(listen).await {
        Ok(200) => std::process::ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("not ready: /readyz answered {status}");
            std::process::ExitCode::FAILURE
        }
        Err(reason) => {
            eprintln!("not ready: {reason}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn parse_status(response: &[u8]) -> Option<u16> {
    let line_end = response.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let line = std::str::from_utf8(&response[..line_end]).ok()?;
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n\r\n"), Some(200));
        assert_eq!(
            parse_status(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }

    #[test]
    fn wildcard_listen_is_probed_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(probe_addr(any).to_string(), "127.0.0.1:8080");
        let own: SocketAddr = "127.0.0.2:9".parse().unwrap();
        assert_eq!(probe_addr(own), own);
    }

    #[tokio::test]
    async fn a_closed_port_is_not_ready() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        assert!(readyz_status(addr).await.is_err());
    }
}
