//! `selfsup train <task>`: parse the arguments, hand the task to its
//! modality's experiment, print the report.

use crate::{data, logging, tasks};
use anyhow::Result;
use selfsup_train::experiment::RunStart;
use selfsup_train::recipes::{config_text, find_task, ConfigChoice};
use std::path::PathBuf;

/// Arguments of `selfsup train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The task, e.g. `vision-mae` (`selfsup tasks` lists them).
    task: String,
    /// A config file to use instead of the task's built-in recipe.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override a config value, e.g. `--set trainer.epochs=2` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Which built-in recipe of the task: `mnist` (vision's default, bundled
    /// data), `cifar10` (the published recipe, for a GPU), `cifar10-cpu` (a
    /// 2-core budget); `selfsup tasks` lists each task's.
    #[arg(long, conflicts_with = "config")]
    recipe: Option<String>,
    /// Vision: the data set's format (replaces `data.dataset`): mnist,
    /// cifar10, cifar100, stl10, imagefolder; picks the task's recipe of that
    /// name, if it has one and `--recipe` is not given. Text: a text file or
    /// folder to train on (replaces `data.path`).
    #[arg(long)]
    data: Option<String>,
    /// Folder holding the data set's files (replaces `data.path`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint, with its config.
    #[arg(long, value_name = "RUN_FOLDER", conflicts_with = "config")]
    resume: Option<PathBuf>,
    /// Parent folder of run folders.
    #[arg(long, default_value_os_t = crate::default_runs_dir())]
    runs: PathBuf,
    /// Train data-parallel on N local processes (Gloo), as `torchrun
    /// --standalone --nproc-per-node N`; each takes `trainer.batch_size`.
    #[arg(long, value_name = "N")]
    nproc_per_node: Option<usize>,
    /// Seconds a rank waits for the others (rendezvous, each collective)
    /// before it stops with an error.
    #[arg(long, default_value_t = 1800)]
    dist_timeout: u64,
}

/// Runs `selfsup train`: as the launcher of `--nproc-per-node` ranks, as
/// one rank of a launched run (torchrun's or SLURM's variables set), or alone.
pub fn run(args: TrainArgs) -> Result<()> {
    use selfsup_train::distributed::{self, launch, WorldEnv};
    let timeout = std::time::Duration::from_secs(args.dist_timeout.max(1));
    let world = WorldEnv::from_env()?;
    if let (Some(nproc), None) = (args.nproc_per_node, &world) {
        let log_dir = args
            .runs
            .join("launch-logs")
            .join(std::process::id().to_string());
        println!(
            "starting {nproc} ranks (logs of ranks 1-{}: {})",
            nproc - 1,
            log_dir.display()
        );
        let launch = launch::Launch {
            program: std::env::current_exe()?,
            args: crate::worker_args(std::env::args_os().skip(1), "--nproc-per-node"),
            nproc,
            log_dir,
            timeout,
            env: Vec::new(),
        };
        return Ok(launch::run(&launch)?);
    }
    if let Some(world) = &world {
        distributed::init(world, timeout)?;
    }
    let all = tasks::all();
    let task = find_task(&all, &args.task)?;
    let choice = ConfigChoice {
        resume: args.resume.as_deref(),
        config: args.config.as_deref(),
        recipe: args.recipe.as_deref(),
        data: args.data.as_deref(),
    };
    let (text, origin) = config_text(task, choice)?;
    let start = RunStart {
        runs: args.runs.clone(),
        resume: args.resume.clone(),
    };
    match task.modality {
        "vision" => vision(&args, &task.name, &text, &origin, start),
        _ => text_task(&args, &task.name, &text, &origin, start),
    }
}

fn vision(args: &TrainArgs, task: &str, text: &str, origin: &str, start: RunStart) -> Result<()> {
    use selfsup_vision::experiment::{Experiment, TrainRequest};
    let fetch = |name: &str| -> selfsup_vision::Result<PathBuf> {
        let set = selfsup_data::download::lookup(name)?;
        data::fetch(set, None)
            .map_err(|e| selfsup_train::check::invalid("data.path", format!("{e:#}")).into())
    };
    let request = TrainRequest {
        task,
        config_text: text,
        origin,
        overrides: &args.set,
        dataset: args.data.as_deref(),
        data_dir: args.data_dir.as_deref(),
        start,
        fetch: &fetch,
    };
    let experiment = Experiment::prepare(&selfsup_vision::registry(), request)?;
    logging::init_for_rank(&experiment.run_dir().file("train.log"));
    tracing::info!(task, run = %experiment.run_dir().path().display(), "starting");
    let report = experiment.run()?;
    if !selfsup_train::distributed::is_primary() {
        rank_done();
        return Ok(());
    }
    println!();
    println!(
        "{} on {} ({} train / {} held-out images)",
        report.task,
        report.data_path.display(),
        report.train_images,
        report.held_out_images
    );
    print_fit(&report.fit);
    println!(
        "  k-NN top-1 on held-out (k = {}, T = {}):",
        report.knn_k, report.knn_temperature
    );
    println!(
        "    {:<28} {:>6.2} %",
        format!("{} (trained)", report.task),
        report.knn * 100.0
    );
    println!(
        "    {:<28} {:>6.2} %",
        "same encoder, random init",
        report.knn_random_init * 100.0
    );
    print_files(&report.run, &report.pictures);
    Ok(())
}

fn text_task(
    args: &TrainArgs,
    task: &str,
    text: &str,
    origin: &str,
    start: RunStart,
) -> Result<()> {
    use selfsup_text::experiment::{Experiment, TrainRequest};
    let data = args
        .data
        .as_deref()
        .map(PathBuf::from)
        .or(args.data_dir.clone());
    let request = TrainRequest {
        task,
        config_text: text,
        origin,
        overrides: &args.set,
        data: data.as_deref(),
        start,
    };
    let experiment = Experiment::prepare(&selfsup_text::registry(), request)?;
    logging::init_for_rank(&experiment.run_dir().file("train.log"));
    tracing::info!(task, run = %experiment.run_dir().path().display(), "starting");
    let report = experiment.run()?;
    if !selfsup_train::distributed::is_primary() {
        rank_done();
        return Ok(());
    }
    print_text_report(&report);
    Ok(())
}

fn print_text_report(report: &selfsup_text::experiment::TrainReport) {
    use selfsup_text::experiment::Demo;
    let unit = report.unit;
    println!();
    println!(
        "{} on {} ({} train / {} validation {unit}s, vocabulary {})",
        report.task,
        report.data_path.display(),
        report.train_tokens,
        report.validation_tokens,
        report.vocab
    );
    print_fit(&report.fit);
    println!(
        "  validation ({} predicted {unit}s):",
        report.trained.tokens
    );
    println!(
        "    {:<28} {:>8} {:>11} {:>9} {:>6}",
        "",
        "loss",
        "perplexity",
        format!("bits/{unit}"),
        "top-1"
    );
    for (label, s) in [
        ("trained", report.trained),
        ("same model, random init", report.random_init),
    ] {
        println!(
            "    {label:<28} {:>8.4} {:>11.2} {:>9.3} {:>5.1}%",
            s.loss,
            s.perplexity,
            s.bits_per_token,
            s.top1 * 100.0
        );
    }
    if let (Some(trained), Some(random)) = (
        report.trained.sentence_accuracy,
        report.random_init.sentence_accuracy,
    ) {
        println!(
            "  sentence task on held-out pairs: accuracy {:.2} % (random init {:.2} %, chance 50 %)",
            trained * 100.0,
            random * 100.0
        );
    }
    match &report.demo {
        Demo::Sample { text } => {
            println!("  sample (temperature 0.8, top-k 40) after a validation prompt:");
            for line in text.lines().take(12) {
                println!("    | {line}");
            }
        }
        Demo::FillMask(choice) => {
            println!(
                "  fill-mask on validation text ({} of {} right here; of all {} masked validation {unit}s {:.1} %, random init {:.1} %):",
                choice.right,
                choice.hidden,
                report.trained.tokens,
                report.trained.top1 * 100.0,
                report.random_init.top1 * 100.0
            );
            println!("    masked:  {}", choice.masked.replace('\n', " "));
            println!("    filled:  {}", choice.filled.replace('\n', " "));
            println!("    truth:   {}", choice.truth.replace('\n', " "));
            println!("    first three choices per hidden {unit}:");
            for (truth, candidates) in &choice.choices {
                let shown: Vec<String> = candidates
                    .iter()
                    .map(|(text, p)| format!("{:?} {:.0} %", text, p * 100.0))
                    .collect();
                println!("      {:<14} {}", format!("{truth:?}"), shown.join(", "));
            }
        }
    }
    print_files(&report.run, &report.pictures);
}

/// What a rank other than 0 prints at the end: rank 0 evaluates and reports.
fn rank_done() {
    let (rank, world) = (
        selfsup_train::distributed::rank(),
        selfsup_train::distributed::world_size(),
    );
    println!("rank {rank} of {world}: training done; rank 0 evaluates and writes the run folder");
}

fn print_fit(fit: &selfsup_train::trainer::FitReport) {
    if fit.world_size > 1 {
        println!(
            "  data-parallel: world size {} (Gloo), rates count every rank",
            fit.world_size
        );
    }
    println!(
        "  pretraining: {} steps in {:.0} s ({:.0} {}/s, {:.0} % waiting for data), loss {:.4} -> {:.4}",
        fit.steps,
        fit.seconds,
        fit.units_per_second,
        fit.unit,
        fit.data_wait_share * 100.0,
        fit.first_loss,
        fit.final_loss
    );
}

fn print_files(run: &std::path::Path, pictures: &[PathBuf]) {
    println!("  run folder: {}", run.display());
    for file in pictures {
        println!("  picture:    {}", file.display());
    }
}
