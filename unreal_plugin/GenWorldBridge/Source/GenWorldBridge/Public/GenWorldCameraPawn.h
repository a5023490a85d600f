// The agent: a camera pawn with a collision sphere and two scene captures (final colour
// and planar depth) rendered on demand, never every frame, so a capture happens exactly
// when a Reset/Step/SetPose asks for one.
#pragma once

#include "CoreMinimal.h"
#include "GameFramework/Pawn.h"
#include "GenWorldCameraPawn.generated.h"

class USceneCaptureComponent2D;
class USphereComponent;
class UTextureRenderTarget2D;

UCLASS(NotPlaceable, Transient)
class GENWORLDBRIDGE_API AGenWorldCameraPawn : public APawn
{
	GENERATED_BODY()

public:
	AGenWorldCameraPawn();

	/** Creates the render targets and sets both captures' resolution and horizontal FOV. */
	void ConfigureCapture(int32 Width, int32 Height, float HorizontalFovDeg, float CollisionRadiusCm);

	/** Renders both captures now (enqueues their render commands for the current pose). */
	void CaptureNow();

	UTextureRenderTarget2D* GetColorTarget() const { return ColorTarget; }
	UTextureRenderTarget2D* GetDepthTarget() const { return DepthTarget; }

	/** The capture camera's world transform: the pose every observation reports. */
	FTransform GetCameraTransform() const;

	float GetHorizontalFovDeg() const;

	UPROPERTY(VisibleAnywhere, Category = "GenWorld")
	TObjectPtr<USphereComponent> Collision;

	/** SCS_FinalColorLDR: the tonemapped image a player would see. */
	UPROPERTY(VisibleAnywhere, Category = "GenWorld")
	TObjectPtr<USceneCaptureComponent2D> ColorCapture;

	/** SCS_SceneDepth into R32F: planar depth (view-space Z) in cm. */
	UPROPERTY(VisibleAnywhere, Category = "GenWorld")
	TObjectPtr<USceneCaptureComponent2D> DepthCapture;

private:
	UPROPERTY(Transient)
	TObjectPtr<UTextureRenderTarget2D> ColorTarget;

	UPROPERTY(Transient)
	TObjectPtr<UTextureRenderTarget2D> DepthTarget;
};
