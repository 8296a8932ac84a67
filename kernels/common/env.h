// kernels/common/env.h: the launchers' A/B switches read from the environment (host side).
#pragma once
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

extern char** environ;

namespace minfer {

// An A/B switch read from the environment: the index of its value in `allowed` (0, the default, when
// unset); an unknown value warns on stderr and keeps the default. Callers read it once (a static).
inline int env_choice(const char* name, std::initializer_list<const char*> allowed) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  int i = 0;
  for (const char* a : allowed) {
    if (std::strcmp(v, a) == 0) return i;
    ++i;
  }
  std::string names;
  for (const char* a : allowed) names += std::string(names.empty() ? "" : ", ") + a;
  std::fprintf(stderr, "minfer: %s=%s is not one of %s; using %s\n", name, v, names.c_str(), *allowed.begin());
  return 0;
}

// The switches set in the environment, as the words that set them again: "MINFER_A=x MINFER_B=y "
// (sorted, each followed by a space; "" when none), for the repro column of the drivers' rows, so that a
// row timed or checked under a switch says so. Every MINFER_ variable with a value but those that do
// not change what runs (MINFER_COMMIT, MINFER_MODEL_CACHE, MINFER_SOURCE_DIR) and the tests' own
// (MINFER_TEST_*); a value outside [A-Za-z0-9_.,:/+=-] is single-quoted.
inline std::string env_switches() {
  std::vector<std::string> set;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (kv.rfind("MINFER_", 0) != 0 || eq == std::string::npos || eq + 1 == kv.size()) continue;
    const std::string name = kv.substr(0, eq), value = kv.substr(eq + 1);
    if (name == "MINFER_COMMIT" || name == "MINFER_MODEL_CACHE" || name == "MINFER_SOURCE_DIR" ||
        name.rfind("MINFER_TEST_", 0) == 0)
      continue;
    const bool plain = value.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.,:/+=-") ==
                       std::string::npos;
    std::string quoted;
    if (plain) {
      quoted = value;
    } else {
      quoted = "'";
      for (char c : value) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
      quoted += "'";
    }
    set.push_back(name + "=" + quoted);
  }
  std::sort(set.begin(), set.end());
  std::string out;
  for (const std::string& w : set) out += w + " ";
  return out;
}

}  // namespace minfer
