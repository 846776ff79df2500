# rpo_compile_fail — ok/ko twins that check that a misuse of rpo does not compile, and says why (STYLE pitfall 6).
#
# include(rpo_compile_fail) defines
#
#   rpo_add_compile_fail(<name> <regex> [LIBS <target>...])
#
# which takes tests/compile_fail/<name>.cpp (the calling directory's <name>.cpp) and adds
#   <name>_ok, <name>_ko          EXCLUDE_FROM_ALL executables; <name>_ko is compiled with -DRPO_SHOULD_FAIL
#   compile_fail:<name>:ok        builds <name>_ok; passes when that build succeeds
#   compile_fail:<name>:ko        builds <name>_ko; passes only when that build FAILS and its output matches <regex>
# all with RESOURCE_LOCK compile_fail (they run `cmake --build` on this build tree, one at a time).
#
# Why a wrapper for the ko test: PASS_REGULAR_EXPRESSION ignores the exit code, and "the build failed" alone also
# passes on a typo. So the ko test runs this same file in script mode (cmake -P), which prints the build's output
# and a verdict: FAILED when the build succeeded, or when <regex> is not in the FIRST error diagnostic (clang's
# typo correction otherwise lets a misspelt ko reach our static_assert as a second error);
# FAIL_REGULAR_EXPRESSION turns that line into a failure whatever the exit code, and PASS_REGULAR_EXPRESSION
# requires <regex> in the output as well. The twin `ok` differs from `ko` in one #ifdef, so a ko broken in the
# shared part makes its ok fail too; and the `sanity` pair is the control that shows the harness can fail.
# <regex> must not contain ';' (CMake would split it into a list).

if(CMAKE_SCRIPT_MODE_FILE)
  # Script mode:
  #   cmake -DRPO_BUILD_DIR=<dir> -DRPO_TARGET=<target> -DRPO_REGEX=<regex> [-DRPO_CONFIG=<cfg>] -P rpo_compile_fail.cmake
  # Prints the build's output, then exactly one verdict line: "rpo_compile_fail: PASSED ..." or
  # "rpo_compile_fail: FAILED ..." (the test's FAIL_REGULAR_EXPRESSION); the exit status agrees with it.
  foreach(_var IN ITEMS RPO_BUILD_DIR RPO_TARGET RPO_REGEX)
    if(NOT DEFINED ${_var})
      message(FATAL_ERROR "rpo_compile_fail.cmake: -D${_var}=... is required in script mode")
    endif()
  endforeach()
  set(_config_args "")
  if(RPO_CONFIG)
    set(_config_args --config "${RPO_CONFIG}")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" --build "${RPO_BUILD_DIR}" --target "${RPO_TARGET}" ${_config_args}
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  message("${_out}")

  # The first diagnostic: from the first "error: " to the next one (its notes included). The regex must match
  # there, not merely somewhere: clang corrects a typo ("did you mean 'hard_label'?") and goes on to fire our
  # static_assert as a second error, which must not count.
  set(_verdict "")
  if(_rc EQUAL 0)
    set(_verdict "FAILED: UNEXPECTED SUCCESS: ${RPO_TARGET} compiled, but it must not")
  else()
    string(FIND "${_out}" "error: " _first)
    if(_first EQUAL -1)
      set(_verdict "FAILED: the build of ${RPO_TARGET} failed without a compiler error (exit status ${_rc})")
    else()
      string(SUBSTRING "${_out}" ${_first} -1 _diagnostic)
      string(SUBSTRING "${_diagnostic}" 7 -1 _rest)
      string(FIND "${_rest}" "error: " _second)
      if(NOT _second EQUAL -1)
        math(EXPR _second "${_second} + 7")
        string(SUBSTRING "${_diagnostic}" 0 ${_second} _diagnostic)
      endif()
      if(NOT _diagnostic MATCHES "${RPO_REGEX}")
        set(_verdict "FAILED: the first error of ${RPO_TARGET} is not the expected one (see the test's regex)")
      endif()
    endif()
  endif()
  if(_verdict)
    message("rpo_compile_fail: ${_verdict}")
    message(FATAL_ERROR "${RPO_TARGET}: the expected compile error was not seen")
  endif()
  message("rpo_compile_fail: PASSED: ${RPO_TARGET} failed to build, as it must, with the expected first error")
  return()
endif()

include_guard(GLOBAL)

function(rpo_add_compile_fail name regex)
  cmake_parse_arguments(PARSE_ARGV 2 ARG "" "" "LIBS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "rpo_add_compile_fail(${name}): unexpected arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  set(source "${CMAKE_CURRENT_SOURCE_DIR}/${name}.cpp")
  if(NOT EXISTS "${source}")
    message(FATAL_ERROR "rpo_add_compile_fail(${name}): ${source} does not exist")
  endif()

  foreach(variant IN ITEMS ok ko)
    set(target ${name}_${variant})
    add_executable(${target} EXCLUDE_FROM_ALL "${source}")
    target_link_libraries(${target} PRIVATE rpo::rpo ${ARG_LIBS})
    if(TARGET rpo_warnings)
      target_link_libraries(${target} PRIVATE rpo_warnings)
    endif()
    if(variant STREQUAL "ko")
      target_compile_definitions(${target} PRIVATE RPO_SHOULD_FAIL)
    endif()
  endforeach()

  add_test(NAME compile_fail:${name}:ok
           COMMAND "${CMAKE_COMMAND}" --build "${CMAKE_BINARY_DIR}" --target ${name}_ok --config $<CONFIG>)
  add_test(NAME compile_fail:${name}:ko
           COMMAND "${CMAKE_COMMAND}" -DRPO_BUILD_DIR=${CMAKE_BINARY_DIR} -DRPO_TARGET=${name}_ko
                   "-DRPO_REGEX=${regex}" -DRPO_CONFIG=$<CONFIG> -P "${CMAKE_CURRENT_FUNCTION_LIST_FILE}")
  # LC_ALL=C: untranslated diagnostics with ASCII quotes, whatever the user's locale, so that the regex holds.
  set_tests_properties(compile_fail:${name}:ok compile_fail:${name}:ko PROPERTIES
                       RESOURCE_LOCK compile_fail LABELS compile_fail ENVIRONMENT LC_ALL=C)
  set_tests_properties(compile_fail:${name}:ko PROPERTIES
                       PASS_REGULAR_EXPRESSION "${regex}"
                       FAIL_REGULAR_EXPRESSION "rpo_compile_fail: FAILED")
endfunction()
