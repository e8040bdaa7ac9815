# lmserve_add_test(NAME name SOURCES a.cc b.cc LIBS libs... LABELS unit|conformance|e2e|cuda [TIMEOUT s])
# Each test executable is registered with ctest once (not per gtest case) to keep CI start-up cheap.
function(lmserve_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${T_NAME} PRIVATE
    LMSERVE_TEST_DATA_DIR="${CMAKE_SOURCE_DIR}/tests/data"
    LMSERVE_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    LMSERVE_BINARY_DIR="${CMAKE_BINARY_DIR}")
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()
