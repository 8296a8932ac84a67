"""tests/cpu/test_report_e2e.py: the e2e and whole-model sections of reports/make_report.py on small
CSVs in the columns bench_all --sweep e2e and validate_all --sweep model write (no GPU). Skips when
pandas or matplotlib are missing."""
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from csv_fixture import write_csv  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORT = os.path.join(ROOT, "reports", "make_report.py")
HAVE_PLOTTING = all(importlib.util.find_spec(m) for m in ("pandas", "matplotlib"))

E2E_COLS = ["sweep", "variant", "dtype", "model", "batch", "prompt_len", "new_tokens", "phase", "label", "median_us",
            "p10_us", "p90_us", "tflops", "gbps", "sol_pct", "peak_mem_mib", "rel_err", "tok_s", "ms_per_step",
            "copy_gbps", "gemm_tflops", "gpu", "cuda", "commit", "repro", "status"]
MODEL_COLS = ["sweep", "variant", "dtype", "model", "batch", "prompt_len", "ragged", "steps", "prompt_lens", "phase",
              "step", "rel_err", "max_abs", "max_rel", "worst_index", "nonfinite", "token_agree", "tokens", "bound",
              "agree_bound", "pass", "error", "gpu", "cuda", "commit", "repro"]


def e2e_row(model, variant, phase, median_us, status="ok", **kw):
    r = {"sweep": "e2e", "variant": variant, "dtype": "bf16", "model": model, "label": model, "batch": 1,
         "prompt_len": 128, "new_tokens": 128, "phase": phase, "median_us": median_us, "gpu": "h200",
         "cuda": "13.0", "commit": "abc", "copy_gbps": 4000, "gemm_tflops": 700, "status": status}
    if phase == "decode" and median_us != "":
        r.update(ms_per_step=median_us / 1e3, tok_s=1e6 / median_us, sol_pct=50)
    elif median_us != "":
        r.update(tok_s=128e6 / median_us, sol_pct=20)
    r.update(kw)
    return r


@unittest.skipUnless(HAVE_PLOTTING, "pandas and matplotlib are needed for the report")
class ReportE2e(unittest.TestCase):
    def report(self, d):
        """make_report over d/data; the REPORT.md text."""
        out = os.path.join(d, "REPORT.md")
        r = subprocess.run([sys.executable, REPORT, "--data", os.path.join(d, "data"), "--out", out, "--plots",
                            os.path.join(d, "plots")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            return f.read()

    def test_sections(self):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "data", "h200")
            write_csv(os.path.join(data, "e2e.csv"), E2E_COLS, [
                e2e_row("qwen3-0.6b", "minfer", "prefill", 9000.0, peak_mem_mib=2000),
                e2e_row("qwen3-0.6b", "minfer", "decode", 3000.0, peak_mem_mib=2000),
                e2e_row("qwen3-0.6b", "torch-graph", "prefill", 12000.0),
                e2e_row("qwen3-0.6b", "torch-graph", "decode", 4500.0),
                e2e_row("seed-medium", "minfer", "prefill", "", status="skipped: MoE (8 experts, top-2)"),
                e2e_row("seed-medium", "minfer", "decode", "", status="skipped: MoE (8 experts, top-2)"),
            ])
            summary = {"sweep": "model", "variant": "minfer", "model": "tiny", "batch": 3, "prompt_len": 33,
                       "ragged": 1, "steps": 64, "phase": "summary", "gpu": "h200", "cuda": "13.0", "commit": "abc"}
            write_csv(os.path.join(data, "validate_model.csv"), MODEL_COLS, [
                dict(summary, dtype="fp32", rel_err=2e-6, token_agree=1, bound=1e-3, **{"pass": 1}),
                dict(summary, dtype="bf16", rel_err=1.5e-2, token_agree=0.97, bound=5e-2, **{"pass": 1}),
                dict(summary, dtype="bf16", phase="decode", step=3, rel_err=9e-3, token_agree=1, bound=5e-2,
                     **{"pass": 1}),
            ])
            text = self.report(d)
        self.assertIn("### e2e (whole model, bf16)", text)
        self.assertIn("| qwen3-0.6b | 1 | 128 | 9 |", text)  # TTFT 9 ms
        self.assertIn("| 3 |", text)                         # decode 3 ms/step
        self.assertIn("| 4.5 | 1.5 |", text)                 # torch-graph 4.5 ms/step, 1.5x ours
        # The targets: qwen3-0.6b batch 1 at SOL 50 (the fixture's) against 50, 1.5x torch-graph.
        self.assertIn("| qwen3-0.6b | 50 | 1 | 50 - 50 | 1 of 1 | 1.5 | 1 of 1 |", text)
        self.assertIn("skipped: MoE", text)
        self.assertIn("### Whole-model logits", text)
        self.assertIn("| tiny | bf16 | 1 | 1 | 0.015 | 0.97 | 0.05 |", text)

    def test_targets_count_prompts_below_the_target(self):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "data", "h200")
            rows = []
            # llama-3.1-8b at prompts 128 and 2048: SOL 85 and 78 against 80; torch-graph 1.2x and 0.9x ours.
            for prompt, sol, peer_us in ((128, 85, 6000.0), (2048, 78, 4500.0)):
                rows += [e2e_row("llama-3.1-8b", "minfer", "prefill", 9000.0, prompt_len=prompt),
                         e2e_row("llama-3.1-8b", "minfer", "decode", 5000.0, prompt_len=prompt, sol_pct=sol),
                         e2e_row("llama-3.1-8b", "torch-graph", "decode", peer_us, prompt_len=prompt)]
            rows.append(e2e_row("llama-3.1-8b", "minfer", "decode", 5000.0, batch=4, sol_pct=10))  # not batch 1
            write_csv(os.path.join(data, "e2e.csv"), E2E_COLS, rows)
            text = self.report(d)
        self.assertIn("| llama-3.1-8b | 80 | 2 | 78 - 85 | 1 of 2 | 0.9 | 1 of 2 |", text)
        self.assertNotIn("| qwen3-0.6b | 50 |", text)  # no rows of it: no target row

    def test_timeline_section(self):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "data", "h200")
            write_csv(os.path.join(data, "e2e.csv"), E2E_COLS, [
                e2e_row("qwen3-0.6b", "minfer", "prefill", 9000.0), e2e_row("qwen3-0.6b", "minfer", "decode", 3000.0)])
            cols = ["kernel", "calls", "share_us", "share_pct", "dur_us", "wait_us"]
            write_csv(os.path.join(data, "timeline", "timeline_qwen3-0.6b_p128.csv.groups.csv"), cols, [
                {"kernel": "rmsnorm_kernel (1,1,1)", "calls": 4, "share_us": 12.0, "share_pct": 40, "dur_us": 20.0,
                 "wait_us": 0},
                {"kernel": "gemv_kernel (512,1,1)", "calls": 3, "share_us": 18.0, "share_pct": 60, "dur_us": 9.0,
                 "wait_us": 0}])
            out = os.path.join(d, "REPORT.md")
            args = [sys.executable, REPORT, "--data", os.path.join(d, "data"), "--out", out, "--plots",
                    os.path.join(d, "plots")]
            r = subprocess.run(args, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                text = f.read()
            self.assertIn("### Decode step on the GPU clock", text)
            self.assertIn("qwen3-0.6b_p128: step 30 us over 7 kernels", text)
            self.assertIn("| rmsnorm_kernel (1,1,1) | 4 | 12 | 40 | 3 | 5 |", text)  # 12 / 4 share, 20 / 4 duration
            self.assertIn("| gemv_kernel (512,1,1) | 3 | 18 | 60 | 6 | 3 |", text)
            # A groups file without its columns is bad input: exit 2, naming the file.
            write_csv(os.path.join(data, "timeline", "timeline_bad.csv.groups.csv"), ["kernel", "calls"],
                      [{"kernel": "x", "calls": 1}])
            r = subprocess.run(args, capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            self.assertIn("timeline_bad.csv.groups.csv", r.stderr)


if __name__ == "__main__":
    unittest.main()
