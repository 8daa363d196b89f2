"""The tiny Gemma 3 oracle fixture (tests/fixtures/tiny/gemma3/), in the layout of the other eleven
families' (shared/reference/make_reference.py): a seeded random Gemma3ForCausalLM saved in HF
layout, and what HF computes for it in float64 — logits for the same 3x9 token ids, the loss (mean
NLL of the last 2 tokens of each sequence), dL/dW of every 2-D matrix, and diag(U^T G V).

The tiny config exercises what differs from Gemma 2: a sliding window (4) shorter than the 9-token
sequences on layer 0 and full attention on layer 1, different RoPE bases per layer type, linear
RoPE scaling on the full layer, per-head q/k norms, query_pre_attn_scalar != head_dim.
Usage: python scripts/make-gemma3-reference.py OUTDIR   (transformers >= 5.2, torch)"""
import json, os, sys
import numpy as np
import torch
from safetensors.torch import save_file
import transformers as tf

out = os.path.join(sys.argv[1], 'gemma3')
V = 512
cfg = tf.Gemma3TextConfig(vocab_size=V, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=24,
    max_position_embeddings=128, sliding_window=4, layer_types=['sliding_attention', 'full_attention'],
    rope_parameters={'full_attention': {'rope_type': 'linear', 'rope_theta': 1000000.0, 'factor': 2.0},
                     'sliding_attention': {'rope_type': 'default', 'rope_theta': 10000.0}},
    pad_token_id=0, bos_token_id=2, eos_token_id=1, initializer_range=0.2)
rng = np.random.default_rng(0)
ids = rng.integers(3, V, size=(3, 9))
os.makedirs(out, exist_ok=True)
torch.manual_seed(1)
m = tf.Gemma3ForCausalLM._from_config(cfg, attn_implementation='eager').eval()
# Gemma initialises its (1 + w) norm weights at 0; random ones make a mistake in them show.
with torch.no_grad():
    for name, p in m.named_parameters():
        if name.endswith('norm.weight'):
            p.normal_(0.0, 0.2)
m.save_pretrained(out, safe_serialization=True)
m = m.double()
x = torch.tensor(ids)
logits = m(input_ids=x).logits
lp = logits[:, :-1].log_softmax(-1)
tgt = x[:, 1:]
sel = torch.zeros_like(tgt, dtype=torch.bool)
sel[:, -2:] = True
loss = -(lp[sel].gather(-1, tgt[sel][:, None]).squeeze(-1)).mean()
m.zero_grad()
loss.backward()
tensors = {'input_ids': x.to(torch.int64), 'logits': logits.detach().float()}
meta = {'family': 'gemma3', 'hf_class': 'Gemma3ForCausalLM', 'loss': loss.item(),
        'loss_definition': 'mean NLL of the last 2 tokens of each sequence given their prefix',
        'mask_token_id': None, 'transformers': tf.__version__, 'torch': torch.__version__, 'matrices': {}}
for pname, p in m.named_parameters():
    if p.dim() != 2 or p.grad is None or 'embed' in pname:
        continue
    W = p.detach().numpy(); G = p.grad.detach().numpy()
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    g_sigma = np.einsum('ij,ik,kj->j', U, G, Vt.T)  # diag(U^T G V)
    tensors['grad.' + pname] = torch.from_numpy(G).float()
    tensors['sigma.' + pname] = torch.from_numpy(s).float()
    tensors['grad_sigma.' + pname] = torch.from_numpy(g_sigma).float()
    meta['matrices'][pname] = list(W.shape)
save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, 'reference.safetensors'))
json.dump(meta, open(os.path.join(out, 'reference.json'), 'w'), indent=1)
print('gemma3 loss', round(loss.item(), 6), len(meta['matrices']), 'matrices')
