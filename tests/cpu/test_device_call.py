"""tests/cpu/test_device_call.py: scripts/device_call.sh (one device-call command under a time limit, its
output folder always packed) with small shell commands in a temp dir: @RUN replaced by the run folder,
the tarball holding what the command wrote and its log, a command stopped at its limit still packed
(exit 124), and bad arguments refused with exit 2.
Run: python3 -m unittest discover -s tests/cpu -p 'test_*.py' -v
"""
import os
import subprocess
import tarfile
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "device_call.sh")


def call(*args):
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True)


class DeviceCall(unittest.TestCase):
    def test_run_folder_packed_with_the_log(self):
        with tempfile.TemporaryDirectory() as d:
            r = call(d, "30", "bash", "-c", 'echo hello; mkdir -p "$1/x" && echo 1,2 > "$1/x/a.csv"', "_", "@RUN")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("hello", r.stdout)
            self.assertIn("rc=0", r.stdout)
            self.assertFalse(os.path.exists(os.path.join(d, "run")))
            with tarfile.open(os.path.join(d, "run.tar.xz")) as t:
                names = t.getnames()
                self.assertIn("run/x/a.csv", names)
                self.assertIn("run/call.log", names)
                self.assertIn("hello", t.extractfile("run/call.log").read().decode())

    def test_command_past_its_limit_is_still_packed(self):
        with tempfile.TemporaryDirectory() as d:
            r = call(d, "1", "bash", "-c", 'echo partial > "$1/p.txt"; sleep 30', "_", "@RUN")
            self.assertEqual(r.returncode, 124)
            self.assertIn("stopped at its limit", r.stdout)
            with tarfile.open(os.path.join(d, "run.tar.xz")) as t:
                self.assertEqual(t.extractfile("run/p.txt").read().decode().strip(), "partial")

    def test_failing_command_keeps_its_status(self):
        with tempfile.TemporaryDirectory() as d:
            r = call(d, "30", "bash", "-c", "exit 3")
            self.assertEqual(r.returncode, 3)
            self.assertTrue(os.path.exists(os.path.join(d, "run.tar.xz")))

    def test_bad_arguments(self):
        with tempfile.TemporaryDirectory() as d:
            r = call(d, "ten", "true")
            self.assertEqual(r.returncode, 2)
            self.assertIn("SECONDS must be a whole number", r.stderr)
            r = call(d, "10")
            self.assertEqual(r.returncode, 2)
            self.assertIn("Usage: scripts/device_call.sh OUTDIR SECONDS CMD", r.stdout)
            r = call("--help")
            self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
