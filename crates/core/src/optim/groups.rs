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

/// Moves each variable under one of `scales`' module paths (`predictor`
/// covers `predictor.last.weight`, not `predictor_head.bias`) into a copy of
/// its group whose `lr_scale` is that path's; the longest matching path wins.
/// Also returns the paths that matched no variable, so that a misspelt path
/// can be reported instead of silently changing nothing.
pub fn scale_groups(
    groups: Vec<ParamGroup>,
    scales: &[(String, f64)],
) -> (Vec<ParamGroup>, Vec<String>) {
    let mut used = vec![false; scales.len()];
    let mut out = Vec::new();
    for source in groups {
        // One output group per distinct scale index (None: unscaled).
        let mut split: Vec<(Option<usize>, ParamGroup)> = Vec::new();
        for (name, param) in source.names.into_iter().zip(source.params) {
            let matched = scales
                .iter()
                .enumerate()
                .filter(|(_, (path, _))| name == *path || name.starts_with(&format!("{path}.")))
                .max_by_key(|(_, (path, _))| path.len())
                .map(|(index, _)| index);
            let position = split.iter().position(|(key, _)| *key == matched);
            let index = position.unwrap_or_else(|| {
                let lr_scale = matched.map_or(source.lr_scale, |i| source.lr_scale * scales[i].1);
                split.push((
                    matched,
                    ParamGroup {
                        lr_scale,
                        ..group(source.weight_decay)
                    },
                ));
                split.len() - 1
            });
            if let Some(i) = matched {
                used[i] = true;
            }
            split[index].1.names.push(name);
            split[index].1.params.push(param);
        }
        out.extend(split.into_iter().map(|(_, group)| group));
    }
    let unmatched = scales
        .iter()
        .zip(used)
        .filter(|(_, used)| !used)
        .map(|((path, _), _)| path.clone())
        .collect();
    (out, unmatched)
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

    #[test]
    fn scaled_paths_get_their_own_groups() {
        let vs = VarStore::new(tch::Device::Cpu);
        let _encoder = nn::linear(vs.root() / "encoder", 3, 2, Default::default());
        let _predictor = nn::linear(vs.root() / "predictor", 2, 2, Default::default());
        let _last = nn::linear(vs.root() / "predictor" / "last", 2, 2, Default::default());
        let _lookalike = nn::linear(vs.root() / "predictor_head", 2, 2, Default::default());
        let scales = [
            ("predictor".to_string(), 10.0),
            ("predictor.last".to_string(), 2.0),
            ("projector".to_string(), 3.0),
        ];
        let (groups, unmatched) = scale_groups(decay_groups(&vs, 0.05), &scales);
        assert_eq!(unmatched, vec!["projector"]);
        let by_scale = |scale: f64, decay: f64| -> Vec<String> {
            groups
                .iter()
                .filter(|g| g.lr_scale == scale && g.weight_decay == decay)
                .flat_map(|g| g.names.clone())
                .collect()
        };
        assert_eq!(
            by_scale(1.0, 0.05),
            vec!["encoder.weight", "predictor_head.weight"]
        );
        assert_eq!(by_scale(10.0, 0.05), vec!["predictor.weight"]);
        assert_eq!(by_scale(2.0, 0.05), vec!["predictor.last.weight"]);
        assert_eq!(by_scale(10.0, 0.0), vec!["predictor.bias"]);
        assert_eq!(groups.iter().map(|g| g.names.len()).sum::<usize>(), 8);
        assert!(groups.iter().all(|g| g.names.len() == g.params.len()));
    }
}
