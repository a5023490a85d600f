// WorldServiceImpl: genworld.v1.WorldService over an EngineAdapter factory (sessions,
// token auth, semver handshake, validation before the engine, idempotent Step, chunked
// StepStream). Generated protobuf/gRPC code stays behind the pimpl.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "genworld/engine_adapter.h"

namespace genworld {

constexpr size_t kMiB = size_t{1} << 20;

struct ServiceOptions {
  std::string server_name = "genworld-core";
  std::string token;                          // empty: no auth
  size_t max_chunk_bytes = kMiB;              // StepStream default chunk size
  size_t max_request_bytes = 4 * kMiB;        // enforced by the server builder
  size_t max_response_bytes = 64 * kMiB;      // largest unary FrameSet
  size_t max_sessions = 64;
  std::chrono::seconds idle_timeout{600};
};

class WorldServiceImpl {
 public:
  WorldServiceImpl(EngineFactory factory, ServiceOptions options = {});
  ~WorldServiceImpl();
  WorldServiceImpl(const WorldServiceImpl&) = delete;
  WorldServiceImpl& operator=(const WorldServiceImpl&) = delete;

  grpc::Service* service();
  const ServiceOptions& options() const;
  // Closes every session's engine (graceful shutdown).
  void close_all();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A started server on `address` ("host:port", port 0 picks one) with explicit message
// limits; `selected_port` receives the bound port. Returns nullptr if binding failed.
std::unique_ptr<grpc::Server> start_server(WorldServiceImpl& service, const std::string& address,
                                           int* selected_port);

}  // namespace genworld
