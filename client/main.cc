#include <cstdio>
int main() { std::puts("vlmctl"); return 0; }
