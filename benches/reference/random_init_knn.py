"""k-NN top-1 of the reference's backbone at random initialisation, for
several seeds: how much the initial draw alone moves the score that
`cargo xtask bench quality` reports as "random init".

    python random_init_knn.py --config <resolved config.toml> --data <cifar10 imagefolder> --seeds 0 1 2 3 4

Prints one JSON line per seed. Compare with selfsup's side:
`selfsup eval <run> --random-init --set trainer.seed=N`.
"""

import argparse
import json
import os
import tomllib

import torch

from quality_vision import METHODS, extract, knn_top1, read_image_folder


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    with open(args.config, "rb") as f:
        config = tomllib.load(f)
    torch.set_num_threads(args.threads)
    data, m, ev = config["data"], config["method"], config["eval"]
    train_x, train_y, classes = read_image_folder(os.path.join(args.data, data["split"]))
    test_x, test_y, _ = read_image_folder(os.path.join(args.data, data["eval_split"]))
    train_y, test_y = torch.from_numpy(train_y), torch.from_numpy(test_y)
    for seed in args.seeds:
        torch.manual_seed(seed)
        model = METHODS[m["name"]](m)
        with torch.no_grad():
            top1 = knn_top1(extract(model, train_x, data["mean"], data["std"], ev["batch_size"]), train_y,
                            extract(model, test_x, data["mean"], data["std"], ev["batch_size"]), test_y,
                            classes, ev["knn_k"], ev["knn_temperature"])
        print(json.dumps({"seed": seed, "knn_top1_random_init": top1}), flush=True)


if __name__ == "__main__":
    main()
