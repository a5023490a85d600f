// Server-side sessions, mirroring bridge/server_sessions.py: one per Handshake, each
// owning its engine and the last step's frames (what makes Step idempotent).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "proto_codec.h"

namespace genworld {

// Service-level errors (status codes the engine never raises itself).
struct NotFoundError : WorldError {
  using WorldError::WorldError;
};
struct ResourceExhaustedError : WorldError {
  using WorldError::WorldError;
};
struct UnauthenticatedError : WorldError {
  using WorldError::WorldError;
};

struct CachedStep {
  uint64_t step_id = 0;
  std::shared_ptr<const v1::FrameSet> frames;  // immutable: resent as is on a retry
};

struct Session {
  std::string id;
  std::string client_name;
  std::unique_ptr<EngineAdapter> engine;
  WorldInfo info;
  size_t max_chunk_bytes = 0;
  std::mutex mutex;  // serialises this session's calls, so a retry waits for the original
  bool has_reset = false;
  bool closed = false;
  uint64_t last_step_id = 0;
  std::optional<CachedStep> last;
  std::chrono::steady_clock::time_point last_used = std::chrono::steady_clock::now();
};

class SessionRegistry {
 public:
  SessionRegistry(EngineFactory factory, size_t max_sessions, std::chrono::seconds idle_timeout);
  ~SessionRegistry();

  // Throws ResourceExhaustedError beyond max_sessions.
  std::shared_ptr<Session> open(const std::string& client_name, size_t max_chunk_bytes);
  // Throws NotFoundError for an unknown, closed or expired id.
  std::shared_ptr<Session> get(const std::string& id);
  void close(const std::string& id);
  void close_all();
  size_t size();

 private:
  void expire_idle();
  static void close_session(Session& session);

  EngineFactory factory_;
  size_t max_sessions_;
  std::chrono::seconds idle_timeout_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Session>> sessions_;
};

}  // namespace genworld
