//! Parameter groups: which parameters get weight decay, and at what lr scale.

use tch::{nn::VarStore, Tensor};

/// A set of parameters sharing weight decay and a learning-rate multiplier.
#[derive(Debug)]
pub struct ParamGroup {
    /// Variable names, as in the var store (used as keys in saved state).
    pub names: Vec<String>,
    /// The parameters, in the same order as `names`.
    pub params: Vec<Tensor>,
    /// Decoupled weight decay for this group.
    pub weight_decay: f64,
    /// Multiplies the scheduled learning rate (1.0 for most groups).
    pub lr_scale: f64,
}

/// Splits trainable variables into a decayed group and a no-decay group for
/// biases and normalisation parameters (every variable of one dimension), as
/// the reference SimCLR, MoCo v3 and MAE code do. Names are sorted so the order
/// does not depend on hash maps.
pub fn decay_groups(vs: &VarStore, weight_decay: f64) -> Vec<ParamGroup> {
    let mut variables: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut decay, mut no_decay) = (group(weight_decay), group(0.0));
    for (name, tensor) in variables {
        let target = if tensor.dim() <= 1 {
            &mut no_decay
        } else {
            &mut decay
        };
        target.names.push(name);
        target.params.push(tensor);
    }
    vec![decay, no_decay]
}

fn group(weight_decay: f64) -> ParamGroup {
    ParamGroup {
        names: Vec::new(),
        params: Vec::new(),
        weight_decay,
        lr_scale: 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn;

    #[test]
    fn biases_and_norms_are_not_decayed() {
        let vs = VarStore::new(tch::Device::Cpu);
        let _linear = nn::linear(vs.root() / "fc", 3, 2, Default::default());
        let _norm = nn::layer_norm(vs.root() / "norm", vec![2], Default::default());
        let groups = decay_groups(&vs, 0.05);
        assert_eq!(groups[0].names, vec!["fc.weight"]);
        assert_eq!(groups[0].weight_decay, 0.05);
        assert_eq!(groups[1].names, vec!["fc.bias", "norm.bias", "norm.weight"]);
        assert_eq!(groups[1].weight_decay, 0.0);
    }
}
