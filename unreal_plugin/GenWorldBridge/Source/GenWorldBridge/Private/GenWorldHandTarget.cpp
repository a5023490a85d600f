#include "GenWorldHandTarget.h"

#include "Kismet/BlueprintFunctionLibrary.h"

FTransform UGenWorldHandLibrary::ApplyCameraDeltaToWrist(const FTransform& CameraWorld, const FTransform& WristDeltaInCamera, const FTransform& WristWorld)
{
	const FQuat CameraRotation = CameraWorld.GetRotation();
	const FVector TranslationWorld = CameraRotation.RotateVector(WristDeltaInCamera.GetTranslation());
	const FQuat RotationWorld = CameraRotation * WristDeltaInCamera.GetRotation() * CameraRotation.Inverse();

	FTransform Result = WristWorld;
	Result.SetLocation(WristWorld.GetLocation() + TranslationWorld);
	Result.SetRotation((RotationWorld * WristWorld.GetRotation()).GetNormalized());
	return Result;
}
