// Handlers mirror bridge/server_service.py. Unary methods take raw bytes (callback API
// with ByteBuffer) so that undecodable requests become INVALID_ARGUMENT with a clear
// message instead of gRPC's generic INTERNAL parse failure. StepStream is a synchronous
// bidi handler: one StepRequest in, its FrameChunks out, then the next request.
#include "genworld/world_service.h"

#include <iostream>
#include <typeinfo>

#include "chunking.h"
#include "genworld/v1/world_service.grpc.pb.h"
#include "sessions.h"

namespace genworld {
namespace {
constexpr char kSessionKey[] = "genworld-session";
constexpr char kAuthKey[] = "authorization";
constexpr char kBearer[] = "Bearer ";

using Base = v1::WorldService::WithRawCallbackMethod_Handshake<v1::WorldService::WithRawCallbackMethod_Reset<
    v1::WorldService::WithRawCallbackMethod_Step<v1::WorldService::WithRawCallbackMethod_SetPose<
        v1::WorldService::WithRawCallbackMethod_Close<v1::WorldService::Service>>>>>;

std::string metadata_value(const grpc::ServerContextBase& ctx, const char* key) {
  const auto& md = ctx.client_metadata();
  const auto it = md.find(key);
  return it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

std::string to_string(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer to_buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

template <class M>
M parse(const std::string& raw) {
  M msg;
  if (!msg.ParseFromString(raw))
    throw InvalidArgumentError("request is not a valid " + M::descriptor()->full_name());
  return msg;
}

// The status of the exception being handled; unexpected ones are engine failures.
grpc::Status current_status(const char* method) {
  try {
    throw;
  } catch (const InvalidArgumentError& e) {
    return {grpc::StatusCode::INVALID_ARGUMENT, e.what()};
  } catch (const FailedPreconditionError& e) {
    return {grpc::StatusCode::FAILED_PRECONDITION, e.what()};
  } catch (const UnauthenticatedError& e) {
    return {grpc::StatusCode::UNAUTHENTICATED, e.what()};
  } catch (const ResourceExhaustedError& e) {
    return {grpc::StatusCode::RESOURCE_EXHAUSTED, e.what()};
  } catch (const NotFoundError& e) {
    return {grpc::StatusCode::NOT_FOUND, e.what()};
  } catch (const WorldError& e) {
    std::cerr << method << " failed inside the world: " << e.what() << std::endl;
    return {grpc::StatusCode::INTERNAL, e.what()};
  } catch (const std::exception& e) {
    std::cerr << method << " failed inside the world: " << e.what() << std::endl;
    return {grpc::StatusCode::INTERNAL, std::string("engine error (") + typeid(e).name() + "): " + e.what()};
  } catch (...) {
    return {grpc::StatusCode::INTERNAL, "engine error: unknown exception"};
  }
}
}  // namespace

struct WorldServiceImpl::Impl final : Base {
  ServiceOptions options;
  SessionRegistry registry;

  Impl(EngineFactory factory, ServiceOptions opts)
      : options(std::move(opts)), registry(std::move(factory), options.max_sessions, options.idle_timeout) {}

  // ----------------------------------------------------------------------- plumbing
  void check_auth(const grpc::ServerContextBase& ctx) const {
    if (options.token.empty()) return;
    const std::string value = metadata_value(ctx, kAuthKey);
    if (value.empty()) throw UnauthenticatedError("missing token: send 'authorization: Bearer <token>'");
    if (value != kBearer + options.token) throw UnauthenticatedError("wrong token");
  }

  std::shared_ptr<Session> session_of(const grpc::ServerContextBase& ctx) {
    return registry.get(metadata_value(ctx, kSessionKey));
  }

  static void check_open(const Session& s) {
    if (s.closed) throw NotFoundError("session " + s.id.substr(0, 8) + "... was closed; call Handshake again");
  }

  std::string checked_size(std::string payload) const {
    if (payload.size() > options.max_response_bytes)
      throw ResourceExhaustedError("FrameSet of " + std::to_string(payload.size()) +
                                   " bytes exceeds max_response_bytes " + std::to_string(options.max_response_bytes) +
                                   "; use StepStream, which chunks frames");
    return payload;
  }

  template <class Fn>
  grpc::ServerUnaryReactor* unary(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response, const char* method, Fn fn) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    grpc::Status status = grpc::Status::OK;
    try {
      check_auth(*ctx);
      *response = to_buffer(fn(to_string(*request)));
    } catch (...) {
      status = current_status(method);
    }
    reactor->Finish(status);
    return reactor;
  }

  // ----------------------------------------------------------------------- handlers
  grpc::ServerUnaryReactor* Handshake(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                      grpc::ByteBuffer* resp) override {
    return unary(ctx, req, resp, "Handshake", [&](const std::string& raw) { return handshake(raw); });
  }

  std::string handshake(const std::string& raw) {
    const auto request = parse<v1::HandshakeRequest>(raw);
    const auto client = parse_semver(request.protocol_version(), "HandshakeRequest.protocol_version");
    const auto server = parse_semver(kProtocolVersion, "protocol_version");
    if (client[0] != server[0])
      throw FailedPreconditionError("protocol major version mismatch: client " + request.protocol_version() +
                                    ", server " + kProtocolVersion + "; upgrade the older side");
    v1::HandshakeResponse response;
    if (client[1] != server[1])
      response.set_message("protocol minor version differs: client " + request.protocol_version() + ", server " +
                           kProtocolVersion + "; features the older side lacks are unavailable");
    if (!v1::Codec_IsValid(request.codec()))
      throw InvalidArgumentError("HandshakeRequest.codec: unknown codec " + std::to_string(request.codec()));
    const size_t chunk = request.max_chunk_bytes() == 0
                             ? options.max_chunk_bytes
                             : std::max(kMinChunkBytes, std::min<size_t>(request.max_chunk_bytes(), options.max_chunk_bytes));
    auto session = registry.open(request.client_name().empty() ? "unnamed client" : request.client_name(), chunk);
    const WorldInfo& info = session->info;
    response.set_server_name(options.server_name);
    response.set_world_name(info.name);
    response.set_protocol_version(kProtocolVersion);
    for (const auto& cap : info.capabilities) response.add_capabilities(cap);
    if (std::find(info.capabilities.begin(), info.capabilities.end(), kCapStepStream) == info.capabilities.end())
      response.add_capabilities(kCapStepStream);
    for (const auto& agent : info.agent_ids) response.add_agent_ids(agent);
    response.set_height(info.height);
    response.set_width(info.width);
    response.set_session_id(session->id);
    response.set_max_chunk_bytes(static_cast<uint32_t>(chunk));
    response.set_max_request_bytes(options.max_request_bytes);
    response.set_max_response_bytes(options.max_response_bytes);
    // Frames always travel RAW: a client asking for PNG/ZSTD is told so here and
    // decodes by each plane's codec field.
    response.set_codec(v1::CODEC_RAW);
    return response.SerializeAsString();
  }

  grpc::ServerUnaryReactor* Reset(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                  grpc::ByteBuffer* resp) override {
    return unary(ctx, req, resp, "Reset", [&](const std::string& raw) {
      auto session = session_of(*ctx);
      const auto request = parse<v1::ResetRequest>(raw);
      check_options_json(request.options_json());
      const std::optional<int64_t> seed = request.has_seed() ? std::optional<int64_t>(request.seed()) : std::nullopt;
      std::lock_guard<std::mutex> lock(session->mutex);
      check_open(*session);
      const Observations obs = session->engine->reset(seed, request.options_json());
      std::string payload = frameset_to_proto(0, obs).SerializeAsString();
      session->has_reset = true;
      session->last.reset();  // a stale step must not be replayed into the new episode
      return checked_size(std::move(payload));
    });
  }

  grpc::ServerUnaryReactor* Step(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                 grpc::ByteBuffer* resp) override {
    return unary(ctx, req, resp, "Step", [&](const std::string& raw) {
      auto session = session_of(*ctx);
      return checked_size(stepping(*session, parse<v1::StepRequest>(raw))->SerializeAsString());
    });
  }

  grpc::ServerUnaryReactor* SetPose(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                    grpc::ByteBuffer* resp) override {
    return unary(ctx, req, resp, "SetPose", [&](const std::string& raw) {
      auto session = session_of(*ctx);
      const auto request = parse<v1::SetPoseRequest>(raw);
      const auto& agents = session->info.agent_ids;
      if (std::find(agents.begin(), agents.end(), request.agent_id()) == agents.end())
        throw InvalidArgumentError("SetPoseRequest.agent_id: unknown agent '" + request.agent_id() + "'");
      if (!request.has_pose()) throw InvalidArgumentError("SetPoseRequest.pose is missing");
      const Mat4 pose = pose_from_proto(request.pose(), "SetPoseRequest.pose");
      std::lock_guard<std::mutex> lock(session->mutex);
      check_open(*session);
      if (!session->has_reset) throw FailedPreconditionError("SetPose before Reset: call Reset first");
      const Observation obs = session->engine->set_pose(request.agent_id(), pose);
      std::string payload = frameset_to_proto(0, {{request.agent_id(), obs}}).SerializeAsString();
      session->last.reset();
      return checked_size(std::move(payload));
    });
  }

  grpc::ServerUnaryReactor* Close(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                  grpc::ByteBuffer* resp) override {
    return unary(ctx, req, resp, "Close", [&](const std::string& raw) {
      parse<v1::CloseRequest>(raw);
      registry.close(session_of(*ctx)->id);
      return v1::CloseResponse().SerializeAsString();
    });
  }

  grpc::Status StepStream(grpc::ServerContext* ctx,
                          grpc::ServerReaderWriter<v1::FrameChunk, v1::StepRequest>* stream) override {
    try {
      check_auth(*ctx);
      auto session = session_of(*ctx);
      v1::StepRequest request;
      while (stream->Read(&request)) {
        const auto frames = stepping(*session, request);
        for (const v1::FrameChunk& chunk : chunk_frameset(*frames, session->max_chunk_bytes))
          if (!stream->Write(chunk)) return grpc::Status::OK;  // the client went away
      }
      return grpc::Status::OK;
    } catch (...) {
      return current_status("StepStream");
    }
  }

  // Validates and steps; a retried step_id returns the cached frames without stepping.
  std::shared_ptr<const v1::FrameSet> stepping(Session& session, const v1::StepRequest& request) {
    if (request.step_id() == 0) throw InvalidArgumentError("StepRequest.step_id must be >= 1");
    const auto actions = actions_from_proto(request.actions(), session.info.agent_ids);
    std::lock_guard<std::mutex> lock(session.mutex);
    check_open(session);
    session.last_used = std::chrono::steady_clock::now();  // a long StepStream must not expire
    if (!session.has_reset) throw FailedPreconditionError("Step before Reset: call Reset first");
    if (session.last && session.last->step_id == request.step_id()) return session.last->frames;
    if (request.step_id() <= session.last_step_id)
      throw FailedPreconditionError("StepRequest.step_id " + std::to_string(request.step_id()) +
                                    " is not newer than the last step " + std::to_string(session.last_step_id) +
                                    "; step ids must increase (a retry must reuse the last one)");
    session.last.reset();
    const Observations obs = session.engine->step(actions);
    session.last_step_id = request.step_id();
    auto frames = std::make_shared<const v1::FrameSet>(frameset_to_proto(request.step_id(), obs));
    session.last = CachedStep{request.step_id(), frames};
    return frames;
  }
};

WorldServiceImpl::WorldServiceImpl(EngineFactory factory, ServiceOptions options)
    : impl_(std::make_unique<Impl>(std::move(factory), std::move(options))) {}
WorldServiceImpl::~WorldServiceImpl() = default;
grpc::Service* WorldServiceImpl::service() { return impl_.get(); }
const ServiceOptions& WorldServiceImpl::options() const { return impl_->options; }
void WorldServiceImpl::close_all() { impl_->registry.close_all(); }

std::unique_ptr<grpc::Server> start_server(WorldServiceImpl& service, const std::string& address,
                                           int* selected_port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), selected_port);
  builder.RegisterService(service.service());
  // Explicit limits (ARCHITECTURE §5): requests are small; responses fit a unary FrameSet.
  builder.SetMaxReceiveMessageSize(static_cast<int>(service.options().max_request_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(service.options().max_response_bytes + kMiB));
  return builder.BuildAndStart();
}

}  // namespace genworld
