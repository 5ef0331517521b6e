"""Writes torchvision's outputs of the image ops with fixed parameters, so the
data crate's augmentations can be checked against them
(crates/data/tests/augment_matches_torchvision.rs). We match torchvision's
tensor path on uint8 images (its PIL path rounds differently); the resize is
bilinear with align_corners=False and antialias=False.

    .venv-reference/bin/python benches/reference/augment_fixtures.py
"""
import torch
import torchvision.transforms.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
images = torch.randint(0, 256, (2, 3, 20, 24), dtype=torch.uint8)
out = {"input": images}
for i, img in enumerate(images):
    out[f"{i}.hflip"] = F.hflip(img)
    out[f"{i}.brightness_1.4"] = F.adjust_brightness(img, 1.4)
    out[f"{i}.brightness_0.6"] = F.adjust_brightness(img, 0.6)
    out[f"{i}.contrast_1.3"] = F.adjust_contrast(img, 1.3)
    out[f"{i}.contrast_0.5"] = F.adjust_contrast(img, 0.5)
    out[f"{i}.saturation_1.5"] = F.adjust_saturation(img, 1.5)
    out[f"{i}.saturation_0.3"] = F.adjust_saturation(img, 0.3)
    out[f"{i}.grayscale"] = F.rgb_to_grayscale(img, num_output_channels=3)
    out[f"{i}.solarize_128"] = F.solarize(img, 128)
    out[f"{i}.hue_0.1"] = F.adjust_hue(img, 0.1)
    out[f"{i}.hue_-0.3"] = F.adjust_hue(img, -0.3)
    out[f"{i}.blur_5_1.2"] = F.gaussian_blur(img, [5, 5], [1.2, 1.2])
    out[f"{i}.blur_9_0.7"] = F.gaussian_blur(img, [9, 9], [0.7, 0.7])
    # top, left, height, width, then the output size: an upscale and a downscale.
    out[f"{i}.resized_crop_up"] = F.resized_crop(img, 3, 5, 9, 11, [16, 16], antialias=False)
    out[f"{i}.resized_crop_down"] = F.resized_crop(img, 1, 2, 18, 20, [8, 8], antialias=False)
save_file({k: v.contiguous() for k, v in out.items()}, "crates/data/tests/fixtures/augment.safetensors")
print(len(out), "tensors")
