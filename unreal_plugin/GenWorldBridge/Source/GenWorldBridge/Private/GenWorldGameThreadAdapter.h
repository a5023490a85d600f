// The core's EngineAdapter as seen from gRPC threads: every call becomes a work item on
// the game thread's request queue, and the calling gRPC thread blocks on a future until
// the game thread completes it (possibly frames later). This is the only class that runs
// off the game thread, and it touches no UObject: it only moves plain data.
#pragma once

#include "CoreMinimal.h"
#include "GenWorldCoreIncludes.h"
#include "GenWorldRequestQueue.h"

class FUnrealEngineAdapter;

/** What the gRPC side and the game thread share; outlives both the server and the adapter. */
struct FGenWorldBackend
{
	FGenWorldRequestQueue Queue;
	/** Game thread only; null once the subsystem has shut down. */
	FUnrealEngineAdapter* Adapter = nullptr;
	/** Immutable after construction; read from gRPC threads for the handshake. */
	genworld::WorldInfo Info;
	double GameThreadTimeoutSeconds = 0.0;
};

using FGenWorldBackendRef = TSharedRef<FGenWorldBackend, ESPMode::ThreadSafe>;

/** One per gRPC session (the core calls the factory per Handshake); all share one world. */
class FGenWorldGameThreadAdapter final : public genworld::EngineAdapter
{
public:
	explicit FGenWorldGameThreadAdapter(FGenWorldBackendRef InBackend);
	virtual ~FGenWorldGameThreadAdapter() override;

	virtual genworld::WorldInfo handshake() override;
	virtual genworld::Observations reset(std::optional<int64_t> seed, const std::string& options_json) override;
	virtual genworld::Observations step(const std::map<std::string, genworld::Action>& actions) override;
	virtual genworld::Observation set_pose(const std::string& agent_id, const genworld::Mat4& pose) override;
	virtual void close() override;

private:
	FGenWorldBackendRef Backend;
	bool bClosed = false;
};
