"""Builds the full-size JPEG benchmark set of `cargo xtask bench data
--full-size`: COUNT JPEGs (default 10,000) with the size and statistics of
ImageNet's (about 400 x 350 on average, quality 90), half of them crops of
the real photographs in ../shared/datasets/photos (random boxes of 30-100 %
of the side, resized), half CIFAR-10 test images upscaled, in an ImageFolder
`OUT/train/c0 ... c9`. Seeded, so every machine builds the same set; it is
not committed.

With --labelled it builds a set to train and evaluate on instead: CIFAR-10
upscaled to those sizes with its real classes, COUNT training images from
CIFAR's training split in `OUT/train/<class>` and COUNT / 5 held-out ones
from its test split in `OUT/val/<class>` (the `fullsize-cpu` recipe).

    .venv-reference/bin/python benches/reference/make_full_size_set.py OUT [--count 10000] [--labelled]
"""
import argparse
import io
import os
import random
import tarfile

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "shared", "datasets")


def sizes(rng):
    """A width and height around ImageNet's average (about 400 x 350)."""
    width = rng.randint(300, 500)
    aspect = rng.uniform(0.95, 1.35)
    return width, max(200, min(600, int(width / aspect)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--labelled", action="store_true")
    args = parser.parse_args()
    rng = random.Random(0)
    if args.labelled:
        labelled(args.out, args.count, rng)
        return
    photos_dir = os.path.join(SHARED, "photos")
    photos = [Image.open(os.path.join(photos_dir, n)).convert("RGB")
              for n in sorted(os.listdir(photos_dir)) if n.endswith(".jpg")]
    with tarfile.open(os.path.join(SHARED, "cifar10", "cifar10-jpeg.tar.gz")) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("test/") and m.name.endswith(".jpg")]
        members = members[: args.count // 2 + 1]
        cifar = [Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB") for m in members]
    for c in range(10):
        os.makedirs(os.path.join(args.out, "train", f"c{c}"), exist_ok=True)
    for i in range(args.count):
        width, height = sizes(rng)
        if i % 2 == 0:
            photo = photos[rng.randrange(len(photos))]
            side = rng.uniform(0.3, 1.0)
            w, h = int(photo.width * side), int(photo.height * side)
            left, top = rng.randint(0, photo.width - w), rng.randint(0, photo.height - h)
            image = photo.crop((left, top, left + w, top + h)).resize((width, height), Image.BICUBIC)
        else:
            image = cifar[(i // 2) % len(cifar)].resize((width, height), Image.BICUBIC)
        image.save(os.path.join(args.out, "train", f"c{i % 10}", f"{i:05d}.jpg"), quality=90)
    print(f"{args.count} JPEGs in {args.out}/train")


def labelled(out, count, rng):
    """CIFAR-10 upscaled, real classes: train from its train split, val from test."""
    # Read the archive once, in order (a .tar.gz cannot seek back cheaply).
    files = {}
    with tarfile.open(os.path.join(SHARED, "cifar10", "cifar10-jpeg.tar.gz")) as tar:
        for m in tar:
            if m.isfile() and m.name.endswith(".jpg"):
                files[m.name] = tar.extractfile(m).read()
    for split, source, n in [("train", "train/", count), ("val", "test/", count // 5)]:
        names = sorted(name for name in files if name.startswith(source))
        rng.shuffle(names)
        for name in names[:n]:
            label = name.split("/")[-2]
            os.makedirs(os.path.join(out, split, label), exist_ok=True)
            image = Image.open(io.BytesIO(files[name])).convert("RGB")
            width, height = sizes(rng)
            path = os.path.join(out, split, label, os.path.basename(name))
            image.resize((width, height), Image.BICUBIC).save(path, quality=90)
        print(f"{n} JPEGs in {out}/{split}")


if __name__ == "__main__":
    main()
