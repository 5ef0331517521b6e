//! `selfsup finetune`: parse, call the text or vision library on a run
//! folder and a labelled set, print.

use anyhow::Result;
use selfsup_train::eval::few_labels::{default_epochs, parse_share, FewLabelRequest};
use selfsup_train::eval::FineTuneConfig;
use std::path::PathBuf;

/// Arguments of `selfsup finetune`.
#[derive(clap::Args)]
pub struct FinetuneArgs {
    /// The run folder (text or vision).
    run: PathBuf,
    /// Labelled data, one folder per class: text files for a text run,
    /// images (.jpg, .png) for a vision run.
    #[arg(long)]
    data: PathBuf,
    /// A separate labelled test set (same classes); without it a stratified
    /// fifth of --data is held out (fixed seed).
    #[arg(long)]
    test: Option<PathBuf>,
    /// Share of the training labels, class-balanced: 1%, 10%, 100% (or 0.1).
    #[arg(long, default_value = "10%")]
    labels: String,
    /// Passes over the labelled subset [default: 60 for 1 % of the labels
    /// or less, 30 up to 10 %, else 10, as SimCLR's semi-supervised protocol].
    #[arg(long)]
    epochs: Option<usize>,
    /// Samples per step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Peak learning rate of AdamW (warmup over the first epoch, then cosine).
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Seeds the labelled subset, the head and the order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Text runs: `auto` (BERT's pooled [CLS], else the mean), `cls` or `mean`.
    #[arg(long, default_value = "auto")]
    pooling: String,
}

/// Runs `selfsup finetune`.
pub fn run(args: FinetuneArgs) -> Result<()> {
    crate::logging::init_stderr();
    let share = parse_share(&args.labels)?;
    let config = FineTuneConfig {
        fractions: vec![share],
        epochs: Some(args.epochs.unwrap_or(default_epochs(share))),
        batch_size: args.batch_size,
        lr: args.lr,
        weight_decay: args.weight_decay,
        seed: args.seed,
    };
    let epochs = config.epochs.unwrap_or(default_epochs(share));
    let few = FewLabelRequest {
        run: &args.run,
        data: &args.data,
        test: args.test.as_deref(),
        share,
        config,
    };
    // A text run keeps its tokenizer next to its config.
    if !args.run.join("tokenizer.toml").exists() {
        return run_vision(&few);
    }
    let request = selfsup_text::finetune::FinetuneRequest {
        few,
        pooling: args.pooling.parse()?,
    };
    let report = selfsup_text::finetune::finetune(&selfsup_text::registry(), &request)?;
    let scores = report.scores;
    println!(
        "\n{}: fine-tuned {epochs} epochs on {} labelled texts ({:.0} % of the training labels, classes {}), top-1 on {} held-out, first {} tokens of each",
        report.run.display(),
        scores.labelled,
        scores.share * 100.0,
        report.classes.join(" / "),
        scores.held_out,
        report.tokens
    );
    let baseline = format!(
        "bag-of-words logistic regression (C = {})",
        report.bag_of_words_c
    );
    print_rows(&[
        ("pretrained, fine-tuned", scores.pretrained),
        (
            "same model from random init, fine-tuned",
            scores.random_init,
        ),
        (&baseline, report.bag_of_words),
    ]);
    Ok(())
}

fn run_vision(request: &FewLabelRequest<'_>) -> Result<()> {
    let epochs = request
        .config
        .epochs
        .unwrap_or(default_epochs(request.share));
    let report = selfsup_vision::experiment::finetune_images(&selfsup_vision::registry(), request)?;
    let (scores, (h, w, c)) = (report.scores, report.image_shape);
    println!(
        "\n{}: fine-tuned {} epochs on {} labelled images ({:.0} % of the training labels, {} classes, {h}x{w}x{c}), top-1 on {} held-out",
        report.run.display(),
        epochs,
        scores.labelled,
        scores.share * 100.0,
        report.classes.len(),
        scores.held_out
    );
    print_rows(&[
        ("pretrained, fine-tuned", scores.pretrained),
        (
            "same model from random init, fine-tuned",
            scores.random_init,
        ),
    ]);
    Ok(())
}

fn print_rows(rows: &[(&str, f64)]) {
    for (label, value) in rows {
        println!("  {label:<44} {:>6.2} %", value * 100.0);
    }
}
