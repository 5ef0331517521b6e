"""PyTorch reference for `cargo xtask bench quality text-gpt`: a nanoGPT-style
character-level GPT written here, trained with the same resolved config as
selfsup's run, then scored the same way on the validation text.

Mirrors selfsup's model and recipe so that only the code differs:
- vocabulary: the corpus's distinct characters in code-point order; the
  first `train_fraction` of the characters trains, the rest validates;
- model: token + learned position embeddings, pre-LayerNorm blocks (biases
  in linears and norms, attention through `scaled_dot_product_attention`,
  GELU MLP), final LayerNorm, output tied to the token embeddings; GPT-2
  init: N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 depth)), zero
  biases;
- batches: `batch_size` random windows of `context` characters per step
  (nanoGPT's get_batch);
- AdamW (no weight decay on 1-D parameters), warmup then cosine to `min_lr`
  set every step, gradient clipping;
- validation: mean cross-entropy over consecutive windows of `context`
  characters (at most 400), as selfsup's `validation_score`.

Usage: quality_text.py --config CONFIG --data TEXT --threads N [--max-steps S]
Prints one JSON line.
"""

import argparse
import json
import math
import time
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F

from quality_vision import warmup_cosine


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, depth, dropout):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        # The blocks' norms use eps 1e-6 (selfsup shares its block with the ViTs,
        # timm's setting); the final norm PyTorch's default 1e-5.
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        hidden = int(dim * mlp_ratio)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        for linear, residual in ((self.qkv, False), (self.proj, True), (self.fc1, False), (self.fc2, True)):
            std = 0.02 / math.sqrt(2 * depth) if residual else 0.02
            nn.init.normal_(linear.weight, 0.0, std)
            nn.init.zeros_(linear.bias)

    def forward(self, x):
        b, t, d = x.shape
        p = self.dropout if self.training else 0.0
        qkv = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=p, is_causal=True)
        x = x + F.dropout(self.proj(attended.transpose(1, 2).reshape(b, t, d)), p, self.training)
        return x + F.dropout(self.fc2(F.gelu(self.fc1(self.norm2(x)))), p, self.training)


class Gpt(nn.Module):
    def __init__(self, vocab, m):
        super().__init__()
        self.context, self.dropout = m["context"], m.get("dropout", 0.0)
        self.token_embed = nn.Embedding(vocab, m["dim"])
        self.position_embed = nn.Embedding(m["context"], m["dim"])
        nn.init.normal_(self.token_embed.weight, 0.0, 0.02)
        nn.init.normal_(self.position_embed.weight, 0.0, 0.02)
        self.blocks = nn.ModuleList(
            Block(m["dim"], m["heads"], m.get("mlp_ratio", 4.0), m["depth"], self.dropout) for _ in range(m["depth"]))
        self.norm = nn.LayerNorm(m["dim"])

    def forward(self, ids):
        positions = self.position_embed(torch.arange(ids.shape[1], device=ids.device))
        x = F.dropout(self.token_embed(ids) + positions, self.dropout, self.training)
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.token_embed.weight.T


@torch.no_grad()
def validation_loss(model, tokens, length, max_windows=400, batch=32):
    model.eval()
    count = min((len(tokens) - 1) // length, max_windows)
    total, n = 0.0, 0
    for start in range(0, count, batch):
        rows = range(start, min(start + batch, count))
        x = torch.stack([tokens[w * length:w * length + length] for w in rows])
        y = torch.stack([tokens[w * length + 1:w * length + length + 1] for w in rows])
        logits = model(x)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        n += y.numel()
    model.train()
    return total / n


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with open(args.config, "rb") as f:
        config = tomllib.load(f)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data, m, o, tr = config["data"], config["method"]["model"], config["optim"], config["trainer"]
    with open(args.data, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    tokens = torch.tensor([index[c] for c in text], dtype=torch.long)
    split = int(len(tokens) * data.get("train_fraction", 0.9))
    train, val = tokens[:split], tokens[split:]

    model = Gpt(len(chars), m)
    length, batch = m["context"], tr["batch_size"]
    random_init = validation_loss(model, val, length)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": o.get("weight_decay", 0.1)},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=0, betas=(o.get("beta1", 0.9), o.get("beta2", 0.99)), eps=1e-8)
    windows_per_epoch = len(train) // length
    total = tr["epochs"] * (windows_per_epoch // batch)
    for limit in (tr.get("max_steps"), args.max_steps):
        total = min(total, limit or total)
    warmup = o.get("warmup_steps", 100)
    clip = tr.get("grad_clip")
    losses, started = [], time.time()
    for step in range(total):
        lr = warmup_cosine(step, total, warmup, o["lr"], o.get("min_lr", 0.0))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(len(train) - length, (batch,))
        x = torch.stack([train[s:s + length] for s in starts])
        y = torch.stack([train[s + 1:s + length + 1] for s in starts])
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 200 == 0:
            print(f"step {step + 1}/{total} loss {loss.item():.4f} lr {lr:.3g}", flush=True)
    seconds = time.time() - started
    trained = validation_loss(model, val, length)
    print(json.dumps({
        "steps": total, "train_seconds": seconds, "tokens_per_second": total * batch * length / seconds,
        "first_loss": losses[0], "final_loss": losses[-1], "validation_loss": trained,
        "validation_loss_random_init": random_init,
    }))


if __name__ == "__main__":
    main()
