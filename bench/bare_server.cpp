// The HTTP baseline: a tuned cpp-httplib server answering POST /v1/api/books with a constant
// body, no parsing, no storage. Prints "listening on http://127.0.0.1:PORT".
#include <iostream>

#include "tuned_server.hpp"

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 0;
  int threads = argc > 2 ? std::atoi(argv[2]) : 256;
  booking::bench::TunedServer server(threads);
  const std::string body =
      R"({"data":{"bookId":"0123456789abcdef0123456789abcdef","price":5000000,"currency":"IDR",)"
      R"("status":"HELD","expiresAt":"2026-11-11T14:10:00.000+00:00"}})";
  server.Post("/v1/api/books", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 201;
    res.set_content(body, "application/json");
  });
  int bound = server.bind_tuned("127.0.0.1", port);
  if (bound < 0) return 1;
  std::cout << "listening on http://127.0.0.1:" << bound << std::endl;
  server.listen_after_bind();
}
