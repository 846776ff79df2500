// rpo_torch_driver — rpo's side of bench/compare_torch.py: runs one case, prints one JSON line.
//
//   rpo_torch_driver pairs <preset> <dir> <reps>
//       reads <dir>/{logp,ref_logp,length,reward}.f64 (2G float64 each: chosen, rejected, ...), evaluates the
//       preset (mean over pairs) through rpo::parse_loss (any registered loss that takes pairs: the compiled
//       composition behind one virtual call per batch), writes <dir>/grad.f64, and prints the loss and the median
//       time of <reps> calls.
//   rpo_torch_driver list
//       prints the registered losses that take pairs, one per line.
//   rpo_torch_driver fused <preset> <S> <T> <V> <reps> [<dir>]
//       the fused pass (rpo::evaluate_tokens, float, in place over the logits, summed token log-probs) on
//       <dir>/{logits.f32,target.i64,mask.u8,ref_logp.f32,reward.f32} when given (and writes <dir>/grad.f32), or on
//       random logits; prints the loss, the median time, and the copy bandwidth measured here.
// Every run prints peak_extra_bytes: the growth of the peak resident set during the timed calls, measured from
// /proc/self/status (VmHWM after /proc/self/clear_refs reset it, minus VmRSS before).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "memory.hpp"
#include "rpo/presets.hpp"
#include "rpo/spec.hpp"
#include "rpo/token.hpp"

namespace {

long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::strtol(line.c_str() + std::strlen(field), nullptr, 10);
  return 0;
}

struct peak_meter {
  long before = 0;
  peak_meter() {
    std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current VmRSS
    before = status_kib("VmRSS:");
  }
  long extra_bytes() const { return (status_kib("VmHWM:") - before) * 1024; }
};

template <class T> std::vector<T> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot read " + path);
  const auto bytes = static_cast<std::size_t>(in.tellg());
  std::vector<T> v(bytes / sizeof(T));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(bytes));
  return v;
}
template <class T> void write_file(const std::string& path, const T* data, std::size_t n) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * sizeof(T)));
}

template <class F> double median_seconds(int reps, F&& call) {
  call();  // warm-up
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

using bench::copy_bandwidth;
int threads() { return bench::thread_count(); }

int pairs(const std::string& preset, const std::string& dir, int reps) {
  const rpo::any_loss loss = rpo::parse_loss(preset);
  if (loss.group_size() != 2) {
    std::fprintf(stderr, "rpo_torch_driver: %s takes groups of K responses, not pairs\n", preset.c_str());
    return 2;
  }
  const auto logp = read_file<double>(dir + "/logp.f64"), ref = read_file<double>(dir + "/ref_logp.f64"),
             length = read_file<double>(dir + "/length.f64"), reward = read_file<double>(dir + "/reward.f64");
  std::vector<double> grad(logp.size());
  double value = 0;
  const peak_meter meter;
  const double seconds = median_seconds(reps, [&] {
    value = loss.evaluate(rpo::batch_input<double>{.logp = logp, .ref_logp = ref, .length = length, .reward = reward},
                          rpo::batch_output<double>{.grad_logp = grad});
  });
  const long extra = meter.extra_bytes();
  write_file(dir + "/grad.f64", grad.data(), grad.size());
  std::printf("{\"loss\": %.17g, \"seconds\": %.9g, \"peak_extra_bytes\": %ld, \"threads\": %d}\n", value, seconds, extra,
              threads());
  return 0;
}

template <class L> int fused(std::int64_t S, std::int64_t T, std::int64_t V, int reps, const std::string& dir) {
  const rpo::token_shape shape{S, T, V};
  const auto rows = static_cast<std::size_t>(S * T), n = rows * static_cast<std::size_t>(V);
  std::vector<float> from_file, ref, reward;
  std::vector<std::int64_t> target;
  std::vector<std::uint8_t> mask;
  // The timed logits live on huge pages, as numpy's and the copy floor's do (bench/memory.hpp).
  auto timed = bench::huge_array<float>(dir.empty() ? n : 0);
  std::span<float> logits;
  if (!dir.empty()) {
    from_file = read_file<float>(dir + "/logits.f32");
    logits = from_file;
    target = read_file<std::int64_t>(dir + "/target.i64");
    mask = read_file<std::uint8_t>(dir + "/mask.u8");
    ref = read_file<float>(dir + "/ref_logp.f32");
    reward = read_file<float>(dir + "/reward.f32");
  } else {
    logits = {timed.get(), n};
    std::mt19937 rng(1);
    std::normal_distribution<float> z(0, 2);
    std::vector<float> block(4096);
    for (float& x : block) x = z(rng);
    for (std::size_t i = 0; i < n; i += block.size()) std::memcpy(&logits[i], block.data(), std::min(block.size(), n - i) * 4);
    target.resize(rows);
    std::uniform_int_distribution<std::int64_t> id(0, V - 1);
    for (auto& y : target) y = id(rng);
    mask.assign(rows, 1);
    ref.assign(static_cast<std::size_t>(S), -100.0f);
    reward.assign(static_cast<std::size_t>(S), 0.0f);
  }
  const double bandwidth = dir.empty() ? copy_bandwidth() : 0.0;
  const rpo::token_input<float> in{.tokens = {logits, target, mask, shape}, .ref_logp = ref, .reward = reward};
  const rpo::token_output<float> out{.grad_logits = logits};  // in place
  const L loss{};
  float value = 0;
  double seconds = 0;
  long extra = 0;
  if (dir.empty()) {
    const peak_meter meter;
    seconds = median_seconds(reps, [&] { value = rpo::evaluate_tokens(loss, in, out); });
    extra = meter.extra_bytes();
  } else {
    value = rpo::evaluate_tokens(loss, in, out);  // once: in place, the logits become the gradient
    write_file(dir + "/grad.f32", logits.data(), logits.size());
  }
  std::printf("{\"loss\": %.9g, \"seconds\": %.9g, \"peak_extra_bytes\": %ld, \"copy_bytes_per_second\": %.6g, "
              "\"threads\": %d}\n",
              static_cast<double>(value), seconds, extra, bandwidth, threads());
  return 0;
}

int usage() {
  std::fprintf(stderr, "usage: rpo_torch_driver pairs <preset> <dir> <reps> | fused dpo <S> <T> <V> <reps> [<dir>] | list\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "list" && argc == 2) {
    for (const rpo::loss_info& info : rpo::registered_losses())
      if (info.name != "rpo" && rpo::parse_loss(info.name).group_size() == 2) std::printf("%s\n", info.name.c_str());
    return 0;
  }
  if (mode == "pairs" && argc == 5) return pairs(argv[2], argv[3], std::atoi(argv[4]));
  // The fused pass is a static composition (rpo::evaluate_tokens takes no any_loss): DPO, the trainers' default.
  if (mode == "fused" && (argc == 7 || argc == 8) && std::string(argv[2]) == "dpo")
    return fused<rpo::dpo>(std::atoll(argv[3]), std::atoll(argv[4]), std::atoll(argv[5]), std::atoi(argv[6]),
                           argc == 8 ? argv[7] : "");
  return usage();
}
