//! [`Client`] and its [`ClientBuilder`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, TryStreamExt};
use reqwest::header::HeaderValue;
use uuid::Uuid;

use crate::config::{BatchConfig, RetryPolicy};
use crate::error::{ClientError, QueryError};
use crate::event::Event;
use crate::gateway::{Auth, GatewayTransport};
use crate::nats::NatsTransport;
use crate::query::{
    ErrorFilter, EventFilter, Page, Reader, SessionFilter, SessionSummary, StoredEvent,
    StoredReject, session_events_path,
};
use crate::receipt::{Receipt, SendStats};
use crate::sender::SenderHandle;
use crate::transport::Transport;

/// How the client authenticates to the gateway.
///
/// `Debug` never prints the key or the secret.
///
/// ```
/// let credentials = eye_client::Credentials::Hmac {
///     client_id: "demo".into(),
///     secret: "eye_demo_secret".into(),
/// };
/// assert!(!format!("{credentials:?}").contains("eye_demo_secret"));
/// let builder = eye_client::Client::builder().credentials(credentials);
/// ```
#[derive(Clone)]
pub enum Credentials {
    /// A write key, sent as `Authorization: Bearer <key>`.
    WriteKey(String),
    /// A client id and its HMAC secret: every request is signed (DESIGN.md, "Security").
    Hmac {
        /// The registered client id.
        client_id: String,
        /// The client's HMAC secret.
        secret: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::WriteKey(_) => f.write_str("WriteKey(<redacted>)"),
            Credentials::Hmac { client_id, .. } => f
                .debug_struct("Hmac")
                .field("client_id", client_id)
                .field("secret", &"<redacted>")
                .finish(),
        }
    }
}

/// Builds a [`Client`]: where to send (a gateway URL with credentials, or a
/// NATS connection), where to read (a query service URL with a read token),
/// and how to batch and retry.
///
/// ```no_run
/// # async fn example() -> Result<(), eye_client::ClientError> {
/// use eye_client::{BatchConfig, Client};
///
/// let client = Client::builder()
///     .gateway_url("http://127.0.0.1:8080")
///     .hmac("demo", "eye_demo_secret")
///     .query_url("http://127.0.0.1:8081")
///     .read_token("eye_demo_read_token")
///     .batching(BatchConfig { max_events: 1000, concurrency: 8, ..Default::default() })
///     .gzip(true)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct ClientBuilder {
    gateway_url: Option<String>,
    credentials: Option<Credentials>,
    nats: Option<(async_nats::Client, String)>,
    query_url: Option<String>,
    read_token: Option<String>,
    batching: BatchConfig,
    retry: RetryPolicy,
    gzip: bool,
    http: Option<reqwest::Client>,
}

impl ClientBuilder {
    /// The ingest gateway's base URL (`http://127.0.0.1:8080`); events go to
    /// `<url>/v1/events`.
    ///
    /// ```
    /// let builder = eye_client::Client::builder().gateway_url("http://127.0.0.1:8080");
    /// ```
    pub fn gateway_url(mut self, url: impl Into<String>) -> Self {
        self.gateway_url = Some(url.into());
        self
    }

    /// Authenticate to the gateway with a write key (`Authorization: Bearer`).
    ///
    /// ```
    /// let builder = eye_client::Client::builder().write_key("eye_demo_write_key");
    /// ```
    pub fn write_key(mut self, key: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::WriteKey(key.into()));
        self
    }

    /// Sign every request to the gateway with the client's HMAC secret.
    ///
    /// ```
    /// let builder = eye_client::Client::builder().hmac("demo", "eye_demo_secret");
    /// ```
    pub fn hmac(mut self, client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::Hmac {
            client_id: client_id.into(),
            secret: secret.into(),
        });
        self
    }

    /// Authenticate to the gateway with the given credentials.
    ///
    /// ```
    /// use eye_client::{Client, Credentials};
    /// let builder = Client::builder().credentials(Credentials::WriteKey("eye_demo_write_key".into()));
    /// ```
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Publish straight to NATS JetStream, as `client_id`, instead of going
    /// through the gateway. The connection must be allowed to publish on
    /// `eye.events.<client_id>.>`; under the shipped permissions
    /// (`deploy/nats/auth.conf`) a client's NATS user receives JetStream's
    /// acknowledgements only on `_INBOX.<client_id>.>`, so connect with that
    /// inbox prefix, as below. A publish the server refuses is never
    /// acknowledged: it ends as [`crate::SendError::GaveUp`] after the retries.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let connection = async_nats::ConnectOptions::new()
    ///     .user_and_password("demo".into(), "its password".into())
    ///     .custom_inbox_prefix("_INBOX.demo")
    ///     .connect("nats://127.0.0.1:4222")
    ///     .await?;
    /// let client = eye_client::Client::builder().nats(connection, "demo").build()?;
    /// # Ok(()) }
    /// ```
    pub fn nats(mut self, connection: async_nats::Client, client_id: impl Into<String>) -> Self {
        self.nats = Some((connection, client_id.into()));
        self
    }

    /// The query service's base URL (`http://127.0.0.1:8081`).
    ///
    /// ```
    /// let builder = eye_client::Client::builder().query_url("http://127.0.0.1:8081");
    /// ```
    pub fn query_url(mut self, url: impl Into<String>) -> Self {
        self.query_url = Some(url.into());
        self
    }

    /// The read token for the query service (`Authorization: Bearer`).
    ///
    /// ```
    /// let builder = eye_client::Client::builder()
    ///     .query_url("http://127.0.0.1:8081")
    ///     .read_token("eye_demo_read_token");
    /// ```
    pub fn read_token(mut self, token: impl Into<String>) -> Self {
        self.read_token = Some(token.into());
        self
    }

    /// How events are batched and how many batches are in flight.
    ///
    /// ```
    /// use eye_client::{BatchConfig, Client};
    /// let builder = Client::builder().batching(BatchConfig { max_events: 1, ..Default::default() });
    /// ```
    pub fn batching(mut self, batching: BatchConfig) -> Self {
        self.batching = batching;
        self
    }

    /// How retryable failures are retried.
    ///
    /// ```
    /// use eye_client::{Client, RetryPolicy};
    /// let builder = Client::builder().retry(RetryPolicy { max_retries: 3, ..Default::default() });
    /// ```
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Compress request bodies with gzip (off by default: on loopback it
    /// costs more CPU than it saves).
    ///
    /// ```
    /// let builder = eye_client::Client::builder().gzip(true);
    /// ```
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    /// Use this HTTP client (its connection pool, proxies, TLS settings)
    /// instead of the default one (keep-alive pool, `TCP_NODELAY`).
    ///
    /// ```
    /// let http = reqwest::Client::builder().pool_max_idle_per_host(32).build().unwrap();
    /// let builder = eye_client::Client::builder().http_client(http);
    /// ```
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client; a sender is started on the current Tokio runtime.
    ///
    /// Fails on a malformed URL, a gateway without credentials, both a
    /// gateway and NATS, out-of-range batching settings, or outside a runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use eye_client::{Client, ClientError};
    /// let client = Client::builder()
    ///     .gateway_url("http://127.0.0.1:8080")
    ///     .write_key("eye_demo_write_key")
    ///     .build();
    /// assert!(client.is_ok());
    /// // A gateway needs credentials.
    /// let no_key = Client::builder().gateway_url("http://127.0.0.1:8080").build();
    /// assert!(matches!(no_key, Err(ClientError::Config(_))));
    /// # }
    /// ```
    pub fn build(self) -> Result<Client, ClientError> {
        let b = &self.batching;
        if b.max_events == 0 || b.max_bytes == 0 || b.concurrency == 0 || b.queue_capacity == 0 {
            return Err(ClientError::Config(
                "max_events, max_bytes, concurrency and queue_capacity must be at least 1".into(),
            ));
        }
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(self.batching.concurrency.max(8))
                .build()
                .map_err(ClientError::Http)?,
        };
        let transport = match (self.gateway_url, self.nats) {
            (Some(_), Some(_)) => {
                return Err(ClientError::Config(
                    "choose one way to send: a gateway URL or a NATS connection, not both".into(),
                ));
            }
            (Some(url), None) => {
                let credentials = self.credentials.ok_or_else(|| {
                    ClientError::Config(
                        "a gateway needs credentials: call write_key or hmac".into(),
                    )
                })?;
                let auth = auth(credentials)?;
                let url =
                    base_url(&url)?
                        .join("v1/events")
                        .map_err(|e| ClientError::InvalidUrl {
                            url: url.clone(),
                            reason: e.to_string(),
                        })?;
                Some(Transport::Gateway(GatewayTransport {
                    http: http.clone(),
                    url,
                    auth,
                    gzip: self.gzip,
                    timeout: self.retry.request_timeout,
                }))
            }
            (None, Some((connection, client_id))) => {
                eye_contract::validate_client_id(&client_id)
                    .map_err(|e| ClientError::Config(format!("NATS client id: {e}")))?;
                Some(Transport::Nats(NatsTransport::new(
                    connection,
                    client_id,
                    self.retry.request_timeout,
                )))
            }
            (None, None) => None,
        };
        let sender = match transport {
            Some(t) => Some(SenderHandle::start(t, self.batching, self.retry)?),
            None => None,
        };
        let reader = match (self.query_url, self.read_token) {
            (Some(url), Some(token)) => Some(Reader {
                http,
                base: base_url(&url)?,
                token: header_value(&format!("Bearer {token}"), "read token")?,
                timeout: self.retry.request_timeout,
            }),
            (Some(_), None) => {
                return Err(ClientError::Config(
                    "a query URL needs a read token: call read_token".into(),
                ));
            }
            (None, _) => None,
        };
        Ok(Client {
            inner: Arc::new(Inner { sender, reader }),
        })
    }
}

fn auth(credentials: Credentials) -> Result<Auth, ClientError> {
    Ok(match credentials {
        Credentials::WriteKey(key) => {
            Auth::Bearer(header_value(&format!("Bearer {key}"), "write key")?)
        }
        Credentials::Hmac { client_id, secret } => {
            eye_contract::validate_client_id(&client_id)
                .map_err(|e| ClientError::Config(format!("HMAC client id: {e}")))?;
            Auth::Hmac {
                client: header_value(&client_id, "client id")?,
                secret: Arc::from(secret.into_bytes()),
            }
        }
    })
}

fn header_value(value: &str, what: &str) -> Result<HeaderValue, ClientError> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| ClientError::Config(format!("the {what} is not a valid HTTP header value")))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Parses a base URL and makes it end in `/` so paths join below it.
fn base_url(url: &str) -> Result<reqwest::Url, ClientError> {
    let invalid = |reason: String| ClientError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let mut parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https".into()));
    }
    if !parsed.path().ends_with('/') {
        let path = format!("{}/", parsed.path());
        parsed.set_path(&path);
    }
    Ok(parsed)
}

/// A client of The Eye: sends events (batched, pipelined, retried) and reads
/// them back. Cheap to clone; clones share one sender and one connection pool.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use eye_client::{Client, Event, Timestamp};
///
/// let client = Client::builder()
///     .gateway_url("http://127.0.0.1:8080")
///     .write_key("eye_demo_write_key")
///     .build()?;
/// let session = uuid::Uuid::new_v4();
/// let receipt = client
///     .send(Event::new(session, "party", "AppName", Timestamp::now())
///         .with_data(serde_json::json!({"host": "www.party.com", "path": "/"}))
///         .map_err(|_| "data must be an object")?)
///     .await?;
/// println!("{:?}", receipt.await);
/// client.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    sender: Option<SenderHandle>,
    reader: Option<Reader>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("sends", &self.inner.sender.is_some())
            .field("reads", &self.inner.reader.is_some())
            .finish()
    }
}

impl Client {
    /// A builder with the default batching and retry settings.
    ///
    /// ```
    /// let builder = eye_client::Client::builder().gateway_url("http://127.0.0.1:8080");
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    fn sender(&self) -> Result<&SenderHandle, ClientError> {
        self.inner.sender.as_ref().ok_or(ClientError::NoSender)
    }

    fn reader(&self) -> Result<&Reader, QueryError> {
        self.inner.reader.as_ref().ok_or(QueryError::NotConfigured)
    }

    /// Queues `event` and returns its [`Receipt`], a future of its outcome.
    ///
    /// Waits only while the queue is full (backpressure), never for the
    /// event's delivery. Fails if the client is closed or cannot send.
    ///
    /// ```no_run
    /// # async fn example(client: eye_client::Client, event: eye_client::Event) -> Result<(), eye_client::ClientError> {
    /// let receipt = client.send(event).await?;
    /// if let Err(error) = receipt.await {
    ///     eprintln!("not stored: {error}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, event: Event) -> Result<Receipt, ClientError> {
        match self.sender()?.send(event, true).await? {
            Some(receipt) => Ok(receipt),
            None => Err(ClientError::Closed),
        }
    }

    /// Queues `event` without a receipt (cheaper at high rates); its outcome
    /// is only counted in [`Client::stats`].
    ///
    /// ```no_run
    /// # async fn example(client: eye_client::Client, event: eye_client::Event) -> Result<(), eye_client::ClientError> {
    /// client.enqueue(event).await?;
    /// client.flush().await?;
    /// assert_eq!(client.stats().pending(), 0);
    /// # Ok(()) }
    /// ```
    pub async fn enqueue(&self, event: Event) -> Result<(), ClientError> {
        self.sender()?.send(event, false).await.map(|_| ())
    }

    /// Sends every event queued before this call at once (without waiting
    /// for the linger time) and waits until each has its outcome.
    ///
    /// ```no_run
    /// # async fn example(client: eye_client::Client) -> Result<(), eye_client::ClientError> {
    /// client.flush().await?;
    /// # Ok(()) }
    /// ```
    pub async fn flush(&self) -> Result<(), ClientError> {
        self.sender()?.flush().await
    }

    /// Flushes, then stops the sender: afterwards `send` fails with
    /// [`ClientError::Closed`]. Nothing queued before `close` is lost. A
    /// client without a sender closes at once.
    ///
    /// ```no_run
    /// # async fn example(client: eye_client::Client) -> Result<(), eye_client::ClientError> {
    /// client.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) -> Result<(), ClientError> {
        match &self.inner.sender {
            Some(sender) => sender.close().await,
            None => Ok(()),
        }
    }

    /// What the sender has done so far (all zero for a client that only reads).
    ///
    /// ```no_run
    /// # fn example(client: eye_client::Client) {
    /// let stats = client.stats();
    /// println!("{} accepted, {} pending", stats.accepted, stats.pending());
    /// # }
    /// ```
    pub fn stats(&self) -> SendStats {
        self.inner
            .sender
            .as_ref()
            .map(|s| s.counters.snapshot())
            .unwrap_or_default()
    }

    /// Every event of one session, in order of occurrence (all pages).
    ///
    /// For very long sessions, stream them instead:
    /// `client.events(EventFilter::default().session(id))`.
    ///
    /// ```no_run
    /// # async fn example(client: eye_client::Client) -> Result<(), eye_client::QueryError> {
    /// let session = uuid::Uuid::parse_str("e2085be5-9137-4e4e-80b5-f1ffddc25423").unwrap();
    /// for event in client.session_events(session).await? {
    ///     println!("{} {} {}", event.timestamp.to_rfc3339(), event.category, event.name);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn session_events(&self, session_id: Uuid) -> Result<Vec<StoredEvent>, QueryError> {
        let path = session_events_path(&session_id);
        let reader = self.reader()?.clone();
        paginate::<StoredEvent>(Ok(reader), path, Vec::new())
            .try_collect()
            .await
    }

    /// Events matching `filter`, in order of occurrence, following the
    /// service's cursors page by page.
    ///
    /// ```no_run
    /// # async fn example(client: eye_client::Client) -> Result<(), eye_client::QueryError> {
    /// use futures::TryStreamExt;
    /// let mut events = std::pin::pin!(client.events(eye_client::EventFilter::default().category("party")));
    /// while let Some(event) = events.try_next().await? {
    ///     println!("{}", event.event_id);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn events(
        &self,
        filter: EventFilter,
    ) -> impl Stream<Item = Result<StoredEvent, QueryError>> + Send + 'static {
        paginate(
            self.reader().cloned(),
            "v1/events".to_owned(),
            filter.params(),
        )
    }

    /// One page of events matching `filter`, from `cursor` (`None`: the first page).
    ///
    /// ```no_run
    /// # async fn example(client: eye_client::Client) -> Result<(), eye_client::QueryError> {
    /// let filter = eye_client::EventFilter::default().page_size(10);
    /// let first = client.events_page(&filter, None).await?;
    /// if let Some(cursor) = first.next_cursor {
    ///     let second = client.events_page(&filter, Some(&cursor)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn events_page(
        &self,
        filter: &EventFilter,
        cursor: Option<&str>,
    ) -> Result<Page<StoredEvent>, QueryError> {
        self.reader()?
            .page("v1/events", &filter.params(), cursor)
            .await
    }

    /// Sessions with events matching `filter`, with first/last time and counts.
    ///
    /// ```no_run
    /// # async fn example(client: eye_client::Client) -> Result<(), eye_client::QueryError> {
    /// use futures::TryStreamExt;
    /// let sessions: Vec<_> = client.sessions(eye_client::SessionFilter::default()).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn sessions(
        &self,
        filter: SessionFilter,
    ) -> impl Stream<Item = Result<SessionSummary, QueryError>> + Send + 'static {
        paginate(
            self.reader().cloned(),
            "v1/sessions".to_owned(),
            filter.params(),
        )
    }

    /// Rejected events matching `filter`, by time of reception.
    ///
    /// ```no_run
    /// # async fn example(client: eye_client::Client) -> Result<(), eye_client::QueryError> {
    /// use futures::TryStreamExt;
    /// let filter = eye_client::ErrorFilter::default().code("schema_violation");
    /// let rejects: Vec<_> = client.errors(filter).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn errors(
        &self,
        filter: ErrorFilter,
    ) -> impl Stream<Item = Result<StoredReject, QueryError>> + Send + 'static {
        paginate(
            self.reader().cloned(),
            "v1/errors".to_owned(),
            filter.params(),
        )
    }
}

/// Follows cursors: one request per page, rows yielded one by one; the
/// stream ends after the last page or the first error.
fn paginate<T: serde::de::DeserializeOwned + Send + 'static>(
    reader: Result<Reader, QueryError>,
    path: String,
    params: Vec<(&'static str, String)>,
) -> impl Stream<Item = Result<T, QueryError>> + Send + 'static {
    struct State {
        reader: Result<Reader, QueryError>,
        path: String,
        params: Vec<(&'static str, String)>,
        cursor: Option<String>,
        done: bool,
    }
    let state = State {
        reader,
        path,
        params,
        cursor: None,
        done: false,
    };
    futures::stream::try_unfold(state, |mut state| async move {
        if state.done {
            return Ok(None);
        }
        let reader = match &state.reader {
            Ok(reader) => reader,
            Err(_) => return Err(QueryError::NotConfigured),
        };
        let page: Page<T> = reader
            .page(&state.path, &state.params, state.cursor.as_deref())
            .await?;
        state.done = page.next_cursor.is_none();
        state.cursor = page.next_cursor;
        let rows = futures::stream::iter(page.items.into_iter().map(Ok::<T, QueryError>));
        Ok(Some((rows, state)))
    })
    .try_flatten()
}
