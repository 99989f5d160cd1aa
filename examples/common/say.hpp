#pragma once
/// @file examples/common/say.hpp
/// One line to stderr in one write. A server writes to stderr from many threads (request log lines, the
/// stop message, webhook and journal warnings); stdio locks the stream for each write, not across a chain of
/// `<<`, so a line written piece by piece can be split by another thread's line. Every line a running app
/// writes goes through say().

#include <iostream>
#include <sstream>
#include <string>

namespace engram_app {

/// Writes the parts, then a newline, to `out` in a single write.
template <class... Parts>
void say_to(std::ostream& out, const Parts&... parts) {
  std::ostringstream line;
  (line << ... << parts);
  line << '\n';
  out << line.str() << std::flush;
}

/// Writes the parts, then a newline, to stderr in a single write.
template <class... Parts>
void say(const Parts&... parts) {
  say_to(std::cerr, parts...);
}

}  // namespace engram_app
