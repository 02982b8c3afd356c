// engines.cc: the one place that maps an engine's name to its factory.
#include "engine.h"

namespace vw {

std::unique_ptr<Engine> make_engine(const std::string& name, WorkerEnv& env) {
  if (name == "epoll") return make_epoll_engine(env);
  return nullptr;
}

}  // namespace vw
