# swift-argument-parser for the CMake build. CMake cannot resolve SwiftPM dependencies, so SwiftPM
# fetches the source (`swift package resolve`, pinned by Package.swift) and CMake builds it with
# the CMakeLists.txt that swift-argument-parser ships. Set FEDBAECHI_ARGUMENT_PARSER_SOURCE to use
# a checkout of your own instead.
set(FEDBAECHI_ARGUMENT_PARSER_SOURCE "${PROJECT_SOURCE_DIR}/.build/checkouts/swift-argument-parser"
    CACHE PATH "Source folder of swift-argument-parser")
if(NOT EXISTS "${FEDBAECHI_ARGUMENT_PARSER_SOURCE}/CMakeLists.txt")
  message(STATUS "Resolving swift-argument-parser with SwiftPM")
  execute_process(COMMAND swift package resolve
                  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                  RESULT_VARIABLE resolve_result)
  if(NOT resolve_result EQUAL 0 OR NOT EXISTS "${FEDBAECHI_ARGUMENT_PARSER_SOURCE}/CMakeLists.txt")
    message(FATAL_ERROR "swift-argument-parser not found at ${FEDBAECHI_ARGUMENT_PARSER_SOURCE}; "
                        "run `swift package resolve` or set FEDBAECHI_ARGUMENT_PARSER_SOURCE")
  endif()
endif()
set(BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
set(BUILD_TESTING_SAVED ${BUILD_TESTING})
set(BUILD_TESTING OFF)
set(BUILD_SHARED_LIBS_SAVED ${BUILD_SHARED_LIBS})
set(BUILD_SHARED_LIBS OFF)
add_subdirectory(${FEDBAECHI_ARGUMENT_PARSER_SOURCE} ${CMAKE_BINARY_DIR}/swift-argument-parser EXCLUDE_FROM_ALL)
set(BUILD_TESTING ${BUILD_TESTING_SAVED})
set(BUILD_SHARED_LIBS ${BUILD_SHARED_LIBS_SAVED})
