// Leaks, or overflows a signed int, on purpose: the sanitizer report test proves with it that
// a report reaches the file the test job reads, not only a stderr that a test may drop.
#include <climits>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "overflow") == 0) {
    volatile int big = INT_MAX;
    return big + argc;  // UBSan: signed integer overflow
  }
  volatile char* lost = static_cast<char*>(std::malloc(64));  // never freed: LeakSanitizer
  lost[0] = 1;
  lost = nullptr;
  return 0;
}
