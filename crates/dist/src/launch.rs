//! `--nproc-per-node N` on one machine, as `torchrun --standalone` does it,
//! but reachable from nowhere else: the ranks meet in a file store (a
//! fresh file next to the logs; no port at all) and Gloo listens on
//! loopback only. This process starts N copies of a program with
//! torchrun's variables, shows rank 0's output and writes each other
//! rank's to its own log, and stops them all when one fails; a rank whose
//! launcher dies is sent SIGTERM by the kernel (parent-death signal), so
//! no rank trains on as an orphan.

use super::world::STORE_FILE_VAR;
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What to start.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The program every rank runs (usually this binary).
    pub program: PathBuf,
    /// Its arguments (without `--nproc-per-node`).
    pub args: Vec<OsString>,
    /// Processes to start.
    pub nproc: usize,
    /// Where `rank<r>.log` of ranks 1.. go.
    pub log_dir: PathBuf,
    /// How long the store waits for the ranks to connect.
    pub timeout: Duration,
    /// Extra environment for every rank.
    pub env: Vec<(String, String)>,
}

/// A rank that failed, and what it said last.
fn failure(rank: usize, status: ExitStatus, log_dir: &Path) -> Error {
    let log = log_dir.join(format!("rank{rank}.log"));
    let tail = std::fs::read_to_string(&log)
        .map(|text| {
            let lines: Vec<&str> = text.lines().rev().take(12).collect();
            lines.into_iter().rev().collect::<Vec<_>>().join("\n    ")
        })
        .unwrap_or_default();
    let seen = if rank == 0 || tail.is_empty() {
        String::new()
    } else {
        format!("; its log {} ends:\n    {tail}", log.display())
    };
    Error::distributed(format!(
        "rank {rank} exited with {status}; stopped the other ranks{seen}"
    ))
}

/// Starts the ranks and waits for all of them; the first that fails stops
/// the rest (SIGTERM, then SIGKILL after five seconds) and is named in the error.
pub fn run(launch: &Launch) -> Result<()> {
    if launch.nproc == 0 {
        return Err(Error::distributed("--nproc-per-node must be at least 1"));
    }
    std::fs::create_dir_all(&launch.log_dir).map_err(|e| Error::io(&launch.log_dir, e))?;
    let store_file = StoreFile::fresh(&launch.log_dir)?;
    let outcome = run_ranks(launch, &store_file.0);
    drop(store_file);
    outcome
}

/// The rendezvous file of one launch, removed when the launch ends.
struct StoreFile(PathBuf);

impl StoreFile {
    /// A name no other launch uses (process id and time), not yet created:
    /// libtorch's FileStore creates it.
    fn fresh(dir: &Path) -> Result<StoreFile> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = dir.join(format!(".rendezvous-{}-{nanos}", std::process::id()));
        match path.exists() {
            true => Err(Error::distributed(format!(
                "{} already exists",
                path.display()
            ))),
            false => Ok(StoreFile(path)),
        }
    }
}

impl Drop for StoreFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts the ranks meeting at `store_file` and waits for them.
fn run_ranks(launch: &Launch, store_file: &Path) -> Result<()> {
    // One waiting thread per rank: exits arrive on the channel in the order
    // they happen, so the rank that failed first is the one named.
    let (exits, exited) = mpsc::channel();
    let mut pids = Vec::with_capacity(launch.nproc);
    for rank in 0..launch.nproc {
        let mut child = match spawn(launch, rank, store_file) {
            Ok(child) => child,
            Err(error) => {
                signal(&pids, libc::SIGKILL);
                return Err(error);
            }
        };
        pids.push(child.id());
        let exits = exits.clone();
        std::thread::spawn(move || {
            let status = child.wait();
            let _ = exits.send((rank, status));
        });
    }
    drop(exits);
    let mut running: Vec<Option<u32>> = pids.iter().map(|&pid| Some(pid)).collect();
    let mut first_failure = None;
    let mut deadline = None;
    while running.iter().any(Option::is_some) {
        let wait = deadline.map_or(Duration::from_secs(3600), |d: Instant| {
            d.saturating_duration_since(Instant::now())
        });
        match exited.recv_timeout(wait) {
            Ok((rank, status)) => {
                running[rank] = None;
                let status = status.map_err(|e| Error::io(&launch.program, e))?;
                if !status.success() && first_failure.is_none() {
                    first_failure = Some((rank, status));
                    signal(
                        &running.iter().flatten().copied().collect::<Vec<_>>(),
                        libc::SIGTERM,
                    );
                    deadline = Some(Instant::now() + Duration::from_secs(5));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                signal(
                    &running.iter().flatten().copied().collect::<Vec<_>>(),
                    libc::SIGKILL,
                );
                deadline = Some(Instant::now() + Duration::from_secs(3600));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    match first_failure {
        Some((rank, status)) => Err(failure(rank, status, &launch.log_dir)),
        None => Ok(()),
    }
}

/// Asks the kernel to send the child SIGTERM when this process dies (on
/// Linux; `PR_SET_PDEATHSIG`), and has it exit at once if this process is
/// already gone by the time it runs.
fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: getpid is async-signal-safe.
        #[allow(unsafe_code)]
        let launcher = unsafe { libc::getpid() };
        // SAFETY: between fork and exec the closure calls only
        // async-signal-safe functions (prctl, getppid, _exit) and allocates nothing.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != launcher {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
}

/// Sends `signal` to the ranks still running.
fn signal(pids: &[u32], signal: i32) {
    for &pid in pids {
        if let Ok(pid) = i32::try_from(pid) {
            // SAFETY: signalling our own child, which has not been reaped
            // (its waiting thread has not reported it).
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }
}

fn spawn(launch: &Launch, rank: usize, store_file: &Path) -> Result<Child> {
    let mut command = Command::new(&launch.program);
    command
        .args(&launch.args)
        .env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("WORLD_SIZE", launch.nproc.to_string())
        .env("LOCAL_WORLD_SIZE", launch.nproc.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env(STORE_FILE_VAR, store_file)
        .env_remove("MASTER_PORT")
        .env_remove("TORCHELASTIC_USE_AGENT_STORE")
        .envs(launch.env.iter().map(|(k, v)| (k, v)));
    die_with_parent(&mut command);
    if std::env::var_os("OMP_NUM_THREADS").is_none() && launch.nproc > 1 {
        // torchrun's default: N processes share the cores, one thread each.
        command.env("OMP_NUM_THREADS", "1");
    }
    if rank > 0 {
        let path = launch.log_dir.join(format!("rank{rank}.log"));
        let log = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let err = log.try_clone().map_err(|e| Error::io(&path, e))?;
        command.stdin(Stdio::null()).stdout(log).stderr(err);
    }
    command.spawn().map_err(|e| Error::io(&launch.program, e))
}
