#include "sessions.h"

#include <iostream>
#include <random>
#include <vector>

namespace genworld {
namespace {
constexpr int kSessionIdBytes = 16;

std::string new_session_id() {
  static std::mutex mutex;
  static std::random_device device;  // unguessable ids: a session id is a capability
  std::lock_guard<std::mutex> lock(mutex);
  static const char* kHex = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < kSessionIdBytes; ++i) {
    const unsigned byte = device() & 0xFF;
    id += kHex[byte >> 4];
    id += kHex[byte & 0xF];
  }
  return id;
}
}  // namespace

SessionRegistry::SessionRegistry(EngineFactory factory, size_t max_sessions, std::chrono::seconds idle_timeout)
    : factory_(std::move(factory)), max_sessions_(max_sessions), idle_timeout_(idle_timeout) {}

SessionRegistry::~SessionRegistry() { close_all(); }

std::shared_ptr<Session> SessionRegistry::open(const std::string& client_name, size_t max_chunk_bytes) {
  expire_idle();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (sessions_.size() >= max_sessions_)
      throw ResourceExhaustedError("server is at its limit of " + std::to_string(max_sessions_) +
                                   " sessions; close one or retry later");
  }
  auto session = std::make_shared<Session>();
  session->engine = factory_();  // may be slow: outside the registry lock
  session->info = session->engine->handshake();
  session->id = new_session_id();
  session->client_name = client_name;
  session->max_chunk_bytes = max_chunk_bytes;
  std::lock_guard<std::mutex> lock(mutex_);
  sessions_[session->id] = session;
  return session;
}

std::shared_ptr<Session> SessionRegistry::get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    const std::string shown = id.empty() ? "(none)" : id.substr(0, 8) + "...";
    throw NotFoundError("unknown or expired session " + shown +
                        "; the server may have restarted - call Handshake again");
  }
  it->second->last_used = std::chrono::steady_clock::now();
  return it->second;
}

void SessionRegistry::close(const std::string& id) {
  std::shared_ptr<Session> session;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    session = it->second;
    sessions_.erase(it);
  }
  close_session(*session);
}

void SessionRegistry::close_all() {
  std::map<std::string, std::shared_ptr<Session>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    all.swap(sessions_);
  }
  for (auto& [id, session] : all) close_session(*session);
}

size_t SessionRegistry::size() {
  std::lock_guard<std::mutex> lock(mutex_);
  return sessions_.size();
}

void SessionRegistry::expire_idle() {
  const auto cutoff = std::chrono::steady_clock::now() - idle_timeout_;
  std::vector<std::shared_ptr<Session>> stale;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second->last_used < cutoff) {
        stale.push_back(it->second);
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& session : stale) close_session(*session);
}

void SessionRegistry::close_session(Session& session) {
  // Waits for an in-flight call of this session, then closes its engine once.
  std::lock_guard<std::mutex> lock(session.mutex);
  if (session.closed) return;
  session.closed = true;
  session.last.reset();
  try {
    session.engine->close();
  } catch (const std::exception& exc) {
    std::cerr << "closing the engine of session " << session.id.substr(0, 8) << " failed: " << exc.what() << "\n";
  }
}

}  // namespace genworld
