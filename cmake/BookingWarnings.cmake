# booking_target_defaults(<target>): warnings (errors with BOOKING_WERROR) and sanitizers, on our
# targets only. Third-party headers come in through imported targets, which CMake marks SYSTEM.
# -Werror is off by default: a user's newer compiler must not turn a harmless new warning into
# a failed build. cmake/test.sh turns it on.
function(booking_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(BOOKING_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(BOOKING_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${BOOKING_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${BOOKING_SANITIZE})
  endif()
endfunction()
