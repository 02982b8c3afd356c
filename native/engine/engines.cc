// engines.cc: the one list of engines: each name with its factory (none when this build lacks
// it). The launcher learns the names from here (engines(), allEngines()).
#include "engine/engine.h"

namespace vw {

namespace {
struct Entry {
  const char* name;
  std::unique_ptr<Engine> (*make)(WorkerEnv&);
};
const Entry kEngines[] = {
    {"epoll", make_epoll_engine},
#ifdef VW_HAVE_LIBURING  // binding.gyp defines it when liburing.h was found at build time
    {"uring", make_uring_engine},
#else
    {"uring", nullptr},  // known, not built: liburing was missing at build time
#endif
    {"poll", make_poll_engine},
    {"select", make_select_engine},
    {"blocking", make_blocking_engine},
};
}  // namespace

std::unique_ptr<Engine> make_engine(const std::string& name, WorkerEnv& env) {
  for (const Entry& e : kEngines)
    if (name == e.name && e.make) return e.make(env);
  return nullptr;
}

const std::vector<std::string>& engine_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const Entry& e : kEngines)
      if (e.make) v.push_back(e.name);
    return v;
  }();
  return names;
}

const std::vector<std::string>& known_engine_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const Entry& e : kEngines) v.push_back(e.name);
    return v;
  }();
  return names;
}

}  // namespace vw
