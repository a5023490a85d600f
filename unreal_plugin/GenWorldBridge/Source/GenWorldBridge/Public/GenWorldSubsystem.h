// Hosts genworld.v1.WorldService for the running game and pumps its requests on the game
// thread (ARCHITECTURE.md §9, the Tempo pattern): gRPC threads only enqueue; every frame
// this subsystem drains the queue within UGenWorldSettings::MaxRequestTimePerTickMs.
#pragma once

#include "CoreMinimal.h"
#include "Subsystems/GameInstanceSubsystem.h"
#include "Tickable.h"
#include "GenWorldSubsystem.generated.h"

class FGenWorldServer;

UCLASS()
class GENWORLDBRIDGE_API UGenWorldSubsystem : public UGameInstanceSubsystem, public FTickableGameObject
{
	GENERATED_BODY()

public:
	virtual void Initialize(FSubsystemCollectionBase& Collection) override;
	virtual void Deinitialize() override;

	/** Starts serving (idempotent). Called automatically with -GenWorldPort= or bServeOnStart. */
	UFUNCTION(BlueprintCallable, Category = "GenWorld")
	bool StartServing();

	/** Stops the server, failing calls in flight, and restores the engine's time step. */
	UFUNCTION(BlueprintCallable, Category = "GenWorld")
	void StopServing();

	/** The bound port, or 0 when not serving. */
	UFUNCTION(BlueprintPure, Category = "GenWorld")
	int32 GetBoundPort() const;

	// FTickableGameObject
	virtual void Tick(float DeltaTime) override;
	virtual ETickableTickType GetTickableTickType() const override { return ETickableTickType::Conditional; }
	virtual bool IsTickable() const override;
	virtual bool IsTickableWhenPaused() const override { return true; }  // lockstep pauses the game between steps
	virtual bool IsTickableInEditor() const override { return false; }
	virtual UWorld* GetTickableGameObjectWorld() const override;
	virtual TStatId GetStatId() const override;

private:
	void EnterFixedStep(double DeltaSeconds);
	void LeaveFixedStep();

	TUniquePtr<FGenWorldServer> Server;

	bool bSavedUseFixedTimeStep = false;
	double SavedFixedDeltaTime = 0.0;
	bool bFixedStepActive = false;
};
