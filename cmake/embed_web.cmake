# Compiles the web pages into bookingd: writes OUT, a C++ source holding each file of DIR named in
# FILES as bytes, with its media type and a strong ETag (the first 16 hex digits of its SHA-256).
# Run by the build (httpd/CMakeLists.txt) whenever a file changes; users need no build step.
cmake_minimum_required(VERSION 3.20)
set(entries "")
set(arrays "")
set(i 0)
foreach(name IN LISTS FILES)
  set(path "${DIR}/${name}")
  file(READ "${path}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  file(SHA256 "${path}" sha)
  string(SUBSTRING "${sha}" 0 16 tag)
  if(name MATCHES "\\.html$")
    set(type "text/html; charset=utf-8")
  elseif(name MATCHES "\\.css$")
    set(type "text/css; charset=utf-8")
  elseif(name MATCHES "\\.js$")
    set(type "text/javascript; charset=utf-8")
  elseif(name MATCHES "\\.svg$")
    set(type "image/svg+xml")
  else()
    message(FATAL_ERROR "embed_web: no media type for ${name}")
  endif()
  string(APPEND arrays "const unsigned char file${i}[] = {${bytes}0};\n")
  string(APPEND entries "    {\"${name}\", \"${type}\", {reinterpret_cast<const char*>(file${i}), ${size}}, \"\\\"${tag}\\\"\"},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(WRITE "${OUT}.tmp" "// Generated from httpd/web by cmake/embed_web.cmake; do not edit.
#include \"web_assets.hpp\"

namespace booking::httpd {
namespace {
${arrays}
const WebAsset assets[] = {
${entries}};
}  // namespace

std::span<const WebAsset> web_assets() { return assets; }

}  // namespace booking::httpd
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
