"""Writes a timm ViT's weights, an input and timm's output for that input, so
crates/vision/tests/timm_export.rs can check that our ViT exports timm's names
and shapes, and that with timm's weights it computes timm's features.

    .venv-reference/bin/python benches/reference/export_fixtures.py
"""
import timm
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
model = timm.models.vision_transformer.VisionTransformer(
    img_size=8, patch_size=4, in_chans=1, embed_dim=16, depth=2, num_heads=2, mlp_ratio=2.0,
    num_classes=0, global_pool="token", class_token=True,
).eval()
# Non-trivial norms and biases, so a swapped weight or bias cannot go unnoticed.
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("bias") or "norm" in name:
            p.add_(torch.randn_like(p) * 0.1)
images = torch.randn(3, 1, 8, 8)
with torch.no_grad():
    tokens = model.forward_features(images)  # [3, 1 + 4, 16], after the final norm
tensors = {f"weights.{k}": v.contiguous() for k, v in model.state_dict().items()}
tensors["input"] = images
tensors["tokens"] = tokens
save_file(tensors, "crates/vision/tests/fixtures/timm_vit.safetensors")
print(sorted(model.state_dict().keys()))
