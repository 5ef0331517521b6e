//! Hugging Face `tokenizer.json` files give the ids the `tokenizers` Python
//! package gives (fixtures: `benches/reference/tokenizer_fixtures.py`), and a
//! byte-level BPE trained here equals the one the package trained.

use selfsup_data::hf_tokenizer::HfTokenizer;
use selfsup_data::tokenizer::{SavedTokenizer, Tokenizer};
use std::path::{Path, PathBuf};

/// Characters of Moby-Dick the fixtures' tokenizers were trained on.
const TRAIN_CHARS: usize = 200_000;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf")
}

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_model_kind_encodes_and_decodes_as_the_python_package() {
    let expected = expected();
    let texts: Vec<&str> = expected["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for model in ["bpe", "wordpiece", "unigram"] {
        let want = &expected["models"][model];
        let tokenizer = HfTokenizer::load(&fixtures().join(format!("{model}.json"))).unwrap();
        assert_eq!(
            tokenizer.vocab_size() as u64,
            want["vocab_size"].as_u64().unwrap(),
            "{model}"
        );
        for (i, text) in texts.iter().enumerate() {
            let ids = tokenizer.encode(text).unwrap();
            let want_ids: Vec<u32> = want["ids"][i]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(ids, want_ids, "{model} ids of {text:?}");
            assert_eq!(
                tokenizer.decode(&ids).unwrap(),
                want["decoded"][i].as_str().unwrap(),
                "{model} text of {text:?}"
            );
        }
    }
}

#[test]
fn byte_level_bpe_round_trips_any_text() {
    let tokenizer = HfTokenizer::load(&fixtures().join("bpe.json")).unwrap();
    for text in [
        "plain",
        "  spaces  and\ttabs\n",
        "東京 🐋 café",
        "\u{0}\u{7f}",
    ] {
        assert_eq!(
            tokenizer.decode(&tokenizer.encode(text).unwrap()).unwrap(),
            text
        );
    }
}

#[test]
fn training_a_byte_level_bpe_gives_the_python_packages_vocabulary_and_merges() {
    let corpus = selfsup_data::text::read_corpus(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/text/moby-dick.txt.gz"),
    )
    .unwrap();
    let end = corpus
        .char_indices()
        .nth(TRAIN_CHARS)
        .map_or(corpus.len(), |(i, _)| i);
    let mut trained = HfTokenizer::train_byte_level_bpe(corpus[..end].split('\n'), 400, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    trained.save(&path).unwrap();
    let ours: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let python: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("bpe.json")).unwrap())
            .unwrap();
    assert_eq!(ours["model"]["vocab"], python["model"]["vocab"]);
    assert_eq!(ours["model"]["merges"], python["model"]["merges"]);
    let reloaded = HfTokenizer::load(&path).unwrap();
    assert_eq!(
        reloaded.encode("Call me Ishmael.").unwrap(),
        trained.encode("Call me Ishmael.").unwrap()
    );
}

#[test]
fn a_saved_run_tokenizer_points_at_its_file_and_loads_back() {
    let path = fixtures().join("wordpiece.json");
    let tokenizer = Tokenizer::HuggingFace(Box::new(HfTokenizer::load(&path).unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let saved_path = dir.path().join("tokenizer.toml");
    SavedTokenizer::of(&tokenizer, None)
        .unwrap()
        .write(&saved_path)
        .unwrap();
    let back = SavedTokenizer::read(&saved_path).unwrap().load().unwrap();
    assert_eq!(
        back.encode("the whale").unwrap(),
        tokenizer.encode("the whale").unwrap()
    );
    assert_eq!(back.unit(), "token");
}

#[test]
fn bad_files_and_ids_are_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let error = HfTokenizer::load(&missing).unwrap_err().to_string();
    assert!(error.contains("nope.json"), "{error}");
    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, "{\"model\": 3}").unwrap();
    let error = HfTokenizer::load(&corrupt).unwrap_err().to_string();
    assert!(
        error.contains("corrupt.json") && error.contains("tokenizer.json"),
        "{error}"
    );
    let tokenizer = HfTokenizer::load(&fixtures().join("unigram.json")).unwrap();
    let error = tokenizer.decode(&[5, 400]).unwrap_err().to_string();
    assert!(error.contains("400"), "{error}");
}

/// A `tokenizer.json` with an id past its vocabulary (a crafted or
/// mis-edited file) is refused on load, naming the file and the token,
/// instead of indexing past the model's embedding mid-run.
#[test]
fn a_tokenizer_with_an_id_past_its_size_is_refused_on_load() {
    let text = std::fs::read_to_string(fixtures().join("wordpiece.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["model"]["vocab"]["crafted"] = serde_json::json!(4_000_000_000u64);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, json.to_string()).unwrap();
    let error = HfTokenizer::load(&path).unwrap_err().to_string();
    assert!(error.contains("tokenizer.json"), "{error}");
    assert!(error.contains("\"crafted\" has id 4000000000"), "{error}");
}

/// A syntax error inside the `decoder` section made the `tokenizers`
/// crate panic while parsing (`expect("Helper")`; found by the
/// `tokenizers` fuzz target): it is an error naming the file.
#[test]
fn a_syntax_error_in_the_decoder_section_is_an_error_not_a_panic() {
    let text = std::fs::read_to_string(fixtures().join("wordpiece.json")).unwrap();
    let broken = text.replacen("\"prefix\": \"##\",", "\"prefix\": \"##\"", 1);
    assert_ne!(broken, text);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, broken).unwrap();
    let error = HfTokenizer::load(&path).unwrap_err().to_string();
    assert!(
        error.contains("tokenizer.json") && error.contains("not a Hugging Face"),
        "{error}"
    );
}
