# Runs the layering check on MANIFEST and succeeds only if it fails and names the offending
# include (the check must be able to fail).
execute_process(
  COMMAND ${CMAKE_COMMAND} -DMANIFEST=${MANIFEST} -P ${CHECK}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX REPLACE "[ \n]+" " " all "${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "the layering check accepted an upward include:\n${all}")
endif()
if(NOT all MATCHES "low\\.h: includes \"high/high\\.h\" of library 'high', which 'low' does not depend")
  message(FATAL_ERROR "the layering check failed without naming the include:\n${all}")
endif()
message(STATUS "rejected as expected: ${all}")
