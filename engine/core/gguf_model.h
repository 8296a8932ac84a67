// engine/core/gguf_model.h: a GGUF file (engine/core/gguf.h) as a model: its metadata as a
// ModelConfig and its tensors as a TensorSource under the HF names the weight map uses
// (engine/core/weights.h), dequantized to fp32 on read (engine/core/gguf_quant.h).
// Families: general.architecture llama, qwen2, qwen3 (the dense ones the engine runs); anything else
// is refused naming the key. Metadata -> config (prefix A = the architecture name):
//   A.embedding_length -> H, A.feed_forward_length -> I, A.block_count -> L, A.attention.head_count
//   -> nh, A.attention.head_count_kv -> nkv (default nh), A.attention.key_length -> hd (default H / nh),
//   A.attention.layer_norm_rms_epsilon, A.rope.freq_base (default 10000), A.context_length,
//   A.vocab_size (else the length of tokenizer.ggml.tokens, else token_embd's rows),
//   tokenizer.ggml.bos_token_id / eos_token_id; tied embeddings when there is no output.weight;
//   q/k/v biases when blk.0.attn_q.bias exists. Llama-3 rope scaling (a rope_freqs tensor) is refused.
// Tensor names: token_embd -> model.embed_tokens, output_norm -> model.norm, output -> lm_head,
// blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, attn_q_norm, attn_k_norm, ffn_norm,
// ffn_gate, ffn_up, ffn_down} -> model.layers.N.{input_layernorm, self_attn.q_proj, ..., mlp.down_proj}.
// Q and K rows: GGUF's llama converter permutes them for an interleaved RoPE (per head, row
// h*hd + 2i + j holds HF row h*hd + j*hd/2 + i); for general.architecture llama the source undoes it
// (weights and biases), so the tensors come out in HF order. qwen2 / qwen3 files are not permuted.
#pragma once
#include <memory>
#include <string>

#include "engine/core/config.h"
#include "engine/core/gguf.h"
#include "engine/core/weights.h"

namespace minfer {

// Whether a model spec names a GGUF file (its name ends in ".gguf").
bool is_gguf_path(const std::string& spec);

// The config of a GGUF model. Throws BadInput naming the file and the metadata key at fault.
ModelConfig config_from_gguf(const GgufFile& f);

// The file's tensors under HF names, fp32 (meta dtype "F32"), Q/K rows in HF order (see above).
std::unique_ptr<TensorSource> gguf_tensor_source(std::shared_ptr<const GgufFile> f, const ModelConfig& c);

// The GGUF tensor name that serves an HF name, or "" if none does.
std::string gguf_name_for(const std::string& hf_name);

}  // namespace minfer
