{
  "targets": [
    {
      "target_name": "vw",
      "sources": [
        "native/vw.cc",
        "native/server.cc",
        "native/worker.cc",
        "native/engines.cc",
        "native/engine_epoll.cc",
        "native/session.cc",
        "native/http.cc",
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
      "configurations": {
        "Debug": {
          "cflags_cc": ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"],
          "ldflags": ["-fsanitize=address,undefined"]
        }
      }
    }
  ]
}
