// genworld-core-server: the reference RaycastAdapter behind WorldServiceImpl.
// Usage: genworld-core-server --port P [--host 127.0.0.1] [--width W --height H] [--token T]
// Prints "listening on HOST:PORT" once ready; shuts down gracefully on SIGTERM/SIGINT.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "genworld/raycast_adapter.h"
#include "genworld/world_service.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }
constexpr auto kPollPeriod = std::chrono::milliseconds(50);
constexpr auto kShutdownGrace = std::chrono::seconds(2);

int usage(const std::string& why) {
  std::cerr << "genworld-core-server: " << why << "\n"
            << "usage: genworld-core-server --port P [--host 127.0.0.1] [--width W --height H] [--token T]\n";
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", token;
  int port = -1;
  genworld::RaycastConfig config;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage("missing value for " + arg);
    const std::string value = argv[++i];
    try {
      if (arg == "--port") port = std::stoi(value);
      else if (arg == "--host") host = value;
      else if (arg == "--width") config.width = static_cast<uint32_t>(std::stoul(value));
      else if (arg == "--height") config.height = static_cast<uint32_t>(std::stoul(value));
      else if (arg == "--token") token = value;
      else return usage("unknown flag " + arg);
    } catch (const std::exception&) {
      return usage("bad value for " + arg + ": " + value);
    }
  }
  if (port < 0 || port > 65535) return usage("--port is required (0 picks a free port)");
  if (config.width == 0 || config.height == 0) return usage("--width and --height must be positive");

  genworld::ServiceOptions options;
  options.token = token;
  genworld::WorldServiceImpl service([config] { return std::make_unique<genworld::RaycastAdapter>(config); },
                                     options);
  int bound = 0;
  auto server = genworld::start_server(service, host + ":" + std::to_string(port), &bound);
  if (!server || bound == 0) {
    std::cerr << "genworld-core-server: could not bind " << host << ":" << port << "\n";
    return 1;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::cout << "listening on " << host << ":" << bound << std::endl;
  while (!g_stop) std::this_thread::sleep_for(kPollPeriod);
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  service.close_all();
  std::cout << "shut down" << std::endl;
  return 0;
}
