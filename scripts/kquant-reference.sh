#!/usr/bin/env bash
# Regenerates tests/fixtures/kquants/{q4_k,q5_k,q6_k}.bin: llama.cpp's own reference k-quant
# encoders (quantize_row_q{4,5,6}_K_ref in ggml/src/ggml-quants.c), compiled from a llama.cpp
# checkout, applied to tests/fixtures/kquants/input.f32. The unit tests in
# crates/laser-model/src/gguf/quantize_k.rs assert laser's encoders write these bytes exactly.
# Dev-only: needs a C compiler with _Float16 (gcc >= 12) and a llama.cpp source tree; nothing of
# llama.cpp is kept in this repository.
#
# Usage: scripts/kquant-reference.sh LLAMA_CPP_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="${1:?usage: scripts/kquant-reference.sh LLAMA_CPP_DIR}/ggml/src/ggml-quants.c"
[ -f "$src" ] || { echo "error: $src not found" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Cut the helpers and the three reference encoders out of ggml-quants.c (each runs from its
# signature to the first line that is a lone `}`) and wrap them with the block layouts.
python3 - "$src" "$work/kref.c" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
wanted = [r"static inline int nearest_int\(", r"static float make_qx_quants\(",
          r"static float make_qkx2_quants\(", r"static inline void get_scale_min_k4\(",
          r"void quantize_row_q4_K_ref\(", r"void quantize_row_q5_K_ref\(",
          r"void quantize_row_q6_K_ref\("]
parts = []
for pattern in wanted:
    start = next(i for i, l in enumerate(lines) if re.match(pattern, l))
    end = next(i for i in range(start, len(lines)) if lines[i] == "}")
    parts.append("\n".join(lines[start:end + 1]))
head = r"""
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#define GGML_RESTRICT
#define QK_K 256
#define GROUP_MAX_EPS 1e-15f
#define MIN(a,b) ((a)<(b)?(a):(b))
#define MAX(a,b) ((a)>(b)?(a):(b))
typedef uint16_t ggml_half;
static ggml_half GGML_FP32_TO_FP16(float f) { _Float16 h = (_Float16)f; uint16_t u; memcpy(&u, &h, 2); return u; }
static float GGML_FP16_TO_FP32(ggml_half u) { _Float16 h; memcpy(&h, &u, 2); return (float)h; }
typedef struct { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qs[QK_K/2]; } block_q4_K;
typedef struct { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qh[QK_K/8]; uint8_t qs[QK_K/2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K/2]; uint8_t qh[QK_K/4]; int8_t scales[QK_K/16]; ggml_half d; } block_q6_K;
"""
main = r"""
int main(int argc, char **argv) {
  int ty = atoi(argv[1]);
  FILE *f = fopen(argv[2], "rb"); fseek(f, 0, SEEK_END); long n = ftell(f) / 4; fseek(f, 0, SEEK_SET);
  float *x = malloc(n * 4); if (fread(x, 4, n, f) != (size_t)n) return 1; fclose(f);
  size_t bs = ty == 4 ? sizeof(block_q4_K) : ty == 5 ? sizeof(block_q5_K) : sizeof(block_q6_K);
  void *y = calloc(n / QK_K, bs);
  if (ty == 4) quantize_row_q4_K_ref(x, y, n); else if (ty == 5) quantize_row_q5_K_ref(x, y, n); else quantize_row_q6_K_ref(x, y, n);
  fwrite(y, bs, n / QK_K, stdout); return 0;
}
"""
open(sys.argv[2], "w").write(head + "\n\n".join(parts) + main)
PY
cc -O2 -o "$work/kref" "$work/kref.c" -lm
fixtures="$root/tests/fixtures/kquants"
for t in 4 5 6; do
  "$work/kref" "$t" "$fixtures/input.f32" > "$fixtures/q${t}_k.bin"
done
echo "wrote $fixtures/q4_k.bin q5_k.bin q6_k.bin from $src" >&2
