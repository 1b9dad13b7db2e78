// The PostgreSQL schema: its versioned migrations and how they are applied.
#pragma once

#include "postgres/pg.hpp"

namespace booking::detail::pg {

// Applies the migrations the database has not seen yet, in one transaction under an advisory
// lock, so that instances starting together apply each once; refuses (throws) a database
// migrated past a change this build does not know (see require_known_schema).
void migrate(Connection& c);

}  // namespace booking::detail::pg
