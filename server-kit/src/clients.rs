//! The client registry: every HTTP sender and reader is a registered client,
//! loaded from a TOML file at start-up.
//!
//! The rule of this module: secrets (write keys, HMAC secrets, read tokens)
//! are only ever compared in constant time and never printed — their `Debug`
//! is redacted, and no error message quotes one.
//!
//! The file holds one `[[clients]]` table per client:
//!
//! ```toml
//! [[clients]]
//! id = "demo"                      # the <client> token of eye.events.<client>.>
//! categories = []                  # categories it may send; empty = all
//! rate_limit = { events_per_second = 1000, burst = 2000 }   # optional
//!
//! [[clients.write_keys]]           # public keys for browsers (Bearer or ?write_key=)
//! key = "…"
//! allowed_origins = ["https://shop.example.com"]
//!
//! [[clients.hmac_secrets]]         # server-side senders sign requests; several for rotation
//! secret = "…"
//!
//! [[clients.read_tokens]]          # the query service's tokens
//! token = "…"
//! scope = "own"                    # "own": this client's events; "all": every client's
//! ```
//!
//! Unknown keys are errors, so a misspelt option fails the start instead of
//! being ignored. Today the gateway uses write keys and the query service read
//! tokens; signatures, origins, categories and rate limits are enforced by
//! the security work, which this shape already accommodates.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// A secret string from the registry: compared in constant time, never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret (for tests and for building a registry in code).
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// Whether `candidate` equals this secret. The time taken does not depend on
    /// where the two differ (only on their lengths, which are not secret enough to
    /// matter for keys of a fixed format).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(candidate).into()
    }

    /// The secret itself, for the one place that needs it (e.g. as an HMAC key).
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A public write key, for senders that cannot keep a secret (browsers).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteKey {
    /// The key as sent in `Authorization: Bearer <key>` or `?write_key=<key>`.
    pub key: Secret,
    /// Origins (`scheme://host[:port]`) browsers may use the key from; `"*"` is any.
    /// Empty: no browser origin (server-side use only).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// A shared secret for HMAC-signed requests (`X-Eye-Signature`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacSecret {
    /// The secret key of HMAC-SHA256.
    pub secret: Secret,
}

/// What a read token may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadScope {
    /// Only the events and rejects of the token's own client.
    #[default]
    Own,
    /// Every client's events and rejects (operators, analysts).
    All,
}

/// A bearer token of the query service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadToken {
    /// The token as sent in `Authorization: Bearer <token>`.
    pub token: Secret,
    /// What it may read (default `own`).
    #[serde(default)]
    pub scope: ReadScope,
}

/// A client's allowed event rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained events per second.
    pub events_per_second: u32,
    /// Events that may arrive at once above the sustained rate.
    pub burst: u32,
}

/// One registered client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// The client id: a subject token (`A-Z a-z 0-9 _ -`, at most 64 bytes).
    pub id: String,
    /// Categories the client may send; empty means every category.
    #[serde(default)]
    pub categories: Vec<String>,
    /// The client's rate limit; none means unlimited.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Public write keys (browser senders).
    #[serde(default)]
    pub write_keys: Vec<WriteKey>,
    /// HMAC secrets (signed server-side senders); more than one during a rotation.
    #[serde(default)]
    pub hmac_secrets: Vec<HmacSecret>,
    /// Read tokens of the query service.
    #[serde(default)]
    pub read_tokens: Vec<ReadToken>,
}

impl Client {
    /// Whether the client may send events of `category`.
    pub fn may_send(&self, category: &str) -> bool {
        self.categories.is_empty() || self.categories.iter().any(|c| c == category)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    clients: Vec<Client>,
}

/// Why the client registry could not be loaded. No variant quotes a secret.
#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    /// The file could not be read.
    #[error("cannot read the clients file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("the clients file {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (it quotes the offending line, which may hold a
        /// secret only if the secret itself is malformed TOML).
        message: String,
    },
    /// The file parses but breaks a rule (duplicate ids or keys, a bad id, ...).
    #[error("the clients file {path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, naming the client.
        message: String,
    },
}

/// The registered clients, looked up by id or by credential. Immutable once
/// loaded; share it with `Arc`.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: Vec<Arc<Client>>,
    by_id: HashMap<String, usize>,
}

impl ClientRegistry {
    /// Loads and checks the TOML file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<ClientRegistry, ClientsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ClientsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        ClientRegistry::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks a registry from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<ClientRegistry, ClientsError> {
        let file: File = toml::from_str(text).map_err(|e| ClientsError::Parse {
            path: origin.to_owned(),
            message: e.message().to_owned(),
        })?;
        ClientRegistry::from_clients(file.clients).map_err(|message| ClientsError::Invalid {
            path: origin.to_owned(),
            message,
        })
    }

    /// Builds a registry from clients, checking that ids are valid and unique,
    /// that no credential is empty, and that no write key or read token is
    /// shared by two clients (it would identify neither).
    pub fn from_clients(clients: Vec<Client>) -> Result<ClientRegistry, String> {
        let mut by_id = HashMap::new();
        let mut write_keys: HashSet<&[u8]> = HashSet::new();
        let mut read_tokens: HashSet<&[u8]> = HashSet::new();
        for (i, client) in clients.iter().enumerate() {
            let id = &client.id;
            eye_contract::validate_client_id(id)
                .map_err(|e| format!("client #{} has a bad id {id:?}: {e}", i + 1))?;
            if by_id.insert(id.clone(), i).is_some() {
                return Err(format!("client {id:?} is registered twice"));
            }
            let secrets = client
                .write_keys
                .iter()
                .map(|k| ("write key", &k.key))
                .chain(
                    client
                        .hmac_secrets
                        .iter()
                        .map(|s| ("HMAC secret", &s.secret)),
                )
                .chain(client.read_tokens.iter().map(|t| ("read token", &t.token)));
            for (kind, secret) in secrets {
                if secret.expose().trim_ascii().is_empty() {
                    return Err(format!("client {id:?} has an empty {kind}"));
                }
            }
            for key in &client.write_keys {
                if !write_keys.insert(key.key.expose()) {
                    return Err(format!(
                        "client {id:?} has a write key that is already registered"
                    ));
                }
            }
            for token in &client.read_tokens {
                if !read_tokens.insert(token.token.expose()) {
                    return Err(format!(
                        "client {id:?} has a read token that is already registered"
                    ));
                }
            }
        }
        Ok(ClientRegistry {
            clients: clients.into_iter().map(Arc::new).collect(),
            by_id,
        })
    }

    /// The client with id `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Client>> {
        self.by_id.get(id).and_then(|&i| self.clients.get(i))
    }

    /// Every client, in file order.
    pub fn clients(&self) -> impl Iterator<Item = &Arc<Client>> + '_ {
        self.clients.iter()
    }

    /// How many clients there are.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is registered.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The client owning write key `presented`, and the key's entry.
    pub fn by_write_key(&self, presented: &str) -> Option<(&Arc<Client>, &WriteKey)> {
        self.find(presented, |client| {
            client.write_keys.iter().map(|k| (&k.key, k)).collect()
        })
    }

    /// The client owning read token `presented`, and the token's entry.
    pub fn by_read_token(&self, presented: &str) -> Option<(&Arc<Client>, &ReadToken)> {
        self.find(presented, |client| {
            client.read_tokens.iter().map(|t| (&t.token, t)).collect()
        })
    }

    /// Compares `presented` with every credential that `entries` lists, without
    /// stopping at the first match, so the time taken does not tell which
    /// client (or how many) came before the right one.
    fn find<'a, T>(
        &'a self,
        presented: &str,
        entries: impl Fn(&'a Client) -> Vec<(&'a Secret, &'a T)>,
    ) -> Option<(&'a Arc<Client>, &'a T)> {
        let mut found = None;
        for client in &self.clients {
            for (secret, entry) in entries(client) {
                if secret.matches(presented.as_bytes()) && found.is_none() {
                    found = Some((client, entry));
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = r#"
        [[clients]]
        id = "demo"
        rate_limit = { events_per_second = 10, burst = 20 }

        [[clients.write_keys]]
        key = "eye_demo_write_key"
        allowed_origins = ["*"]

        [[clients.hmac_secrets]]
        secret = "eye_demo_secret"

        [[clients.read_tokens]]
        token = "eye_demo_read_token"
        scope = "all"

        [[clients]]
        id = "shop"
        categories = ["party"]
        write_keys = [{ key = "shop_key" }, { key = "shop_key_2" }]
        read_tokens = [{ token = "shop_read" }]
    "#;

    fn registry() -> ClientRegistry {
        ClientRegistry::from_toml(DEMO, "test.toml").expect("valid registry")
    }

    #[test]
    fn finds_clients_by_id_and_credential() {
        let r = registry();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r.get("demo").map(|c| c.rate_limit),
            Some(Some(RateLimit {
                events_per_second: 10,
                burst: 20
            }))
        );
        let (client, key) = r.by_write_key("eye_demo_write_key").expect("demo key");
        assert_eq!(client.id, "demo");
        assert_eq!(key.allowed_origins, ["*"]);
        assert_eq!(
            r.by_write_key("shop_key_2").map(|(c, _)| c.id.as_str()),
            Some("shop")
        );
        assert!(r.by_write_key("eye_demo_write_ke").is_none());
        assert!(r.by_write_key("").is_none());
        assert!(
            r.by_write_key("eye_demo_secret").is_none(),
            "an HMAC secret is no write key"
        );
        let (client, token) = r.by_read_token("shop_read").expect("shop token");
        assert_eq!((client.id.as_str(), token.scope), ("shop", ReadScope::Own));
        assert_eq!(
            r.by_read_token("eye_demo_read_token").map(|(_, t)| t.scope),
            Some(ReadScope::All)
        );
        assert!(r.get("demo").is_some_and(|c| c.may_send("anything")));
        assert!(r
            .get("shop")
            .is_some_and(|c| c.may_send("party") && !c.may_send("other")));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let printed = format!("{:?}", registry());
        for secret in [
            "eye_demo_write_key",
            "eye_demo_secret",
            "eye_demo_read_token",
            "shop_key",
        ] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
        assert!(printed.contains("redacted"));
    }

    fn invalid(text: &str) -> String {
        ClientRegistry::from_toml(text, "bad.toml")
            .expect_err("should be refused")
            .to_string()
    }

    #[test]
    fn bad_files_are_refused_naming_the_problem() {
        let m = invalid("[[clients]]\nid = \"a.b\"\n");
        assert!(m.contains("bad.toml") && m.contains("a.b"), "{m}");
        let m = invalid("[[clients]]\nid = \"a\"\n[[clients]]\nid = \"a\"\n");
        assert!(m.contains("twice"), "{m}");
        let m = invalid("[[clients]]\nid = \"a\"\nwrite_keys = [{ key = \" \" }]\n");
        assert!(m.contains("empty write key"), "{m}");
        let m = invalid(
            "[[clients]]\nid = \"a\"\nwrite_keys = [{ key = \"k_secret\" }]\n\
             [[clients]]\nid = \"b\"\nwrite_keys = [{ key = \"k_secret\" }]\n",
        );
        assert!(
            m.contains("already registered") && !m.contains("k_secret"),
            "{m}"
        );
        let m = invalid("[[clients]]\nid = \"a\"\nwrite_key = \"x\"\n");
        assert!(m.contains("write_key"), "unknown field named: {m}");
        let m = invalid(
            "[[clients]]\nid = \"a\"\nread_tokens = [{ token = \"t\", scope = \"some\" }]\n",
        );
        assert!(m.contains("bad.toml"), "{m}");
    }

    #[test]
    fn the_repository_demo_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/clients.toml");
        let r = ClientRegistry::load(&path).expect("deploy/clients.toml loads");
        let (demo, _) = r
            .by_write_key("eye_demo_write_key")
            .expect("demo write key");
        assert_eq!(demo.id, "demo");
        assert!(demo
            .hmac_secrets
            .iter()
            .any(|s| s.secret.matches(b"eye_demo_secret")));
        assert!(r.by_read_token("eye_demo_read_token").is_some());
        let missing = ClientRegistry::load(path.with_file_name("nope.toml")).expect_err("missing");
        assert!(missing.to_string().contains("nope.toml"), "{missing}");
    }
}
