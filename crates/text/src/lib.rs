//! Text SSL for selfsup: tokenised corpora now; the transformer encoder and
//! decoder and the masked-LM and next-token methods build on them.

pub mod corpus;

pub use corpus::TokenCorpus;
