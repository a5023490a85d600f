#include "GenWorldSubsystem.h"

#include "Engine/GameInstance.h"
#include "Engine/World.h"
#include "GenWorldServer.h"
#include "GenWorldSettings.h"
#include "Misc/App.h"
#include "Misc/CommandLine.h"
#include "Misc/Parse.h"

DEFINE_LOG_CATEGORY_STATIC(LogGenWorld, Log, All);

namespace
{
	constexpr double SecondsPerMillisecond = 1.0e-3;
	const TCHAR* const PortFlag = TEXT("GenWorldPort=");
	const TCHAR* const TokenFlag = TEXT("GenWorldToken=");
	const TCHAR* const BindFlag = TEXT("GenWorldBind=");
}

void UGenWorldSubsystem::Initialize(FSubsystemCollectionBase& Collection)
{
	Super::Initialize(Collection);
	int32 PortFromCommandLine = 0;
	const bool bPortGiven = FParse::Value(FCommandLine::Get(), PortFlag, PortFromCommandLine);
	if (bPortGiven || GetDefault<UGenWorldSettings>()->bServeOnStart)
	{
		StartServing();
	}
}

void UGenWorldSubsystem::Deinitialize()
{
	StopServing();
	Super::Deinitialize();
}

bool UGenWorldSubsystem::StartServing()
{
	if (Server)
	{
		return true;
	}
	const UGenWorldSettings& Settings = *GetDefault<UGenWorldSettings>();

	FGenWorldServerOptions Options;
	Options.Port = Settings.Port;
	Options.BindAddress = Settings.BindAddress;
	Options.Token = Settings.Token;
	Options.GameThreadTimeoutSeconds = Settings.GameThreadTimeoutSeconds;
	FParse::Value(FCommandLine::Get(), PortFlag, Options.Port);
	FParse::Value(FCommandLine::Get(), BindFlag, Options.BindAddress);
	FParse::Value(FCommandLine::Get(), TokenFlag, Options.Token);

	const double FixedDelta = Settings.FixedTimeStepSeconds;
	const UWorld* World = GetGameInstance()->GetWorld();
	const FString WorldName = FString::Printf(TEXT("unreal:%s"), World ? *World->GetMapName() : FApp::GetProjectName());

	FString Error;
	Server = FGenWorldServer::Start(GetGameInstance(), FGenWorldAdapterConfig::FromSettings(Settings, WorldName, FixedDelta), Options, Error);
	if (!Server)
	{
		UE_LOG(LogGenWorld, Error, TEXT("GenWorld server not started: %s"), *Error);
		return false;
	}
	EnterFixedStep(FixedDelta);
	return true;
}

void UGenWorldSubsystem::StopServing()
{
	Server.Reset();  // ~FGenWorldServer answers every waiting call before gRPC shuts down
	LeaveFixedStep();
}

int32 UGenWorldSubsystem::GetBoundPort() const
{
	return Server ? Server->GetPort() : 0;
}

void UGenWorldSubsystem::EnterFixedStep(double DeltaSeconds)
{
	// Every engine frame advances exactly DeltaSeconds of game time, however long it took
	// to render: with the lockstep pause, one Step = one frame = DeltaSeconds.
	bSavedUseFixedTimeStep = FApp::UseFixedTimeStep();
	SavedFixedDeltaTime = FApp::GetFixedDeltaTime();
	FApp::SetUseFixedTimeStep(true);
	FApp::SetFixedDeltaTime(DeltaSeconds);
	bFixedStepActive = true;
}

void UGenWorldSubsystem::LeaveFixedStep()
{
	if (bFixedStepActive)
	{
		FApp::SetUseFixedTimeStep(bSavedUseFixedTimeStep);
		FApp::SetFixedDeltaTime(SavedFixedDeltaTime);
		bFixedStepActive = false;
	}
}

void UGenWorldSubsystem::Tick(float DeltaTime)
{
	const UGenWorldSettings& Settings = *GetDefault<UGenWorldSettings>();
	Server->Pump(Settings.MaxRequestTimePerTickMs * SecondsPerMillisecond, Settings.IdleWaitMs * SecondsPerMillisecond);
}

bool UGenWorldSubsystem::IsTickable() const
{
	return Server.IsValid();
}

UWorld* UGenWorldSubsystem::GetTickableGameObjectWorld() const
{
	// Tick with the game world only (once per frame, paused or not), never with the
	// editor's or another PIE instance's world.
	return GetGameInstance() ? GetGameInstance()->GetWorld() : nullptr;
}

TStatId UGenWorldSubsystem::GetStatId() const
{
	RETURN_QUICK_DECLARE_CYCLE_STAT(UGenWorldSubsystem, STATGROUP_Tickables);
}
