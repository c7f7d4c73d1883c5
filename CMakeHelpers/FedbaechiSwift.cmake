# Swift targets of the package, built the way SwiftPM builds them: Swift 6 language mode, one
# module per folder of Sources/.

# fedbaechi_swift_library(<name> DEPENDS <targets...>): every .swift file under Sources/<name>.
function(fedbaechi_swift_library name)
  cmake_parse_arguments(ARG "" "" "DEPENDS" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/Sources/${name}/*.swift)
  add_library(${name} STATIC ${sources})
  set_target_properties(${name} PROPERTIES Swift_MODULE_NAME ${name})
  # -package-name: the modules form one package, as under SwiftPM.
  target_compile_options(${name} PRIVATE -swift-version 6 -package-name fedbaechi)
  target_link_libraries(${name} PUBLIC ${ARG_DEPENDS})
endfunction()

# fedbaechi_swift_executable(<name> <folder> DEPENDS <targets...>)
function(fedbaechi_swift_executable name folder)
  cmake_parse_arguments(ARG "PARSE_AS_LIBRARY" "" "DEPENDS" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${folder}/*.swift)
  add_executable(${name} ${sources})
  # -package-name: the modules form one package, as under SwiftPM.
  target_compile_options(${name} PRIVATE -swift-version 6 -package-name fedbaechi)
  if(ARG_PARSE_AS_LIBRARY)
    # An @main type instead of top-level code.
    target_compile_options(${name} PRIVATE -parse-as-library)
  endif()
  target_link_libraries(${name} PRIVATE ${ARG_DEPENDS})
endfunction()
