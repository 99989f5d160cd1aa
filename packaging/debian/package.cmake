# The Debian package (scripts/package-deb.sh): the apps, the headers and CMake config (the install rules of
# the top-level CMakeLists.txt), a systemd unit and its config in /etc/engram, through CPack's DEB generator.
#
# The apps install with every `cmake --install` (component apps). The unit and the config have absolute
# destinations (/lib/systemd/system, /etc/engram), so they are in component `service`, left out of a plain
# install: only the package gets them.

set(_engram_deb ${CMAKE_CURRENT_LIST_DIR})

foreach(_app engram-cli engram-mcp engram-server)
  if(TARGET ${_app})
    # OPTIONAL: installing the library from a tree where the apps were not built still works;
    # scripts/package-deb.sh builds them first and the packaging test checks they are in the package.
    install(TARGETS ${_app} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT apps OPTIONAL)
  endif()
endforeach()
install(FILES ${_engram_deb}/engram.service DESTINATION /lib/systemd/system COMPONENT service EXCLUDE_FROM_ALL)
install(FILES ${_engram_deb}/engram.env DESTINATION /etc/engram COMPONENT service EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md ${PROJECT_SOURCE_DIR}/docs/server.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/engram COMPONENT service EXCLUDE_FROM_ALL)

set(CPACK_PACKAGE_NAME engram)
set(CPACK_PACKAGE_VENDOR "engram")
set(CPACK_PACKAGE_CONTACT "engram maintainers <engram@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # engram_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
# CPack indents every line after the first (the summary) itself.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "Long-term memory for AI agents
engram-server speaks Mem0's REST API and MCP over HTTP; engram is the command-line tool and engram-mcp the
MCP server over stdio. The package also holds the header-only C++20 library and its CMake package
(find_package(engram)), and runs engram-server as a systemd service: engram.service, settings in
/etc/engram/engram.env, memories in /var/lib/engram.")
# The apps' shared libraries (libssl, libpq, ...) from dpkg-shlibdeps; adduser for the service's user; the
# library's own dependencies are what find_package(engram) needs to compile against the headers.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libeigen3-dev, libxsimd-dev, xtl-dev, nlohmann-json3-dev")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libcpp-httplib-dev, libsqlite3-dev, libpq-dev")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_engram_deb}/postinst ${_engram_deb}/prerm ${_engram_deb}/postrm ${_engram_deb}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
