# SwiftProtobuf (the runtime library of the ONNX reader) for the CMake build. As with
# swift-argument-parser, SwiftPM fetches the source (`swift package resolve`, pinned by
# Package.swift); CMake compiles its Sources/SwiftProtobuf/*.swift as one static library.
# swift-protobuf's own CMakeLists.txt lists its files by hand and also configures the protoc
# plugin, which fedbaechi does not need: ONNX's message types are generated once and committed.
# Set FEDBAECHI_SWIFT_PROTOBUF_SOURCE to use a checkout of your own instead.
set(FEDBAECHI_SWIFT_PROTOBUF_SOURCE "${PROJECT_SOURCE_DIR}/.build/checkouts/swift-protobuf"
    CACHE PATH "Source folder of swift-protobuf")
if(NOT EXISTS "${FEDBAECHI_SWIFT_PROTOBUF_SOURCE}/Sources/SwiftProtobuf")
  message(STATUS "Resolving swift-protobuf with SwiftPM")
  execute_process(COMMAND swift package resolve
                  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                  RESULT_VARIABLE resolve_result)
  if(NOT resolve_result EQUAL 0 OR NOT EXISTS "${FEDBAECHI_SWIFT_PROTOBUF_SOURCE}/Sources/SwiftProtobuf")
    message(FATAL_ERROR "swift-protobuf not found at ${FEDBAECHI_SWIFT_PROTOBUF_SOURCE}; "
                        "run `swift package resolve` or set FEDBAECHI_SWIFT_PROTOBUF_SOURCE")
  endif()
endif()
file(GLOB swift_protobuf_sources CONFIGURE_DEPENDS ${FEDBAECHI_SWIFT_PROTOBUF_SOURCE}/Sources/SwiftProtobuf/*.swift)
add_library(SwiftProtobuf STATIC ${swift_protobuf_sources})
set_target_properties(SwiftProtobuf PROPERTIES Swift_MODULE_NAME SwiftProtobuf)
# The package's default traits under SwiftPM, so both builds compile the same library.
target_compile_options(SwiftProtobuf PRIVATE -swift-version 6 -package-name SwiftProtobuf
  -DBinaryDelimitedStreams -DFieldMaskUtilities -suppress-warnings)
