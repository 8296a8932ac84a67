"""tests/cpu/test_e2e_peer.py: the PyTorch e2e peer's host-side parts (bench/peers/e2e.py) without
torch or a GPU: argument parsing, the shapes read from an HF config.json (the one `minfer export`
writes), percentiles, and the peer CSV it hands back to bench_all."""
import csv
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench", "peers"))
import e2e  # noqa: E402  (imports torch only when it runs)


class PeerArgs(unittest.TestCase):
    def test_required_and_defaults(self):
        a = e2e.parse_args(["--cases", "c.json", "--out", "o.csv"])
        self.assertEqual((a.cases, a.out, a.repeats), ("c.json", "o.csv", 3))
        self.assertEqual(e2e.parse_args(["--cases", "c", "--out", "o", "--repeats", "5"]).repeats, 5)

    def test_bad_arguments_exit_2(self):
        for argv in (["--out", "o"], ["--cases", "c"], ["--cases", "c", "--out", "o", "--repeats", "0"],
                     ["--cases", "c", "--out", "o", "--repeats", "x"]):
            with self.assertRaises(SystemExit) as cm, open(os.devnull, "w") as null:
                old, sys.stderr = sys.stderr, null
                try:
                    e2e.parse_args(argv)
                finally:
                    sys.stderr = old
            self.assertEqual(cm.exception.code, 2, argv)


class PeerDims(unittest.TestCase):
    QWEN3 = {"model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
             "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
             "rms_norm_eps": 1e-6, "rope_theta": 1e6, "tie_word_embeddings": True}

    def test_qwen3(self):
        d = e2e.dims(self.QWEN3)
        self.assertEqual((d["L"], d["H"], d["I"], d["nh"], d["nkv"], d["hd"], d["V"]),
                         (28, 1024, 3072, 16, 8, 128, 151936))
        self.assertTrue(d["qk_norm"])
        self.assertFalse(d["bias"])
        self.assertTrue(d["tied"])

    def test_qwen2_bias_and_defaults(self):
        cfg = dict(self.QWEN3, model_type="qwen2")
        del cfg["head_dim"], cfg["num_key_value_heads"]
        d = e2e.dims(cfg)
        self.assertTrue(d["bias"])
        self.assertFalse(d["qk_norm"])
        self.assertEqual((d["hd"], d["nkv"]), (64, 16))

    def test_moe_refused(self):
        with self.assertRaises(ValueError):
            e2e.dims(dict(self.QWEN3, model_type="mixtral"))


class PeerRows(unittest.TestCase):
    def test_stats(self):
        s = e2e.stats([5.0, 1.0, 3.0, 2.0, 4.0])
        self.assertEqual(s["median_us"], "3")
        self.assertEqual(s["p10_us"], "1.4")
        self.assertEqual(s["p90_us"], "4.6")

    def test_csv_has_the_columns_bench_all_reads(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "peer.csv")
            e2e.write_rows(path, [{"case_id": "e2e/bf16/x/batch=1", "variant": "torch-graph", "phase": "decode",
                                   "median_us": "10", "status": "ok"}])
            self.assertFalse(os.path.exists(path + ".tmp"))
            with open(path) as f:
                rows = list(csv.DictReader(f))
        self.assertEqual(rows[0]["phase"], "decode")
        self.assertEqual(rows[0]["p10_us"], "")
        for k in ("case_id", "variant", "phase", "median_us", "p10_us", "p90_us", "peak_mem_mib", "status"):
            self.assertIn(k, rows[0])


if __name__ == "__main__":
    unittest.main()
