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
//
// The WAL starts over only when a writer begins after all of it was copied, which, while commits
// go on, is rare: under 100 HTTP clients it grows to the hard limit every time. Asked for at
// every commit past the threshold, a checkpoint copies each commit's pages again, although the
// hot ones (the last pages of each index, a user's page of the user index) are rewritten by
// every batch: measured, ~60 % of the frames written went to the database file again. Asked for
// once per `pages_` new frames, it copies a hot page once per stretch (~40 %, and half of the
// fsyncs); in the last stretches before the limit at every commit again, so that the checkpoint
// the writer then does itself has little left to copy.
int Checkpointer::on_commit(void* self, sqlite3* db, const char* schema, int frames) {
  auto* c = static_cast<Checkpointer*>(self);
  if (frames < c->last_frames_) c->next_ = c->pages_;  // the WAL started over
  c->last_frames_ = frames;
  if (frames >= c->limit_) {
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return SQLITE_OK;
  }
  if (frames < c->next_ && frames < c->limit_ - 2 * c->pages_) return SQLITE_OK;
  c->next_ = frames + c->pages_;
  if (!c->due_.exchange(true)) {
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
