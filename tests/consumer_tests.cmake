# Consumer tests (STYLE pitfall 8), included from tests/CMakeLists.txt: rpo used as a user would use it.
#   consumer:stage_clean, consumer:stage_install   FIXTURES_SETUP rpo_stage: `cmake --install` into <build>/stage
#   consumer:find_package                          tests/consumer with find_package(rpo CONFIG REQUIRED)
#   consumer:pkg-config                            tests/consumer with pkg_check_modules(rpo), PKG_CONFIG_PATH=<stage>
#   consumer:add_subdirectory                      tests/consumer with add_subdirectory(<rpo source>)
# Each builds tests/consumer in <build>/consumer-<mode> with `ctest --build-and-test`, the same compiler, flags and
# build type as this tree, and runs the consumer's own tests (which compare against independent references).

set(_rpo_stage "${PROJECT_BINARY_DIR}/stage")
set(_rpo_consumer_common
    --build-generator "${CMAKE_GENERATOR}"
    --build-makeprogram "${CMAKE_MAKE_PROGRAM}"
    --build-noclean
    --build-options
      "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}"
      "-DCMAKE_CXX_FLAGS=${CMAKE_CXX_FLAGS}"
      "-DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}"
      "-DRPO_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
set(_rpo_consumer_test_command --test-command "${CMAKE_CTEST_COMMAND}" --output-on-failure --no-tests=error)

# rpo_add_consumer_test(<mode> [FIXTURE] [ENVIRONMENT ...] [OPTIONS ...])
function(rpo_add_consumer_test mode)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "FIXTURE" "" "ENVIRONMENT;OPTIONS")
  add_test(NAME consumer:${mode}
           COMMAND "${CMAKE_CTEST_COMMAND}" --build-and-test "${PROJECT_SOURCE_DIR}/tests/consumer"
                   "${PROJECT_BINARY_DIR}/consumer-${mode}" ${_rpo_consumer_common}
                   "-DRPO_CONSUMER_MODE=${mode}" ${ARG_OPTIONS} ${_rpo_consumer_test_command})
  set_tests_properties(consumer:${mode} PROPERTIES LABELS consumer)
  if(ARG_FIXTURE)
    set_tests_properties(consumer:${mode} PROPERTIES FIXTURES_REQUIRED rpo_stage)
  endif()
  if(ARG_ENVIRONMENT)
    set_tests_properties(consumer:${mode} PROPERTIES ENVIRONMENT "${ARG_ENVIRONMENT}")
  endif()
endfunction()

if(RPO_INSTALL)
  add_test(NAME consumer:stage_clean COMMAND "${CMAKE_COMMAND}" -E rm -rf "${_rpo_stage}")
  add_test(NAME consumer:stage_install
           COMMAND "${CMAKE_COMMAND}" --install "${PROJECT_BINARY_DIR}" --prefix "${_rpo_stage}" --config $<CONFIG>)
  set_tests_properties(consumer:stage_clean consumer:stage_install PROPERTIES
                       FIXTURES_SETUP rpo_stage LABELS consumer)
  set_tests_properties(consumer:stage_install PROPERTIES DEPENDS consumer:stage_clean)

  # CMAKE_FIND_USE_PACKAGE_REGISTRY=OFF: only the stage may answer find_package(rpo).
  rpo_add_consumer_test(find_package FIXTURE
                        OPTIONS "-DCMAKE_PREFIX_PATH=${_rpo_stage}" "-DRPO_EXPECTED_PREFIX=${_rpo_stage}"
                                -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  find_program(RPO_PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf)
  if(RPO_PKG_CONFIG_EXECUTABLE)
    rpo_add_consumer_test(pkg-config FIXTURE
                          ENVIRONMENT "PKG_CONFIG_PATH=${_rpo_stage}/share/pkgconfig"
                          OPTIONS "-DRPO_EXPECTED_PREFIX=${_rpo_stage}")
  else()
    message(STATUS "rpo: pkg-config not found; the test consumer:pkg-config is not run")
  endif()
else()
  message(STATUS "rpo: RPO_INSTALL is OFF; the consumer tests of the installed package are not run")
endif()
rpo_add_consumer_test(add_subdirectory)
