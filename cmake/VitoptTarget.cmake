include(GoogleTest)

# Helpers that give every vitopt target the same standard, warnings and (for LibTorch targets) the
# shared precompiled header. LibTorch's imported target forces C++14, so the standard is set here.

function(vitopt_common_flags target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  set_target_properties(${target} PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON
                                             CXX_EXTENSIONS OFF)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow)
  if(VITOPT_SANITIZE)
    # -fno-sanitize-recover: a UBSan finding fails the test instead of scrolling past.
    target_compile_options(${target} PUBLIC -fsanitize=address,undefined -fno-sanitize-recover=all
                                            -fno-omit-frame-pointer)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined -fno-sanitize-recover=all)
  endif()
  if(VITOPT_FUZZ)
    # Coverage feedback for libFuzzer in every library; the fuzz executables add the driver.
    target_compile_options(${target} PUBLIC -fsanitize=fuzzer-no-link)
  endif()
endfunction()

# A library of one layer. TORCH marks layers that use LibTorch: they get the precompiled header.
function(vitopt_library name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} SHARED ${ARG_SOURCES})
  vitopt_common_flags(${name})
  target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  if(ARG_TORCH)
    vitopt_use_torch(${name})
    set_property(TARGET ${name} PROPERTY VITOPT_TORCH ON)  # tests of this layer get the PCH too
  endif()
endfunction()

# LibTorch's headers are ~25-40 s a TU: every Torch target reuses one precompiled header.
function(vitopt_use_torch target)
  target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES})
  # Torch headers trip -Wshadow / -Wextra in their own code; keep our warnings for our code only.
  target_include_directories(${target} SYSTEM PUBLIC ${TORCH_INCLUDE_DIRS})
  if(NOT TARGET vitopt_torch_pch)
    add_library(vitopt_torch_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/torch_pch.cpp)
    vitopt_common_flags(vitopt_torch_pch)
    target_link_libraries(vitopt_torch_pch PUBLIC ${TORCH_LIBRARIES})
    target_include_directories(vitopt_torch_pch SYSTEM PUBLIC ${TORCH_INCLUDE_DIRS})
    target_precompile_headers(vitopt_torch_pch PRIVATE <torch/torch.h>)
  endif()
  target_precompile_headers(${target} REUSE_FROM vitopt_torch_pch)
  # The shared PCH is built -fPIC (it serves shared libraries); GCC refuses it in -fPIE
  # executables, so executables using it compile -fPIC too (harmless in a PIE link).
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
endfunction()

# FIXTURES: a CTest fixture every case requires (FIXTURES_REQUIRED), e.g. a peer's install step.
function(vitopt_test name)
  cmake_parse_arguments(ARG "TORCH" "LABEL;FIXTURES" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  vitopt_common_flags(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} vitopt_test_main GTest::gtest)
  if(ARG_TORCH)
    vitopt_use_torch(${name})
  endif()
  if(NOT ARG_LABEL)
    set(ARG_LABEL unit)
  endif()
  set(extra_properties)
  if(ARG_FIXTURES)
    set(extra_properties FIXTURES_REQUIRED "${ARG_FIXTURES}")
  endif()
  # One CTest test per GoogleTest case (`<executable>.<Suite>.<Case>`), so CI counts cases and
  # `ctest -R` picks single ones. No test keeps state across cases, so a process per case costs
  # only the start-up; OMP_WAIT_POLICY is set here so that test_main's ensure_thread_environment
  # does not re-exec every LibTorch process (which doubled that start-up). The source/build
  # folders are compiled into vitopt_test_main (test_util.h); $VITOPT_SOURCE_DIR /
  # $VITOPT_BUILD_DIR still override them when set.
  gtest_discover_tests(${name} TEST_PREFIX "${name}." DISCOVERY_TIMEOUT 300
                       PROPERTIES LABELS "${ARG_LABEL}" ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE"
                                  ${extra_properties})
endfunction()
