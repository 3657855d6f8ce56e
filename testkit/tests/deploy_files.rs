//! The deployment files agree with each other and with the code, checked without
//! Docker: docker-compose.yml (services, loopback-only ports at DESIGN.md's
//! defaults, health checks, start order, mounts, builds, environment),
//! deploy/Dockerfile (stages and the binaries they copy), and the scripts
//! (deploy/local.sh, .ci/run).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Each part's published port (DESIGN.md, "Ports and the demo client") and the
/// variable deploy/local.sh and the compose file read to move it.
const PUBLISHED: [(&str, u16, &str); 5] = [
    ("gateway", 8080, "EYE_GATEWAY_PORT"),
    ("query", 8081, "EYE_QUERY_PORT"),
    ("consumer", 8082, "EYE_CONSUMER_PORT"),
    ("nats", 4222, "EYE_NATS_PORT"),
    ("clickhouse", 8123, "EYE_CLICKHOUSE_HTTP_PORT"),
];

/// Our services in the compose file, the Dockerfile target each is built from,
/// and the crate of its binary.
const OUR_SERVICES: [(&str, &str, &str); 3] = [
    ("gateway", "gateway", "ingest-gateway"),
    ("consumer", "consumer", "consumer"),
    ("query", "query", "query-service"),
];

/// Variables the binaries read that are not clap options: the log filter of
/// tracing-subscriber's `EnvFilter` (server-kit/src/telemetry.rs).
const NON_CLAP_ENV: [&str; 1] = ["RUST_LOG"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn compose() -> Value {
    let path = repo_root().join("docker-compose.yml");
    serde_norway::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn services(compose: &Value) -> &serde_json::Map<String, Value> {
    compose["services"]
        .as_object()
        .expect("docker-compose.yml has a services mapping")
}

/// Replaces each `${NAME:-default}` or `${NAME-default}` by its default and
/// returns the names; a variable without a default is an error (the file must
/// work with an empty environment).
fn interpolate(text: &str) -> Result<(String, Vec<String>), String> {
    let mut out = String::new();
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(escaped) = after.strip_prefix('$') {
            out.push('$');
            rest = escaped;
            continue;
        }
        let body = after
            .strip_prefix('{')
            .and_then(|b| b.find('}').map(|end| (&b[..end], &b[end + 1..])));
        let Some((inner, tail)) = body else {
            return Err(format!("{text:?}: only ${{NAME:-default}} is allowed"));
        };
        let (name, default) = match inner.split_once(":-").or_else(|| inner.split_once('-')) {
            Some((name, default)) => (name, default),
            None => return Err(format!("{text:?}: ${{{inner}}} has no default")),
        };
        names.push(name.to_owned());
        out.push_str(default);
        rest = tail;
    }
    out.push_str(rest);
    Ok((out, names))
}

/// The healthcheck command of a service as a list of words (`CMD` form).
fn healthcheck_command(service: &Value) -> Option<Vec<String>> {
    let check = service.get("healthcheck")?;
    if check.get("disable").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let words: Vec<String> = check
        .get("test")?
        .as_array()?
        .iter()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect();
    match words.first().map(String::as_str) {
        Some("CMD") | Some("CMD-SHELL") if words.len() > 1 => Some(words[1..].to_vec()),
        _ => None,
    }
}

/// A service's environment as name -> value, from either compose syntax.
fn environment(service: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    match service.get("environment") {
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                env.insert(name.clone(), value);
            }
        }
        Some(Value::Array(list)) => {
            for item in list.iter().filter_map(Value::as_str) {
                let (name, value) = item.split_once('=').unwrap_or((item, ""));
                env.insert(name.to_owned(), value.to_owned());
            }
        }
        _ => {}
    }
    env
}

#[test]
fn compose_has_the_five_services() {
    let compose = compose();
    let names: BTreeSet<&str> = services(&compose).keys().map(String::as_str).collect();
    for (name, _, _) in PUBLISHED {
        assert!(
            names.contains(name),
            "service {name} missing; services: {names:?}"
        );
    }
}

#[test]
fn published_ports_are_loopback_only_at_the_design_defaults() {
    let compose = compose();
    let services = services(&compose);
    let mut published = BTreeMap::new();
    for (name, service) in services {
        for port in service
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let spec = port.as_str().unwrap_or_else(|| {
                panic!("{name}: write ports as \"127.0.0.1:HOST:CONTAINER\", not {port}")
            });
            let (resolved, vars) = interpolate(spec).unwrap_or_else(|e| panic!("{name}: {e}"));
            let resolved = resolved.trim_end_matches("/tcp");
            let parts: Vec<&str> = resolved.split(':').collect();
            assert_eq!(
                parts.len(),
                3,
                "{name}: port {spec:?} must name the host address (127.0.0.1:HOST:CONTAINER)"
            );
            assert_eq!(
                parts[0], "127.0.0.1",
                "{name}: port {spec:?} is published beyond loopback"
            );
            let host: u16 = parts[1]
                .parse()
                .unwrap_or_else(|_| panic!("{name}: host port in {spec:?}"));
            let container: u16 = parts[2]
                .parse()
                .unwrap_or_else(|_| panic!("{name}: container port in {spec:?}"));
            published.insert(name.clone(), (host, container, vars));
        }
    }
    for (name, port, var) in PUBLISHED {
        let (host, container, vars) = published
            .remove(name)
            .unwrap_or_else(|| panic!("{name} does not publish port {port}"));
        assert_eq!(
            (host, container),
            (port, port),
            "{name}: DESIGN.md's port is {port}"
        );
        assert!(
            vars.is_empty() || vars == [var],
            "{name}: the host port's variable is {var} (as in deploy/local.sh), not {vars:?}"
        );
    }
    assert!(
        published.is_empty(),
        "ports published beyond DESIGN.md's five: {published:?}"
    );
}

#[test]
fn every_service_has_a_healthcheck_and_waits_for_healthy_dependencies() {
    let compose = compose();
    let services = services(&compose);
    for (name, service) in services {
        assert!(
            healthcheck_command(service).is_some(),
            "{name} has no healthcheck (test: [\"CMD\", ...])"
        );
        let Some(depends_on) = service.get("depends_on") else {
            continue;
        };
        let depends_on = depends_on.as_object().unwrap_or_else(|| {
            panic!("{name}: depends_on must be a mapping with condition: service_healthy")
        });
        for (dependency, how) in depends_on {
            assert_eq!(
                how.get("condition").and_then(Value::as_str),
                Some("service_healthy"),
                "{name} must wait for {dependency} to be healthy"
            );
            let target = services
                .get(dependency)
                .unwrap_or_else(|| panic!("{name} depends on unknown service {dependency}"));
            assert!(
                healthcheck_command(target).is_some(),
                "{name} waits for {dependency}, which has no healthcheck"
            );
        }
    }
}

#[test]
fn mounted_files_and_named_volumes_exist() {
    let root = repo_root();
    let compose = compose();
    let declared: BTreeSet<&str> = compose
        .get("volumes")
        .and_then(Value::as_object)
        .map(|v| v.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for (name, service) in services(&compose) {
        for volume in service
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let spec = volume.as_str().unwrap_or_else(|| {
                panic!("{name}: write volumes as SOURCE:TARGET[:ro], not {volume}")
            });
            let source = spec.split(':').next().unwrap_or_default();
            if source.starts_with("./") {
                assert!(
                    source.starts_with("./deploy/") || source == "./schemas",
                    "{name}: bind mounts come from ./deploy (or are ./schemas), not {source}"
                );
                assert!(
                    root.join(source).exists(),
                    "{name}: {source} does not exist"
                );
                assert!(spec.ends_with(":ro"), "{name}: mount {source} read-only");
            } else {
                assert!(
                    !source.starts_with('/') && !source.starts_with('~'),
                    "{name}: {source} depends on the host's layout"
                );
                assert!(
                    declared.contains(source),
                    "{name}: volume {source} is not declared"
                );
            }
        }
    }
}

/// deploy/Dockerfile as stages: name -> the instructions after its FROM line
/// (continuation lines joined).
fn dockerfile_stages() -> BTreeMap<String, Vec<String>> {
    let text = read(&repo_root().join("deploy/Dockerfile"));
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(continued) = trimmed.strip_suffix('\\') {
            current.push_str(continued);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            instructions.push(std::mem::take(&mut current));
        }
    }
    let mut stages: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stage = None;
    for instruction in instructions {
        let words: Vec<&str> = instruction.split_whitespace().collect();
        if words
            .first()
            .is_some_and(|w| w.eq_ignore_ascii_case("FROM"))
        {
            let name = match words.as_slice() {
                [_, _, as_, name] if as_.eq_ignore_ascii_case("AS") => (*name).to_owned(),
                _ => panic!("every stage is named (FROM image AS name): {instruction}"),
            };
            assert!(
                stages.insert(name.clone(), Vec::new()).is_none(),
                "stage {name} twice"
            );
            stage = Some(name);
        } else if let Some(stage) = &stage {
            stages
                .get_mut(stage)
                .expect("stage was inserted")
                .push(instruction);
        }
    }
    stages
}

/// The instructions of a stage starting with `keyword`, without it.
fn instructions<'a>(stage: &'a [String], keyword: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter_map(|i| {
            let (first, rest) = i.split_once(char::is_whitespace)?;
            first.eq_ignore_ascii_case(keyword).then_some(rest.trim())
        })
        .collect()
}

/// The binary a runtime stage copies from the builder.
fn copied_binary(stage_name: &str, stage: &[String]) -> String {
    let copies: Vec<&str> = instructions(stage, "COPY")
        .into_iter()
        .filter(|c| c.starts_with("--from=builder"))
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "stage {stage_name} copies exactly one binary: {copies:?}"
    );
    let source = copies[0]
        .split_whitespace()
        .nth(1)
        .expect("COPY has a source");
    source.rsplit('/').next().expect("a file name").to_owned()
}

/// `[[bin]]` names of the workspace's crates, with the crate directory of each.
fn workspace_binaries() -> BTreeMap<String, String> {
    let root = repo_root();
    let manifest = read(&root.join("Cargo.toml"));
    let members = manifest
        .split_once("members")
        .and_then(|(_, rest)| rest.split_once('['))
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("Cargo.toml lists the workspace members");
    let mut binaries = BTreeMap::new();
    for member in members
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
    {
        let mut in_bin = false;
        for line in read(&root.join(member).join("Cargo.toml")).lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_bin = line == "[[bin]]";
            } else if in_bin {
                if let Some(value) = line.strip_prefix("name").map(str::trim_start) {
                    if let Some(value) = value.strip_prefix('=') {
                        binaries
                            .insert(value.trim().trim_matches('"').to_owned(), member.to_owned());
                    }
                }
            }
        }
    }
    binaries
}

#[test]
fn builds_use_dockerfile_stages_that_copy_our_binaries() {
    let root = repo_root();
    let stages = dockerfile_stages();
    let binaries = workspace_binaries();
    let compose = compose();
    let services = services(&compose);
    for (name, target, krate) in OUR_SERVICES {
        let service = &services[name];
        let build = service
            .get("build")
            .unwrap_or_else(|| panic!("{name} is built from deploy/Dockerfile"));
        let context = root.join(build["context"].as_str().expect("build context"));
        assert!(
            context.is_dir(),
            "{name}: build context {} is missing",
            context.display()
        );
        let dockerfile = context.join(build["dockerfile"].as_str().expect("build dockerfile"));
        assert!(
            dockerfile.is_file(),
            "{name}: {} is missing",
            dockerfile.display()
        );
        assert_eq!(
            dockerfile.canonicalize().unwrap(),
            root.join("deploy/Dockerfile").canonicalize().unwrap()
        );
        assert_eq!(
            build["target"].as_str(),
            Some(target),
            "{name}: build target"
        );
        let stage = stages.get(target).unwrap_or_else(|| {
            panic!(
                "deploy/Dockerfile has no stage {target}: {:?}",
                stages.keys()
            )
        });
        let binary = copied_binary(target, stage);
        assert_eq!(
            binaries.get(&binary).map(String::as_str),
            Some(krate),
            "stage {target} copies {binary}, which is not a [[bin]] of {krate}; binaries: {binaries:?}"
        );
        let path = format!("/usr/local/bin/{binary}");
        let entrypoint = instructions(stage, "ENTRYPOINT");
        assert_eq!(
            entrypoint,
            [format!("[\"{path}\"]")],
            "stage {target}: ENTRYPOINT"
        );
        let healthcheck = instructions(stage, "HEALTHCHECK");
        assert!(
            healthcheck.len() == 1
                && healthcheck[0].ends_with(&format!("CMD [\"{path}\", \"healthcheck\"]")),
            "stage {target}: HEALTHCHECK runs `{binary} healthcheck`: {healthcheck:?}"
        );
        assert_eq!(
            healthcheck_command(service),
            Some(vec![path.clone(), "healthcheck".to_owned()]),
            "{name}: the compose healthcheck runs `{binary} healthcheck`"
        );
    }
}

#[test]
fn runtime_images_run_unprivileged_with_the_schemas_they_read() {
    let stages = dockerfile_stages();
    let dockerfile = read(&repo_root().join("deploy/Dockerfile"));
    let runtime = stages.get("runtime").expect("a shared runtime stage");
    assert_eq!(instructions(runtime, "USER"), ["10001:10001"]);
    for (_, target, krate) in OUR_SERVICES {
        assert!(
            dockerfile
                .lines()
                .any(|l| l.trim_end() == format!("FROM runtime AS {target}")),
            "stage {target} builds on runtime"
        );
        let stage = &stages[target];
        let reads_schemas = accepted_env(krate).contains("EYE_SCHEMAS_DIR");
        assert_eq!(
            instructions(stage, "COPY").contains(&"schemas/ /etc/eye/schemas/"),
            reads_schemas,
            "stage {target}: schemas/ in /etc/eye/schemas exactly when {krate} reads EYE_SCHEMAS_DIR"
        );
        assert_eq!(
            instructions(stage, "ENV").contains(&"EYE_SCHEMAS_DIR=/etc/eye/schemas"),
            reads_schemas,
            "stage {target}: EYE_SCHEMAS_DIR=/etc/eye/schemas"
        );
    }
}

/// The names in `env = "NAME"` of clap attributes in the Rust files under `dir`.
fn clap_env_names(dir: &Path, names: &mut BTreeSet<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            clap_env_names(&path, names);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = read(&path);
            let mut rest = text.as_str();
            while let Some(at) = rest.find("env") {
                let before = rest[..at].chars().next_back();
                let after = rest[at + 3..].trim_start();
                rest = &rest[at + 3..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let Some(value) = after.strip_prefix('=').map(str::trim_start) else {
                    continue;
                };
                let Some(value) = value.strip_prefix('"') else {
                    continue;
                };
                if let Some(end) = value.find('"') {
                    let name = &value[..end];
                    if !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    {
                        names.insert(name.to_owned());
                    }
                }
            }
        }
    }
}

/// Environment variables the binary of crate `krate` reads: its clap options'
/// `env` names in its own sources and in the workspace crates it depends on at
/// run time (the shared option groups live in server-kit), plus [`NON_CLAP_ENV`].
fn accepted_env(krate: &str) -> BTreeSet<String> {
    let root = repo_root();
    let mut names: BTreeSet<String> = NON_CLAP_ENV.iter().map(|s| (*s).to_owned()).collect();
    clap_env_names(&root.join(krate).join("src"), &mut names);
    let workspace = read(&root.join("Cargo.toml"));
    // Only the [dependencies] section: dev-dependencies are not in the binary.
    let manifest = read(&root.join(krate).join("Cargo.toml"));
    let mut section = "";
    let runtime_dependencies: Vec<&str> = manifest
        .lines()
        .map(str::trim)
        .filter(|l| {
            if l.starts_with('[') {
                section = l;
            }
            section == "[dependencies]" && !l.starts_with('[')
        })
        .collect();
    for line in workspace.lines() {
        // `eye-server-kit = { path = "server-kit" }`
        let Some((dependency, spec)) = line.split_once('=') else {
            continue;
        };
        let Some(path) = spec
            .split_once("path = \"")
            .and_then(|(_, p)| p.split_once('"'))
        else {
            continue;
        };
        let dependency = dependency.trim();
        let uses = runtime_dependencies.iter().any(|l| {
            l.starts_with(&format!("{dependency} ")) || l.starts_with(&format!("{dependency}="))
        });
        if uses {
            clap_env_names(&root.join(path.0).join("src"), &mut names);
        }
    }
    names
}

#[test]
fn our_services_get_only_variables_their_binaries_read() {
    let compose = compose();
    let services = services(&compose);
    let stages = dockerfile_stages();
    for (name, target, krate) in OUR_SERVICES {
        let accepted = accepted_env(krate);
        assert!(
            accepted.len() > NON_CLAP_ENV.len(),
            "no clap env names found for {krate}"
        );
        for variable in environment(&services[name]).keys() {
            assert!(
                accepted.contains(variable),
                "{name}: {variable} is not read by the {krate} binary; it reads {accepted:?}"
            );
        }
        for env in instructions(&stages[target], "ENV")
            .into_iter()
            .chain(instructions(&stages["runtime"], "ENV"))
        {
            let variable = env.split_once('=').map_or(env, |(n, _)| n);
            assert!(
                accepted.contains(variable),
                "deploy/Dockerfile stage {target}: {krate} does not read {variable}"
            );
        }
    }
}

/// The gateway and the consumer both create or update the streams at
/// start-up: different stream settings would undo each other.
#[test]
fn gateway_and_consumer_get_the_same_stream_settings() {
    let compose = compose();
    let services = services(&compose);
    let streams = |name: &str| -> BTreeMap<String, String> {
        environment(&services[name])
            .into_iter()
            .filter(|(variable, _)| variable.starts_with("EYE_STREAM_"))
            .collect()
    };
    let gateway = streams("gateway");
    assert!(
        gateway.contains_key("EYE_STREAM_MAX_BYTES"),
        "the byte limit can be set from the shell: {gateway:?}"
    );
    assert_eq!(gateway, streams("consumer"));
}

#[test]
fn our_services_listen_on_their_published_port_and_reach_the_servers_by_name() {
    let compose = compose();
    let services = services(&compose);
    let expect = [
        ("gateway", "EYE_GATEWAY_LISTEN", "0.0.0.0:8080"),
        ("query", "EYE_QUERY_LISTEN", "0.0.0.0:8081"),
        ("consumer", "EYE_CONSUMER_LISTEN", "0.0.0.0:8082"),
    ];
    for (name, variable, value) in expect {
        let env = environment(&services[name]);
        assert_eq!(
            env.get(variable).map(String::as_str),
            Some(value),
            "{name}: {variable}"
        );
        if let Some(url) = env.get("EYE_NATS_URL") {
            assert_eq!(url, "nats://nats:4222", "{name}: EYE_NATS_URL");
        }
        if let Some(url) = env.get("EYE_CLICKHOUSE_URL") {
            assert_eq!(url, "http://clickhouse:8123", "{name}: EYE_CLICKHOUSE_URL");
        }
    }
    let query = environment(&services["query"]);
    assert_eq!(
        query.get("EYE_CLICKHOUSE_USER").map(String::as_str),
        Some("eye_reader")
    );
    // The reader's password is one value shared by ClickHouse and the query service.
    let clickhouse = environment(&services["clickhouse"]);
    assert_eq!(
        query.get("EYE_CLICKHOUSE_PASSWORD"),
        clickhouse.get("EYE_CLICKHOUSE_READER_PASSWORD"),
        "query's EYE_CLICKHOUSE_PASSWORD and clickhouse's EYE_CLICKHOUSE_READER_PASSWORD differ"
    );
    for (name, service) in services {
        assert_eq!(
            service.get("restart").and_then(Value::as_str),
            Some("unless-stopped"),
            "{name}: restart"
        );
    }
}

#[test]
fn services_that_read_a_clients_file_get_one_mounted() {
    let compose = compose();
    let services = services(&compose);
    for (name, _, krate) in OUR_SERVICES {
        if !accepted_env(krate).contains("EYE_CLIENTS_FILE") {
            continue;
        }
        let service = &services[name];
        let file = environment(service)
            .get("EYE_CLIENTS_FILE")
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {krate} needs EYE_CLIENTS_FILE (its default is relative to the repository)"));
        let mounted = service
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|v| v.starts_with("./deploy/") && v.split(':').nth(1) == Some(file.as_str()));
        assert!(
            mounted,
            "{name}: EYE_CLIENTS_FILE={file} is not a file mounted from ./deploy"
        );
    }
}

#[test]
fn local_sh_uses_the_same_ports_as_the_compose_file() {
    let script = read(&repo_root().join("deploy/local.sh"));
    for (name, port, variable) in PUBLISHED {
        assert!(
            script.contains(&format!("\"{variable} {port}\"")),
            "deploy/local.sh: {variable} (the {name} port) defaults to {port}"
        );
    }
}

fn assert_executable(relative: &str) {
    let path = repo_root().join(relative);
    let mode = fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
        .permissions()
        .mode();
    assert!(
        mode & 0o100 != 0,
        "{relative} is not executable (mode {mode:o})"
    );
}

fn assert_bash_syntax(relative: &str) {
    let output = Command::new("bash")
        .arg("-n")
        .arg(repo_root().join(relative))
        .output()
        .expect("running bash -n");
    assert!(
        output.status.success(),
        "bash -n {relative}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn scripts_are_executable_bash_and_ci_runs_every_test() {
    for script in ["deploy/local.sh", ".ci/run"] {
        assert_executable(script);
        assert_bash_syntax(script);
    }
    let ci = read(&repo_root().join(".ci/run"));
    assert!(
        ci.lines()
            .map(str::trim)
            .any(|l| !l.starts_with('#') && l.ends_with("./deploy/local.sh test")),
        ".ci/run must run ./deploy/local.sh test:\n{ci}"
    );
}

#[test]
fn local_sh_prints_its_usage() {
    let output = Command::new(repo_root().join("deploy/local.sh"))
        .arg("help")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("running deploy/local.sh help");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    for word in ["up", "test", "EYE_HOME"] {
        assert!(stdout.contains(word), "usage lacks {word}: {stdout}");
    }
}

/// The users deploy/nats/auth.conf defines, each with the variable its password
/// is read from (`user: NAME` followed by `password: $VARIABLE`).
fn nats_users() -> BTreeMap<String, String> {
    let text = read(&repo_root().join("deploy/nats/auth.conf"));
    let mut users = BTreeMap::new();
    let mut user = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("user:") {
            user = Some(name.trim().to_owned());
        } else if let Some(variable) = line.strip_prefix("password:") {
            let name = user.take().expect("a password follows its user");
            let variable = variable
                .trim()
                .strip_prefix('$')
                .unwrap_or_else(|| panic!("auth.conf: {name}'s password is not a $VARIABLE"));
            users.insert(name, variable.to_owned());
        }
    }
    users
}

#[test]
fn both_nats_configs_include_the_users_and_compose_mounts_them() {
    for config in ["deploy/nats/local.conf", "deploy/nats/nats.conf"] {
        let text = read(&repo_root().join(config));
        assert!(
            text.lines().any(|l| l.trim() == "include ./auth.conf"),
            "{config} must include ./auth.conf"
        );
    }
    let users = nats_users();
    for user in ["eye_gateway", "eye_consumer", "demo"] {
        assert!(
            users.contains_key(user),
            "auth.conf lacks user {user}: {users:?}"
        );
    }
    let compose = compose();
    let nats = &services(&compose)["nats"];
    let volumes: Vec<&str> = nats["volumes"]
        .as_array()
        .expect("nats has volumes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(volumes.contains(&"./deploy/nats/nats.conf:/etc/nats/eye.conf:ro"));
    assert!(
        volumes.contains(&"./deploy/nats/auth.conf:/etc/nats/auth.conf:ro"),
        "auth.conf must sit beside /etc/nats/eye.conf: {volumes:?}"
    );
    // nats-server refuses to start when a $VARIABLE of the file is missing.
    let env = environment(nats);
    for variable in users.values() {
        assert!(env.contains_key(variable), "nats service lacks {variable}");
    }
}

#[test]
fn services_that_use_nats_log_in_with_their_users_password() {
    let users = nats_users();
    let compose = compose();
    let services = services(&compose);
    let nats_env = environment(&services["nats"]);
    let mut logged_in = BTreeSet::new();
    for (name, _, _) in OUR_SERVICES {
        let env = environment(&services[name]);
        if !env.contains_key("EYE_NATS_URL") {
            continue;
        }
        let user = env
            .get("EYE_NATS_USER")
            .unwrap_or_else(|| panic!("{name} connects to NATS without EYE_NATS_USER"));
        let variable = users
            .get(user)
            .unwrap_or_else(|| panic!("{name}: NATS user {user} is not in auth.conf"));
        assert_eq!(
            env.get("EYE_NATS_PASSWORD"),
            nats_env.get(variable),
            "{name}: EYE_NATS_PASSWORD must be the nats service's {variable}"
        );
        logged_in.insert(user.clone());
    }
    assert_eq!(
        logged_in,
        BTreeSet::from(["eye_consumer".to_owned(), "eye_gateway".to_owned()]),
        "the gateway and the consumer each have their own NATS user"
    );
    // deploy/local.sh gives the server every password and each service its user.
    let script = read(&repo_root().join("deploy/local.sh"));
    for variable in users.values() {
        assert!(
            script.contains(&format!("{variable}=\"$")),
            "deploy/local.sh does not pass {variable} to nats-server"
        );
    }
    for user in ["eye_gateway", "eye_consumer"] {
        assert!(
            script.contains(&format!("=\"{user}\"")),
            "deploy/local.sh does not name NATS user {user}"
        );
    }
    assert_eq!(
        script.matches("EYE_NATS_USER=").count(),
        2,
        "deploy/local.sh gives the consumer and the gateway EYE_NATS_USER"
    );
}
