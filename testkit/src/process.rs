//! Running a server process that never outlives the test process.
//!
//! Three layers, because tests end in three ways:
//! - a server owned by a test is killed (SIGKILL) and reaped when dropped;
//! - the shared servers live in statics, which are never dropped, and a test
//!   process may be killed with SIGKILL: every server is started with
//!   `prctl(PR_SET_PDEATHSIG, SIGKILL)`, so the kernel kills it when its parent
//!   goes away;
//! - the "parent" of PDEATHSIG is the *thread* that forked, and the test
//!   harness ends each test's thread when the test ends, which would kill a
//!   shared server under the next test. So every server is forked by one
//!   dedicated spawner thread that lives as long as the process.
//!
//! Only Linux has PDEATHSIG; elsewhere the first layer is all there is.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::HarnessError;

/// Lines of each log file quoted in an error.
const LOG_TAIL_LINES: usize = 40;
/// Bytes read from the end of a log file to find those lines.
const LOG_TAIL_BYTES: u64 = 16 * 1024;
/// Pause between readiness checks.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// One server process: how to start it, where its logs go, and the running
/// child if any. Killed and reaped on drop.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    name: &'static str,
    command_line: Vec<String>,
    program: PathBuf,
    args: Vec<String>,
    /// The process's stdout and stderr.
    console_log: PathBuf,
    /// Log files the server writes itself, quoted on failure too.
    other_logs: Vec<PathBuf>,
    /// Environment variables added to the inherited environment.
    envs: Vec<(String, String)>,
    child: Option<Child>,
}

impl ServerProcess {
    pub(crate) fn new(
        name: &'static str,
        program: PathBuf,
        args: Vec<String>,
        console_log: PathBuf,
        other_logs: Vec<PathBuf>,
    ) -> Self {
        let command_line = std::iter::once(program.display().to_string())
            .chain(args.iter().cloned())
            .collect();
        ServerProcess {
            name,
            command_line,
            program,
            args,
            console_log,
            other_logs,
            envs: Vec::new(),
            child: None,
        }
    }

    /// Environment variables the process gets on top of this process's own.
    pub(crate) fn set_envs(&mut self, envs: Vec<(String, String)>) {
        self.envs = envs;
    }

    /// Replaces the arguments (for a retry with other ports).
    pub(crate) fn set_args(&mut self, args: Vec<String>) {
        self.command_line = std::iter::once(self.program.display().to_string())
            .chain(args.iter().cloned())
            .collect();
        self.args = args;
    }

    /// Starts the process; its output is appended to the console log.
    pub(crate) fn spawn(&mut self) -> Result<(), HarnessError> {
        if let Some(pid) = self.running_pid() {
            return Err(HarnessError::AlreadyRunning {
                server: self.name,
                pid,
            });
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.console_log)
            .map_err(|e| HarnessError::io(format!("opening {}", self.console_log.display()), e))?;
        let log_too = log.try_clone().map_err(|e| {
            HarnessError::io(format!("duplicating {}", self.console_log.display()), e)
        })?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_too);
        if let Some(dir) = self.console_log.parent() {
            command.current_dir(dir);
        }
        let child = spawn_tied_to_this_process(command).map_err(|e| {
            HarnessError::io(format!("starting {}", self.command_line.join(" ")), e)
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// The pid of the last started process, until it is killed or stopped.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The pid, if the process has not exited.
    pub(crate) fn running_pid(&mut self) -> Option<u32> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(None) => Some(child.id()),
            _ => None,
        }
    }

    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    /// SIGKILL (a crash, as far as the server knows) and reap.
    pub(crate) fn kill(&mut self) -> Result<(), HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // Killing a process that already exited (but is not reaped) is fine.
        child.kill().map_err(|e| {
            HarnessError::io(format!("killing {} (pid {})", self.name, child.id()), e)
        })?;
        child.wait().map_err(|e| {
            HarnessError::io(format!("reaping {} (pid {})", self.name, child.id()), e)
        })?;
        Ok(())
    }

    /// SIGTERM, then wait up to `grace` for a clean exit, then SIGKILL.
    pub(crate) fn stop(&mut self, grace: Duration) -> Result<(), HarnessError> {
        let Some(pid) = self.running_pid() else {
            return self.kill();
        };
        // The child is not reaped yet, so `pid` cannot have been reused.
        send_signal(pid, libc::SIGTERM).map_err(|e| {
            HarnessError::io(format!("sending SIGTERM to {} (pid {pid})", self.name), e)
        })?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                break;
            }
            thread::sleep(POLL_INTERVAL);
        }
        self.kill()
    }

    /// Polls `check` until it passes, the process exits, or `timeout` passes.
    /// Returns how long it took.
    pub(crate) fn wait_ready(
        &mut self,
        timeout: Duration,
        mut check: impl FnMut() -> Result<(), String>,
    ) -> Result<Duration, HarnessError> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exit_status() {
                return Err(HarnessError::Exited {
                    server: self.name,
                    status,
                    log_tail: self.log_tail(),
                });
            }
            match check() {
                // A server that answered but is exiting (e.g. it lost a port
                // race after opening the first port) is not ready.
                Ok(()) => match self.exit_status() {
                    None => return Ok(started.elapsed()),
                    Some(status) => {
                        return Err(HarnessError::Exited {
                            server: self.name,
                            status,
                            log_tail: self.log_tail(),
                        })
                    }
                },
                Err(last_check) if started.elapsed() >= timeout => {
                    return Err(HarnessError::StartTimeout {
                        server: self.name,
                        waited: started.elapsed(),
                        last_check,
                        log_tail: self.log_tail(),
                    });
                }
                Err(_) => thread::sleep(POLL_INTERVAL),
            }
        }
    }

    /// The command line and the last lines of every log of the server.
    pub(crate) fn log_tail(&self) -> String {
        let mut out = format!("command: {}", self.command_line.join(" "));
        for path in std::iter::once(&self.console_log).chain(&self.other_logs) {
            match tail(path, LOG_TAIL_LINES) {
                Ok(text) if text.trim().is_empty() => {}
                Ok(text) => out.push_str(&format!(
                    "\n--- last lines of {} ---\n{}",
                    path.display(),
                    text.trim_end()
                )),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    out.push_str(&format!("\n--- {} unreadable: {error} ---", path.display()))
                }
            }
        }
        out
    }

    /// Forgets the logs of earlier attempts (before a retry on new ports).
    pub(crate) fn clear_logs(&self) {
        for path in std::iter::once(&self.console_log).chain(&self.other_logs) {
            if let Err(error) = fs::remove_file(path) {
                if error.kind() != io::ErrorKind::NotFound {
                    tracing::debug!("could not remove {}: {error}", path.display());
                }
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Err(error) = self.kill() {
            // Not a panic: a drop during unwinding must not abort the process.
            eprintln!("eye-testkit: {error}");
        }
    }
}

fn tail(path: &Path, lines: usize) -> io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    Ok(all[all.len().saturating_sub(lines)..].join("\n"))
}

/// A fork request for the spawner thread.
struct SpawnRequest {
    command: Command,
    reply: mpsc::Sender<io::Result<Child>>,
}

/// Spawns `command` from the process-lifetime spawner thread, with the child
/// set to die when this process dies.
fn spawn_tied_to_this_process(mut command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<io::Result<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("eye-testkit-spawner".to_owned())
            .spawn(move || {
                // The sender lives in a static, so this loop ends only with the
                // process, and with it every PDEATHSIG of its children fires.
                for SpawnRequest { mut command, reply } in incoming {
                    let spawned = command.spawn();
                    if let Err(mpsc::SendError(Ok(mut orphan))) = reply.send(spawned) {
                        // Nobody is waiting for it any more: do not leave it running.
                        let _ = orphan.kill();
                        let _ = orphan.wait();
                    }
                }
            })?;
        Ok(requests)
    });
    let spawner = spawner
        .as_ref()
        .map_err(|e| io::Error::new(e.kind(), format!("starting the spawner thread: {e}")))?;

    tie_to_this_process(&mut command);
    let (reply, answer) = mpsc::channel();
    spawner
        .send(SpawnRequest { command, reply })
        .map_err(|_| io::Error::other("the eye-testkit spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the eye-testkit spawner thread dropped the request"))?
}

/// Makes the kernel SIGKILL the child when the thread that forks it ends
/// (which, for the spawner thread, is when the process ends).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn tie_to_this_process(command: &mut Command) {
    use std::os::unix::process::CommandExt;

    let parent = std::process::id() as libc::pid_t;
    // SAFETY: `pre_exec` closures run in the forked child before `exec`, where
    // only async-signal-safe operations are allowed. This one calls `prctl`
    // and `getppid` (both async-signal-safe system calls), touches no lock,
    // and does not allocate: `from_raw_os_error` and `last_os_error` build an
    // `io::Error` without heap allocation.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // If the test process died between fork and prctl, the signal was
            // never armed; the child now belongs to init (or a subreaper).
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn tie_to_this_process(_command: &mut Command) {}

/// Sends `signal` to `pid`.
#[allow(unsafe_code)]
fn send_signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    // Callers pass the pid of a child they have not reaped, so it still names
    // that child (a pid is reused only after its zombie is reaped).
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_process_is_killed_and_reaped_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut process = ServerProcess::new(
            "sleep",
            PathBuf::from("/bin/sleep"),
            vec!["600".to_owned()],
            dir.path().join("console.log"),
            Vec::new(),
        );
        process.spawn().expect("spawn sleep");
        let pid = process.pid().expect("pid");
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(process);
        // Reaped, so no zombie either.
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still exists"
        );
    }

    #[test]
    fn stop_terminates_gracefully() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut process = ServerProcess::new(
            "sleep",
            PathBuf::from("/bin/sleep"),
            vec!["600".to_owned()],
            dir.path().join("console.log"),
            Vec::new(),
        );
        process.spawn().expect("spawn sleep");
        let started = Instant::now();
        process.stop(Duration::from_secs(10)).expect("stop");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "SIGTERM ends sleep at once, no SIGKILL needed"
        );
        assert_eq!(process.pid(), None);
    }
}
