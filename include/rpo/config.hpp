// rpo/config.hpp — version, host/device annotation, and the build guards every rpo header relies on.
//
// Public names: RPO_VERSION_MAJOR, RPO_VERSION_MINOR, RPO_VERSION_PATCH, RPO_VERSION, RPO_HD,
//               RPO_USING_STD, RPO_ALLOW_FAST_MATH (opt-out macro).
// @sa docs/math.md
#pragma once

#define RPO_VERSION_MAJOR 0
#define RPO_VERSION_MINOR 1
#define RPO_VERSION_PATCH 0
/// The version as one integer, MAJOR * 10000 + MINOR * 100 + PATCH.
#define RPO_VERSION (RPO_VERSION_MAJOR * 10000 + RPO_VERSION_MINOR * 100 + RPO_VERSION_PATCH)

#if __cplusplus < 202002L && !defined(_MSVC_LANG)
#  error "rpo needs C++20 (-std=c++20 or later)"
#endif

/// Marks a function callable from host and device code: `__host__ __device__` under nvcc or hipcc,
/// nothing elsewhere (Eigen's EIGEN_DEVICE_FUNC).
#if defined(__CUDACC__) || defined(__HIPCC__)
#  define RPO_HD __host__ __device__
#else
#  define RPO_HD
#endif

/// Brings a math function into scope so that an unqualified call finds the right overload: the global
/// CUDA overload in nvcc's device pass, `std::f` elsewhere, and a user scalar's own `f` through ADL
/// (Eigen's EIGEN_USING_STD).
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
#  define RPO_USING_STD(f) using ::f;
#else
#  define RPO_USING_STD(f) using std::f;
#endif

/// The loops that split independent rows over threads (token rows, chunks of groups): an OpenMP `parallel for`
/// when the caller compiles with OpenMP (-fopenmp), a plain loop otherwise. Each iteration writes only its own
/// outputs, so the results are the same on any number of threads.
#if defined(_OPENMP)
#  define RPO_DETAIL_PARALLEL_FOR _Pragma("omp parallel for schedule(static)")
#else
#  define RPO_DETAIL_PARALLEL_FOR
#endif

// -ffast-math / -ffinite-math-only let the compiler assume that no value is NaN or infinite: the input
// checks of rpo (which reject NaN log-probs, for instance) then compile to nothing, and bad input turns
// into silently wrong losses. Refuse it unless the user explicitly takes that risk.
#if defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__ && !defined(RPO_ALLOW_FAST_MATH)
#  error "rpo: -ffast-math / -ffinite-math-only removes the NaN/Inf checks rpo relies on; \
build without it, or define RPO_ALLOW_FAST_MATH to accept unchecked input"
#endif
