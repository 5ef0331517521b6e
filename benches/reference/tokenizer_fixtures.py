"""Fixtures for selfsup's Hugging Face tokenizer support, made with the
`tokenizers` Python package (pinned below): three small tokenizers trained on
the opening of bundled Moby-Dick (byte-level BPE as GPT-2's, WordPiece as
BERT's, Unigram as SentencePiece's) and the ids the package gives for a few
texts, which `crates/data/tests/hf_tokenizers_match_python.rs` checks.

    .venv-reference/bin/python -m pip install tokenizers==0.23.3
    .venv-reference/bin/python benches/reference/tokenizer_fixtures.py
"""
import gzip
import json
import os

import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OUT = os.path.join(ROOT, "crates", "data", "tests", "fixtures", "hf")
VOCAB = 400
# The training text: the first 200,000 characters of the bundled novel. The
# Rust test trains on the same characters (TRAIN_CHARS there).
TRAIN_CHARS = 200_000

TEXTS = [
    "Call me Ishmael. Some years ago—never mind how long precisely—",
    "  Whitespace   runs,\ttabs\nand new lines.  ",
    "Numbers 1851, 3.14 and 100% of CAPITALS; don't, can't, won't!",
    "Ünïcödé: café, naïve, 東京, 🐋 and ﬁ ligatures",
    "",
]


def byte_level_bpe():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    return tok, trainer


def wordpiece():
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.WordPieceTrainer(vocab_size=VOCAB, special_tokens=specials, show_progress=False)
    return tok, trainer


def unigram():
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=VOCAB, special_tokens=["<unk>"], unk_token="<unk>",
                                      show_progress=False)
    return tok, trainer


def main():
    os.makedirs(OUT, exist_ok=True)
    with gzip.open(os.path.join(ROOT, "datasets", "text", "moby-dick.txt.gz"), "rt", encoding="utf-8") as f:
        corpus = f.read()[:TRAIN_CHARS]
    expected = {"tokenizers_version": tokenizers.__version__, "texts": TEXTS, "models": {}}
    for name, make in [("bpe", byte_level_bpe), ("wordpiece", wordpiece), ("unigram", unigram)]:
        tok, trainer = make()
        tok.train_from_iterator(corpus.split("\n"), trainer=trainer)
        if name == "wordpiece":
            cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
            tok.post_processor = processors.TemplateProcessing(
                single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
        tok.save(os.path.join(OUT, f"{name}.json"))
        encodings = [tok.encode(t, add_special_tokens=False).ids for t in TEXTS]
        expected["models"][name] = {
            "vocab_size": tok.get_vocab_size(with_added_tokens=True),
            "ids": encodings,
            "decoded": [tok.decode(ids, skip_special_tokens=False) for ids in encodings],
        }
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {OUT} with tokenizers {tokenizers.__version__}")


if __name__ == "__main__":
    main()
