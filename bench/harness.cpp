// bench/harness.cpp: placeholder.
