"""tools/sdpa_decode_once.py: run one PyTorch SDPA decode call (the decode sweep's peer shapes:
q (B, nh, 1, hd), k/v (B, nkv, L, hd), bf16) a few times between cudaProfilerStart/Stop, so that
ncu --profile-from-start off sees only the backend's kernels. What limits a peer's kernel (grid,
registers, shared memory, DRAM throughput) is then read the same way as ours.
Usage: ncu --profile-from-start off [sections] python3 tools/sdpa_decode_once.py
         --backend cudnn|flash --batch B --kv-len L --heads NH --kv-heads NKV [--head-dim HD] [--calls N]
"""
import argparse
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["cudnn", "flash"], required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--kv-len", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, required=True)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--calls", type=int, default=3, help="calls inside the profiled range (default 3)")
    a = ap.parse_args()
    for name in ("batch", "kv_len", "heads", "kv_heads", "head_dim", "calls"):
        if getattr(a, name) <= 0:
            print(f"sdpa_decode_once.py: --{name.replace('_', '-')} must be > 0, got {getattr(a, name)}", file=sys.stderr)
            return 2
    if a.heads % a.kv_heads:
        print("sdpa_decode_once.py: --kv-heads must divide --heads", file=sys.stderr)
        return 2
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    import torch.nn.functional as F
    if not torch.cuda.is_available():
        print("sdpa_decode_once.py: no CUDA device", file=sys.stderr)
        return 2
    backend = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}[a.backend]
    dev, dt = "cuda", torch.bfloat16
    q = torch.randn(a.batch, a.heads, 1, a.head_dim, device=dev, dtype=dt)
    k = torch.randn(a.batch, a.kv_heads, a.kv_len, a.head_dim, device=dev, dtype=dt)
    v = torch.randn_like(k)
    with sdpa_kernel([backend]):
        for _ in range(3):  # warm-up: plans, workspace
            F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        torch.cuda.synchronize()
        torch.cuda.profiler.start()
        for _ in range(a.calls):
            F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        torch.cuda.synchronize()
        torch.cuda.profiler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
