# SPDX-License-Identifier: BSD-3-Clause
# shim_unit: POSIX semantics under the prefix (shim_unit.c, CMocka) and the
# shim's environment and failures (unit.sh), through libvems_preload.so.
# Included from tests/CMakeLists.txt.
if(VEMS_SANITIZE)
  # the test programs would preload a sanitized shim into uninstrumented
  # /bin/sh, cat and echo: covered by the plain builds
  return()
endif()
add_executable(shim_unit ${CMAKE_CURRENT_LIST_DIR}/shim_unit.c)
target_compile_definitions(shim_unit PRIVATE _GNU_SOURCE)
target_link_libraries(shim_unit PRIVATE PkgConfig::CMOCKA)
add_executable(shim_holdpool ${CMAKE_CURRENT_LIST_DIR}/holdpool.c)
target_link_libraries(shim_holdpool PRIVATE vems)
add_test(NAME shim_unit
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/unit.sh
                 $<TARGET_FILE:vems_preload> $<TARGET_FILE:vemsctl>
                 $<TARGET_FILE:shim_unit> $<TARGET_FILE:shim_holdpool>)
set_tests_properties(shim_unit PROPERTIES LABELS "shim;unit" TIMEOUT 300
  ENVIRONMENT "PMEM_IS_PMEM_FORCE=1;VEMS_TEST_DIR=${VEMS_TEST_DIR}")

# SQLite through the shim SIGKILLed mid-transaction: integrity_check ok and
# every committed row there, rollback journal and exclusive WAL
add_test(NAME shim_sqlite_kill
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/sqlite_kill.sh
                 $<TARGET_FILE:vems_preload> $<TARGET_FILE:vemsctl>)
set_tests_properties(shim_sqlite_kill PROPERTIES LABELS shim TIMEOUT 300
  SKIP_RETURN_CODE 77
  ENVIRONMENT "PMEM_IS_PMEM_FORCE=1;VEMS_TEST_DIR=${VEMS_TEST_DIR}")
