# libFuzzer targets (need clang; the main build may use GCC). Built by one clang++ command over
# the LibTorch-free sources they need, with ASan+UBSan, and run for a bounded time by ctest
# (label "fuzz"). Without a clang that links -fsanitize=fuzzer the targets are skipped cleanly.
find_program(VITOPT_CLANGXX NAMES clang++ clang++-16 clang++-15 clang++-14)
if(NOT VITOPT_CLANGXX)
  message(STATUS "fuzz: clang++ not found; libFuzzer targets skipped")
  return()
endif()
set(_probe ${CMAKE_BINARY_DIR}/fuzz_probe.cpp)
file(WRITE ${_probe} "#include <cstdint>\n#include <cstddef>\nextern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n")
execute_process(COMMAND ${VITOPT_CLANGXX} -fsanitize=fuzzer ${_probe} -o ${CMAKE_BINARY_DIR}/fuzz_probe
                RESULT_VARIABLE _probe_rc OUTPUT_QUIET ERROR_QUIET)
if(NOT _probe_rc EQUAL 0)
  message(STATUS "fuzz: ${VITOPT_CLANGXX} cannot link -fsanitize=fuzzer; libFuzzer targets skipped")
  return()
endif()

set(_src ${PROJECT_SOURCE_DIR}/src)
file(GLOB _core ${_src}/core/*.cpp)
file(GLOB _io ${_src}/io/*.cpp)  # LibTorch-free: the model-file reader both halves use
file(GLOB _runtime ${_src}/runtime/*.cpp ${_src}/runtime/kernels/*_ref.cpp)
set(_fuzz_flags -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -DVITOPT_RUNTIME_REF_ONLY
    -I${_src} -I${_src}/runtime/include)

# One clang++ per source (ninja runs them in parallel; sources shared by targets compile once).
function(vitopt_fuzz_object source out_var)
  file(RELATIVE_PATH _rel ${PROJECT_SOURCE_DIR} ${source})
  string(REPLACE "/" "_" _obj ${_rel})
  set(_obj ${CMAKE_BINARY_DIR}/fuzz_obj/${_obj}.o)
  get_property(_done GLOBAL PROPERTY VITOPT_FUZZ_OBJECTS)
  if(NOT _obj IN_LIST _done)
    add_custom_command(OUTPUT ${_obj}
                       COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/fuzz_obj
                       COMMAND ${VITOPT_CLANGXX} ${_fuzz_flags} -MD -MF ${_obj}.d -c ${source} -o ${_obj}
                       DEPENDS ${source} DEPFILE ${_obj}.d  # headers too: a changed struct rebuilds
                       COMMENT "clang++ (fuzz) ${_rel}" VERBATIM)
    set_property(GLOBAL APPEND PROPERTY VITOPT_FUZZ_OBJECTS ${_obj})
  endif()
  set(${out_var} ${_obj} PARENT_SCOPE)
endfunction()

# A libFuzzer executable from `main` plus SOURCES, run for a bounded time by ctest over CORPUS
# (seeds written there at start-up by targets that honour VITOPT_FUZZ_WRITE_SEEDS).
function(vitopt_fuzz_target name main)
  cmake_parse_arguments(ARG "" "CORPUS" "SOURCES" ${ARGN})
  set(_objects)
  foreach(source ${main} ${ARG_SOURCES})
    vitopt_fuzz_object(${source} _obj)
    list(APPEND _objects ${_obj})
  endforeach()
  set(_bin ${CMAKE_BINARY_DIR}/bin/${name})
  add_custom_command(
    OUTPUT ${_bin}
    COMMAND ${VITOPT_CLANGXX} -fsanitize=fuzzer,address,undefined ${_objects} -lfmt -ldl -pthread
            -o ${_bin}
    DEPENDS ${_objects}
    COMMENT "link libFuzzer target ${name}"
    VERBATIM)
  add_custom_target(${name} ALL DEPENDS ${_bin})
  add_test(NAME ${name}_bounded
           COMMAND ${CMAKE_COMMAND} -E env VITOPT_FUZZ_WRITE_SEEDS=${ARG_CORPUS}
                   ${_bin} -max_total_time=20 -timeout=10 -rss_limit_mb=2048 ${ARG_CORPUS})
  set_tests_properties(${name}_bounded PROPERTIES LABELS "fuzz" TIMEOUT 120)
endfunction()

vitopt_fuzz_target(fuzz_runtime_loader ${CMAKE_CURRENT_LIST_DIR}/fuzz_runtime_loader.cpp
                   SOURCES ${_core} ${_io} ${_runtime} ${_src}/runtime/kernels/dispatch.cpp
                   CORPUS ${CMAKE_BINARY_DIR}/fuzz_corpus)
# The header reader: kept seeds are copied to a writable corpus folder before each run.
set(_header_corpus ${CMAKE_BINARY_DIR}/fuzz_corpus_model_header)
file(COPY ${CMAKE_CURRENT_LIST_DIR}/corpus/model_header/ DESTINATION ${_header_corpus})
vitopt_fuzz_target(fuzz_model_header ${CMAKE_CURRENT_LIST_DIR}/fuzz_model_header.cpp
                   SOURCES ${_core} ${_io} CORPUS ${_header_corpus})
