// engine/core/error.h: the error types every layer throws, and the exit codes the CLIs map them to.
//   BadInput  -> exit 2: a file or a field in it is malformed (names the file and the field)
//   Usage     -> exit 2: a bad command line or a request past a limit (names the limit)
//   CheckFail -> exit 1: a numeric check or a gate failed
// Anything else (std::exception) is an internal error: exit 3.
#pragma once
#include <stdexcept>
#include <string>

namespace minfer {

class Error : public std::runtime_error {
 public:
  Error(int exit_code, const std::string& what) : std::runtime_error(what), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// A malformed input file. Message: "<file>: <field>: <detail>".
class BadInput : public Error {
 public:
  BadInput(const std::string& file, const std::string& field, const std::string& detail)
      : Error(2, file + ": " + field + ": " + detail), file_(file), field_(field) {}
  const std::string& file() const { return file_; }
  const std::string& field() const { return field_; }

 private:
  std::string file_, field_;
};

// Bad usage, or a request past a limit (context, batch, memory): refused before any allocation.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& what) : Error(2, what) {}
};

// A numeric check or gate failed.
class CheckFailed : public Error {
 public:
  explicit CheckFailed(const std::string& what) : Error(1, what) {}
};

}  // namespace minfer
