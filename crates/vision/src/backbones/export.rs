//! Weights with PyTorch's names, so a PyTorch user can load our backbones:
//! our ViT uses timm's parameter names already (`patch_embed.proj.weight`,
//! `blocks.0.attn.qkv.weight`, …); export adds timm's `pos_embed` (a fixed
//! buffer here, a parameter there) and removes the method's prefix.

use super::pos_embed::sincos_2d;
use super::{BackboneConfig, VisionTransformer};
use crate::{Error, Result};
use tch::nn::VarStore;
use tch::Tensor;

/// The variables under `prefix`, detached, with the prefix removed.
fn strip_prefix(vs: &VarStore, prefix: &str) -> Vec<(String, Tensor)> {
    vs.variables()
        .into_iter()
        .filter_map(|(name, t)| {
            name.strip_prefix(prefix)
                .map(|n| (n.to_string(), t.detach()))
        })
        .collect()
}

/// timm-named tensors of the ViT whose variables live in `vs` under `prefix`
/// (e.g. `encoder.` inside MAE): `timm.create_model(...).load_state_dict` takes them.
pub fn export_timm(vit: &VisionTransformer, vs: &VarStore, prefix: &str) -> Vec<(String, Tensor)> {
    let mut out = strip_prefix(vs, prefix);
    out.push(("pos_embed".into(), vit.pos_embed().detach()));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The backbone under `prefix` in `vs` with PyTorch's names: timm's for a
/// ViT (plus its `pos_embed`), torchvision's for a ResNet (plus the
/// `num_batches_tracked` counters its batch norms carry), ours for the small CNN.
pub fn export_backbone(
    config: &BackboneConfig,
    vs: &VarStore,
    prefix: &str,
) -> Vec<(String, Tensor)> {
    let mut out = strip_prefix(vs, prefix);
    if let Some(vit) = config.vit() {
        let positions = sincos_2d(vit.dim, vit.grid(), vs.device());
        let pos_embed =
            Tensor::cat(&[positions.zeros_like().narrow(0, 0, 1), positions], 0).unsqueeze(0);
        out.push(("pos_embed".into(), pos_embed));
    }
    if matches!(config, BackboneConfig::Resnet(_)) {
        let counters: Vec<(String, Tensor)> = out
            .iter()
            .filter_map(|(n, _)| n.strip_suffix(".running_mean"))
            .map(|bn| (format!("{bn}.num_batches_tracked"), Tensor::from(0i64)))
            .collect();
        out.extend(counters);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Loads timm-named tensors (a timm ViT's `state_dict`, or our export) into the
/// ViT under `prefix` in `vs`. Every tensor the ViT needs must be present with
/// its shape; the error names the first that is not.
pub fn load_timm(
    vit: &mut VisionTransformer,
    vs: &VarStore,
    prefix: &str,
    named: &[(String, Tensor)],
) -> Result<()> {
    let find = |key: &str, shape: &[i64]| -> Result<&Tensor> {
        let found = named.iter().find(|(n, _)| n == key).map(|(_, t)| t);
        match found {
            Some(t) if t.size() == shape => Ok(t),
            Some(t) => Err(Error::Weights(format!(
                "`{key}` has shape {:?}, the model needs {shape:?}",
                t.size()
            ))),
            None => Err(Error::Weights(format!("no tensor `{key}`"))),
        }
    };
    for (name, mut var) in vs.variables() {
        if let Some(key) = name.strip_prefix(prefix) {
            let source = find(key, &var.size())?;
            tch::no_grad(|| var.copy_(source));
        }
    }
    let pos = find("pos_embed", &vit.pos_embed().size())?;
    vit.set_pos_embed(pos.to_device(vs.device()).detach());
    Ok(())
}
