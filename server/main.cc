#include <cstdio>
int main() { std::puts("vlmd"); return 0; }
