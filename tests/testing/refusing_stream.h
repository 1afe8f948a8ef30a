// A stream buffer whose every write fails, as standard output on a full disk does.
#pragma once

#include <ios>
#include <streambuf>

namespace ccmon {
namespace testing_util {

class RefusingBuf : public std::streambuf {
 protected:
  int_type overflow(int_type) override { return traits_type::eof(); }
  std::streamsize xsputn(const char*, std::streamsize) override { return 0; }
};

}  // namespace testing_util
}  // namespace ccmon
