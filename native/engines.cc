// engines.cc: the one place that maps an engine's name to its factory.
#include "engine.h"

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
#endif
    {"poll", make_poll_engine},
    {"select", make_select_engine},
    {"blocking", make_blocking_engine},
};
}  // namespace

std::unique_ptr<Engine> make_engine(const std::string& name, WorkerEnv& env) {
  for (const Entry& e : kEngines)
    if (name == e.name) return e.make(env);
  return nullptr;
}

const std::vector<std::string>& engine_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const Entry& e : kEngines) v.push_back(e.name);
    return v;
  }();
  return names;
}

}  // namespace vw
