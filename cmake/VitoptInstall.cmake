# `cmake --install <build>` puts the runtime where another CMake project finds it:
#   find_package(vitopt REQUIRED)  then  target_link_libraries(app PRIVATE vitopt::runtime)
# Installed: libvitopt_runtime.so with the two libraries it links (vitopt::io, vitopt::core), its
# public header vitopt/runtime.h, and `vitopt-rt` with its libraries. Only the runtime's API is
# public: core/io headers stay in the source tree (runtime.h needs none of them).
include(CMakePackageConfigHelpers)

set(VITOPT_VERSION 0.1.0)
set(VITOPT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/vitopt)
file(RELATIVE_PATH _bin_to_lib ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}
     ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR})

set(_exported vitopt_core vitopt_io vitopt_runtime)
foreach(lib ${_exported} vitopt_data vitopt_infer)
  string(REPLACE "vitopt_" "" _short ${lib})
  # Installed libraries find each other next to themselves, wherever the prefix is.
  set_target_properties(${lib} PROPERTIES EXPORT_NAME ${_short} INSTALL_RPATH "$ORIGIN"
                                          VERSION ${VITOPT_VERSION} SOVERSION 0)
endforeach()
set_target_properties(vitopt-rt PROPERTIES INSTALL_RPATH "$ORIGIN/${_bin_to_lib}")

install(TARGETS ${_exported} EXPORT vitoptTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS vitopt_data vitopt_infer LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS vitopt-rt RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/src/runtime/include/vitopt/runtime.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/vitopt)
install(EXPORT vitoptTargets NAMESPACE vitopt:: DESTINATION ${VITOPT_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/vitoptConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/vitoptConfig.cmake
                              INSTALL_DESTINATION ${VITOPT_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/vitoptConfigVersion.cmake
                                 VERSION ${VITOPT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/vitoptConfig.cmake ${CMAKE_BINARY_DIR}/vitoptConfigVersion.cmake
        DESTINATION ${VITOPT_CMAKE_DIR})
