# rpo_warnings — the warning flags of rpo's own tests, examples and benchmarks (never forced on users).
# Linked PRIVATE; -Werror comes from CMAKE_COMPILE_WARNING_AS_ERROR (the presets and CI set it).
# g++ 12 and clang 14 take the same list; a flag that only one of them knows goes in its own branch.
if(TARGET rpo_warnings)
  return()
endif()
add_library(rpo_warnings INTERFACE)
# C++ sources only: nvcc takes host-compiler flags through -Xcompiler (the CUDA branch below).
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(rpo_warnings INTERFACE
    "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra;-Wpedantic;-Wshadow;-Wconversion;-Wsign-conversion;-Wold-style-cast;-Wnon-virtual-dtor;-Woverloaded-virtual;-Wnull-dereference;-Wdouble-promotion;-Wformat=2;-Wimplicit-fallthrough>")
endif()
# CUDA sources (RPO_BUILD_CUDA): the host compiler's -Wall -Wextra on the host code nvcc generates; nvcc's own
# diagnostics become errors through CMAKE_COMPILE_WARNING_AS_ERROR (-Werror all-warnings).
if(CMAKE_CUDA_COMPILER_ID STREQUAL "NVIDIA")
  target_compile_options(rpo_warnings INTERFACE "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>")
endif()
