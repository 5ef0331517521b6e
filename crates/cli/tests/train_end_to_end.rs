//! `selfsup train` as a user runs it: a short MAE run on the bundled data must
//! leave a complete run folder and print both k-NN numbers; bad input must fail
//! with a message naming the problem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn selfsup(args: &[&str], runs: &Path) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .current_dir(&root)
        .args(args)
        .arg("--runs")
        .arg(runs)
        .output()
        .expect("selfsup starts")
}

fn only_run_folder(runs: &Path) -> PathBuf {
    let folders: Vec<PathBuf> = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    folders[0].clone()
}

#[test]
fn short_mae_run_leaves_a_complete_run_folder() {
    let runs = tempfile::tempdir().unwrap();
    let overrides = [
        "trainer.epochs=2",
        "trainer.batch_size=64",
        "trainer.device=cpu",
        "data.max_images=1000",
        "method.encoder.depth=1",
        "method.decoder.depth=1",
        "optim.warmup_epochs=0.5",
    ];
    let mut args = vec!["train", "vision-mae"];
    for o in &overrides {
        args.extend(["--set", o]);
    }
    let out = selfsup(&args, runs.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("vision-mae (trained)") && stdout.contains("random init"),
        "{stdout}"
    );
    let run = only_run_folder(runs.path());
    for file in [
        "config.toml",
        "metrics.csv",
        "train.log",
        "mae_reconstructions.png",
        "checkpoints/last.safetensors",
    ] {
        assert!(run.join(file).is_file(), "missing {file}");
    }
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains("max_images = 1000"),
        "the resolved config includes overrides"
    );
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(
        metrics.contains(",eval,knn_top1,") && metrics.contains(",train,loss,"),
        "{metrics}"
    );
    fine_tunes_on_an_image_folder(&run);
}

/// Runs `selfsup` with `args`, checks that it succeeded and returns its stdout.
fn succeeds(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    stdout
}

/// `selfsup finetune` of a vision run on an ImageFolder of 20x20 colour
/// PNGs (bright on the left or on the right), resized and made grey for
/// the run's 28x28 one-channel encoder.
fn fine_tunes_on_an_image_folder(run: &Path) {
    let dir = tempfile::tempdir().unwrap();
    for (class, left) in [("left", true), ("right", false)] {
        std::fs::create_dir_all(dir.path().join(class)).unwrap();
        for i in 0..10u8 {
            let image = image::RgbImage::from_fn(20, 20, |x, _| {
                let bright = (x < 10) == left;
                image::Rgb(if bright {
                    [200 + i, 180, 90]
                } else {
                    [10, 20 + i, 30]
                })
            });
            image
                .save(dir.path().join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let args = [
        "finetune",
        run.to_str().unwrap(),
        "--data",
        dir.path().to_str().unwrap(),
    ];
    let stdout = succeeds(
        &[
            &args[..],
            &["--labels", "100%", "--epochs", "3", "--lr", "1e-3"],
        ]
        .concat(),
    );
    assert!(
        stdout.contains("16 labelled images")
            && stdout.contains("28x28x1")
            && stdout.contains("4 held-out"),
        "{stdout}"
    );
}

#[test]
fn unknown_task_lists_known_tasks() {
    let runs = tempfile::tempdir().unwrap();
    let out = selfsup(&["train", "vision-bogus"], runs.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`vision-bogus`")
            && stderr.contains("unknown task")
            && stderr.contains("vision-mae"),
        "{stderr}"
    );
}

#[test]
fn missing_data_names_the_file() {
    let runs = tempfile::tempdir().unwrap();
    let out = selfsup(
        &["train", "vision-mae", "--data-dir", "/nonexistent/mnist"],
        runs.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/mnist/t10k-images-idx3-ubyte"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(runs.path()).unwrap().count(),
        0,
        "no run folder for a run that never started"
    );
}

/// Bad values a new user tries, each with the key its one-line error must
/// name: exit status 1, no panic, no run folder left behind.
#[test]
fn bad_values_exit_with_one_line_naming_the_key_and_leave_no_run_folder() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "vision-simclr",
            &["trainer.batch_size=0"],
            "trainer.batch_size",
        ),
        (
            "vision-simclr",
            &["trainer.batch_size=100000"],
            "trainer.batch_size",
        ),
        ("vision-mae", &["method.mask_ratio=1"], "method.mask_ratio"),
        (
            "vision-simclr",
            &["method.backbone.widths=[]"],
            "method.backbone.widths",
        ),
        (
            "vision-simclr",
            &["data.held_out_every=1"],
            "data.held_out_every",
        ),
        ("vision-simclr", &["eval.knn_k=0"], "eval.knn_k"),
        ("vision-simclr", &["eval.knn_k=100000"], "eval.knn_k"),
        (
            "vision-rotnet",
            &[
                "method.backbone.kind=\"resnet\"",
                "method.backbone.depth=19",
                "method.backbone.stem=\"cifar\"",
            ],
            "method.backbone",
        ),
        (
            "vision-mae",
            &["method.encoder.image_size=30"],
            "method.encoder.image_size",
        ),
        ("vision-moco", &["optim.lr=nan"], "optim.lr"),
        (
            "vision-byol",
            &["optim.lr_scales.predicter=10"],
            "optim.lr_scales.predicter",
        ),
        (
            "vision-byol",
            &["optim.lr_scales.predictor=0"],
            "optim.lr_scales.predictor",
        ),
        ("vision-simclr", &["method.proj_dim=-3"], "method.proj_dim"),
        (
            "vision-simclr",
            &["method.proj_hidden=1000000000000"],
            "method.proj_hidden",
        ),
        (
            "text-gpt",
            &["data.train_fraction=1"],
            "data.train_fraction",
        ),
        ("text-mlm", &["method.model.heads=5"], "method.model.dim"),
        // 8192 x 8192 RGB is 201 MB an image: evaluation would hold them all.
        (
            "vision-simclr",
            &["data.resize=[8192, 8192]"],
            "data.resize",
        ),
        (
            "vision-simclr",
            &["data.max_image_pixels=0"],
            "data.max_image_pixels",
        ),
        ("vision-simclr", &["name=\"../x\""], "config name"),
    ];
    for (task, overrides, key) in cases {
        let runs = tempfile::tempdir().unwrap();
        let mut args = vec!["train", *task];
        for o in *overrides {
            args.extend(["--set", o]);
        }
        let out = selfsup(&args, runs.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{task} {overrides:?}: {stderr}");
        assert!(
            stderr.contains(key),
            "{task} {overrides:?} should name {key}: {stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "{task} {overrides:?}: {stderr}"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{task} {overrides:?}: {stderr}"
        );
        assert_eq!(
            std::fs::read_dir(runs.path()).unwrap().count(),
            0,
            "{task} {overrides:?} left a run folder"
        );
    }
}

#[test]
fn bad_override_names_the_key() {
    let runs = tempfile::tempdir().unwrap();
    let out = selfsup(
        &["train", "vision-mae", "--set", "trainer.epochz=3"],
        runs.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("epochz"), "{stderr}");
}

/// A small public-domain-style text with a fixed alphabet, written for the test.
fn write_corpus(dir: &Path) -> PathBuf {
    let words = [
        "call", "me", "ishmael", "some", "years", "ago", "never", "mind",
    ];
    let text: String = (0..4000)
        .map(|i| format!("{} {}. ", words[i * 5 % 8], words[(i * 3 + 2) % 8]))
        .collect();
    let path = dir.join("corpus.txt");
    std::fs::write(&path, text).unwrap();
    path
}

fn text_run(task: &str, corpus: &Path, runs: &Path) -> PathBuf {
    let corpus = corpus.to_str().unwrap();
    let mut args = vec!["train", task, "--data", corpus];
    let overrides = [
        "trainer.max_steps=30",
        "trainer.device=cpu",
        "method.model.depth=1",
        "method.model.dim=32",
        "method.model.heads=2",
        "method.model.context=32",
    ];
    for o in &overrides {
        args.extend(["--set", o]);
    }
    let out = selfsup(&args, runs);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("bits/") && stdout.contains("random init"),
        "{stdout}"
    );
    let run = only_run_folder(runs);
    for file in [
        "config.toml",
        "tokenizer.toml",
        "summary.toml",
        "checkpoints/last.safetensors",
    ] {
        assert!(run.join(file).is_file(), "missing {file}");
    }
    run
}

#[test]
fn text_gpt_trains_then_generates_from_its_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write_corpus(dir.path());
    let runs = dir.path().join("runs");
    let run = text_run("text-gpt", &corpus, &runs);
    assert!(run.join("sample.txt").is_file());
    let run_arg = run.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args(["generate", run_arg, "--prompt", "call me", "--tokens", "40"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("call me") && text.trim_end().chars().count() >= 47,
        "{text}"
    );
    let unseen = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args(["generate", run_arg, "--prompt", "Zebra"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&unseen.stderr);
    assert!(
        !unseen.status.success() && err.contains("--prompt") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn text_mlm_trains_then_fills_masks_from_its_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write_corpus(dir.path());
    let runs = dir.path().join("runs");
    let run = text_run("text-mlm", &corpus, &runs);
    let run_arg = run.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args([
            "fill-mask",
            run_arg,
            "--text",
            "call me ish_ael",
            "--top-k",
            "3",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The default tokenizer is the bundled BPE: one hidden token, one line.
    assert!(
        text.contains("position ") && text.lines().count() == 2,
        "{text}"
    );
    let gpt_only = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args(["generate", run_arg])
        .output()
        .unwrap();
    assert!(!gpt_only.status.success());
}

#[test]
fn text_bert_trains_on_paragraphs_then_fine_tunes_on_labelled_texts() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("paragraphs.txt");
    let sentences = [
        "Call me Ishmael.",
        "Some years ago I went to sea.",
        "Never mind how long.",
    ];
    let text: String = (0..300)
        .map(|i| {
            format!(
                "{} {}",
                sentences[i % 3],
                if i % 4 == 3 { "\n\n" } else { "" }
            )
        })
        .collect();
    std::fs::write(&corpus, text).unwrap();
    let runs = dir.path().join("runs");
    let run = text_run("text-bert", &corpus, &runs);
    let summary = std::fs::read_to_string(run.join("summary.toml")).unwrap();
    assert!(
        summary.contains("validation_sentence_accuracy"),
        "{summary}"
    );
    let labelled = dir.path().join("labelled");
    for (class, words) in [
        ("sea", "the whale and the sea"),
        ("land", "a farm and a field"),
    ] {
        std::fs::create_dir_all(labelled.join(class)).unwrap();
        for i in 0..10 {
            std::fs::write(
                labelled.join(class).join(format!("{i}.txt")),
                format!("{words} {i}"),
            )
            .unwrap();
        }
    }
    let run_arg = run.to_str().unwrap();
    let args = [
        "finetune",
        run_arg,
        "--data",
        labelled.to_str().unwrap(),
        "--labels",
        "100%",
        "--epochs",
        "2",
    ];
    let stdout = succeeds(&args);
    assert!(
        stdout.contains("pretrained, fine-tuned")
            && stdout.contains("bag-of-words")
            && stdout.contains("4 held-out"),
        "{stdout}"
    );
    assert!(run.join("finetune-100pct.toml").exists());
    let bad = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args([
            "finetune",
            run_arg,
            "--data",
            labelled.to_str().unwrap(),
            "--labels",
            "0%",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("--labels"), "{err}");
}

/// `selfsup data ...` with `SELFSUP_DATA` pointed at `cache`.
fn selfsup_data(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .arg("data")
        .args(args)
        .env("SELFSUP_DATA", cache)
        .output()
        .expect("selfsup starts")
}

#[test]
fn a_trained_bpe_tokenizes_a_corpus_that_text_gpt_trains_on_from_the_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write_corpus(dir.path());
    let (bpe, tokens) = (dir.path().join("bpe"), dir.path().join("corpus.tokens"));
    let out = selfsup_data(
        &[
            "train-bpe",
            corpus.to_str().unwrap(),
            "--out",
            bpe.to_str().unwrap(),
            "--vocab-size",
            "300",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = selfsup_data(
        &[
            "tokenize",
            corpus.to_str().unwrap(),
            "--out",
            tokens.to_str().unwrap(),
            "--bpe",
            bpe.to_str().unwrap(),
        ],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The 8-word corpus runs out of repeated pairs before 300 tokens.
    assert!(stdout.contains("290 kinds"), "{stdout}");
    // u16 ids after a 16-byte header, far fewer than the corpus's bytes.
    let corpus_bytes = std::fs::metadata(&corpus).unwrap().len();
    let token_bytes = std::fs::metadata(&tokens).unwrap().len();
    assert!(
        token_bytes < corpus_bytes,
        "{token_bytes} vs {corpus_bytes}"
    );
    let runs = dir.path().join("runs");
    let run = text_run("text-gpt", &tokens, &runs);
    let sample = std::fs::read_to_string(run.join("sample.txt")).unwrap();
    // The prompt is the first validation tokens, decoded: text of the corpus.
    let prompt: String = sample.chars().take(30).collect();
    assert!(
        std::fs::read_to_string(&corpus).unwrap().contains(&prompt),
        "{prompt:?}"
    );
    let saved = std::fs::read_to_string(run.join("tokenizer.toml")).unwrap();
    assert!(saved.contains("gpt2_files"), "{saved}");
}

#[test]
fn data_fetch_from_a_local_copy_checks_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("cifar-10-binary.tar.gz");
    std::fs::write(&fake, b"not the real archive").unwrap();
    let cache = dir.path().join("cache");
    let out = selfsup_data(
        &["fetch", "cifar10", "--from", fake.to_str().unwrap()],
        &cache,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cifar-10-binary.tar.gz")
            && stderr.contains("c32a1d4ab5d03f1284b67883e8d87530"),
        "{stderr}"
    );
    let out = selfsup_data(&["fetch", "imagenet"], &cache);
    assert!(String::from_utf8_lossy(&out.stderr).contains("known: mnist"));
    let out = selfsup_data(&["list"], &cache);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("cifar10") && stdout.contains("not fetched"),
        "{stdout}"
    );
}

/// `root/train/<class>/<i>.png`, two classes of photos of varied sizes.
fn image_folder_of_mixed_sizes(root: &Path) {
    for (c, class) in ["bright", "dark"].iter().enumerate() {
        let dir = root.join("train").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..12u32 {
            let (w, h) = (30 + 3 * i, 60 - 2 * i);
            let base = if c == 0 { 200 } else { 30 };
            image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([base + (x % 20) as u8, base - (y % 20) as u8, base])
            })
            .save(dir.join(format!("{i}.png")))
            .unwrap();
        }
    }
}

/// `selfsup train vision-simclr` for a few tiny steps on RGB images read
/// as `format` from `folder`, with `extra` settings, into `runs`.
fn streamed_simclr(format: &str, folder: &Path, extra: &[&str], runs: &Path) -> Output {
    let folder = folder.to_str().unwrap();
    let mut args = vec![
        "train",
        "vision-simclr",
        "--data",
        format,
        "--data-dir",
        folder,
    ];
    let settings = [
        "data.split=\"train\"",
        "method.backbone.in_channels=3",
        "trainer.epochs=2",
        "trainer.batch_size=8",
        "trainer.device=cpu",
        "eval.knn_k=5",
    ];
    for s in settings.iter().chain(extra) {
        args.extend(["--set", s]);
    }
    selfsup(&args, runs)
}

/// The stdout of a run that must have succeeded and printed both k-NN rows.
fn trained(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("random init"), "{stdout}");
    stdout
}

#[test]
fn a_streamed_image_folder_trains_and_evaluates() {
    let data = tempfile::tempdir().unwrap();
    image_folder_of_mixed_sizes(data.path());
    let runs = tempfile::tempdir().unwrap();
    // Streaming needs the size evaluation reads.
    let on = ["data.stream=\"on\""];
    let out = streamed_simclr("imagefolder", data.path(), &on, runs.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("data.resize"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(runs.path()).unwrap().count(),
        0,
        "no run folder"
    );
    let sized = ["data.stream=\"on\"", "data.resize=[28, 28]"];
    trained(&streamed_simclr(
        "imagefolder",
        data.path(),
        &sized,
        runs.path(),
    ));
    let config = std::fs::read_to_string(only_run_folder(runs.path()).join("config.toml")).unwrap();
    assert!(config.contains("stream = \"on\""), "{config}");
}

#[test]
fn webdataset_shards_written_by_data_shard_train_and_evaluate() {
    let data = tempfile::tempdir().unwrap();
    image_folder_of_mixed_sizes(data.path());
    let shards = data.path().join("shards");
    let train = data.path().join("train");
    let stdout = succeeds(&[
        "data",
        "shard",
        train.to_str().unwrap(),
        "--out",
        shards.join("train").to_str().unwrap(),
        "--shard-size",
        "5",
    ]);
    assert!(
        stdout.contains("24 images of 2 classes in 5 shards"),
        "{stdout}"
    );
    let runs = tempfile::tempdir().unwrap();
    let extra = ["data.resize=[28, 28]", "data.shuffle_buffer=4"];
    trained(&streamed_simclr("webdataset", &shards, &extra, runs.path()));
}

/// A config `name` that would place the run folder outside `--runs`
/// (`../x`, an absolute path) is refused before anything is written.
#[test]
fn a_run_name_with_a_path_is_refused_and_writes_nothing_outside_runs() {
    let parent = tempfile::tempdir().unwrap();
    let runs = parent.path().join("runs");
    let outside = parent.path().join("escaped");
    for name in ["../escaped", outside.to_str().unwrap()] {
        let set = format!("name={name:?}");
        let out = selfsup(&["train", "vision-mae", "--set", &set], &runs);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("config name") && !stderr.contains("panicked"),
            "{stderr}"
        );
        let written: Vec<_> = std::fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(written.is_empty(), "{written:?}");
    }
}

/// A GPU this machine lacks is a one-line error naming `trainer.device`.
#[test]
fn a_missing_gpu_names_trainer_device() {
    let runs = tempfile::tempdir().unwrap();
    let out = selfsup(
        &["train", "vision-mae", "--set", "trainer.device=\"cuda:7\""],
        runs.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("trainer.device") && stderr.contains("GPU 7"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && stderr.lines().count() <= 2,
        "{stderr}"
    );
}

/// `data.on_corrupt = "skip"` with streaming skips a file that does not
/// decode everywhere, the k-NN banks included (a crafted JPEG declaring
/// 65500 x 65500 pixels, and a truncated PNG), instead of stopping at the
/// random-init evaluation; without it, the run stops naming the file.
#[test]
fn a_streamed_run_skips_undecodable_files_in_training_and_evaluation() {
    let data = tempfile::tempdir().unwrap();
    image_folder_of_mixed_sizes(data.path());
    let small = image::RgbImage::from_pixel(16, 16, image::Rgb([40, 90, 200]));
    let mut bomb = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bomb, 90)
        .encode_image(&small)
        .unwrap();
    let sof = bomb.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bomb[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xDC, 0xFF, 0xDC]);
    std::fs::write(data.path().join("train/bright/bomb.jpg"), &bomb).unwrap();
    std::fs::write(data.path().join("train/dark/4.png"), b"\x89PNG cut").unwrap();
    let runs = tempfile::tempdir().unwrap();
    let strict = ["data.stream=\"on\"", "data.resize=[28, 28]"];
    let out = streamed_simclr("imagefolder", data.path(), &strict, runs.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bomb.jpg") || stderr.contains("4.png"),
        "{stderr}"
    );
    let runs = tempfile::tempdir().unwrap();
    let skip = [
        "data.stream=\"on\"",
        "data.resize=[28, 28]",
        "data.on_corrupt=\"skip\"",
    ];
    trained(&streamed_simclr(
        "imagefolder",
        data.path(),
        &skip,
        runs.path(),
    ));
}

/// A `--resume` that cannot load (a `--set` that changed a shape) fails
/// naming the tensor and leaves the run as it was: its config.toml, its
/// metrics and its checkpoint untouched, so it still resumes as before.
#[test]
fn a_failed_resume_leaves_the_run_folder_untouched() {
    let runs = tempfile::tempdir().unwrap();
    let tiny = [
        "--set",
        "trainer.max_steps=2",
        "--set",
        "data.max_images=200",
        "--set",
        "eval.knn_k=5",
    ];
    let mut args = vec!["train", "vision-mae"];
    args.extend(tiny);
    let out = selfsup(&args, runs.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = only_run_folder(runs.path());
    let snapshot = |name: &str| std::fs::read(run.join(name)).unwrap();
    let before = ["config.toml", "metrics.csv", "checkpoints/last.safetensors"].map(snapshot);
    let run_arg = run.to_str().unwrap();
    let mut resume = vec!["train", "vision-mae", "--resume", run_arg];
    resume.extend(tiny);
    resume.extend([
        "--set",
        "trainer.max_steps=4",
        "--set",
        "method.decoder.dim=48",
    ]);
    let out = selfsup(&resume, runs.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("last.safetensors") && stderr.contains("shape"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let after = ["config.toml", "metrics.csv", "checkpoints/last.safetensors"].map(snapshot);
    assert!(before == after, "the failed resume changed the run folder");
}
