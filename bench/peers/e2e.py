"""bench/peers/e2e.py: PyTorch peer of the e2e sweep, variant "torch-graph": a dense decoder
(llama / qwen2 / qwen3 from the HF config.json bench_all writes for each case) with random bf16
weights of the same shapes, a static KV cache, and the whole decode step (embedding, every layer,
final norm, LM head, argmax, position advance) captured in one CUDA graph and replayed.
Plain torch ops: F.rms_norm, matmuls, F.scaled_dot_product_attention, F.silu.
Legend: B batch, P prompt tokens, N new tokens, C = P + N cache rows, L layers, H hidden,
I intermediate, nh / nkv heads, hd head_dim, V vocab.

Timing (CUDA events): prefill = from the prompt ids on the GPU to the first token's argmax (eager,
SDPA causal; the row ours calls time to first token); decode = N - 1 graph replays between two
events, per step. Our decode step also fetches the ids to the host each step; this loop does not.
Each timed `repeats` times after one warm-up; median, p10, p90 over the repeats.
Input JSON: {"sweep": "e2e", "seed", "cases": [{"id", "dtype", "model", "batch", "prompt_len",
"new_tokens", "config": {HF config.json}}]}. Output CSV: case_id, variant, phase, median_us,
p10_us, p90_us, peak_mem_mib, status (two rows per case: prefill, decode).
"""
import argparse
import csv
import json
import os
import sys

VARIANT = "torch-graph"
COLUMNS = ["case_id", "variant", "phase", "median_us", "p10_us", "p90_us", "peak_mem_mib", "status"]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch CUDA-graph decode loop peer for bench_all --sweep e2e")
    ap.add_argument("--cases", required=True, help="case list JSON written by bench_all")
    ap.add_argument("--out", required=True, help="peer CSV to write (PATH.tmp, renamed)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case after one warm-up (default 3)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    return args


def dims(cfg):
    """Shapes the peer needs from an HF config.json dict."""
    h, nh = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    mt = cfg.get("model_type", "llama")
    if mt not in ("llama", "qwen2", "qwen3"):
        raise ValueError(f"model_type {mt!r}: the peer runs dense llama/qwen2/qwen3 only")
    return {
        "L": int(cfg["num_hidden_layers"]), "H": h, "I": int(cfg["intermediate_size"]), "nh": nh,
        "nkv": int(cfg.get("num_key_value_heads") or nh), "hd": int(cfg.get("head_dim") or h // nh),
        "V": int(cfg["vocab_size"]), "eps": float(cfg.get("rms_norm_eps", 1e-6)),
        "theta": float(cfg.get("rope_theta", 10000.0)), "bias": mt == "qwen2", "qk_norm": mt == "qwen3",
        "tied": bool(cfg.get("tie_word_embeddings", False)),
    }


def percentile(sorted_vals, q):
    pos = q * (len(sorted_vals) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def stats(samples_us):
    s = sorted(samples_us)
    return {"median_us": f"{percentile(s, 0.5):.5g}", "p10_us": f"{percentile(s, 0.1):.5g}",
            "p90_us": f"{percentile(s, 0.9):.5g}"}


def write_rows(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in COLUMNS})
    os.replace(tmp, path)


class Decoder:
    """Random bf16 weights of one config, and prefill / decode over a static KV cache."""

    def __init__(self, d, gen):
        import torch
        self.torch, self.d = torch, d
        dt, dev = torch.bfloat16, "cuda"
        H, I, Q, KV = d["H"], d["I"], d["nh"] * d["hd"], d["nkv"] * d["hd"]

        def w(*shape, scale=None):  # (out, in) weights ~ N(0, 1/in)
            s = scale if scale is not None else shape[-1] ** -0.5
            return (torch.randn(shape, generator=gen, device=dev, dtype=torch.float32) * s).to(dt)

        self.embed = w(d["V"], H, scale=1.0)                  # (V, H)
        self.head = self.embed if d["tied"] else w(d["V"], H)  # (V, H)
        self.final_norm = torch.ones(H, device=dev, dtype=dt)  # (H)
        self.layers = []
        for _ in range(d["L"]):
            self.layers.append({
                "attn_norm": torch.ones(H, device=dev, dtype=dt), "ffn_norm": torch.ones(H, device=dev, dtype=dt),
                "wqkv": w(Q + 2 * KV, H), "bqkv": w(Q + 2 * KV, scale=0.02) if d["bias"] else None,
                "q_norm": torch.ones(d["hd"], device=dev, dtype=dt) if d["qk_norm"] else None,
                "k_norm": torch.ones(d["hd"], device=dev, dtype=dt) if d["qk_norm"] else None,
                "wo": w(H, Q), "wgu": w(2 * I, H), "wdown": w(H, I),
            })

    def alloc(self, B, C):
        torch, d = self.torch, self.d
        self.B, self.C = B, C
        self.k = torch.zeros(d["L"], B, d["nkv"], C, d["hd"], device="cuda", dtype=torch.bfloat16)  # (L, B, nkv, C, hd)
        self.v = torch.zeros_like(self.k)
        inv = 1.0 / (d["theta"] ** (torch.arange(0, d["hd"], 2, device="cuda", dtype=torch.float64) / d["hd"]))
        ang = torch.arange(C, device="cuda", dtype=torch.float64)[:, None] * inv[None, :]  # (C, hd/2)
        self.cos = torch.cat([ang.cos(), ang.cos()], -1).to(torch.bfloat16)  # (C, hd)
        self.sin = torch.cat([ang.sin(), ang.sin()], -1).to(torch.bfloat16)
        self.ids = torch.zeros(B, dtype=torch.long, device="cuda")   # (B) next input ids
        self.pos = torch.zeros(1, dtype=torch.long, device="cuda")   # decode position
        self.arange = torch.arange(C, device="cuda")

    def rope(self, x, cos, sin):  # x (B, nh, T, hd); cos/sin (T, hd)
        half = x.shape[-1] // 2
        rot = self.torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rot * sin

    def layer(self, li, x, positions, mask):
        """x (B, T, H); positions (T) long; mask None (prefill, causal) or (1, 1, 1, C) bool."""
        F = self.torch.nn.functional
        d, p = self.d, self.layers[li]
        B, T, _ = x.shape
        nh, nkv, hd = d["nh"], d["nkv"], d["hd"]
        h = F.rms_norm(x, (d["H"],), p["attn_norm"], d["eps"])
        qkv = F.linear(h, p["wqkv"], p["bqkv"])
        q, k, v = qkv.split([nh * hd, nkv * hd, nkv * hd], -1)
        q, k = q.view(B, T, nh, hd), k.view(B, T, nkv, hd)
        if p["q_norm"] is not None:
            q, k = F.rms_norm(q, (hd,), p["q_norm"], d["eps"]), F.rms_norm(k, (hd,), p["k_norm"], d["eps"])
        cos, sin = self.cos.index_select(0, positions), self.sin.index_select(0, positions)
        q, k = self.rope(q.transpose(1, 2), cos, sin), self.rope(k.transpose(1, 2), cos, sin)
        v = v.view(B, T, nkv, hd).transpose(1, 2)
        self.k[li].index_copy_(2, positions, k)
        self.v[li].index_copy_(2, positions, v)
        if mask is None:
            kk, vv = k, v
        else:
            kk, vv = self.k[li], self.v[li]
        rep = nh // nkv
        if rep > 1:  # GQA by repetition (enable_gqa needs torch >= 2.5)
            kk, vv = kk.repeat_interleave(rep, 1), vv.repeat_interleave(rep, 1)
        att = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, is_causal=mask is None)
        x = x + F.linear(att.transpose(1, 2).reshape(B, T, nh * hd), p["wo"])
        h = F.rms_norm(x, (d["H"],), p["ffn_norm"], d["eps"])
        g, u = F.linear(h, p["wgu"]).chunk(2, -1)
        return x + F.linear(F.silu(g) * u, p["wdown"])

    def logits_argmax(self, x_last):  # (B, H) -> (B) ids
        F = self.torch.nn.functional
        h = F.rms_norm(x_last, (self.d["H"],), self.final_norm, self.d["eps"])
        return F.linear(h, self.head).argmax(-1)

    def prefill(self, prompts):  # prompts (B, P) long -> first ids (B)
        P = prompts.shape[1]
        x = self.embed[prompts]
        positions = self.arange[:P]
        for li in range(self.d["L"]):
            x = self.layer(li, x, positions, None)
        return self.logits_argmax(x[:, -1])

    def decode_step(self):  # reads ids, pos; writes ids, pos (graph-capturable)
        x = self.embed[self.ids].unsqueeze(1)  # (B, 1, H)
        mask = (self.arange <= self.pos).view(1, 1, 1, self.C)
        for li in range(self.d["L"]):
            x = self.layer(li, x, self.pos, mask)
        self.ids.copy_(self.logits_argmax(x[:, 0]))
        self.pos.add_(1)


def time_case(dec, case, repeats, gen):
    torch = dec.torch
    B, P, N = int(case["batch"]), int(case["prompt_len"]), int(case["new_tokens"])
    dec.alloc(B, P + N)
    prompts = torch.randint(0, dec.d["V"], (B, P), generator=gen, device="cuda")
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.no_grad():
        first = dec.prefill(prompts)  # warm-up
        dec.ids.copy_(first)
        dec.pos.fill_(P)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            dec.decode_step()  # warm-up before capture
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        dec.pos.fill_(P)
        with torch.cuda.graph(graph):
            dec.decode_step()
        pre, step = [], []
        for _ in range(repeats):
            start.record()
            first = dec.prefill(prompts)
            stop.record()
            stop.synchronize()
            pre.append(start.elapsed_time(stop) * 1e3)
            dec.ids.copy_(first)
            dec.pos.fill_(P)
            steps = max(N - 1, 1)
            start.record()
            for _ in range(steps):
                graph.replay()
            stop.record()
            stop.synchronize()
            step.append(start.elapsed_time(stop) * 1e3 / steps)
    del graph
    return pre, step


def run(spec, repeats):
    import torch
    rows, decoders = [], {}
    gen = torch.Generator(device="cuda")
    for i, case in enumerate(spec["cases"]):
        gen.manual_seed(int(spec.get("seed", 1234)) + i)
        base = {"case_id": case["id"], "variant": VARIANT}
        try:
            if case.get("dtype", "bf16") != "bf16":
                raise ValueError("the peer runs bf16 only")
            if case["model"] not in decoders:
                decoders.clear()
                torch.cuda.empty_cache()
                decoders[case["model"]] = Decoder(dims(case["config"]), gen)
            dec = decoders[case["model"]]
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            pre, step = time_case(dec, case, repeats, gen)
            peak = f"{torch.cuda.max_memory_allocated() / 2**20:.5g}"
            rows.append({**base, "phase": "prefill", **stats(pre), "peak_mem_mib": peak, "status": "ok"})
            rows.append({**base, "phase": "decode", **stats(step), "peak_mem_mib": peak, "status": "ok"})
        except Exception as e:  # one failing case (e.g. out of memory) must not lose the others
            msg = f"error: {type(e).__name__}: {e}".replace("\n", " ")[:300]
            rows += [{**base, "phase": ph, "status": msg} for ph in ("prefill", "decode")]
        finally:
            if "dec" in locals():
                dec.k = dec.v = None
            torch.cuda.empty_cache()
        print(f"[{i + 1}/{len(spec['cases'])}] {VARIANT}:{case['id']} {rows[-1]['status']} "
              f"prefill={rows[-2].get('median_us', '')}us decode={rows[-1].get('median_us', '')}us/step",
              file=sys.stderr)
    return rows


def main(argv=None):
    args = parse_args(argv)
    import torch
    if not torch.cuda.is_available():
        print(f"{sys.argv[0]}: no CUDA device", file=sys.stderr)
        return 2
    with open(args.cases) as f:
        spec = json.load(f)
    write_rows(args.out, run(spec, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
