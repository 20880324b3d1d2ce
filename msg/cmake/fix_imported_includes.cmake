# Make interface generation work against ROS 2 pip wheels as well as a normal ROS 2 install.
#
# The wheels' exported CMake targets carry INTERFACE_INCLUDE_DIRECTORIES of the machine that built
# them (paths under /opt/python/...), which do not exist here and make CMake fail at generate
# time. This removes every non-existent include directory from imported targets, and adds the
# Python 3 and NumPy headers that the generated Python C extensions need. On a real ROS 2 install
# all paths exist, so nothing is removed; the extra include directories are harmless.

function(_semanticsplat_collect_targets dir out_var)
  get_property(_targets DIRECTORY "${dir}" PROPERTY IMPORTED_TARGETS)
  get_property(_subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
  foreach(_sub IN LISTS _subdirs)
    _semanticsplat_collect_targets("${_sub}" _sub_targets)
    list(APPEND _targets ${_sub_targets})
  endforeach()
  set(${out_var} ${_targets} PARENT_SCOPE)
endfunction()

function(semanticsplat_drop_missing_includes)
  _semanticsplat_collect_targets("${CMAKE_CURRENT_SOURCE_DIR}" _targets)
  foreach(_target IN LISTS _targets)
    get_target_property(_type ${_target} TYPE)
    if(_type STREQUAL "INTERFACE_LIBRARY" OR _type MATCHES "LIBRARY$" OR _type STREQUAL "UNKNOWN_LIBRARY")
      get_target_property(_incs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
      if(_incs)
        set(_kept "")
        foreach(_inc IN LISTS _incs)
          if(_inc MATCHES "^\\$<" OR EXISTS "${_inc}")
            list(APPEND _kept "${_inc}")
          endif()
        endforeach()
        set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_kept}")
      endif()
    endif()
  endforeach()
endfunction()

macro(semanticsplat_fix_imported_includes)
  semanticsplat_drop_missing_includes()
  find_package(Python3 REQUIRED COMPONENTS Interpreter Development)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c "import numpy; print(numpy.get_include())"
    OUTPUT_VARIABLE _semanticsplat_numpy_include
    OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _semanticsplat_numpy_result)
  if(_semanticsplat_numpy_result EQUAL 0 AND EXISTS "${_semanticsplat_numpy_include}")
    include_directories(${Python3_INCLUDE_DIRS} ${_semanticsplat_numpy_include})
  else()
    include_directories(${Python3_INCLUDE_DIRS})
  endif()
endmacro()
