# booking_target_defaults(<target>): warnings as errors and sanitizers, on our targets only.
# Third-party headers come in through imported targets, which CMake marks SYSTEM.
function(booking_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
  if(BOOKING_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${BOOKING_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${BOOKING_SANITIZE})
  endif()
endfunction()
