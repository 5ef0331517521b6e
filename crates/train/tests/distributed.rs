//! Two ranks over Gloo on loopback, started the way `--nproc-per-node`
//! starts them: each test runs itself again as the ranks (this test binary,
//! filtered to the one test, with torchrun's variables set), and the
//! ranks check the collectives against values computed locally.

mod ranks;

use ranks::{as_ranks, join};
use selfsup_train::distributed::launch::{self, Launch};
use selfsup_train::distributed::{self, ReduceOp, WorldEnv};
use std::time::Duration;
use tch::{Kind, Tensor};

/// What rank `r` contributes: distinct per rank, differentiable.
fn contribution(rank: usize) -> Tensor {
    Tensor::arange(6, (Kind::Float, tch::Device::Cpu)).reshape([3, 2]) * (rank as f64 + 1.0)
}

#[test]
fn collectives_agree_with_local_arithmetic() {
    if as_ranks("collectives_agree_with_local_arithmetic", 2, &[]) {
        return;
    }
    let group = join();
    let rank = group.rank();
    assert_eq!((distributed::rank(), distributed::world_size()), (rank, 2));

    let mut summed = contribution(rank);
    group.all_reduce_(&mut summed, ReduceOp::Sum).unwrap();
    assert!(summed.allclose(&(contribution(0) + contribution(1)), 0.0, 0.0, false));

    let mut largest = Tensor::from_slice(&[rank as f32, -(rank as f32)]);
    group.all_reduce_(&mut largest, ReduceOp::Max).unwrap();
    assert_eq!(Vec::<f32>::try_from(&largest).unwrap(), vec![1.0, 0.0]);

    let gathered = group.all_gather(&contribution(rank)).unwrap();
    let expected = Tensor::cat(&[contribution(0), contribution(1)], 0);
    assert!(gathered.allclose(&expected, 0.0, 0.0, false));

    let mut shared = Tensor::full([4], rank as f64 + 7.0, (Kind::Double, tch::Device::Cpu));
    group.broadcast_(&mut shared, 1).unwrap();
    assert_eq!(Vec::<f64>::try_from(&shared).unwrap(), vec![8.0; 4]);
    group.barrier().unwrap();
}

/// The gradient of a loss over the gathered rows, as one process holding
/// every rank's rows would compute it: every rank's loss reaches every
/// rank's rows, and the backward pass sums those contributions.
#[test]
fn gathered_rows_carry_every_rank_s_gradient() {
    if as_ranks("gathered_rows_carry_every_rank_s_gradient", 2, &[]) {
        return;
    }
    let group = join();
    let rank = group.rank();
    let mine = contribution(rank).set_requires_grad(true);
    let all = group.all_gather_with_grad(&mine).unwrap();
    assert_eq!(all.size(), [6, 2]);
    // Rank r weighs the gathered rows by (r + 1) * row index: a loss that
    // differs per rank, so the summed gradient is not one rank's.
    let weights =
        Tensor::arange(6, (Kind::Float, tch::Device::Cpu)).reshape([6, 1]) * (rank as f64 + 1.0);
    (&all * &weights).sum(Kind::Float).backward();
    // d(sum over ranks s of loss_s) / d(rows of rank r) = sum_s (s + 1) * index = 3 * index.
    let index = Tensor::arange_start(
        3 * rank as i64,
        3 * rank as i64 + 3,
        (Kind::Float, tch::Device::Cpu),
    );
    let expected = (index * 3.0).reshape([3, 1]).expand([3, 2], false);
    let grad = mine.grad();
    assert!(
        grad.allclose(&expected, 1e-6, 1e-6, false),
        "rank {rank}: {grad}"
    );
}

/// A rank that dies takes the run down with it: the launcher names it.
#[test]
fn a_failing_rank_stops_the_others_and_is_named() {
    if std::env::var_os("RANK").is_none() {
        let logs = tempfile::tempdir().unwrap();
        let launch = Launch {
            program: std::env::current_exe().unwrap(),
            args: [
                "a_failing_rank_stops_the_others_and_is_named",
                "--exact",
                "--nocapture",
            ]
            .map(Into::into)
            .to_vec(),
            nproc: 2,
            log_dir: logs.path().into(),
            timeout: Duration::from_secs(60),
            env: vec![],
        };
        let error = launch::run(&launch).unwrap_err().to_string();
        assert!(error.contains("rank 1 exited"), "{error}");
        assert!(
            error.contains("rank 1 gives up"),
            "the log's tail is quoted: {error}"
        );
        return;
    }
    let group = join();
    if group.rank() == 1 {
        eprintln!("rank 1 gives up");
        std::process::exit(3);
    }
    // Rank 0 waits in a collective that can never complete: it must fail
    // (connection closed, or the launcher's SIGTERM), not hang.
    let mut x = Tensor::ones([1], (Kind::Float, tch::Device::Cpu));
    let outcome = group.all_reduce_(&mut x, ReduceOp::Sum);
    assert!(outcome.is_err());
    std::process::exit(4);
}

/// A rank that hangs fails the others' collectives after the group's
/// timeout, with an error instead of a hang.
#[test]
fn a_hanging_rank_times_the_others_out() {
    if as_ranks("a_hanging_rank_times_the_others_out", 2, &[]) {
        return;
    }
    let env = WorldEnv::from_env().unwrap().unwrap();
    let group = distributed::init(&env, Duration::from_secs(2)).unwrap();
    if group.rank() == 1 {
        std::thread::sleep(Duration::from_secs(6));
        return;
    }
    let started = std::time::Instant::now();
    let mut x = Tensor::ones([1], (Kind::Float, tch::Device::Cpu));
    let error = group
        .all_reduce_(&mut x, ReduceOp::Sum)
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed after {:?}",
        started.elapsed()
    );
    assert!(error.contains("rank 0: all_reduce failed"), "{error}");
    eprintln!("rank 0 saw: {error}");
}

/// SyncBatchNorm over two ranks of four images each normalises, and
/// trains its affine weights, as plain batch norm over all eight.
#[test]
fn synchronised_batch_norm_is_batch_norm_of_the_global_batch() {
    if as_ranks(
        "synchronised_batch_norm_is_batch_norm_of_the_global_batch",
        2,
        &[],
    ) {
        return;
    }
    let group = join();
    let rank = group.rank() as i64;
    let opts = (Kind::Float, tch::Device::Cpu);
    let x = (Tensor::arange(8 * 3 * 16, opts).reshape([8, 3, 4, 4]) * 0.37).sin() * 3.0 + 1.0;
    let w = (Tensor::arange(8 * 3 * 16, opts).reshape([8, 3, 4, 4]) * 0.11).cos();
    let layer = |vs: &tch::nn::VarStore| {
        tch::manual_seed(4); // the same random affine weights everywhere
        tch::nn::batch_norm2d(vs.root() / "bn", 3, Default::default())
    };
    let (vs_global, vs_synced) = (
        tch::nn::VarStore::new(tch::Device::Cpu),
        tch::nn::VarStore::new(tch::Device::Cpu),
    );
    let (global, synced) = (layer(&vs_global), layer(&vs_synced));
    // One process: plain batch norm over all eight images, loss / 2 (the ranks' mean).
    let x = x.set_requires_grad(true);
    let (global2, synced2) = (layer(&vs_global), layer(&vs_synced));
    let y = x.apply_t(&global, true).relu().apply_t(&global2, true);
    ((&y * &w).sum(Kind::Float) / 2.0).backward();
    // Two ranks: four images each, statistics synchronised, gradients averaged.
    let guard = distributed::data_parallel::sync_batch_norm(&group);
    let mine = x.narrow(0, 4 * rank, 4).detach().set_requires_grad(true);
    let hidden = selfsup_core::sync_bn::batch_norm(&synced, &mine, true).relu();
    let y_mine = selfsup_core::sync_bn::batch_norm(&synced2, &hidden, true);
    drop(guard);
    assert!(
        y_mine.allclose(&y.narrow(0, 4 * rank, 4).detach(), 1e-4, 1e-4, false),
        "forward"
    );
    (&y_mine * w.narrow(0, 4 * rank, 4))
        .sum(Kind::Float)
        .backward();
    let params = [
        synced.ws.as_ref().unwrap().shallow_clone(),
        synced.bs.as_ref().unwrap().shallow_clone(),
    ];
    distributed::data_parallel::average_gradients(&group, &params, 1 << 20).unwrap();
    for (name, a, b) in [
        ("weight", &global.ws, &synced.ws),
        ("bias", &global.bs, &synced.bs),
    ] {
        let (a, b) = (a.as_ref().unwrap().grad(), b.as_ref().unwrap().grad());
        assert!(
            a.allclose(&b, 1e-4, 1e-4, false),
            "rank {rank}: {name} grad {a} vs {b}"
        );
    }
    assert!(
        global
            .running_var
            .allclose(&synced.running_var, 1e-4, 1e-4, false),
        "running variance"
    );
    // Each rank's inputs get every rank's loss's gradient (the trainer's
    // average over ranks then halves what flows into the weights).
    let (a, b) = (x.grad().narrow(0, 4 * rank, 4) * 2.0, mine.grad());
    assert!(
        a.allclose(&b, 1e-4, 1e-4, false),
        "rank {rank}: input grad differs by {}",
        (a - b).abs().max()
    );
}

/// SimCLR's whole gradient under data parallelism: a CNN with synchronised
/// batch norm, a batch-normed projector and NT-Xent over gathered
/// embeddings, on 2 ranks of 2 images × 2 views, against the same network
/// on all 4 images in one process; every weight's averaged gradient agrees.
#[test]
fn simclr_with_sync_batch_norm_has_the_global_batch_s_gradients() {
    use selfsup_core::heads::Mlp;
    use tch::nn::{self, Module, ModuleT};
    if as_ranks(
        "simclr_with_sync_batch_norm_has_the_global_batch_s_gradients",
        2,
        &[],
    ) {
        return;
    }
    let group = join();
    let rank = group.rank() as i64;
    let opts = (Kind::Float, tch::Device::Cpu);
    // View-major: rows 0-3 are view 0 of samples 0-3, rows 4-7 view 1.
    let x = (Tensor::arange(8 * 3 * 16 * 16, opts).reshape([8, 3, 16, 16]) * 0.37).sin() * 2.0;
    type Net = (nn::Conv2D, nn::BatchNorm, nn::Conv2D, nn::BatchNorm, Mlp);
    let build = |vs: &nn::VarStore| -> Net {
        tch::manual_seed(4); // the same weights in both networks, on both ranks
        let conv = |name: &str, i: i64, o: i64| {
            nn::conv2d(
                vs.root() / name,
                i,
                o,
                3,
                nn::ConvConfig {
                    padding: 1,
                    ..Default::default()
                },
            )
        };
        let norm = |name: &str, c: i64| nn::batch_norm2d(vs.root() / name, c, Default::default());
        let head = Mlp::simclr_projector(vs.root() / "head", 16, 32, 16);
        (
            conv("c1", 3, 8),
            norm("b1", 8),
            conv("c2", 8, 16),
            norm("b2", 16),
            head,
        )
    };
    let forward = |net: &Net, x: &Tensor| {
        let norm = |bn: &nn::BatchNorm, t: &Tensor| selfsup_core::sync_bn::batch_norm(bn, t, true);
        let h = norm(&net.1, &net.0.forward(x)).relu().max_pool2d(
            [2, 2],
            [2, 2],
            [0, 0],
            [1, 1],
            false,
        );
        let h =
            norm(&net.3, &net.2.forward(&h))
                .relu()
                .mean_dim(&[2i64, 3][..], false, Kind::Float);
        net.4.forward_t(&h, true)
    };
    let (vs_alone, vs_rank) = (
        tch::nn::VarStore::new(tch::Device::Cpu),
        tch::nn::VarStore::new(tch::Device::Cpu),
    );
    let (alone, mine) = (build(&vs_alone), build(&vs_rank));
    selfsup_core::losses::nt_xent(&forward(&alone, &x), 2, 0.5, None)
        .unwrap()
        .backward();
    let guard = distributed::data_parallel::sync_batch_norm(&group);
    let local = Tensor::cat(&[x.narrow(0, 2 * rank, 2), x.narrow(0, 4 + 2 * rank, 2)], 0);
    let gathered = group.all_gather_with_grad(&forward(&mine, &local)).unwrap();
    selfsup_core::losses::nt_xent_gathered(&gathered, 2, 2, rank, 0.5)
        .unwrap()
        .backward();
    drop(guard);
    distributed::data_parallel::average_gradients(&group, &vs_rank.trainable_variables(), 1 << 20)
        .unwrap();
    let (a, b) = (vs_alone.variables(), vs_rank.variables());
    for (name, weight) in a.iter().filter(|(_, w)| w.requires_grad()) {
        let (ga, gb) = (weight.grad(), b[name].grad());
        let scale = ga.abs().max().double_value(&[]).max(1e-3);
        let error = (&ga - &gb).abs().max().double_value(&[]);
        assert!(
            error <= 1e-4 * scale.max(1.0),
            "rank {rank}: {name} grad differs by {error} (scale {scale})"
        );
    }
}

/// Without a launcher's store (`srun`, or the variables set by hand) rank 0
/// serves the store at MASTER_ADDR:MASTER_PORT, on that address only, and
/// the others connect.
#[test]
fn rank_zero_serves_the_store_when_no_launcher_does() {
    if std::env::var_os("RANK").is_none() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        as_ranks(
            "rank_zero_serves_the_store_when_no_launcher_does",
            2,
            &[("TEST_PORT", &port.to_string())],
        );
        return;
    }
    let (rank, port) = (
        std::env::var("RANK").unwrap(),
        std::env::var("TEST_PORT").unwrap(),
    );
    let by_hand = [
        ("RANK", rank.as_str()),
        ("WORLD_SIZE", "2"),
        ("MASTER_ADDR", "127.0.0.1"),
        ("MASTER_PORT", port.as_str()),
    ];
    let env = WorldEnv::from_vars(|name| {
        by_hand
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
    .unwrap();
    assert!(!env.agent_store);
    let group = distributed::init(&env, Duration::from_secs(30)).unwrap();
    let mut x = Tensor::ones([3], (Kind::Float, tch::Device::Cpu));
    group.all_reduce_(&mut x, ReduceOp::Sum).unwrap();
    assert_eq!(Vec::<f32>::try_from(&x).unwrap(), vec![2.0; 3]);
    // MASTER_ADDR=127.0.0.1: rank 0's store and every rank's Gloo listen
    // on loopback only (libtorch alone would serve the port everywhere).
    let listening = assert_listens_on_loopback_only(group.rank());
    assert!(
        !listening.is_empty() || group.rank() > 0,
        "rank 0 serves the store"
    );
    group.all_reduce_(&mut x, ReduceOp::Sum).unwrap();
}

/// This rank's listening sockets, all on loopback (else the test fails).
fn assert_listens_on_loopback_only(rank: usize) -> Vec<String> {
    let listening = own_listening_sockets();
    let outside: Vec<&String> = listening.iter().filter(|a| !is_loopback(a)).collect();
    assert!(outside.is_empty(), "rank {rank} listens on {outside:?}");
    listening
}

/// The listening TCP sockets of this process, as (address, port) in
/// `/proc/net/tcp`'s hex: its socket inodes from `/proc/self/fd`, matched
/// against the LISTEN rows (state 0A) of `/proc/self/net/tcp` and `tcp6`.
fn own_listening_sockets() -> Vec<String> {
    let inodes: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let text = target.to_string_lossy().into_owned();
            Some(
                text.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let mut listening = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() > 9 && fields[3] == "0A" && inodes.iter().any(|i| i == fields[9]) {
                listening.push(fields[1].to_string());
            }
        }
    }
    listening
}

/// Whether a `/proc/net/tcp{,6}` local address (hex, port after `:`) is loopback.
fn is_loopback(address: &str) -> bool {
    let host = address.split(':').next().unwrap();
    match host.len() {
        // 127.x.x.x, little-endian: the last byte is 7F.
        8 => host.ends_with("7F"),
        // ::1, and ::ffff:127.x.x.x.
        32 => {
            host == "00000000000000000000000001000000"
                || (host.starts_with("0000000000000000FFFF0000") && host.ends_with("7F"))
        }
        _ => false,
    }
}

/// `--nproc-per-node` opens no port on any interface but loopback: the
/// store is a file, and Gloo listens on 127.0.0.1. Each rank checks its
/// own listening sockets while the group is up (the launcher opens none).
#[test]
fn a_single_node_run_listens_on_loopback_only() {
    if as_ranks("a_single_node_run_listens_on_loopback_only", 2, &[]) {
        assert!(
            own_listening_sockets().is_empty(),
            "the launcher listens on nothing"
        );
        return;
    }
    let group = join();
    let mut x = Tensor::ones([3], (Kind::Float, tch::Device::Cpu));
    group.all_reduce_(&mut x, ReduceOp::Sum).unwrap();
    assert_listens_on_loopback_only(group.rank());
    // Both ranks still up while each looks.
    group.all_reduce_(&mut x, ReduceOp::Sum).unwrap();
}

#[test]
fn loopback_addresses_are_recognised_in_proc_net_format() {
    assert!(is_loopback("0100007F:1F90"));
    assert!(!is_loopback("00000000:1F90"), "0.0.0.0 is every interface");
    assert!(!is_loopback("0A00020F:1F90"));
    assert!(is_loopback("00000000000000000000000001000000:1F90"));
    assert!(
        !is_loopback("00000000000000000000000000000000:1F90"),
        ":: is every interface"
    );
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(") ")
            .next()
            .is_some_and(|rest| rest.starts_with('Z')),
    }
}

/// A launcher killed with SIGKILL (no chance to stop its ranks) leaves no
/// orphan training on: the kernel sends each rank SIGTERM.
#[test]
fn ranks_stop_within_seconds_when_the_launcher_dies() {
    const TEST: &str = "ranks_stop_within_seconds_when_the_launcher_dies";
    let args = [TEST, "--exact", "--nocapture", "--test-threads=1"];
    match std::env::var("ORPHAN_ROLE").ok().as_deref() {
        None => {
            let dir = tempfile::tempdir().unwrap();
            let mut launcher = std::process::Command::new(std::env::current_exe().unwrap())
                .args(args)
                .env("ORPHAN_ROLE", "launcher")
                .env("ORPHAN_DIR", dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let pid_files = [dir.path().join("rank0.pid"), dir.path().join("rank1.pid")];
            let started = std::time::Instant::now();
            while !pid_files.iter().all(|f| f.exists()) {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the ranks never started"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            let pids: Vec<u32> = pid_files
                .iter()
                .map(|f| std::fs::read_to_string(f).unwrap().trim().parse().unwrap())
                .collect();
            launcher.kill().unwrap();
            launcher.wait().unwrap();
            let killed = std::time::Instant::now();
            while !pids.iter().all(|&pid| has_ended(pid)) {
                assert!(
                    killed.elapsed() < Duration::from_secs(5),
                    "ranks {pids:?} still running without their launcher"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some("launcher") => {
            let logs = tempfile::tempdir().unwrap();
            let launch = Launch {
                program: std::env::current_exe().unwrap(),
                args: args.map(Into::into).to_vec(),
                nproc: 2,
                log_dir: logs.path().into(),
                timeout: Duration::from_secs(60),
                env: vec![("ORPHAN_ROLE".into(), "rank".into())],
            };
            let _ = launch::run(&launch);
        }
        Some(_) => {
            let dir = std::env::var("ORPHAN_DIR").unwrap();
            let rank = std::env::var("RANK").unwrap();
            let path = std::path::Path::new(&dir).join(format!("rank{rank}.pid"));
            let partial = path.with_extension("partial");
            std::fs::write(&partial, std::process::id().to_string()).unwrap();
            std::fs::rename(&partial, &path).unwrap();
            // Training that would go on for a minute.
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}
