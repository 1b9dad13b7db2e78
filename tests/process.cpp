#include "process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <iterator>
#include <system_error>
#include <thread>

extern char** environ;

namespace booking::test {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

namespace {
bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// Starts argv[0] (searched in PATH) with `actions` applied (may be null); throws if it cannot.
// run_command() calls this from the tests' worker threads, and Catch2 2.x assertion and INFO
// macros are not thread-safe (TSan caught two threads writing Catch's shared message stream),
// so failure is an exception here, which Catch reports on the main thread.
pid_t spawn(const std::vector<std::string>& argv, const posix_spawn_file_actions_t* actions) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], actions, nullptr, args.data(), environ);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "spawning " + argv[0]);
  return pid;
}

// Polls `ready` for up to 10 s while the server `pid` starts; fails the test, pointing at
// `log`, if the server exits first (then `pid` is reset to -1) or never becomes ready.
void wait_until_ready(pid_t& pid, const std::function<bool()>& ready, const char* what,
                      const std::string& log) {
  for (int i = 0; i < 1000; ++i) {
    if (ready()) return;
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      pid = -1;
      FAIL(what << " exited at start; see " << log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL(what << " did not become ready; see " << log);
}
}  // namespace

Child::Child(const std::vector<std::string>& argv) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  pid_ = spawn(argv, &actions);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  out_ = fds[0];
}

Child::~Child() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    wait();
  }
  if (out_ >= 0) ::close(out_);
}

std::string Child::read_line() {
  while (true) {
    auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    char buf[4096];
    ssize_t n = ::read(out_, buf, sizeof buf);
    if (n <= 0) return std::exchange(buffer_, {});
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

std::string Child::read_all() {
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out_, buf, sizeof buf)) > 0) buffer_.append(buf, static_cast<std::size_t>(n));
  return std::exchange(buffer_, {});
}

int Child::wait() {
  if (!reaped_) {
    int st = 0;
    ::waitpid(pid_, &st, 0);
    reaped_ = true;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  return status_;
}

void Child::kill(int sig) { ::kill(pid_, sig); }

CommandResult run_command(const std::vector<std::string>& argv, const std::string& input) {
  TempDir dir;
  { std::ofstream(dir.file("in")) << input; }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, dir.file("in").c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, dir.file("out").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, dir.file("err").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = spawn(argv, &actions);
  posix_spawn_file_actions_destroy(&actions);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), read_file(dir.file("out")),
          read_file(dir.file("err"))};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

RedisServer::RedisServer() : port_(free_port()) { start(); }

RedisServer::~RedisServer() { stop(); }

void RedisServer::start() {
  pid_ = spawn({"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save",
                "", "--appendonly", "no", "--dir", dir_.path().string(), "--logfile",
                dir_.file("redis.log"), "--daemonize", "no"},
               nullptr);
  wait_until_ready(
      pid_, [&] { return port_open(port_); }, "redis-server", dir_.file("redis.log"));
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

RedisServer& shared_redis() {
  static RedisServer server;
  return server;
}

std::string pg_program(const std::string& name) { return BOOKING_PG_BINDIR "/" + name; }

PostgresServer::PostgresServer() : port_(free_port()) {
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    INFO("running as root, PostgreSQL needs the 'postgres' user of Debian's postgresql package");
    REQUIRE(pw != nullptr);
    REQUIRE(::chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) == 0);
  }
  auto init =
      run_command(as_server_user({pg_program("initdb"), "-D", dir_.file("data"), "-U", "postgres",
                                  "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"}));
  INFO("initdb said: " << init.out << init.err);
  REQUIRE(init.code == 0);
  start();
}

PostgresServer::~PostgresServer() { stop(); }

std::vector<std::string> PostgresServer::as_server_user(std::vector<std::string> argv) const {
  std::vector<std::string> wrapped{"setpriv", "--pdeathsig", "TERM"};
  if (::geteuid() == 0) {
    wrapped.insert(wrapped.end(), {"--reuid=postgres", "--regid=postgres", "--init-groups"});
  }
  wrapped.push_back("--");
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

void PostgresServer::start() {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, dir_.file("server.log").c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_ = spawn(
      as_server_user({pg_program("postgres"), "-D", dir_.file("data"), "-p", std::to_string(port_),
                      "-k", dir_.path().string(), "-c", "listen_addresses=127.0.0.1", "-c",
                      "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"}),
      &actions);
  posix_spawn_file_actions_destroy(&actions);
  const std::vector<std::string> is_ready{pg_program("pg_isready"), "-q", "-h", "127.0.0.1", "-p",
                                          std::to_string(port_)};
  wait_until_ready(
      pid_, [&] { return run_command(is_ready).code == 0; }, "postgres", dir_.file("server.log"));
}

void PostgresServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGINT);  // fast shutdown: ends sessions, rolls back, exits
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string PostgresServer::create_database() {
  std::string name(1, 't');  // not "t" + to_string(): GCC 12 -O2 warns falsely (-Wrestrict)
  name += std::to_string(++databases_);
  auto made = run_command({pg_program("createdb"), "-h", "127.0.0.1", "-p", std::to_string(port_),
                           "-U", "postgres", name});
  INFO("createdb said: " << made.err);
  REQUIRE(made.code == 0);
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + name;
}

PostgresServer& shared_postgres() {
  static PostgresServer server;
  return server;
}

PostgresBackend::PostgresBackend() {
  auto r = make_postgres_repository(url);
  INFO(url << ": " << (r ? "" : r.error().message));
  REQUIRE(r);
  repo = std::move(r).value();
}

std::string worker_path() { return BOOKING_TEST_WORKER; }

}  // namespace booking::test
