// validate/driver_main.h: what the validate_all and bench_all drivers share: the --list output and
// the exit-code contract (DESIGN.md 7): parse with CLI11 (bad usage -> 2, --help -> 0), then run; a minfer::Error exits with
// its own code (bad input 2, check failed 1), anything else is an internal error (3). Never throws.
#pragma once
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "engine/core/error.h"

namespace minfer::val {

// --list: the chosen case ids on stdout, one per line, and their count on stderr; exit 0.
template <class Cases>
int print_case_list(const char* name, const Cases& cases) {
  for (const auto& c : cases) std::printf("%s\n", c.id().c_str());
  std::fprintf(stderr, "%s: %zu cases\n", name, cases.size());
  return 0;
}

template <class Run>
int run_driver(const char* name, CLI::App& app, int argc, char** argv, Run&& run) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    return run();
  } catch (const minfer::Error& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", name, e.what());
    return 3;
  }
}

}  // namespace minfer::val
