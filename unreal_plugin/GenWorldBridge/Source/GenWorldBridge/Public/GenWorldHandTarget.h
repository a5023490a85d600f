// Hands are the artist's rig: any actor implementing this interface receives an agent's
// hand actions and reports its keypoints back, so hand meshes, IK and grasping stay in
// Blueprint while the bridge owns the protocol (bridge/hands.py defines the semantics).
#pragma once

#include "CoreMinimal.h"
#include "Kismet/BlueprintFunctionLibrary.h"
#include "UObject/Interface.h"
#include "GenWorldHandTarget.generated.h"

/** Number of keypoints per hand, MANO order (0 wrist; 1-4 thumb; 5-8 index; 9-12 middle; 13-16 ring; 17-20 pinky). */
inline constexpr int32 GenWorldHandKeypointCount = 21;
/** Hand indices, as in bridge.hands (LEFT, RIGHT). */
inline constexpr int32 GenWorldLeftHand = 0;
inline constexpr int32 GenWorldRightHand = 1;
inline constexpr int32 GenWorldNumHands = 2;

UINTERFACE(BlueprintType, MinimalAPI)
class UGenWorldHandTarget : public UInterface
{
	GENERATED_BODY()
};

/**
 * Implemented by an actor that drives one agent's two hands. Bind it to an agent with an
 * actor tag equal to the agent id ("agent_0"), or let the plugin spawn
 * UGenWorldSettings::HandTargetClass per agent (tagged and attached to the camera pawn).
 */
class GENWORLDBRIDGE_API IGenWorldHandTarget
{
	GENERATED_BODY()

public:
	/**
	 * One step of hand motion. WristDeltaInCamera is the wrist's translation (cm) and
	 * rotation (about the wrist's own origin) in the capturing camera's LOCAL frame
	 * (X forward, Y right, Z up), already scaled by the hand limits. Grip is an absolute
	 * target in [0, 1] (0 open, 1 closed), not a delta.
	 * UGenWorldHandLibrary::ApplyCameraDeltaToWrist turns it into a new world transform.
	 */
	UFUNCTION(BlueprintNativeEvent, BlueprintCallable, Category = "GenWorld|Hands")
	void ApplyHandAction(int32 HandIndex, FTransform WristDeltaInCamera, float Grip);

	/** The hand's 21 keypoints in MANO order, as WORLD locations (cm). Return an empty array when the hand is absent. */
	UFUNCTION(BlueprintNativeEvent, BlueprintCallable, Category = "GenWorld|Hands")
	TArray<FVector> GetHandKeypoints(int32 HandIndex);
};

/** Helpers for Blueprint hand rigs. */
UCLASS()
class GENWORLDBRIDGE_API UGenWorldHandLibrary : public UBlueprintFunctionLibrary
{
	GENERATED_BODY()

public:
	/**
	 * The wrist's new world transform after a camera-local delta: translation is rotated
	 * into the world by the camera's rotation; the rotation is conjugated into the world
	 * and applied about the wrist's own origin (bridge.hands.apply_hand_action).
	 */
	UFUNCTION(BlueprintPure, Category = "GenWorld|Hands")
	static FTransform ApplyCameraDeltaToWrist(const FTransform& CameraWorld, const FTransform& WristDeltaInCamera, const FTransform& WristWorld);
};
