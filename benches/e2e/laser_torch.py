#!/usr/bin/env python3
"""The LASER way in PyTorch + HF transformers: the reference `scripts/bench-e2e.sh` compares with.

What a user would run today (LASER's `intervention_*` scripts): one sequence per (item, choice),
a full forward each, the choice with the highest summed answer-token log-probability wins; a
candidate edit replaces a weight with its rank-k SVD approximation and reruns the full evaluation.

Same protocol as `laser eval` (DESIGN.md): BIG-bench multiple-choice prompt = task_prefix +
example_input_prefix + input + example_output_prefix with trailing whitespace stripped, choice
continuation " " + name, prompt and continuation tokenized separately without BOS (with --bos, BOS
before the prompt, for models such as Gemma 3 whose GGUF asks for it); selection split
= first N after the SplitMix64 Fisher–Yates shuffle the Rust code uses. Accuracy in percent,
log-loss = mean over items of the gold continuation's mean per-token NLL.

Dev-only: installed on demand by scripts/bench-e2e.sh into a virtual environment, never a
dependency of the Rust crates. Prints one JSON object.
"""

import argparse
import json
import math
import os
import sys
import time

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        u = (self.next_u64() >> 11) * (1.0 / (1 << 53))
        return min(int(u * n), n - 1)


def split(items, n, seed):
    order = list(range(items))
    rng = SplitMix64(seed)
    for i in range(items - 1, 0, -1):
        j = rng.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return order[:n], order[n:]


def load_bigbench_choice(path):
    task = json.load(open(path, encoding="utf-8"))
    prefix = task.get("task_prefix") or ""
    inp = task.get("example_input_prefix", "\nQ: ")
    out = task.get("example_output_prefix", "\nA: ")
    items = []
    for e in task["examples"]:
        prompt = (prefix + inp + e["input"] + out).rstrip()
        # serde_json keeps object keys sorted; the order only matters on exact ties.
        names = sorted(e["target_scores"])
        scores = [e["target_scores"][k] for k in names]
        gold = max(range(len(names)), key=lambda c: (scores[c], -c))
        items.append((prompt, [" " + k for k in names], gold))
    return items


def apply_edits(model, edits, torch):
    """LASER's rank reduction: W ← U_k Σ_k V_kᵀ with k = max(1, floor(ρ · min(m, n)))."""
    params = dict(model.named_parameters())
    for e in edits:
        if e.get("factor", "svd") != "svd":
            sys.exit(f"laser_torch.py: only factor svd is implemented, got {e['factor']!r}")
        w = params[e["name"]]
        m, n = w.shape
        k = max(1, int(e["rho"] * min(m, n)))
        with torch.no_grad():
            u, s, vh = torch.linalg.svd(w.data.double(), full_matrices=False)
            w.data.copy_(((u[:, :k] * s[:k]) @ vh[:k]).to(w.dtype))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--task", required=True, help="BIG-bench multiple-choice task.json")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=["select", "test", "all"], default="select")
    ap.add_argument("--edits", help="edit list JSON ({\"edits\": [...]}, factor svd)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bos", action="store_true",
                    help="put the tokenizer's BOS before each prompt (Gemma: as `laser` does for a "
                         "model whose GGUF says add_bos_token)")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    folder, name = os.path.split(os.path.abspath(args.gguf))
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
    model.eval()
    load_s = time.perf_counter() - t0

    items = load_bigbench_choice(args.task)
    select, test = split(len(items), args.n, args.seed)
    idx = {"select": select, "test": test, "all": list(range(len(items)))}[args.split]

    t0 = time.perf_counter()
    if args.edits:
        apply_edits(model, json.load(open(args.edits))["edits"], torch)
    edit_s = time.perf_counter() - t0

    def encode(text):
        return tok(text, add_special_tokens=False)["input_ids"]

    t0 = time.perf_counter()
    correct, loss, tokens = 0, 0.0, 0
    with torch.inference_mode():
        for i in idx:
            prompt, choices, gold = items[i]
            p = ([tok.bos_token_id] if args.bos else []) + encode(prompt)
            totals, gold_nll = [], None
            for c, choice in enumerate(choices):
                a = encode(choice)
                ids = torch.tensor([p + a])
                tokens += ids.shape[1]
                logits = model(ids).logits[0]
                lp = torch.log_softmax(logits[len(p) - 1 : -1].double(), dim=-1)
                tok_lp = lp[torch.arange(len(a)), torch.tensor(a)]
                totals.append(float(tok_lp.sum()))
                if c == gold:
                    gold_nll = -float(tok_lp.mean())
            pred = max(range(len(choices)), key=lambda c: (totals[c], -c))
            correct += int(pred == gold)
            loss += gold_nll
    eval_s = time.perf_counter() - t0
    n = len(idx)
    print(
        json.dumps(
            {
                "n": n,
                "accuracy": 100.0 * correct / n,
                "logloss": loss / n,
                "tokens": tokens,
                "seconds": {"load": load_s, "edit": edit_s, "eval": eval_s},
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
