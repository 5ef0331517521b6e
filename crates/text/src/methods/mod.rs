//! Text SSL methods, one file each. Adding one is its file plus one line
//! in the list below (docs/architecture.md, "Adding a method").

use crate::registry::{Text, TextMethod};

#[cfg(test)]
mod smoke;

selfsup_train::methods! { Text;
    next_token::NextToken,
    masked_lm::MaskedLm,
    bert::Bert,
}

/// The next-token model, when `method` is one (for generation).
pub fn as_next_token(method: &dyn TextMethod) -> Option<&next_token::NextToken> {
    (method as &dyn std::any::Any).downcast_ref()
}

/// The BERT model, when `method` is one (for sentence-pair scores).
pub fn as_bert(method: &dyn TextMethod) -> Option<&bert::Bert> {
    (method as &dyn std::any::Any).downcast_ref()
}
