"""Does a small masked-LM learn to copy its neighbour? The PyTorch twin of
`selfsup train text-mlm` (character level, 4 blocks of 128, 4 heads, 128
positions, batches of 16, BERT's 80/10/10 masking of 15 %, AdamW 1e-3 with
100 warmup steps, GPT-2's N(0, 0.02) init, tied MLM head) on a corpus of
doubled letters (`qq mm rr ...`), where a masked letter equals its
neighbour. Writes the corpus to argv[1] so that selfsup trains on the
same file:

    .venv-reference/bin/python benches/reference/mlm_twins_probe.py /tmp/twins.txt [steps]
    target/release/selfsup train text-mlm --data /tmp/twins.txt --set trainer.max_steps=400

With ALIBI=1 in the environment the learned positions stay but attention
also gets ALiBi's distance biases (−m_h·|i − j|, slopes 1/4 … 1/256 for 4
heads), as `positions = "alibi"` does in selfsup (without the learned table).
"""
import os
import random
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0); random.seed(0)
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 400
LETTERS = 'abcdefghijklmnopqrstuvwxyz'
text = ''.join(c + c + ' ' for c in (random.choice(LETTERS) for _ in range(200000)))
open(sys.argv[1], 'w').write(text)
chars=sorted(set(text)); V=len(chars); ids=torch.tensor([chars.index(c) for c in text])
MASK=V; D=128; T=128; B=16
ALIBI=os.environ.get('ALIBI')=='1'
slopes=torch.tensor([2.0**(-8*(h+1)/4) for h in range(4)])
pos=torch.arange(T); BIAS=-slopes[:,None,None]*(pos[None,:]-pos[:,None]).abs()[None].float()
class Block(nn.Module):
    def __init__(s):
        super().__init__(); s.n1=nn.LayerNorm(D); s.qkv=nn.Linear(D,3*D); s.proj=nn.Linear(D,D); s.n2=nn.LayerNorm(D); s.f1=nn.Linear(D,4*D); s.f2=nn.Linear(4*D,D)
    def forward(s,x):
        b,t,d=x.shape; q,k,v=s.qkv(s.n1(x)).view(b,t,3,4,d//4).permute(2,0,3,1,4)
        a=F.scaled_dot_product_attention(q,k,v,attn_mask=BIAS[:, :t, :t] if ALIBI else None).transpose(1,2).reshape(b,t,d)
        x=x+s.proj(a); return x+s.f2(F.gelu(s.f1(s.n2(x))))
class M(nn.Module):
    def __init__(s):
        super().__init__(); s.tok=nn.Embedding(V+1,D); s.pos=nn.Embedding(T,D); s.blocks=nn.ModuleList([Block() for _ in range(4)]); s.n=nn.LayerNorm(D)
        s.dense=nn.Linear(D,D); s.hn=nn.LayerNorm(D); s.bias=nn.Parameter(torch.zeros(V+1))
        for p in s.parameters():
            if p.dim()>1: nn.init.normal_(p,0,0.02)
    def forward(s,x):
        h=s.tok(x)+s.pos(torch.arange(x.shape[1]))
        for b in s.blocks: h=b(h)
        h=s.hn(F.gelu(s.dense(s.n(h)))); return h@s.tok.weight.T+s.bias
m=M(); opt=torch.optim.AdamW(m.parameters(),lr=1e-3,weight_decay=0.01)
for step in range(STEPS):
    starts=torch.randint(0,len(ids)-T,(B,)); x=torch.stack([ids[i:i+T] for i in starts]); y=x.clone()
    sel=torch.rand(x.shape)<0.15; y[~sel]=-100; r=torch.rand(x.shape)
    inp=x.clone(); inp[sel&(r<0.8)]=MASK; rnd=sel&(r>=0.8)&(r<0.9); inp[rnd]=torch.randint(0,V,(int(rnd.sum()),))
    lr=1e-3*min(1,(step+1)/100); 
    for g in opt.param_groups: g['lr']=lr
    loss=F.cross_entropy(m(inp).view(-1,V+1),y.view(-1),ignore_index=-100); opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(),1.0); opt.step()
    if step % 50 == 0 or step == STEPS - 1: print(step, round(loss.item(),3), flush=True)
