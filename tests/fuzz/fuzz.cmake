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
file(GLOB _runtime ${_src}/runtime/*.cpp ${_src}/runtime/kernels/*_ref.cpp)
set(_fuzz_sources ${CMAKE_CURRENT_LIST_DIR}/fuzz_runtime_loader.cpp ${_core} ${_src}/io/safetensors.cpp
    ${_runtime} ${_src}/runtime/kernels/dispatch.cpp)
set(_fuzz_bin ${CMAKE_BINARY_DIR}/bin/fuzz_runtime_loader)
set(_fuzz_flags -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -DVITOPT_RUNTIME_REF_ONLY
    -I${_src} -I${_src}/runtime/include)
# One clang++ per source (ninja runs them in parallel), then one link.
set(_fuzz_objects)
foreach(source ${_fuzz_sources})
  file(RELATIVE_PATH _rel ${PROJECT_SOURCE_DIR} ${source})
  string(REPLACE "/" "_" _obj ${_rel})
  set(_obj ${CMAKE_BINARY_DIR}/fuzz_obj/${_obj}.o)
  add_custom_command(OUTPUT ${_obj}
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/fuzz_obj
                     COMMAND ${VITOPT_CLANGXX} ${_fuzz_flags} -MD -MF ${_obj}.d -c ${source} -o ${_obj}
                     DEPENDS ${source} DEPFILE ${_obj}.d  # headers too: a changed struct rebuilds
                     COMMENT "clang++ (fuzz) ${_rel}" VERBATIM)
  list(APPEND _fuzz_objects ${_obj})
endforeach()
add_custom_command(
  OUTPUT ${_fuzz_bin}
  COMMAND ${VITOPT_CLANGXX} -fsanitize=fuzzer,address,undefined ${_fuzz_objects} -lfmt -ldl -pthread
          -o ${_fuzz_bin}
  DEPENDS ${_fuzz_objects}
  COMMENT "link libFuzzer target fuzz_runtime_loader"
  VERBATIM)
add_custom_target(fuzz_runtime_loader ALL DEPENDS ${_fuzz_bin})
add_test(NAME fuzz_runtime_loader_bounded
         COMMAND ${CMAKE_COMMAND} -E env VITOPT_FUZZ_WRITE_SEEDS=${CMAKE_BINARY_DIR}/fuzz_corpus
                 ${_fuzz_bin} -max_total_time=20 -timeout=10 -rss_limit_mb=2048
                 ${CMAKE_BINARY_DIR}/fuzz_corpus)
set_tests_properties(fuzz_runtime_loader_bounded PROPERTIES LABELS "fuzz" TIMEOUT 120)
