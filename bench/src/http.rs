//! A lean keep-alive HTTP/1.1 connection for load: one TCP connection (with
//! `TCP_NODELAY`), requests one after another, no pool and no locks, so the
//! load generator spends as little of the shared CPU as possible.
//!
//! Only loopback addresses are accepted: the benchmark never sends load
//! anywhere else.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Longest one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://<loopback host>:<port>[/path]`.
    #[error("{0}: only http:// URLs of a loopback address are allowed")]
    NotLoopback(String),
    /// The connection failed.
    #[error("{addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// HTTP failed on the connection.
    #[error("HTTP: {0}")]
    Hyper(#[from] hyper::Error),
    /// A request could not be built (a bad header value).
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    /// No answer in time.
    #[error("no answer within {REQUEST_TIMEOUT:?}")]
    Timeout,
}

/// A base URL resolved to a loopback socket address.
#[derive(Debug, Clone)]
pub struct Target {
    /// The address.
    pub addr: SocketAddr,
    host: HeaderValue,
}

impl Target {
    /// Parses `http://127.0.0.1:8080` (a trailing path is ignored).
    pub fn parse(url: &str) -> Result<Target, HttpError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| HttpError::NotLoopback(url.to_owned()))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let addr = authority
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .filter(|addr| addr.ip().is_loopback())
            .ok_or_else(|| HttpError::NotLoopback(url.to_owned()))?;
        let host =
            HeaderValue::from_str(authority).map_err(|_| HttpError::NotLoopback(url.to_owned()))?;
        Ok(Target { addr, host })
    }
}

/// An answer: status and whole body.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

/// What an NDJSON export brought: status, lines and bytes of the body.
#[derive(Debug)]
pub struct Export {
    /// The status code.
    pub status: u16,
    /// Lines of the body (one per row, plus a last `next_cursor` or `error` line if any).
    pub lines: u64,
    /// Bytes of the body.
    pub bytes: u64,
}

/// One open connection.
pub struct Conn {
    target: Target,
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Opens a connection to `target`.
    pub async fn open(target: &Target) -> Result<Conn, HttpError> {
        let stream =
            TcpStream::connect(target.addr)
                .await
                .map_err(|source| HttpError::Connect {
                    addr: target.addr,
                    source,
                })?;
        stream
            .set_nodelay(true)
            .map_err(|source| HttpError::Connect {
                addr: target.addr,
                source,
            })?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the connection closes; errors show on the next request.
            let _closed = connection.await;
        });
        Ok(Conn {
            target: target.clone(),
            sender,
        })
    }

    /// `POST path` with a JSON body and a bearer credential.
    pub async fn post_json(
        &mut self,
        path: &str,
        bearer: &HeaderValue,
        body: Bytes,
    ) -> Result<Answer, HttpError> {
        let request = self
            .request(Method::POST, path, Some(bearer))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(body))?;
        self.send(request).await
    }

    /// `GET path` (path and query) with an optional bearer credential.
    pub async fn get(
        &mut self,
        path: &str,
        bearer: Option<&HeaderValue>,
    ) -> Result<Answer, HttpError> {
        let request = self.request(Method::GET, path, bearer);
        self.send(request.body(Full::new(Bytes::new()))?).await
    }

    /// `GET path` as an NDJSON export, the body counted as it streams in and
    /// never kept: status, lines and bytes. Gives up after `timeout`.
    pub async fn export(
        &mut self,
        path: &str,
        bearer: &HeaderValue,
        timeout: Duration,
    ) -> Result<Export, HttpError> {
        let request = self
            .request(Method::GET, path, Some(bearer))
            .header(ACCEPT, HeaderValue::from_static("application/x-ndjson"))
            .body(Full::new(Bytes::new()))?;
        let exchange = async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let mut export = Export {
                status: response.status().as_u16(),
                lines: 0,
                bytes: 0,
            };
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    export.bytes += data.len() as u64;
                    export.lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
                }
            }
            Ok::<_, HttpError>(export)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout)?
    }

    /// A request to this target: method, path, `Host`, and the bearer if any.
    fn request(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&HeaderValue>,
    ) -> hyper::http::request::Builder {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.target.host);
        match bearer {
            Some(bearer) => request.header(AUTHORIZATION, bearer),
            None => request,
        }
    }

    async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<Answer, HttpError> {
        let exchange = async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, HttpError>(Answer { status, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| HttpError::Timeout)?
    }
}

/// `Bearer <secret>` as a header value.
pub fn bearer(secret: &str) -> HeaderValue {
    let mut value = HeaderValue::from_str(&format!("Bearer {secret}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        let target = Target::parse("http://127.0.0.1:8080/v1").expect("loopback");
        assert_eq!(target.addr.port(), 8080);
        assert!(Target::parse("http://localhost:9").is_ok());
        assert!(Target::parse("http://192.0.2.1:80").is_err());
        assert!(Target::parse("https://127.0.0.1:80").is_err());
    }
}
