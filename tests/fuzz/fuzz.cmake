# libFuzzer targets, one line each: vitopt_fuzz_target(<name> DEPS <libraries>) builds
# tests/fuzz/<name>.cpp and registers `<name>_bounded`, a ctest test (label fuzz) that runs it for
# VITOPT_FUZZ_SECONDS from its seed corpus tests/fuzz/corpus/<name>/ (small files kept in the
# repository; new inputs go to the build folder, never into the repository).
# Built only with -DVITOPT_FUZZ=ON and clang (scripts/sanitize.sh): the libraries then compile with
# -fsanitize=fuzzer-no-link (coverage for the fuzzer) and, with VITOPT_SANITIZE, ASan + UBSan.
if(NOT VITOPT_FUZZ)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "VITOPT_FUZZ needs clang (libFuzzer): configure with CXX=clang++")
endif()
set(VITOPT_FUZZ_SECONDS 5 CACHE STRING "Seconds each fuzz target runs under ctest")

function(vitopt_fuzz_target name)
  cmake_parse_arguments(ARG "" "" "DEPS;SOURCES" ${ARGN})
  add_executable(${name} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${name}.cpp ${ARG_SOURCES})
  vitopt_common_flags(${name})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  # A fixed seed: every CI run explores the same sequence of inputs (a slower machine a prefix of
  # it), so a red CI means a change broke something, not that this run got luckier.
  set(found ${CMAKE_BINARY_DIR}/fuzz/${name})  # inputs the run adds (first dir: written to)
  file(MAKE_DIRECTORY ${found})
  add_test(NAME ${name}_bounded
           COMMAND ${name} -seed=1 -max_total_time=${VITOPT_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048
                   -print_final_stats=1 ${found} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${name})
  math(EXPR limit "${VITOPT_FUZZ_SECONDS} * 4 + 60")
  set_tests_properties(${name}_bounded PROPERTIES LABELS fuzz TIMEOUT ${limit})
endfunction()

# Every parser of outside bytes: add a target here (and its corpus folder) when one arrives.
vitopt_fuzz_target(fuzz_safetensors DEPS vitopt_io)         # safetensors container
vitopt_fuzz_target(fuzz_model_header DEPS vitopt_io)        # io::read_model_header + counts
vitopt_fuzz_target(fuzz_runtime_loader DEPS vitopt_runtime)  # model header, quant spec, packing
vitopt_fuzz_target(fuzz_idx DEPS vitopt_data)                # IDX images + labels (raw and .gz)
vitopt_fuzz_target(fuzz_cifar DEPS vitopt_data)              # CIFAR-10/100 binary batches
vitopt_fuzz_target(fuzz_image_decode DEPS vitopt_data)       # PNG/JPEG/BMP/... through stb
vitopt_fuzz_target(fuzz_checkpoint_config DEPS vitopt_io)   # timm / HF config.json of import
target_compile_definitions(fuzz_checkpoint_config PRIVATE
                           VITOPT_FUZZ_CORPUS="${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus")
# Search spaces and saved genomes: space.cpp compiled in (its library, vitopt_search_core, is
# above the LibTorch-free layers this build has).
find_package(yaml-cpp REQUIRED)
vitopt_fuzz_target(fuzz_search_space DEPS vitopt_io yaml-cpp
                   SOURCES ${PROJECT_SOURCE_DIR}/src/search/space.cpp)
