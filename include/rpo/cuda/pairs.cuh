// rpo/cuda/pairs.cuh — the pairwise presets over a batch in device memory: one thread per pair.
//
// Public names: rpo::cuda::evaluate_pairs.
// The GPU twin of rpo::evaluate (rpo/batch.hpp) for losses whose sampling scheme takes groups of a fixed size (the
// pairwise presets: chosen, rejected, chosen, rejected, ...). Each thread runs the composition's own
// `evaluate(group, grad_logp, grad_ref_logp)` (rpo/loss.hpp: RPO.md (E1) and the chain rule (E8)), the same
// host/device code as the CPU path; the per-pair losses are summed in double in a fixed order and reduced as
// rpo::evaluate reduces them (mean over pairs, sum, or sum over a caller's count).
// @sa docs/cuda.md#evaluate_pairs
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "rpo/batch.hpp"
#include "rpo/concepts.hpp"
#include "rpo/cuda/error.cuh"
#include "rpo/cuda/memory.cuh"
#include "rpo/cuda/reduce.cuh"
#include "rpo/errors.hpp"
#include "rpo/loss.hpp"

namespace rpo::cuda {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// rpo::evaluate on device memory, for a loss that takes groups of a fixed size K (sampling::pair and what is built
/// on it: every pairwise preset, the weighted sums rpo::cpo/irpo/mpo and the pairwise extensions). `in` and `out`
/// are rpo::batch_input / rpo::batch_output whose spans point to device memory; `in.offsets` must be empty (groups
/// are consecutive runs of K: chosen, rejected, ...). Returns the reduced loss and writes the per-group losses and
/// the gradients of the reduced loss, as rpo::evaluate does (float: within 1e-5 relative of it; double: 1e-12).
/// Synchronises with `stream` once, to bring the loss to the host.
///
/// Errors are rpo::evaluate's, with its messages: sizes, the reduction and the parameters are checked on the host
/// before any CUDA call (std::invalid_argument); the values the loss reads (finite log-probs and rewards, lengths
/// > 0, the order a target needs of the rewards) are checked on the device, and a failure there is reported by
/// running rpo::evaluate's own check on a host copy of the batch (std::domain_error naming the field and index). A
/// failed call leaves `out` untouched. A failing CUDA call throws rpo::cuda::error. A loss whose groups have no
/// fixed size (the K-response schemes, which take offsets) does not compile here: use rpo::evaluate on the host,
/// whose cost is O(N) beside the logits pass.  @sa docs/cuda.md#evaluate_pairs
template <LossLike L, Scalar T>
T evaluate_pairs(const L& l, const batch_input<T>& in, const batch_output<T>& out = {},
                 reduction how = reduction::mean(), cudaStream_t stream = nullptr);

// ===========================================================================================================
// Implementations
// ===========================================================================================================

namespace detail {

/// The device pointers of the fields a loss reads (null for the others), passed to kernels by value.
template <class T> struct batch_ref {
  const T* logp;
  const T* ref_logp;
  const T* length;
  const T* reward;
};

/// The group of K responses starting at response `first`.
template <class C, class T> __device__ inline group_ref<T> group_at(const batch_ref<T>& in, std::int64_t first) {
  const auto field = [&](const T* p) { return p == nullptr ? nullptr : p + first; };
  return {in.logp + first, field(in.ref_logp), field(in.length), field(in.reward), C::group_size};
}

/// Lowers *first_bad to the first group holding a value the loss may not read: a non-finite log-prob, reference
/// log-prob or reward, a length that is not finite and > 0, a reward outside [0, 1] where the rewards are
/// probabilities (rpo::detail::reward_is_probability), or rewards out of the order the loss needs
/// (rpo::detail::ranking_breach), the checks of rpo::evaluate.
template <class C, class T>
__global__ void __launch_bounds__(block_threads)
    pair_check_kernel(batch_ref<T> in, std::int64_t groups, unsigned long long* first_bad) {
  constexpr std::int64_t k = C::group_size;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * block_threads;
  for (std::int64_t g = static_cast<std::int64_t>(blockIdx.x) * block_threads + threadIdx.x; g < groups; g += stride) {
    const group_ref<T> group = group_at<C>(in, g * k);
    bool ok = true;
    for (std::int64_t i = 0; i < k; ++i) {
      ok = ok && is_finite(group.logp[i]);
      if constexpr (contains(C::inputs, input::ref_logp)) ok = ok && is_finite(group.ref_logp[i]);
      if constexpr (contains(C::inputs, input::length)) ok = ok && is_finite(group.length[i]) && group.length[i] > T(0);
      if constexpr (contains(C::inputs, input::reward)) ok = ok && is_finite(group.reward[i]);
      if constexpr (rpo::detail::reward_is_probability<C>() && contains(C::inputs, input::reward))
        ok = ok && group.reward[i] >= T(0) && group.reward[i] <= T(1);  // a win probability (soft SPPO)
    }
    if constexpr (C::ranks != ranking::none && contains(C::inputs, input::reward)) {
      if (ok) ok = rpo::detail::ranking_breach(C::ranks, group.reward, k).first < 0;
    }
    if (!ok) atomicMin(first_bad, static_cast<unsigned long long>(g));
  }
}

/// Unless *first_bad names a group: the loss of every group into group_loss (when given), the gradients of the
/// reduced loss (the group's, times `scale`) into grad_logp / grad_ref_logp (when given), and each block's sum of
/// its groups' losses (double, fixed order) into partial[blockIdx.x].
template <class C, class T>
__global__ void __launch_bounds__(block_threads)
    pair_loss_kernel(C loss, batch_ref<T> in, std::int64_t groups, const unsigned long long* first_bad, double scale,
                     T* grad_logp, T* grad_ref_logp, T* group_loss, double* partial) {
  __shared__ double shared[block_warps];
  if (*first_bad != no_index) return;  // the same answer for the whole block: no thread reaches the barriers
  constexpr std::int64_t k = C::group_size;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * block_threads;
  double sum = 0;
  for (std::int64_t g = static_cast<std::int64_t>(blockIdx.x) * block_threads + threadIdx.x; g < groups; g += stride) {
    const std::int64_t first = g * k;
    T* gl = grad_logp == nullptr ? nullptr : grad_logp + first;
    T* gr = grad_ref_logp == nullptr ? nullptr : grad_ref_logp + first;
    const T value = loss.evaluate(group_at<C>(in, first), gl, gr);
    if (scale != 1) {
      for (std::int64_t i = 0; i < k; ++i) {
        if (gl != nullptr) gl[i] = static_cast<T>(static_cast<double>(gl[i]) * scale);
        if (gr != nullptr) gr[i] = static_cast<T>(static_cast<double>(gr[i]) * scale);
      }
    }
    if (group_loss != nullptr) group_loss[g] = value;
    sum += static_cast<double>(value);
  }
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

/// *total = Σ partial[0..n) in a fixed order (one block).
__global__ void __launch_bounds__(block_threads) sum_kernel(const double* partial, std::int64_t n, double* total) {
  __shared__ double shared[block_warps];
  double sum = 0;
  for (std::int64_t i = threadIdx.x; i < n; i += block_threads) sum += partial[i];
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) *total = sum;
}

}  // namespace detail

template <LossLike L, Scalar T>
T evaluate_pairs(const L& l, const batch_input<T>& in, const batch_output<T>& out, reduction how, cudaStream_t stream) {
  using C = std::remove_cv_t<decltype(as_loss(l))>;
  static_assert(C::group_size > 0,
                "rpo::cuda::evaluate_pairs: the loss must take groups of a fixed size (sampling::pair: the pairwise "
                "presets); for groups of K responses given by offsets use rpo::evaluate on the host");
  static_assert(std::is_trivially_copyable_v<C>, "rpo::cuda::evaluate_pairs: the loss is passed to the kernel by value");
  const C composed = as_loss(l);
  constexpr rpo::detail::loss_shape shape = rpo::detail::shape_of<L>();
  const errors::throw_on_error policy{};

  // Host checks, before any CUDA call. With no offsets, check_batch_shape reads only the spans' sizes.
  rpo::detail::check_loss_parameters(l, policy);
  if (!in.offsets.empty())
    rpo::detail::fail(policy, errc::invalid_argument,
                      std::string(shape.name) + ": rpo::cuda::evaluate_pairs takes consecutive groups of " +
                          std::to_string(C::group_size) + " responses, but offsets were given (" +
                          std::to_string(in.offsets.size()) + " entries); leave them empty");
  const std::int64_t groups = rpo::detail::check_batch_shape(shape, in, out, how, policy);
  double scale = 1;
  if (how.kind == reduction::mode::mean) scale = 1.0 / static_cast<double>(groups);
  if (how.kind == reduction::mode::sum_over_count) scale = 1.0 / how.count;
  if (groups == 0) return T(0);  // a sum over no groups (the mean of none was refused above)

  const auto read = [&](input field, std::span<const T> s) { return contains(C::inputs, field) ? s.data() : nullptr; };
  const detail::batch_ref<T> ref{in.logp.data(), read(input::ref_logp, in.ref_logp), read(input::length, in.length),
                                 read(input::reward, in.reward)};
  const unsigned blocks = detail::grid_for((groups + detail::block_threads - 1) / detail::block_threads);
  const detail::scratch work(16 + detail::round16(blocks * sizeof(double)), stream);
  auto* first_bad = work.at<unsigned long long>(0);
  auto* total = work.at<double>(8);
  auto* partial = work.at<double>(16);
  const auto at = [](auto s) { return s.empty() ? nullptr : s.data(); };

  RPO_CUDA_TRY(cudaMemsetAsync(first_bad, 0xff, sizeof(unsigned long long), stream));
  detail::pair_check_kernel<C, T><<<blocks, detail::block_threads, 0, stream>>>(ref, groups, first_bad);
  RPO_CUDA_TRY(cudaGetLastError());
  detail::pair_loss_kernel<C, T><<<blocks, detail::block_threads, 0, stream>>>(
      composed, ref, groups, first_bad, scale, at(out.grad_logp), at(out.grad_ref_logp), at(out.group_loss), partial);
  RPO_CUDA_TRY(cudaGetLastError());
  detail::sum_kernel<<<1, detail::block_threads, 0, stream>>>(partial, blocks, total);
  RPO_CUDA_TRY(cudaGetLastError());
  unsigned char back[16];
  RPO_CUDA_TRY(cudaMemcpyAsync(back, first_bad, sizeof back, cudaMemcpyDeviceToHost, stream));
  RPO_CUDA_TRY(cudaStreamSynchronize(stream));
  unsigned long long bad = 0;
  double sum = 0;
  std::memcpy(&bad, back, 8);
  std::memcpy(&sum, back + 8, 8);

  if (bad != detail::no_index) {
    // The device found a value the loss may not read: rpo::evaluate's own checks on a host copy name it.
    const std::vector<T> logp = detail::to_host(in.logp, stream), ref_logp = detail::to_host(in.ref_logp, stream),
                         length = detail::to_host(in.length, stream), reward = detail::to_host(in.reward, stream);
    rpo::evaluate(l, batch_input<T>{.logp = logp, .ref_logp = ref_logp, .length = length, .reward = reward}, {}, how,
                  policy);
    throw std::logic_error(std::string(shape.name) + ": rpo::cuda::evaluate_pairs: the device rejected group " +
                           std::to_string(bad) + " but the host check accepts it (a bug in rpo; please report it)");
  }
  return static_cast<T>(sum * scale);
}

}  // namespace rpo::cuda
