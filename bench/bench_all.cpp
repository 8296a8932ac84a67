// bench/bench_all.cpp: placeholder.
int main() { return 0; }
