// The fuzz driver: one libFuzzer binary for the four targets, so that rpo/spec.hpp, which every target needs and
// which costs a minute of compilation per translation unit, is compiled once (the target's sources are one unity
// build). RPO_FUZZ_TARGET picks the target: spec, eval_line, eval_batch_line or presets.
// @sa docs/reliability.md#fuzzing
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace rpo_fuzz {
int spec(const std::uint8_t* data, std::size_t size);
int presets(const std::uint8_t* data, std::size_t size);
#ifdef RPO_FUZZ_EVAL_LINE
int eval_line(const std::uint8_t* data, std::size_t size);
int eval_batch_line(const std::uint8_t* data, std::size_t size);
#endif
}  // namespace rpo_fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using target = int (*)(const std::uint8_t*, std::size_t);
  static const target run = [] {
    const char* name = std::getenv("RPO_FUZZ_TARGET");
    const std::string_view which = name ? name : "";
    if (which == "spec") return target{rpo_fuzz::spec};
    if (which == "presets") return target{rpo_fuzz::presets};
#ifdef RPO_FUZZ_EVAL_LINE
    if (which == "eval_line") return target{rpo_fuzz::eval_line};
    if (which == "eval_batch_line") return target{rpo_fuzz::eval_batch_line};
#endif
    std::fprintf(stderr, "rpo_fuzz: set RPO_FUZZ_TARGET to spec, presets, eval_line or eval_batch_line (got '%s')\n",
                 name ? name : "");
    std::exit(2);
  }();
  return run(data, size);
}
