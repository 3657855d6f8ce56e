//! Servers a test owns: start-up time, crash and restart with the data kept,
//! and no process left behind, whether the handle is dropped or the whole
//! test process dies (panic or SIGKILL).

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use eye_testkit::{ClickHouseServer, NatsServer};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Whether `pid` has exited (gone, or a zombie nobody reaped yet).
fn is_dead(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wait_until_dead(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if is_dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    is_dead(pid)
}

#[tokio::test]
async fn nats_keeps_its_streams_across_a_crash_and_dies_on_drop() -> TestResult {
    let mut nats = NatsServer::start()?;
    eprintln!("nats-server ready in {:?}", nats.started_in());
    let first_pid = nats.pid().ok_or("no pid")?;
    let store = nats.store_dir().to_path_buf();

    let name = eye_testkit::unique_name("durable");
    let js = jetstream::new(nats.connect().await);
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![format!("{name}.>")],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    js.publish(format!("{name}.a"), "kept".into())
        .await?
        .await?;

    nats.kill()?;
    assert!(is_dead(first_pid), "kill() reaps the process");
    assert_eq!(nats.pid(), None);
    let restarted_in = nats.start_again()?;
    eprintln!("nats-server restarted (same port and store) in {restarted_in:?}");
    assert_ne!(nats.pid(), Some(first_pid));

    let js = jetstream::new(nats.connect().await);
    let mut stream = js.get_stream(&name).await?;
    assert_eq!(
        stream.info().await?.state.messages,
        1,
        "the acknowledged message survived SIGKILL"
    );

    nats.stop()?;
    nats.start_again()?;
    let pid = nats.pid().ok_or("no pid")?;
    drop(nats);
    assert!(is_dead(pid), "drop kills and reaps nats-server {pid}");
    assert!(!store.exists(), "drop removes {}", store.display());
    Ok(())
}

#[tokio::test]
async fn clickhouse_keeps_its_data_across_a_crash_and_dies_on_drop() -> TestResult {
    let mut server = ClickHouseServer::start()?;
    eprintln!("clickhouse-server ready in {:?}", server.started_in());
    let first_pid = server.pid().ok_or("no pid")?;
    let data_dir = server.data_dir().to_path_buf();

    let database = server.create_database("durable").await;
    let client = server.client(&database);
    client
        .query("CREATE TABLE t (x UInt32) ENGINE = MergeTree ORDER BY x")
        .execute()
        .await?;
    client.query("INSERT INTO t VALUES (7)").execute().await?;

    server.kill()?;
    assert!(is_dead(first_pid), "kill() reaps the process");
    let restarted_in = server.start_again()?;
    eprintln!("clickhouse-server restarted (same ports and data) in {restarted_in:?}");
    // A fresh client: the old one's pooled connection died with the server.
    let x: u32 = server
        .client(&database)
        .query("SELECT x FROM t")
        .fetch_one()
        .await?;
    assert_eq!(x, 7);

    let pid = server.pid().ok_or("no pid")?;
    drop(server);
    assert!(is_dead(pid), "drop kills and reaps clickhouse-server {pid}");
    assert!(!data_dir.exists(), "drop removes {}", data_dir.display());
    Ok(())
}

/// The helper process of these tests (`src/bin/eye-testkit-child.rs`) with `args`.
fn child(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eye-testkit-child"));
    command.args(args);
    command
}

#[test]
fn a_failed_start_quotes_the_command_and_log() {
    // `/bin/false` as the server: it exits at once, like a server that
    // rejects its configuration.
    let output = child(&["broken-start"])
        .env("EYE_NATS_SERVER_BIN", "/bin/false")
        .output()
        .expect("run the child process");
    assert!(output.status.success(), "{output:?}");
    let output = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.contains("nats-server exited during start-up"),
        "{output}"
    );
    assert!(
        output.contains("command: /bin/false --config ") && output.contains(" -js -a 127.0.0.1"),
        "{output}"
    );
}

/// Runs the helper process that starts the shared servers and then dies
/// `how` (`panic` or `sigkill`); returns it and the server pids.
fn child_with_servers(how: &str) -> (std::process::Child, [u32; 2]) {
    let mut child = child(&["shared-then-die", how])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the child process");
    let stdout = child.stdout.take().expect("piped stdout");
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split_once("PIDS ").map(|(_, pids)| pids.to_owned()))
        .expect("the child prints the server pids");
    let pids: Vec<u32> = line
        .split_whitespace()
        .map(|pid| pid.parse().expect("a pid"))
        .collect();
    let pids: [u32; 2] = pids.try_into().expect("two pids");
    for pid in pids {
        assert!(!is_dead(pid), "server {pid} runs while the child lives");
    }
    (child, pids)
}

/// Server directories whose owner file names `pid`.
fn directories_owned_by(pid: u32) -> Vec<String> {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            fs::read_to_string(entry.path().join("owner")).is_ok_and(|owner| {
                owner.split_whitespace().next() == Some(pid.to_string().as_str())
            })
        })
        .map(|entry| entry.path().display().to_string())
        .collect()
}

/// One test, sequential on purpose: each child process sweeps the directories
/// of dead test processes when it starts, which is checked here too.
#[test]
fn no_orphans_when_the_test_process_dies() {
    // SIGKILL: nothing of the test process runs, the kernel kills the servers.
    let (mut killed, pids) = child_with_servers("sigkill");
    let killed_pid = killed.id();
    killed.kill().expect("SIGKILL the child test process");
    killed.wait().expect("reap it");
    for pid in pids {
        assert!(
            wait_until_dead(pid, Duration::from_secs(10)),
            "server {pid} outlived its SIGKILLed test process"
        );
    }
    // Its directories stay (nobody dropped them) until the next test process
    // sweeps; a concurrent test process may already have.
    eprintln!(
        "left behind by the killed process: {:?}",
        directories_owned_by(killed_pid)
    );

    // A panic: the process exits "normally" with statics undropped.
    let (mut panicked, pids) = child_with_servers("panic");
    let status = panicked.wait().expect("wait for the child");
    assert!(
        !status.success(),
        "the helper process panicked, as it should"
    );
    for pid in pids {
        assert!(
            wait_until_dead(pid, Duration::from_secs(10)),
            "server {pid} outlived its panicking test process"
        );
    }
    // The second child swept the first one's directories when it started.
    assert_eq!(
        directories_owned_by(killed_pid),
        Vec::<String>::new(),
        "stale directories are swept"
    );
}
