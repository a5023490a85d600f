#include "GenWorldUnrealEngineAdapter.h"

#include "Dom/JsonObject.h"
#include "Engine/GameInstance.h"
#include "Engine/World.h"
#include "EngineUtils.h"
#include "GameFramework/PlayerController.h"
#include "GameFramework/PlayerStart.h"
#include "GenWorldCameraPawn.h"
#include "GenWorldConventions.h"
#include "GenWorldCoreConversions.h"
#include "GenWorldHandTarget.h"
#include "GenWorldSettings.h"
#include "Kismet/GameplayStatics.h"
#include "Math/RandomStream.h"
#include "Serialization/JsonReader.h"
#include "Serialization/JsonSerializer.h"

#include <limits>

DEFINE_LOG_CATEGORY_STATIC(LogGenWorldAdapter, Log, All);

namespace
{
	// Reset options this world understands (docs/unreal.md). "scene" is what
	// `genworld record` always sends; the level is whatever map is loaded, so it is
	// recorded by the client and otherwise ignored here.
	const TCHAR* const OptionScene = TEXT("scene");
	const TCHAR* const OptionStartIndex = TEXT("start_index");

	// Layout of one hand's 7 values inside the 14-vector (bridge.hands).
	constexpr int32 HandActionDim = 7;
	constexpr int32 HandTranslationOffset = 0;
	constexpr int32 HandRotationOffset = 3;
	constexpr int32 HandGripOffset = 6;
	constexpr int32 Xyz = 3;

	double Clamp(double Value, double Lo, double Hi) { return FMath::Clamp(Value, Lo, Hi); }

	FString AgentTag(const FString& AgentId) { return AgentId; }
}

// ------------------------------------------------------------------------- lifetime
FUnrealEngineAdapter::FUnrealEngineAdapter(UGameInstance* InGameInstance, FGenWorldAdapterConfig InConfig)
	: GameInstance(InGameInstance), Config(MoveTemp(InConfig))
{
	for (const FString& Id : Config.AgentIds)
	{
		FAgent& Agent = Agents.AddDefaulted_GetRef();
		Agent.Id = Id;
	}
}

FUnrealEngineAdapter::~FUnrealEngineAdapter()
{
	Shutdown(TEXT("the GenWorld adapter was destroyed"));
}

void FUnrealEngineAdapter::Shutdown(const FString& Reason)
{
	check(IsInGameThread());
	if (IsBusy())
	{
		FailInFlight(EGenWorldError::FailedPrecondition, Reason);
	}
	bShutDown = true;
	SetPaused(false);
	for (FAgent& Agent : Agents)
	{
		if (AGenWorldCameraPawn* Pawn = Agent.Pawn.Get())
		{
			Pawn->Destroy();
		}
		Agent.Pawn.Reset();
	}
}

void FUnrealEngineAdapter::OpenSession()
{
	++OpenSessions;
}

void FUnrealEngineAdapter::CloseSession()
{
	OpenSessions = FMath::Max(0, OpenSessions - 1);
	if (OpenSessions == 0 && !IsBusy())
	{
		SetPaused(false);  // nobody is stepping: let the level run like a normal game
	}
}

UWorld* FUnrealEngineAdapter::GetWorld() const
{
	const UGameInstance* Instance = GameInstance.Get();
	return Instance ? Instance->GetWorld() : nullptr;
}

FString FUnrealEngineAdapter::ValidateWorld() const
{
	if (bShutDown)
	{
		return TEXT("the Unreal world is shutting down");
	}
	if (IsBusy())
	{
		return TEXT("another operation is in flight");  // the pump never lets this happen
	}
	const UWorld* World = GetWorld();
	if (World == nullptr || !World->HasBegunPlay())
	{
		return TEXT("no level is playing yet");
	}
	return FString();
}

int32 FUnrealEngineAdapter::FindAgent(const std::string& AgentId) const
{
	const FString Id = UTF8_TO_TCHAR(AgentId.c_str());
	return Agents.IndexOfByPredicate([&Id](const FAgent& Agent) { return Agent.Id == Id; });
}

void FUnrealEngineAdapter::SetPaused(bool bPaused)
{
	if (UWorld* World = GetWorld())
	{
		// Needs a local PlayerController and a GameMode that allows pausing (the default
		// for standalone games); the pause takes effect at the next UWorld::Tick.
		UGameplayStatics::SetGamePaused(World, bPaused);
	}
}

// ------------------------------------------------------------------------- reset
void FUnrealEngineAdapter::BeginReset(std::optional<int64_t> Seed, const std::string& OptionsJson, TGenWorldCompletion<genworld::Observations>&& Done)
{
	check(IsInGameThread());
	if (const FString Problem = ValidateWorld(); !Problem.IsEmpty())
	{
		Done(TGenWorldResult<genworld::Observations>::Fail(EGenWorldError::FailedPrecondition, Problem));
		return;
	}

	// Options: a JSON object (the core checked that much); only known keys are accepted.
	int32 StartIndex = INDEX_NONE;
	if (!OptionsJson.empty())
	{
		TSharedPtr<FJsonObject> Options;
		const TSharedRef<TJsonReader<>> Reader = TJsonReaderFactory<>::Create(UTF8_TO_TCHAR(OptionsJson.c_str()));
		if (!FJsonSerializer::Deserialize(Reader, Options) || !Options.IsValid())
		{
			Done(TGenWorldResult<genworld::Observations>::Fail(EGenWorldError::InvalidArgument, TEXT("options_json: not a JSON object")));
			return;
		}
		for (const TPair<FString, TSharedPtr<FJsonValue>>& Entry : Options->Values)
		{
			if (Entry.Key == OptionScene)
			{
				continue;
			}
			if (Entry.Key == OptionStartIndex && Entry.Value->Type == EJson::Number)
			{
				StartIndex = int32(Entry.Value->AsNumber());
				continue;
			}
			Done(TGenWorldResult<genworld::Observations>::Fail(EGenWorldError::InvalidArgument,
				FString::Printf(TEXT("options_json: unknown or mistyped key '%s'; this world knows '%s' (string) and '%s' (integer)"),
					*Entry.Key, OptionScene, OptionStartIndex)));
			return;
		}
	}

	UWorld& World = *GetWorld();
	FString SpawnError;
	if (!SpawnAgents(World, SpawnError))
	{
		Done(TGenWorldResult<genworld::Observations>::Fail(EGenWorldError::Internal, SpawnError));
		return;
	}

	// The seed picks the first PlayerStart (unless start_index does), so one seed always
	// starts an episode at the same place.
	if (StartIndex == INDEX_NONE)
	{
		FRandomStream Stream(int32(Seed.value_or(0)));
		StartIndex = Stream.RandRange(0, MAX_int32 - 1);
	}
	PlaceAgents(World, StartIndex);
	BindHandTargets(World);

	bHasReset = true;
	StepsSinceReset = 0;
	for (FAgent& Agent : Agents)
	{
		Agent.FrameId = 0;
		Agent.bCollided = false;
	}
	SetPaused(true);  // lockstep from here on

	PendingFrames = MoveTemp(Done);
	TArray<int32> All;
	for (int32 Index = 0; Index < Agents.Num(); ++Index)
	{
		All.Add(Index);
	}
	CaptureAgents(All);
}

bool FUnrealEngineAdapter::SpawnAgents(UWorld& World, FString& OutError)
{
	APlayerController* PlayerController = World.GetFirstPlayerController();
	for (int32 Index = 0; Index < Agents.Num(); ++Index)
	{
		FAgent& Agent = Agents[Index];
		if (Agent.Pawn.IsValid() && Agent.Pawn->GetWorld() == &World)
		{
			continue;  // survives resets; only a new level needs new pawns
		}
		FActorSpawnParameters Params;
		Params.SpawnCollisionHandlingOverride = ESpawnActorCollisionHandlingMethod::AlwaysSpawn;
		Params.Name = MakeUniqueObjectName(&World, AGenWorldCameraPawn::StaticClass(), *FString::Printf(TEXT("GenWorld_%s"), *Agent.Id));
		AGenWorldCameraPawn* Pawn = World.SpawnActor<AGenWorldCameraPawn>(AGenWorldCameraPawn::StaticClass(), FTransform::Identity, Params);
		if (Pawn == nullptr)
		{
			OutError = FString::Printf(TEXT("could not spawn the camera pawn of %s"), *Agent.Id);
			return false;
		}
		Pawn->Tags.Add(FName(*AgentTag(Agent.Id)));
		Pawn->ConfigureCapture(Config.Width, Config.Height, Config.HorizontalFovDeg, Config.AgentRadiusCm);
		// agent_0 is the local player's view (what the viewport shows); the others get
		// their pawn's default AI controller so they are possessed too.
		if (Index == 0 && PlayerController != nullptr)
		{
			PlayerController->Possess(Pawn);
		}
		else
		{
			Pawn->SpawnDefaultController();
		}
		Agent.Pawn = Pawn;
	}
	return true;
}

void FUnrealEngineAdapter::PlaceAgents(UWorld& World, int32 FirstStart)
{
	// PlayerStarts sorted by name: actor iteration order is not stable across loads.
	TArray<APlayerStart*> Starts;
	for (TActorIterator<APlayerStart> It(&World); It; ++It)
	{
		Starts.Add(*It);
	}
	Starts.Sort([](const APlayerStart& A, const APlayerStart& B) { return A.GetName() < B.GetName(); });
	if (Starts.IsEmpty())
	{
		UE_LOG(LogGenWorldAdapter, Warning, TEXT("no PlayerStart in %s: agents start at the world origin"), *World.GetMapName());
	}
	for (int32 Index = 0; Index < Agents.Num(); ++Index)
	{
		AGenWorldCameraPawn* Pawn = Agents[Index].Pawn.Get();
		const FTransform Start = Starts.IsEmpty() ? FTransform::Identity : Starts[(FirstStart + Index) % Starts.Num()]->GetActorTransform();
		// Level cameras start upright: keep only the start's yaw.
		const FRotator Upright(0.0, Start.Rotator().Yaw, 0.0);
		Pawn->SetActorLocationAndRotation(Start.GetLocation(), Upright, /*bSweep=*/false, nullptr, ETeleportType::ResetPhysics);
	}
}

void FUnrealEngineAdapter::BindHandTargets(UWorld& World)
{
	UClass* HandClass = Config.HandTargetClass.LoadSynchronous();
	for (FAgent& Agent : Agents)
	{
		Agent.HandTargets.Reset();
		const FName Tag(*AgentTag(Agent.Id));
		for (TActorIterator<AActor> It(&World); It; ++It)
		{
			if (It->Implements<UGenWorldHandTarget>() && It->ActorHasTag(Tag))
			{
				Agent.HandTargets.Add(*It);
			}
		}
		if (Agent.HandTargets.IsEmpty() && HandClass != nullptr && Agent.Pawn.IsValid())
		{
			FActorSpawnParameters Params;
			Params.Owner = Agent.Pawn.Get();
			AActor* Hands = World.SpawnActor<AActor>(HandClass, Agent.Pawn->GetActorTransform(), Params);
			if (Hands != nullptr)
			{
				Hands->Tags.Add(Tag);
				Hands->AttachToActor(Agent.Pawn.Get(), FAttachmentTransformRules::KeepWorldTransform);
				Agent.HandTargets.Add(Hands);
			}
		}
	}
}

// ------------------------------------------------------------------------- step
void FUnrealEngineAdapter::BeginStep(const std::map<std::string, genworld::Action>& Actions, TGenWorldCompletion<genworld::Observations>&& Done)
{
	check(IsInGameThread());
	if (const FString Problem = ValidateWorld(); !Problem.IsEmpty())
	{
		Done(TGenWorldResult<genworld::Observations>::Fail(EGenWorldError::FailedPrecondition, Problem));
		return;
	}
	if (!bHasReset)
	{
		Done(TGenWorldResult<genworld::Observations>::Fail(EGenWorldError::FailedPrecondition, TEXT("step before reset")));
		return;
	}
	for (const auto& [AgentId, Action] : Actions)
	{
		if (FindAgent(AgentId) == INDEX_NONE)
		{
			Done(TGenWorldResult<genworld::Observations>::Fail(EGenWorldError::InvalidArgument,
				FString::Printf(TEXT("actions: unknown agent id '%s'"), UTF8_TO_TCHAR(AgentId.c_str()))));
			return;
		}
	}

	// Agents move in handshake order, so two agents competing for a gap resolve the same
	// way every run. Missing agents take the noop (zero nav: still swept, never blocked).
	for (FAgent& Agent : Agents)
	{
		const auto Found = Actions.find(TCHAR_TO_UTF8(*Agent.Id));
		const genworld::Action Action = Found != Actions.end() ? Found->second : genworld::Action::noop();
		switch (Action.kind)
		{
		case genworld::Action::Kind::kKey:
			Agent.bCollided = Navigate(Agent, genworld::key_to_nav(Action.key));
			break;
		case genworld::Action::Kind::kNav:
		{
			genworld::NavVector Nav{};
			for (int32 Index = 0; Index < genworld::kNavDim; ++Index)
			{
				Nav[Index] = Action.values[Index];
			}
			Agent.bCollided = Navigate(Agent, Nav);
			break;
		}
		case genworld::Action::Kind::kHand:
			Agent.bCollided = false;
			ApplyHands(Agent, Action.values);
			break;
		}
	}

	// Let exactly one fixed-delta world tick happen (physics, animation, hand rigs), then
	// capture in Tick() once a later frame has run.
	PendingFrames = MoveTemp(Done);
	Phase = EPhase::WaitingForWorldTick;
	UnpausedOnFrame = GFrameCounter;
	SetPaused(false);
}

bool FUnrealEngineAdapter::Navigate(FAgent& Agent, const genworld::NavVector& Nav)
{
	AGenWorldCameraPawn* Pawn = Agent.Pawn.Get();
	const FTransform Camera = Pawn->GetCameraTransform();
	const FGenWorldPose Pose = GenWorldConventions::UeCameraToPose(Camera.GetLocation(), Camera.Rotator());

	// The core's integrate_nav is bridge.actions.integrate_nav: Unreal, MuJoCo and the
	// generative model move a camera identically for the same action.
	const genworld::Mat4 Target = genworld::integrate_nav(GenWorldCoreConversions::ToCore(Pose), Nav, Config.NavLimits);
	FVector TargetCameraLocation;
	FRotator TargetRotation;
	GenWorldConventions::PoseToUeCamera(GenWorldCoreConversions::FromCore(Target), TargetCameraLocation, TargetRotation);

	// The captures sit at the pawn's origin, so the camera pose is the actor pose.
	const FVector Start = Pawn->GetActorLocation();
	Pawn->SetActorRotation(TargetRotation, ETeleportType::None);
	FHitResult Hit;
	Pawn->SetActorLocation(TargetCameraLocation, /*bSweep=*/true, &Hit, ETeleportType::None);
	if (Hit.bBlockingHit)
	{
		// Like MuJoCo: a blocked step drops the whole translation and keeps the rotation,
		// rather than sliding to the contact point.
		Pawn->SetActorLocation(Start, /*bSweep=*/false, nullptr, ETeleportType::None);
		return true;
	}
	return false;
}

void FUnrealEngineAdapter::ApplyHands(FAgent& Agent, const std::vector<double>& Values)
{
	for (int32 Hand = 0; Hand < GenWorldNumHands; ++Hand)
	{
		const double* Hand7 = Values.data() + Hand * HandActionDim;
		FVector TranslationMeters;
		FVector RotationVectorRad;
		for (int32 Axis = 0; Axis < Xyz; ++Axis)
		{
			TranslationMeters[Axis] = Config.HandMaxTranslationMeters * Clamp(Hand7[HandTranslationOffset + Axis], -1.0, 1.0);
			RotationVectorRad[Axis] = Config.HandMaxRotationRad * Clamp(Hand7[HandRotationOffset + Axis], -1.0, 1.0);
		}
		const float Grip = float(Clamp(Hand7[HandGripOffset], 0.0, 1.0));
		const FTransform Delta = GenWorldConventions::CvCameraDeltaToUeCameraLocal(TranslationMeters, RotationVectorRad);
		for (const TWeakObjectPtr<AActor>& Target : Agent.HandTargets)
		{
			if (AActor* Actor = Target.Get())
			{
				IGenWorldHandTarget::Execute_ApplyHandAction(Actor, Hand, Delta, Grip);
			}
		}
	}
}

// ------------------------------------------------------------------------- set_pose
void FUnrealEngineAdapter::BeginSetPose(const std::string& AgentId, const genworld::Mat4& Pose, TGenWorldCompletion<genworld::Observation>&& Done)
{
	check(IsInGameThread());
	if (const FString Problem = ValidateWorld(); !Problem.IsEmpty())
	{
		Done(TGenWorldResult<genworld::Observation>::Fail(EGenWorldError::FailedPrecondition, Problem));
		return;
	}
	if (!bHasReset)
	{
		Done(TGenWorldResult<genworld::Observation>::Fail(EGenWorldError::FailedPrecondition, TEXT("set_pose before reset")));
		return;
	}
	const int32 Index = FindAgent(AgentId);
	if (Index == INDEX_NONE)
	{
		Done(TGenWorldResult<genworld::Observation>::Fail(EGenWorldError::InvalidArgument,
			FString::Printf(TEXT("agent_id: unknown agent '%s'"), UTF8_TO_TCHAR(AgentId.c_str()))));
		return;
	}
	FVector Location;
	FRotator Rotation;
	GenWorldConventions::PoseToUeCamera(GenWorldCoreConversions::FromCore(Pose), Location, Rotation);
	// A teleport: no sweep, no world tick, sim time unchanged (trajectory replay).
	FAgent& Agent = Agents[Index];
	Agent.Pawn->SetActorLocationAndRotation(Location, Rotation, /*bSweep=*/false, nullptr, ETeleportType::TeleportPhysics);
	Agent.bCollided = false;

	PendingFrame = MoveTemp(Done);
	CaptureAgents({Index});
}

// ------------------------------------------------------------------------- capture
void FUnrealEngineAdapter::CaptureAgents(const TArray<int32>& AgentIndices)
{
	CapturingAgents = AgentIndices;
	for (int32 Index : AgentIndices)
	{
		FAgent& Agent = Agents[Index];
		AGenWorldCameraPawn* Pawn = Agent.Pawn.Get();
		Agent.CameraAtCapture = Pawn->GetCameraTransform();
		Pawn->CaptureNow();
		Agent.Readback = MakeUnique<FGenWorldReadback>(Pawn->GetColorTarget(), Pawn->GetDepthTarget(), Config.MaxDepthMeters);
	}
	Phase = EPhase::ReadingBack;
}

void FUnrealEngineAdapter::Tick()
{
	check(IsInGameThread());
	if (Phase == EPhase::WaitingForWorldTick && GFrameCounter > UnpausedOnFrame)
	{
		// A full frame (one UWorld::Tick of the fixed delta) ran since the unpause.
		SetPaused(true);
		++StepsSinceReset;
		TArray<int32> All;
		for (int32 Index = 0; Index < Agents.Num(); ++Index)
		{
			if (!Agents[Index].Pawn.IsValid())
			{
				FailInFlight(EGenWorldError::Internal, FString::Printf(TEXT("the camera pawn of %s was destroyed"), *Agents[Index].Id));
				return;
			}
			All.Add(Index);
		}
		CaptureAgents(All);
	}
	if (Phase != EPhase::ReadingBack)
	{
		return;
	}
	bool bAllReady = true;
	for (int32 Index : CapturingAgents)
	{
		bAllReady &= Agents[Index].Readback->Poll();  // poll every one: each advances its own copy
	}
	if (bAllReady)
	{
		Finish();
	}
}

genworld::Observation FUnrealEngineAdapter::BuildObservation(FAgent& Agent)
{
	FGenWorldPixels Pixels = Agent.Readback->TakePixels();
	Agent.Readback.Reset();

	genworld::Observation Obs;
	Obs.width = uint32(Pixels.Width);
	Obs.height = uint32(Pixels.Height);
	Obs.rgb = MoveTemp(Pixels.Rgb);
	Obs.depth = MoveTemp(Pixels.Depth);
	const FTransform& Camera = Agent.CameraAtCapture;
	Obs.pose = GenWorldCoreConversions::ToCore(GenWorldConventions::UeCameraToPose(Camera.GetLocation(), Camera.Rotator()));
	Obs.K = GenWorldCoreConversions::ToCore(GenWorldConventions::IntrinsicsFromHorizontalFov(Pixels.Width, Pixels.Height, Config.HorizontalFovDeg));
	Obs.frame_id = Agent.FrameId++;
	Obs.sim_time = double(StepsSinceReset) * Config.FixedDeltaSeconds;
	Obs.collided = Agent.bCollided;

	if (!Agent.HandTargets.IsEmpty())
	{
		// 2 x 21 x 3 in the camera frame; NaN for a hand the rig does not report.
		std::vector<float> Keypoints(size_t(GenWorldNumHands) * GenWorldHandKeypointCount * Xyz, std::numeric_limits<float>::quiet_NaN());
		AActor* Rig = Agent.HandTargets[0].Get();
		for (int32 Hand = 0; Rig != nullptr && Hand < GenWorldNumHands; ++Hand)
		{
			const TArray<FVector> World = IGenWorldHandTarget::Execute_GetHandKeypoints(Rig, Hand);
			if (World.Num() != GenWorldHandKeypointCount)
			{
				continue;
			}
			for (int32 Point = 0; Point < GenWorldHandKeypointCount; ++Point)
			{
				const FVector Local = Camera.InverseTransformPositionNoScale(World[Point]);
				const FVector Cv = GenWorldConventions::UeCameraLocalToCvCamera(Local);
				float* Dst = Keypoints.data() + (size_t(Hand) * GenWorldHandKeypointCount + Point) * Xyz;
				Dst[0] = float(Cv.X);
				Dst[1] = float(Cv.Y);
				Dst[2] = float(Cv.Z);
			}
		}
		Obs.hand_keypoints = MoveTemp(Keypoints);
	}
	return Obs;
}

void FUnrealEngineAdapter::Finish()
{
	Phase = EPhase::Idle;
	if (PendingFrame)
	{
		genworld::Observation Obs = BuildObservation(Agents[CapturingAgents[0]]);
		TGenWorldCompletion<genworld::Observation> Done = MoveTemp(PendingFrame);
		Done(TGenWorldResult<genworld::Observation>::Ok(MoveTemp(Obs)));
		return;
	}
	genworld::Observations Frames;
	for (int32 Index : CapturingAgents)
	{
		Frames.emplace_back(TCHAR_TO_UTF8(*Agents[Index].Id), BuildObservation(Agents[Index]));
	}
	TGenWorldCompletion<genworld::Observations> Done = MoveTemp(PendingFrames);
	Done(TGenWorldResult<genworld::Observations>::Ok(MoveTemp(Frames)));
}

void FUnrealEngineAdapter::FailInFlight(EGenWorldError Kind, const FString& Message)
{
	Phase = EPhase::Idle;
	for (FAgent& Agent : Agents)
	{
		Agent.Readback.Reset();
	}
	if (PendingFrame)
	{
		TGenWorldCompletion<genworld::Observation> Done = MoveTemp(PendingFrame);
		Done(TGenWorldResult<genworld::Observation>::Fail(Kind, Message));
	}
	if (PendingFrames)
	{
		TGenWorldCompletion<genworld::Observations> Done = MoveTemp(PendingFrames);
		Done(TGenWorldResult<genworld::Observations>::Fail(Kind, Message));
	}
}
