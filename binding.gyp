{
  "targets": [
    {
      "target_name": "vw",
      "sources": [
        "native/vw.cc",
        "native/server.cc",
        "native/access_log.cc",
        "native/worker.cc",
        "native/engines.cc",
        "native/engine_epoll.cc",
        "native/engine_poll.cc",
        "native/engine_select.cc",
        "native/engine_blocking.cc",
        "native/input_buffer.cc",
        "native/pending_out.cc",
        "native/batch_write.cc",
        "native/admission.cc",
        "native/reserve_fd.cc",
        "native/session.cc",
        "native/proxy.cc",
        "native/upstream_http.cc",
        "native/http.cc",
        "native/host.cc",
        "native/http_date.cc",
        "native/chunked.cc",
        "native/conditional.cc",
        "native/range.cc",
        "native/path.cc",
        "native/responses.cc",
        "native/net.cc",
        "native/cpu.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
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
          "sources": ["native/engine_uring.cc", "native/uring_ring.cc"],
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
