# swift-crypto (the federated secrets: X25519, HKDF, ChaCha20) for the CMake build. As with the other
# packages, SwiftPM fetches the sources (`swift package resolve`, pinned by Package.swift) and CMake
# builds them with the CMakeLists.txt swift-crypto ships. swift-crypto vends swift-asn1 through
# FetchContent; it is pointed at SwiftPM's checkout, so nothing is downloaded. Set
# FEDBAECHI_SWIFT_CRYPTO_SOURCE and FEDBAECHI_SWIFT_ASN1_SOURCE to use checkouts of your own.
set(FEDBAECHI_SWIFT_CRYPTO_SOURCE "${PROJECT_SOURCE_DIR}/.build/checkouts/swift-crypto"
    CACHE PATH "Source folder of swift-crypto")
set(FEDBAECHI_SWIFT_ASN1_SOURCE "${PROJECT_SOURCE_DIR}/.build/checkouts/swift-asn1"
    CACHE PATH "Source folder of swift-asn1")
if(NOT EXISTS "${FEDBAECHI_SWIFT_CRYPTO_SOURCE}/CMakeLists.txt" OR NOT EXISTS "${FEDBAECHI_SWIFT_ASN1_SOURCE}/CMakeLists.txt")
  message(STATUS "Resolving swift-crypto with SwiftPM")
  execute_process(COMMAND swift package resolve
                  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                  RESULT_VARIABLE resolve_result)
  if(NOT resolve_result EQUAL 0 OR NOT EXISTS "${FEDBAECHI_SWIFT_CRYPTO_SOURCE}/CMakeLists.txt")
    message(FATAL_ERROR "swift-crypto not found at ${FEDBAECHI_SWIFT_CRYPTO_SOURCE}; "
                        "run `swift package resolve` or set FEDBAECHI_SWIFT_CRYPTO_SOURCE")
  endif()
endif()
set(FETCHCONTENT_SOURCE_DIR_ASN1 "${FEDBAECHI_SWIFT_ASN1_SOURCE}" CACHE PATH "swift-asn1 for swift-crypto" FORCE)
set(BUILD_TESTING_SAVED ${BUILD_TESTING})
set(BUILD_TESTING OFF)
set(BUILD_SHARED_LIBS_SAVED ${BUILD_SHARED_LIBS})
set(BUILD_SHARED_LIBS OFF)
add_subdirectory(${FEDBAECHI_SWIFT_CRYPTO_SOURCE} ${CMAKE_BINARY_DIR}/swift-crypto EXCLUDE_FROM_ALL)
set(BUILD_TESTING ${BUILD_TESTING_SAVED})
set(BUILD_SHARED_LIBS ${BUILD_SHARED_LIBS_SAVED})
# The C and C++ libraries inside swift-crypto would be archived by the Swift driver (this project's
# languages make Swift the preferred linker), which looks for a Swift output-file map they do not
# have: archive them as the C and C++ they are.
set_target_properties(CCryptoBoringSSL PROPERTIES LINKER_LANGUAGE CXX)
foreach(c_library CCryptoBoringSSLShims CXKCP CXKCPShims)
  set_target_properties(${c_library} PROPERTIES LINKER_LANGUAGE C)
endforeach()
# BoringSSL is C++: whatever links it (through Crypto) needs the C++ runtime, which the Swift driver
# does not add by itself.
target_link_libraries(CCryptoBoringSSL INTERFACE stdc++)
