//! Where a process learns its place in a run: the environment that
//! `torchrun`, SLURM's `srun`, a Kubernetes PyTorchJob or
//! `selfsup train --nproc-per-node` sets, read as PyTorch reads it.

use crate::error::{Error, Result};

/// The default rendezvous port, as PyTorch's.
pub const DEFAULT_PORT: u16 = 29500;

/// The variable that names a file store shared by ranks on one machine.
pub const STORE_FILE_VAR: &str = "SELFSUP_STORE_FILE";

/// One process's place in a multi-process run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldEnv {
    /// Global rank, 0-based.
    pub rank: usize,
    /// Number of processes in the run.
    pub world_size: usize,
    /// Rank on this node (picks the GPU).
    pub local_rank: usize,
    /// Host of the rendezvous store.
    pub master_addr: String,
    /// Its port.
    pub master_port: u16,
    /// The launcher serves the store (torchrun's agent, `--nproc-per-node`),
    /// so every rank connects as a client.
    pub agent_store: bool,
    /// Restart count of an elastic launcher; keys of earlier attempts are
    /// kept apart.
    pub attempt: u32,
    /// `SELFSUP_STORE_FILE`: the rendezvous store is this file, shared by
    /// ranks on one machine (`--nproc-per-node` sets it), instead of a TCP
    /// store at `master_addr:master_port`.
    pub store_file: Option<std::path::PathBuf>,
}

impl WorldEnv {
    /// Reads the process environment; `None` when it describes no
    /// multi-process run (no variables, or a world of one).
    pub fn from_env() -> Result<Option<WorldEnv>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`WorldEnv::from_env`] over any variable lookup (for tests).
    /// torchrun's and PyTorchJob's `RANK`/`WORLD_SIZE` win over SLURM's
    /// `SLURM_PROCID`/`SLURM_NTASKS`, as under `srun torchrun …`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<WorldEnv>> {
        let (rank, world_size, local_rank) = if var("RANK").is_some() || var("WORLD_SIZE").is_some()
        {
            place(&var, ["RANK", "WORLD_SIZE", "LOCAL_RANK"])?
        } else if var("SLURM_PROCID").is_some() && var("SLURM_NTASKS").is_some() {
            place(&var, ["SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"])?
        } else {
            return Ok(None);
        };
        if world_size <= 1 {
            return Ok(None);
        }
        if rank >= world_size {
            return Err(Error::distributed(format!(
                "rank {rank} is outside WORLD_SIZE {world_size}"
            )));
        }
        let master_addr = match var("MASTER_ADDR") {
            Some(addr) => addr,
            None => first_slurm_host(&var)?,
        };
        let master_port = match var("MASTER_PORT") {
            Some(_) => u16::try_from(number(&var, "MASTER_PORT")?)
                .map_err(|_| Error::distributed("MASTER_PORT is not a port (0-65535)"))?,
            None => DEFAULT_PORT,
        };
        let attempt = match var("TORCHELASTIC_RESTART_COUNT") {
            Some(_) => number(&var, "TORCHELASTIC_RESTART_COUNT")? as u32,
            None => 0,
        };
        Ok(Some(WorldEnv {
            rank,
            world_size,
            local_rank,
            master_addr,
            master_port,
            agent_store: var("TORCHELASTIC_USE_AGENT_STORE")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            attempt,
            store_file: var(STORE_FILE_VAR)
                .filter(|v| !v.is_empty())
                .map(Into::into),
        }))
    }
}

/// Rank, world size and local rank (0 when unset) from a launcher's three variables.
fn place(
    var: &impl Fn(&str) -> Option<String>,
    [rank, world, local]: [&str; 3],
) -> Result<(usize, usize, usize)> {
    let local_rank = var(local).map(|_| number(var, local)).transpose()?;
    Ok((
        number(var, rank)?,
        number(var, world)?,
        local_rank.unwrap_or(0),
    ))
}

fn number(var: &impl Fn(&str) -> Option<String>, name: &str) -> Result<usize> {
    let text = var(name).ok_or_else(|| Error::distributed(format!("{name} is not set")))?;
    text.trim()
        .parse()
        .map_err(|_| Error::distributed(format!("{name}={text:?} is not a non-negative integer")))
}

/// The first host of SLURM's node list: rank 0 runs there under `srun`.
fn first_slurm_host(var: &impl Fn(&str) -> Option<String>) -> Result<String> {
    let list = var("SLURM_JOB_NODELIST")
        .or_else(|| var("SLURM_NODELIST"))
        .ok_or_else(|| {
            Error::distributed("MASTER_ADDR is not set (nor SLURM_JOB_NODELIST to take it from)")
        })?;
    first_host(&list)
        .ok_or_else(|| Error::distributed(format!("cannot read SLURM's node list {list:?}")))
}

/// The first host of a compressed node list: `gpu[003-005,010],cpu1` → `gpu003`.
pub fn first_host(list: &str) -> Option<String> {
    let mut depth = 0;
    let end = list
        .char_indices()
        .find(|&(_, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            c == ',' && depth == 0
        })
        .map_or(list.len(), |(i, _)| i);
    let entry = list[..end].trim();
    let Some(open) = entry.find('[') else {
        return (!entry.is_empty()).then(|| entry.to_string());
    };
    let close = open + entry[open..].find(']')?;
    let first_range = entry[open + 1..close].split(',').next()?;
    let first = first_range.split('-').next()?;
    let rest = first_host(&entry[close + 1..]).unwrap_or_default();
    Some(format!("{}{first}{rest}", &entry[..open]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Option<WorldEnv>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WorldEnv::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn torchrun_variables_describe_the_world() {
        let world = env(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node7"),
            ("MASTER_PORT", "29400"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            world,
            WorldEnv {
                rank: 3,
                world_size: 8,
                local_rank: 1,
                master_addr: "node7".into(),
                master_port: 29400,
                agent_store: true,
                attempt: 2,
                store_file: None,
            }
        );
    }

    #[test]
    fn slurm_variables_take_the_first_host_and_the_default_port() {
        let world = env(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_NTASKS", "16"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_JOB_NODELIST", "gpu[003-005,010],login1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((world.rank, world.world_size, world.local_rank), (5, 16, 1));
        assert_eq!(
            (world.master_addr.as_str(), world.master_port),
            ("gpu003", DEFAULT_PORT)
        );
        assert!(!world.agent_store);
    }

    #[test]
    fn node_lists_expand_to_their_first_host() {
        assert_eq!(first_host("a1").as_deref(), Some("a1"));
        assert_eq!(first_host("a1,b2").as_deref(), Some("a1"));
        assert_eq!(
            first_host("rack[2-3]-n[07-09]").as_deref(),
            Some("rack2-n07")
        );
        assert_eq!(first_host("").as_deref(), None);
    }

    #[test]
    fn no_variables_or_one_process_is_no_world() {
        assert_eq!(env(&[]).unwrap(), None);
        assert_eq!(env(&[("RANK", "0"), ("WORLD_SIZE", "1")]).unwrap(), None);
    }

    #[test]
    fn bad_values_are_named() {
        let error = env(&[("RANK", "x"), ("WORLD_SIZE", "2")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("RANK=\"x\""), "{error}");
        let error = env(&[("RANK", "2"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("outside WORLD_SIZE 2"), "{error}");
        let error = env(&[("RANK", "0"), ("WORLD_SIZE", "2")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("MASTER_ADDR"), "{error}");
        let error = env(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "70000"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("MASTER_PORT"), "{error}");
    }
}
