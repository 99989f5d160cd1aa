# Overlay port: vcpkg install engram --overlay-ports=<engram>/packaging/vcpkg/ports
# Builds from the engram source tree this port sits in (set ENGRAM_SOURCE_DIR to use another checkout).
if(DEFINED ENV{ENGRAM_SOURCE_DIR})
  set(SOURCE_PATH "$ENV{ENGRAM_SOURCE_DIR}")
else()
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../../.." ABSOLUTE)
endif()

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DENGRAM_BUILD_TESTS=OFF
    -DENGRAM_BUILD_BENCH=OFF
    -DENGRAM_BUILD_EXAMPLES=OFF
    -DENGRAM_INSTALL=ON
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME engram CONFIG_PATH share/cmake/engram)
vcpkg_fixup_pkgconfig()

# Header-only: nothing in debug/ but what the config fixup moved.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
