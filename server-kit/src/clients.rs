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
//! id = "shop"                      # the <client> token of eye.events.<client>.>
//! categories = ["party"]           # categories it may send; absent or empty = all
//! rate_limit = { events_per_second = 1000, burst = 2000 }   # optional; absent = unlimited
//!
//! [[clients.write_keys]]           # public keys for browsers (Bearer or ?write_key=)
//! key = "shop_pk_…"
//! allowed_origins = ["https://shop.example.com"]   # "*" = any; empty = no browser
//!
//! [[clients.hmac_secrets]]         # server-side senders sign requests; two during a rotation
//! secret = { env = "EYE_SHOP_SECRET" }   # or a literal string
//!
//! [[clients.read_tokens]]          # the query service's tokens
//! token = { env = "EYE_SHOP_READ_TOKEN" }
//! scope = "client"                 # "client": this client's events; "admin": every client's
//! ```
//!
//! Every credential (`key`, `secret`, `token`) is either a literal string or
//! `{ env = "VARIABLE" }`, read from the process environment when the file is
//! loaded (and again on every reload); an unset or empty variable refuses the
//! file, naming the variable. Scopes `own` and `all` are accepted as the old
//! names of `client` and `admin`.
//!
//! Unknown keys are errors, so a misspelt option fails the start instead of
//! being ignored. See `docs/security.md` for how each credential is used.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// A secret string from the registry: compared in constant time, never printed.
/// In the file it is a literal string or `{ env = "VARIABLE" }`.
#[derive(Clone)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string or { env = \"VARIABLE\" }")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Secret, E> {
        Ok(Secret(value.to_owned()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Secret, A::Error> {
        let mut variable: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "env" || variable.is_some() {
                return Err(de::Error::custom(format!(
                    "unexpected key `{key}` in a secret reference: write {{ env = \"VARIABLE\" }}"
                )));
            }
            variable = Some(map.next_value()?);
        }
        let variable = variable.ok_or_else(|| {
            de::Error::custom("a secret reference needs `env`: write { env = \"VARIABLE\" }")
        })?;
        match std::env::var(&variable) {
            Ok(value) if !value.trim().is_empty() => Ok(Secret(value)),
            Ok(_) => Err(de::Error::custom(format!(
                "environment variable {variable} (named by a secret reference) is empty"
            ))),
            Err(std::env::VarError::NotPresent) => Err(de::Error::custom(format!(
                "environment variable {variable} (named by a secret reference) is not set"
            ))),
            Err(std::env::VarError::NotUnicode(_)) => Err(de::Error::custom(format!(
                "environment variable {variable} (named by a secret reference) is not UTF-8"
            ))),
        }
    }
}

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
    /// Origins (`scheme://host[:port]`, as browsers send them in `Origin`)
    /// browsers may use the key from; `"*"` is any. Empty: no browser origin
    /// (requests without an `Origin` header only). Compared case-insensitively.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl WriteKey {
    /// Whether a browser at `origin` (an `Origin` header's value) may use the key.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    }
}

/// Checks one `allowed_origins` entry: `"*"` or `scheme://host[:port]` with
/// nothing after the host (browsers send no path, query or trailing slash).
fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err("must be \"*\" or scheme://host[:port]".to_owned());
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    let host_ok = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'[' | b']'));
    if scheme_ok && host_ok {
        Ok(())
    } else {
        Err("must be \"*\" or scheme://host[:port], without a path or a trailing slash".to_owned())
    }
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
    /// `client` (old name `own`): only the events and rejects of the token's
    /// own client.
    #[default]
    #[serde(alias = "own")]
    Client,
    /// `admin` (old name `all`): every client's events and rejects
    /// (operators, analysts).
    #[serde(alias = "all")]
    Admin,
}

/// A bearer token of the query service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadToken {
    /// The token as sent in `Authorization: Bearer <token>`.
    pub token: Secret,
    /// What it may read (default `client`).
    #[serde(default)]
    pub scope: ReadScope,
}

/// A client's allowed event rate: a token bucket of `burst` events, refilled
/// at `events_per_second`.
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

/// The rules of one client that need no other client: origins, rate limit,
/// categories.
fn check_client(client: &Client) -> Result<(), String> {
    let id = &client.id;
    for key in &client.write_keys {
        for origin in &key.allowed_origins {
            check_origin(origin)
                .map_err(|e| format!("client {id:?} has an allowed origin {origin:?} that {e}"))?;
        }
    }
    if let Some(limit) = client.rate_limit {
        if limit.events_per_second == 0 || limit.burst == 0 {
            return Err(format!(
                "client {id:?} has a rate limit of zero: events_per_second and burst must be at least 1 (leave rate_limit out for no limit)"
            ));
        }
    }
    if client.categories.iter().any(|c| c.trim().is_empty()) {
        return Err(format!("client {id:?} lists an empty category"));
    }
    Ok(())
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
        // The message alone, never the parser's snippet of the line: that line
        // may hold a secret. The line number is enough to find the problem.
        let file: File = toml::from_str(text).map_err(|e| ClientsError::Parse {
            path: origin.to_owned(),
            message: match e.span() {
                Some(span) => format!(
                    "line {}: {}",
                    text.get(..span.start)
                        .map_or(0, |before| before.matches('\n').count())
                        + 1,
                    e.message()
                ),
                None => e.message().to_owned(),
            },
        })?;
        ClientRegistry::from_clients(file.clients).map_err(|message| ClientsError::Invalid {
            path: origin.to_owned(),
            message,
        })
    }

    /// Builds a registry from clients, checking that ids are valid and unique,
    /// that no credential is empty, that no write key or read token is shared
    /// by two clients (it would identify neither), that origins are well
    /// formed and rate limits positive.
    pub fn from_clients(clients: Vec<Client>) -> Result<ClientRegistry, String> {
        for client in &clients {
            check_client(client)?;
        }
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

    /// Whether a browser at `origin` may use some client's write key: what a
    /// CORS preflight, which carries no key, is answered by.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.clients
            .iter()
            .flat_map(|client| &client.write_keys)
            .any(|key| key.allows_origin(origin))
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
        assert_eq!(
            (client.id.as_str(), token.scope),
            ("shop", ReadScope::Client)
        );
        assert_eq!(
            r.by_read_token("eye_demo_read_token").map(|(_, t)| t.scope),
            Some(ReadScope::Admin)
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
    fn scopes_have_new_and_old_names() {
        for (name, scope) in [
            ("client", ReadScope::Client),
            ("own", ReadScope::Client),
            ("admin", ReadScope::Admin),
            ("all", ReadScope::Admin),
        ] {
            let text = format!(
                "[[clients]]\nid = \"a\"\nread_tokens = [{{ token = \"t\", scope = \"{name}\" }}]\n"
            );
            let r = ClientRegistry::from_toml(&text, "t.toml").expect("valid");
            assert_eq!(r.by_read_token("t").map(|(_, t)| t.scope), Some(scope));
        }
        let r = ClientRegistry::from_toml(
            "[[clients]]\nid = \"a\"\nread_tokens = [{ token = \"t\" }]\n",
            "t.toml",
        )
        .expect("valid");
        assert_eq!(
            r.by_read_token("t").map(|(_, t)| t.scope),
            Some(ReadScope::Client),
            "the narrow scope is the default"
        );
    }

    #[test]
    fn secrets_may_come_from_the_environment() {
        // A variable name of this test alone, so no other test sees it.
        let var = "EYE_CLIENTS_RS_TEST_SECRET_7F3A";
        std::env::set_var(var, "from_the_env_secret");
        let text = format!(
            "[[clients]]\nid = \"a\"\nhmac_secrets = [{{ secret = {{ env = \"{var}\" }} }}]\n\
             read_tokens = [{{ token = \"literal\" }}]\n"
        );
        let r = ClientRegistry::from_toml(&text, "t.toml").expect("valid");
        assert!(r
            .get("a")
            .is_some_and(|c| c.hmac_secrets[0].secret.matches(b"from_the_env_secret")));
        std::env::remove_var(var);
        let m = ClientRegistry::from_toml(&text, "t.toml")
            .expect_err("unset variable")
            .to_string();
        assert!(
            m.contains(var) && m.contains("not set") && m.contains("line 3"),
            "{m}"
        );
        let m = invalid("[[clients]]\nid = \"a\"\nread_tokens = [{ token = { var = \"X\" } }]\n");
        assert!(m.contains("env"), "{m}");
        let m = invalid("[[clients]]\nid = \"a\"\nread_tokens = [{ token = 5 }]\n");
        assert!(m.contains("a string or { env"), "{m}");
    }

    #[test]
    fn origins_are_checked_and_matched() {
        let r = ClientRegistry::from_toml(
            "[[clients]]\nid = \"a\"\nwrite_keys = [{ key = \"k\", allowed_origins = [\"https://Shop.example.com\", \"http://localhost:3000\"] }]\n\
             [[clients]]\nid = \"b\"\nwrite_keys = [{ key = \"k2\" }]\n",
            "t.toml",
        )
        .expect("valid");
        let (_, key) = r.by_write_key("k").expect("key");
        assert!(key.allows_origin("https://shop.example.com"));
        assert!(key.allows_origin("http://localhost:3000"));
        assert!(!key.allows_origin("http://localhost:3001"));
        assert!(!key.allows_origin("https://shop.example.com.evil.com"));
        assert!(r.origin_allowed("https://shop.example.com"));
        assert!(!r.origin_allowed("https://evil.com"));
        assert!(!r.by_write_key("k2").expect("key").1.allows_origin("null"));
        for bad in [
            "shop.example.com",
            "https://shop.example.com/",
            "https://a.com/path",
            "https://",
        ] {
            let m = invalid(&format!(
                "[[clients]]\nid = \"a\"\nwrite_keys = [{{ key = \"k\", allowed_origins = [\"{bad}\"] }}]\n"
            ));
            assert!(m.contains("allowed origin"), "{bad}: {m}");
        }
        let m =
            invalid("[[clients]]\nid = \"a\"\nrate_limit = { events_per_second = 0, burst = 5 }\n");
        assert!(m.contains("rate limit of zero"), "{m}");
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
