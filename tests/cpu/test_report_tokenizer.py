"""tests/cpu/test_report_tokenizer.py: the report's tokenizer table (reports/make_report.py tokenizer_section)
from a tokenizer.csv as scripts/bench_tokenizer.sh writes it: one row per tokenizer x text with both
implementations' MB/s and their ratio; a file missing columns is refused naming it."""
import importlib.util
import os
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAVE_PANDAS = importlib.util.find_spec("pandas") is not None

HEADER = "host,cpu_model,tokenizer,text,text_bytes,tokens,impl,mb_per_s,tokens_per_s,threads\n"


@unittest.skipUnless(HAVE_PANDAS, "pandas not installed")
class TokenizerSection(unittest.TestCase):
    def setUp(self):
        sys.path.insert(0, os.path.join(ROOT, "reports"))
        import make_report
        self.mr = make_report
        self.tmp = tempfile.TemporaryDirectory()
        os.makedirs(os.path.join(self.tmp.name, "box", "tokenizer"))
        self.path = os.path.join(self.tmp.name, "box", "tokenizer", "tokenizer.csv")

    def tearDown(self):
        self.tmp.cleanup()

    def test_table_has_both_and_the_ratio(self):
        with open(self.path, "w") as f:
            f.write(HEADER + "h,CPU X,smollm2,english,1000,300,minfer,8.0,2400000,1\n"
                    "h,CPU X,smollm2,english,1000,300,hf_tokenizers,2.0,600000,1\n")
        text = "\n".join(self.mr.tokenizer_section(self.tmp.name))
        self.assertIn("box/tokenizer/tokenizer.csv (CPU X)", text)
        self.assertIn("| smollm2 | english | 1000 | 300 | 8.00 | 2.00 | 4.00x |", text)

    def test_missing_columns_are_refused(self):
        with open(self.path, "w") as f:
            f.write("tokenizer,text\nsmollm2,english\n")
        with self.assertRaises(ValueError) as e:
            self.mr.tokenizer_section(self.tmp.name)
        self.assertIn("tokenizer.csv", str(e.exception))

    def test_no_file_no_section(self):
        self.assertEqual(self.mr.tokenizer_section(self.tmp.name), [])


if __name__ == "__main__":
    unittest.main()
