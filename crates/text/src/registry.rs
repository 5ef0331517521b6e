//! The text modality: what its methods build into ([`TextMethod`]), what
//! building needs ([`TextContext`]) and the config type of a text run. The
//! methods themselves are listed once, in `methods/mod.rs`.

use crate::data::TextDataConfig;
use crate::source::Objective;
use crate::transformer::Transformer;
use selfsup_train::experiment::AsMethod;
use selfsup_train::registry::{MethodChoice, Modality, Registry};
use selfsup_train::{FeatureExtractor, Method, RunConfig};
use tch::Tensor;

/// Text: methods read token ids; tasks are `text-<method>`.
#[derive(Debug)]
pub struct Text;

impl Modality for Text {
    type Built = dyn TextMethod;
    type Context = TextContext;
    const NAME: &'static str = "text";
    const DEFAULT_RECIPE: &'static str = "moby-dick";
}

/// What building a text method needs besides its config.
#[derive(Debug, Clone, Copy)]
pub struct TextContext {
    /// Tokens the tokenizer makes; a method adds its special tokens (masked-LM's mask).
    pub tokenizer_vocab: usize,
}

/// The text registry type.
pub type TextRegistry = Registry<Text>;

/// A text run's config.
pub type TextRunConfig = RunConfig<MethodChoice<Text>, TextDataConfig>;

/// A built text model: a trainer `Method` that also gives logits. (`Any`,
/// so that `methods::as_next_token` and `methods::as_bert` can find the
/// concrete model without this module naming the methods.)
pub trait TextMethod: Method + FeatureExtractor + std::any::Any {
    /// `[batch, tokens]` ids → `[batch, tokens, vocab]` logits.
    fn logits(&self, ids: &Tensor, train: bool) -> Tensor;
    /// The transformer (for features of padded inputs).
    fn transformer(&self) -> &Transformer;
    /// What its training batches ask for.
    fn objective(&self) -> Objective;
    /// Tokens a window holds (the model's context).
    fn context(&self) -> usize {
        self.transformer().config.context as usize
    }
    /// Ids of one text as the model reads it, and where the text starts in
    /// them: `[CLS] text [SEP]` for BERT (as pretrained), the text itself
    /// otherwise.
    fn framed(&self, text: &[u32]) -> (Vec<i64>, usize) {
        (text.iter().map(|&t| i64::from(t)).collect(), 0)
    }
    /// Tokens of text one input holds: the context less the framing.
    fn text_tokens(&self) -> usize {
        self.context()
    }
    /// The mask token's id, when this is a masked-LM (for fill-mask).
    fn mask_id(&self) -> Option<u32> {
        None
    }
}

impl AsMethod for dyn TextMethod {
    fn as_method(&mut self) -> &mut dyn Method {
        self
    }
}
