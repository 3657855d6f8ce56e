//! Blocking readiness checks over plain sockets.
//!
//! Servers are started from synchronous code (a `OnceLock` initialiser, or a
//! test outside any runtime), and must not depend on the runtime of the test
//! that happened to start them: each `#[tokio::test]` has its own runtime,
//! gone when that test ends. So the checks speak just enough HTTP/1.0 and NATS
//! over `std::net`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

fn connect(port: u16) -> Result<TcpStream, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// An HTTP/1.0 request to 127.0.0.1:`port`; returns the status and body.
pub(crate) fn http(
    port: u16,
    method: &str,
    target: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let mut stream = connect(port)?;
    let request = format!(
        "{method} {target} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{method} {target}: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("{method} {target}: {e}"))?;
    let split = find(&response, b"\r\n\r\n").ok_or_else(|| {
        format!(
            "{method} {target}: incomplete response {:?}",
            String::from_utf8_lossy(&response)
        )
    })?;
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{method} {target}: bad status line in {head:?}"))?;
    let chunked = head
        .lines()
        .any(|line| line.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Decodes a chunked body (servers may answer HTTP/1.0 with one).
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = find(rest, b"\r\n") {
        let size_line = String::from_utf8_lossy(&rest[..line_end]);
        let size = size_line
            .split(';')
            .next()
            .and_then(|hex| usize::from_str_radix(hex.trim(), 16).ok());
        let after = &rest[line_end + 2..];
        match size {
            Some(size) if size > 0 && after.len() >= size => {
                body.extend_from_slice(&after[..size]);
                rest = after[size..]
                    .strip_prefix(b"\r\n")
                    .unwrap_or(&after[size..]);
            }
            _ => break,
        }
    }
    body
}

/// The `INFO` line a NATS server sends first on a client connection.
pub(crate) fn nats_info(port: u16) -> Result<String, String> {
    let stream = connect(port)?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("reading INFO on port {port}: {e}"))?;
    if line.starts_with("INFO ") {
        Ok(line)
    } else {
        Err(format!("expected INFO on port {port}, got {line:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunk_joins_chunks() {
        assert_eq!(dechunk(b"4\r\nOk.\n\r\n3\r\nabc\r\n0\r\n\r\n"), b"Ok.\nabc");
    }
}
