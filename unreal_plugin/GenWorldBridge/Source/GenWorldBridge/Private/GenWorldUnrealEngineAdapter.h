// The level as a GenWorld World, on the GAME THREAD only.
//
// This is the engine half of the core's EngineAdapter contract, written as asynchronous
// game-thread operations (Begin* + completion callback) because a step spans frames:
// apply actions -> one fixed world tick -> capture -> GPU readback. One operation runs
// at a time; UGenWorldSubsystem pumps requests only while IsBusy() is false, which
// serialises every session's calls onto the one world (like bridge.serve(world)).
//
// Lockstep: between operations the game is paused (UGameplayStatics::SetGamePaused), so
// the world advances only when a Step unpauses it for exactly one tick of
// FApp::GetFixedDeltaTime(). Wall-clock time between requests never leaks into sim time.
#pragma once

#include "CoreMinimal.h"
#include "GenWorldCoreIncludes.h"
#include "GenWorldReadback.h"
#include "GenWorldResult.h"
#include "UObject/WeakObjectPtr.h"

class AActor;
class AGenWorldCameraPawn;
class UGameInstance;
class UGenWorldSettings;
class UWorld;

/** Immutable configuration, copied from UGenWorldSettings on the game thread at server start. */
struct FGenWorldAdapterConfig
{
	FString WorldName;
	TArray<FString> AgentIds;
	int32 Width = 0;
	int32 Height = 0;
	float HorizontalFovDeg = 0.0f;
	float AgentRadiusCm = 0.0f;
	float MaxDepthMeters = 0.0f;
	double FixedDeltaSeconds = 0.0;
	genworld::NavLimits NavLimits;
	double HandMaxTranslationMeters = 0.0;
	double HandMaxRotationRad = 0.0;
	TSoftClassPtr<AActor> HandTargetClass;
	bool bHands = false;

	static FGenWorldAdapterConfig FromSettings(const UGenWorldSettings& Settings, const FString& WorldName, double FixedDeltaSeconds);
	genworld::WorldInfo ToWorldInfo() const;
};

class FUnrealEngineAdapter
{
public:
	FUnrealEngineAdapter(UGameInstance* InGameInstance, FGenWorldAdapterConfig InConfig);
	~FUnrealEngineAdapter();

	const FGenWorldAdapterConfig& GetConfig() const { return Config; }

	void BeginReset(std::optional<int64_t> Seed, const std::string& OptionsJson, TGenWorldCompletion<genworld::Observations>&& Done);
	void BeginStep(const std::map<std::string, genworld::Action>& Actions, TGenWorldCompletion<genworld::Observations>&& Done);
	void BeginSetPose(const std::string& AgentId, const genworld::Mat4& Pose, TGenWorldCompletion<genworld::Observation>&& Done);

	/** A session opened / closed; when none is left the game is unpaused and runs freely again. */
	void OpenSession();
	void CloseSession();

	/** Advances the operation in flight; called by the subsystem every frame, paused or not. */
	void Tick();

	bool IsBusy() const { return Phase != EPhase::Idle; }

	/** Fails the operation in flight and refuses new ones (level teardown, subsystem shutdown). */
	void Shutdown(const FString& Reason);

private:
	enum class EPhase : uint8
	{
		Idle,
		WaitingForWorldTick,  // actions applied, the game unpaused for one tick
		ReadingBack,          // captures enqueued, waiting for the GPU copies
	};

	struct FAgent
	{
		FString Id;
		TWeakObjectPtr<AGenWorldCameraPawn> Pawn;
		TArray<TWeakObjectPtr<AActor>> HandTargets;
		uint64 FrameId = 0;
		bool bCollided = false;
		FTransform CameraAtCapture;
		TUniquePtr<FGenWorldReadback> Readback;
	};

	UWorld* GetWorld() const;
	FString ValidateWorld() const;
	bool SpawnAgents(UWorld& World, FString& OutError);
	void PlaceAgents(UWorld& World, int32 FirstStart);
	void BindHandTargets(UWorld& World);
	bool Navigate(FAgent& Agent, const genworld::NavVector& Nav);
	void ApplyHands(FAgent& Agent, const std::vector<double>& Values);
	void SetPaused(bool bPaused);
	void CaptureAgents(const TArray<int32>& AgentIndices);
	genworld::Observation BuildObservation(FAgent& Agent);
	void Finish();
	void FailInFlight(EGenWorldError Kind, const FString& Message);
	int32 FindAgent(const std::string& AgentId) const;

	TWeakObjectPtr<UGameInstance> GameInstance;
	FGenWorldAdapterConfig Config;
	TArray<FAgent> Agents;

	EPhase Phase = EPhase::Idle;
	uint64 UnpausedOnFrame = 0;
	TArray<int32> CapturingAgents;
	// Exactly one of these is set while an operation is in flight.
	TGenWorldCompletion<genworld::Observations> PendingFrames;
	TGenWorldCompletion<genworld::Observation> PendingFrame;

	bool bHasReset = false;
	uint64 StepsSinceReset = 0;
	int32 OpenSessions = 0;
	bool bShutDown = false;
};
