# Sanitizer and fuzzing builds (docs/fuzzing.md). Included by the top CMakeLists.txt before any
# component, so the flags reach every library, module, executable and test alike.
#
#   REFZARR_SANITIZE=ON  everything built with AddressSanitizer + UndefinedBehaviorSanitizer
#                        (`make test-sanitize`: the ctest suite under it, in build-asan).
#   REFZARR_FUZZ=ON      clang only: every library instrumented for libFuzzer
#                        (-fsanitize=fuzzer-no-link,address,undefined) and the targets in tests/fuzz
#                        linked with libFuzzer's driver (`make fuzz`, in build-fuzz).
#
# Without REFZARR_FUZZ the fuzz targets are still built, linked with tests/fuzz/replay_main.cc, and
# ctest replays each one's regression corpus (label `fuzz`): in the plain build, and in the
# sanitizer build where a replayed crash is reported.
option(REFZARR_SANITIZE "Build everything with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(REFZARR_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)

# UBSan findings are errors (no recovery), so a finding fails the test that hit it. Frame pointers
# keep the reports' stacks whole at -O2.
set(REFZARR_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer)

if(REFZARR_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "REFZARR_FUZZ=ON needs clang (libFuzzer): configure with "
                        "-DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  # fuzzer-no-link: coverage instrumentation everywhere; only the fuzz targets link the driver.
  add_compile_options(-fsanitize=fuzzer-no-link ${REFZARR_SANITIZER_FLAGS})
  add_link_options(${REFZARR_SANITIZER_FLAGS})
  set(REFZARR_FUZZ_LINK_FLAGS -fsanitize=fuzzer)
elseif(REFZARR_SANITIZE)
  add_compile_options(${REFZARR_SANITIZER_FLAGS})
  add_link_options(${REFZARR_SANITIZER_FLAGS})
endif()
