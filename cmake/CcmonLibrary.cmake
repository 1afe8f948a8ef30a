# ccmon_library(): one library per concern, with an ALIAS target, its own include root and
# third-party dependencies linked PRIVATE (prometheus-cpp style).
#
# Each library's headers are reachable only as "<prefix>/<header>.h" through an include root of
# its own (a directory in the build tree holding one symlink, <prefix> -> the source directory).
# A target sees the roots of the ccmon libraries it links, and no others, so an include that
# reaches up a layer (or sideways to a library not declared in DEPS) does not compile.
# cmake/check_layers.cmake checks the same rule from the sources, with a message that names the
# offending line (run at configure time and as the `layering` test).
#
#   ccmon_library(NAME SOURCES a.cc … [PREFIX dir] [DEPS lib…] [THIRD_PARTY target…])
#     NAME         the target is ccmon_NAME, with the alias ccmon::NAME
#     PREFIX       the include prefix (default NAME; tools use e.g. tools/replay)
#     DEPS         ccmon libraries whose headers this one's headers use (linked PUBLIC)
#     THIRD_PARTY  everything else (linked PRIVATE)

set(CCMON_INCLUDE_ROOT ${PROJECT_BINARY_DIR}/include)

function(ccmon_library name)
  cmake_parse_arguments(ARG "" "PREFIX" "SOURCES;DEPS;THIRD_PARTY" ${ARGN})
  if(NOT ARG_PREFIX)
    set(ARG_PREFIX ${name})
  endif()
  set(target ccmon_${name})
  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(ccmon::${name} ALIAS ${target})

  set(root ${CCMON_INCLUDE_ROOT}/${name})
  get_filename_component(link_parent ${root}/${ARG_PREFIX} DIRECTORY)
  file(MAKE_DIRECTORY ${link_parent})
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${root}/${ARG_PREFIX} SYMBOLIC)
  target_include_directories(${target} PUBLIC ${root})

  set(deps)
  foreach(d IN LISTS ARG_DEPS)
    list(APPEND deps ccmon::${d})
  endforeach()
  target_link_libraries(${target} PUBLIC ${deps} PRIVATE ${ARG_THIRD_PARTY})

  set_property(GLOBAL APPEND PROPERTY CCMON_LIBRARIES ${name})
  set_property(GLOBAL PROPERTY CCMON_LIB_${name}_PREFIX ${ARG_PREFIX})
  set_property(GLOBAL PROPERTY CCMON_LIB_${name}_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  set_property(GLOBAL PROPERTY CCMON_LIB_${name}_DEPS "${ARG_DEPS}")
endfunction()

# Writes the layering manifest (one line per library: name|prefix|dir|dep,dep) and checks it
# now; the `layering` test checks it again on every test run.
function(ccmon_check_layers)
  get_property(libs GLOBAL PROPERTY CCMON_LIBRARIES)
  set(manifest "")
  foreach(l IN LISTS libs)
    get_property(prefix GLOBAL PROPERTY CCMON_LIB_${l}_PREFIX)
    get_property(dir GLOBAL PROPERTY CCMON_LIB_${l}_DIR)
    get_property(deps GLOBAL PROPERTY CCMON_LIB_${l}_DEPS)
    string(REPLACE ";" "," deps "${deps}")
    string(APPEND manifest "${l}|${prefix}|${dir}|${deps}\n")
  endforeach()
  set(CCMON_LAYERS_MANIFEST ${PROJECT_BINARY_DIR}/layers.txt PARENT_SCOPE)
  file(WRITE ${PROJECT_BINARY_DIR}/layers.txt "${manifest}")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -DMANIFEST=${PROJECT_BINARY_DIR}/layers.txt
            -P ${PROJECT_SOURCE_DIR}/cmake/check_layers.cmake
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "layering check failed (see above)")
  endif()
endfunction()

# Fails the configure step if `target` links any of the given targets, directly or through
# its dependencies (e.g. the wire format must not drag in the transcript parser's simdjson).
function(ccmon_assert_not_linked target)
  set(seen)
  set(todo ${target})
  while(todo)
    list(POP_FRONT todo t)
    if(t IN_LIST seen OR NOT TARGET ${t})
      continue()
    endif()
    list(APPEND seen ${t})
    get_target_property(aliased ${t} ALIASED_TARGET)
    if(aliased)
      list(APPEND todo ${aliased})
      continue()
    endif()
    foreach(prop LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
      get_target_property(libs ${t} ${prop})
      if(libs)
        foreach(l IN LISTS libs)
          string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" l "${l}")
          list(APPEND todo ${l})
        endforeach()
      endif()
    endforeach()
  endwhile()
  foreach(forbidden IN LISTS ARGN)
    if(forbidden IN_LIST seen)
      message(FATAL_ERROR "${target} must not link ${forbidden} (it does, through: ${seen})")
    endif()
  endforeach()
endfunction()
