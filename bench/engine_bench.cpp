// Library-level benchmarks: holds through BookingService next to a bare SQLite transaction
// doing the same UPDATE + INSERT at the same synchronous setting, in the same binary.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <stdexcept>

#include "bench_env.hpp"

using namespace booking;
using namespace booking::bench;

namespace {

const char* sync_name(std::int64_t full) { return full ? "FULL" : "NORMAL"; }

void check(int rc, sqlite3* db) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    throw std::runtime_error(sqlite3_errmsg(db));
  }
}

// The baseline: one WAL transaction with one conditional UPDATE and one INSERT, nothing else.
void BM_BareSqliteHold(benchmark::State& state) {
  const std::string path = temp_dir("bare") + "/bare.db";
  sqlite3* db = nullptr;
  check(sqlite3_open(path.c_str(), &db), db);
  check(sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr), db);
  check(sqlite3_exec(db, (std::string("PRAGMA synchronous=") + sync_name(state.range(0))).c_str(),
                     nullptr, nullptr, nullptr),
        db);
  check(sqlite3_exec(db,
                     "CREATE TABLE tiers (key TEXT PRIMARY KEY, available INTEGER, held INTEGER);"
                     "CREATE TABLE bookings (id TEXT PRIMARY KEY, tier TEXT, qty INTEGER,"
                     " created INTEGER) WITHOUT ROWID;"
                     "INSERT INTO tiers VALUES ('hot', 1000000000, 0);",
                     nullptr, nullptr, nullptr),
        db);
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* update = nullptr;
  sqlite3_stmt* insert = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, nullptr);
  sqlite3_prepare_v2(db,
                     "UPDATE tiers SET available = available - 1, held = held + 1 "
                     "WHERE key = 'hot' AND available >= 1",
                     -1, &update, nullptr);
  sqlite3_prepare_v2(db, "INSERT INTO bookings VALUES (?, 'hot', 1, ?)", -1, &insert, nullptr);
  sqlite3_prepare_v2(db, "COMMIT", -1, &commit, nullptr);
  std::uint64_t n = 0;
  char id[33];
  // Ids as bookings have them: the time in milliseconds (48 bits), then 80 random bits. So the
  // baseline appends to its table as the service does; random ids would write a random leaf
  // per insert and make the baseline slower than it need be.
  std::mt19937_64 rng(42);
  for (auto _ : state) {
    ++n;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    std::snprintf(id, sizeof id, "%012llx%04llx%016llx", static_cast<unsigned long long>(ms),
                  static_cast<unsigned long long>(rng() & 0xFFFF),
                  static_cast<unsigned long long>(rng()));
    for (sqlite3_stmt* st : {begin, update}) {
      check(sqlite3_step(st), db);
      sqlite3_reset(st);
    }
    sqlite3_bind_text(insert, 1, id, 32, SQLITE_STATIC);
    sqlite3_bind_int64(insert, 2, static_cast<sqlite3_int64>(n));
    check(sqlite3_step(insert), db);
    sqlite3_reset(insert);
    check(sqlite3_step(commit), db);
    sqlite3_reset(commit);
  }
  for (sqlite3_stmt* st : {begin, update, insert, commit}) sqlite3_finalize(st);
  sqlite3_close(db);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(sync_name(state.range(0)));
}
BENCHMARK(BM_BareSqliteHold)->Arg(0)->Arg(1)->UseRealTime();

// range(0): 0 memory repository, 1 SQLite NORMAL, 2 SQLite FULL; range(1): 0 memory lock,
// 1 file lock.
void BM_ServiceHold(benchmark::State& state) {
  const std::string repo = state.range(0) == 0 ? "memory" : "sqlite";
  const Durability d = state.range(0) == 2 ? Durability::full : Durability::normal;
  Env& e = env(repo, state.range(1) ? "file" : "memory", d);
  const HoldRequest request = hot_hold();
  std::int64_t failures = 0;
  for (auto _ : state) {
    if (!e.service->hold(request)) ++failures;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["failures"] = static_cast<double>(failures);
  state.SetLabel(repo +
                 (repo == "sqlite" ? std::string("/") + sync_name(state.range(0) == 2) : "") + "/" +
                 (state.range(1) ? "file" : "memory") + "-lock");
}
BENCHMARK(BM_ServiceHold)
    ->ArgsProduct({{0, 1, 2}, {0, 1}})
    ->Threads(1)
    ->Threads(2)
    ->Threads(8)
    ->Threads(32)
    ->UseRealTime();

void BM_Confirm(benchmark::State& state) {
  Env& e = env("sqlite", "memory", Durability::normal);
  for (auto _ : state) {
    state.PauseTiming();
    auto h = e.service->hold(hot_hold());
    state.ResumeTiming();
    benchmark::DoNotOptimize(e.service->confirm(h.value().id, {"card", "ref"}));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Confirm)->UseRealTime();

void BM_Cancel(benchmark::State& state) {
  Env& e = env("sqlite", "memory", Durability::normal);
  for (auto _ : state) {
    state.PauseTiming();
    auto h = e.service->hold(hot_hold());
    state.ResumeTiming();
    benchmark::DoNotOptimize(e.service->cancel(h.value().id));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Cancel)->UseRealTime();

void BM_GetBooking(benchmark::State& state) {
  Env& e = env("sqlite", "memory", Durability::normal);
  const std::string id = e.service->hold(hot_hold()).value().id;
  for (auto _ : state) benchmark::DoNotOptimize(e.service->get_booking(id));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GetBooking)->ThreadRange(1, 2)->UseRealTime();

// Percentiles of a sample of latencies, in microseconds, as counters.
void report_percentiles(benchmark::State& state, std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    return us[std::min(us.size() - 1, static_cast<std::size_t>(q * us.size()))];
  };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
  state.counters["max_us"] = us.back();
}

void BM_Search100k(benchmark::State& state) {
  static const std::vector<std::string> kWords{"Blink", "Coldplay", "Jazz",   "Opera",  "Metal",
                                               "Indie", "Symphony", "Comedy", "Ballet", "Rock"};
  static Env* e = [] {
    static Env local;
    const std::string dir = temp_dir("search");
    local.repo = make_sqlite_repository(dir + "/search.db").value();
    local.locks = make_memory_lock_provider();
    local.service = std::make_unique<BookingService>(*local.repo, *local.locks, local.clock);
    std::vector<Event> batch;
    for (int i = 0; i < 100'000; ++i) {
      Event ev = hot_event(local.clock.now(), 100);
      // fmt, not "E" + std::to_string(i): GCC 12 -O3 misreports that (-Wrestrict, PR105651)
      ev.key = fmt::format("E{}", i);
      ev.name =
          fmt::format("{} night {} in {}", kWords[static_cast<std::size_t>(i) % kWords.size()], i,
                      kWords[static_cast<std::size_t>(i * 7) % kWords.size()]);
      ev.tiers[0].key = fmt::format("t{}", i);
      batch.push_back(std::move(ev));
      if (batch.size() == 1000) {
        local.service->create_events(batch).value();
        batch.clear();
      }
    }
    return &local;
  }();
  // A mix: popular words (many matches, first page), rare numbers (few matches), misses.
  std::vector<std::string> queries;
  for (int i = 0; i < 100; ++i) {
    queries.push_back(i % 3 == 0   ? kWords[static_cast<std::size_t>(i) % kWords.size()]
                      : i % 3 == 1 ? fmt::format("night {}", i * 997)
                                   : fmt::format("zzz{}", i));
  }
  std::vector<double> us;
  std::size_t q = 0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    auto r = e->service->search_events({queries[q++ % queries.size()], 20, 0});
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                     .count());
    benchmark::DoNotOptimize(r);
  }
  report_percentiles(state, us);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Search100k)->Iterations(3000)->UseRealTime();

void BM_Expire100kDueHolds(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    Env e;
    const std::string dir = temp_dir("expire");
    e.repo = make_sqlite_repository(dir + "/expire.db").value();
    e.locks = make_memory_lock_provider();
    e.service = std::make_unique<BookingService>(*e.repo, *e.locks, e.clock);
    e.service->create_event(hot_event(e.clock.now(), 1'000'000)).value();
    for (int i = 0; i < 100'000; ++i) e.service->hold(hot_hold()).value();
    e.clock.advance(std::chrono::minutes(11));
    state.ResumeTiming();
    auto n = e.service->expire_due();
    state.PauseTiming();
    if (!n || n.value() != 100'000) state.SkipWithError("expired the wrong number of holds");
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * 100'000);
}
BENCHMARK(BM_Expire100kDueHolds)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// Lock acquire + release of one key. Redis needs BOOKING_BENCH_REDIS=redis://HOST:PORT.
void BM_LockCycle(benchmark::State& state) {
  std::string spec =
      state.range(0) == 0 ? "memory"
      : state.range(0) == 1
          ? "file:" + temp_dir("lockcycle")
          : (std::getenv("BOOKING_BENCH_REDIS") ? std::getenv("BOOKING_BENCH_REDIS") : "");
  if (spec.empty()) {
    state.SkipWithError("set BOOKING_BENCH_REDIS=redis://127.0.0.1:PORT");
    return;
  }
  auto locks = make_lock_provider(spec);
  if (!locks) {
    state.SkipWithError(locks.error().message.c_str());
    return;
  }
  const std::vector<std::string> key{"tier:hot"};
  for (auto _ : state) {
    auto lease = locks.value()->acquire(key, std::chrono::seconds(10),
                                        std::chrono::steady_clock::now() + std::chrono::seconds(1));
    benchmark::DoNotOptimize(locks.value()->release(lease.value()));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(spec.substr(0, spec.find(':')));
}
BENCHMARK(BM_LockCycle)->DenseRange(0, 2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
