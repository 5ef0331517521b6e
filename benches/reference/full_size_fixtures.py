"""Fixtures for cropping full-size photographs in source coordinates
(crates/data/tests/full_size_crops.rs): a non-square photo of ImageNet's
size, re-encoded from ../shared/datasets/photos (Getty Open Content, CC0),
decoded as torchvision's ImageFolder does (PIL), and cropped with
torchvision's resized_crop on the tensor path (bilinear, no antialias) at
boxes given in the photo's own pixels; plus patches of PIL's full decode and
of its draft-mode (DCT 1/2) decode, to check the decoder itself.

    .venv-reference/bin/python benches/reference/full_size_fixtures.py
"""
import torchvision.transforms.functional as F
from PIL import Image
from safetensors.torch import save_file

SOURCE = "../shared/datasets/photos/nagasaki-boats.jpg"
PHOTO = "crates/data/tests/fixtures/photo.jpg"

Image.open(SOURCE).convert("RGB").resize((500, 333), Image.BICUBIC).save(PHOTO, quality=90)
photo = F.pil_to_tensor(Image.open(PHOTO).convert("RGB"))
assert photo.shape == (3, 333, 500), photo.shape

# name: (top, left, height, width, output side); must match the test.
BOXES = {
    "wide": (13, 110, 300, 380, 96),
    "tall": (40, 7, 280, 150, 64),
    "small": (200, 400, 40, 52, 64),
}
out = {}
for name, (top, left, height, width, side) in BOXES.items():
    out[f"crop_{name}"] = F.resized_crop(photo, top, left, height, width, [side, side], antialias=False)
out["full_patch"] = photo[:, 100:164, 200:264]

draft = Image.open(PHOTO)
draft.draft("RGB", (250, 166))  # Pillow picks scale min(500 // 250, 333 // 166) = 2
draft = draft.convert("RGB")
assert draft.size == (250, 167), draft.size
out["half_patch"] = F.pil_to_tensor(draft)[:, 50:114, 100:164]

save_file({k: v.contiguous() for k, v in out.items()}, "crates/data/tests/fixtures/full_size.safetensors")
print(len(out), "tensors")
