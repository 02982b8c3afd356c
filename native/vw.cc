// vw.cc: the Node-API surface, and the only file that knows Node exists. It converts validated
// JS values into plain structs once, starts and stops servers, and hands JS the stats block as
// memory to read. No C++ exception crosses this boundary (exceptions are off); misuse of the
// seam is a TypeError, and failures of the system are returned as values with their errno.
#include <napi.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <set>

#include "worker/cpu.h"
#include "worker/net.h"
#include "worker/server.h"

namespace vw {
namespace {

// A server as JS holds it. Deleted by the External's finalizer; stopped by the cleanup hook
// if Node exits first, so no worker thread outlives the environment.
struct Handle {
  std::unique_ptr<Server> server;
  bool join_started = false;
};

struct AddonState {
  std::set<Handle*> live;
};

// ---- reading the config object (JS thread only) ----

bool fail_type(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, "vw native: " + msg).ThrowAsJavaScriptException();
  return false;
}

bool get_u32(Napi::Object o, const char* key, uint32_t& out) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) return fail_type(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0) return fail_type(o.Env(), std::string(key) + " out of range");
  out = static_cast<uint32_t>(d);
  return true;
}

bool get_string(Napi::Object o, const char* key, std::string& out) {
  Napi::Value v = o.Get(key);
  if (v.IsString()) {
    out = v.As<Napi::String>().Utf8Value();
    return true;
  }
  if (v.IsBuffer()) {  // bodies are bytes, not text
    auto b = v.As<Napi::Buffer<char>>();
    out.assign(b.Data(), b.Length());
    return true;
  }
  return fail_type(o.Env(), std::string(key) + " must be a string or Buffer");
}

bool get_array(Napi::Object o, const char* key, Napi::Array& out) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) return fail_type(o.Env(), std::string(key) + " must be an array");
  out = v.As<Napi::Array>();
  return true;
}

bool read_specs(Napi::Object o, const char* key, std::vector<ResponseSpec>& out) {
  Napi::Array a;
  if (!get_array(o, key, a)) return false;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsObject()) return fail_type(o.Env(), std::string(key) + " entries must be objects");
    Napi::Object e = v.As<Napi::Object>();
    ResponseSpec spec;
    uint32_t status = 0;
    if (!get_string(e, "path", spec.path) || !get_u32(e, "status", status) ||
        !get_string(e, "headers", spec.headers) || !get_string(e, "body", spec.body))
      return false;
    spec.status = static_cast<uint16_t>(status);
    // Optional validators (content.ts sets them for served files and routes).
    if (e.Has("etag") && !get_string(e, "etag", spec.etag)) return false;
    if (e.Has("notModifiedHeaders") && !get_string(e, "notModifiedHeaders", spec.not_modified_headers))
      return false;
    Napi::Value lm = e.Get("lastModified");
    if (lm.IsNumber()) spec.last_modified = lm.As<Napi::Number>().Int64Value();
    out.push_back(std::move(spec));
  }
  return true;
}

// One reader per field type of VW_CONFIG_FIELDS/VW_LIMITS_FIELDS: a wrong JS type is a
// TypeError naming the key (the launcher checked the values; this guards the seam).
bool read_field(Napi::Object o, const char* key, bool& out) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) return fail_type(o.Env(), std::string(key) + " must be a boolean");
  out = v.As<Napi::Boolean>().Value();
  return true;
}

bool read_field(Napi::Object o, const char* key, uint32_t& out) { return get_u32(o, key, out); }

bool read_field(Napi::Object o, const char* key, uint64_t& out) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) return fail_type(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 9007199254740991.0) return fail_type(o.Env(), std::string(key) + " out of range");
  out = static_cast<uint64_t>(d);
  return true;
}

bool read_field(Napi::Object o, const char* key, int& out) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) return fail_type(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < -2147483648.0 || d > 2147483647.0) return fail_type(o.Env(), std::string(key) + " out of range");
  out = static_cast<int>(d);
  return true;
}

bool read_field(Napi::Object o, const char* key, std::string& out) { return get_string(o, key, out); }

bool read_field(Napi::Object o, const char* key, Policy& out) {
  std::string name;
  if (!get_string(o, key, name)) return false;
  if (!policy_from_name(name, out)) return fail_type(o.Env(), std::string(key) + ": unknown policy " + name);
  return true;
}

// { mode: "auto" | "fixed" | "off", boundUs }
bool read_field(Napi::Object o, const char* key, CoalesceConfig& out) {
  Napi::Value v = o.Get(key);
  if (!v.IsObject()) return fail_type(o.Env(), std::string(key) + " must be an object { mode, boundUs }");
  Napi::Object c = v.As<Napi::Object>();
  std::string mode;
  if (!get_string(c, "mode", mode) || !get_u32(c, "boundUs", out.bound_us)) return false;
  if (mode == "off") out.mode = CoalesceMode::off;
  else if (mode == "fixed") out.mode = CoalesceMode::fixed;
  else if (mode == "auto") out.mode = CoalesceMode::adaptive;
  else return fail_type(o.Env(), std::string(key) + ".mode: auto, fixed or off");
  return true;
}

bool read_field(Napi::Object o, const char* key, std::vector<int>& out) {
  Napi::Array a;
  if (!get_array(o, key, a)) return false;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsNumber()) return fail_type(o.Env(), std::string(key) + " must hold numbers");
    out.push_back(v.As<Napi::Number>().Int32Value());
  }
  return true;
}

// [{ family: 4 | 6, host, port, dualStack }]
bool read_field(Napi::Object o, const char* key, std::vector<ListenAddr>& out) {
  Napi::Array arr;
  if (!get_array(o, key, arr)) return false;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsObject()) return fail_type(o.Env(), std::string(key) + " entries must be objects");
    Napi::Object l = v.As<Napi::Object>();
    ListenAddr a;
    uint32_t family = 0, port = 0;
    if (!get_u32(l, "family", family) || !get_string(l, "host", a.host) || !get_u32(l, "port", port) ||
        !read_field(l, "dualStack", a.dual_stack))
      return false;
    a.family = family == 6 ? AF_INET6 : AF_INET;
    a.port = static_cast<uint16_t>(port);
    out.push_back(a);
  }
  return true;
}

// [{ bytes: Buffer(16), prefix: 0..128 }]
bool read_field(Napi::Object o, const char* key, std::vector<Cidr>& out) {
  Napi::Array arr;
  if (!get_array(o, key, arr)) return false;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsObject()) return fail_type(o.Env(), std::string(key) + " entries must be objects");
    Napi::Object e = v.As<Napi::Object>();
    Cidr cidr;
    std::string bytes;
    uint32_t prefix = 0;
    if (!get_string(e, "bytes", bytes) || !get_u32(e, "prefix", prefix)) return false;
    if (bytes.size() != 16 || prefix > 128)
      return fail_type(o.Env(), std::string(key) + ": 16 bytes and a prefix up to 128");
    std::memcpy(cidr.addr, bytes.data(), 16);
    cidr.prefix = static_cast<int>(prefix);
    out.push_back(cidr);
  }
  return true;
}

// The config object → Config: every field of config.h's X-macro lists under its own name (one
// flat object: the limits are fields beside the others), then the access log's fd.
bool read_config(Napi::Object o, Config& c) {
#define VW_READ(type, name, def) &&read_field(o, #name, c.name)
#define VW_READ_LIMIT(type, name, def) &&read_field(o, #name, c.limits.name)
  if (!(true VW_CONFIG_FIELDS(VW_READ) VW_LIMITS_FIELDS(VW_READ_LIMIT))) return false;
#undef VW_READ
#undef VW_READ_LIMIT
  Napi::Value alv = o.Get("access_log");
  if (alv.IsObject()) {  // { fd, owned, format }: the launcher opened the file
    Napi::Object al = alv.As<Napi::Object>();
    uint32_t fd = 0;
    std::string format;
    if (!get_u32(al, "fd", fd) || !get_string(al, "format", format) ||
        !read_field(al, "owned", c.access_log_owned))
      return false;
    c.access_log_fd = static_cast<int>(fd);
    c.log_combined = format != "common";
  } else if (!alv.IsNull()) {
    return fail_type(o.Env(), "access_log must be an object or null");
  }
  return true;
}

// The keys read_config reads, in order (configFields(): the launcher's tests hold them against
// the flag table).
const std::vector<std::string>& config_fields() {
  static const std::vector<std::string> names = {
#define VW_NAME(type, name, def) #name,
      VW_CONFIG_FIELDS(VW_NAME) VW_LIMITS_FIELDS(VW_NAME)
#undef VW_NAME
  };
  return names;
}

Napi::Array string_array(Napi::Env env, const std::vector<std::string>& names) {
  Napi::Array a = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); i++) a.Set(static_cast<uint32_t>(i), names[i]);
  return a;
}

// A failure as JS gets it: { ok: false, errno, message, step, worker, target, port, detail },
// worker and port null when they do not apply (NativeFailure in src/native.ts).
Napi::Object error_value(Napi::Env env, const Failure& f) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", false);
  r.Set("errno", f.err);
  r.Set("message", std::strerror(f.err));
  r.Set("step", f.step);
  r.Set("worker", f.worker >= 0 ? Napi::Value(Napi::Number::New(env, f.worker)) : env.Null());
  r.Set("target", f.target);
  r.Set("port", f.port >= 0 ? Napi::Value(Napi::Number::New(env, f.port)) : env.Null());
  r.Set("detail", f.detail);
  return r;
}

Napi::Object table_failure(Napi::Env env, const std::string& bad) {
  Failure f;
  f.err = EINVAL;
  f.step = "table";
  f.detail = bad;
  return error_value(env, f);
}

// ---- exported functions ----

// allowedCpus(): number[]: the CPUs sched_getaffinity allows this process.
Napi::Value js_allowed_cpus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<int> cpus;
  if (int err = allowed_cpus(cpus)) {
    Failure f;
    f.err = err;
    f.step = "affinity";
    return error_value(env, f);
  }
  Napi::Array a = Napi::Array::New(env, cpus.size());
  for (size_t i = 0; i < cpus.size(); i++) a.Set(static_cast<uint32_t>(i), cpus[i]);
  return a;
}

// statsLayout(): { slotBytes, fields: { name: byteOffset }, counters: [{ name, offset, kind,
// unit, metric, label, help }], latency: { offset, buckets, firstLog2, sumOffset } }, from the
// X-macro list and the histogram in native/worker/stats.h.
Napi::Value js_stats_layout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object fields = Napi::Object::New(env);
  size_t n = 0;
  const StatsField* f = stats_fields(&n);
  Napi::Array counters = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) {
    fields.Set(f[i].name, static_cast<double>(f[i].offset));
    Napi::Object c = Napi::Object::New(env);
    c.Set("name", f[i].name);
    c.Set("offset", static_cast<double>(f[i].offset));
    c.Set("kind", f[i].kind);
    c.Set("unit", f[i].unit);
    c.Set("metric", f[i].metric);
    c.Set("label", f[i].label);
    c.Set("help", f[i].help);
    counters.Set(static_cast<uint32_t>(i), c);
  }
  Napi::Object latency = Napi::Object::New(env);
  latency.Set("offset", static_cast<double>(offsetof(StatsSlot, latency_bucket)));
  latency.Set("buckets", static_cast<double>(kLatencyBuckets));
  latency.Set("firstLog2", static_cast<double>(kLatencyFirstLog2));
  latency.Set("sumOffset", static_cast<double>(offsetof(StatsSlot, latency_sum_ns)));
  Napi::Object r = Napi::Object::New(env);
  r.Set("slotBytes", static_cast<double>(sizeof(StatsSlot)));
  r.Set("fields", fields);
  r.Set("counters", counters);
  r.Set("latency", latency);
  return r;
}

// start(config, table): { ok: true, handle, workers, listen, stats } or a failure (error_value)
Napi::Value js_start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsObject()) {
    fail_type(env, "start(config, table) takes two objects");
    return env.Undefined();
  }
  Config config;
  std::vector<ResponseSpec> routes, errors;
  if (!read_config(info[0].As<Napi::Object>(), config) ||
      !read_specs(info[1].As<Napi::Object>(), "routes", routes) ||
      !read_specs(info[1].As<Napi::Object>(), "errors", errors))
    return env.Undefined();
  if (config.cpus.empty()) {
    fail_type(env, "cpus must not be empty");
    return env.Undefined();
  }
  auto table = std::make_unique<ResponseTable>();
  std::string bad = table->build(routes, errors);
  if (!bad.empty()) return table_failure(env, bad);

  auto handle = std::make_unique<Handle>();
  handle->server = std::make_unique<Server>();
  Failure failure;
  if (handle->server->start(std::move(config), std::move(table), failure)) return error_value(env, failure);

  Server& s = *handle->server;
  Napi::Array workers = Napi::Array::New(env);
  for (size_t i = 0; i < s.statuses().size(); i++) {
    const WorkerStatus& st = s.statuses()[i];
    Napi::Object w = Napi::Object::New(env);
    w.Set("id", static_cast<double>(i));
    w.Set("cpu", st.cpu);
    w.Set("getcpu", st.getcpu);
    w.Set("tid", st.tid);
    w.Set("policy", policy_sched_name(st.policy));
    w.Set("priority", st.priority);
    w.Set("rtErrno", st.rt_errno);
    w.Set("rtMessage", st.rt_errno ? std::strerror(st.rt_errno) : "");
    workers.Set(static_cast<uint32_t>(i), w);
  }
  Napi::Array listen = Napi::Array::New(env);
  for (size_t i = 0; i < s.config().listen.size(); i++) {
    const ListenAddr& a = s.config().listen[i];
    Napi::Object l = Napi::Object::New(env);
    l.Set("host", a.host);
    l.Set("port", static_cast<double>(a.port));
    l.Set("family", a.family == AF_INET6 ? 6 : 4);
    l.Set("address", format_addr(a));
    listen.Set(static_cast<uint32_t>(i), l);
  }
  // The ArrayBuffer shares ownership of the block, so JS may keep reading it after stop.
  auto* keep = new std::shared_ptr<StatsBlock>(s.stats());
  Napi::ArrayBuffer stats = Napi::ArrayBuffer::New(
      env, (*keep)->data(), (*keep)->bytes(),
      [](Napi::Env, void*, std::shared_ptr<StatsBlock>* hint) { delete hint; }, keep);

  AddonState* state = env.GetInstanceData<AddonState>();
  Handle* raw = handle.release();
  state->live.insert(raw);
  Napi::External<Handle> ext = Napi::External<Handle>::New(env, raw, [](Napi::Env e, Handle* h) {
    if (AddonState* st = e.GetInstanceData<AddonState>()) st->live.erase(h);
    delete h;  // ~Server stops at once and joins, if JS never did
  });

  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", true);
  r.Set("handle", ext);
  r.Set("workers", workers);
  r.Set("listen", listen);
  r.Set("stats", stats);
  return r;
}

// engines(): string[]: the engines this build has (uring only when built with liburing).
Napi::Value js_engines(const Napi::CallbackInfo& info) { return string_array(info.Env(), engine_names()); }

// allEngines(): string[]: every engine vw knows, built or not, in engines.cc's order.
Napi::Value js_all_engines(const Napi::CallbackInfo& info) { return string_array(info.Env(), known_engine_names()); }

// configFields(): string[]: the keys start() reads from its config (config.h's X-macro lists).
Napi::Value js_config_fields(const Napi::CallbackInfo& info) { return string_array(info.Env(), config_fields()); }

// trialCpus(cpus, policy, priority): [{cpu, pinErrno, getcpu, rtErrno, policy, priority, tid}]
Napi::Value js_trial_cpus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsString() || !info[2].IsNumber()) {
    fail_type(env, "trialCpus(cpus, policy, priority)");
    return env.Undefined();
  }
  Napi::Array in = info[0].As<Napi::Array>();
  std::vector<int> cpus;
  for (uint32_t i = 0; i < in.Length(); i++) cpus.push_back(in.Get(i).ToNumber().Int32Value());
  Policy policy = Policy::other;
  if (!policy_from_name(info[1].As<Napi::String>().Utf8Value(), policy)) {
    fail_type(env, "trialCpus: unknown policy");
    return env.Undefined();
  }
  std::vector<CpuTrial> trials = trial_cpus(cpus, policy, info[2].As<Napi::Number>().Int32Value());
  Napi::Array out = Napi::Array::New(env, trials.size());
  for (size_t i = 0; i < trials.size(); i++) {
    Napi::Object t = Napi::Object::New(env);
    t.Set("cpu", trials[i].cpu);
    t.Set("pinErrno", trials[i].pin_err);
    t.Set("getcpu", trials[i].getcpu);
    t.Set("rtErrno", trials[i].rt_err);
    t.Set("policy", policy_sched_name(trials[i].policy));
    t.Set("priority", trials[i].priority);
    t.Set("tid", trials[i].tid);
    out.Set(static_cast<uint32_t>(i), t);
  }
  return out;
}

Handle* get_handle(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    fail_type(info.Env(), "expected a server handle");
    return nullptr;
  }
  return info[0].As<Napi::External<Handle>>().Data();
}

// requestStop(handle, immediate): never blocks; the workers finish on their own threads.
Napi::Value js_request_stop(const Napi::CallbackInfo& info) {
  Handle* h = get_handle(info);
  if (!h) return info.Env().Undefined();
  bool immediate = info.Length() > 1 && info[1].ToBoolean().Value();
  h->server->request_stop(immediate ? kImmediate : kGraceful);
  return info.Env().Undefined();
}

// reload(handle, table): { ok: true } once the new table serves, or { ok: false, ... } (the
// old table stays). Builds the table here, on the JS thread, off every worker's path.
Napi::Value js_reload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = get_handle(info);
  if (!h) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsObject()) {
    fail_type(env, "reload(handle, table)");
    return env.Undefined();
  }
  std::vector<ResponseSpec> routes, errors;
  if (!read_specs(info[1].As<Napi::Object>(), "routes", routes) ||
      !read_specs(info[1].As<Napi::Object>(), "errors", errors))
    return env.Undefined();
  auto table = std::make_unique<ResponseTable>();
  std::string bad = table->build(routes, errors);
  if (!bad.empty()) return table_failure(env, bad);
  h->server->reload(std::move(table));
  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", true);
  return r;
}

// reopenAccessLog(handle, fd): --access-log's file was opened again (SIGUSR1, after logrotate
// moved it); vw-log writes what it holds to the old fd, closes it, and goes on with fd.
Napi::Value js_reopen_access_log(const Napi::CallbackInfo& info) {
  Handle* h = get_handle(info);
  if (!h) return info.Env().Undefined();
  if (info.Length() < 2 || !info[1].IsNumber()) {
    fail_type(info.Env(), "reopenAccessLog(handle, fd)");
    return info.Env().Undefined();
  }
  h->server->reopen_log(info[1].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// reclaim(handle): frees retired tables no worker can still read; returns how many remain.
Napi::Value js_reclaim(const Napi::CallbackInfo& info) {
  Handle* h = get_handle(info);
  if (!h) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), static_cast<double>(h->server->reclaim()));
}

// Joins the worker threads on libuv's pool, so the JS thread stays free to take a second
// signal while a graceful stop drains.
class JoinWork : public Napi::AsyncWorker {
 public:
  JoinWork(Napi::Env env, Napi::External<Handle> ext)
      : Napi::AsyncWorker(env), _deferred(Napi::Promise::Deferred::New(env)),
        _ref(Napi::Persistent(ext)), _server(ext.Data()->server.get()) {}
  Napi::Promise promise() { return _deferred.Promise(); }
  void Execute() override { _server->join(); }
  void OnOK() override { _deferred.Resolve(Env().Undefined()); }

 private:
  Napi::Promise::Deferred _deferred;
  Napi::Reference<Napi::External<Handle>> _ref;  // keeps the server alive until joined
  Server* _server;
};

// join(handle): Promise<void>, resolved when every worker thread has exited. Call it once.
Napi::Value js_join(const Napi::CallbackInfo& info) {
  Handle* h = get_handle(info);
  if (!h) return info.Env().Undefined();
  if (h->join_started) {
    fail_type(info.Env(), "join() was already called for this server");
    return info.Env().Undefined();
  }
  h->join_started = true;
  auto* work = new JoinWork(info.Env(), info[0].As<Napi::External<Handle>>());
  Napi::Promise p = work->promise();
  work->Queue();
  return p;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* state = new AddonState();
  env.SetInstanceData<AddonState>(state);
  env.AddCleanupHook([state] {
    for (Handle* h : state->live) {
      h->server->request_stop(kImmediate);
      h->server->join();  // waits for a join already running on libuv's pool, if any
    }
  });
  exports.Set("allowedCpus", Napi::Function::New(env, js_allowed_cpus, "allowedCpus"));
  exports.Set("statsLayout", Napi::Function::New(env, js_stats_layout, "statsLayout"));
  exports.Set("engines", Napi::Function::New(env, js_engines, "engines"));
  exports.Set("allEngines", Napi::Function::New(env, js_all_engines, "allEngines"));
  exports.Set("configFields", Napi::Function::New(env, js_config_fields, "configFields"));
  exports.Set("trialCpus", Napi::Function::New(env, js_trial_cpus, "trialCpus"));
  exports.Set("start", Napi::Function::New(env, js_start, "start"));
  exports.Set("reload", Napi::Function::New(env, js_reload, "reload"));
  exports.Set("reclaim", Napi::Function::New(env, js_reclaim, "reclaim"));
  exports.Set("reopenAccessLog", Napi::Function::New(env, js_reopen_access_log, "reopenAccessLog"));
  exports.Set("requestStop", Napi::Function::New(env, js_request_stop, "requestStop"));
  exports.Set("join", Napi::Function::New(env, js_join, "join"));
  return exports;
}

}  // namespace
}  // namespace vw

static Napi::Object InitVw(Napi::Env env, Napi::Object exports) { return vw::init(env, exports); }

NODE_API_MODULE(vw, InitVw)
