# Swift targets of the package, built the way SwiftPM builds them: Swift 6 language mode, one
# module per folder of Sources/.

# fedbaechi_swift_library(<name> [FOLDER <folder>] DEPENDS <targets...>): every .swift file under
# Sources/<name>, or under <folder> (Tests/TestSupport).
function(fedbaechi_swift_library name)
  cmake_parse_arguments(ARG "" "FOLDER" "DEPENDS" ${ARGN})
  if(NOT ARG_FOLDER)
    set(ARG_FOLDER ${PROJECT_SOURCE_DIR}/Sources/${name})
  endif()
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${ARG_FOLDER}/*.swift)
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
