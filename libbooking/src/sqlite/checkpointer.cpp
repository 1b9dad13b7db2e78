#include "sqlite/checkpointer.hpp"

namespace booking::detail {

Checkpointer::Checkpointer(sqlite3* writer, std::unique_ptr<Connection> own, int pages, int limit)
    : writer_(writer),
      own_(std::move(own)),
      pages_(pages),
      limit_(limit),
      thread_([this](const std::stop_token& stop) { run(stop); }) {
  sqlite3_wal_hook(writer_, &Checkpointer::on_commit, this);
}

Checkpointer::~Checkpointer() {
  sqlite3_wal_autocheckpoint(writer_, 1000);  // replaces our hook with SQLite's default
  thread_.request_stop();
  thread_.join();
}

// Runs in the writer's COMMIT, with its write lock held: only flags the work.
int Checkpointer::on_commit(void* self, sqlite3* db, const char* schema, int frames) {
  auto* c = static_cast<Checkpointer*>(self);
  if (frames >= c->limit_) {
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  } else if (frames >= c->pages_ && !c->due_.exchange(true)) {
    std::lock_guard lock(c->mu_);
    c->wake_.notify_one();
  }
  return SQLITE_OK;
}

void Checkpointer::run(const std::stop_token& stop) {
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (!wake_.wait(lock, stop, [&] { return due_.load(); })) return;  // stop requested
    }
    // A failed checkpoint (I/O error, a reader pinning old frames) is simply tried again at a
    // later commit; the WAL keeps every frame until then, and the hard limit still applies.
    sqlite3_wal_checkpoint_v2(own_->db().getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                              nullptr);
    done_.fetch_add(1, std::memory_order_relaxed);
    due_.store(false);
  }
}

}  // namespace booking::detail
