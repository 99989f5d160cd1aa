#!/usr/bin/env python3
"""Checks that every place naming engram's version agrees, and that the Conan recipe has the fields a
header-only package needs. Usage: check_versions.py SOURCE_DIR CMAKE_PROJECT_VERSION"""
import ast
import json
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
cmake_version = sys.argv[2]
errors = []

hpp = (root / "include/engram/version.hpp").read_text()
parts = [re.search(rf"#define ENGRAM_VERSION_{p} (\d+)", hpp).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
header_version = ".".join(parts)
string_version = re.search(r'#define ENGRAM_VERSION_STRING "([^"]+)"', hpp).group(1)
vcpkg_version = json.loads((root / "packaging/vcpkg/ports/engram/vcpkg.json").read_text())["version-semver"]

tree = ast.parse((root / "packaging/conan/conanfile.py").read_text())
conan = {}
for node in ast.walk(tree):
    if isinstance(node, ast.ClassDef):
        for stmt in node.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                try:
                    conan[stmt.targets[0].id] = ast.literal_eval(stmt.value)
                except ValueError:
                    pass
        methods = {s.name for s in node.body if isinstance(s, ast.FunctionDef)}
        conan["_methods"] = methods

versions = {"CMakeLists.txt": cmake_version, "version.hpp (parts)": header_version,
            "version.hpp (string)": string_version, "vcpkg.json": vcpkg_version, "conanfile.py": conan.get("version")}
if len(set(versions.values())) != 1:
    errors.append("versions disagree: " + ", ".join(f"{k}={v}" for k, v in versions.items()))
changelog = (root / "CHANGELOG.md").read_text()
if f"## {cmake_version}" not in changelog:
    errors.append(f"CHANGELOG.md has no '## {cmake_version}' section")
if conan.get("package_type") != "header-library":
    errors.append("conanfile.py: package_type must be 'header-library'")
if conan.get("license") != "Apache-2.0":
    errors.append("conanfile.py: license must be Apache-2.0")
for m in ("requirements", "package_id", "package", "package_info"):
    if m not in conan.get("_methods", set()):
        errors.append(f"conanfile.py: missing method {m}()")
reqs = (root / "packaging/conan/conanfile.py").read_text()
for dep in ("eigen/", "xsimd/", "nlohmann_json/"):
    if dep not in reqs:
        errors.append(f"conanfile.py: no requirement on {dep}")
if "self.info.clear()" not in reqs:
    errors.append("conanfile.py: package_id() must clear the package id (header-only)")
if "with_http" not in conan.get("options", {}):
    errors.append("conanfile.py: missing option with_http")

if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"version {cmake_version} agrees across CMake, version.hpp, vcpkg.json, conanfile.py, CHANGELOG.md")
