// A minimal test harness shared by every native test executable: TEST(name) { ... } registers a
// case, CHECK(cond) / CHECK_EQ(a, b) / CHECK_NEAR(a, b, tol) record failures with file:line and
// keep going, and DYNTET_TEST_MAIN() runs all cases (or those whose name contains argv[1]).
// Exit status is the number of failed cases (capped at 255), so ctest sees failures.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace dyntet_test {

struct Case {
  const char* name;
  void (*fn)();
};

inline std::vector<Case>& registry() {
  static std::vector<Case> r;
  return r;
}

inline int& failures() {
  static int f = 0;
  return f;
}

struct Register {
  Register(const char* name, void (*fn)()) { registry().push_back({name, fn}); }
};

inline void fail(const char* file, int line, const std::string& what) {
  ++failures();
  std::fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, what.c_str());
}

template <class A, class B>
std::string show2(const char* ea, const char* eb, const A& a, const B& b) {
  std::ostringstream s;
  s << ea << " == " << eb << " (got " << a << " vs " << b << ")";
  return s.str();
}

inline int run_all(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int failed_cases = 0, ran = 0;
  for (const Case& c : registry()) {
    if (filter && !std::strstr(c.name, filter)) continue;
    const int before = failures();
    std::printf("[ RUN  ] %s\n", c.name);
    std::fflush(stdout);
    c.fn();
    ++ran;
    if (failures() != before) {
      ++failed_cases;
      std::printf("[ FAIL ] %s\n", c.name);
    } else {
      std::printf("[  OK  ] %s\n", c.name);
    }
  }
  std::printf("%d/%d cases passed\n", ran - failed_cases, ran);
  if (ran == 0) {
    std::printf("no test case matched the filter\n");
    return 1;
  }
  return failed_cases > 255 ? 255 : failed_cases;
}

}  // namespace dyntet_test

#define DT_TEST_CAT2(a, b) a##b
#define DT_TEST_CAT(a, b) DT_TEST_CAT2(a, b)
#define TEST(name)                                                                        \
  static void DT_TEST_CAT(test_fn_, name)();                                              \
  static dyntet_test::Register DT_TEST_CAT(test_reg_, name)(#name, &DT_TEST_CAT(test_fn_, name)); \
  static void DT_TEST_CAT(test_fn_, name)()

#define CHECK(cond) \
  do { if (!(cond)) dyntet_test::fail(__FILE__, __LINE__, "CHECK(" #cond ")"); } while (0)
#define CHECK_EQ(a, b)                                                                             \
  do {                                                                                             \
    const auto& dt_a_ = (a);                                                                       \
    const auto& dt_b_ = (b);                                                                       \
    if (!(dt_a_ == dt_b_)) dyntet_test::fail(__FILE__, __LINE__, dyntet_test::show2(#a, #b, dt_a_, dt_b_)); \
  } while (0)
#define CHECK_NEAR(a, b, tol)                                                                     \
  do {                                                                                            \
    const double dt_a_ = (double)(a), dt_b_ = (double)(b);                                        \
    if (!(std::fabs(dt_a_ - dt_b_) <= (double)(tol)))                                             \
      dyntet_test::fail(__FILE__, __LINE__, dyntet_test::show2(#a, #b, dt_a_, dt_b_) + " tol " #tol); \
  } while (0)
// Stops the current case (use when later checks would read out of bounds).
#define REQUIRE(cond) \
  do { if (!(cond)) { dyntet_test::fail(__FILE__, __LINE__, "REQUIRE(" #cond ")"); return; } } while (0)

#define DYNTET_TEST_MAIN() \
  int main(int argc, char** argv) { return dyntet_test::run_all(argc, argv); }
