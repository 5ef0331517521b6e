//! Text SSL methods, one file each. Adding one is its file plus one line
//! in the list below (docs/architecture.md, "Adding a method").

use crate::registry::Text;

#[cfg(test)]
mod smoke;

selfsup_train::methods! { Text;
    next_token::NextToken,
    masked_lm::MaskedLm,
    bert::Bert,
}
