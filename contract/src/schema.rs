//! [`SchemaRegistry`]: the event categories and their JSON Schemas.
//!
//! The rule: a category exists if and only if a schema file names it. Each
//! `*.json` file of the schema directory is one JSON Schema (draft 2020-12,
//! declared with `"$schema"`) whose top-level `"x-eye-category"` keyword names
//! its category — the file name is free, because categories may contain
//! characters (spaces) that are awkward in file names. The schema validates
//! the *whole* event object, so it can constrain `name` and give each name
//! its own `data` rules.
//!
//! Every schema is compiled once, at load time, and every problem is an error
//! that names the file: a registry either loads completely or not at all.
//! Remote `$ref`s cannot be fetched (the `jsonschema` crate is built without
//! its resolver features), so a schema that needs one fails to load instead
//! of making the service depend on the network. `format` is asserted, not
//! just annotated, so a schema can rely on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::error::{escape_pointer_token, ErrorCode, EventError};

/// The only `$schema` a schema file may declare.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
/// The top-level keyword that names a schema's category.
pub const CATEGORY_KEYWORD: &str = "x-eye-category";
/// The longest category name, in bytes.
pub const MAX_CATEGORY_LEN: usize = 64;
/// Up to this many categories, an `unknown_category` message lists them all.
const LIST_CATEGORIES_UP_TO: usize = 10;
/// Cap on the part of a schema-violation message that comes from the
/// validator, which may quote (large) parts of the event.
const MAX_DETAIL_CHARS: usize = 300;

/// Why a schema registry could not be built; each error names the file.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The directory could not be listed.
    #[error("cannot read schema directory {}: {source}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The directory holds no `*.json` file.
    #[error("schema directory {} has no *.json schema files", dir.display())]
    Empty {
        /// The directory.
        dir: PathBuf,
    },
    /// A schema file could not be read.
    #[error("cannot read schema file {file}: {source}")]
    ReadFile {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A schema file is not JSON.
    #[error("schema file {file} is not valid JSON: {source}")]
    InvalidJson {
        /// The file.
        file: String,
        /// The parse error, with line and column.
        source: serde_json::Error,
    },
    /// A schema file is JSON but not a usable draft 2020-12 JSON Schema.
    #[error("schema file {file} is not a valid JSON Schema (draft 2020-12): {message}")]
    InvalidSchema {
        /// The file.
        file: String,
        /// What is wrong with it.
        message: String,
    },
    /// A schema file has no top-level `"x-eye-category"` string.
    #[error("schema file {file} has no top-level \"x-eye-category\" string naming its category")]
    MissingCategory {
        /// The file.
        file: String,
    },
    /// The category name itself is not acceptable.
    #[error("schema file {file}: category {category:?} is not allowed: {reason}")]
    InvalidCategory {
        /// The file.
        file: String,
        /// The category as written.
        category: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Two files name the same category.
    #[error("category {category:?} is defined twice: in {first} and in {second}")]
    DuplicateCategory {
        /// The category.
        category: String,
        /// The file loaded first.
        first: String,
        /// The file that repeats it.
        second: String,
    },
}

struct CategorySchema {
    file: String,
    schema: Value,
    validator: jsonschema::Validator,
}

/// The known categories, each with its compiled schema. Immutable once built;
/// share it with `Arc`.
pub struct SchemaRegistry {
    categories: BTreeMap<String, CategorySchema>,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.categories.iter().map(|(c, s)| (c, &s.file)))
            .finish()
    }
}

impl SchemaRegistry {
    /// Loads every `*.json` file directly in `dir` (sorted by name; hidden
    /// files and subdirectories are skipped). Fails if there is none.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<SchemaRegistry, RegistryError> {
        let dir = dir.as_ref();
        let read_dir_error = |source| RegistryError::ReadDir {
            dir: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir_error)? {
            let path = entry.map_err(read_dir_error)?.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            let is_json = path.extension().is_some_and(|e| e == "json");
            // `metadata` follows symlinks, so a linked schema file counts.
            if is_json && !hidden && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(RegistryError::Empty {
                dir: dir.to_owned(),
            });
        }
        files.sort();
        let mut schemas = Vec::with_capacity(files.len());
        for path in files {
            let file = path.display().to_string();
            let text = std::fs::read(&path).map_err(|source| RegistryError::ReadFile {
                file: file.clone(),
                source,
            })?;
            let value =
                serde_json::from_slice(&text).map_err(|source| RegistryError::InvalidJson {
                    file: file.clone(),
                    source,
                })?;
            schemas.push((file, value));
        }
        SchemaRegistry::from_schemas(schemas)
    }

    /// Builds a registry from `(file name, schema)` pairs, e.g. in tests. The
    /// file name only labels errors. An empty input gives an empty registry.
    pub fn from_schemas<I, S>(schemas: I) -> Result<SchemaRegistry, RegistryError>
    where
        I: IntoIterator<Item = (S, Value)>,
        S: Into<String>,
    {
        let mut categories: BTreeMap<String, CategorySchema> = BTreeMap::new();
        for (file, schema) in schemas {
            let file = file.into();
            let category = category_of(&file, &schema)?;
            if let Some(first) = categories.get(&category) {
                return Err(RegistryError::DuplicateCategory {
                    category,
                    first: first.file.clone(),
                    second: file,
                });
            }
            let validator = compile(&file, &schema)?;
            categories.insert(
                category,
                CategorySchema {
                    file,
                    schema,
                    validator,
                },
            );
        }
        Ok(SchemaRegistry { categories })
    }

    /// Whether `category` has a schema.
    pub fn contains(&self, category: &str) -> bool {
        self.categories.contains_key(category)
    }

    /// The known categories, in sorted order.
    pub fn categories(&self) -> impl Iterator<Item = &str> + '_ {
        self.categories.keys().map(String::as_str)
    }

    /// How many categories there are.
    pub fn len(&self) -> usize {
        self.categories.len()
    }

    /// Whether there are no categories at all.
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
    }

    /// The schema document of `category`, as loaded.
    pub fn schema(&self, category: &str) -> Option<&Value> {
        self.categories.get(category).map(|c| &c.schema)
    }

    /// The event names `category` allows, when its schema lists them: the
    /// strings of `properties.name.enum`, or `properties.name.const`. `None`
    /// when the category is unknown or its schema leaves `name` open (any
    /// non-empty string, e.g. an application's name).
    pub fn event_names(&self, category: &str) -> Option<Vec<&str>> {
        let name = self.schema(category)?.get("properties")?.get("name")?;
        if let Some(Value::String(only)) = name.get("const") {
            return Some(vec![only.as_str()]);
        }
        let names: Vec<&str> = name
            .get("enum")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        Some(names)
    }

    /// Validates a whole event object against the schema of `category`:
    /// `unknown_category` at `/category` if there is none, else the first
    /// violation as `schema_violation` with a pointer into the event.
    pub fn validate(&self, category: &str, event: &Value) -> Result<(), EventError> {
        let Some(entry) = self.categories.get(category) else {
            return Err(self.unknown_category(category));
        };
        match entry.validator.validate(event) {
            Ok(()) => Ok(()),
            Err(e) => Err(schema_violation(category, &e)),
        }
    }

    /// The `unknown_category` error for `category`, listing the known
    /// categories when there are few enough to read.
    pub fn unknown_category(&self, category: &str) -> EventError {
        let mut message = format!("unknown category {category:?}");
        if self.categories.is_empty() {
            message.push_str("; no categories are configured");
        } else if self.categories.len() <= LIST_CATEGORIES_UP_TO {
            let known: Vec<String> = self.categories().map(|c| format!("{c:?}")).collect();
            message.push_str("; known categories: ");
            message.push_str(&known.join(", "));
        }
        EventError::new(ErrorCode::UnknownCategory, message, "/category")
    }
}

fn category_of(file: &str, schema: &Value) -> Result<String, RegistryError> {
    let Some(obj) = schema.as_object() else {
        return Err(RegistryError::InvalidSchema {
            file: file.to_owned(),
            message: "the top level must be a JSON object".to_owned(),
        });
    };
    let category = match obj.get(CATEGORY_KEYWORD) {
        Some(Value::String(c)) => c.clone(),
        _ => {
            return Err(RegistryError::MissingCategory {
                file: file.to_owned(),
            })
        }
    };
    let invalid = |reason| RegistryError::InvalidCategory {
        file: file.to_owned(),
        category: category.clone(),
        reason,
    };
    if category.is_empty() {
        return Err(invalid("it is empty"));
    }
    if category.len() > MAX_CATEGORY_LEN {
        return Err(invalid("it is longer than 64 bytes"));
    }
    if category.starts_with(char::is_whitespace) || category.ends_with(char::is_whitespace) {
        return Err(invalid("it has leading or trailing whitespace"));
    }
    if category.chars().any(char::is_control) {
        return Err(invalid("it contains control characters"));
    }
    Ok(category)
}

fn compile(file: &str, schema: &Value) -> Result<jsonschema::Validator, RegistryError> {
    let invalid = |message: String| RegistryError::InvalidSchema {
        file: file.to_owned(),
        message,
    };
    match schema.get("$schema") {
        Some(Value::String(s)) if s == DRAFT_2020_12 => {}
        Some(other) => {
            return Err(invalid(format!(
                "\"$schema\" is {other}; it must be \"{DRAFT_2020_12}\""
            )))
        }
        None => {
            return Err(invalid(format!(
                "\"$schema\" is missing; it must be \"{DRAFT_2020_12}\""
            )))
        }
    }
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| {
            let at = e.instance_path().as_str();
            if at.is_empty() {
                invalid(e.to_string())
            } else {
                invalid(format!("at {at}: {e}"))
            }
        })
}

/// Turns the validator's first error into `schema_violation`.
///
/// A missing required property points where it should be and an unexpected
/// property points at itself, so the pointer always names the field at fault
/// (the validator reports both at the enclosing object).
fn schema_violation(category: &str, e: &jsonschema::ValidationError<'_>) -> EventError {
    let mut pointer = e.instance_path().as_str().to_owned();
    let detail = match e.kind() {
        ValidationErrorKind::Required {
            property: Value::String(field),
        } => {
            pointer.push('/');
            pointer.push_str(&escape_pointer_token(field));
            format!("required field {field:?} is missing")
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected }
            if !unexpected.is_empty() =>
        {
            let first = &unexpected[0];
            pointer.push('/');
            pointer.push_str(&escape_pointer_token(first));
            let mut d = format!("field {first:?} is not allowed here");
            if unexpected.len() > 1 {
                let others: Vec<String> =
                    unexpected[1..].iter().map(|u| format!("{u:?}")).collect();
                d.push_str(&format!(" (nor {})", others.join(", ")));
            }
            d
        }
        _ => e.to_string(),
    };
    let location = if pointer.is_empty() {
        "the event"
    } else {
        pointer.as_str()
    };
    let message = format!(
        "{category:?} schema violation at {location}: {}",
        truncate_chars(&detail, MAX_DETAIL_CHARS)
    );
    EventError::new(ErrorCode::SchemaViolation, message, pointer)
}

fn truncate_chars(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(s),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}…", &s[..cut])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(category: &str, body: Value) -> Value {
        let mut s = json!({"$schema": DRAFT_2020_12, "x-eye-category": category});
        if let (Some(s), Value::Object(b)) = (s.as_object_mut(), body) {
            s.extend(b);
        }
        s
    }

    fn registry() -> SchemaRegistry {
        SchemaRegistry::from_schemas([
            (
                "a.json",
                schema(
                    "page interaction",
                    json!({
                        "properties": {
                            "name": {"enum": ["pageview"]},
                            "data": {
                                "type": "object",
                                "required": ["host", "path"],
                                "properties": {"host": {"type": "string"}, "path": {"type": "string"}},
                                "additionalProperties": false
                            }
                        }
                    }),
                ),
            ),
            ("b.json", schema("party", json!({}))),
        ])
        .expect("registry")
    }

    fn violation(event: Value) -> EventError {
        registry()
            .validate("page interaction", &event)
            .expect_err("should violate")
    }

    #[test]
    fn lookup() {
        let r = registry();
        assert!(r.contains("page interaction"));
        assert!(r.contains("party"));
        assert!(!r.contains("Party"));
        assert_eq!(
            r.categories().collect::<Vec<_>>(),
            ["page interaction", "party"]
        );
        assert_eq!(r.len(), 2);
        assert!(r.schema("party").is_some());
        assert!(format!("{r:?}").contains("b.json"));
    }

    #[test]
    fn event_names_come_from_the_name_enum_or_const() {
        let r = SchemaRegistry::from_schemas([
            (
                "a.json",
                schema(
                    "a",
                    json!({"properties": {"name": {"enum": ["x", "y", 3]}}}),
                ),
            ),
            (
                "b.json",
                schema("b", json!({"properties": {"name": {"const": "only"}}})),
            ),
            (
                "c.json",
                schema("c", json!({"properties": {"name": {"type": "string"}}})),
            ),
        ])
        .expect("registry");
        assert_eq!(r.event_names("a"), Some(vec!["x", "y"]));
        assert_eq!(r.event_names("b"), Some(vec!["only"]));
        assert_eq!(r.event_names("c"), None);
        assert_eq!(r.event_names("nope"), None);
        assert_eq!(
            registry().event_names("page interaction"),
            Some(vec!["pageview"])
        );
    }

    #[test]
    fn valid_event_passes() {
        let ok = json!({"name": "pageview", "data": {"host": "h", "path": "/"}});
        assert_eq!(registry().validate("page interaction", &ok), Ok(()));
    }

    #[test]
    fn unknown_category_lists_known_ones() {
        let e = registry()
            .validate("nope", &json!({}))
            .expect_err("unknown");
        assert_eq!(e.code, ErrorCode::UnknownCategory);
        assert_eq!(e.pointer, "/category");
        assert!(
            e.message.contains("\"page interaction\", \"party\""),
            "{}",
            e.message
        );
        let many = SchemaRegistry::from_schemas(
            (0..11).map(|i| (format!("{i}.json"), schema(&format!("c{i}"), json!({})))),
        )
        .expect("registry");
        let e = many.unknown_category("nope");
        assert!(!e.message.contains("c10"), "{}", e.message);
    }

    #[test]
    fn violations_point_at_the_field() {
        let e = violation(json!({"name": "click", "data": {"host": "h", "path": "/"}}));
        assert_eq!(e.code, ErrorCode::SchemaViolation);
        assert_eq!(e.pointer, "/name");
        assert!(e.message.contains("pageview"), "{}", e.message);

        let e = violation(json!({"name": "pageview", "data": {"path": "/"}}));
        assert_eq!(e.pointer, "/data/host");
        assert!(e.message.contains("\"host\" is missing"), "{}", e.message);

        let e = violation(json!({"name": "pageview", "data": {"host": "h", "path": 7}}));
        assert_eq!(e.pointer, "/data/path");
        assert!(e.message.contains("\"string\""), "{}", e.message);

        let e = violation(
            json!({"name": "pageview", "data": {"host": "h", "path": "/", "x/y": 1, "z": 2}}),
        );
        assert_eq!(e.pointer, "/data/x~1y");
        assert!(
            e.message.contains("\"x/y\" is not allowed"),
            "{}",
            e.message
        );
    }

    #[test]
    fn long_details_are_truncated() {
        let big = "x".repeat(10_000);
        let e = violation(json!({"name": big, "data": {"host": "h", "path": "/"}}));
        assert!(e.message.chars().count() < 400, "{}", e.message.len());
        assert!(e.message.ends_with('…'));
    }

    fn load_err(schemas: Vec<(&str, Value)>) -> String {
        SchemaRegistry::from_schemas(schemas)
            .expect_err("should fail")
            .to_string()
    }

    #[test]
    fn errors_name_the_file() {
        let m = load_err(vec![
            ("one.json", schema("party", json!({}))),
            ("two.json", schema("party", json!({}))),
        ]);
        assert!(
            m.contains("one.json") && m.contains("two.json") && m.contains("twice"),
            "{m}"
        );

        let m = load_err(vec![("nocat.json", json!({"$schema": DRAFT_2020_12}))]);
        assert!(
            m.contains("nocat.json") && m.contains("x-eye-category"),
            "{m}"
        );

        let m = load_err(vec![(
            "numcat.json",
            json!({"$schema": DRAFT_2020_12, "x-eye-category": 5}),
        )]);
        assert!(
            m.contains("numcat.json") && m.contains("x-eye-category"),
            "{m}"
        );

        let m = load_err(vec![("bad.json", schema("party", json!({"type": 12})))]);
        assert!(
            m.contains("bad.json") && m.contains("not a valid JSON Schema"),
            "{m}"
        );

        let m = load_err(vec![(
            "draft7.json",
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "x-eye-category": "p"}),
        )]);
        assert!(m.contains("draft7.json") && m.contains("$schema"), "{m}");

        let m = load_err(vec![("noschema.json", json!({"x-eye-category": "p"}))]);
        assert!(m.contains("noschema.json") && m.contains("missing"), "{m}");

        let m = load_err(vec![("arr.json", json!([1]))]);
        assert!(m.contains("arr.json"), "{m}");

        let m = load_err(vec![(
            "remote.json",
            schema("p", json!({"$ref": "https://example.com/s.json"})),
        )]);
        assert!(m.contains("remote.json"), "{m}");

        for (cat, why) in [
            ("", "empty"),
            (" a", "whitespace"),
            ("a\n", "whitespace"),
            ("a\u{1}b", "control"),
        ] {
            let m = load_err(vec![("cat.json", schema(cat, json!({})))]);
            assert!(m.contains("cat.json") && m.contains(why), "{m}");
        }
        let long = "c".repeat(65);
        let m = load_err(vec![("long.json", schema(&long, json!({})))]);
        assert!(m.contains("long.json") && m.contains("64"), "{m}");
    }

    #[test]
    fn load_dir_reads_json_files_only_and_names_bad_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write");
        };
        let e = SchemaRegistry::load_dir(dir.path()).expect_err("empty dir");
        assert!(matches!(e, RegistryError::Empty { .. }), "{e}");

        write("party.json", &schema("party", json!({})).to_string());
        write("README.md", "not a schema");
        write(".hidden.json", "not json either");
        std::fs::create_dir(dir.path().join("sub.json")).expect("mkdir");
        let r = SchemaRegistry::load_dir(dir.path()).expect("loads");
        assert_eq!(r.categories().collect::<Vec<_>>(), ["party"]);

        write("broken.json", "{\"$schema\": ");
        let e = SchemaRegistry::load_dir(dir.path()).expect_err("broken");
        let m = e.to_string();
        assert!(matches!(e, RegistryError::InvalidJson { .. }), "{m}");
        assert!(m.contains("broken.json") && m.contains("line 1"), "{m}");

        let e = SchemaRegistry::load_dir(dir.path().join("missing")).expect_err("missing dir");
        assert!(matches!(e, RegistryError::ReadDir { .. }), "{e}");
    }
}
