// The web pages' files (httpd/web), compiled into bookingd by cmake/embed_web.cmake: the pages
// work offline, from the binary alone.
#pragma once

#include <span>
#include <string_view>

namespace booking::httpd {

struct WebAsset {
  std::string_view name;          // file name in httpd/web, e.g. "shop.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view body;
  std::string_view etag;  // quoted, strong: a hash of the body
};

std::span<const WebAsset> web_assets();

}  // namespace booking::httpd
