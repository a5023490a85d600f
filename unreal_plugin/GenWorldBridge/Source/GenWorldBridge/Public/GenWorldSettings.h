// Project settings of the GenWorld bridge (Project Settings > Plugins > GenWorld Bridge,
// stored in DefaultGame.ini under [/Script/GenWorldBridge.GenWorldSettings]).
#pragma once

#include "CoreMinimal.h"
#include "Engine/DeveloperSettings.h"
#include "GameFramework/Actor.h"
#include "GenWorldSettings.generated.h"

UCLASS(Config = Game, DefaultConfig, meta = (DisplayName = "GenWorld Bridge"))
class GENWORLDBRIDGE_API UGenWorldSettings : public UDeveloperSettings
{
	GENERATED_BODY()

public:
	UGenWorldSettings();

	/** Serve the level as a World when the game starts. -GenWorldPort= on the command line forces it on. */
	UPROPERTY(Config, EditAnywhere, Category = "Server")
	bool bServeOnStart = false;

	/** gRPC port; overridden by -GenWorldPort=N. */
	UPROPERTY(Config, EditAnywhere, Category = "Server", meta = (ClampMin = "1", ClampMax = "65535"))
	int32 Port = 50051;

	/** Address to bind. Loopback by default; serving remotely needs an explicit address and a token. */
	UPROPERTY(Config, EditAnywhere, Category = "Server")
	FString BindAddress = TEXT("127.0.0.1");

	/** When set, every call must carry `authorization: Bearer <Token>`. Overridden by -GenWorldToken=. */
	UPROPERTY(Config, EditAnywhere, Category = "Server")
	FString Token;

	/** Simulated seconds one Step advances: the engine runs with FApp::SetUseFixedTimeStep at this delta. */
	UPROPERTY(Config, EditAnywhere, Category = "Time", meta = (ClampMin = "0.001", Units = "s"))
	float FixedTimeStepSeconds = 0.1f;

	/** Wall-clock budget per engine frame for draining queued requests on the game thread. */
	UPROPERTY(Config, EditAnywhere, Category = "Time", meta = (ClampMin = "0.1", Units = "ms"))
	float MaxRequestTimePerTickMs = 8.0f;

	/** While idle, the game thread waits this long for a request before letting the frame end (lower latency than spinning). */
	UPROPERTY(Config, EditAnywhere, Category = "Time", meta = (ClampMin = "0.0", Units = "ms"))
	float IdleWaitMs = 2.0f;

	/** A gRPC call gives up (INTERNAL) when the game thread has not answered it within this time. */
	UPROPERTY(Config, EditAnywhere, Category = "Time", meta = (ClampMin = "1.0", Units = "s"))
	float GameThreadTimeoutSeconds = 60.0f;

	/** Number of camera agents (agent_0 ... agent_{N-1}). */
	UPROPERTY(Config, EditAnywhere, Category = "Agents", meta = (ClampMin = "1"))
	int32 NumAgents = 1;

	/** Capture width in pixels. */
	UPROPERTY(Config, EditAnywhere, Category = "Agents", meta = (ClampMin = "8"))
	int32 Width = 640;

	/** Capture height in pixels. */
	UPROPERTY(Config, EditAnywhere, Category = "Agents", meta = (ClampMin = "8"))
	int32 Height = 480;

	/** Horizontal field of view of the capture cameras (Unreal's FOVAngle is horizontal). */
	UPROPERTY(Config, EditAnywhere, Category = "Agents", meta = (ClampMin = "1.0", ClampMax = "170.0", Units = "deg"))
	float HorizontalFovDeg = 90.0f;

	/** Radius of the camera pawn's collision sphere (the sweep that reports `collided`). */
	UPROPERTY(Config, EditAnywhere, Category = "Agents", meta = (ClampMin = "0.1", Units = "cm"))
	float AgentRadiusCm = 20.0f;

	/** Navigation: metres per step at |action| = 1 (bridge.actions.NavLimits.max_translation). */
	UPROPERTY(Config, EditAnywhere, Category = "Agents", meta = (ClampMin = "0.0"))
	float NavMaxTranslationMeters = 0.15f;

	/** Navigation: degrees per step at |action| = 1 (NavLimits.max_rotation). */
	UPROPERTY(Config, EditAnywhere, Category = "Agents", meta = (ClampMin = "0.0", Units = "deg"))
	float NavMaxRotationDeg = 10.0f;

	/** Navigation: |pitch| clamp (NavLimits.max_pitch). */
	UPROPERTY(Config, EditAnywhere, Category = "Agents", meta = (ClampMin = "0.0", ClampMax = "89.0", Units = "deg"))
	float NavMaxPitchDeg = 80.0f;

	/** Scene depth at or beyond this counts as "nothing hit" and is sent as +inf. */
	UPROPERTY(Config, EditAnywhere, Category = "Capture", meta = (ClampMin = "1.0", Units = "m"))
	float MaxDepthMeters = 1000.0f;

	/** Spawned once per agent and attached to its camera pawn when set; must implement GenWorldHandTarget. */
	UPROPERTY(Config, EditAnywhere, Category = "Hands", meta = (MustImplement = "/Script/GenWorldBridge.GenWorldHandTarget"))
	TSoftClassPtr<AActor> HandTargetClass;

	/** Hands: metres per step at |action| = 1 (bridge.hands.HandLimits.max_translation). */
	UPROPERTY(Config, EditAnywhere, Category = "Hands", meta = (ClampMin = "0.0"))
	float HandMaxTranslationMeters = 0.03f;

	/** Hands: degrees per step at |axis-angle action| = 1 (HandLimits.max_rotation). */
	UPROPERTY(Config, EditAnywhere, Category = "Hands", meta = (ClampMin = "0.0", Units = "deg"))
	float HandMaxRotationDeg = 10.0f;
};
