# System libraries fedbaechi links, found the way each one publishes itself on Debian:
# MPI through CMake's FindMPI, OpenBLAS and COIN-OR CLP through pkg-config, zlib through FindZLIB.
#
# Each C module of the Swift package (Sources/C*) is a folder holding a module.modulemap and a
# header; fedbaechi_system_module() turns one into an INTERFACE target whose include folder swiftc
# searches for the module map, and which carries the library it wraps.

find_package(MPI REQUIRED COMPONENTS C)
find_package(PkgConfig REQUIRED)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
pkg_check_modules(CLP REQUIRED IMPORTED_TARGET clp)
find_package(ZLIB REQUIRED)

# fedbaechi_system_module(<name> <folder> <link targets...>)
function(fedbaechi_system_module name folder)
  add_library(${name} INTERFACE)
  target_include_directories(${name} INTERFACE ${folder})
  target_link_libraries(${name} INTERFACE ${ARGN})
endfunction()
