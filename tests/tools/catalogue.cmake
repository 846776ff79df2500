# docs/catalogue.md's table of every registered loss is generated from the registry by `rpo-eval --list --markdown`.
#
#   cmake -DRPO_EVAL=<rpo-eval> -DPAGE=<docs/catalogue.md> -P catalogue.cmake              fails if the page is stale
#   cmake -DRPO_EVAL=<rpo-eval> -DPAGE=<docs/catalogue.md> -DUPDATE=ON -P catalogue.cmake  rewrites the table
#
# The table sits between the two marker lines below; the rest of the page is written by hand. CTest runs the check as
# docs:catalogue_up_to_date; `cmake --build <build dir> --target update_catalogue` runs the update.
cmake_minimum_required(VERSION 3.25)
set(begin_marker "<!-- BEGIN GENERATED: rpo-eval --list --markdown -->")
set(end_marker "<!-- END GENERATED -->")

execute_process(COMMAND "${RPO_EVAL}" --list --markdown RESULT_VARIABLE code OUTPUT_VARIABLE table
                ERROR_VARIABLE err)
if(NOT code EQUAL 0)
  message(FATAL_ERROR "rpo-eval --list --markdown failed (exit code ${code}): ${err}")
endif()

file(READ "${PAGE}" page)
string(FIND "${page}" "${begin_marker}\n" begin)
string(FIND "${page}" "${end_marker}" end)
if(begin EQUAL -1 OR end EQUAL -1 OR end LESS begin)
  message(FATAL_ERROR "${PAGE} must hold the line \"${begin_marker}\", then later the line \"${end_marker}\"")
endif()
string(LENGTH "${begin_marker}\n" marker_length)
math(EXPR start "${begin} + ${marker_length}")
math(EXPR length "${end} - ${start}")
string(SUBSTRING "${page}" ${start} ${length} committed)

if(committed STREQUAL table)
  message(STATUS "${PAGE}: the table is up to date with the registry")
  return()
endif()
if(UPDATE)
  string(SUBSTRING "${page}" 0 ${start} head)
  string(SUBSTRING "${page}" ${end} -1 tail)
  file(WRITE "${PAGE}" "${head}${table}${tail}")
  message(STATUS "${PAGE}: table rewritten from the registry")
  return()
endif()
message(FATAL_ERROR
        "${PAGE} is out of date with the loss registry (rpo/spec.hpp).\n"
        "run: cmake --build <build dir> --target update_catalogue\n"
        "(or: cmake -DRPO_EVAL=<path to rpo-eval> -DPAGE=${PAGE} -DUPDATE=ON -P tests/tools/catalogue.cmake)\n"
        "and commit the page.")
