//! Text SSL for selfsup: a transformer (causal or bidirectional), the
//! next-token (GPT) and masked-LM (BERT) methods (each one file in
//! `methods/`, listed once in `methods/mod.rs`), batches from token streams,
//! language-model evaluation, and the text experiment (train, then
//! validation loss against random init; generate, fill-mask, probe).

pub mod corpus;
pub mod data;
pub mod eval;
pub mod experiment;
pub mod finetune;
pub mod generate;
pub mod methods;
pub mod pair_source;
pub mod probe;
pub mod registry;
pub mod source;
pub mod text_data;
pub mod transformer;

pub use corpus::TokenCorpus;
pub use data::TextDataConfig;
pub use methods::registry;
pub use registry::{Text, TextContext, TextMethod, TextRegistry, TextRunConfig};
