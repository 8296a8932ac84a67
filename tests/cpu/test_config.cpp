// tests/cpu/test_config.cpp: HF config.json parsing for all six families (transformers 4 and 5
// spellings), HF defaults, every refusal and malformed case (each a BadInput naming the file and the
// field), and the config_to_hf_json round trip.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/core/config.h"
#include "engine/core/error.h"
#include "engine/core/presets.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace minfer;

namespace {

// Published config.json files (abridged to the fields the engine reads, plus a few it ignores).
json llama31_8b() {
  return json::parse(R"({"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":4096,
    "intermediate_size":14336,"num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,
    "vocab_size":128256,"max_position_embeddings":131072,"rms_norm_eps":1e-05,"rope_theta":500000.0,
    "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
                    "original_max_position_embeddings":8192,"rope_type":"llama3"},
    "hidden_act":"silu","attention_bias":false,"mlp_bias":false,"tie_word_embeddings":false,
    "torch_dtype":"bfloat16","bos_token_id":128000,"eos_token_id":[128001,128008,128009]})");
}
json qwen25_05b() {
  return json::parse(R"({"model_type":"qwen2","hidden_size":896,"intermediate_size":4864,
    "num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,"vocab_size":151936,
    "max_position_embeddings":32768,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"sliding_window":32768,
    "use_sliding_window":false,"max_window_layers":24,"tie_word_embeddings":true,"torch_dtype":"bfloat16",
    "bos_token_id":151643,"eos_token_id":151643,"hidden_act":"silu"})");
}
json qwen3_06b() {
  return json::parse(R"({"model_type":"qwen3","hidden_size":1024,"intermediate_size":3072,
    "num_hidden_layers":28,"num_attention_heads":16,"num_key_value_heads":8,"head_dim":128,
    "vocab_size":151936,"max_position_embeddings":40960,"rms_norm_eps":1e-06,"rope_theta":1000000,
    "rope_scaling":null,"sliding_window":null,"use_sliding_window":false,"attention_bias":false,
    "tie_word_embeddings":true,"torch_dtype":"bfloat16","bos_token_id":151643,"eos_token_id":151645})");
}
json qwen3_30b() {
  return json::parse(R"({"model_type":"qwen3_moe","hidden_size":2048,"intermediate_size":6144,
    "moe_intermediate_size":768,"num_hidden_layers":48,"num_attention_heads":32,"num_key_value_heads":4,
    "head_dim":128,"vocab_size":151936,"max_position_embeddings":40960,"rms_norm_eps":1e-06,
    "rope_theta":1000000.0,"num_experts":128,"num_experts_per_tok":8,"norm_topk_prob":true,
    "decoder_sparse_step":1,"mlp_only_layers":[],"tie_word_embeddings":false,"torch_dtype":"bfloat16"})");
}
json mixtral_8x7b() {
  return json::parse(R"({"model_type":"mixtral","hidden_size":4096,"intermediate_size":14336,
    "num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":32000,
    "max_position_embeddings":32768,"rms_norm_eps":1e-05,"rope_theta":1000000.0,"sliding_window":null,
    "num_local_experts":8,"num_experts_per_tok":2,"tie_word_embeddings":false,"torch_dtype":"bfloat16",
    "bos_token_id":1,"eos_token_id":2})");
}
json olmoe_1b7b() {
  return json::parse(R"({"model_type":"olmoe","hidden_size":2048,"intermediate_size":1024,
    "num_hidden_layers":16,"num_attention_heads":16,"num_key_value_heads":16,"vocab_size":50304,
    "max_position_embeddings":4096,"rms_norm_eps":1e-05,"rope_theta":10000.0,"num_experts":64,
    "num_experts_per_tok":8,"norm_topk_prob":false,"clip_qkv":null,"attention_bias":false,
    "tie_word_embeddings":false,"torch_dtype":"bfloat16","bos_token_id":null,"eos_token_id":50279})");
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "minfer_cfg_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& text) {
    std::string p = (dir_ / ("config" + std::to_string(n_++) + ".json")).string();
    std::ofstream(p) << text;
    return p;
  }
  ModelConfig load(const json& j) { return load_config_json(write(j.dump())); }
  // Loading `text` must throw BadInput naming this file and `field`; returns the message.
  std::string expect_bad(const std::string& text, const std::string& field) {
    std::string p = write(text);
    try {
      load_config_json(p);
    } catch (const BadInput& e) {
      EXPECT_EQ(e.file(), p);
      EXPECT_EQ(e.field(), field) << e.what();
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos);
      EXPECT_EQ(e.exit_code(), 2);
      return e.what();
    }
    ADD_FAILURE() << "no BadInput for field " << field << " in " << text;
    return "";
  }
  fs::path dir_;
  int n_ = 0;
};

TEST_F(ConfigTest, Llama31) {
  ModelConfig c = load(llama31_8b());
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.hidden, 4096);
  EXPECT_EQ(c.intermediate, 14336);
  EXPECT_EQ(c.layers, 32);
  EXPECT_EQ(c.heads, 32);
  EXPECT_EQ(c.kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);  // default H / nh
  EXPECT_EQ(c.vocab, 128256);
  EXPECT_EQ(c.max_position, 131072);
  EXPECT_DOUBLE_EQ(c.rms_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_TRUE(c.rope_scaling.llama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position, 8192);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.qk_norm, QkNorm::None);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_EQ(c.torch_dtype, DType::BF16);
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_id, 128001);  // first of the list
  EXPECT_FALSE(c.is_moe());
  EXPECT_FALSE(c.layer_is_moe(0));
}

TEST_F(ConfigTest, Qwen2AlwaysHasQkvBias) {
  ModelConfig c = load(qwen25_05b());
  EXPECT_EQ(c.arch, Arch::Qwen2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.kv_heads, 2);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.attention_out_bias);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(c.qk_norm, QkNorm::None);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
}

TEST_F(ConfigTest, Qwen3PerHeadQkNorm) {
  ModelConfig c = load(qwen3_06b());
  EXPECT_EQ(c.arch, Arch::Qwen3);
  EXPECT_EQ(c.head_dim, 128);  // explicit, not H / nh (64)
  EXPECT_EQ(c.q_dim(), 2048);
  EXPECT_EQ(c.kv_dim(), 1024);
  EXPECT_EQ(c.qk_norm, QkNorm::PerHead);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.rope_scaling.llama3);
  EXPECT_EQ(c.eos_token_id, 151645);
}

TEST_F(ConfigTest, Qwen3HeadDimDefaultsTo128) {
  json j = qwen3_06b();
  j.erase("head_dim");
  EXPECT_EQ(load(j).head_dim, 128);
}

TEST_F(ConfigTest, Qwen3Moe) {
  ModelConfig c = load(qwen3_30b());
  EXPECT_EQ(c.arch, Arch::Qwen3Moe);
  EXPECT_EQ(c.num_experts, 128);
  EXPECT_EQ(c.top_k, 8);
  EXPECT_EQ(c.moe_intermediate, 768);
  EXPECT_EQ(c.intermediate, 6144);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.router_order, RouterOrder::SoftmaxThenTopk);
  EXPECT_EQ(c.qk_norm, QkNorm::PerHead);
  for (int l = 0; l < c.layers; ++l) EXPECT_TRUE(c.layer_is_moe(l));
}

TEST_F(ConfigTest, Qwen3MoeSparseStepAndMlpOnlyLayers) {
  json j = qwen3_30b();
  j["num_hidden_layers"] = 6;
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3};
  j.erase("norm_topk_prob");
  ModelConfig c = load(j);
  EXPECT_FALSE(c.norm_topk_prob);  // HF default false
  EXPECT_FALSE(c.layer_is_moe(0));
  EXPECT_TRUE(c.layer_is_moe(1));
  EXPECT_FALSE(c.layer_is_moe(2));
  EXPECT_FALSE(c.layer_is_moe(3));  // (3+1) % 2 == 0 but in mlp_only_layers
  EXPECT_FALSE(c.layer_is_moe(4));
  EXPECT_TRUE(c.layer_is_moe(5));
  EXPECT_EQ(c.mlp_only_layers, std::vector<int>{3});
}

TEST_F(ConfigTest, Mixtral) {
  ModelConfig c = load(mixtral_8x7b());
  EXPECT_EQ(c.arch, Arch::Mixtral);
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.top_k, 2);
  EXPECT_EQ(c.moe_intermediate, 14336);  // experts sized by intermediate_size
  EXPECT_EQ(c.intermediate, 0);          // no dense FFN
  EXPECT_EQ(c.router_order, RouterOrder::TopkThenSoftmax);
  EXPECT_EQ(c.qk_norm, QkNorm::None);
  EXPECT_TRUE(c.layer_is_moe(31));
}

TEST_F(ConfigTest, Olmoe) {
  ModelConfig c = load(olmoe_1b7b());
  EXPECT_EQ(c.arch, Arch::Olmoe);
  EXPECT_EQ(c.qk_norm, QkNorm::Full);
  EXPECT_EQ(c.num_experts, 64);
  EXPECT_EQ(c.top_k, 8);
  EXPECT_EQ(c.moe_intermediate, 1024);
  EXPECT_EQ(c.router_order, RouterOrder::SoftmaxThenTopk);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_EQ(c.eos_token_id, 50279);
}

TEST_F(ConfigTest, HfDefaults) {
  json j = json::parse(R"({"model_type":"llama","hidden_size":256,"intermediate_size":512,
      "num_hidden_layers":2,"num_attention_heads":8,"vocab_size":1000})");
  ModelConfig c = load(j);
  EXPECT_EQ(c.kv_heads, 8);     // defaults to heads
  EXPECT_EQ(c.head_dim, 32);    // defaults to H / nh
  EXPECT_EQ(c.max_position, 2048);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c.rms_eps, 1e-6);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
  j["model_type"] = "olmoe";
  j["num_experts"] = 4;
  j["num_experts_per_tok"] = 2;
  ModelConfig o = load(j);
  EXPECT_FALSE(o.norm_topk_prob);
  EXPECT_DOUBLE_EQ(o.rms_eps, 1e-5);
}

TEST_F(ConfigTest, Transformers5Spellings) {
  json v4 = llama31_8b();
  json v5 = v4;
  v5.erase("torch_dtype");
  v5.erase("rope_theta");
  v5.erase("rope_scaling");
  v5["dtype"] = "float16";
  v5["rope_parameters"] = {{"rope_theta", 500000.0}, {"rope_type", "llama3"}, {"factor", 8.0},
                           {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", 8192}};
  ModelConfig a = load(v4), b = load(v5);
  EXPECT_EQ(b.torch_dtype, DType::F16);
  EXPECT_DOUBLE_EQ(b.rope_theta, a.rope_theta);
  EXPECT_TRUE(b.rope_scaling.llama3);
  EXPECT_DOUBLE_EQ(b.rope_scaling.factor, a.rope_scaling.factor);
  EXPECT_EQ(b.rope_scaling.original_max_position, a.rope_scaling.original_max_position);
  // Default rope in v5 form, with its own theta.
  json q = qwen3_06b();
  q.erase("rope_theta");
  q.erase("rope_scaling");
  q["rope_parameters"] = {{"rope_theta", 123456.0}, {"rope_type", "default"}};
  ModelConfig c = load(q);
  EXPECT_DOUBLE_EQ(c.rope_theta, 123456.0);
  EXPECT_FALSE(c.rope_scaling.llama3);
  // v4 "type" spelling of rope_scaling.
  json l = llama31_8b();
  l["rope_scaling"].erase("rope_type");
  l["rope_scaling"]["type"] = "llama3";
  EXPECT_TRUE(load(l).rope_scaling.llama3);
}

// Written by transformers 5.17 save_pretrained (tiny-qwen3-moe re-saved): num_local_experts,
// dtype, rope_parameters, no rope_theta at the top level.
TEST_F(ConfigTest, Transformers5SavedQwen3Moe) {
  ModelConfig c = load(json::parse(R"({"architectures":["Qwen3MoeForCausalLM"],"attention_bias":false,
    "attention_dropout":0.0,"bos_token_id":1,"decoder_sparse_step":1,"dtype":"float32","eos_token_id":2,
    "head_dim":16,"hidden_act":"silu","hidden_size":64,"initializer_range":0.02,"intermediate_size":128,
    "max_position_embeddings":1024,"max_window_layers":2,"mlp_only_layers":[0],"model_type":"qwen3_moe",
    "moe_intermediate_size":32,"norm_topk_prob":true,"num_attention_heads":4,"num_experts_per_tok":2,
    "num_hidden_layers":2,"num_key_value_heads":2,"num_local_experts":4,"output_router_logits":false,
    "pad_token_id":null,"rms_norm_eps":1e-06,"rope_parameters":{"rope_theta":10000.0,"rope_type":"default"},
    "router_aux_loss_coef":0.001,"sliding_window":null,"tie_word_embeddings":false,
    "transformers_version":"5.17.0","use_cache":true,"use_sliding_window":false,"vocab_size":256})"));
  EXPECT_EQ(c.num_experts, 4);
  EXPECT_EQ(c.torch_dtype, DType::F32);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_FALSE(c.layer_is_moe(0));
  EXPECT_TRUE(c.layer_is_moe(1));
  ModelConfig p = preset_config("tiny-qwen3-moe");
  EXPECT_EQ(c.moe_intermediate, p.moe_intermediate);
  EXPECT_EQ(c.intermediate, p.intermediate);
  EXPECT_EQ(c.qk_norm, p.qk_norm);
  // Mixtral spelled with num_experts, and a v5 layer_types list of full attention, are accepted too.
  json m = mixtral_8x7b();
  m.erase("num_local_experts");
  m["num_experts"] = 8;
  EXPECT_EQ(load(m).num_experts, 8);
  json q = qwen3_06b();
  q["layer_types"] = json::array();
  for (int i = 0; i < 28; ++i) q["layer_types"].push_back("full_attention");
  EXPECT_EQ(load(q).layers, 28);
}

TEST_F(ConfigTest, MalformedCasesNameTheirField) {
  struct Case { std::string field; std::function<void(json&)> mutate; json (*base)(); };
  const std::vector<Case> cases = {
      {"model_type", [](json& j) { j["model_type"] = "gpt2"; }, llama31_8b},
      {"model_type", [](json& j) { j.erase("model_type"); }, llama31_8b},
      {"hidden_size", [](json& j) { j.erase("hidden_size"); }, llama31_8b},
      {"hidden_size", [](json& j) { j["hidden_size"] = "4096"; }, llama31_8b},
      {"hidden_size", [](json& j) { j["hidden_size"] = 0; }, llama31_8b},
      {"num_hidden_layers", [](json& j) { j["num_hidden_layers"] = -2; }, llama31_8b},
      {"num_attention_heads", [](json& j) { j["num_attention_heads"] = 32.5; }, llama31_8b},
      {"vocab_size", [](json& j) { j["vocab_size"] = 0; }, qwen3_06b},
      {"intermediate_size", [](json& j) { j.erase("intermediate_size"); }, qwen3_06b},
      {"num_key_value_heads", [](json& j) { j["num_key_value_heads"] = 3; }, llama31_8b},
      {"head_dim", [](json& j) { j["head_dim"] = 127; }, qwen3_06b},
      {"head_dim", [](json& j) { j["head_dim"] = 0; }, qwen3_06b},
      {"num_experts_per_tok", [](json& j) { j["num_experts_per_tok"] = 9; }, mixtral_8x7b},
      {"num_experts_per_tok", [](json& j) { j["num_experts_per_tok"] = 0; }, olmoe_1b7b},
      {"num_local_experts", [](json& j) { j.erase("num_local_experts"); }, mixtral_8x7b},
      {"num_experts", [](json& j) { j["num_experts"] = 0; }, qwen3_30b},
      {"moe_intermediate_size", [](json& j) { j.erase("moe_intermediate_size"); }, qwen3_30b},
      {"mlp_only_layers", [](json& j) { j["mlp_only_layers"] = {48}; }, qwen3_30b},
      {"mlp_only_layers", [](json& j) { j["mlp_only_layers"] = "none"; }, qwen3_30b},
      {"decoder_sparse_step", [](json& j) { j["decoder_sparse_step"] = 0; }, qwen3_30b},
      {"hidden_act", [](json& j) { j["hidden_act"] = "gelu"; }, llama31_8b},
      {"mlp_bias", [](json& j) { j["mlp_bias"] = true; }, llama31_8b},
      {"attention_bias", [](json& j) { j["attention_bias"] = true; }, llama31_8b},
      {"attention_bias", [](json& j) { j["attention_bias"] = 1; }, qwen3_06b},
      {"sliding_window", [](json& j) { j["use_sliding_window"] = true; }, qwen25_05b},
      {"sliding_window", [](json& j) { j["sliding_window"] = 4096; }, mixtral_8x7b},
      {"layer_types", [](json& j) { j["layer_types"] = {"full_attention", "sliding_attention"}; }, qwen3_06b},
      {"layer_types", [](json& j) { j["layer_types"] = "full"; }, qwen3_06b},
      {"clip_qkv", [](json& j) { j["clip_qkv"] = 8.0; }, olmoe_1b7b},
      {"rope_scaling.rope_type", [](json& j) { j["rope_scaling"]["rope_type"] = "yarn"; }, llama31_8b},
      {"rope_scaling", [](json& j) { j["rope_scaling"] = 8; }, llama31_8b},
      {"rope_scaling.factor", [](json& j) { j["rope_scaling"]["factor"] = "8"; }, llama31_8b},
      {"rope_parameters.rope_type",
       [](json& j) { j["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 2.0}}; }, qwen3_06b},
      {"rope_theta", [](json& j) { j["rope_theta"] = -1.0; }, qwen3_06b},
      {"rms_norm_eps", [](json& j) { j["rms_norm_eps"] = "tiny"; }, qwen3_06b},
      {"torch_dtype", [](json& j) { j["torch_dtype"] = "int8"; }, qwen3_06b},
      {"dtype", [](json& j) { j["dtype"] = "float8"; }, qwen3_06b},
      {"tie_word_embeddings", [](json& j) { j["tie_word_embeddings"] = "yes"; }, qwen3_06b},
      {"max_position_embeddings", [](json& j) { j["max_position_embeddings"] = 0; }, qwen3_06b},
  };
  for (const Case& c : cases) {
    json j = c.base();
    c.mutate(j);
    SCOPED_TRACE(c.field + " <- " + j.dump().substr(0, 80));
    expect_bad(j.dump(), c.field);
  }
}

TEST_F(ConfigTest, InvalidJsonNamesByteOffset) {
  std::string msg = expect_bad(R"({"model_type": "llama", "hidden_size": 64,, })", "(json)");
  EXPECT_NE(msg.find("byte 43"), std::string::npos) << msg;
  expect_bad("", "(json)");
  expect_bad("[1, 2, 3]", "(top level)");
}

TEST_F(ConfigTest, MissingFile) {
  std::string p = (dir_ / "absent.json").string();
  try {
    load_config_json(p);
    ADD_FAILURE() << "no error";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.file(), p);
  }
}

TEST_F(ConfigTest, ValidateConfigChecksInvariants) {
  ModelConfig c = load(mixtral_8x7b());
  validate_config(c, "x");
  ModelConfig bad = c;
  bad.top_k = 9;
  EXPECT_THROW(validate_config(bad, "x"), BadInput);
  bad = c;
  bad.kv_heads = 5;
  EXPECT_THROW(validate_config(bad, "x"), BadInput);
  bad = c;
  bad.head_dim = 3;
  EXPECT_THROW(validate_config(bad, "x"), BadInput);
  bad = c;
  bad.layers = 0;
  EXPECT_THROW(validate_config(bad, "x"), BadInput);
}

// config_to_hf_json -> file -> load_config_json gives the same config, for every family.
TEST_F(ConfigTest, HfJsonRoundTrip) {
  for (json (*make)() : {llama31_8b, qwen25_05b, qwen3_06b, qwen3_30b, mixtral_8x7b, olmoe_1b7b}) {
    ModelConfig a = load(make());
    json out = config_to_hf_json(a);
    ModelConfig b = load(out);
    SCOPED_TRACE(a.model_type);
    EXPECT_EQ(out["torch_dtype"], out["dtype"]);
    EXPECT_EQ(out["model_type"], a.model_type);
    EXPECT_EQ(b.arch, a.arch);
    EXPECT_EQ(b.hidden, a.hidden);
    EXPECT_EQ(b.intermediate, a.intermediate);
    EXPECT_EQ(b.layers, a.layers);
    EXPECT_EQ(b.heads, a.heads);
    EXPECT_EQ(b.kv_heads, a.kv_heads);
    EXPECT_EQ(b.head_dim, a.head_dim);
    EXPECT_EQ(b.vocab, a.vocab);
    EXPECT_EQ(b.max_position, a.max_position);
    EXPECT_DOUBLE_EQ(b.rms_eps, a.rms_eps);
    EXPECT_DOUBLE_EQ(b.rope_theta, a.rope_theta);
    EXPECT_EQ(b.rope_scaling.llama3, a.rope_scaling.llama3);
    EXPECT_DOUBLE_EQ(b.rope_scaling.factor, a.rope_scaling.factor);
    EXPECT_EQ(b.attention_bias, a.attention_bias);
    EXPECT_EQ(b.qk_norm, a.qk_norm);
    EXPECT_EQ(b.tie_embeddings, a.tie_embeddings);
    EXPECT_EQ(b.torch_dtype, a.torch_dtype);
    EXPECT_EQ(b.bos_token_id, a.bos_token_id);
    EXPECT_EQ(b.eos_token_id, a.eos_token_id);
    EXPECT_EQ(b.num_experts, a.num_experts);
    EXPECT_EQ(b.top_k, a.top_k);
    EXPECT_EQ(b.moe_intermediate, a.moe_intermediate);
    EXPECT_EQ(b.norm_topk_prob, a.norm_topk_prob);
    EXPECT_EQ(b.router_order, a.router_order);
    EXPECT_EQ(b.decoder_sparse_step, a.decoder_sparse_step);
    EXPECT_EQ(b.mlp_only_layers, a.mlp_only_layers);
  }
}

TEST_F(ConfigTest, HfJsonArchitectures) {
  const std::vector<std::pair<json (*)(), std::string>> cases = {
      {llama31_8b, "LlamaForCausalLM"},   {qwen25_05b, "Qwen2ForCausalLM"},
      {qwen3_06b, "Qwen3ForCausalLM"},    {qwen3_30b, "Qwen3MoeForCausalLM"},
      {mixtral_8x7b, "MixtralForCausalLM"}, {olmoe_1b7b, "OlmoeForCausalLM"}};
  for (const auto& [make, arch] : cases) {
    json out = config_to_hf_json(load(make()));
    EXPECT_EQ(out["architectures"], json::array({arch}));
  }
  json l = config_to_hf_json(load(llama31_8b()));
  EXPECT_EQ(l["rope_scaling"]["rope_type"], "llama3");
  EXPECT_EQ(l["rope_scaling"]["original_max_position_embeddings"], 8192);
  EXPECT_EQ(l["torch_dtype"], "bfloat16");
  json m = config_to_hf_json(load(mixtral_8x7b()));
  EXPECT_EQ(m["num_local_experts"], 8);
  EXPECT_EQ(m["intermediate_size"], 14336);
  EXPECT_TRUE(m["sliding_window"].is_null());
}

}  // namespace
