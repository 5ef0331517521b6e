//! Runs a test as several ranks over Gloo on loopback, started the way
//! `--nproc-per-node` starts them: the test binary runs itself again,
//! filtered to the one test, with torchrun's variables set.

use selfsup_train::distributed::launch::{self, Launch};
use selfsup_train::distributed::{self, WorldEnv};
use std::time::Duration;

/// Runs `test` as `world` ranks; true in the parent, which then has nothing
/// more to do, and false in a rank, which goes on to the test's body.
pub fn as_ranks(test: &str, world: usize, env: &[(&str, &str)]) -> bool {
    if std::env::var_os("RANK").is_some() {
        return false;
    }
    let logs = tempfile::tempdir().unwrap();
    let launch = Launch {
        program: std::env::current_exe().unwrap(),
        args: [test, "--exact", "--nocapture", "--test-threads=1"]
            .map(Into::into)
            .to_vec(),
        nproc: world,
        log_dir: logs.path().into(),
        timeout: Duration::from_secs(60),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    if let Err(error) = launch::run(&launch) {
        panic!("{error}");
    }
    true
}

/// Joins the ranks' process group (a rank only).
pub fn join() -> std::sync::Arc<distributed::ProcessGroup> {
    let env = WorldEnv::from_env().unwrap().expect("launched as a rank");
    std::sync::Arc::clone(&distributed::init(&env, Duration::from_secs(30)).unwrap())
}
