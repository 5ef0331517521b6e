//! Text SSL for selfsup: a transformer (causal or bidirectional) and the
//! next-token (GPT) and masked-LM (BERT) methods, batches from token streams,
//! and language-model evaluation.

pub mod config;
pub mod corpus;
pub mod eval;
pub mod methods;
pub mod probe;
pub mod source;
pub mod transformer;

pub use config::{TextDataConfig, TextMethod, TextMethodConfig, TextRunConfig};
pub use corpus::TokenCorpus;
