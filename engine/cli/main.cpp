// engine/cli/main.cpp: placeholder.
int main() { return 0; }
