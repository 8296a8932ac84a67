// kernels/common/env.h: the launchers' A/B switches read from the environment (host side).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

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

}  // namespace minfer
