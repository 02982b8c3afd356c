{
  "targets": [
    {
      "target_name": "vw",
      "sources": [
        "native/vw.cc",
        "native/worker/server.cc",
        "native/worker/access_log.cc",
        "native/worker/worker.cc",
        "native/engine/engines.cc",
        "native/engine/engine_epoll.cc",
        "native/engine/engine_poll.cc",
        "native/engine/engine_select.cc",
        "native/engine/engine_blocking.cc",
        "native/engine/input_buffer.cc",
        "native/engine/pending_out.cc",
        "native/engine/batch_write.cc",
        "native/engine/admission.cc",
        "native/engine/reserve_fd.cc",
        "native/http/session.cc",
        "native/proxy/proxy.cc",
        "native/proxy/upstream_http.cc",
        "native/proxy/upstream_pool.cc",
        "native/http/http.cc",
        "native/http/host.cc",
        "native/http/http_date.cc",
        "native/http/chunked.cc",
        "native/http/conditional.cc",
        "native/http/range.cc",
        "native/http/path.cc",
        "native/http/responses.cc",
        "native/worker/net.cc",
        "native/worker/cpu.cc"
      ],
      "include_dirs": ["native", "<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fexceptions"],
      "cflags_cc!": ["-fexceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden", "-fno-exceptions", "-pthread"],
      "ldflags": ["-pthread"],
      "variables": {
        # --engine uring needs liburing (Debian: liburing-dev). Without its header the addon is
        # built without it, and --engine uring says how to get it. VW_NO_URING=1 forces that.
        "vw_liburing": "<!(node -p \"process.env.VW_NO_URING !== '1' && require('fs').existsSync('/usr/include/liburing.h') ? 1 : 0\")"
      },
      "conditions": [
        ["vw_liburing==1", {
          "sources": ["native/engine/engine_uring.cc", "native/engine/uring_ring.cc", "native/engine/uring_relay.cc"],
          "defines": ["VW_HAVE_LIBURING"],
          "libraries": ["-luring"]
        }]
      ],
      "configurations": {
        "Debug": {
          "cflags_cc": ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"],
          "ldflags": ["-fsanitize=address,undefined"]
        }
      }
    }
  ]
}
