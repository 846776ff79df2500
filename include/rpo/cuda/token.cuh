// rpo/cuda/token.cuh — the fused logits → sequence log-probs → loss → ∂loss/∂logits pass on the GPU.
//
// Public names: rpo::cuda::token_logits, rpo::cuda::token_input, rpo::cuda::token_output,
//               rpo::cuda::evaluate_tokens.
// The GPU twin of rpo::evaluate_tokens (rpo/token.hpp), with the same mathematics: RPO.md §1 (ℓ = Σ_t m_t·log π(y_t|·),
// n = Σ_t m_t, ℓ̄ = ℓ/n) and (E8) per token, ∂L/∂log π(y_t|·) = ∂L/∂ℓ·m_t (/n for the mean), with
// log π(y_t|·) = z_{y_t} − logsumexp(z) and ∂log π(y_t|·)/∂z_v = [v = y_t] − softmax(z)_v.
//   pass 1   one block per response row: online max and Σ e^{z − max} over the vocabulary (16-byte loads, fp32),
//            the target's log-prob; then one block per sequence sums its tokens (in double, fixed order).
//   loss     the S sequence log-probs go to the host, where rpo::evaluate runs the loss with every check it has,
//            and its S gradients come back: every preset works unchanged.
//   pass 2   one block per response row writes c_t·([v = y_t] − softmax_v) over the vocabulary, to a caller buffer
//            or in place over the logits.
// Two reads of the logits and one write of the gradient; scratch memory is O(S·T) (never T × V).
// @sa docs/cuda.md
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "rpo/batch.hpp"
#include "rpo/concepts.hpp"
#include "rpo/cuda/error.cuh"
#include "rpo/cuda/memory.cuh"
#include "rpo/cuda/reduce.cuh"
#include "rpo/cuda/storage.cuh"
#include "rpo/errors.hpp"
#include "rpo/loss.hpp"
#include "rpo/token.hpp"

namespace rpo::cuda {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// Logits with their target token ids and response mask, in device memory (the spans' sizes are checked on the
/// host; their elements are only read on the device). The layout of rpo::token_logits: logits row-major
/// [S][T][V], targets and mask [S][T]; an empty mask marks every position; the target of a masked position is never
/// read.  @sa docs/cuda.md#token_logits
template <Storage T> struct token_logits {
  std::span<const T> logits{};             ///< S·T·V entries of float, __half or __nv_bfloat16 (device)
  std::span<const std::int64_t> target{};  ///< S·T token ids in [0, V) at response positions (device)
  std::span<const std::uint8_t> mask{};    ///< S·T entries, 0: not a response token; or empty for all (device)
  token_shape shape{};                     ///< S, T, V
};

/// The input of the GPU fused pass: rpo::token_input with device spans. The sequence-level fields are float
/// whatever the logits' storage (a sum over hundreds of tokens does not fit bf16's 8 bits).
/// @sa docs/cuda.md#token_input
template <Storage T> struct token_input {
  token_logits<T> tokens{};                            ///< logits, target ids, response mask, shape (device)
  token_reduction per_sequence = token_reduction::sum; ///< sum, or mean over the response length
  std::span<const float> ref_logp{};                   ///< S reference sequence log-probs, if the loss reads them (device)
  std::span<const float> reward{};                     ///< S explicit rewards, if the loss reads them (device)
  std::span<const std::int64_t> offsets{};             ///< G + 1 group boundaries, or empty (device; see batch_input)
};

/// Where the GPU fused pass writes (device spans). `grad_logits` (S·T·V entries of the logits' storage type,
/// required) may be the logits' own memory: the gradient then replaces them. The others are optional.
/// @sa docs/cuda.md#token_output
template <Storage T> struct token_output {
  std::span<T> grad_logits{};    ///< ∂(reduced loss)/∂logits, S·T·V entries; may alias the logits, no other overlap
  std::span<float> logp{};       ///< S sequence log-probs
  std::span<float> length{};     ///< S response lengths n_s = Σ_t m_t
  std::span<float> group_loss{}; ///< G per-group losses, before reduction
};

/// The fused pass on the GPU (RPO.md §1 and (E8)): returns the reduced loss, as rpo::evaluate_tokens does on the same
/// values (float: within 1e-5 relative; docs/cuda.md gives the tolerances of bf16 and fp16 storage). Work is enqueued
/// on `stream`; the call returns once the loss is known, with the gradient and the optional outputs enqueued after
/// it on `stream` (they are ready when the stream reaches them). It synchronises with `stream` once, to bring the S
/// sequence log-probs to the host.
///
/// Errors are those of rpo::evaluate_tokens, with its messages: std::invalid_argument for a bad shape, a span of the
/// wrong size, a parameter, or a target id outside [0, V) at a response position (found on the device and named
/// with its sequence and token); std::domain_error for an empty response where a length or a mean needs it and
/// for a non-finite token log-prob, and for the loss's own checks (rpo::evaluate). A failed call leaves `out` and the
/// logits untouched. Shapes, sizes and parameters are checked before any CUDA call. A failing CUDA call throws
/// rpo::cuda::error. Errors always throw (the CPU path's errors::report and errors::unchecked are not offered).
/// @sa docs/cuda.md#evaluate_tokens
template <LossLike L, Storage T>
float evaluate_tokens(const L& l, const token_input<T>& in, const token_output<T>& out,
                      reduction how = reduction::mean(), cudaStream_t stream = nullptr);

// ===========================================================================================================
// Implementations
// ===========================================================================================================

namespace detail {

/// Pass 1: for each response row r, lse[r] = logsumexp of the row and token_logp[r] = z_{y_r} − lse[r]; 0 and 0 at
/// masked rows and at rows with a bad target, which are not read. flags[0] is lowered to the first row whose target
/// is outside [0, vocab), flags[1] to the first row whose log-prob is not finite.
template <Storage T>
__global__ void __launch_bounds__(block_threads)
    token_forward_kernel(const T* logits, const std::int64_t* target, const std::uint8_t* mask, std::int64_t rows,
                         std::int64_t vocab, float* lse, float* token_logp, unsigned long long* flags) {
  __shared__ max_sum shared[block_warps];
  constexpr int w = lanes<T>;
  const auto tid = static_cast<std::int64_t>(threadIdx.x);
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    // Every branch below depends on r only: the whole block takes it, as block_merge needs.
    const bool response = mask == nullptr || mask[r] != 0;
    const std::int64_t y = response ? target[r] : 0;
    if (!response || y < 0 || y >= vocab) {
      if (tid == 0) {
        lse[r] = 0.f;
        token_logp[r] = 0.f;
        if (response) atomicMin(&flags[0], static_cast<unsigned long long>(r));
      }
      continue;
    }
    const T* row = logits + r * vocab;
    max_sum a;
    const std::int64_t head = head_length(row, vocab);  // < lanes<T> ≤ block_threads
    if (tid < head) absorb<1>(a, {to_float(row[tid])});
    const std::int64_t vectors = (vocab - head) / w;
    const T* body = row + head;
    for (std::int64_t i = tid; i < vectors; i += block_threads) {
      float x[w];
      load_vector(body + i * w, x);
      absorb(a, x);
    }
    for (std::int64_t v = head + vectors * w + tid; v < vocab; v += block_threads) absorb<1>(a, {to_float(row[v])});
    a = block_merge(a, shared);
    if (tid == 0) {
      const float l = a.m + logf(a.s);
      const float lp = to_float(row[y]) - l;
      lse[r] = l;
      token_logp[r] = lp;
      if (!isfinite(lp)) atomicMin(&flags[1], static_cast<unsigned long long>(r));
    }
  }
}

/// For each sequence s: length[s] = n_s = Σ_t m_t and logp[s] = Σ_t m_t·token_logp[s,t] (in double, fixed order),
/// over n_s when `mean` (0 for an empty response, which the host rejects before it is used).
__global__ void __launch_bounds__(block_threads)
    sequence_kernel(const float* token_logp, const std::uint8_t* mask, std::int64_t sequences, std::int64_t tokens,
                    bool mean, float* logp, float* length) {
  __shared__ double shared_sum[block_warps];
  __shared__ long long shared_count[block_warps];
  const auto tid = static_cast<std::int64_t>(threadIdx.x);
  for (std::int64_t s = blockIdx.x; s < sequences; s += gridDim.x) {
    double sum = 0;
    long long n = 0;
    for (std::int64_t t = tid; t < tokens; t += block_threads) {
      const std::int64_t i = s * tokens + t;
      if (mask == nullptr || mask[i] != 0) {
        sum += static_cast<double>(token_logp[i]);
        ++n;
      }
    }
    sum = block_sum(sum, shared_sum);
    n = block_sum(n, shared_count);
    if (tid == 0) {
      const double count = static_cast<double>(n);
      logp[s] = static_cast<float>(mean ? (n > 0 ? sum / count : 0.0) : sum);
      length[s] = static_cast<float>(count);
    }
  }
}

/// Writes f(v, z_v) (or 0 where `read` is false, without reading the logits) over one row of n entries: scalar up to
/// the first 16-byte boundary of `g`, then 16-byte vectors (loads too when `vector_loads`: the logits' row has the
/// same alignment), then scalar to the end. `x` may be `g`.
template <Storage T, class F>
__device__ inline void write_row(const T* x, T* g, std::int64_t n, bool read, bool vector_loads, const F& f) {
  constexpr int w = lanes<T>;
  const auto tid = static_cast<std::int64_t>(threadIdx.x);
  const auto entry = [&](std::int64_t v) { return read ? f(v, to_float(x[v])) : 0.f; };
  const std::int64_t head = head_length(g, n);
  if (tid < head) g[tid] = from_float<T>(entry(tid));
  const std::int64_t vectors = (!read || vector_loads) ? (n - head) / w : 0;
  for (std::int64_t i = tid; i < vectors; i += block_threads) {
    const std::int64_t v0 = head + i * w;
    float z[w] = {};
    if (read) load_vector(x + v0, z);
    float out[w];
#pragma unroll
    for (int k = 0; k < w; ++k) out[k] = read ? f(v0 + k, z[k]) : 0.f;
    store_vector(g + v0, out);
  }
  for (std::int64_t v = head + vectors * w + tid; v < n; v += block_threads) g[v] = from_float<T>(entry(v));
}

/// Pass 2: row r of the gradient is c_r·([v = y_r] − e^{z_v − lse_r}), with c_r = grad_logp[s] (over n_s for the
/// mean); the target's entry is −c_r·expm1(log p_{y_r}), its stable form. Zeros at masked rows (not read).
template <Storage T>
__global__ void __launch_bounds__(block_threads)
    token_backward_kernel(const T* logits, T* grad, const std::int64_t* target, const std::uint8_t* mask,
                          std::int64_t rows, std::int64_t tokens, std::int64_t vocab, const float* lse,
                          const float* token_logp, const float* grad_logp, const float* length, bool mean,
                          bool vector_loads) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* x = logits + r * vocab;
    T* g = grad + r * vocab;
    const bool response = mask == nullptr || mask[r] != 0;
    if (!response) {
      write_row(x, g, vocab, false, vector_loads, [](std::int64_t, float) { return 0.f; });
      continue;
    }
    const std::int64_t s = r / tokens;
    const float gs = grad_logp[s];
    const float c = mean ? static_cast<float>(static_cast<double>(gs) / static_cast<double>(length[s])) : gs;
    const float l = lse[r];
    const std::int64_t y = target[r];
    const float gy = -c * expm1f(token_logp[r]);
    write_row(x, g, vocab, true, vector_loads,
              [=](std::int64_t v, float z) { return v == y ? gy : -c * expf(z - l); });
  }
}

/// Where the parts of the scratch memory of one call start (bytes; each 16-byte aligned).
struct token_scratch_layout {
  std::size_t flags = 0, logp, length, grad_logp, lse, token_logp, total;
  token_scratch_layout(std::int64_t sequences, std::int64_t rows) {
    const auto per_sequence = round16(static_cast<std::size_t>(sequences) * sizeof(float));
    const auto per_row = round16(static_cast<std::size_t>(rows) * sizeof(float));
    logp = 16;
    length = logp + per_sequence;
    grad_logp = length + per_sequence;  // [flags, logp, length) come back to the host in one copy
    lse = grad_logp + per_sequence;
    token_logp = lse + per_row;
    total = token_logp + per_row;
  }
};

/// True when [a, a + n) and [b, b + n) share memory but do not start at the same address.
template <class T> bool overlap_elsewhere(const T* a, const T* b, std::size_t n) noexcept {
  const auto x = reinterpret_cast<std::uintptr_t>(a), y = reinterpret_cast<std::uintptr_t>(b);
  const std::uintptr_t bytes = n * sizeof(T);
  return n > 0 && x != y && x < y + bytes && y < x + bytes;
}

}  // namespace detail

template <LossLike L, Storage T>
float evaluate_tokens(const L& l, const token_input<T>& in, const token_output<T>& out, reduction how,
                      cudaStream_t stream) {
  const char* who = loss_name<L>();
  const errors::throw_on_error policy{};
  const token_logits<T>& tok = in.tokens;
  const token_shape shape = tok.shape;

  // Host checks, before any CUDA call: the parameters, the shape, every size, the aliasing and the alignment.
  rpo::detail::check_loss_parameters(l, policy);
  rpo::detail::check_token_sizes(who, shape, tok.logits.size(), tok.target.size(), tok.mask.size(), policy);
  const std::int64_t s_count = shape.sequences, rows = s_count * shape.tokens, n = rows * shape.vocab;
  const std::string one_per_sequence = "must have one per sequence, " + std::to_string(s_count) + ", or none";
  rpo::detail::has_size(policy, who, "grad_logits", out.grad_logits.size(), n,
                        "must have as many as logits, " + std::to_string(n) + " (it may be the logits' own memory)");
  rpo::detail::has_size(policy, who, "logp", out.logp.size(), s_count, one_per_sequence, true);
  rpo::detail::has_size(policy, who, "length", out.length.size(), s_count, one_per_sequence, true);
  if (detail::overlap_elsewhere(tok.logits.data(), static_cast<const T*>(out.grad_logits.data()),
                                static_cast<std::size_t>(n)))
    rpo::detail::fail(policy, errc::invalid_argument,
                      std::string(who) + ": grad_logits must be the logits' own memory (in place) or not overlap "
                                         "them, but the two overlap at different addresses");
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % alignof(T) == 0; };
  if (!aligned(tok.logits.data()) || !aligned(out.grad_logits.data()))
    rpo::detail::fail(policy, errc::invalid_argument,
                      std::string(who) + ": logits and grad_logits must be aligned to their element size, " +
                          std::to_string(alignof(T)) + " bytes");

  const detail::token_scratch_layout at(s_count, rows);
  const detail::scratch work(at.total, stream);
  auto* flags = work.at<unsigned long long>(at.flags);
  float* logp_d = work.at<float>(at.logp);
  float* length_d = work.at<float>(at.length);
  float* grad_logp_d = work.at<float>(at.grad_logp);
  float* lse_d = work.at<float>(at.lse);
  float* token_logp_d = work.at<float>(at.token_logp);
  const std::uint8_t* mask = tok.mask.empty() ? nullptr : tok.mask.data();
  const bool mean = in.per_sequence == token_reduction::mean;

  // Pass 1 and the sums over tokens; then one copy brings the flags, log-probs and lengths to the host.
  RPO_CUDA_TRY(cudaMemsetAsync(flags, 0xff, 2 * sizeof(unsigned long long), stream));
  if (rows > 0) {
    detail::token_forward_kernel<T><<<detail::grid_for(rows), detail::block_threads, 0, stream>>>(
        tok.logits.data(), tok.target.data(), mask, rows, shape.vocab, lse_d, token_logp_d, flags);
    RPO_CUDA_TRY(cudaGetLastError());
  }
  if (s_count > 0) {
    detail::sequence_kernel<<<detail::grid_for(s_count), detail::block_threads, 0, stream>>>(
        token_logp_d, mask, s_count, shape.tokens, mean, logp_d, length_d);
    RPO_CUDA_TRY(cudaGetLastError());
  }
  std::vector<unsigned char> back(at.grad_logp);
  RPO_CUDA_TRY(cudaMemcpyAsync(back.data(), flags, back.size(), cudaMemcpyDeviceToHost, stream));
  RPO_CUDA_TRY(cudaStreamSynchronize(stream));
  unsigned long long first_bad[2];
  std::memcpy(first_bad, back.data(), sizeof first_bad);
  const auto us = static_cast<std::size_t>(s_count);
  std::vector<float> logp(us), length(us);
  if (us > 0) {
    std::memcpy(logp.data(), back.data() + at.logp, us * sizeof(float));
    std::memcpy(length.data(), back.data() + at.length, us * sizeof(float));
  }

  // The errors of the CPU path, in its order and with its messages.
  if (first_bad[0] != detail::no_index) {
    const auto r = static_cast<std::int64_t>(first_bad[0]);
    const std::int64_t y = detail::value_at(tok.target.data() + r, stream);
    rpo::detail::fail(policy, errc::invalid_argument, rpo::detail::bad_target_message(who, r, shape, y));
  }
  constexpr bool needs_length = contains(rpo::detail::shape_of<L>().inputs, input::length);
  for (std::int64_t s = 0; s < s_count; ++s)
    rpo::detail::check_response_length(policy, who, s, static_cast<std::int64_t>(length[static_cast<std::size_t>(s)]),
                                       in.per_sequence, needs_length);
  if (first_bad[1] != detail::no_index) {
    const auto r = static_cast<std::int64_t>(first_bad[1]);
    const float value = detail::value_at(token_logp_d + r, stream);
    rpo::detail::fail(policy, errc::domain_error,
                      rpo::detail::nonfinite_token_message(who, r, shape.tokens, static_cast<double>(value)));
  }

  // The loss on the host, with all of rpo::evaluate's checks, before anything is written to `out`.
  const std::vector<float> ref = detail::to_host(in.ref_logp, stream), reward = detail::to_host(in.reward, stream);
  const std::vector<std::int64_t> offsets = detail::to_host(in.offsets, stream);
  std::vector<float> grad_logp(us), group_loss(out.group_loss.size());
  const float value = rpo::evaluate(l, rpo::batch_input<float>{.logp = logp, .ref_logp = ref, .length = length, .reward = reward,
                                                     .offsets = offsets},
                               rpo::batch_output<float>{.group_loss = group_loss, .grad_logp = grad_logp}, how, policy);

  // Pass 2 and the optional outputs. A copy from pageable host memory is staged before cudaMemcpyAsync returns,
  // so the host vectors may go out of scope while the stream runs.
  if (us > 0)
    RPO_CUDA_TRY(cudaMemcpyAsync(grad_logp_d, grad_logp.data(), us * sizeof(float), cudaMemcpyHostToDevice, stream));
  if (rows > 0) {
    const auto offset = reinterpret_cast<std::uintptr_t>(tok.logits.data()) -
                        reinterpret_cast<std::uintptr_t>(out.grad_logits.data());
    detail::token_backward_kernel<T><<<detail::grid_for(rows), detail::block_threads, 0, stream>>>(
        tok.logits.data(), out.grad_logits.data(), tok.target.data(), mask, rows, shape.tokens, shape.vocab, lse_d,
        token_logp_d, grad_logp_d, length_d, mean, offset % 16 == 0);
    RPO_CUDA_TRY(cudaGetLastError());
  }
  if (!out.logp.empty())
    RPO_CUDA_TRY(cudaMemcpyAsync(out.logp.data(), logp_d, us * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  if (!out.length.empty())
    RPO_CUDA_TRY(cudaMemcpyAsync(out.length.data(), length_d, us * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  if (!out.group_loss.empty())
    RPO_CUDA_TRY(cudaMemcpyAsync(out.group_loss.data(), group_loss.data(), group_loss.size() * sizeof(float),
                                 cudaMemcpyHostToDevice, stream));
  return value;
}

}  // namespace rpo::cuda
