// rpo/detail/vexp.hpp — a vectorised exponential (and log1p on [−1/2, 1], log) for the token kernels of rpo/token.hpp
// and the pair kernels of rpo/detail/pair_block.hpp (internal).
//
// Internal names: rpo::detail::simd<T> (a native-width vector of float or double: load, store, streaming store,
// splat, select, max, horizontal sum) and rpo::detail::simd<T>::exp, exp_gradual, log1p_unit, log.
// Why our own: the fused log-softmax pass evaluates two exponentials per logit, and on a CPU with AVX-512 or AVX2
// that, not memory, is what limits it; std::exp is scalar and Eigen's generic .exp() reaches about half of the
// bandwidth floor. The core needs nothing but the standard library (DESIGN.md), so this uses GCC/Clang vector
// extensions at the width the compiler targets (16 bytes for SSE2, 32 with -mavx, 64 with -mavx512f: build with
// -march=native or similar for speed); any other compiler gets a one-lane fallback that calls std::exp.
//
// The method (Cody and Waite, with Cephes' split of ln 2): n = round(x·log₂e) through the 1.5·2^p shifter,
// r = x − n·ln2 in two parts, exp(r) by a polynomial on |r| ≤ ln2/2, and 2^n assembled in the exponent bits.
//   float:  a degree-6 polynomial fitted for relative error (3e-9 before rounding); within 2 ulp of e^x on
//           [−87.3, 88.3] (tests/unit/token.test.cpp checks a dense grid).
//   double: Taylor to degree 13 (truncation < 1e-17 relative on |r| ≤ ln2/2); a few ulp.
// Outside the normal range: x below ln(min normal) (−87.336 float, −708.39 double) gives 0 (no subnormals), x above
// 127.5·ln2 = 88.376 (float) or 1023.5·ln2 = 709.43 (double) gives +inf, −inf gives 0, NaN gives NaN. The token
// kernels only evaluate exp(x − max) ≤ 1, where flushing results below 1e-38 changes no sum.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

// Streaming (non-temporal) stores where the vector extensions target x86 with SSE2 or wider.
#if (defined(__GNUC__) || defined(__clang__)) && !defined(RPO_NO_VECTOR_EXTENSIONS) && \
    (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)
#  include <immintrin.h>
#  define RPO_DETAIL_STREAMING_STORES 1
#else
#  define RPO_DETAIL_STREAMING_STORES 0
#endif

namespace rpo::detail {

#if (defined(__GNUC__) || defined(__clang__)) && !defined(RPO_NO_VECTOR_EXTENSIONS)
#  if defined(__AVX512F__)
inline constexpr int simd_bytes = 64;
#  elif defined(__AVX__)
inline constexpr int simd_bytes = 32;
#  else
inline constexpr int simd_bytes = 16;
#  endif
#  define RPO_DETAIL_VECTOR_EXTENSIONS 1
#endif

template <class T> struct simd;

/// 1/k for k < N, rounded to T at compile time (entry 0 is 0): the coefficients of the series below, read from memory
/// instead of divided at run time in each unrolled step.
template <class T, std::size_t N> struct reciprocal_table {
  T value[N] = {};
  constexpr reciprocal_table() noexcept {
    for (std::size_t k = 1; k < N; ++k) value[k] = T(1) / T(k);
  }
};
template <class T, std::size_t N> inline constexpr reciprocal_table<T, N> reciprocals{};

// The lane functions (here, rpo/detail/lane_math.hpp, rpo/detail/reward_lanes.hpp, rpo/detail/pair_block.hpp) are
// forced inline: each caller reads a few of the values one computes (σ(x) but not softplus(x), say), and only inlined
// do the others cost nothing.
#if defined(__GNUC__) || defined(__clang__)
#  define RPO_DETAIL_LANES __attribute__((always_inline)) inline
#else
#  define RPO_DETAIL_LANES inline
#endif
// The series loops below are unrolled (GCC does not at -O2); nvcc's front end, which also reads these headers for the
// host side of a .cu file, knows no GCC pragma.
#if (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__)
#  define RPO_DETAIL_UNROLL _Pragma("GCC unroll 32")
#else
#  define RPO_DETAIL_UNROLL
#endif

#ifdef RPO_DETAIL_VECTOR_EXTENSIONS

/// The integer type of T's width, and T's exponent layout.
template <class T> struct float_bits;
template <> struct float_bits<float> {
  using integer = std::int32_t;
  static constexpr int mantissa = 23, bias = 127;
  static constexpr float shifter = 12582912.0f;  // 1.5·2^23: adding it rounds to an integer in the low bits
  static constexpr float lo = -87.33654475f;     // ln(FLT_MIN)
  static constexpr float hi = 88.37626266f;      // 127.5·ln2: n ≤ 127
  static constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;  // Cephes' split of ln 2
};
template <> struct float_bits<double> {
  using integer = std::int64_t;
  static constexpr int mantissa = 52, bias = 1023;
  static constexpr double shifter = 6755399441055744.0;  // 1.5·2^52
  static constexpr double lo = -708.3964185322641;       // ln(DBL_MIN)
  static constexpr double hi = 709.4361393031627;        // 1023.5·ln2: n ≤ 1023
  static constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;  // fdlibm
};

/// A native-width vector of T (float or double) and the few operations the token kernels use.
template <class T> struct simd {
  using bits = float_bits<T>;
  using integer = typename bits::integer;
  static constexpr int lanes = simd_bytes / static_cast<int>(sizeof(T));
  typedef T vec __attribute__((vector_size(simd_bytes)));
  typedef integer ivec __attribute__((vector_size(simd_bytes)));

  static vec splat(T x) noexcept { return vec{} + x; }
  static vec load(const T* p) noexcept {
    vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, vec v) noexcept { std::memcpy(p, &v, sizeof v); }
  /// Whether stream() bypasses the cache on this target (x86 with SSE2: a non-temporal store).
  static constexpr bool streams = RPO_DETAIL_STREAMING_STORES;
  /// Stores v at p, which must be aligned to simd_bytes, without first reading the cache line that holds it (a
  /// non-temporal store, where `streams`; a plain store elsewhere). For an output that is written once and not read
  /// again soon: it saves the read for ownership, a third of the traffic of a pass that reads x and writes y.
  /// stream_fence() must follow before the stored values are read or written again.
  static void stream(T* p, vec v) noexcept {
#if RPO_DETAIL_STREAMING_STORES
    if constexpr (sizeof(T) == 4 && simd_bytes == 64) _mm512_stream_ps(p, v);
    else if constexpr (sizeof(T) == 8 && simd_bytes == 64) _mm512_stream_pd(p, v);
    else if constexpr (sizeof(T) == 4 && simd_bytes == 32) _mm256_stream_ps(p, v);
    else if constexpr (sizeof(T) == 8 && simd_bytes == 32) _mm256_stream_pd(p, v);
    else if constexpr (sizeof(T) == 4) _mm_stream_ps(p, v);
    else _mm_stream_pd(p, v);
#else
    store(p, v);
#endif
  }
  /// Copies n values from src to dst with stream() stores from the first vector-aligned address of dst on (plain
  /// stores before it and for the tail). stream_fence() must follow, as for stream().
  static void stream_copy(T* dst, const T* src, std::int64_t n) noexcept {
    std::int64_t i = 0;
    while (i < n && reinterpret_cast<std::uintptr_t>(dst + i) % simd_bytes != 0) dst[i] = src[i], ++i;
    for (; i + lanes <= n; i += lanes) stream(dst + i, load(src + i));
    for (; i < n; ++i) dst[i] = src[i];
  }
  /// Orders the stream() stores of this thread before its later loads and stores.
  static void stream_fence() noexcept {
#if RPO_DETAIL_STREAMING_STORES
    _mm_sfence();
#endif
  }
  /// The first n < lanes entries of p, the others `fill`.
  static vec load_partial(const T* p, int n, T fill) noexcept {
    vec v = splat(fill);
    for (int i = 0; i < n; ++i) v[i] = p[i];
    return v;
  }
  static void store_partial(T* p, vec v, int n) noexcept {
    for (int i = 0; i < n; ++i) p[i] = v[i];
  }
  /// Lane-wise max that keeps `a` where b is NaN.
  static vec max(vec a, vec b) noexcept { return b > a ? b : a; }
  static T reduce_max(vec v) noexcept {
    T m = v[0];
    for (int i = 1; i < lanes; ++i) m = v[i] > m ? v[i] : m;
    return m;
  }
  static double reduce_sum(vec v) noexcept {
    double s = 0;
    for (int i = 0; i < lanes; ++i) s += static_cast<double>(v[i]);
    return s;
  }

  /// e^x lane by lane (see the header comment for the method, accuracy and range).
  static vec exp(vec x) noexcept {
    vec y = exp_core<true>(x);
    y = x > splat(bits::hi) ? splat(std::numeric_limits<T>::infinity()) : y;
    return y;
  }
  /// e^x for x ≤ 0 (or −inf, or NaN), as exp but without the overflow branch: what the token kernels need, where
  /// every argument is x − max or x − logsumexp.
  static vec exp_nonpositive(vec x) noexcept { return exp_core<false>(x); }

  /// e^x lane by lane over the whole range, subnormal results included: 2^n is applied as two normal factors, so
  /// that a result below the smallest normal is rounded once, as the C library does. What the pair kernels need
  /// (rpo/detail/pair_block.hpp), whose arguments −|a| reach −745. x > hi gives +inf, x below the smallest
  /// subnormal's logarithm (−745.14 double, −103.98 float) and −inf give 0, NaN gives NaN.
  RPO_DETAIL_LANES static vec exp_gradual(vec x) noexcept {
    constexpr T lowest = sizeof(T) == 4 ? T(-103.98f) : T(-745.2);  // e^lowest rounds to 0
    // Lanes below `lowest` (selected to 0 at the end) evaluate e^0: clamped to `lowest` instead, each would round a
    // subnormal product to 0, a microcode assist of a hundred cycles or more on x86.
    vec xc = x < splat(lowest) ? splat(T(0)) : x;
    xc = xc > splat(bits::hi) ? splat(bits::hi) : xc;
    const auto [r, k] = reduce(xc);
    const ivec half = k >> 1;  // k = half + (k − half), both within the normal exponents for k ≥ −1076
    const vec y = (exp_polynomial(r) * std::bit_cast<vec>((half + bits::bias) << bits::mantissa)) *
                  std::bit_cast<vec>((k - half + bits::bias) << bits::mantissa);
    return x < splat(lowest) ? splat(T(0)) : (x > splat(bits::hi) ? splat(std::numeric_limits<T>::infinity()) : y);
  }

  /// log(1 + e) lane by lane for e in [−1/2, 1] (the e = e^{−|x|} of softplus(x) = max(x, 0) + log(1 + e^{−|x|}), and
  /// log's m − 1): 2·atanh(s) with s = e/(2 + e) ∈ [−1/3, 1/3], the odd series 2s·Σ_k s^{2k}/(2k + 1) to s^{33}
  /// (double; s^{15} float), whose truncation is below 2e-18 (double) and 2e-9 (float) relative: a few ulp, no
  /// cancellation (every term has the sign of e). tests/unit/pair_block.test.cpp checks it against std::log1p on a dense grid.
  RPO_DETAIL_LANES static vec log1p_unit(vec e) noexcept {
    // 2s = 2e/(2 + e) in one division, so that a subnormal e keeps its bits (log1p(e) = e there).
    const vec s2 = (e + e) / (splat(T(2)) + e);
    const vec z = (s2 * s2) * splat(T(0.25));
    constexpr int terms = sizeof(T) == 4 ? 8 : 17;  // k = 0 .. terms − 1
    constexpr const T* inverse = reciprocals<T, std::size_t{2 * terms}>.value;
    vec q = splat(inverse[2 * terms - 1]);
    RPO_DETAIL_UNROLL
    for (int k = terms - 2; k >= 1; --k) q = q * z + splat(inverse[2 * k + 1]);
    return s2 + s2 * (z * q);
  }

  /// x = 2^k·(1 + f) with 1 + f ∈ [√½, √2), for a finite x > 0 (subnormals included): k (as T) and f, exact.
  struct log_reduced {
    vec k;  ///< the exponent
    vec f;  ///< the mantissa − 1, in [√½ − 1, √2 − 1)
  };
  RPO_DETAIL_LANES static log_reduced log_reduce(vec x) noexcept {
    // A subnormal x is scaled by 2^(mantissa + 2) first, so that its exponent field holds k.
    constexpr int lift = bits::mantissa + 2;
    const auto subnormal = x < splat(std::numeric_limits<T>::min());
    const vec xs = subnormal ? x * splat(static_cast<T>(integer(1) << lift)) : x;
    // Subtracting the bits of √½ puts the mantissa's range at one exponent: k = the shifted difference (arithmetic),
    // 1 + f = its mantissa over √½'s exponent.
    const integer root_half = std::bit_cast<integer>(static_cast<T>(0.70710678118654752440));
    const ivec ix = std::bit_cast<ivec>(xs) - root_half;
    const ivec k = (ix >> bits::mantissa) - (subnormal ? ivec{} + lift : ivec{});
    const vec m = std::bit_cast<vec>((ix & ((integer(1) << bits::mantissa) - 1)) + root_half);
    return {__builtin_convertvector(k, vec), m - splat(T(1))};
  }
  /// k·ln2 + log1p(f) from k and log1p(f), k·ln2 in two parts (ln2_hi·k exact).
  RPO_DETAIL_LANES static vec log_join(vec k, vec log1p_f) noexcept {
    return k * splat(bits::ln2_hi) + (log1p_f + k * splat(bits::ln2_lo));
  }

  /// log x lane by lane for x ≥ 0 (subnormals included): log_reduce, log1p(f) by log1p_unit (f ∈ [−0.30, 0.42]),
  /// log_join. A few ulp (tests/unit/pair_block.test.cpp checks dense grids against std::log). 0 gives −inf, +inf gives
  /// +inf, x < 0 and NaN give NaN.
  RPO_DETAIL_LANES static vec log(vec x) noexcept {
    const log_reduced r = log_reduce(x);
    const vec y = log_join(r.k, log1p_unit(r.f));
    const vec zero = splat(T(0)), inf = splat(std::numeric_limits<T>::infinity());
    const vec special = x == zero ? -inf : (x == inf ? x : splat(std::numeric_limits<T>::quiet_NaN()));
    const auto finite_positive = (x > zero) & (x < inf);
    return finite_positive ? y : special;
  }

  /// exp without the overflow select; x is clamped to hi only when `clamp_hi` (x > hi then gives e^hi).
  template <bool clamp_hi> static vec exp_core(vec x) noexcept {
    const vec lo = splat(bits::lo);
    // Clamp first (NaN passes through the comparisons unchanged and propagates).
    vec xc = x < lo ? lo : x;
    if constexpr (clamp_hi) xc = xc > splat(bits::hi) ? splat(bits::hi) : xc;
    const auto [r, k] = reduce(xc);
    const vec p = exp_polynomial(r);
    const vec scale = std::bit_cast<vec>((k + bits::bias) << bits::mantissa);
    const vec y = p * scale;
    return x < lo ? splat(T(0)) : y;
  }

  /// x = n·ln2 + r with n = round(x·log₂e) (through the shifter) and |r| ≤ ln2/2, r in two parts (Cody and Waite):
  /// the reduction of exp_core and exp_gradual, for x already clamped to their range.
  struct reduced {
    vec r;    ///< x − n·ln2
    ivec k;   ///< n as an integer
  };
  RPO_DETAIL_LANES static reduced reduce(vec xc) noexcept {
    const vec shifter = splat(bits::shifter);
    const vec t = xc * splat(static_cast<T>(1.44269504088896340736)) + shifter;  // n in t's low mantissa bits
    const vec n = t - shifter;
    return {(xc - n * splat(bits::ln2_hi)) - n * splat(bits::ln2_lo),
            std::bit_cast<ivec>(t) - std::bit_cast<ivec>(shifter)};
  }

  /// e^r for |r| ≤ ln2/2 (see the header comment).
  RPO_DETAIL_LANES static vec exp_polynomial(vec r) noexcept {
    vec p;
    if constexpr (sizeof(T) == 4) {
      // 1 + r + c2·r² + ... + c6·r⁶, fitted for the least maximum relative error on |r| ≤ ln2/2 (Lawson's
      // iteration on Chebyshev nodes): 3.1e-9 = 0.05 ulp before rounding. Six FMAs in Horner form.
      p = splat(1.381461275741458e-3f);
      p = p * r + splat(8.368710055947304e-3f);
      p = p * r + splat(4.166838899254799e-2f);
      p = p * r + splat(1.666652113199234e-1f);
      p = p * r + splat(4.999999403953552e-1f);
      p = p * r + splat(1.0f);
      p = p * r + splat(1.0f);
    } else {
      // Taylor series to r^13, Horner form.
      p = splat(1.0 / 6227020800.0);                // 1/13!
      p = p * r + splat(1.0 / 479001600.0);         // 1/12!
      p = p * r + splat(1.0 / 39916800.0);          // 1/11!
      p = p * r + splat(1.0 / 3628800.0);           // 1/10!
      p = p * r + splat(1.0 / 362880.0);            // 1/9!
      p = p * r + splat(1.0 / 40320.0);             // 1/8!
      p = p * r + splat(1.0 / 5040.0);              // 1/7!
      p = p * r + splat(1.0 / 720.0);               // 1/6!
      p = p * r + splat(1.0 / 120.0);               // 1/5!
      p = p * r + splat(1.0 / 24.0);                // 1/4!
      p = p * r + splat(1.0 / 6.0);                 // 1/3!
      p = p * r + splat(0.5);
      p = p * (r * r) + r + splat(1.0);
    }
    return p;
  }
};

#else

/// The one-lane fallback for compilers without GCC/Clang vector extensions.
template <class T> struct simd {
  static constexpr int lanes = 1;
  using vec = T;
  static vec splat(T x) noexcept { return x; }
  static vec load(const T* p) noexcept { return *p; }
  static void store(T* p, vec v) noexcept { *p = v; }
  static constexpr bool streams = false;
  static void stream(T* p, vec v) noexcept { *p = v; }
  static void stream_fence() noexcept {}
  static void stream_copy(T* dst, const T* src, std::int64_t n) noexcept {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i];
  }
  static vec load_partial(const T* p, int n, T fill) noexcept { return n > 0 ? *p : fill; }
  static void store_partial(T* p, vec v, int n) noexcept {
    if (n > 0) *p = v;
  }
  static vec max(vec a, vec b) noexcept { return b > a ? b : a; }
  static T reduce_max(vec v) noexcept { return v; }
  static double reduce_sum(vec v) noexcept { return static_cast<double>(v); }
  static vec exp(vec x) noexcept { return std::exp(x); }
  static vec exp_nonpositive(vec x) noexcept { return std::exp(x); }
  static vec exp_gradual(vec x) noexcept { return std::exp(x); }
  static vec log1p_unit(vec e) noexcept { return std::log1p(e); }
  static vec log(vec x) noexcept { return std::log(x); }
};

#endif

}  // namespace rpo::detail
