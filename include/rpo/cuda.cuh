// rpo/cuda.cuh — everything of rpo's CUDA layer: the fused token pass and the pairwise presets on device memory.
//
// Needs nvcc (a .cu translation unit) and the CUDA runtime (the rpo::cuda CMake target links CUDA::cudart). The CPU
// headers never include it: rpo.hpp compiles without CUDA.
// @sa docs/cuda.md
#pragma once

#include "rpo/cuda/error.cuh"
#include "rpo/cuda/pairs.cuh"
#include "rpo/cuda/token.cuh"
