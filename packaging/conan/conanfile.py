import os

from conan import ConanFile
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import copy


class EngramConan(ConanFile):
    name = "engram"
    version = "0.1.0"
    license = "Apache-2.0"
    description = "Long-term memory for AI agents: a header-only C++20 library"
    topics = ("memory", "agents", "llm", "vector-search", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"with_http": [True, False], "with_sqlite": [True, False]}
    default_options = {"with_http": False, "with_sqlite": False}
    no_copy_source = True

    def export_sources(self):
        root = os.path.join(self.recipe_folder, "..", "..")
        copy(self, "*.hpp", os.path.join(root, "include"), os.path.join(self.export_sources_folder, "include"))
        copy(self, "LICENSE", root, self.export_sources_folder)

    def requirements(self):
        self.requires("eigen/3.4.0")
        self.requires("xsimd/8.1.0")
        self.requires("nlohmann_json/3.11.2")
        if self.options.with_http:
            self.requires("cpp-httplib/0.11.4")
        if self.options.with_sqlite:
            self.requires("sqlite3/3.40.1")

    def layout(self):
        cmake_layout(self)

    def package_id(self):
        self.info.clear()

    def package(self):
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"), os.path.join(self.package_folder, "include"))
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "engram")
        core = self.cpp_info.components["engram"]
        core.set_property("cmake_target_name", "engram::engram")
        core.requires = ["eigen::eigen", "xsimd::xsimd", "nlohmann_json::nlohmann_json"]
        if self.settings.os in ("Linux", "FreeBSD"):
            core.system_libs = ["pthread"]
        if self.options.with_http:
            http = self.cpp_info.components["http"]
            http.set_property("cmake_target_name", "engram::http")
            http.requires = ["engram", "cpp-httplib::cpp-httplib"]
        if self.options.with_sqlite:
            sqlite = self.cpp_info.components["sqlite"]
            sqlite.set_property("cmake_target_name", "engram::sqlite")
            sqlite.requires = ["engram", "sqlite3::sqlite3"]
