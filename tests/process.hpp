// Child processes for tests: redis-server and PostgreSQL fixtures and spawned workers, all
// stopped by PID.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "support.hpp"

namespace booking::test {

// A free TCP port on 127.0.0.1 (bind to port 0 and read it back).
int free_port();

// A child process with its stdout on a pipe. Killed (SIGKILL) and reaped on destruction.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  // Reads one line of the child's stdout (without '\n'); empty at EOF.
  std::string read_line();
  // Reads all remaining output.
  std::string read_all();
  // Waits for exit; returns the exit status (or 128 + signal).
  int wait();
  void kill(int sig);

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string buffer_;
};

// A redis-server on a free loopback port with a temp dir and no persistence. Fails the test (it
// never skips) when redis-server cannot be started.
class RedisServer {
 public:
  RedisServer();
  ~RedisServer();
  void start();  // on the same port as before
  void stop();   // SIGKILL, then reaped
  int port() const { return port_; }
  std::string spec() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  TempDir dir_;
  int port_;
  pid_t pid_ = -1;
};

// One redis-server shared by every test in this process, started on first use.
RedisServer& shared_redis();

// A throwaway PostgreSQL cluster: initdb in a temp dir, then `postgres` on a free loopback port
// (fsync off: these tests are about concurrency, not power loss). As root, both run as the
// `postgres` user (initdb refuses root) through setpriv, which also asks the kernel to stop the
// server if the test process dies. Stopped by PID (SIGINT, PostgreSQL's fast shutdown). Fails
// the test, never skips, when PostgreSQL cannot be started.
class PostgresServer {
 public:
  PostgresServer();
  ~PostgresServer();
  void start();  // on the same port and data directory as before
  void stop();   // fast shutdown, waits for the server to exit
  int port() const { return port_; }
  // Creates a new, empty database and returns its postgresql:// URL.
  std::string create_database();

 private:
  std::vector<std::string> as_server_user(std::vector<std::string> argv) const;
  TempDir dir_;
  int port_;
  pid_t pid_ = -1;
  int databases_ = 0;
};

// The path of a PostgreSQL program (initdb, psql, ...) of the installed server.
std::string pg_program(const std::string& name);

// One PostgreSQL cluster shared by every test in this process, started on first use; each
// test takes its own database.
PostgresServer& shared_postgres();

struct PostgresBackend {
  static constexpr const char* name = "postgres";
  std::string url = shared_postgres().create_database();
  std::unique_ptr<EventRepository> repo;
  PostgresBackend();
};

// Every repository this build has, for TEMPLATE_TEST_CASE.
#if BOOKING_TEST_POSTGRES
#define ALL_BACKENDS MemoryBackend, SqliteBackend, PostgresBackend
#else
#define ALL_BACKENDS MemoryBackend, SqliteBackend
#endif

struct CommandResult {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion with `input` on its stdin; captures stdout and stderr. Safe to call
// from worker threads: it uses no Catch2 macros and throws std::system_error if it cannot spawn.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& input = "");

// The path of the test worker binary.
std::string worker_path();

// A file's whole content ("" when it cannot be read).
std::string read_file(const std::string& path);

}  // namespace booking::test
